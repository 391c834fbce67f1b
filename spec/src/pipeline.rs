//! The pipeline spec: one source, one target, and how changes flow between them. Stored in
//! the control store as immutable numbered versions; the runner runs exactly this.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use url::Url;

use crate::path::{FieldPath, Violation, Violations};
use crate::rules;
use crate::secret::SecretRef;
use crate::store::StoreUrl;
use crate::{duration, size};

/// Default flush interval: how long a change may wait in memory before it is written.
pub const DEFAULT_FLUSH_INTERVAL: &str = "1s";
/// Smallest and largest flush intervals.
pub const FLUSH_INTERVAL_RANGE: (Duration, Duration) =
    (Duration::from_millis(100), Duration::from_secs(3600));
/// Default target file size.
pub const DEFAULT_TARGET_FILE_SIZE: &str = "32MiB";
/// Smallest and largest target file sizes, in bytes.
pub const TARGET_FILE_SIZE_RANGE: (u64, u64) = (1 << 20, 1 << 30);
/// Default number of consecutive failures before a pipeline enters `crash_loop`.
pub const DEFAULT_MAX_CONSECUTIVE_FAILURES: u32 = 5;
/// Default PostgreSQL port.
pub const DEFAULT_POSTGRES_PORT: u16 = 5432;

/// One CDC pipeline: exactly one source and one target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineSpec {
    /// Display name.
    pub name: String,
    /// Where changes come from.
    pub source: SourceSpec,
    /// Where change files go.
    pub target: TargetSpec,
    /// What to do when a source table's columns change.
    #[serde(default)]
    pub on_schema_change: SchemaChangePolicy,
    /// Failures in a row after which the runner stops retrying and reports `crash_loop`.
    #[serde(default = "default_max_consecutive_failures")]
    pub max_consecutive_failures: u32,
}

fn default_max_consecutive_failures() -> u32 {
    DEFAULT_MAX_CONSECUTIVE_FAILURES
}

/// The source database: exactly one of the database blocks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSpec {
    /// PostgreSQL logical replication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postgres: Option<PostgresSpec>,
}

/// Every source kind, for messages.
pub const SOURCE_KINDS: [&str; 1] = ["postgres"];

/// PostgreSQL logical replication (pgoutput) from one database.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresSpec {
    /// `postgresql://user@host:port/database?sslmode=…`, instead of the separate fields. It
    /// must not carry a password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Server host name or address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Server port (default 5432).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i64>,
    /// Database name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    /// Role with the REPLICATION attribute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Where the role's password lives; none for trust or certificate authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<SecretRef>,
    /// TLS mode, as libpq's `sslmode`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sslmode: Option<SslMode>,
    /// CA certificate file for `verify-ca` / `verify-full`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssl_root_cert: Option<String>,
    /// Tables to capture, as `schema.table` or `table`.
    pub tables: Vec<String>,
    /// Publication name; by default derived from the pipeline id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publication: Option<String>,
    /// Create the publication when it does not exist.
    #[serde(default = "yes")]
    pub create_publication: bool,
    /// Replication slot name; by default derived from the pipeline id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<String>,
}

fn yes() -> bool {
    true
}

/// libpq's `sslmode` values Lakestream supports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SslMode {
    /// Never use TLS.
    Disable,
    /// Use TLS when the server offers it, without checking its certificate.
    #[default]
    Prefer,
    /// Always use TLS, without checking the server's certificate.
    Require,
    /// Always use TLS and check the certificate chain.
    VerifyCa,
    /// Always use TLS and check the chain and the host name.
    VerifyFull,
}

impl SslMode {
    /// Every mode, as written in configuration.
    pub const ALL: [&'static str; 5] = ["disable", "prefer", "require", "verify-ca", "verify-full"];

    /// Parses a mode with a message naming the allowed ones.
    pub fn parse(text: &str) -> Result<Self, String> {
        Ok(match rules::one_of(text, &Self::ALL)? {
            "disable" => Self::Disable,
            "prefer" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            _ => Self::VerifyFull,
        })
    }
}

/// Connection parameters of a [`PostgresSpec`], whichever way they were written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresConnection {
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Database name.
    pub database: String,
    /// Role name.
    pub user: String,
    /// TLS mode.
    pub sslmode: SslMode,
}

