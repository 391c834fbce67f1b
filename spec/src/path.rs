//! Field paths and violations.
//!
//! Spec field names are the Terraform attribute names, and spec sub-objects are Terraform
//! blocks with single nesting, so a [`FieldPath`] maps one to one onto a Terraform attribute
//! path and the diagnostic points at the offending line.

use std::fmt;

/// One step of a [`FieldPath`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PathStep {
    /// An object field or block name.
    Field(String),
    /// An element of a list.
    Index(usize),
    /// An element of a map.
    Key(String),
}

/// Where in a spec a value sits, e.g. `source.postgres.tables[1]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct FieldPath(Vec<PathStep>);

impl FieldPath {
    /// The path of the whole document.
    pub fn root() -> Self {
        Self::default()
    }

    /// A path one field deeper.
    pub fn field(&self, name: &str) -> Self {
        self.with(PathStep::Field(name.to_owned()))
    }

    /// A path to a list element.
    pub fn index(&self, index: usize) -> Self {
        self.with(PathStep::Index(index))
    }

    /// A path to a map element.
    pub fn key(&self, key: &str) -> Self {
        self.with(PathStep::Key(key.to_owned()))
    }

    /// The steps, outermost first.
    pub fn steps(&self) -> &[PathStep] {
        &self.0
    }

    fn with(&self, step: PathStep) -> Self {
        let mut steps = self.0.clone();
        steps.push(step);
        Self(steps)
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, step) in self.0.iter().enumerate() {
            match step {
                PathStep::Field(name) if i == 0 => write!(f, "{name}")?,
                PathStep::Field(name) => write!(f, ".{name}")?,
                PathStep::Index(index) => write!(f, "[{index}]")?,
                PathStep::Key(key) => write!(f, "[{key:?}]")?,
            }
        }
        Ok(())
    }
}

/// A rule a spec breaks: where, and a message that says what is allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The offending field.
    pub path: FieldPath,
    /// What is wrong and what is allowed, as one sentence.
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.steps().is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Collects violations while a spec is walked.
#[derive(Debug, Default)]
pub struct Violations(Vec<Violation>);

impl Violations {
    /// Records `message` against `path`.
    pub fn push(&mut self, path: &FieldPath, message: impl Into<String>) {
        self.0.push(Violation {
            path: path.clone(),
            message: message.into(),
        });
    }

    /// Records the outcome of a leaf rule.
    pub fn check<T>(&mut self, path: &FieldPath, outcome: Result<T, String>) -> Option<T> {
        match outcome {
            Ok(value) => Some(value),
            Err(message) => {
                self.push(path, message);
                None
            }
        }
    }

    /// The violations found, in the order they were found.
    pub fn into_vec(self) -> Vec<Violation> {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_like_terraform_addresses() {
        let path = FieldPath::root()
            .field("source")
            .field("postgres")
            .field("tables")
            .index(1);
        assert_eq!(path.to_string(), "source.postgres.tables[1]");
        assert_eq!(
            FieldPath::root().field("labels").key("team").to_string(),
            "labels[\"team\"]"
        );
    }
}
