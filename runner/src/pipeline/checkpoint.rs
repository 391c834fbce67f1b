//! The pipeline's checkpoint: what is durably in the lake, written only by conditional puts.
//!
//! Every write is conditional on the version this instance last wrote, and carries its fencing
//! generation. An instance whose write is refused was overtaken by a newer one and must stop
//! without writing anything more (see `ARCHITECTURE.md`, "Single consumer").

use lakestream_control::{Store, StoreError, WriteMode};
use lakestream_spec::control::Checkpoint;
use object_store::UpdateVersion;

/// Why the checkpoint could not be written.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// A newer instance owns the pipeline now.
    #[error(
        "fenced out: checkpoint {path} now belongs to fencing generation {theirs} (this instance has {ours})"
    )]
    Fenced {
        /// The checkpoint.
        path: String,
        /// Its owner's generation.
        theirs: u64,
        /// This instance's generation.
        ours: u64,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Where the fencing generation of a new owner comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fencing {
    /// The runner lease's generation (deployed mode).
    Lease(u64),
    /// One more than the checkpoint's (standalone mode: the newest instance wins, and the
    /// replication slot admits one consumer at a time).
    Takeover,
}

/// A checkpoint owned by this instance.
#[derive(Debug)]
pub struct CheckpointFile {
    store: Store,
    path: String,
    version: Option<UpdateVersion>,
    current: Checkpoint,
}

impl CheckpointFile {
    /// Reads the checkpoint at `path`, or starts a new one; nothing is written yet.
    pub async fn read(
        store: Store,
        path: String,
        pipeline_id: &str,
    ) -> Result<Self, CheckpointError> {
        let (current, version) = match store.read_json::<Checkpoint>(&path).await? {
            Some(doc) => (doc.value, Some(doc.version)),
            None => (
                Checkpoint {
                    pipeline_id: pipeline_id.to_owned(),
                    ..Checkpoint::default()
                },
                None,
            ),
        };
        Ok(Self {
            store,
            path,
            version,
            current,
        })
    }

    /// Takes ownership by writing the checkpoint back with this instance's fencing generation,
    /// conditional on the version read: whoever wrote in between is newer, and wins.
    pub async fn take_over(&mut self, fencing: Fencing) -> Result<(), CheckpointError> {
        let ours = match fencing {
            Fencing::Lease(generation) => generation,
            Fencing::Takeover => self.current.fencing + 1,
        };
        if self.current.fencing > ours {
            return Err(CheckpointError::Fenced {
                path: self.store.describe(&self.path),
                theirs: self.current.fencing,
                ours,
            });
        }
        self.current.fencing = ours;
        self.update(|_| {}).await
    }

    /// The checkpoint as last written.
    pub fn current(&self) -> &Checkpoint {
        &self.current
    }

    /// Applies `change` and writes the result, conditional on this instance's last write.
    pub async fn update(
        &mut self,
        change: impl FnOnce(&mut Checkpoint),
    ) -> Result<(), CheckpointError> {
        let mut next = self.current.clone();
        change(&mut next);
        let mode = match &self.version {
            Some(version) => WriteMode::Replace(version.clone()),
            None => WriteMode::Create,
        };
        match self.store.write_json(&self.path, &next, mode).await {
            Ok(version) => {
                self.version = Some(version);
                self.current = next;
                Ok(())
            }
            Err(StoreError::Conflict { .. } | StoreError::AlreadyExists { .. }) => {
                let theirs = match self.store.read_json::<Checkpoint>(&self.path).await {
                    Ok(Some(doc)) => doc.value.fencing,
                    _ => self.current.fencing,
                };
                Err(CheckpointError::Fenced {
                    path: self.store.describe(&self.path),
                    theirs,
                    ours: self.current.fencing,
                })
            }
            Err(err) => Err(err.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lakestream_spec::StoreUrl;

    fn store(dir: &tempfile::TempDir) -> Store {
        Store::open(&StoreUrl::parse(&format!("file://{}", dir.path().display())).unwrap()).unwrap()
    }

    #[tokio::test]
    async fn a_newer_owner_fences_the_older_one_out() {
        let dir = tempfile::tempdir().unwrap();
        let path = "checkpoints/p.json".to_owned();
        let take = |fencing| {
            let (store, path) = (store(&dir), path.clone());
            async move {
                let mut file = CheckpointFile::read(store, path, "p").await?;
                file.take_over(fencing).await.map(|()| file)
            }
        };
        let mut old = take(Fencing::Takeover).await.unwrap();
        assert_eq!(old.current().fencing, 1);
        old.update(|c| c.rows_delivered = 10).await.unwrap();
        let new = take(Fencing::Takeover).await.unwrap();
        assert_eq!(
            (new.current().fencing, new.current().rows_delivered),
            (2, 10)
        );
        let refused = old.update(|c| c.rows_delivered = 20).await.unwrap_err();
        assert!(
            matches!(
                refused,
                CheckpointError::Fenced {
                    theirs: 2,
                    ours: 1,
                    ..
                }
            ),
            "{refused}"
        );
        let stale_lease = take(Fencing::Lease(1)).await.unwrap_err();
        assert!(matches!(
            stale_lease,
            CheckpointError::Fenced {
                theirs: 2,
                ours: 1,
                ..
            }
        ));
    }

    #[tokio::test]
    async fn two_instances_reading_the_same_version_cannot_both_take_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = "checkpoints/p.json".to_owned();
        let mut first = CheckpointFile::read(store(&dir), path.clone(), "p")
            .await
            .unwrap();
        let mut second = CheckpointFile::read(store(&dir), path, "p").await.unwrap();
        first.take_over(Fencing::Takeover).await.unwrap();
        assert!(matches!(
            second.take_over(Fencing::Takeover).await,
            Err(CheckpointError::Fenced { .. })
        ));
    }
}
