//! Streaming throughput: N rows committed in batches, then the time until all of them are
//! committed to Parquet in the lake by the runner (standalone), against `pg_recvlogical`
//! (pgoutput) draining the same WAL range into a file.
//!
//! Each repetition creates two slots at the same position, writes the rows (untimed), takes a
//! checkpoint, then times both consumers one after the other from their own slot: the same
//! WAL, decoded by the same server, read from the page cache in both cases. The runner's clock
//! runs from its process start to the first sight of a checkpoint with every row delivered
//! (that checkpoint is written after the files are published), polled every 10 ms.

use std::time::Duration;

use serde_json::json;

use super::tables::Shape;
use super::{Bench, reference_first, remove};
use crate::error::{Error, Result};
use crate::figure::{Figure, Target};
use crate::runner::Pipeline;

/// The project's goal: the runner streams at least this fraction of `pg_recvlogical`'s rate.
const TARGET_RATIO: f64 = 0.8;

/// Runs the case for `shape` (narrow: `stream_*` keys; wide: `stream_wide_*`).
pub async fn run(bench: &mut Bench, shape: Shape) -> Result<()> {
    let (case, rows, rate_key, ratio_key) = match shape {
        Shape::Narrow => (
            "stream",
            bench.sizes.stream_rows,
            "stream_rows_per_s",
            "stream_vs_pg_recvlogical",
        ),
        Shape::Wide => (
            "stream_wide",
            bench.sizes.wide_rows,
            "stream_wide_rows_per_s",
            "stream_wide_vs_pg_recvlogical",
        ),
    };
    let dir = bench.case_dir(case)?;
    let table = format!("public.{case}");
    let publication = format!("{case}_pub");
    bench
        .database
        .execute(
            &format!(
                "DROP TABLE IF EXISTS {table}; {}; CREATE PUBLICATION {publication} FOR TABLE {table}",
                shape.create(&table)
            ),
            &format!("creating {table}"),
        )
        .await?;

    let mut runner_rates = Vec::new();
    let mut reference_rates = Vec::new();
    let mut reference_bytes = Vec::new();
    for repetition in 0..bench.sizes.repetitions {
        let database = &bench.database;
        database
            .execute(&format!("TRUNCATE {table}"), "emptying the table")
            .await?;
        let reference_slot = format!("{case}_ref_{repetition}");
        let runner_slot = format!("{case}_run_{repetition}");
        database.create_slot(&reference_slot).await?;
        database.create_slot(&runner_slot).await?;
        shape.load(database, &table, 1, rows, false).await?;
        let end_lsn = database.wal_position().await?;
        database.checkpoint().await?;

        let reference = async || {
            let out = dir.join(format!("pg_recvlogical-{repetition}.out"));
            let elapsed = bench
                .database
                .pg_recvlogical(&reference_slot, &publication, &end_lsn, &out)
                .await?;
            let bytes = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
            remove(&out)?;
            bench.database.drop_slot(&reference_slot).await?;
            if bytes < rows * 20 {
                return Err(Error::Failed(format!(
                    "pg_recvlogical wrote only {bytes} bytes for {rows} rows"
                )));
            }
            Ok::<_, Error>((rows as f64 / elapsed.as_secs_f64(), bytes))
        };
        let runner = async || {
            let lake = dir.join(format!("lake-{repetition}"));
            let pipeline = Pipeline {
                id: format!("{}-{repetition}", case.replace('_', "-")),
                tables: vec![table.clone()],
                slot: runner_slot.clone(),
                publication: publication.clone(),
                lake: lake.clone(),
                flush_interval: "1s",
                backfill: false,
            };
            let mut runner = bench.start_runner(&pipeline).await?;
            let done = runner
                .wait_for(
                    "every row in the lake",
                    bench.timeout(Duration::from_secs(600)),
                    |p| p.rows_delivered >= rows,
                )
                .await?;
            let elapsed = done - runner.started;
            let peak = runner.peak_rss_mib()?;
            let delivered = runner.progress().rows_delivered;
            runner.stop().await?;
            bench.database.drop_slot(&runner_slot).await?;
            remove(&lake)?;
            if delivered != rows {
                return Err(Error::Failed(format!(
                    "the runner delivered {delivered} rows for {rows} written"
                )));
            }
            Ok::<_, Error>((rows as f64 / elapsed.as_secs_f64(), peak))
        };
        let ((reference_rate, bytes), (runner_rate, peak)) = if reference_first(repetition) {
            let reference = reference().await?;
            (reference, runner().await?)
        } else {
            let runner = runner().await?;
            (reference().await?, runner)
        };
        reference_rates.push(reference_rate);
        reference_bytes.push(bytes);
        runner_rates.push(runner_rate);
        bench.report.runner_peak(case, peak);
    }

    let rate = Figure::new(rate_key, "rows/s", runner_rates)
        .reference("pg_recvlogical", reference_rates)
        .details(json!({
            "rows": rows,
            "table": shape_name(shape),
            "pg_recvlogical_output_bytes": reference_bytes,
        }));
    let ratios = rate.ratios().unwrap_or_default();
    bench.report.add(rate);
    bench
        .report
        .add(Figure::new(ratio_key, "×", ratios).target(Target::MedianAtLeast(TARGET_RATIO)));
    Ok(())
}

/// The shape's description for the JSON.
fn shape_name(shape: Shape) -> &'static str {
    match shape {
        Shape::Narrow => "5 columns: bigint key, int, bigint, text, timestamptz",
        Shape::Wide => {
            "30 columns of mixed types; one row in ten with a 3.2 kB text stored out of line"
        }
    }
}
