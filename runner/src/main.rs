//! `streaming-runner`: the Lakestream CDC runner.
//!
//! Exit codes: 0 stopped cleanly; 1 the pipeline failed for good (crash loop in standalone
//! mode) or an unexpected error; 2 invalid arguments or spec; 3 the runner or its control
//! store cannot be found; 4 another instance took over (lease lost or fenced out).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use lakestream_control::{RunnerControl, Store, WriteMode};
use lakestream_spec::control::Phase;
use lakestream_spec::{PipelineSpec, StoreUrl, rules};
use streaming_runner::control::{Supervisor, SupervisorError};
use streaming_runner::metrics::{self, Published};
use streaming_runner::pipeline::launch::{self, Launch};
use streaming_runner::pipeline::worker::WorkerEnd;
use streaming_runner::pipeline::{Fencing, StatusBoard};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(
    name = "streaming-runner",
    version,
    about = "Lakestream CDC runner: PostgreSQL changes into a data lake, exactly once."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a pipeline: standalone from a spec file, or deployed, following a control store.
    Run(RunArgs),
    /// Check a pipeline spec with the same rules as the Terraform provider, then exit.
    Validate {
        /// The pipeline spec (JSON).
        #[arg(long, env = "LAKESTREAM_SPEC")]
        spec: PathBuf,
    },
}

#[derive(clap::Args)]
struct RunArgs {
    /// Standalone: the pipeline spec (JSON) to run.
    #[arg(long, env = "LAKESTREAM_SPEC", conflicts_with_all = ["control_store", "runner_id"])]
    spec: Option<PathBuf>,
    /// Deployed: the control store URL (file://, s3://, az://, abfss://).
    #[arg(long, env = "LAKESTREAM_CONTROL_STORE", requires = "runner_id")]
    control_store: Option<String>,
    /// Deployed: this runner's id in the control store.
    #[arg(long, env = "LAKESTREAM_RUNNER_ID", requires = "control_store")]
    runner_id: Option<String>,
    /// Standalone: the pipeline id (names files and the checkpoint); default derived from the name.
    #[arg(long, env = "LAKESTREAM_PIPELINE_ID")]
    pipeline_id: Option<String>,
    /// Standalone: where the checkpoint and status live; default `<target uri>/_lakestream`.
    #[arg(long, env = "LAKESTREAM_CHECKPOINT_STORE")]
    checkpoint_store: Option<String>,
    /// Standalone: stream from the slot's position without copying existing rows first.
    #[arg(long)]
    skip_backfill: bool,
    /// Serve Prometheus `/metrics` and `/healthz` on this address.
    #[arg(long, env = "LAKESTREAM_METRICS_ADDR")]
    metrics_addr: Option<SocketAddr>,
}

fn main() -> ExitCode {
    tune_malloc();
    let cli = Cli::parse();
    init_logging();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match cli.command {
        Command::Validate { spec } => match load_spec(&spec) {
            Ok(_) => {
                println!("{}: valid", spec.display());
                ExitCode::SUCCESS
            }
            Err(message) => fail(2, &message),
        },
        Command::Run(args) => runtime.block_on(run(args)),
    }
}

async fn run(args: RunArgs) -> ExitCode {
    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signal(shutdown.clone()));
    let published = Published::default();
    if let Some(address) = args.metrics_addr
        && let Err(err) = metrics::serve(address, published.clone()).await
    {
        return fail(2, &format!("cannot serve metrics on {address}: {err}"));
    }
    match (&args.spec, &args.control_store, &args.runner_id) {
        (Some(spec), _, _) => run_standalone(spec, &args, published, shutdown).await,
        (None, Some(store), Some(runner_id)) => {
            run_deployed(store, runner_id, published, shutdown).await
        }
        _ => fail(
            2,
            "give --spec FILE (standalone) or --control-store URL --runner-id ID (deployed)",
        ),
    }
}

async fn run_deployed(
    store: &str,
    runner_id: &str,
    published: Published,
    shutdown: CancellationToken,
) -> ExitCode {
    let url = match StoreUrl::parse(store) {
        Ok(url) => url,
        Err(message) => return fail(2, &format!("--control-store: {message}")),
    };
    if let Err(message) = rules::object_id(runner_id) {
        return fail(2, &format!("--runner-id: {message}"));
    }
    let control = match Store::open(&url) {
        Ok(store) => RunnerControl::new(store, runner_id),
        Err(err) => return fail(3, &err.to_string()),
    };
    let supervisor = match Supervisor::new(control, published).await {
        Ok(supervisor) => supervisor,
        Err(err) => return fail(3, &err.to_string()),
    };
    match supervisor.run(shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err @ (SupervisorError::Lease(_) | SupervisorError::Fenced(_))) => {
            fail(4, &err.to_string())
        }
        Err(err) => fail(1, &err.to_string()),
    }
}

