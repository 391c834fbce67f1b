//! The typed client for one runner's documents in the control store. The provider and the
//! runner both use it, so the layout is written down once ([`RunnerPaths`]).

use lakestream_spec::control::{
    Checkpoint, Desired, Lease, PipelineVersion, RunnerPaths, RunnerRecord, RunnerStatus,
};
use object_store::UpdateVersion;

use crate::store::{Fetched, Store, StoreError, Versioned, WriteMode};

/// How many times a read-modify-write of `desired.json` is retried after losing a race.
const DESIRED_RETRIES: usize = 10;

/// Why a change of `desired.json` was not made.
#[derive(Debug, thiserror::Error)]
pub enum DesiredError<E> {
    /// The change itself refused the current document (e.g. the runner is busy).
    #[error(transparent)]
    Refused(E),
    /// The store failed, or writers kept racing past the retries.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One runner's documents.
#[derive(Debug, Clone)]
pub struct RunnerControl {
    store: Store,
    paths: RunnerPaths,
    runner_id: String,
}

impl RunnerControl {
    /// The documents of `runner_id` in `store`.
    pub fn new(store: Store, runner_id: &str) -> Self {
        Self {
            store,
            paths: RunnerPaths::new(runner_id),
            runner_id: runner_id.to_owned(),
        }
    }

