//! `local`: the runner as a process on the machine running Terraform, for development, demos
//! and tests. The process runs in its own session (started through `setsid`), so it outlives
//! Terraform and ignores the terminal's Ctrl-C; its PID and start time are recorded, so a
//! recycled PID is never mistaken for it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use lakestream_spec::rules;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use tfplugin::plan_modifier::use_state_for_unknown;
use tfplugin::validator::custom;
use tfplugin::{Attribute, Block, NestedBlock, Type, async_trait};

use crate::rules::string_rule;

use super::{Applied, DeployError, Deployment, Observation, RunnerTarget, read_record};

/// How long a runner gets to commit and exit after SIGTERM before it is killed.
pub const STOP_GRACE: Duration = Duration::from_secs(20);
/// The runner binary's file name.
pub const RUNNER_BINARY: &str = "streaming-runner";
/// Environment variables of the provider's own plugin handshake, not passed to the runner.
const PLUGIN_VARIABLES: [&str; 5] = [
    "TF_PLUGIN_MAGIC_COOKIE",
    "PLUGIN_PROTOCOL_VERSIONS",
    "PLUGIN_CLIENT_CERT",
    "PLUGIN_MIN_PORT",
    "PLUGIN_MAX_PORT",
];

/// The `local` block as Terraform holds it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LocalBlock {
    /// `runner_binary`.
    pub runner_binary: Option<String>,
    /// `log_file`.
    pub log_file: Option<String>,
    /// `environment`.
    pub environment: Option<BTreeMap<String, String>>,
    /// `pid` (computed).
    pub pid: Option<i64>,
}

impl LocalBlock {
    /// The deployment settings, with defaults resolved for `target`.
    pub fn settings(&self, target: &RunnerTarget) -> Result<LocalDeployment, DeployError> {
        let runner_binary = match &self.runner_binary {
            Some(path) => path.clone(),
            None => default_runner_binary()
                .ok_or_else(|| DeployError::new(format!("no {RUNNER_BINARY} next to the provider binary; set local.runner_binary to its absolute path")))?
                .display()
                .to_string(),
        };
        let log_file = self
            .log_file
            .clone()
            .unwrap_or_else(|| default_log_file(target).display().to_string());
        Ok(LocalDeployment {
            runner_binary,
            log_file,
            environment: self.environment.clone().unwrap_or_default(),
            process: None,
        })
    }

    /// The block as a record describes it; `running` says whether the process still runs.
    pub fn from_record(record: &serde_json::Value, running: bool) -> Self {
        let deployment: LocalDeployment =
            serde_json::from_value(record.clone()).unwrap_or_default();
        Self {
            runner_binary: Some(deployment.runner_binary),
            log_file: Some(deployment.log_file),
            environment: Some(deployment.environment).filter(|e| !e.is_empty()),
            pid: deployment
                .process
                .filter(|_| running)
                .map(|p| i64::from(p.pid)),
        }
    }

    /// What, when it changes, restarts the process.
    pub fn process_settings(
        &self,
    ) -> (
        Option<&String>,
        Option<&String>,
        Option<&BTreeMap<String, String>>,
    ) {
        (
            self.runner_binary.as_ref(),
            self.log_file.as_ref(),
            self.environment.as_ref().filter(|e| !e.is_empty()),
        )
    }
}

/// The `local` block's schema.
pub fn block() -> NestedBlock {
    NestedBlock::single(
        "local",
        Block::new()
            .description("Runs the runner as a process on the machine running Terraform, for development, demos and tests. It runs in its own session and outlives Terraform.")
            .attribute(
                Attribute::string("runner_binary")
                    .optional()
                    .computed()
                    .description("The `streaming-runner` binary; by default the one next to the provider binary.")
                    .validator(string_rule("an absolute path", rules::absolute_path))
                    .plan_modifier(use_state_for_unknown()),
            )
            .attribute(
                Attribute::string("log_file")
                    .optional()
                    .computed()
                    .description("The runner's log (appended to); by default `runner.log` in the runner's control-store folder when that is local.")
                    .validator(string_rule("an absolute path", rules::absolute_path))
                    .plan_modifier(use_state_for_unknown()),
            )
            .attribute(
                Attribute::map("environment", Type::String)
                    .optional()
                    .description(
                        "Extra environment variables for the runner process, which otherwise inherits Terraform's environment. \
                         Not for secrets: values are stored in state; reference secrets from the pipeline instead.",
                    )
                    .validator(custom("keys must be environment variable names", |request| {
                        let keys = request.value.as_object().map(|map| map.keys().cloned().collect::<Vec<_>>()).unwrap_or_default();
                        keys.iter().try_for_each(|key| rules::env_var_name(key).map_err(|message| format!("{}: {message}", request.path)))
                    })),
            )
            .attribute(
                Attribute::number("pid")
                    .computed()
                    .description("Process id of the running runner (null when stopped).")
                    .plan_modifier(use_state_for_unknown()),
            ),
    )
}