async fn run_standalone(
    spec_path: &PathBuf,
    args: &RunArgs,
    published: Published,
    shutdown: CancellationToken,
) -> ExitCode {
    let spec = match load_spec(spec_path) {
        Ok(spec) => spec,
        Err(message) => return fail(2, &message),
    };
    let pipeline_id = args
        .pipeline_id
        .clone()
        .unwrap_or_else(|| rules::slug(&spec.name));
    if let Err(message) = rules::object_id(&pipeline_id) {
        return fail(2, &format!("--pipeline-id: {message}"));
    }
    let checkpoint_url = match &args.checkpoint_store {
        Some(url) => StoreUrl::parse(url).map_err(|m| format!("--checkpoint-store: {m}")),
        None => spec.target.store_url().map(|lake| lake.join("_lakestream")),
    };
    let store = match checkpoint_url.map(|url| Store::open(&url).map_err(|err| err.to_string())) {
        Ok(Ok(store)) => store,
        Ok(Err(message)) | Err(message) => return fail(2, &message),
    };
    let board = StatusBoard::new(&pipeline_id, 0);
    published.set(Some(board.clone()));
    let cancel = shutdown.child_token();
    let launch = Launch {
        pipeline_id: pipeline_id.clone(),
        spec,
        checkpoint_store: store.clone(),
        checkpoint_path: format!("checkpoints/{pipeline_id}.json"),
        fencing: Fencing::Takeover,
        backfill_generation: u64::from(!args.skip_backfill),
    };
    let mut task = launch::spawn(launch, board.clone(), cancel.clone());
    // The status file is written once the source started: a pipeline that cannot even
    // connect leaves nothing behind (its error goes to stderr and the exit code).
    let status_path = format!("status/{pipeline_id}.json");
    let mut started = false;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let code = loop {
        tokio::select! {
            end = &mut task => break match end {
                Ok(WorkerEnd::Cancelled) => ExitCode::SUCCESS,
                Ok(WorkerEnd::Fenced(err)) => fail(4, &err.to_string()),
                Err(err) => fail(1, &format!("pipeline task failed: {err}")),
            },
            _ = tick.tick() => {
                let status = board.snapshot();
                started |= matches!(status.phase, Phase::Backfilling | Phase::Streaming);
                if started && let Err(err) = store.write_json(&status_path, &status, WriteMode::Overwrite).await {
                    tracing::warn!(error = %err, "writing the status file failed");
                }
                if status.phase == Phase::CrashLoop {
                    cancel.cancel();
                    let _ = (&mut task).await;
                    break fail(1, status.last_error.as_deref().unwrap_or("the pipeline failed too many times in a row"));
                }
            }
        }
    };
    if started {
        let _ = store
            .write_json(&status_path, &board.snapshot(), WriteMode::Overwrite)
            .await;
    }
    code
}

fn load_spec(path: &PathBuf) -> Result<PipelineSpec, String> {
    let text = std::fs::read_to_string(path).map_err(|err| format!("{}: {err}", path.display()))?;
    PipelineSpec::from_json(&text).map_err(|message| format!("{}: {message}", path.display()))
}

async fn cancel_on_signal(shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    tracing::info!("shutting down: committing what is buffered");
    shutdown.cancel();
}

fn fail(code: u8, message: &str) -> ExitCode {
    eprintln!("streaming-runner: {message}");
    ExitCode::from(code)
}

/// Fixes glibc's mmap threshold at 1 MiB and keeps one heap arena, so memory freed after a
/// flush goes back to the system instead of staying resident.
///
/// Larger allocations get their own memory mapping, returned to the system when freed. By
/// default glibc raises the threshold to the size of the largest mapped block freed so far (up
/// to 32 MiB), so after the first flush the flush-sized buffers (Arrow builders, encoded files:
/// megabytes each) come from the heap arenas of whichever thread encodes, where freed space
/// stays resident and fragments. `scripts/bench`: a 2-million-row transaction peaked at
/// 124–152 MiB before, 68–78 MiB after, with the same throughput.
///
/// The smaller allocations of encoding (Parquet pages and dictionaries, up to a megabyte each)
/// are made on the blocking threads while the source fills the next buffer on a runtime
/// thread; with an arena per thread (glibc's default allows eight per core) each arena keeps
/// its own freed, fragmented space. One arena shares it: `scripts/bench --only stream_wide`
/// peaked at 80–99 MiB with per-thread arenas, 66–75 MiB with one, at the same rate.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn tune_malloc() {
    const MMAP_THRESHOLD: libc::c_int = 1 << 20;
    // SAFETY: mallopt only sets allocator parameters; it is called first thing in main,
    // before any other thread exists. A refusal (return value 0) leaves glibc's default.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// Other allocators manage their own thresholds and arenas.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_malloc() {}

/// Logs to stderr; `LAKESTREAM_LOG` (or `RUST_LOG`) sets the filter (default `info`) and
/// `LAKESTREAM_LOG_FORMAT=json` switches to JSON lines for log collectors.
fn init_logging() {
    let filter = std::env::var("LAKESTREAM_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info".to_owned());
    let filter = tracing_subscriber::EnvFilter::try_new(&filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::env::var("LAKESTREAM_LOG_FORMAT").as_deref() == Ok("json") {
        builder.json().init();
    } else {
        builder.init();
    }
}
