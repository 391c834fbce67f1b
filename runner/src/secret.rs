//! Resolving secret references at run time, with the runner's own identity. Values are never
//! logged or put in errors; errors name where the secret was looked for.

use lakestream_spec::secret::{SecretKind, SecretRef};

/// Why a secret could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The environment variable is not set.
    #[error("secret {reference}: not set in the runner's environment")]
    MissingEnv {
        /// Where it was looked for.
        reference: String,
    },
    /// The file could not be read.
    #[error("secret {reference}: {source}")]
    File {
        /// Where it was looked for.
        reference: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// AWS Secrets Manager refused or failed.
    #[error("secret {reference}: {message}")]
    Aws {
        /// Where it was looked for.
        reference: String,
        /// AWS's error code and message.
        message: String,
    },
    /// A key was asked for and the secret is not a JSON object holding it as a string.
    #[error("secret {reference}: {reason}")]
    Key {
        /// Where it was looked for.
        reference: String,
        /// What was wrong (never the value).
        reason: &'static str,
    },
}

/// Resolves a secret reference to its value.
pub async fn resolve(reference: &SecretRef) -> Result<String, SecretError> {
    let raw = match reference.kind {
        SecretKind::Env => std::env::var(&reference.name).map_err(|_| SecretError::MissingEnv {
            reference: reference.to_string(),
        })?,
        SecretKind::File => {
            std::fs::read_to_string(&reference.name).map_err(|source| SecretError::File {
                reference: reference.to_string(),
                source,
            })?
        }
        SecretKind::AwsSecretsManager => aws_secret(reference).await?,
    };
    match &reference.key {
        None if reference.kind == SecretKind::File => {
            Ok(raw.trim_end_matches(['\n', '\r']).to_owned())
        }
        None => Ok(raw),
        Some(key) => select_key(&raw, key).map_err(|reason| SecretError::Key {
            reference: reference.to_string(),
            reason,
        }),
    }
}

/// Reads a Secrets Manager secret with the runner's own AWS identity (the standard chain:
/// environment, ECS task role, web identity for EKS, instance role).
async fn aws_secret(reference: &SecretRef) -> Result<String, SecretError> {
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let client = aws_sdk_secretsmanager::Client::new(&config);
    let output = client
        .get_secret_value()
        .secret_id(&reference.name)
        .send()
        .await
        .map_err(|err| {
            let message = match err.as_service_error() {
                Some(service) => {
                    use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
                    format!(
                        "{}: {}",
                        service.code().unwrap_or("error"),
                        service.message().unwrap_or("no message")
                    )
                }
                None => format!(
                    "{}",
                    aws_sdk_secretsmanager::error::DisplayErrorContext(&err)
                ),
            };
            SecretError::Aws {
                reference: reference.to_string(),
                message,
            }
        })?;
    match (output.secret_string(), output.secret_binary()) {
        (Some(text), _) => Ok(text.to_owned()),
        (None, Some(binary)) => {
            String::from_utf8(binary.as_ref().to_vec()).map_err(|_| SecretError::Key {
                reference: reference.to_string(),
                reason: "is binary, not text",
            })
        }
        (None, None) => Err(SecretError::Key {
            reference: reference.to_string(),
            reason: "has no value",
        }),
    }
}

fn select_key(raw: &str, key: &str) -> Result<String, &'static str> {
    let value: serde_json::Value =
        serde_json::from_str(raw).map_err(|_| "is not a JSON object, so no key can be selected")?;
    match value.get(key) {
        Some(serde_json::Value::String(text)) => Ok(text.clone()),
        Some(_) => Err("the key's value is not a string"),
        None => Err("the JSON object has no such key"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn resolves_files_and_keys_without_leaking_values() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("plain");
        std::fs::write(&plain, "s3cret\n").unwrap();
        let json = dir.path().join("json");
        std::fs::write(&json, r#"{"password":"hunter2","port":5432}"#).unwrap();
        let file = |path: &std::path::Path, key: Option<&str>| SecretRef {
            kind: SecretKind::File,
            name: path.display().to_string(),
            key: key.map(str::to_owned),
        };
        assert_eq!(resolve(&file(&plain, None)).await.unwrap(), "s3cret");
        assert_eq!(
            resolve(&file(&json, Some("password"))).await.unwrap(),
            "hunter2"
        );
        let wrong_type = resolve(&file(&json, Some("port")))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            wrong_type.ends_with("(key \"port\"): the key's value is not a string"),
            "{wrong_type}"
        );
        let not_json = resolve(&file(&plain, Some("password")))
            .await
            .unwrap_err()
            .to_string();
        assert!(!not_json.contains("s3cret"), "{not_json}");
        let missing = SecretRef {
            kind: SecretKind::Env,
            name: "LAKESTREAM_TEST_UNSET_VARIABLE".into(),
            key: None,
        };
        assert_eq!(
            resolve(&missing).await.unwrap_err().to_string(),
            "secret environment variable LAKESTREAM_TEST_UNSET_VARIABLE: not set in the runner's environment"
        );
    }
}
