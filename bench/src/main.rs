//! `lakestream-bench`: the benchmark harness behind `scripts/bench`.
//!
//! It starts a throwaway PostgreSQL (production durability), runs each case a few times with
//! its reference interleaved (`pg_recvlogical`, `COPY`, `terraform_data`), prints a markdown
//! table and writes the same figures as JSON. Nothing here passes or fails on a figure: a
//! missed target is reported, not enforced. The method is described in the README's
//! "Performance" section.
//!
//! `lakestream-bench cleanup --work DIR` stops, by recorded PID, whatever a run under `DIR` left
//! running (`scripts/bench` calls it on exit, also after a failure or Ctrl-C).

mod cases;
mod error;
mod figure;
mod lake;
mod postgres;
mod process;
mod report;
mod runner;
mod terraform;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};
use serde_json::{Value, json};

use cases::{Bench, CASES, Sizes};
use error::{Error, IoContext, Result};
use postgres::Database;
use process::Registry;
use report::Report;

#[derive(Parser)]
#[command(
    name = "lakestream-bench",
    about = "Benchmarks of the Lakestream runner and provider against their references."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the cases and report their figures.
    Run(RunArgs),
    /// Stop every process a run under the work folder left running (by recorded PID).
    Cleanup {
        /// The run's scratch folder.
        #[arg(long)]
        work: PathBuf,
    },
}

#[derive(clap::Args)]
struct RunArgs {
    /// The short run (under 5 minutes) instead of the full one (under 20).
    #[arg(long)]
    quick: bool,
    /// Only the cases whose name contains this (stream, stream_wide, latency, backfill,
    /// big_txn, plan, fleet).
    #[arg(long)]
    only: Option<String>,
    /// Folder with the release binaries `streaming-runner` and `terraform-provider-streaming`.
    #[arg(long)]
    bin_dir: PathBuf,
    /// Scratch folder (emptied first).
    #[arg(long)]
    work: PathBuf,
    /// Where to write the JSON report.
    #[arg(long)]
    out: PathBuf,
    /// Run the runner under this command, e.g. "valgrind --tool=callgrind" (split on spaces),
    /// to profile it inside a case.
    #[arg(long)]
    runner_prefix: Option<String>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Cleanup { work } => {
            for line in process::cleanup(&work).await {
                eprintln!("==> {line}");
            }
            ExitCode::SUCCESS
        }
        Command::Run(args) => {
            let result = run(&args).await;
            // Whatever happened, nothing of this run may keep running.
            for line in process::cleanup(&args.work).await {
                eprintln!("==> {line}");
            }
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("lakestream-bench: {}", error::chain(&error));
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// Runs the selected cases and writes the report.
async fn run(args: &RunArgs) -> Result<()> {
    let started = Instant::now();
    let started_at = time::OffsetDateTime::now_utc();
    let cases: Vec<&str> = CASES
        .iter()
        .copied()
        .filter(|case| args.only.as_deref().is_none_or(|only| case.contains(only)))
        .collect();
    if cases.is_empty() {
        return Err(Error::Failed(format!(
            "no case matches {:?}; cases: {}",
            args.only.as_deref().unwrap_or_default(),
            CASES.join(", ")
        )));
    }
    for binary in ["streaming-runner", "terraform-provider-streaming"] {
        if !args.bin_dir.join(binary).is_file() {
            return Err(Error::Failed(format!(
                "{} is missing: build it with cargo build --release",
                args.bin_dir.join(binary).display()
            )));
        }
    }
    for line in process::cleanup(&args.work).await {
        eprintln!("==> left over from an earlier run: {line}");
    }
    cases::remove(&args.work)?;
    std::fs::create_dir_all(&args.work).context(|| format!("creating {}", args.work.display()))?;
    // Absolute paths: they end up in file:// URLs and Terraform's dev_overrides.
    let work = std::fs::canonicalize(&args.work)
        .context(|| format!("resolving {}", args.work.display()))?;
    let bin_dir = std::fs::canonicalize(&args.bin_dir)
        .context(|| format!("resolving {}", args.bin_dir.display()))?;
    let registry = Registry::new(&work);
    let load_before = load_average();
    let database = Database::start(&registry).await?;
    let sizes = if args.quick {
        Sizes::quick()
    } else {
        Sizes::full()
    };
    let mut bench = Bench {
        sizes,
        bin_dir,
        runner_prefix: args
            .runner_prefix
            .as_deref()
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
        work,
        registry,
        database,
        report: Report::default(),
    };
    for case in &cases {
        eprintln!("==> case {case}");
        let case_started = Instant::now();
        cases::run(case, &mut bench).await?;
        eprintln!(
            "==> case {case} done in {:.0} s",
            case_started.elapsed().as_secs_f64()
        );
    }
    bench.report.finish();

    let table = bench.report.table();
    println!("{table}");
    let missed = bench.report.missed();
    if !missed.is_empty() {
        println!("Targets missed: {}", missed.join(", "));
    }
    let circumstances = json!({
        "mode": if args.quick { "quick" } else { "full" },
        "cases": cases,
        "started_at": started_at
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        "wall_s": started.elapsed().as_secs_f64(),
        "sizes": bench.sizes,
        "runner_prefix": args.runner_prefix,
        "machine": machine(&bench.database, load_before).await,
        "table": table,
    });
    let document = bench.report.to_json(circumstances);
    write_json(&args.out, &document)?;
    eprintln!("==> wrote {}", args.out.display());
    Ok(())
}

/// What the figures depend on besides the code: the machine, its load, the tool versions.
async fn machine(database: &Database, load_before: Value) -> Value {
    let command_line = |program: &str, args: &[&str]| {
        std::process::Command::new(program)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu_model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned());
    let terraform = command_line("terraform", &["version", "-json"])
        .and_then(|text| serde_json::from_str::<Value>(&text).ok())
        .map(|v| v["terraform_version"].clone());
    json!({
        "cpus": std::thread::available_parallelism().map(|n| n.get()).ok(),
        "cpu_model": cpu_model,
        "kernel": std::fs::read_to_string("/proc/sys/kernel/osrelease").ok().map(|s| s.trim().to_owned()),
        "load_average_before": load_before,
        "load_average_after": load_average(),
        "postgres": database.scalar("SHOW server_version").await.ok(),
        "terraform": terraform,
        "git_commit": command_line("git", &["rev-parse", "--short", "HEAD"]),
    })
}

/// `/proc/loadavg`'s 1, 5 and 15-minute averages: the machine is shared, and a busy moment
/// shows here.
fn load_average() -> Value {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let averages: Vec<f64> = text
        .split_whitespace()
        .take(3)
        .filter_map(|v| v.parse().ok())
        .collect();
    json!(averages)
}

/// Writes `document` as pretty JSON, creating the folder.
fn write_json(path: &Path, document: &Value) -> Result<()> {
    if let Some(folder) = path.parent() {
        std::fs::create_dir_all(folder).context(|| format!("creating {}", folder.display()))?;
    }
    let mut text = serde_json::to_string_pretty(document)
        .map_err(|err| Error::Failed(format!("encoding the report: {err}")))?;
    text.push('\n');
    std::fs::write(path, text).context(|| format!("writing {}", path.display()))
}
