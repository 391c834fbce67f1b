//! A stand-in for the kubelet over the Kubernetes fake: the fake keeps pods but runs nothing, so
//! [`Kubelet`] runs each pod's container as a local `streaming-runner` process, with the
//! arguments and environment the pod spec gives (plus moto's client environment, in place of
//! the credentials IRSA would inject), and stops it when the pod goes away or is replaced. The
//! provider is then tested against the real effect of the StatefulSet it wrote: a wrong
//! variable in the pod template means no heartbeat and a failed apply.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lakestream_testkit::kubernetes::KubeFake;
use serde_json::Value;

use crate::bin_dir;

/// Runs every pod of the fake as a local runner process; dropping it stops them all.
pub struct Kubelet {
    processes: Arc<Mutex<BTreeMap<String, Child>>>,
    poller: tokio::task::JoinHandle<()>,
    logs: tempfile::TempDir,
}

impl Kubelet {
    /// Starts polling `fake`'s pods every 300 ms; runners get `base_env` besides the pod's
    /// environment.
    pub fn start(fake: Arc<KubeFake>, base_env: Vec<(&'static str, String)>) -> Self {
        let processes: Arc<Mutex<BTreeMap<String, Child>>> = Arc::default();
        let logs = tempfile::Builder::new()
            .prefix("lakestream-kubelet-")
            .tempdir()
            .expect("a temporary folder");
        let (shared, log_dir) = (Arc::clone(&processes), logs.path().to_owned());
        let poller = tokio::spawn(async move {
            loop {
                if let Ok(pods) = fake.objects("pods").await {
                    // A pod is known by its uid: a replaced pod (same name) is a new process.
                    let wanted: BTreeMap<String, &Value> =
                        pods.iter().map(|pod| (uid(pod), pod)).collect();
                    let gone: Vec<Child> = {
                        let mut running = shared.lock().unwrap();
                        let stale: Vec<String> = running
                            .keys()
                            .filter(|uid| !wanted.contains_key(*uid))
                            .cloned()
                            .collect();
                        stale.iter().filter_map(|uid| running.remove(uid)).collect()
                    };
                    for process in gone {
                        stop(process).await;
                    }
                    for (uid, pod) in wanted {
                        if shared.lock().unwrap().contains_key(&uid) {
                            continue;
                        }
                        if let Ok(process) = launch(pod, &base_env, &log_dir.join(name(pod))) {
                            shared.lock().unwrap().insert(uid, process);
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        });
        Self {
            processes,
            poller,
            logs,
        }
    }

    /// How many pods run as processes now.
    pub fn running(&self) -> usize {
        self.processes.lock().unwrap().len()
    }

    /// Every pod's process log, one after the other (for failure messages).
    pub fn logs(&self) -> String {
        let mut text = String::new();
        for entry in std::fs::read_dir(self.logs.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let log = std::fs::read_to_string(entry.path()).unwrap_or_default();
            text.push_str(&format!(
                "--- pod {}\n{log}",
                entry.file_name().to_string_lossy()
            ));
        }
        text
    }
}

impl Drop for Kubelet {
    fn drop(&mut self) {
        self.poller.abort();
        for (_, mut process) in std::mem::take(&mut *self.processes.lock().unwrap()) {
            let _ = process.kill();
            let _ = process.wait();
        }
    }
}

fn uid(pod: &Value) -> String {
    pod["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn name(pod: &Value) -> String {
    pod["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Starts the pod's single container as a local runner process.
fn launch(pod: &Value, base_env: &[(&'static str, String)], log: &Path) -> Result<Child, String> {
    let container = &pod["spec"]["containers"][0];
    let strings = |value: &Value| -> Vec<String> {
        value
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    };
    let env: Vec<(String, String)> = container["env"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| {
            Some((
                e["name"].as_str()?.to_owned(),
                e["value"].as_str()?.to_owned(),
            ))
        })
        .collect();
    let log = std::fs::File::create(log).map_err(|err| err.to_string())?;
    let runner: PathBuf = bin_dir().join("streaming-runner");
    Command::new(runner)
        .args(strings(&container["args"]))
        .env_clear()
        .envs(base_env.iter().map(|(k, v)| (*k, v.as_str())))
        .envs(env)
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|err| err.to_string())?)
        .stderr(log)
        .spawn()
        .map_err(|err| err.to_string())
}

/// Stops a container as the kubelet does: SIGTERM, then SIGKILL after the grace period.
async fn stop(mut process: Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &process.id().to_string()])
        .status();
    for _ in 0..50 {
        if matches!(process.try_wait(), Ok(Some(_))) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = process.kill();
    let _ = process.wait();
}
