//! A stand-in for Fargate's scheduler over moto: moto keeps ECS services but runs no tasks, so
//! [`Scheduler`] runs each active service's task definition as a local `streaming-runner`
//! process, with the environment and command the task definition gives, as Fargate would. The
//! provider is then tested against the real effect of what it registered: a wrong variable
//! in the task definition means no heartbeat and a failed apply.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_ecs::types::Service;
use lakestream_testkit::moto::{MotoServer, REGION};

use crate::bin_dir;

/// The SDK configuration of a client talking to `moto`.
pub async fn moto_config(moto: &MotoServer) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(REGION))
        .endpoint_url(moto.endpoint())
        .credentials_provider(aws_credential_types::Credentials::new(
            "testing", "testing", None, None, "moto",
        ))
        .load()
        .await
}

/// Creates an IAM role in moto that `principal` (a trust policy's `Principal` element) may
/// assume, as an operator would; its ARN.
pub async fn create_role(
    iam: &aws_sdk_iam::Client,
    name: &str,
    principal: serde_json::Value,
) -> String {
    let trust = serde_json::json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": principal}]});
    iam.create_role()
        .role_name(name)
        .assume_role_policy_document(trust.to_string())
        .send()
        .await
        .unwrap_or_else(|err| panic!("creating role {name}: {err:?}"))
        .role
        .expect("a created role")
        .arn
}

/// One simulated task: the task definition it runs, its ECS task (so the provider sees it in
/// `ListTasks`/`DescribeTasks`) and its process.
struct Task {
    task_definition: String,
    task_arn: String,
    process: Child,
}

/// Runs every active service of `cluster` with a desired count above zero as a local runner
/// process, replacing it when the service moves to another task definition and stopping it
/// (TERM, then KILL) when the service is scaled to zero or deleted. Dropping it stops them all.
pub struct Scheduler {
    tasks: Arc<Mutex<BTreeMap<String, Task>>>,
    poller: tokio::task::JoinHandle<()>,
    logs: tempfile::TempDir,
}

