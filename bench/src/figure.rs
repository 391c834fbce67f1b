//! Figures: the repetitions of one measured quantity, with the reference it is compared to and
//! the target it is held against, summarised the same way in the table and in the JSON.

use serde_json::{Value, json};

/// The median of `values` (the mean of the middle two for an even count); `NaN` when empty.
pub fn median(values: &[f64]) -> f64 {
    let sorted = sorted(values);
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// The `p`-th percentile (0–100) by nearest rank: the smallest value with at least `p` % of
/// the values at or below it; `NaN` when empty.
pub fn percentile(values: &[f64], p: f64) -> f64 {
    let sorted = sorted(values);
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// A sorted copy.
fn sorted(values: &[f64]) -> Vec<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted
}

/// The smallest value; `NaN` when empty.
fn min(values: &[f64]) -> f64 {
    values.iter().copied().reduce(f64::min).unwrap_or(f64::NAN)
}

/// The largest value; `NaN` when empty.
fn max(values: &[f64]) -> f64 {
    values.iter().copied().reduce(f64::max).unwrap_or(f64::NAN)
}

/// What a figure is compared with, measured in the same run, interleaved with it.
#[derive(Debug, Clone)]
pub struct Reference {
    /// The reference's name in the table (`pg_recvlogical`).
    pub name: &'static str,
    /// Its value in each repetition, paired with the figure's runs.
    pub runs: Vec<f64>,
}

/// The project's goal for a figure.
#[derive(Debug, Clone, Copy)]
pub enum Target {
    /// The median must be at least this.
    MedianAtLeast(f64),
    /// The median must be at most this.
    MedianAtMost(f64),
    /// Every run must be at most this (a peak).
    MaxAtMost(f64),
}

impl Target {
    /// Whether `runs` meet the target.
    fn met(self, runs: &[f64]) -> bool {
        match self {
            Self::MedianAtLeast(bound) => median(runs) >= bound,
            Self::MedianAtMost(bound) => median(runs) <= bound,
            Self::MaxAtMost(bound) => max(runs) <= bound,
        }
    }

    /// `≥ 0.8 (median)`, as the table shows it.
    fn describe(self) -> String {
        match self {
            Self::MedianAtLeast(bound) => format!("median ≥ {}", number(bound)),
            Self::MedianAtMost(bound) => format!("median ≤ {}", number(bound)),
            Self::MaxAtMost(bound) => format!("max ≤ {}", number(bound)),
        }
    }
}

/// One measured quantity: a key of `latest.json` and a row of the table.
#[derive(Debug, Clone)]
pub struct Figure {
    /// The key in `latest.json`.
    pub key: &'static str,
    /// Unit of the runs (`rows/s`, `ms`, `MiB`, `s`, `×`).
    pub unit: &'static str,
    /// One value per repetition.
    pub runs: Vec<f64>,
    /// The reference, when the figure has one.
    pub reference: Option<Reference>,
    /// The project's goal, when it has one.
    pub target: Option<Target>,
    /// Anything else worth keeping (sizes, per-case breakdowns), as JSON.
    pub details: Value,
}

impl Figure {
    /// A figure with runs only.
    pub fn new(key: &'static str, unit: &'static str, runs: Vec<f64>) -> Self {
        Self {
            key,
            unit,
            runs,
            reference: None,
            target: None,
            details: Value::Null,
        }
    }

    /// With a reference measured in the same repetitions.
    pub fn reference(mut self, name: &'static str, runs: Vec<f64>) -> Self {
        self.reference = Some(Reference { name, runs });
        self
    }

    /// With a target.
    pub fn target(mut self, target: Target) -> Self {
        self.target = Some(target);
        self
    }

    /// With details.
    pub fn details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }

    /// The figure over its reference, repetition by repetition.
    pub fn ratios(&self) -> Option<Vec<f64>> {
        let reference = self.reference.as_ref()?;
        Some(
            self.runs
                .iter()
                .zip(&reference.runs)
                .map(|(run, reference)| run / reference)
                .collect(),
        )
    }

    /// Whether the target is met, when there is one.
    pub fn met(&self) -> Option<bool> {
        self.target.map(|target| target.met(&self.runs))
    }

    /// The figure's JSON: summary, runs, reference, target and details.
    pub fn to_json(&self) -> Value {
        let mut value = json!({
            "unit": self.unit,
            "median": finite(median(&self.runs)),
            "min": finite(min(&self.runs)),
            "max": finite(max(&self.runs)),
            "runs": self.runs,
        });
        if let (Some(reference), Some(ratios)) = (&self.reference, self.ratios()) {
            value["reference"] = json!({
                "name": reference.name,
                "median": finite(median(&reference.runs)),
                "min": finite(min(&reference.runs)),
                "max": finite(max(&reference.runs)),
                "runs": reference.runs,
            });
            value["ratio"] = finite(median(&ratios));
        }
        if let Some(target) = self.target {
            value["target"] = json!({"rule": target.describe(), "met": self.met()});
        }
        if !self.details.is_null() {
            value["details"] = self.details.clone();
        }
        value
    }

    /// The table row: key, median, min, max, ratio, target.
    pub fn row(&self) -> [String; 6] {
        let with_unit = |v: f64| {
            if self.unit == "×" {
                format!("{}×", number(v))
            } else {
                format!("{} {}", number(v), self.unit)
            }
        };
        let ratio = match (&self.reference, self.ratios()) {
            (Some(reference), Some(ratios)) => format!(
                "{}× {} ({})",
                number(median(&ratios)),
                reference.name,
                with_unit(median(&reference.runs))
            ),
            _ => "—".to_owned(),
        };
        let target = match (self.target, self.met()) {
            (Some(target), Some(met)) => {
                format!(
                    "{}: {}",
                    target.describe(),
                    if met { "met" } else { "**missed**" }
                )
            }
            _ => "—".to_owned(),
        };
        [
            format!("`{}`", self.key),
            with_unit(median(&self.runs)),
            with_unit(min(&self.runs)),
            with_unit(max(&self.runs)),
            ratio,
            target,
        ]
    }
}

