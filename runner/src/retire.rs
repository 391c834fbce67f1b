//! Carrying out a [`Retirement`]: after the provider unassigned a pipeline with
//! `drop_slot_on_destroy`, the runner (which can reach the database) drops its slot, and its
//! publication when the runner created it.

use lakestream_control::RunnerControl;
use lakestream_spec::control::Retirement;

use crate::pipeline::launch::postgres_config;
use crate::source::postgres::drop_replication_objects;
use lakestream_spec::error_chain;

/// Drops what `retirement` asks for; the error is one line for `status.json`.
pub async fn retire(control: &RunnerControl, retirement: &Retirement) -> Result<(), String> {
    if !retirement.drop_slot {
        return Ok(());
    }
    let id = &retirement.pipeline_id;
    let version = control
        .version(id, retirement.version)
        .await
        .map_err(|err| err.to_string())?
        .ok_or_else(|| {
            format!(
                "version {} of pipeline {id} is gone; cannot reach its database",
                retirement.version
            )
        })?;
    let postgres = version
        .spec
        .source
        .postgres
        .as_ref()
        .ok_or_else(|| format!("pipeline {id} has no PostgreSQL source"))?;
    let publication_created = control
        .checkpoint(id)
        .await
        .map_err(|err| err.to_string())?
        .is_some_and(|doc| doc.value.publication_created);
    let config = postgres_config(postgres, id)
        .await
        .map_err(|err| error_chain(&err))?;
    drop_replication_objects(&config, publication_created)
        .await
        .map_err(|err| error_chain(&err))?;
    tracing::info!(pipeline = %id, slot = %config.slot, publication_dropped = publication_created, "dropped the retired pipeline's replication objects");
    Ok(())
}