    /// The runner's id.
    pub fn runner_id(&self) -> &str {
        &self.runner_id
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The document paths.
    pub fn paths(&self) -> &RunnerPaths {
        &self.paths
    }

    /// `runner.json`, if the runner exists.
    pub async fn record(&self) -> Result<Option<RunnerRecord>, StoreError> {
        Ok(self
            .store
            .read_json(&self.paths.record())
            .await?
            .map(|doc| doc.value))
    }

    /// Writes `runner.json`.
    pub async fn put_record(&self, record: &RunnerRecord) -> Result<(), StoreError> {
        self.store
            .write_json(&self.paths.record(), record, WriteMode::Overwrite)
            .await
            .map(drop)
    }

    /// `desired.json` with its version.
    pub async fn desired(&self) -> Result<Option<Versioned<Desired>>, StoreError> {
        self.store.read_json(&self.paths.desired()).await
    }

    /// `desired.json` only if it changed since `known`; cheap enough to poll every few seconds.
    pub async fn desired_if_changed(
        &self,
        known: Option<&UpdateVersion>,
    ) -> Result<Fetched<Desired>, StoreError> {
        self.store
            .read_json_if_changed(&self.paths.desired(), known)
            .await
    }

    /// Changes `desired.json` with `change`, which sees the current document and may refuse.
    /// The write is conditional: when another writer got there first, the document is read
    /// again and `change` applied to the new one, so no update is ever lost. Every successful
    /// change increments the generation, which is returned with the new document.
    pub async fn update_desired<E>(
        &self,
        mut change: impl FnMut(&mut Desired) -> Result<(), E>,
    ) -> Result<Desired, DesiredError<E>> {
        let path = self.paths.desired();
        for _ in 0..DESIRED_RETRIES {
            let current = self.store.read_json::<Desired>(&path).await?;
            let (mut desired, mode) = match current {
                Some(doc) => (doc.value, WriteMode::Replace(doc.version)),
                None => (Desired::default(), WriteMode::Create),
            };
            let before = desired.clone();
            change(&mut desired).map_err(DesiredError::Refused)?;
            if desired == before {
                return Ok(desired);
            }
            desired.generation = before.generation + 1;
            match self.store.write_json(&path, &desired, mode).await {
                Ok(_) => return Ok(desired),
                Err(StoreError::Conflict { .. } | StoreError::AlreadyExists { .. }) => continue,
                Err(err) => return Err(err.into()),
            }
        }
        Err(StoreError::Conflict {
            path: self.store.describe(&path),
        }
        .into())
    }

    /// Writes an immutable pipeline version; fails if that number exists.
    pub async fn put_version(&self, version: &PipelineVersion) -> Result<(), StoreError> {
        let path = self.paths.version(&version.pipeline_id, version.version);
        self.store
            .write_json(&path, version, WriteMode::Create)
            .await
            .map(drop)
    }

    /// One pipeline version.
    pub async fn version(
        &self,
        pipeline_id: &str,
        version: u64,
    ) -> Result<Option<PipelineVersion>, StoreError> {
        Ok(self
            .store
            .read_json(&self.paths.version(pipeline_id, version))
            .await?
            .map(|doc| doc.value))
    }

    /// The version numbers written for a pipeline, ascending.
    pub async fn version_numbers(&self, pipeline_id: &str) -> Result<Vec<u64>, StoreError> {
        let mut numbers: Vec<u64> = self
            .store
            .list(&self.paths.versions(pipeline_id))
            .await?
            .iter()
            .filter_map(|meta| {
                meta.location
                    .filename()?
                    .strip_suffix(".json")?
                    .parse()
                    .ok()
            })
            .collect();
        numbers.sort_unstable();
        Ok(numbers)
    }

    /// Deletes a pipeline's versions and checkpoint.
    pub async fn delete_pipeline(&self, pipeline_id: &str) -> Result<(), StoreError> {
        self.store
            .delete_prefix(&format!("{}/pipelines/{pipeline_id}", self.paths.prefix()))
            .await?;
        self.store.delete(&self.paths.checkpoint(pipeline_id)).await
    }

    /// `status.json`, the runner's last heartbeat.
    pub async fn status(&self) -> Result<Option<RunnerStatus>, StoreError> {
        Ok(self
            .store
            .read_json(&self.paths.status())
            .await?
            .map(|doc| doc.value))
    }

    /// Writes `status.json`.
    pub async fn put_status(&self, status: &RunnerStatus) -> Result<(), StoreError> {
        self.store
            .write_json(&self.paths.status(), status, WriteMode::Overwrite)
            .await
            .map(drop)
    }

    /// `lease.json` with its version.
    pub async fn lease(&self) -> Result<Option<Versioned<Lease>>, StoreError> {
        self.store.read_json(&self.paths.lease()).await
    }

    /// Writes `lease.json` conditionally (`Create` when there is none yet).
    pub async fn put_lease(
        &self,
        lease: &Lease,
        mode: WriteMode,
    ) -> Result<UpdateVersion, StoreError> {
        self.store
            .write_json(&self.paths.lease(), lease, mode)
            .await
    }

    /// A pipeline's checkpoint with its version.
    pub async fn checkpoint(
        &self,
        pipeline_id: &str,
    ) -> Result<Option<Versioned<Checkpoint>>, StoreError> {
        self.store
            .read_json(&self.paths.checkpoint(pipeline_id))
            .await
    }

    /// Writes a checkpoint conditionally; the fencing of single consumers rests on this.
    pub async fn put_checkpoint(
        &self,
        checkpoint: &Checkpoint,
        mode: WriteMode,
    ) -> Result<UpdateVersion, StoreError> {
        self.store
            .write_json(
                &self.paths.checkpoint(&checkpoint.pipeline_id),
                checkpoint,
                mode,
            )
            .await
    }

    /// Deletes everything of this runner.
    pub async fn delete_all(&self) -> Result<usize, StoreError> {
        self.store.delete_prefix(self.paths.prefix()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lakestream_spec::StoreUrl;
    use lakestream_spec::control::{Assignment, PipelineState};

    fn control() -> (tempfile::TempDir, RunnerControl) {
        let dir = tempfile::tempdir().unwrap();
        let url = StoreUrl::parse(&format!("file://{}", dir.path().display())).unwrap();
        (dir, RunnerControl::new(Store::open(&url).unwrap(), "r1"))
    }

    fn assign(id: &str) -> impl FnMut(&mut Desired) -> Result<(), String> + '_ {
        move |desired| match &desired.pipeline {
            Some(other) if other.pipeline_id != id => {
                Err(format!("busy with {}", other.pipeline_id))
            }
            _ => {
                desired.pipeline = Some(Assignment {
                    pipeline_id: id.to_owned(),
                    version: 1,
                    state: PipelineState::Running,
                    backfill_generation: 1,
                    restart_generation: 0,
                });
                Ok(())
            }
        }
    }

    #[tokio::test]
    async fn desired_changes_bump_the_generation_and_refusals_write_nothing() {
        let (_dir, control) = control();
        let first = control.update_desired(assign("p1")).await.unwrap();
        assert_eq!(first.generation, 1);
        let same = control.update_desired(assign("p1")).await.unwrap();
        assert_eq!(same.generation, 1, "an unchanged document is not rewritten");
        let refused = control.update_desired(assign("p2")).await.unwrap_err();
        assert_eq!(refused.to_string(), "busy with p1");
        assert_eq!(
            control.desired().await.unwrap().unwrap().value.generation,
            1
        );
    }

    #[tokio::test]
    async fn concurrent_assignments_let_exactly_one_win() {
        let (_dir, control) = control();
        let (a, b) = tokio::join!(
            control.update_desired(assign("p1")),
            control.update_desired(assign("p2"))
        );
        assert!(
            a.is_ok() != b.is_ok(),
            "exactly one assignment wins: {a:?} {b:?}"
        );
    }

    #[tokio::test]
    async fn versions_are_immutable_and_listed_in_order() {
        let (_dir, control) = control();
        let spec: lakestream_spec::PipelineSpec = serde_json::from_str(
            r#"{"name":"o","source":{"postgres":{"url":"postgresql://u@h/d","tables":["t"]}},"target":{"uri":"file:///tmp/l"}}"#,
        )
        .unwrap();
        for n in [1, 2, 10] {
            let version = PipelineVersion {
                pipeline_id: "p".into(),
                version: n,
                spec: spec.clone(),
                created_at: time::OffsetDateTime::now_utc(),
            };
            control.put_version(&version).await.unwrap();
        }
        let again = PipelineVersion {
            pipeline_id: "p".into(),
            version: 2,
            spec,
            created_at: time::OffsetDateTime::now_utc(),
        };
        assert!(matches!(
            control.put_version(&again).await,
            Err(StoreError::AlreadyExists { .. })
        ));
        assert_eq!(control.version_numbers("p").await.unwrap(), vec![1, 2, 10]);
        control.delete_pipeline("p").await.unwrap();
        assert!(control.version_numbers("p").await.unwrap().is_empty());
    }
}
