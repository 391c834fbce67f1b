//! The pipeline's live status, shared between the pipeline task (which writes it) and the
//! heartbeat and metrics (which read it).

use std::sync::{Arc, Mutex};

use lakestream_spec::control::{Phase, PipelineStatus, TableStatus};

/// A cheap, cloneable handle on one pipeline's [`PipelineStatus`].
#[derive(Debug, Clone, Default)]
pub struct StatusBoard(Arc<Mutex<PipelineStatus>>);

impl StatusBoard {
    /// A board for `pipeline_id` running `version`.
    pub fn new(pipeline_id: &str, version: u64) -> Self {
        Self(Arc::new(Mutex::new(PipelineStatus {
            pipeline_id: pipeline_id.to_owned(),
            deployed_version: version,
            ..PipelineStatus::default()
        })))
    }

    /// A copy of the status as it is now.
    pub fn snapshot(&self) -> PipelineStatus {
        self.lock().clone()
    }

    /// Changes the status.
    pub fn update(&self, change: impl FnOnce(&mut PipelineStatus)) {
        change(&mut self.lock());
    }

    /// Sets the phase of the pipeline and of every table.
    pub fn set_phase(&self, phase: Phase) {
        self.update(|status| {
            status.phase = phase;
            for table in &mut status.tables {
                table.phase = phase;
            }
        });
    }

    /// Records rows delivered for a table (created on first use).
    pub fn add_table_rows(&self, table: &str, rows: u64) {
        self.update(|status| table_entry(status, table).rows_delivered += rows);
    }

    /// Records a schema change of a table.
    pub fn add_schema_change(&self, table: &str) {
        self.update(|status| table_entry(status, table).schema_changes += 1);
    }

    /// Records a failure: the error and the count of failures in a row; returns the count.
    pub fn record_failure(&self, error: &str) -> u32 {
        let mut status = self.lock();
        status.consecutive_failures += 1;
        status.last_error = Some(error.to_owned());
        status.consecutive_failures
    }

    /// The pipeline works again: clear the failure count and the error.
    pub fn clear_failures(&self) {
        self.update(|status| {
            status.consecutive_failures = 0;
            status.last_error = None;
        });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PipelineStatus> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn table_entry<'a>(status: &'a mut PipelineStatus, table: &str) -> &'a mut TableStatus {
    let index = match status.tables.iter().position(|t| t.table == table) {
        Some(index) => index,
        None => {
            status.tables.push(TableStatus {
                table: table.to_owned(),
                phase: status.phase,
                ..TableStatus::default()
            });
            status.tables.len() - 1
        }
    };
    &mut status.tables[index]
}
