//! [`PostgresSourceConfig`]: everything the PostgreSQL source needs, already resolved (the
//! pipeline turns the shared spec and its secret references into this).

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

pub use lakestream_spec::pipeline::SslMode;

use crate::change::TableName;
use crate::source::{ErrorKind, SourceError};

/// Default interval between standby status updates: well inside PostgreSQL's default
/// `wal_sender_timeout` (60 s), so an idle but healthy source is never disconnected.
pub const DEFAULT_STATUS_INTERVAL: Duration = Duration::from_secs(10);

/// Default interval between heartbeat messages written into the WAL (see
/// [`PostgresSourceConfig::heartbeat_interval`]).
pub const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(60);

/// Default `application_name`, visible in `pg_stat_activity` and `pg_stat_replication`.
pub const DEFAULT_APPLICATION_NAME: &str = "lakestream";

/// Default number of connections a backfill copies tables on in parallel.
pub const DEFAULT_BACKFILL_CONNECTIONS: usize = 2;

/// Longest identifier PostgreSQL keeps (`NAMEDATALEN - 1`).
const MAX_IDENTIFIER_BYTES: usize = 63;

/// Connection and replication settings of a PostgreSQL source.
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresSourceConfig {
    /// Host name or IP address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Database holding the tables.
    pub database: String,
    /// Role to connect as; needs `LOGIN`, `REPLICATION`, `SELECT` on the tables for a backfill,
    /// and ownership of the tables (or an existing publication) to create the publication.
    pub user: String,
    /// The role's password, if the server asks for one. Never logged (`Debug` redacts it).
    pub password: Option<String>,
    /// libpq-compatible TLS mode.
    pub sslmode: SslMode,
    /// PEM file of the CA(s) to trust; required by `verify-ca` and `verify-full`.
    pub ssl_root_cert: Option<PathBuf>,
    /// Tables to capture.
    pub tables: Vec<TableName>,
    /// Publication to stream.
    pub publication: String,
    /// Create the publication (`FOR TABLE` the included tables) when it does not exist, and add
    /// missing tables to it when it does.
    pub create_publication: bool,
    /// Replication slot (created when missing; dropped and recreated for a backfill).
    pub slot: String,
    /// Interval between standby status updates (they report the acknowledged position and keep
    /// the connection alive while the pipeline is busy flushing).
    pub status_interval: Duration,
    /// Interval between heartbeat messages (`pg_logical_emit_message`) written on an ordinary
    /// connection while streaming; zero disables them. They give the stream something to carry
    /// on a database that writes no WAL at all, so the slot position and lag stay fresh.
    pub heartbeat_interval: Duration,
    /// Connections a backfill copies tables on in parallel (at least 1).
    pub backfill_connections: usize,
    /// `application_name` of every connection.
    pub application_name: String,
}

impl PostgresSourceConfig {
    /// A configuration with the documented defaults for everything but the connection and the
    /// objects to use: `prefer` TLS, no password, publication created if missing.
    pub fn new(
        host: impl Into<String>,
        port: u16,
        database: impl Into<String>,
        user: impl Into<String>,
        tables: Vec<TableName>,
        publication: impl Into<String>,
        slot: impl Into<String>,
    ) -> Self {
        PostgresSourceConfig {
            host: host.into(),
            port,
            database: database.into(),
            user: user.into(),
            password: None,
            sslmode: SslMode::Prefer,
            ssl_root_cert: None,
            tables,
            publication: publication.into(),
            create_publication: true,
            slot: slot.into(),
            status_interval: DEFAULT_STATUS_INTERVAL,
            heartbeat_interval: DEFAULT_HEARTBEAT_INTERVAL,
            backfill_connections: DEFAULT_BACKFILL_CONNECTIONS,
            application_name: DEFAULT_APPLICATION_NAME.to_owned(),
        }
    }