impl PostgresSpec {
    /// The connection parameters, from `url` or from the separate fields. Only fails on specs
    /// that [`PipelineSpec::validate`] refuses.
    pub fn connection(&self) -> Result<PostgresConnection, String> {
        match &self.url {
            Some(url) => {
                let mut connection = parse_postgres_url(url)?;
                if let Some(mode) = self.sslmode {
                    connection.sslmode = mode;
                }
                Ok(connection)
            }
            None => Ok(PostgresConnection {
                host: self.host.clone().ok_or("host is required")?,
                port: rules::port(self.port.unwrap_or(i64::from(DEFAULT_POSTGRES_PORT)))?,
                database: self.database.clone().ok_or("database is required")?,
                user: self.user.clone().ok_or("user is required")?,
                sslmode: self.sslmode.unwrap_or_default(),
            }),
        }
    }

    /// The tables as `(schema, table)`.
    pub fn table_names(&self) -> Result<Vec<(String, String)>, String> {
        self.tables.iter().map(|t| rules::table_name(t)).collect()
    }

    /// The replication slot this pipeline uses.
    pub fn slot_name(&self, pipeline_id: &str) -> String {
        self.slot
            .clone()
            .unwrap_or_else(|| default_object_name(pipeline_id))
    }

    /// The publication this pipeline uses.
    pub fn publication_name(&self, pipeline_id: &str) -> String {
        self.publication
            .clone()
            .unwrap_or_else(|| default_object_name(pipeline_id))
    }

    fn validate(&self, path: &FieldPath, v: &mut Violations) {
        let separate = [
            ("host", self.host.is_some()),
            ("port", self.port.is_some()),
            ("database", self.database.is_some()),
            ("user", self.user.is_some()),
        ];
        match &self.url {
            Some(url) => {
                for (field, present) in separate {
                    if present {
                        v.push(
                            &path.field(field),
                            format!("conflicts with url; give either url or {field}, not both"),
                        );
                    }
                }
                v.check(&path.field("url"), parse_postgres_url(url));
            }
            None => {
                for field in ["host", "database", "user"] {
                    if !separate
                        .iter()
                        .any(|(name, present)| *name == field && *present)
                    {
                        v.push(
                            &path.field(field),
                            format!("{field} is required unless url is given"),
                        );
                    }
                }
                if let Some(host) = &self.host {
                    v.check(&path.field("host"), rules::host(host));
                }
                if let Some(port) = self.port {
                    v.check(&path.field("port"), rules::port(port));
                }
                for (field, value) in [("database", &self.database), ("user", &self.user)] {
                    if let Some(value) = value {
                        v.check(&path.field(field), rules::pg_identifier(value));
                    }
                }
            }
        }
        if let Some(secret) = &self.password {
            secret.validate(&path.field("password"), v);
        }
        if let Some(cert) = &self.ssl_root_cert {
            v.check(&path.field("ssl_root_cert"), rules::absolute_path(cert));
        } else if matches!(self.sslmode, Some(SslMode::VerifyCa | SslMode::VerifyFull)) {
            v.push(
                &path.field("ssl_root_cert"),
                "required when sslmode is verify-ca or verify-full",
            );
        }
        let tables_path = path.field("tables");
        if self.tables.is_empty() {
            v.push(&tables_path, "at least one table is required");
        }
        let mut seen = std::collections::HashSet::new();
        for (i, table) in self.tables.iter().enumerate() {
            if let Some(name) = v.check(&tables_path.index(i), rules::table_name(table))
                && !seen.insert(name.clone())
            {
                v.push(
                    &tables_path.index(i),
                    format!("{}.{} is listed twice", name.0, name.1),
                );
            }
        }
        if let Some(publication) = &self.publication {
            v.check(
                &path.field("publication"),
                rules::pg_identifier(publication),
            );
        }
        if let Some(slot) = &self.slot {
            v.check(&path.field("slot"), rules::slot_name(slot));
        }
    }
}

