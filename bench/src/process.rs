//! Processes the benchmark starts, found again by PID (never by name): a registry file in the
//! work folder lists every server and runner with its start time, so `lakestream-bench cleanup`
//! (which `scripts/bench` runs on exit, also after a failure or Ctrl-C) stops exactly those, and
//! a recycled PID is never mistaken for one of them. Runners that Terraform started are found
//! through the `runner.json` records of the control stores under the work folder.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::error::{IoContext, Result};

/// The registry's file name inside the work folder.
const REGISTRY_FILE: &str = "processes";

/// A process identified by PID and start time (clock ticks after boot, `/proc/<pid>/stat`
/// field 22), which together survive PID reuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tracked {
    /// Process id.
    pub pid: i32,
    /// Start time in clock ticks after boot.
    pub start_ticks: u64,
}

impl Tracked {
    /// The running process `pid`, if it runs.
    pub fn of(pid: u32) -> Option<Self> {
        let pid = i32::try_from(pid).ok()?;
        let (_, start_ticks) = stat(pid)?;
        Some(Self { pid, start_ticks })
    }

    /// Whether this exact process still runs (a zombie does not).
    pub fn is_alive(&self) -> bool {
        stat(self.pid)
            .is_some_and(|(state, ticks)| ticks == self.start_ticks && state != 'Z' && state != 'X')
    }

    /// Peak resident set size so far (`VmHWM`), in MiB.
    pub fn peak_rss_mib(&self) -> Option<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).ok()?;
        let kib: f64 = status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some(kib / 1024.0)
    }

    /// Sends `signal` if this exact process still runs.
    pub fn signal(&self, signal: Signal) {
        if self.is_alive() {
            let _ = kill(Pid::from_raw(self.pid), signal);
        }
    }

    /// `signal`, then SIGKILL if the process is still alive after `grace`; returns whether it
    /// ended within the grace period.
    pub async fn stop(&self, signal: Signal, grace: Duration) -> bool {
        self.signal(signal);
        let deadline = tokio::time::Instant::now() + grace;
        while self.is_alive() {
            if tokio::time::Instant::now() >= deadline {
                self.signal(Signal::SIGKILL);
                while self.is_alive() {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }
}

/// `(state, start ticks)` of `pid` from `/proc/<pid>/stat`. The command name may contain spaces
/// and parentheses, so fields are counted after its closing parenthesis.
fn stat(pid: i32) -> Option<(char, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
    Some((
        fields.first()?.chars().next()?,
        fields.get(19)?.parse().ok()?,
    ))
}

/// The registry of processes started by a run, appended to as they start.
#[derive(Debug, Clone)]
pub struct Registry {
    /// The registry file.
    path: PathBuf,
}

impl Registry {
    /// The registry of the work folder `work`.
    pub fn new(work: &Path) -> Self {
        Self {
            path: work.join(REGISTRY_FILE),
        }
    }

    /// Records `process` (described as `what`, e.g. `postgres`), so cleanup stops it.
    pub fn record(&self, process: Tracked, what: &str) -> Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .context(|| format!("opening {}", self.path.display()))?;
        writeln!(file, "{} {} {what}", process.pid, process.start_ticks)
            .context(|| format!("writing {}", self.path.display()))
    }

    /// Every recorded process with its description.
    fn entries(&self) -> Vec<(Tracked, String)> {
        std::fs::read_to_string(&self.path)
            .unwrap_or_default()
            .lines()
            .filter_map(|line| {
                let mut fields = line.splitn(3, ' ');
                let pid = fields.next()?.parse().ok()?;
                let start_ticks = fields.next()?.parse().ok()?;
                let what = fields.next().unwrap_or_default().to_owned();
                Some((Tracked { pid, start_ticks }, what))
            })
            .collect()
    }
}

/// Runner processes recorded in the `runner.json` files of every control store under `work`
/// (the provider's local deployment writes the PID and start time there).
pub fn deployed_runners(work: &Path) -> Vec<Tracked> {
    let mut found = Vec::new();
    let mut folders = vec![work.to_path_buf()];
    while let Some(folder) = folders.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                folders.push(path);
            } else if path.file_name().is_some_and(|n| n == "runner.json")
                && let Some(process) = recorded_process(&path)
            {
                found.push(process);
            }
        }
    }
    found
}

/// The process a `runner.json` of a local deployment records.
fn recorded_process(path: &Path) -> Option<Tracked> {
    let record: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    let process = &record["deployment"]["settings"]["process"];
    Some(Tracked {
        pid: i32::try_from(process["pid"].as_i64()?).ok()?,
        start_ticks: process["start_ticks"].as_u64()?,
    })
}

/// Stops every process a run under `work` started that still runs: runners first (SIGTERM,
/// so they commit and leave their slots), then the database (SIGQUIT, an immediate shutdown:
/// its data is thrown away). Returns a line per process stopped.
pub async fn cleanup(work: &Path) -> Vec<String> {
    let mut stopped = Vec::new();
    let registry = Registry::new(work);
    let mut processes: Vec<(Tracked, String)> = deployed_runners(work)
        .into_iter()
        .map(|p| (p, "runner started by terraform".to_owned()))
        .collect();
    processes.extend(registry.entries());
    // Servers last: runners connected to them end more cleanly while they still run.
    processes.sort_by_key(|(_, what)| what == "postgres");
    for (process, what) in processes {
        if !process.is_alive() {
            continue;
        }
        let signal = if what == "postgres" {
            Signal::SIGQUIT
        } else {
            Signal::SIGTERM
        };
        let clean = process.stop(signal, Duration::from_secs(20)).await;
        stopped.push(format!(
            "stopped {what} (pid {}){}",
            process.pid,
            if clean { "" } else { " with SIGKILL" }
        ));
    }
    stopped
}
