//! The benchmark cases, one module each, run in [`CASES`] order against one [`Bench`].
//!
//! A case runs its repetitions, interleaving the runner (or provider) with its reference inside
//! each repetition (alternating which goes first), so a slow moment of the shared machine hits
//! both sides; it then adds its figures to the report. Adding a case is a module, a line in
//! [`CASES`] and one in [`run`]; its keys go into [`crate::report::KEYS`].

mod backfill;
mod big_txn;
mod fleet;
mod latency;
mod plan;
mod stream;
mod tables;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{IoContext, Result};
use crate::postgres::Database;
use crate::process::Registry;
use crate::report::Report;
use crate::runner::{Pipeline, Runner};

/// Every case, in run order.
pub const CASES: &[&str] = &[
    "stream",
    "stream_wide",
    "latency",
    "backfill",
    "big_txn",
    "plan",
    "fleet",
];

/// Runs the case `name`.
pub async fn run(name: &str, bench: &mut Bench) -> Result<()> {
    match name {
        "stream" => stream::run(bench, tables::Shape::Narrow).await,
        "stream_wide" => stream::run(bench, tables::Shape::Wide).await,
        "latency" => latency::run(bench).await,
        "backfill" => backfill::run(bench).await,
        "big_txn" => big_txn::run(bench).await,
        "plan" => plan::run(bench).await,
        "fleet" => fleet::run(bench).await,
        other => unreachable!("{other} is not in CASES"),
    }
}

/// How much each case does: `--quick` (under 5 minutes) or the full run (under 20).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Sizes {
    /// Repetitions of the throughput cases (stream, wide stream, backfill) and of the plan.
    pub repetitions: usize,
    /// Rows of the narrow stream case.
    pub stream_rows: u64,
    /// Rows of the wide stream case.
    pub wide_rows: u64,
    /// Repetitions of the latency case.
    pub latency_runs: usize,
    /// Seconds of steady writing per latency repetition.
    pub latency_seconds: u64,
    /// Rows per second the latency case writes.
    pub latency_rate: u64,
    /// Rows of the backfill table.
    pub backfill_rows: u64,
    /// Rows of the big transaction.
    pub big_txn_rows: u64,
    /// Repetitions of the big transaction.
    pub big_txn_runs: usize,
    /// Runners (and as many pipelines) of the plan case.
    pub plan_runners: usize,
    /// Applies of the Fargate fleet.
    pub fleet_repetitions: usize,
}

impl Sizes {
    /// The sizes of a `--quick` run.
    pub fn quick() -> Self {
        Self {
            repetitions: 3,
            stream_rows: 300_000,
            // Fewer rows and the runner's fixed costs (process start, the last flush waiting
            // for its interval) dominate: at 60,000 the ratio was 0.55, at 200,000 0.82.
            wide_rows: 150_000,
            latency_runs: 1,
            latency_seconds: 20,
            latency_rate: 5_000,
            backfill_rows: 1_000_000,
            big_txn_rows: 2_000_000,
            big_txn_runs: 1,
            plan_runners: 100,
            fleet_repetitions: 1,
        }
    }

    /// The sizes of a full run.
    pub fn full() -> Self {
        Self {
            repetitions: 5,
            stream_rows: 1_000_000,
            wide_rows: 200_000,
            latency_runs: 3,
            latency_seconds: 40,
            latency_rate: 5_000,
            backfill_rows: 3_000_000,
            big_txn_rows: 2_000_000,
            big_txn_runs: 2,
            plan_runners: 100,
            fleet_repetitions: 3,
        }
    }
}

/// Everything the cases share.
pub struct Bench {
    /// How much to do.
    pub sizes: Sizes,
    /// The folder with `streaming-runner` and `terraform-provider-streaming`.
    pub bin_dir: PathBuf,
    /// A command the runner runs under (a profiler), empty normally.
    pub runner_prefix: Vec<String>,
    /// Scratch folder of this run.
    pub work: PathBuf,
    /// Processes to clean up.
    pub registry: Registry,
    /// The database.
    pub database: Database,
    /// What was found.
    pub report: Report,
}

impl Bench {
    /// A fresh, empty scratch folder for `case`.
    pub fn case_dir(&self, case: &str) -> Result<PathBuf> {
        let dir = self.work.join(case);
        remove(&dir)?;
        std::fs::create_dir_all(&dir).context(|| format!("creating {}", dir.display()))?;
        Ok(dir)
    }

    /// Starts the runner on `pipeline`.
    pub async fn start_runner(&self, pipeline: &Pipeline) -> Result<Runner> {
        Runner::start(
            &self.bin_dir.join("streaming-runner"),
            &self.runner_prefix,
            &self.database,
            pipeline,
            &self.registry,
        )
        .await
    }

    /// `timeout` for a normal run, stretched when the runner runs under a profiler (callgrind
    /// runs it some fifty times slower).
    pub fn timeout(&self, timeout: Duration) -> Duration {
        if self.runner_prefix.is_empty() {
            timeout
        } else {
            timeout * 50
        }
    }
}

/// Removes a file or folder if it exists.
pub fn remove(path: &Path) -> Result<()> {
    let result = if path.is_dir() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    };
    match result {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
            Err(err).context(|| format!("removing {}", path.display()))
        }
        _ => Ok(()),
    }
}

/// Which side of a repetition runs first: the reference on even repetitions, the runner on
/// odd ones.
pub fn reference_first(repetition: usize) -> bool {
    repetition.is_multiple_of(2)
}
