//! References to secrets. A spec names where a secret lives; the runner resolves it at run
//! time with its own identity, so no secret value ever reaches Terraform state, plan output,
//! the control store or logs.

use serde::{Deserialize, Serialize};

use crate::path::{FieldPath, Violations};
use crate::rules;

/// Where a secret lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretKind {
    /// An environment variable of the runner process.
    Env,
    /// A file readable by the runner process (e.g. a mounted secret).
    File,
    /// An AWS Secrets Manager secret, by name or ARN, read with the runner's AWS identity.
    AwsSecretsManager,
}

impl SecretKind {
    /// Every kind, as written in configuration.
    pub const ALL: [&'static str; 3] = ["env", "file", "aws_secrets_manager"];
}

/// A reference to a secret value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretRef {
    /// Where the secret lives.
    #[serde(rename = "type")]
    pub kind: SecretKind,
    /// The variable name (`env`) or absolute file path (`file`).
    pub name: String,
    /// When the secret is a JSON object, the key whose string value is the secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

impl SecretRef {
    /// Checks the reference's shape (not whether the secret exists: only the runner can see it).
    pub fn validate(&self, path: &FieldPath, violations: &mut Violations) {
        let outcome = rules::secret_name(self.kind, &self.name);
        violations.check(&path.field("name"), outcome);
        if let Some(key) = &self.key {
            violations.check(&path.field("key"), rules::non_empty(key));
        }
    }
}

impl std::fmt::Display for SecretRef {
    /// Describes where the secret lives, never its value; safe for logs and errors.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.kind {
            SecretKind::Env => "environment variable",
            SecretKind::File => "file",
            SecretKind::AwsSecretsManager => "AWS Secrets Manager secret",
        };
        write!(f, "{kind} {}", self.name)?;
        if let Some(key) = &self.key {
            write!(f, " (key {key:?})")?;
        }
        Ok(())
    }
}
