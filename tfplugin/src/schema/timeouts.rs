//! The conventional `timeouts` block and a typed reader for it.
//!
//! Users write `timeouts { create = "30m" }`; operations not listed fall back to the
//! resource's own defaults. Durations use Go's syntax (`"90s"`, `"10m"`, `"1h30m"`), which is
//! what every other provider's users already write.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{Attribute, Block, NestedBlock};
use crate::diagnostics::Diagnostic;
use crate::path::AttributePath;
use crate::validator;
use crate::value::Value;

/// The name of the block, fixed by convention.
const BLOCK_NAME: &str = "timeouts";

pub(super) fn block(operations: &[&str]) -> NestedBlock {
    let attributes = operations.iter().map(|operation| {
        Attribute::string(*operation)
            .optional()
            .description(format!(
                "How long to wait for {operation} before giving up, as a duration such as `\"30s\"`, \
                 `\"10m\"` or `\"1h30m\"` (units: `ms`, `s`, `m`, `h`)."
            ))
            .validator(validator::custom("value must be a duration such as `30s`, `10m` or `1h30m`", |request| {
                match request.value.as_str().map(parse_duration) {
                    Some(Ok(_)) | None => Ok(()),
                    Some(Err(problem)) => Err(problem),
                }
            }))
    });
    NestedBlock::single(
        BLOCK_NAME,
        attributes
            .fold(Block::new(), Block::attribute)
            .description("Custom timeouts for long-running operations."),
    )
}

/// The durations configured in a resource's `timeouts` block.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Timeouts {
    configured: BTreeMap<String, Duration>,
}

impl Timeouts {
    /// Reads the `timeouts` block of a resource value (configuration, plan or state; for a
    /// delete use the prior state, since there is no configuration). A missing block or
    /// attribute means "use the default"; a malformed duration is an error at its path.
    pub fn from_resource(resource: &Value) -> Result<Self, Diagnostic> {
        let mut configured = BTreeMap::new();
        if let Some(attributes) = resource.attribute(BLOCK_NAME).as_object() {
            for (operation, value) in attributes {
                if let Some(text) = value.as_str() {
                    let duration = parse_duration(text).map_err(|problem| {
                        Diagnostic::attribute_error(
                            AttributePath::root(BLOCK_NAME).attribute(operation.clone()),
                            "Invalid Timeout",
                            problem,
                        )
                    })?;
                    configured.insert(operation.clone(), duration);
                }
            }
        }
        Ok(Self { configured })
    }

    /// The timeout of an operation, or `default` when none is configured.
    pub fn get(&self, operation: &str, default: Duration) -> Duration {
        self.configured.get(operation).copied().unwrap_or(default)
    }

    /// The `create` timeout.
    pub fn create(&self, default: Duration) -> Duration {
        self.get("create", default)
    }

    /// The `read` timeout.
    pub fn read(&self, default: Duration) -> Duration {
        self.get("read", default)
    }

    /// The `update` timeout.
    pub fn update(&self, default: Duration) -> Duration {
        self.get("update", default)
    }

    /// The `delete` timeout.
    pub fn delete(&self, default: Duration) -> Duration {
        self.get("delete", default)
    }
}

/// Parses a Go-style duration: numbers with optional fractions, each followed by a unit
/// (`ns`, `us`, `µs`, `ms`, `s`, `m`, `h`), e.g. `"1h30m"`, `"1.5h"`, `"300ms"`. `"0"` alone is
/// zero. Negative durations are refused: a timeout cannot be negative.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let invalid =
        || format!("{text:?} is not a duration; write e.g. \"30s\", \"10m\" or \"1h30m\"");
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    if text.is_empty() {
        return Err(invalid());
    }
    let mut rest = text;
    let mut total = 0.0_f64;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(invalid)?;
        let number: f64 = rest[..number_len].parse().map_err(|_| invalid())?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds_per_unit = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(invalid()),
        };
        rest = &rest[unit_len..];
        total += number * seconds_per_unit;
    }
    Duration::try_from_secs_f64(total).map_err(|_| invalid())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("300ms"), Ok(Duration::from_millis(300)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        for bad in ["", "10", "m", "-5m", "10 m", "1d", "1h30"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn reads_configured_values_with_defaults() {
        let resource = Value::object([(
            "timeouts",
            Value::object([("create", "45m".into()), ("delete", Value::Null)]),
        )]);
        let timeouts = Timeouts::from_resource(&resource).unwrap();
        assert_eq!(
            timeouts.create(Duration::from_secs(60)),
            Duration::from_secs(2700)
        );
        assert_eq!(
            timeouts.delete(Duration::from_secs(60)),
            Duration::from_secs(60)
        );
        let bad = Value::object([("timeouts", Value::object([("create", "soon".into())]))]);
        let error = Timeouts::from_resource(&bad).unwrap_err();
        assert_eq!(error.attribute.unwrap().to_string(), "timeouts.create");
        assert_eq!(
            Timeouts::from_resource(&Value::Null).unwrap(),
            Timeouts::default()
        );
    }
}