/// A JSON number, or `null` for NaN and infinities (which JSON cannot carry).
fn finite(value: f64) -> Value {
    if value.is_finite() {
        json!(value)
    } else {
        Value::Null
    }
}

/// A number as the table shows it: thousands separated above 1000, three significant digits
/// below.
pub fn number(value: f64) -> String {
    if !value.is_finite() {
        return "n/a".to_owned();
    }
    if value.abs() >= 1000.0 {
        let digits = format!("{:.0}", value.abs());
        let mut grouped = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                grouped.push(',');
            }
            grouped.push(c);
        }
        if value < 0.0 {
            grouped.insert(0, '-');
        }
        grouped
    } else if value.abs() >= 100.0 {
        format!("{value:.0}")
    } else if value.abs() >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_percentiles_by_nearest_rank() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
        let hundred: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&hundred, 50.0), 50.0);
        assert_eq!(percentile(&hundred, 99.0), 99.0);
        assert_eq!(percentile(&hundred, 100.0), 100.0);
        assert_eq!(percentile(&[7.0], 99.0), 7.0);
    }

    #[test]
    fn ratios_pair_runs_with_their_reference() {
        let figure = Figure::new("x", "rows/s", vec![80.0, 90.0, 100.0])
            .reference("ref", vec![100.0, 100.0, 100.0])
            .target(Target::MedianAtLeast(100.0));
        assert_eq!(figure.ratios().unwrap(), vec![0.8, 0.9, 1.0]);
        assert_eq!(figure.met(), Some(false));
        let json = figure.to_json();
        assert_eq!(json["ratio"], 0.9);
        assert_eq!(json["reference"]["median"], 100.0);
        assert_eq!(json["target"]["met"], false);
    }

    #[test]
    fn numbers_are_grouped_and_rounded() {
        assert_eq!(number(1_234_567.4), "1,234,567");
        assert_eq!(number(123.4), "123");
        assert_eq!(number(12.34), "12.3");
        assert_eq!(number(0.857), "0.86");
        assert_eq!(number(f64::NAN), "n/a");
    }
}
