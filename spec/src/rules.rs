//! Leaf rules: one function per kind of value, each returning a message that names what is
//! allowed. The provider attaches them to attributes as validators; the specs' `validate()`
//! calls them with field paths. One definition, two callers.

use std::sync::LazyLock;

use regex::Regex;

/// Maximum length of a runner name.
pub const RUNNER_NAME_MAX: usize = 30;
/// Maximum length of a pipeline name.
pub const PIPELINE_NAME_MAX: usize = 64;
/// Maximum length of a PostgreSQL identifier (NAMEDATALEN - 1).
pub const PG_IDENTIFIER_MAX: usize = 63;

static DISPLAY_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z0-9_-][A-Za-z0-9 _-]*$").unwrap());
static OBJECT_ID: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-z0-9][a-z0-9_-]{0,47}$").unwrap());
static SLOT_NAME: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[a-z0-9_]{1,63}$").unwrap());
static ENV_VAR: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z_][A-Za-z0-9_]*$").unwrap());

/// A runner's or pipeline's display name: 1 to `max` characters of A–Z, a–z, 0–9, space (not
/// first), `-` and `_`.
pub fn display_name(name: &str, max: usize) -> Result<(), String> {
    if name.is_empty() || name.chars().count() > max || !DISPLAY_NAME.is_match(name) {
        return Err(format!(
            "{name:?} is not a valid name; allowed: 1 to {max} characters of A-Z, a-z, 0-9, space (not first), '-' and '_'"
        ));
    }
    Ok(())
}

/// A generated runner or pipeline id: lower-case letters, digits, `-` and `_`, at most 48
/// characters. Ids name folders in the control store and files in the lake.
pub fn object_id(id: &str) -> Result<(), String> {
    if OBJECT_ID.is_match(id) {
        Ok(())
    } else {
        Err(format!(
            "{id:?} is not a valid id; allowed: 1 to 48 characters of a-z, 0-9, '-' and '_', starting with a letter or digit"
        ))
    }
}

/// Turns a display name into the start of an id: lower case, spaces to `-`, at most 32
/// characters. The caller appends a random suffix.
pub fn slug(name: &str) -> String {
    let slug: String = name
        .trim()
        .chars()
        .map(|c| match c {
            'A'..='Z' => c.to_ascii_lowercase(),
            'a'..='z' | '0'..='9' | '_' | '-' => c,
            _ => '-',
        })
        .take(32)
        .collect();
    let slug = slug.trim_matches('-').to_owned();
    if slug.is_empty() {
        "x".to_owned()
    } else {
        slug
    }
}

/// A PostgreSQL replication slot name: 1 to 63 characters of a–z, 0–9 and `_`.
pub fn slot_name(name: &str) -> Result<(), String> {
    if SLOT_NAME.is_match(name) {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a valid replication slot name; allowed: 1 to 63 characters of a-z, 0-9 and '_'"
        ))
    }
}

/// A PostgreSQL identifier used verbatim (publication names): 1 to 63 bytes, no NUL.
pub fn pg_identifier(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > PG_IDENTIFIER_MAX || name.contains('\0') {
        return Err(format!(
            "{name:?} is not a valid PostgreSQL identifier; allowed: 1 to 63 bytes"
        ));
    }
    Ok(())
}

/// A table reference `schema.table` or `table` (schema `public`). Unquoted parts are folded to
/// lower case as PostgreSQL does; parts in double quotes keep their case and may contain dots.
/// Returns `(schema, table)`.
pub fn table_name(text: &str) -> Result<(String, String), String> {
    let invalid = |why: &str| {
        format!(
            "{text:?} is not a table name ({why}); write schema.table or table, quoting parts with double quotes when they need upper case or special characters"
        )
    };
    let mut parts = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        let mut part = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        part.push('"');
                    }
                    Some('"') => break,
                    Some(c) => part.push(c),
                    None => return Err(invalid("unterminated quote")),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == '.' {
                    break;
                }
                if !(c.is_ascii_alphanumeric() || c == '_' || c == '$') {
                    return Err(invalid(&format!("unexpected character {c:?}")));
                }
                part.push(c.to_ascii_lowercase());
                chars.next();
            }
            if part.starts_with(|c: char| c.is_ascii_digit() || c == '$') {
                return Err(invalid("an unquoted name must start with a letter or '_'"));
            }
        }
        if part.is_empty() || part.len() > PG_IDENTIFIER_MAX {
            return Err(invalid("each part must be 1 to 63 bytes"));
        }
        parts.push(part);
        match chars.next() {
            None => break,
            Some('.') => continue,
            Some(c) => return Err(invalid(&format!("unexpected character {c:?}"))),
        }
    }
    match parts.as_slice() {
        [table] => Ok(("public".to_owned(), table.clone())),
        [schema, table] => Ok((schema.clone(), table.clone())),
        _ => Err(invalid("at most one '.' between schema and table")),
    }
}

