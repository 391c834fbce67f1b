//! Memory under one big transaction: 2 million rows inserted in a single transaction, then
//! streamed by a runner, whose peak RSS is the figure. PostgreSQL sends a transaction only
//! after its commit (pgoutput protocol 1 does not stream transactions in progress), all at
//! once, so the runner must cut its buffer inside the transaction to stay within its budget.

use std::time::Duration;

use serde_json::json;

use super::tables::Shape;
use super::{Bench, remove};
use crate::error::{Error, Result};
use crate::figure::{Figure, Target};
use crate::report::RSS_BUDGET_MIB;
use crate::runner::Pipeline;

/// Runs the case.
pub async fn run(bench: &mut Bench) -> Result<()> {
    let dir = bench.case_dir("big_txn")?;
    let table = "public.big_txn";
    let publication = "big_txn_pub";
    let rows = bench.sizes.big_txn_rows;
    bench
        .database
        .execute(
            &format!(
                "DROP TABLE IF EXISTS {table}; {}; CREATE PUBLICATION {publication} FOR TABLE {table}",
                Shape::Narrow.create(table)
            ),
            "creating the big transaction's table",
        )
        .await?;

    let (mut peaks, mut seconds, mut files) = (vec![], vec![], vec![]);
    for repetition in 0..bench.sizes.big_txn_runs {
        let database = &bench.database;
        let slot = format!("big_txn_{repetition}");
        database
            .execute(&format!("TRUNCATE {table}"), "emptying the table")
            .await?;
        database.create_slot(&slot).await?;
        Shape::Narrow.load(database, table, 1, rows, true).await?;
        database.checkpoint().await?;
        let lake = dir.join(format!("lake-{repetition}"));
        let pipeline = Pipeline {
            id: format!("big-txn-{repetition}"),
            tables: vec![table.to_owned()],
            slot: slot.clone(),
            publication: publication.to_owned(),
            lake: lake.clone(),
            flush_interval: "1s",
            backfill: false,
        };
        let mut runner = bench.start_runner(&pipeline).await?;
        let done = runner
            .wait_for(
                "every row in the lake",
                bench.timeout(Duration::from_secs(900)),
                |p| p.rows_delivered >= rows,
            )
            .await?;
        seconds.push((done - runner.started).as_secs_f64());
        peaks.push(runner.peak_rss_mib()?);
        let delivered = runner.progress().rows_delivered;
        runner.stop().await?;
        database.drop_slot(&slot).await?;
        if delivered != rows {
            return Err(Error::Failed(format!(
                "the runner delivered {delivered} rows of the {rows}-row transaction"
            )));
        }
        files.push(
            std::fs::read_dir(lake.join("public.big_txn"))
                .map(|entries| entries.count())
                .unwrap_or(0),
        );
        remove(&lake)?;
    }
    bench.report.add(
        Figure::new("big_txn_peak_rss_mb", "MiB", peaks)
            .target(Target::MaxAtMost(RSS_BUDGET_MIB))
            .details(json!({
                "rows_in_transaction": rows,
                "seconds_to_lake": seconds,
                "files": files,
                "target_file_size": "32MiB (default)",
            })),
    );
    Ok(())
}
