//! Attribute paths: where in a resource's value something is at fault.
//!
//! Terraform points its error messages at the configuration line a path names, so every
//! diagnostic about a value should carry one.

use std::fmt;

/// One step of an [`AttributePath`], mirroring the protocol's three selectors.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PathStep {
    /// An attribute of an object (or a nested block's type name).
    Attribute(String),
    /// An element of a map, by key.
    Key(String),
    /// An element of a list or tuple, by position.
    Index(i64),
}

/// A path from the root of a resource (or provider, or data source) value to one value in it.
///
/// Built like terraform-plugin-framework's paths, so code reads the same in both:
/// `AttributePath::root("rule").index(0).attribute("port")`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AttributePath {
    steps: Vec<PathStep>,
}

impl AttributePath {
    /// The empty path: the whole value. Diagnostics with it point at the resource block.
    pub fn empty() -> Self {
        Self::default()
    }

    /// A path to a top-level attribute or nested block.
    pub fn root(name: impl Into<String>) -> Self {
        Self::empty().attribute(name)
    }

    /// Steps into an object attribute or nested block.
    #[must_use]
    pub fn attribute(mut self, name: impl Into<String>) -> Self {
        self.steps.push(PathStep::Attribute(name.into()));
        self
    }

    /// Steps into a map element.
    #[must_use]
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.steps.push(PathStep::Key(key.into()));
        self
    }

    /// Steps into a list or tuple element.
    #[must_use]
    pub fn index(mut self, index: usize) -> Self {
        self.steps
            .push(PathStep::Index(i64::try_from(index).unwrap_or(i64::MAX)));
        self
    }

    /// Appends one step.
    #[must_use]
    pub fn step(mut self, step: PathStep) -> Self {
        self.steps.push(step);
        self
    }

    /// The steps from the root.
    pub fn steps(&self) -> &[PathStep] {
        &self.steps
    }

    /// Whether this is the whole value.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Builds a path from steps, as decoded from the protocol.
    pub fn from_steps(steps: Vec<PathStep>) -> Self {
        Self { steps }
    }
}

impl fmt::Display for AttributePath {
    /// Renders the path the way Terraform's own messages do: `rule[0].port`, `tags["env"]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (position, step) in self.steps.iter().enumerate() {
            match step {
                PathStep::Attribute(name) if position == 0 => write!(f, "{name}")?,
                PathStep::Attribute(name) => write!(f, ".{name}")?,
                PathStep::Key(key) => write!(f, "[{key:?}]")?,
                PathStep::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_like_terraform() {
        let path = AttributePath::root("rule")
            .index(0)
            .attribute("tags")
            .key("env");
        assert_eq!(path.to_string(), r#"rule[0].tags["env"]"#);
    }
}