/// `lakestream_<pipeline id>` with characters PostgreSQL refuses in slot names replaced, so the
/// default names are valid for both slots and publications.
pub fn default_object_name(pipeline_id: &str) -> String {
    let mut name: String = format!("lakestream_{pipeline_id}")
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                '_'
            }
        })
        .collect();
    name.truncate(rules::PG_IDENTIFIER_MAX);
    name
}

fn parse_postgres_url(text: &str) -> Result<PostgresConnection, String> {
    let url = Url::parse(text).map_err(|err| {
        format!("{text:?} is not a URL ({err}); write postgresql://user@host:port/database")
    })?;
    if !matches!(url.scheme(), "postgres" | "postgresql") {
        return Err(format!("{text:?} must start with postgresql://"));
    }
    if url.password().is_some() {
        return Err(
            "the URL must not contain a password; give a secret reference in the password block"
                .to_owned(),
        );
    }
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| format!("{text:?} names no host"))?;
    let database = url.path().trim_start_matches('/');
    if database.is_empty() || database.contains('/') {
        return Err(format!(
            "{text:?} must name exactly one database, as postgresql://user@host:port/database"
        ));
    }
    if url.username().is_empty() {
        return Err(format!(
            "{text:?} names no user, as postgresql://user@host:port/database"
        ));
    }
    let mut sslmode = SslMode::default();
    for (key, value) in url.query_pairs() {
        match key.as_ref() {
            "sslmode" => sslmode = SslMode::parse(&value)?,
            other => {
                return Err(format!(
                    "the URL parameter {other:?} is not supported; allowed: sslmode"
                ));
            }
        }
    }
    let decode = |s: &str| {
        percent_decode(s).ok_or_else(|| format!("{text:?} has an invalid percent-encoding"))
    };
    Ok(PostgresConnection {
        host: host.trim_matches(|c| c == '[' || c == ']').to_owned(),
        port: url.port().unwrap_or(DEFAULT_POSTGRES_PORT),
        database: decode(database)?,
        user: decode(url.username())?,
        sslmode,
    })
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Where change files go and how they are written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSpec {
    /// The lake folder: a store URL (`file:///…`, `s3://…`, `az://…`, `abfss://…`).
    pub uri: String,
    /// File format.
    #[serde(default)]
    pub format: Format,
    /// Longest time a change waits in memory before it is written.
    #[serde(default = "default_flush_interval")]
    pub flush_interval: String,
    /// Size of buffered changes at which a file is written without waiting for the interval.
    #[serde(default = "default_target_file_size")]
    pub target_file_size: String,
}

fn default_flush_interval() -> String {
    DEFAULT_FLUSH_INTERVAL.to_owned()
}

fn default_target_file_size() -> String {
    DEFAULT_TARGET_FILE_SIZE.to_owned()
}

/// Change-file formats.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// Apache Parquet, Snappy-compressed.
    #[default]
    Parquet,
    /// Newline-delimited JSON, one change per line.
    Jsonl,
    /// Avro object container files, Snappy-compressed.
    Avro,
}

impl Format {
    /// Every format, as written in configuration.
    pub const ALL: [&'static str; 3] = ["parquet", "jsonl", "avro"];

    /// The file extension, without a dot.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Parquet => "parquet",
            Self::Jsonl => "jsonl",
            Self::Avro => "avro",
        }
    }
}

impl TargetSpec {
    /// The flush interval. Only fails on specs that [`PipelineSpec::validate`] refuses.
    pub fn flush_interval(&self) -> Result<Duration, String> {
        duration::between(
            &self.flush_interval,
            FLUSH_INTERVAL_RANGE.0,
            FLUSH_INTERVAL_RANGE.1,
        )
    }

