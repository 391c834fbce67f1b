//! Backfill throughput: a table of M rows copied into Parquet by a new pipeline (the runner's
//! snapshot backfill, from process start until its checkpoint records the backfill done),
//! against `psql -c "COPY t TO STDOUT"` into `/dev/null`, the reference, with nothing
//! done to the rows. The runner asks for the binary format, which costs the server less than
//! text, so the same `COPY` in binary is measured too and reported beside it.

use std::time::Duration;

use serde_json::json;

use super::tables::Shape;
use super::{Bench, reference_first, remove};
use crate::error::{Error, Result};
use crate::figure::{Figure, Target, median};
use crate::runner::Pipeline;

/// The project's goal: the backfill runs at least at this fraction of COPY's rate.
const TARGET_RATIO: f64 = 0.7;

/// Runs the case.
pub async fn run(bench: &mut Bench) -> Result<()> {
    let dir = bench.case_dir("backfill")?;
    let table = "public.backfill";
    let publication = "backfill_pub";
    let rows = bench.sizes.backfill_rows;
    let database = &bench.database;
    database
        .execute(
            &format!(
                "DROP TABLE IF EXISTS {table}; {}; CREATE PUBLICATION {publication} FOR TABLE {table}",
                Shape::Narrow.create(table)
            ),
            "creating the backfill table",
        )
        .await?;
    Shape::Narrow.load(database, table, 1, rows, false).await?;
    database
        .execute(&format!("VACUUM (ANALYZE) {table}"), "vacuuming")
        .await?;
    database.checkpoint().await?;

    let mut runner_rates = Vec::new();
    let mut copy_rates = Vec::new();
    let mut binary_rates = Vec::new();
    for repetition in 0..bench.sizes.repetitions {
        let copy = async || {
            let elapsed = bench.database.psql_copy(table, false).await?;
            let binary = bench.database.psql_copy(table, true).await?;
            Ok::<_, Error>((
                rows as f64 / elapsed.as_secs_f64(),
                rows as f64 / binary.as_secs_f64(),
            ))
        };
        let runner = async || {
            let slot = format!("backfill_{repetition}");
            let lake = dir.join(format!("lake-{repetition}"));
            let pipeline = Pipeline {
                id: format!("backfill-{repetition}"),
                tables: vec![table.to_owned()],
                slot: slot.clone(),
                publication: publication.to_owned(),
                lake: lake.clone(),
                flush_interval: "1s",
                backfill: true,
            };
            let mut runner = bench.start_runner(&pipeline).await?;
            let done = runner
                .wait_for(
                    "the backfill",
                    bench.timeout(Duration::from_secs(600)),
                    |p| p.backfill_done >= 1,
                )
                .await?;
            let elapsed = done - runner.started;
            let peak = runner.peak_rss_mib()?;
            let delivered = runner.progress().rows_delivered;
            runner.stop().await?;
            bench.database.drop_slot(&slot).await?;
            remove(&lake)?;
            if delivered != rows {
                return Err(Error::Failed(format!(
                    "the backfill delivered {delivered} rows of {rows}"
                )));
            }
            Ok::<_, Error>((rows as f64 / elapsed.as_secs_f64(), peak))
        };
        let ((copy_rate, binary_rate), (runner_rate, peak)) = if reference_first(repetition) {
            let copy = copy().await?;
            (copy, runner().await?)
        } else {
            let runner = runner().await?;
            (copy().await?, runner)
        };
        copy_rates.push(copy_rate);
        binary_rates.push(binary_rate);
        runner_rates.push(runner_rate);
        bench.report.runner_peak("backfill", peak);
    }

    let binary_ratio = median(&runner_rates) / median(&binary_rates);
    let rate = Figure::new("backfill_rows_per_s", "rows/s", runner_rates)
        .reference("COPY", copy_rates)
        .details(json!({
            "rows": rows,
            "table": "5 columns: bigint key, int, bigint, text, timestamptz",
            "copy_binary_rows_per_s": binary_rates,
            "vs_copy_binary_median": binary_ratio,
        }));
    let ratios = rate.ratios().unwrap_or_default();
    bench.report.add(rate);
    bench.report.add(
        Figure::new("backfill_vs_copy", "×", ratios).target(Target::MedianAtLeast(TARGET_RATIO)),
    );
    Ok(())
}
