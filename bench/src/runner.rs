//! The runner under test: `streaming-runner run --spec …` in standalone mode, one process per
//! repetition, watched through the files it writes (its checkpoint and status) and its
//! `/proc` entry (peak RSS).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde_json::{Value, json};

use crate::error::{Error, IoContext, Result};
use crate::postgres::{Database, PASSWORD_VARIABLE};
use crate::process::{Registry, Tracked};

/// How often the checkpoint and status files are read while waiting.
const POLL: Duration = Duration::from_millis(10);
/// How long a runner gets to commit and exit after SIGTERM.
const STOP_GRACE: Duration = Duration::from_secs(60);

/// What one runner streams and where it writes.
#[derive(Debug, Clone)]
pub struct Pipeline {
    /// The pipeline id (names files, the checkpoint and the status).
    pub id: String,
    /// Tables, as `schema.table`.
    pub tables: Vec<String>,
    /// The replication slot (created by the case, or by the runner when missing).
    pub slot: String,
    /// The publication (created by the case).
    pub publication: String,
    /// The lake folder.
    pub lake: PathBuf,
    /// Longest time a change waits in the runner's buffer.
    pub flush_interval: &'static str,
    /// Copy the tables' rows before streaming.
    pub backfill: bool,
}

impl Pipeline {
    /// The spec's JSON, as `lakestream_spec::PipelineSpec` reads it. Everything not named here
    /// keeps the product's default (Parquet, `target_file_size` 32 MiB).
    fn spec(&self, database: &Database) -> Value {
        json!({
            "name": "bench",
            "source": {"postgres": {
                "host": "127.0.0.1",
                "port": database.port(),
                "database": database.name(),
                "user": database.user(),
                "password": {"type": "env", "name": PASSWORD_VARIABLE},
                "sslmode": "disable",
                "tables": self.tables,
                "slot": self.slot,
                "publication": self.publication,
                "create_publication": false,
            }},
            "target": {
                "uri": format!("file://{}", self.lake.display()),
                "format": "parquet",
                "flush_interval": self.flush_interval,
            },
        })
    }
}

/// The checkpoint fields the cases wait on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// Rows committed to the lake.
    pub rows_delivered: u64,
    /// The highest backfill generation completed.
    pub backfill_done: u64,
}

/// A running `streaming-runner`.
pub struct Runner {
    /// The process (killed if the handle is dropped without [`Runner::stop`]).
    child: tokio::process::Child,
    /// The process as `/proc` knows it.
    process: Tracked,
    /// The standalone checkpoint file.
    checkpoint: PathBuf,
    /// The standalone status file.
    status: PathBuf,
    /// The runner's stderr.
    log: PathBuf,
    /// When it was started.
    pub started: Instant,
}