    /// The target file size in bytes. Only fails on specs that [`PipelineSpec::validate`] refuses.
    pub fn target_file_size(&self) -> Result<u64, String> {
        size::between(
            &self.target_file_size,
            TARGET_FILE_SIZE_RANGE.0,
            TARGET_FILE_SIZE_RANGE.1,
        )
    }

    /// The lake URL. Only fails on specs that [`PipelineSpec::validate`] refuses.
    pub fn store_url(&self) -> Result<StoreUrl, String> {
        lake_uri(&self.uri, self.format)
    }

    fn validate(&self, path: &FieldPath, v: &mut Violations) {
        v.check(&path.field("uri"), lake_uri(&self.uri, self.format));
        v.check(&path.field("flush_interval"), self.flush_interval());
        v.check(&path.field("target_file_size"), self.target_file_size());
    }
}

/// The rule for a target `uri` given its `format`: a store URL naming a folder, not a file.
/// Change files are many per table, so a URI that looks like a single file of some format is
/// a mistake worth stopping at plan time.
pub fn lake_uri(uri: &str, format: Format) -> Result<StoreUrl, String> {
    let url = StoreUrl::parse(uri)?;
    let last = url.prefix().rsplit('/').next().unwrap_or_default();
    if let Some((_, extension)) = last.rsplit_once('.') {
        let extension = extension.to_ascii_lowercase();
        let known = ["parquet", "jsonl", "json", "ndjson", "avro", "csv"];
        if known.contains(&extension.as_str()) {
            let hint = if extension == format.extension() {
                String::new()
            } else {
                format!(
                    " (and a .{extension} name does not match format {:?})",
                    format.extension()
                )
            };
            return Err(format!(
                "{uri:?} names a file; the target uri must be a folder, which receives one sub-folder per table of .{} files{hint}",
                format.extension()
            ));
        }
    }
    Ok(url)
}

/// What the runner does when a source table's columns change.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SchemaChangePolicy {
    /// New files carry the new schema; nothing stops.
    #[default]
    Evolve,
    /// Stop the pipeline with an error naming the table and the change.
    Fail,
}

impl SchemaChangePolicy {
    /// Every policy, as written in configuration.
    pub const ALL: [&'static str; 2] = ["evolve", "fail"];
}

/// Allowed range of `max_consecutive_failures`.
pub const MAX_CONSECUTIVE_FAILURES_RANGE: (u32, u32) = (1, 1000);

/// The rule for `max_consecutive_failures`.
pub fn max_consecutive_failures(value: i64) -> Result<u32, String> {
    let (min, max) = MAX_CONSECUTIVE_FAILURES_RANGE;
    u32::try_from(value)
        .ok()
        .filter(|v| (min..=max).contains(v))
        .ok_or_else(|| format!("{value} is out of range; allowed: {min} to {max}"))
}

impl PipelineSpec {
    /// Every rule the spec breaks, each with the path of the field at fault.
    pub fn validate(&self) -> Vec<Violation> {
        let root = FieldPath::root();
        let mut v = Violations::default();
        v.check(
            &root.field("name"),
            rules::display_name(&self.name, rules::PIPELINE_NAME_MAX),
        );
        let source_path = root.field("source");
        match &self.source.postgres {
            Some(postgres) => postgres.validate(&source_path.field("postgres"), &mut v),
            None => v.push(
                &source_path,
                format!(
                    "exactly one source block is required; allowed: {}",
                    SOURCE_KINDS.join(", ")
                ),
            ),
        }
        self.target.validate(&root.field("target"), &mut v);
        v.check(
            &root.field("max_consecutive_failures"),
            max_consecutive_failures(i64::from(self.max_consecutive_failures)),
        );
        v.into_vec()
    }

