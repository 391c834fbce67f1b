//! Dropping what a retired pipeline leaves in the database: its replication slot (which
//! otherwise keeps WAL forever) and, when the runner created it, its publication.

use std::time::Duration;

use super::config::PostgresSourceConfig;
use super::wire::{Conn, Session, WireError, quote_ident, quote_literal};
use crate::source::SourceError;

/// How long a slot may stay active after its consumer left before dropping it gives up.
const ACTIVE_SLOT_PATIENCE: Duration = Duration::from_secs(10);
/// SQLSTATE `object_in_use`: the slot still has a walsender.
const OBJECT_IN_USE: &str = "55006";

/// Drops the slot (if it exists) and, with `drop_publication`, the publication (if it exists).
pub async fn drop_replication_objects(
    config: &PostgresSourceConfig,
    drop_publication: bool,
) -> Result<(), SourceError> {
    let mut conn = Conn::connect(config, Session::Ordinary).await?;
    let drop_slot = format!(
        "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = {}",
        quote_literal(&config.slot)
    );
    let deadline = tokio::time::Instant::now() + ACTIVE_SLOT_PATIENCE;
    loop {
        match conn.query(&drop_slot).await {
            Ok(_) => break,
            Err(WireError::Server(error))
                if error.code == OBJECT_IN_USE && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(error) => {
                return Err(error.context(format!(
                    "could not drop replication slot \"{}\"",
                    config.slot
                )));
            }
        }
    }
    if drop_publication {
        conn.query(&format!(
            "DROP PUBLICATION IF EXISTS {}",
            quote_ident(&config.publication)
        ))
        .await
        .map_err(|error| {
            error.context(format!(
                "could not drop publication \"{}\"",
                config.publication
            ))
        })?;
    }
    conn.close().await;
    Ok(())
}