impl Runner {
    /// Writes the spec beside the lake and starts the runner on it. `prefix` is a command the
    /// runner runs under (a profiler), empty normally.
    pub async fn start(
        binary: &Path,
        prefix: &[String],
        database: &Database,
        pipeline: &Pipeline,
        registry: &Registry,
    ) -> Result<Self> {
        let folder = pipeline
            .lake
            .parent()
            .ok_or_else(|| Error::Failed("the lake folder has no parent".into()))?;
        std::fs::create_dir_all(folder).context(|| format!("creating {}", folder.display()))?;
        let spec_path = folder.join(format!("{}.spec.json", pipeline.id));
        let spec = serde_json::to_vec_pretty(&pipeline.spec(database))
            .map_err(|err| Error::Failed(format!("encoding the spec: {err}")))?;
        std::fs::write(&spec_path, spec).context(|| format!("writing {}", spec_path.display()))?;
        let log = folder.join(format!("{}.log", pipeline.id));
        let log_file =
            std::fs::File::create(&log).context(|| format!("creating {}", log.display()))?;

        let mut command = match prefix.split_first() {
            Some((program, args)) => {
                let mut command = tokio::process::Command::new(program);
                command.args(args).arg(binary);
                command
            }
            None => tokio::process::Command::new(binary),
        };
        command
            .args(["run", "--spec"])
            .arg(&spec_path)
            .args(["--pipeline-id", &pipeline.id]);
        if !pipeline.backfill {
            command.arg("--skip-backfill");
        }
        let started = Instant::now();
        let child = command
            .env(PASSWORD_VARIABLE, database.password())
            .env("LAKESTREAM_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log_file))
            .kill_on_drop(true)
            .spawn()
            .context(|| format!("starting {}", binary.display()))?;
        let process = child
            .id()
            .and_then(Tracked::of)
            .ok_or_else(|| Error::Failed("the runner exited at once".into()))?;
        registry.record(process, "runner")?;
        let meta = pipeline.lake.join("_lakestream");
        Ok(Self {
            child,
            process,
            checkpoint: meta.join(format!("checkpoints/{}.json", pipeline.id)),
            status: meta.join(format!("status/{}.json", pipeline.id)),
            log,
            started,
        })
    }

    /// The checkpoint as last committed (zero before the first commit).
    pub fn progress(&self) -> Progress {
        let document = read_json(&self.checkpoint);
        Progress {
            rows_delivered: document["rows_delivered"].as_u64().unwrap_or(0),
            backfill_done: document["backfill_done"].as_u64().unwrap_or(0),
        }
    }

    /// Waits until `done` holds for the checkpoint; returns the instant it was seen. Fails
    /// (with the runner's log) when the runner exits or `timeout` passes.
    pub async fn wait_for(
        &mut self,
        what: &str,
        timeout: Duration,
        done: impl Fn(Progress) -> bool,
    ) -> Result<Instant> {
        let deadline = Instant::now() + timeout;
        loop {
            if done(self.progress()) {
                return Ok(Instant::now());
            }
            self.check_running(what, deadline)?;
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until the runner reports the `streaming` phase in its status file.
    pub async fn wait_streaming(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        while read_json(&self.status)["phase"] != "streaming" {
            self.check_running("the streaming phase", deadline)?;
            tokio::time::sleep(POLL).await;
        }
        Ok(())
    }

    /// Fails if the runner exited or `deadline` passed while waiting for `what`.
    fn check_running(&mut self, what: &str, deadline: Instant) -> Result<()> {
        if let Ok(Some(status)) = self.child.try_wait() {
            return Err(Error::Failed(format!(
                "the runner exited ({status}) before {what}; its log:\n{}",
                self.log_tail()
            )));
        }
        if Instant::now() >= deadline {
            return Err(Error::Failed(format!(
                "timed out waiting for {what}; checkpoint {:?}; runner log:\n{}",
                self.progress(),
                self.log_tail()
            )));
        }
        Ok(())
    }

    /// Peak RSS so far, in MiB.
    pub fn peak_rss_mib(&self) -> Result<f64> {
        self.process
            .peak_rss_mib()
            .ok_or_else(|| Error::Failed("the runner's /proc entry is gone".into()))
    }

    /// SIGTERM and a clean exit (the runner commits what it buffered); fails if it needed
    /// SIGKILL or exited with an error.
    pub async fn stop(mut self) -> Result<()> {
        let clean = self.process.stop(Signal::SIGTERM, STOP_GRACE).await;
        let status = self
            .child
            .wait()
            .await
            .context(|| "waiting for the runner".to_owned())?;
        if !clean || !status.success() {
            return Err(Error::Failed(format!(
                "the runner did not stop cleanly ({status}); its log:\n{}",
                self.log_tail()
            )));
        }
        Ok(())
    }

    /// The last lines of the runner's log.
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

/// A JSON document, or `null` while it does not exist yet (or is being replaced).
fn read_json(path: &Path) -> Value {
    std::fs::read(path)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or(Value::Null)
}
