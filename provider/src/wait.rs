//! Waiting for the runner, within a resource's timeout and Terraform's cancellation.

use std::future::Future;
use std::time::Duration;

use tfplugin::Context;

/// How often a wait looks again.
const POLL: Duration = Duration::from_millis(500);

/// Why a wait ended without its condition.
#[derive(Debug)]
pub enum WaitError<E> {
    /// The timeout passed; carries the last observation's description.
    TimedOut(String),
    /// Terraform asked the provider to stop.
    Cancelled,
    /// The check itself failed for good.
    Failed(E),
}

/// What one look found.
pub enum Check<T, E> {
    /// The condition holds.
    Done(T),
    /// Not yet; the text describes where things stand (for the timeout message).
    Pending(String),
    /// It never will.
    Failed(E),
}

/// Calls `check` every half second until it is done or fails, the timeout passes, or
/// Terraform cancels.
pub async fn until<T, E, F, Fut>(
    context: &Context,
    timeout: Duration,
    mut check: F,
) -> Result<T, WaitError<E>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Check<T, E>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let last = match check().await {
            Check::Done(value) => return Ok(value),
            Check::Failed(error) => return Err(WaitError::Failed(error)),
            Check::Pending(last) => last,
        };
        if tokio::time::Instant::now() >= deadline {
            return Err(WaitError::TimedOut(last));
        }
        tokio::select! {
            () = context.cancelled() => return Err(WaitError::Cancelled),
            () = tokio::time::sleep(POLL) => {}
        }
    }
}