    /// `host:port`, as error messages name the server.
    pub fn endpoint(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// Checks what can be checked without a server; errors are [`ErrorKind::Config`].
    pub fn validate(&self) -> Result<(), SourceError> {
        let invalid = |message: String| Err(SourceError::new(ErrorKind::Config, message));
        if self.host.is_empty() {
            return invalid("the PostgreSQL host is empty".into());
        }
        if self.database.is_empty() || self.user.is_empty() {
            return invalid("the PostgreSQL database and user must not be empty".into());
        }
        if self.tables.is_empty() {
            return invalid("no tables to capture".into());
        }
        for (i, table) in self.tables.iter().enumerate() {
            if table.schema.is_empty() || table.name.is_empty() {
                return invalid(format!("table name {table:?} has an empty part"));
            }
            if self.tables[..i].contains(table) {
                return invalid(format!("table {table} is listed twice"));
            }
        }
        if self.publication.is_empty() || self.publication.len() > MAX_IDENTIFIER_BYTES {
            return invalid(format!(
                "publication name {:?} must have 1 to {MAX_IDENTIFIER_BYTES} bytes",
                self.publication
            ));
        }
        if self.slot.is_empty()
            || self.slot.len() > MAX_IDENTIFIER_BYTES
            || !self
                .slot
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return invalid(format!(
                "replication slot name {:?} must have 1 to {MAX_IDENTIFIER_BYTES} characters among a-z, 0-9 and _",
                self.slot
            ));
        }
        if self.status_interval.is_zero() {
            return invalid("status_interval must be positive".into());
        }
        if self.backfill_connections == 0 {
            return invalid("backfill_connections must be at least 1".into());
        }
        if matches!(self.sslmode, SslMode::VerifyCa | SslMode::VerifyFull)
            && self.ssl_root_cert.is_none()
        {
            return invalid(format!(
                "sslmode {} needs ssl_root_cert (the CA certificate to verify the server against)",
                sslmode_name(self.sslmode)
            ));
        }
        Ok(())
    }
}

impl fmt::Debug for PostgresSourceConfig {
    /// Like a derived `Debug`, with the password redacted.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresSourceConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("database", &self.database)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("sslmode", &self.sslmode)
            .field("ssl_root_cert", &self.ssl_root_cert)
            .field("tables", &self.tables)
            .field("publication", &self.publication)
            .field("create_publication", &self.create_publication)
            .field("slot", &self.slot)
            .field("status_interval", &self.status_interval)
            .field("heartbeat_interval", &self.heartbeat_interval)
            .field("backfill_connections", &self.backfill_connections)
            .field("application_name", &self.application_name)
            .finish()
    }
}

/// The libpq spelling of a TLS mode, for messages.
pub(crate) fn sslmode_name(mode: SslMode) -> &'static str {
    match mode {
        SslMode::Disable => "disable",
        SslMode::Prefer => "prefer",
        SslMode::Require => "require",
        SslMode::VerifyCa => "verify-ca",
        SslMode::VerifyFull => "verify-full",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> PostgresSourceConfig {
        PostgresSourceConfig::new(
            "127.0.0.1",
            5432,
            "app",
            "cdc",
            vec![TableName::new("public", "t")],
            "pub",
            "slot_1",
        )
    }

    #[test]
    fn debug_never_shows_the_password() {
        let mut c = config();
        c.password = Some("hunter2".into());
        let text = format!("{c:?}");
        assert!(!text.contains("hunter2"));
        assert!(text.contains("<redacted>"));
    }

    #[test]
    fn validation_names_the_problem() {
        assert!(config().validate().is_ok());
        let mut c = config();
        c.slot = "Bad-Slot".into();
        let error = c.validate().unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Config);
        assert!(error.message().contains("\"Bad-Slot\""), "{error}");
        let mut c = config();
        c.sslmode = SslMode::VerifyFull;
        assert!(
            c.validate()
                .unwrap_err()
                .message()
                .contains("verify-full needs ssl_root_cert")
        );
        let mut c = config();
        c.tables.push(TableName::new("public", "t"));
        assert_eq!(
            c.validate().unwrap_err().message(),
            "table public.t is listed twice"
        );
        let mut c = config();
        c.tables.clear();
        assert!(c.validate().is_err());
    }
}