    /// Parses a spec from JSON and validates it; every problem in one message, one per line.
    pub fn from_json(json: &str) -> Result<Self, String> {
        let spec: Self =
            serde_json::from_str(json).map_err(|err| format!("invalid pipeline spec: {err}"))?;
        let violations = spec.validate();
        if violations.is_empty() {
            Ok(spec)
        } else {
            let lines: Vec<String> = violations.iter().map(ToString::to_string).collect();
            Err(format!("invalid pipeline spec: {}", lines.join("; ")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::SecretKind;

    fn spec() -> PipelineSpec {
        PipelineSpec {
            name: "orders".into(),
            source: SourceSpec {
                postgres: Some(PostgresSpec {
                    host: Some("127.0.0.1".into()),
                    database: Some("app".into()),
                    user: Some("cdc".into()),
                    password: Some(SecretRef {
                        kind: SecretKind::Env,
                        name: "PGPASSWORD".into(),
                        key: None,
                    }),
                    tables: vec!["public.orders".into()],
                    create_publication: true,
                    ..Default::default()
                }),
            },
            target: TargetSpec {
                uri: "file:///tmp/lake".into(),
                format: Format::Parquet,
                flush_interval: "1s".into(),
                target_file_size: "32MiB".into(),
            },
            on_schema_change: SchemaChangePolicy::Evolve,
            max_consecutive_failures: 5,
        }
    }

    fn paths(spec: &PipelineSpec) -> Vec<String> {
        spec.validate().iter().map(|v| v.path.to_string()).collect()
    }

    #[test]
    fn a_complete_spec_is_valid_and_round_trips() {
        let spec = spec();
        assert_eq!(spec.validate(), vec![]);
        let json = serde_json::to_string(&spec).unwrap();
        assert_eq!(PipelineSpec::from_json(&json).unwrap(), spec);
    }

    #[test]
    fn defaults_fill_a_minimal_file() {
        let spec = PipelineSpec::from_json(
            r#"{"name":"o","source":{"postgres":{"url":"postgresql://cdc@db:6543/app","tables":["t"]}},"target":{"uri":"s3://lake-bucket/cdc"}}"#,
        )
        .unwrap();
        let pg = spec.source.postgres.as_ref().unwrap();
        assert_eq!(
            pg.connection().unwrap(),
            PostgresConnection {
                host: "db".into(),
                port: 6543,
                database: "app".into(),
                user: "cdc".into(),
                sslmode: SslMode::Prefer
            }
        );
        assert_eq!(
            spec.target.flush_interval().unwrap(),
            Duration::from_secs(1)
        );
        assert_eq!(spec.target.target_file_size().unwrap(), 32 << 20);
        assert_eq!(pg.slot_name("orders-x1y2"), "lakestream_orders_x1y2");
    }

    #[test]
    fn reports_each_field_at_fault() {
        let mut bad = spec();
        let pg = bad.source.postgres.as_mut().unwrap();
        pg.url = Some("postgresql://cdc:secret@db/app".into());
        pg.tables = vec!["ok".into(), "a.b.c".into(), "OK".into()];
        pg.slot = Some("Bad-Slot".into());
        bad.target.uri = "s3://lake/orders.parquet".into();
        bad.target.flush_interval = "1d".into();
        assert_eq!(
            paths(&bad),
            [
                "source.postgres.host",
                "source.postgres.database",
                "source.postgres.user",
                "source.postgres.url",
                "source.postgres.tables[1]",
                "source.postgres.tables[2]",
                "source.postgres.slot",
                "target.uri",
                "target.flush_interval",
            ]
        );
        let url_message = &bad.validate()[3].message;
        assert!(
            url_message.contains("must not contain a password"),
            "{url_message}"
        );
    }

    #[test]
    fn requires_exactly_one_source() {
        let mut bad = spec();
        bad.source.postgres = None;
        let violations = bad.validate();
        assert_eq!(
            violations[0].to_string(),
            "source: exactly one source block is required; allowed: postgres"
        );
    }

    #[test]
    fn file_like_uris_name_the_mismatch() {
        let err = lake_uri("file:///tmp/out.jsonl", Format::Parquet).unwrap_err();
        assert!(
            err.contains("must be a folder") && err.contains("does not match format \"parquet\""),
            "{err}"
        );
        assert!(lake_uri("file:///tmp/v1.2", Format::Parquet).is_ok());
    }
}
