//! The report: every figure of the run as a markdown table (printed) and as `latest.json`,
//! in one fixed order, with the run's circumstances (machine, load, sizes) beside them.

use serde_json::{Map, Value, json};

use crate::figure::{Figure, Target};

/// Every key of the report, in table order. Keys the issue asks for, plus the wide stream's
/// ratio, which the same target applies to, and the plan's plugin floor, which puts the plan's
/// ratio in proportion.
pub const KEYS: &[&str] = &[
    "stream_rows_per_s",
    "stream_vs_pg_recvlogical",
    "stream_wide_rows_per_s",
    "stream_wide_vs_pg_recvlogical",
    "latency_p50_ms",
    "latency_p99_ms",
    "backfill_rows_per_s",
    "backfill_vs_copy",
    "runner_peak_rss_mb",
    "big_txn_peak_rss_mb",
    "plan_200_s",
    "plan_vs_terraform_data",
    "plan_floor_200_s",
    "fleet_apply_50_fargate_s",
];

/// The runner's memory budget (MiB) for every case, the big transaction included.
pub const RSS_BUDGET_MIB: f64 = 100.0;

/// A key's outcome.
#[derive(Debug, Clone)]
enum Entry {
    /// Measured.
    Measured(Figure),
}

impl Entry {
    /// The entry's key.
    fn key(&self) -> &'static str {
        match self {
            Self::Measured(figure) => figure.key,
        }
    }
}

/// What a run found so far.
#[derive(Debug, Default)]
pub struct Report {
    /// Figures and skipped keys.
    entries: Vec<Entry>,
    /// Peak RSS (MiB) of every runner process of the engine cases, with its case.
    runner_peaks: Vec<(&'static str, f64)>,
}

impl Report {
    /// Adds a figure.
    pub fn add(&mut self, figure: Figure) {
        self.entries.push(Entry::Measured(figure));
    }

    /// Records a runner's peak RSS in `case` (for `runner_peak_rss_mb`).
    pub fn runner_peak(&mut self, case: &'static str, mib: f64) {
        self.runner_peaks.push((case, mib));
    }

    /// Turns the collected runner peaks into `runner_peak_rss_mb`: every runner process of the
    /// stream, latency and backfill cases, the target held against the largest.
    pub fn finish(&mut self) {
        if self.runner_peaks.is_empty() {
            return;
        }
        let mut by_case = Map::new();
        for (case, mib) in &self.runner_peaks {
            let slot = by_case.entry(*case).or_insert(json!(0.0));
            if slot.as_f64().is_some_and(|seen| *mib > seen) {
                *slot = json!(mib);
            }
        }
        let runs = self.runner_peaks.iter().map(|(_, mib)| *mib).collect();
        self.add(
            Figure::new("runner_peak_rss_mb", "MiB", runs)
                .target(Target::MaxAtMost(RSS_BUDGET_MIB))
                .details(json!({"largest_by_case": by_case})),
        );
        self.runner_peaks.clear();
    }

    /// Entries in [`KEYS`] order.
    fn ordered(&self) -> Vec<&Entry> {
        let mut entries: Vec<&Entry> = self.entries.iter().collect();
        entries.sort_by_key(|entry| KEYS.iter().position(|k| *k == entry.key()));
        entries
    }

    /// Figures whose target is missed.
    pub fn missed(&self) -> Vec<&'static str> {
        self.entries
            .iter()
            .filter_map(|entry| match entry {
                Entry::Measured(figure) if figure.met() == Some(false) => Some(figure.key),
                _ => None,
            })
            .collect()
    }

    /// The markdown table.
    pub fn table(&self) -> String {
        let mut text = String::from(
            "| figure | median | min | max | ratio (median of paired runs) | target |\n| --- | ---: | ---: | ---: | --- | --- |\n",
        );
        for entry in self.ordered() {
            let cells = match entry {
                Entry::Measured(figure) => figure.row().to_vec(),
            };
            text.push_str(&format!("| {} |\n", cells.join(" | ")));
        }
        text
    }

    /// The JSON document: `run` (circumstances), then one member per key (`null` when not
    /// measured, with the reason under `not_measured`).
    pub fn to_json(&self, run: Value) -> Value {
        let mut document = Map::new();
        document.insert("run".into(), run);
        for entry in self.ordered() {
            match entry {
                Entry::Measured(figure) => {
                    document.insert(figure.key.into(), figure.to_json());
                }
            }
        }
        Value::Object(document)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_come_in_key_order_with_the_runner_peak_first() {
        let mut report = Report::default();
        report.add(Figure::new("plan_200_s", "s", vec![1.0, 2.0, 3.0]));
        report.runner_peak("stream", 30.0);
        report.runner_peak("backfill", 40.0);
        report.finish();
        let table = report.table();
        let rows: Vec<&str> = table.lines().skip(2).collect();
        assert!(
            rows[0].starts_with("| `runner_peak_rss_mb` | 35.0 MiB"),
            "{table}"
        );
        assert!(rows[1].starts_with("| `plan_200_s` | 2.00 s"), "{table}");
        assert_eq!(rows.len(), 2, "{table}");
        let json = report.to_json(json!({"mode": "quick"}));
        assert_eq!(json["plan_200_s"]["median"], 2.0);
        assert_eq!(
            json["runner_peak_rss_mb"]["details"]["largest_by_case"]["backfill"],
            40.0
        );
        assert_eq!(json["run"]["mode"], "quick");
        assert!(report.missed().is_empty());
    }
}
