//! Commit-to-visible latency at a steady rate: a writer commits a small transaction every
//! 10 ms (5,000 rows/s by default) while the runner streams with a 1 s flush interval; every
//! row's latency is its file's publication time minus its `_commit_ts` (see [`crate::lake`]).
//! Each repetition gives a p50 and a p99 over all its rows; the figures are their medians over
//! the repetitions.

use std::time::Duration;

use serde_json::json;

use super::Bench;
use super::tables::Shape;
use crate::error::{Error, PgContext, Result};
use crate::figure::{Figure, Target, percentile};
use crate::lake;
use crate::runner::Pipeline;

/// One transaction per tick.
const TICK: Duration = Duration::from_millis(10);
/// The project's goal for the 99th percentile at a 1 s flush interval, in milliseconds.
const TARGET_P99_MS: f64 = 2000.0;

/// Runs the case.
pub async fn run(bench: &mut Bench) -> Result<()> {
    let dir = bench.case_dir("latency")?;
    let table = "public.latency";
    let publication = "latency_pub";
    bench
        .database
        .execute(
            &format!(
                "DROP TABLE IF EXISTS {table}; {}; CREATE PUBLICATION {publication} FOR TABLE {table}",
                Shape::Narrow.create(table)
            ),
            "creating the latency table",
        )
        .await?;
    let rows_per_tick = bench.sizes.latency_rate * TICK.as_millis() as u64 / 1000;
    let ticks = bench.sizes.latency_seconds * 1000 / TICK.as_millis() as u64;

    let (mut p50s, mut p99s, mut rates, mut counts) = (vec![], vec![], vec![], vec![]);
    for repetition in 0..bench.sizes.latency_runs {
        let slot = format!("latency_{repetition}");
        bench
            .database
            .execute(&format!("TRUNCATE {table}"), "emptying the table")
            .await?;
        bench.database.create_slot(&slot).await?;
        bench.database.checkpoint().await?;
        let lake = dir.join(format!("lake-{repetition}"));
        let pipeline = Pipeline {
            id: format!("latency-{repetition}"),
            tables: vec![table.to_owned()],
            slot: slot.clone(),
            publication: publication.to_owned(),
            lake: lake.clone(),
            flush_interval: "1s",
            backfill: false,
        };
        let mut runner = bench.start_runner(&pipeline).await?;
        runner
            .wait_streaming(bench.timeout(Duration::from_secs(60)))
            .await?;

        let writer = bench.database.connect().await?;
        let mut interval = tokio::time::interval(TICK);
        let started = tokio::time::Instant::now();
        for tick in 0..ticks {
            interval.tick().await;
            let first = tick * rows_per_tick + 1;
            writer
                .batch_execute(&Shape::Narrow.insert(table, first, first + rows_per_tick - 1))
                .await
                .context("writing a latency batch")?;
        }
        let written = ticks * rows_per_tick;
        let rate = written as f64 / started.elapsed().as_secs_f64();
        runner
            .wait_for(
                "every row in the lake",
                bench.timeout(Duration::from_secs(120)),
                |p| p.rows_delivered >= written,
            )
            .await?;
        bench.report.runner_peak("latency", runner.peak_rss_mib()?);
        runner.stop().await?;
        bench.database.drop_slot(&slot).await?;

        let latencies = lake::commit_to_visible_ms(&lake.join("public.latency"))?;
        if latencies.len() as u64 != written {
            return Err(Error::Failed(format!(
                "the lake holds {} rows with a commit time, {written} were written",
                latencies.len()
            )));
        }
        p50s.push(percentile(&latencies, 50.0));
        p99s.push(percentile(&latencies, 99.0));
        rates.push(rate);
        counts.push(latencies.len());
        super::remove(&lake)?;
    }

    let details = json!({
        "flush_interval": "1s",
        "target_rate_rows_per_s": bench.sizes.latency_rate,
        "achieved_rate_rows_per_s": rates,
        "seconds_per_run": bench.sizes.latency_seconds,
        "rows_per_run": counts,
    });
    bench
        .report
        .add(Figure::new("latency_p50_ms", "ms", p50s).details(details.clone()));
    bench.report.add(
        Figure::new("latency_p99_ms", "ms", p99s)
            .target(Target::MedianAtMost(TARGET_P99_MS))
            .details(details),
    );
    Ok(())
}