/// The `local` block's settings and the process it started.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalDeployment {
    /// The runner binary.
    pub runner_binary: String,
    /// Where the runner's output goes (appended).
    pub log_file: String,
    /// Extra environment variables for the runner.
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    /// The running process, if one was started.
    #[serde(default)]
    pub process: Option<Process>,
}

/// A started process: its PID and its start time in clock ticks since boot (from
/// `/proc/<pid>/stat`), which together identify it even after the PID is reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Process {
    /// Process id.
    pub pid: i32,
    /// Start time, clock ticks after boot.
    pub start_ticks: u64,
}

/// The binary found next to the provider's own executable, where a release (and a cargo
/// build) puts it.
pub fn default_runner_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let candidate = exe.parent()?.join(RUNNER_BINARY);
    candidate.exists().then_some(candidate)
}

/// The default log file: inside the runner's control-store folder when that is a local folder
/// (so destroying the runner removes it), else under the user's state folder.
pub fn default_log_file(target: &RunnerTarget) -> PathBuf {
    if target.control_store.scheme() == lakestream_spec::store::Scheme::File {
        PathBuf::from(format!(
            "/{}/runners/{}/runner.log",
            target.control_store.prefix(),
            target.runner_id
        ))
    } else {
        let base = std::env::var_os("XDG_STATE_HOME")
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local/state"))
            })
            .unwrap_or_else(std::env::temp_dir);
        base.join("lakestream")
            .join(format!("{}.log", target.runner_id))
    }
}

impl LocalDeployment {
    fn from_record(record: &serde_json::Value) -> Result<Self, DeployError> {
        read_record("local", record)
    }

    fn alive(&self) -> Option<Process> {
        self.process.filter(|process| process.is_alive())
    }

    async fn start(&self, target: &RunnerTarget) -> Result<Process, DeployError> {
        let binary = Path::new(&self.runner_binary);
        if !binary.is_file() {
            return Err(DeployError::new(format!(
                "the runner binary {} does not exist",
                binary.display()
            )));
        }
        let log_path = Path::new(&self.log_file);
        if let Some(folder) = log_path.parent() {
            std::fs::create_dir_all(folder).map_err(|err| {
                DeployError::new(format!(
                    "cannot create the log folder {}: {err}",
                    folder.display()
                ))
            })?;
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_path)
            .map_err(|err| {
                DeployError::new(format!(
                    "cannot open the log file {}: {err}",
                    log_path.display()
                ))
            })?;
        let log_err = log
            .try_clone()
            .map_err(|err| DeployError::new(format!("log file: {err}")))?;
        let mut command = tokio::process::Command::new("setsid");
        command
            .arg(binary)
            .args([
                "run",
                "--control-store",
                target.control_store.url().as_str(),
                "--runner-id",
                &target.runner_id,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err))
            .envs(&self.environment)
            .kill_on_drop(false);
        for variable in PLUGIN_VARIABLES {
            command.env_remove(variable);
        }
        let child = command.spawn().map_err(|err| {
            DeployError::new(format!(
                "cannot start {} through setsid: {err}",
                binary.display()
            ))
        })?;
        let pid = child
            .id()
            .ok_or_else(|| DeployError::new("the runner exited at once"))? as i32;
        // The child is not waited for: it must outlive this provider process, and init reaps
        // it once the provider exits. Until then an exited runner is a zombie, which
        // `is_alive` does not count as running.
        drop(child);
        let start_ticks = Process::read_start_ticks(pid).ok_or_else(|| {
            DeployError::new(format!(
                "the runner (pid {pid}) exited at once; see {}",
                log_path.display()
            ))
        })?;
        tracing::info!(pid, runner = %target.runner_id, "started the runner");
        Ok(Process { pid, start_ticks })
    }
}

impl Process {
    /// Whether this exact process (same PID and start time) still runs (zombies do not).
    pub fn is_alive(&self) -> bool {
        match Self::read_stat(self.pid) {
            Some((state, start_ticks)) => {
                start_ticks == self.start_ticks && state != 'Z' && state != 'X'
            }
            None => false,
        }
    }

    fn read_start_ticks(pid: i32) -> Option<u64> {
        Self::read_stat(pid).map(|(_, ticks)| ticks)
    }