/// An environment variable name.
pub fn env_var_name(name: &str) -> Result<(), String> {
    if ENV_VAR.is_match(name) {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not an environment variable name; allowed: A-Z, a-z, 0-9 and '_', not starting with a digit"
        ))
    }
}

/// An AWS Secrets Manager secret id: a name (1 to 512 characters of `A-Z a-z 0-9 / _ + = . @ -`)
/// or a secret ARN.
pub fn aws_secret_id(id: &str) -> Result<(), String> {
    static NAME: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"^[A-Za-z0-9/_+=.@-]{1,512}$").unwrap());
    static ARN: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+$")
            .unwrap()
    });
    if NAME.is_match(id) || ARN.is_match(id) {
        Ok(())
    } else {
        Err(format!(
            "{id:?} is not a Secrets Manager secret name or ARN; allowed: 1 to 512 characters of A-Z, a-z, 0-9, /_+=.@- or arn:aws:secretsmanager:<region>:<account>:secret:<name>"
        ))
    }
}

/// The `name` of a secret reference of `kind`.
pub fn secret_name(kind: crate::secret::SecretKind, name: &str) -> Result<(), String> {
    use crate::secret::SecretKind;
    match kind {
        SecretKind::Env => env_var_name(name),
        SecretKind::File => absolute_path(name),
        SecretKind::AwsSecretsManager => aws_secret_id(name),
    }
}

/// An absolute file path.
pub fn absolute_path(path: &str) -> Result<(), String> {
    if path.starts_with('/') && !path.contains('\0') {
        Ok(())
    } else {
        Err(format!(
            "{path:?} is not an absolute path; write it starting with '/'"
        ))
    }
}

/// A host name or IP address.
pub fn host(host: &str) -> Result<(), String> {
    let valid = !host.is_empty()
        && host.len() <= 253
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '[' | ']'));
    if valid {
        Ok(())
    } else {
        Err(format!("{host:?} is not a host name or IP address"))
    }
}

/// A TCP port.
pub fn port(port: i64) -> Result<u16, String> {
    u16::try_from(port)
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| format!("{port} is not a TCP port; allowed: 1 to 65535"))
}

/// A value that must not be empty.
pub fn non_empty(text: &str) -> Result<(), String> {
    if text.trim().is_empty() {
        Err("must not be empty".to_owned())
    } else {
        Ok(())
    }
}

/// One of a fixed set of values.
pub fn one_of<'a>(value: &str, allowed: &[&'a str]) -> Result<&'a str, String> {
    allowed
        .iter()
        .find(|a| **a == value)
        .copied()
        .ok_or_else(|| {
            let list: Vec<String> = allowed.iter().map(|a| format!("{a:?}")).collect();
            format!("{value:?} is not allowed; allowed: {}", list.join(", "))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_follow_the_documented_rule() {
        for good in ["a", "Orders DB", "x_y-z", "_lead", "-dash", &"n".repeat(30)] {
            assert!(display_name(good, RUNNER_NAME_MAX).is_ok(), "{good:?}");
        }
        for bad in ["", " lead", "tab\tname", "naïve", "a/b", &"n".repeat(31)] {
            let err = display_name(bad, RUNNER_NAME_MAX).unwrap_err();
            assert!(
                err.contains("allowed: 1 to 30 characters"),
                "{bad:?}: {err}"
            );
        }
    }

    #[test]
    fn slugs_are_valid_id_prefixes() {
        assert_eq!(slug("Orders DB"), "orders-db");
        assert_eq!(slug("  --  "), "x");
        assert!(object_id(&format!("{}-a1b2c3", slug(&"Z".repeat(30)))).is_ok());
    }

    #[test]
    fn table_names_fold_like_postgres() {
        assert_eq!(
            table_name("Orders").unwrap(),
            ("public".into(), "orders".into())
        );
        assert_eq!(
            table_name("sales.Orders").unwrap(),
            ("sales".into(), "orders".into())
        );
        assert_eq!(
            table_name("\"Sales\".\"Big.Table\"").unwrap(),
            ("Sales".into(), "Big.Table".into())
        );
        assert_eq!(
            table_name("\"a\"\"b\"").unwrap(),
            ("public".into(), "a\"b".into())
        );
        for bad in ["", "a.b.c", "a b", "1abc", "\"open", "a.", ".a", "a;drop"] {
            assert!(table_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn secret_ids_are_names_or_arns() {
        assert!(aws_secret_id("prod/shop/cdc").is_ok());
        assert!(
            aws_secret_id("arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/shop-AbCdEf")
                .is_ok()
        );
        assert!(aws_secret_id("has space").is_err());
        assert!(
            aws_secret_id("arn:aws:secretsmanager:eu-west-1:12:secret:x").is_err(),
            "an account id has 12 digits"
        );
    }

    #[test]
    fn one_of_lists_choices() {
        assert_eq!(
            one_of("csv", &["parquet", "jsonl"]).unwrap_err(),
            "\"csv\" is not allowed; allowed: \"parquet\", \"jsonl\""
        );
    }
}
