//! The runner's lease in the control store: at most one instance of a runner consumes.
//!
//! Expiry is judged by observation, not by comparing clocks: a waiting instance takes the
//! lease over only after the document has stayed unchanged for a whole TTL on its own
//! monotonic clock, so clock skew between machines cannot shorten a lease. Every takeover
//! increments the generation, which the pipeline writes into its checkpoint as the fencing
//! token (see `ARCHITECTURE.md`, "Single consumer").

use std::time::Duration;

use lakestream_control::{RunnerControl, StoreError, WriteMode};
use lakestream_spec::control::Lease;
use object_store::UpdateVersion;
use time::OffsetDateTime;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Why the lease was not held.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// Another instance took the lease over; this one must stop without committing.
    #[error("lost the runner lease to instance {holder} (generation {generation})")]
    Lost {
        /// The new holder.
        holder: String,
        /// Its generation.
        generation: u64,
    },
    /// Waiting was cancelled (shutdown).
    #[error("cancelled while waiting for the runner lease")]
    Cancelled,
    /// The control store failed.
    #[error("runner lease: {0}")]
    Store(#[from] StoreError),
}

/// A held lease.
#[derive(Debug)]
pub struct HeldLease {
    control: RunnerControl,
    lease: Lease,
    version: UpdateVersion,
}

impl HeldLease {
    /// Waits until the lease is free, released, expired or already ours, then takes it.
    /// `on_wait` is called once when this instance has to wait, with the current holder.
    pub async fn acquire(
        control: RunnerControl,
        instance_id: &str,
        ttl: Duration,
        cancel: &CancellationToken,
        mut on_wait: impl FnMut(&Lease),
    ) -> Result<Self, LeaseError> {
        let mut observed: Option<(String, Instant)> = None;
        let mut waited = false;
        loop {
            let current = control.lease().await?;
            let takeover = match &current {
                None => Some((1, WriteMode::Create)),
                Some(doc) if doc.value.holder == instance_id || doc.value.ttl_ms == 0 => Some((
                    doc.value.generation + 1,
                    WriteMode::Replace(doc.version.clone()),
                )),
                Some(doc) => {
                    let tag = doc.version.e_tag.clone().unwrap_or_default();
                    let since = match &observed {
                        Some((seen, since)) if *seen == tag => *since,
                        _ => {
                            let now = Instant::now();
                            observed = Some((tag, now));
                            now
                        }
                    };
                    let lease_ttl = Duration::from_millis(doc.value.ttl_ms);
                    if since.elapsed() >= lease_ttl {
                        Some((
                            doc.value.generation + 1,
                            WriteMode::Replace(doc.version.clone()),
                        ))
                    } else {
                        if !waited {
                            on_wait(&doc.value);
                            waited = true;
                        }
                        None
                    }
                }
            };
            if let Some((generation, mode)) = takeover {
                let lease = Lease {
                    holder: instance_id.to_owned(),
                    generation,
                    renewed_at: OffsetDateTime::now_utc(),
                    ttl_ms: ttl.as_millis() as u64,
                };
                match control.put_lease(&lease, mode).await {
                    Ok(version) => {
                        return Ok(Self {
                            control,
                            lease,
                            version,
                        });
                    }
                    Err(StoreError::Conflict { .. } | StoreError::AlreadyExists { .. }) => {}
                    Err(err) => return Err(err.into()),
                }
            }
            tokio::select! {
                _ = cancel.cancelled() => return Err(LeaseError::Cancelled),
                _ = tokio::time::sleep((ttl / 4).max(Duration::from_millis(100))) => {}
            }
        }
    }

    /// The fencing generation.
    pub fn generation(&self) -> u64 {
        self.lease.generation
    }

    /// Renews the lease; fails with [`LeaseError::Lost`] when another instance took it.
    pub async fn renew(&mut self) -> Result<(), LeaseError> {
        let mut renewed = self.lease.clone();
        renewed.renewed_at = OffsetDateTime::now_utc();
        match self
            .control
            .put_lease(&renewed, WriteMode::Replace(self.version.clone()))
            .await
        {
            Ok(version) => {
                self.lease = renewed;
                self.version = version;
                Ok(())
            }
            Err(StoreError::Conflict { .. }) => Err(self.lost().await),
            Err(err) => Err(err.into()),
        }
    }

    /// Gives the lease up on a clean shutdown (TTL 0), so a successor need not wait.
    pub async fn release(self) -> Result<(), LeaseError> {
        let mut released = self.lease.clone();
        released.ttl_ms = 0;
        match self
            .control
            .put_lease(&released, WriteMode::Replace(self.version))
            .await
        {
            Ok(_) | Err(StoreError::Conflict { .. }) => Ok(()),
            Err(err) => Err(err.into()),
        }
    }

    async fn lost(&self) -> LeaseError {
        match self.control.lease().await {
            Ok(Some(doc)) => LeaseError::Lost {
                holder: doc.value.holder,
                generation: doc.value.generation,
            },
            _ => LeaseError::Lost {
                holder: "unknown".into(),
                generation: 0,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lakestream_control::Store;
    use lakestream_spec::StoreUrl;

    fn control(dir: &tempfile::TempDir) -> RunnerControl {
        let url = StoreUrl::parse(&format!("file://{}", dir.path().display())).unwrap();
        RunnerControl::new(Store::open(&url).unwrap(), "r1")
    }

    #[tokio::test(start_paused = true)]
    async fn a_second_instance_waits_for_expiry_and_fences_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let cancel = CancellationToken::new();
        let ttl = Duration::from_secs(3);
        let mut first = HeldLease::acquire(control(&dir), "a", ttl, &cancel, |_| {})
            .await
            .unwrap();
        assert_eq!(first.generation(), 1);
        first.renew().await.unwrap();

        let started = Instant::now();
        let mut waited_for = None;
        let second = HeldLease::acquire(control(&dir), "b", ttl, &cancel, |lease| {
            waited_for = Some(lease.holder.clone())
        })
        .await
        .unwrap();
        assert!(
            started.elapsed() >= ttl,
            "took over only after a whole TTL without renewals"
        );
        assert_eq!(waited_for.as_deref(), Some("a"));
        assert_eq!(second.generation(), 2);
        match first.renew().await {
            Err(LeaseError::Lost { holder, generation }) => {
                assert_eq!((holder.as_str(), generation), ("b", 2))
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_released_lease_is_taken_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let cancel = CancellationToken::new();
        let first =
            HeldLease::acquire(control(&dir), "a", Duration::from_secs(30), &cancel, |_| {})
                .await
                .unwrap();
        first.release().await.unwrap();
        let started = Instant::now();
        let second =
            HeldLease::acquire(control(&dir), "b", Duration::from_secs(30), &cancel, |_| {
                panic!("no wait")
            })
            .await
            .unwrap();
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(second.generation(), 2);
    }
}