impl Scheduler {
    /// Starts polling `cluster` every 300 ms; runners get `moto`'s client environment (the
    /// task role's credentials, in Fargate terms) plus the task definition's.
    pub fn start(moto: &MotoServer, config: &aws_config::SdkConfig, cluster: &str) -> Self {
        let ecs = aws_sdk_ecs::Client::new(config);
        let tasks: Arc<Mutex<BTreeMap<String, Task>>> = Arc::default();
        let logs = tempfile::Builder::new()
            .prefix("lakestream-fargate-tasks-")
            .tempdir()
            .expect("a temporary folder");
        let base_env = moto.env();
        let (cluster, shared, log_dir) = (
            cluster.to_owned(),
            Arc::clone(&tasks),
            logs.path().to_owned(),
        );
        let poller = tokio::spawn(async move {
            loop {
                if let Ok(services) = active_services(&ecs, &cluster).await {
                    let mut wanted = BTreeMap::new();
                    for service in services.iter().filter(|s| s.desired_count() > 0) {
                        let (Some(name), Some(definition)) =
                            (service.service_name(), service.task_definition())
                        else {
                            continue;
                        };
                        wanted.insert(
                            name.to_owned(),
                            (
                                definition.to_owned(),
                                service.network_configuration().cloned(),
                            ),
                        );
                    }
                    // Tasks of another revision, of a service scaled to zero, or whose process
                    // exited (ECS replaces a task whose essential container stopped).
                    let stale: Vec<Task> = {
                        let mut tasks = shared.lock().unwrap();
                        let names: Vec<String> = tasks
                            .iter_mut()
                            .filter_map(|(name, task)| {
                                let stale = wanted.get(name).map(|(definition, _)| definition)
                                    != Some(&task.task_definition)
                                    || !matches!(task.process.try_wait(), Ok(None));
                                stale.then(|| name.clone())
                            })
                            .collect();
                        names.iter().filter_map(|name| tasks.remove(name)).collect()
                    };
                    for task in stale {
                        stop(&ecs, &cluster, task).await;
                    }
                    for (name, (definition, network)) in wanted {
                        if shared.lock().unwrap().contains_key(&name) {
                            continue;
                        }
                        match launch(
                            &ecs,
                            &cluster,
                            &name,
                            &definition,
                            network,
                            &base_env,
                            &log_dir,
                        )
                        .await
                        {
                            Ok(task) => {
                                shared.lock().unwrap().insert(name, task);
                            }
                            Err(err) => eprintln!("simulated Fargate: cannot start {name}: {err}"),
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        });
        Self {
            tasks,
            poller,
            logs,
        }
    }

    /// The task definition each service's simulated task runs now.
    pub fn running(&self) -> BTreeMap<String, String> {
        self.tasks
            .lock()
            .unwrap()
            .iter()
            .map(|(name, task)| (name.clone(), task.task_definition.clone()))
            .collect()
    }

    /// The log of `service`'s simulated task (for failure messages).
    pub fn log(&self, service: &str) -> String {
        std::fs::read_to_string(self.logs.path().join(service)).unwrap_or_default()
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        self.poller.abort();
        for (_, mut task) in std::mem::take(&mut *self.tasks.lock().unwrap()) {
            let _ = task.process.kill();
            let _ = task.process.wait();
        }
    }
}

async fn active_services(ecs: &aws_sdk_ecs::Client, cluster: &str) -> Result<Vec<Service>, String> {
    let arns = ecs
        .list_services()
        .cluster(cluster)
        .send()
        .await
        .map_err(|err| err.to_string())?
        .service_arns()
        .to_vec();
    if arns.is_empty() {
        return Ok(Vec::new());
    }
    let described = ecs
        .describe_services()
        .cluster(cluster)
        .set_services(Some(arns))
        .send()
        .await
        .map_err(|err| err.to_string())?;
    Ok(described
        .services()
        .iter()
        .filter(|s| s.status() == Some("ACTIVE"))
        .cloned()
        .collect())
}

/// Starts the task definition's single container as a local runner process, and records it
/// in moto as a task of the service.
async fn launch(
    ecs: &aws_sdk_ecs::Client,
    cluster: &str,
    service: &str,
    definition: &str,
    network: Option<aws_sdk_ecs::types::NetworkConfiguration>,
    base_env: &[(&'static str, String)],
    log_dir: &std::path::Path,
) -> Result<Task, String> {
    let described = ecs
        .describe_task_definition()
        .task_definition(definition)
        .send()
        .await
        .map_err(|err| err.to_string())?;
    let container = described
        .task_definition()
        .and_then(|d| d.container_definitions().first().cloned())
        .ok_or("no container")?;
    let started = ecs
        .run_task()
        .cluster(cluster)
        .task_definition(definition)
        .launch_type(aws_sdk_ecs::types::LaunchType::Fargate)
        .started_by(format!("ecs-svc/{service}"))
        .group(format!("service:{service}"))
        .set_network_configuration(network)
        .send()
        .await
        .map_err(|err| format!("RunTask: {}", err.into_service_error()))?;
    let task_arn = started
        .tasks()
        .first()
        .and_then(|task| task.task_arn())
        .ok_or("no task")?
        .to_owned();
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_dir.join(service))
        .map_err(|err| err.to_string())?;
    let runner: PathBuf = bin_dir().join("streaming-runner");
    let process = Command::new(runner)
        .args(container.command())
        .env_clear()
        .envs(base_env.iter().map(|(k, v)| (*k, v.as_str())))
        .envs(
            container
                .environment()
                .iter()
                .filter_map(|pair| Some((pair.name()?, pair.value()?))),
        )
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|err| err.to_string())?)
        .stderr(log)
        .spawn()
        .map_err(|err| err.to_string())?;
    Ok(Task {
        task_definition: definition.to_owned(),
        task_arn,
        process,
    })
}

/// Stops a task as ECS does: SIGTERM, then SIGKILL after a grace period; only then is the
/// task STOPPED, with ECS's reason.
async fn stop(ecs: &aws_sdk_ecs::Client, cluster: &str, mut task: Task) {
    let exited_by_itself = !matches!(task.process.try_wait(), Ok(None));
    if !exited_by_itself {
        let _ = Command::new("kill")
            .args(["-TERM", &task.process.id().to_string()])
            .status();
        for _ in 0..50 {
            if !matches!(task.process.try_wait(), Ok(None)) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let _ = task.process.kill();
    }
    let _ = task.process.wait();
    let reason = if exited_by_itself {
        "Essential container in task exited"
    } else {
        "Scaling activity initiated by (deployment)"
    };
    let _ = ecs
        .stop_task()
        .cluster(cluster)
        .task(&task.task_arn)
        .reason(reason)
        .send()
        .await;
}