    /// `(state, starttime)` from `/proc/<pid>/stat`. The command name (field 2) may contain
    /// spaces and parentheses, so fields are counted after its closing parenthesis.
    fn read_stat(pid: i32) -> Option<(char, u64)> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let after_name = &stat[stat.rfind(')')? + 1..];
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        // after_name starts at field 3 (state); starttime is field 22.
        let state = fields.first()?.chars().next()?;
        let start_ticks = fields.get(19)?.parse().ok()?;
        Some((state, start_ticks))
    }

    /// SIGTERM, then SIGKILL after `grace` if it is still alive.
    pub async fn stop(&self, grace: Duration) {
        if !self.is_alive() {
            return;
        }
        let _ = kill(Pid::from_raw(self.pid), Signal::SIGTERM);
        let deadline = tokio::time::Instant::now() + grace;
        while self.is_alive() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if self.is_alive() {
            tracing::warn!(
                pid = self.pid,
                "the runner did not stop within the grace period; killing it"
            );
            let _ = kill(Pid::from_raw(self.pid), Signal::SIGKILL);
            while self.is_alive() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// The `local` target with the settings of one `local` block.
pub struct Local {
    /// The settings to apply (the process field is ignored).
    pub settings: LocalDeployment,
}

#[async_trait]
impl Deployment for Local {
    fn kind(&self) -> &'static str {
        "local"
    }

    async fn apply(
        &self,
        target: &RunnerTarget,
        previous: Option<&serde_json::Value>,
    ) -> Result<Applied, DeployError> {
        let previous = previous
            .map(LocalDeployment::from_record)
            .transpose()?
            .unwrap_or_default();
        let settings_changed = previous.runner_binary != self.settings.runner_binary
            || previous.log_file != self.settings.log_file
            || previous.environment != self.settings.environment;
        let mut next = LocalDeployment {
            process: previous.alive(),
            ..self.settings.clone()
        };
        let must_stop = !target.running || target.restart || settings_changed;
        if let Some(process) = next.process.filter(|_| must_stop) {
            process.stop(STOP_GRACE).await;
            next.process = None;
        }
        let started = target.running && next.process.is_none();
        if started {
            next.process = Some(next.start(target).await?);
        }
        Ok(Applied {
            record: serde_json::to_value(&next).expect("records serialise"),
            started,
        })
    }

    async fn observe(&self, record: &serde_json::Value) -> Observation {
        let deployment = match LocalDeployment::from_record(record) {
            Ok(deployment) => deployment,
            Err(err) => {
                return Observation {
                    running: false,
                    reason: err.message,
                };
            }
        };
        match (deployment.process, deployment.alive()) {
            (_, Some(process)) => Observation {
                running: true,
                reason: format!("process {} is running", process.pid),
            },
            (Some(process), None) => Observation {
                running: false,
                reason: format!(
                    "the runner process (pid {}) is not running; see {}",
                    process.pid, deployment.log_file
                ),
            },
            (None, None) => Observation {
                running: false,
                reason: "no runner process was started".into(),
            },
        }
    }

    async fn destroy(&self, record: &serde_json::Value) -> Result<(), DeployError> {
        if let Some(process) = LocalDeployment::from_record(record)?.alive() {
            process.stop(STOP_GRACE).await;
        }
        Ok(())
    }

    async fn failure_detail(&self, record: &serde_json::Value) -> Option<String> {
        let deployment = LocalDeployment::from_record(record).ok()?;
        let log = tokio::fs::read_to_string(&deployment.log_file).await.ok()?;
        let tail: Vec<&str> = log.lines().rev().take(10).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        Some(format!(
            "last lines of {}:\n{}",
            deployment.log_file,
            tail.join("\n")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_changed_start_time_is_not() {
        let pid = std::process::id() as i32;
        let start_ticks = Process::read_start_ticks(pid).unwrap();
        assert!(Process { pid, start_ticks }.is_alive());
        assert!(
            !Process {
                pid,
                start_ticks: start_ticks + 1
            }
            .is_alive(),
            "a recycled pid is not ours"
        );
        assert!(
            !Process {
                pid: i32::MAX,
                start_ticks
            }
            .is_alive()
        );
    }

    #[tokio::test]
    async fn stop_terminates_a_process_and_observe_notices() {
        let child = std::process::Command::new("sleep")
            .arg("60")
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let process = Process {
            pid,
            start_ticks: Process::read_start_ticks(pid).unwrap(),
        };
        let reaper = std::thread::spawn(move || {
            let mut child = child;
            child.wait()
        });
        assert!(process.is_alive());
        process.stop(Duration::from_secs(5)).await;
        reaper.join().unwrap().unwrap();
        assert!(!process.is_alive());
        let record = serde_json::to_value(LocalDeployment {
            process: Some(process),
            log_file: "/tmp/x.log".into(),
            ..Default::default()
        })
        .unwrap();
        let observed = Local {
            settings: LocalDeployment::default(),
        }
        .observe(&record)
        .await;
        assert!(!observed.running);
        assert!(
            observed.reason.contains(&format!("pid {pid}")),
            "{}",
            observed.reason
        );
    }
}
