//! Retries around pipeline attempts: exponential backoff, and after too many failures in a
//! row, `crash_loop`: no more retries until the configuration or the restart trigger changes
//! (the supervisor then starts a fresh worker).

use std::future::Future;
use std::time::Duration;

use lakestream_spec::control::Phase;
use lakestream_spec::error_chain;
use tokio_util::sync::CancellationToken;

use super::{Ended, PipelineError, StatusBoard};

/// First retry delay; doubles per failure.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// Longest retry delay.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// How a worker ended.
#[derive(Debug)]
pub enum WorkerEnd {
    /// Cancelled (pause, new version, shutdown).
    Cancelled,
    /// A newer instance owns the pipeline; this runner must stop.
    Fenced(PipelineError),
}

/// Runs `attempt` until it is cancelled, retrying failures with backoff; after
/// `max_failures` failures in a row reports `crash_loop` and waits for cancellation. An
/// attempt that commits anything clears the failure count (through the status board).
pub async fn run<F, Fut>(
    mut attempt: F,
    max_failures: u32,
    status: StatusBoard,
    cancel: CancellationToken,
) -> WorkerEnd
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Ended, PipelineError>>,
{
    loop {
        let error = match attempt().await {
            Ok(Ended::Cancelled) => return WorkerEnd::Cancelled,
            Err(error) if error.is_fenced() => {
                status.record_failure(&error.to_string());
                return WorkerEnd::Fenced(error);
            }
            Err(error) => error,
        };
        if cancel.is_cancelled() {
            return WorkerEnd::Cancelled;
        }
        let message = error_chain(&error);
        let failures = status.record_failure(&message);
        if failures >= max_failures {
            tracing::error!(failures, error = %message, "pipeline failed too many times in a row; crash_loop until the configuration or restart_trigger changes");
            status.set_phase(Phase::CrashLoop);
            cancel.cancelled().await;
            return WorkerEnd::Cancelled;
        }
        let delay = backoff(failures);
        tracing::warn!(failures, retry_in = ?delay, error = %message, "pipeline failed; retrying");
        status.set_phase(Phase::Failed);
        tokio::select! {
            _ = cancel.cancelled() => return WorkerEnd::Cancelled,
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

/// The delay before retry number `failures` (1-based): 1 s, 2 s, 4 s … at most a minute,
/// with up to 20 % jitter so a fleet does not retry in step.
fn backoff(failures: u32) -> Duration {
    let base = FIRST_BACKOFF
        .saturating_mul(1u32 << failures.saturating_sub(1).min(16))
        .min(MAX_BACKOFF);
    let jitter = rand::random::<f64>() * 0.2;
    base.mul_f64(1.0 + jitter).min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test(start_paused = true)]
    async fn enters_crash_loop_after_the_limit_and_stays_until_cancelled() {
        let status = StatusBoard::new("p", 1);
        let cancel = CancellationToken::new();
        let calls = Arc::new(AtomicU32::new(0));
        let counter = calls.clone();
        let worker = tokio::spawn(run(
            move || {
                counter.fetch_add(1, Ordering::SeqCst);
                async { Err(PipelineError::Setup("database unreachable".into())) }
            },
            3,
            status.clone(),
            cancel.clone(),
        ));
        tokio::time::sleep(Duration::from_secs(600)).await;
        assert_eq!(
            calls.load(Ordering::SeqCst),
            3,
            "no retries once in crash_loop"
        );
        let snapshot = status.snapshot();
        assert_eq!(
            (snapshot.phase, snapshot.consecutive_failures),
            (Phase::CrashLoop, 3)
        );
        assert_eq!(snapshot.last_error.as_deref(), Some("database unreachable"));
        cancel.cancel();
        assert!(matches!(worker.await.unwrap(), WorkerEnd::Cancelled));
    }

    #[test]
    fn backoff_doubles_up_to_a_minute() {
        let secs = |n| backoff(n).as_secs_f64();
        assert!((1.0..=1.2).contains(&secs(1)));
        assert!((4.0..=4.8).contains(&secs(3)));
        assert!((60.0..=60.0).contains(&secs(30)));
    }
}
