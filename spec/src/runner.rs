//! The runner spec: what the provider records about a runner and the runner reads at start.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::duration;
use crate::path::{FieldPath, Violation, Violations};
use crate::rules;

/// Default interval between status heartbeats.
pub const DEFAULT_HEARTBEAT_INTERVAL: &str = "5s";
/// Smallest and largest heartbeat intervals.
pub const HEARTBEAT_INTERVAL_RANGE: (Duration, Duration) =
    (Duration::from_secs(1), Duration::from_secs(300));
/// Longest description.
pub const DESCRIPTION_MAX: usize = 256;

/// A runner's settings that the runner itself uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunnerSpec {
    /// Display name.
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// How often the runner writes `status.json`; after three missed intervals it is `unknown`.
    #[serde(default = "default_heartbeat_interval")]
    pub heartbeat_interval: String,
}

fn default_heartbeat_interval() -> String {
    DEFAULT_HEARTBEAT_INTERVAL.to_owned()
}

/// The rule for a description.
pub fn description(text: &str) -> Result<(), String> {
    if text.chars().count() > DESCRIPTION_MAX {
        Err(format!(
            "is {} characters long; allowed: at most {DESCRIPTION_MAX}",
            text.chars().count()
        ))
    } else {
        Ok(())
    }
}

/// The rule for a heartbeat interval.
pub fn heartbeat_interval(text: &str) -> Result<Duration, String> {
    duration::between(text, HEARTBEAT_INTERVAL_RANGE.0, HEARTBEAT_INTERVAL_RANGE.1)
}

impl RunnerSpec {
    /// The heartbeat interval. Only fails on specs that [`RunnerSpec::validate`] refuses.
    pub fn heartbeat_interval(&self) -> Result<Duration, String> {
        heartbeat_interval(&self.heartbeat_interval)
    }

    /// Every rule the spec breaks, each with the path of the field at fault.
    pub fn validate(&self) -> Vec<Violation> {
        let root = FieldPath::root();
        let mut v = Violations::default();
        v.check(
            &root.field("name"),
            rules::display_name(&self.name, rules::RUNNER_NAME_MAX),
        );
        v.check(&root.field("description"), description(&self.description));
        v.check(&root.field("heartbeat_interval"), self.heartbeat_interval());
        v.into_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_each_field() {
        let spec = RunnerSpec {
            name: " bad".into(),
            description: "d".repeat(300),
            heartbeat_interval: "500ms".into(),
        };
        let paths: Vec<String> = spec.validate().iter().map(|v| v.path.to_string()).collect();
        assert_eq!(paths, ["name", "description", "heartbeat_interval"]);
    }
}
