//! The benchmark database: the testkit's throwaway PostgreSQL (127.0.0.1, free port, temporary
//! folder, stopped by PID) switched back to production durability, plus the reference clients.
//!
//! The testkit turns `fsync`, `synchronous_commit` and `full_page_writes` off because test data
//! is thrown away. The benchmark turns them back on (`ALTER SYSTEM` and a reload: all three
//! take effect without a restart): the latency case measures from the commit, which then
//! includes the WAL flush a production commit waits for. The throughput cases time only the
//! reading of WAL that was written (and checkpointed) before the clock starts, identically for
//! the reference and the runner, so durability cannot tilt their ratio. `max_wal_size` is raised
//! and a `CHECKPOINT` runs before every timed part, so no checkpoint's I/O lands inside one.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use lakestream_testkit::postgres::PostgresServer;
use tokio_postgres::Client;

use crate::error::{Error, IoContext, PgContext, Result};
use crate::process::{Registry, Tracked};

/// Settings applied on top of the testkit's, in this order.
const SETTINGS: &[(&str, &str)] = &[
    ("fsync", "on"),
    ("synchronous_commit", "on"),
    ("full_page_writes", "on"),
    ("max_wal_size", "'16GB'"),
    ("checkpoint_timeout", "'1h'"),
];

/// The environment variable that carries the admin password to the runner and the clients.
pub const PASSWORD_VARIABLE: &str = "LAKESTREAM_BENCH_PGPASSWORD";

/// A running benchmark database and an admin session on it.
pub struct Database {
    /// The server (stopped when dropped).
    server: PostgresServer,
    /// The admin session the cases run their SQL on.
    client: Client,
}

impl Database {
    /// Starts the server, records its PID for cleanup, and applies [`SETTINGS`].
    pub async fn start(registry: &Registry) -> Result<Self> {
        let server = PostgresServer::start()
            .await
            .context(|| "starting PostgreSQL".to_owned())?;
        if let Some(process) = server.pid().and_then(Tracked::of) {
            registry.record(process, "postgres")?;
        }
        let client = server
            .client()
            .await
            .context(|| "connecting to PostgreSQL".to_owned())?;
        for (name, value) in SETTINGS {
            client
                .batch_execute(&format!("ALTER SYSTEM SET {name} = {value}"))
                .await
                .context(&format!("setting {name}"))?;
        }
        client
            .batch_execute("SELECT pg_reload_conf()")
            .await
            .context("reloading the configuration")?;
        let database = Self { server, client };
        // A reload is asynchronous: wait until this session sees the new values.
        for _ in 0..100 {
            if database.scalar("SHOW fsync").await? == "on" {
                return Ok(database);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(Error::Failed(
            "PostgreSQL did not pick up fsync = on after a reload".into(),
        ))
    }

    /// The server's TCP port.
    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// The database name.
    pub fn name(&self) -> &str {
        self.server.database()
    }

    /// The admin role.
    pub fn user(&self) -> &str {
        self.server.admin_user()
    }

    /// The admin role's password.
    pub fn password(&self) -> &str {
        self.server.admin_password()
    }

    /// A libpq connection string without the password (it goes through [`PASSWORD_VARIABLE`]
    /// mapped to `PGPASSWORD`), TCP without TLS, as the runner connects.
    pub fn conninfo(&self) -> String {
        format!(
            "host=127.0.0.1 port={} dbname={} user={} sslmode=disable",
            self.port(),
            self.name(),
            self.user()
        )
    }

    /// `postgresql://user@127.0.0.1:port/db?sslmode=disable`, for Terraform configurations.
    pub fn url(&self) -> String {
        format!(
            "postgresql://{}@127.0.0.1:{}/{}?sslmode=disable",
            self.user(),
            self.port(),
            self.name()
        )
    }

    /// A second session, for a writer that runs beside the admin session.
    pub async fn connect(&self) -> Result<Client> {
        self.server
            .client()
            .await
            .context(|| "connecting to PostgreSQL".to_owned())
    }

    /// Runs SQL statements (simple protocol); `what` names them in errors.
    pub async fn execute(&self, sql: &str, what: &str) -> Result<()> {
        self.client.batch_execute(sql).await.context(what)
    }

    /// The first column of the first row as text.
    pub async fn scalar(&self, sql: &str) -> Result<String> {
        let messages = self.client.simple_query(sql).await.context(sql)?;
        messages
            .into_iter()
            .find_map(|message| match message {
                tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0).map(str::to_owned),
                _ => None,
            })
            .ok_or_else(|| Error::Failed(format!("no value from {sql}")))
    }

    /// The current WAL insert position: every commit so far ends at or before it.
    pub async fn wal_position(&self) -> Result<String> {
        self.scalar("SELECT pg_current_wal_insert_lsn()::text")
            .await
    }

    /// A `CHECKPOINT`, so the timed part that follows does not share the disk with one.
    pub async fn checkpoint(&self) -> Result<()> {
        self.execute("CHECKPOINT", "checkpoint").await
    }

    /// Creates the logical replication slot `slot` (pgoutput) at the current position.
    pub async fn create_slot(&self, slot: &str) -> Result<()> {
        self.execute(
            &format!("SELECT pg_create_logical_replication_slot('{slot}', 'pgoutput')"),
            &format!("creating replication slot {slot}"),
        )
        .await
    }

    /// Drops the replication slot `slot` if it exists (waiting for its consumer to let go).
    pub async fn drop_slot(&self, slot: &str) -> Result<()> {
        for _ in 0..200 {
            let sql = format!(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '{slot}' AND NOT active"
            );
            self.execute(&sql, &format!("dropping replication slot {slot}"))
                .await?;
            let left = self
                .scalar(&format!(
                    "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '{slot}'"
                ))
                .await?;
            if left == "0" {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(Error::Failed(format!(
            "replication slot {slot} stayed active for 10 s after its consumer stopped"
        )))
    }

    /// The reference for streaming: `pg_recvlogical` with pgoutput (the protocol version the
    /// runner uses) draining `slot` from its position to `end_lsn` into `file`. Returns its
    /// wall time, start to exit.
    pub async fn pg_recvlogical(
        &self,
        slot: &str,
        publication: &str,
        end_lsn: &str,
        file: &Path,
    ) -> Result<Duration> {
        let mut command = tokio::process::Command::new("pg_recvlogical");
        command
            .args(["-d", &self.conninfo(), "--slot", slot, "--start"])
            .arg(format!("--endpos={end_lsn}"))
            .args(["--no-loop", "-o", "proto_version=1", "-o"])
            .arg(format!("publication_names={publication}"))
            .arg("-f")
            .arg(file);
        self.timed_client(command, "pg_recvlogical").await
    }

    /// The reference for the backfill: `psql -c "COPY table TO STDOUT"` into `/dev/null`, in
    /// text format or (`binary`) in the binary format the runner reads. Returns its wall time,
    /// start to exit.
    pub async fn psql_copy(&self, table: &str, binary: bool) -> Result<Duration> {
        let format = if binary { " (FORMAT binary)" } else { "" };
        let mut command = tokio::process::Command::new("psql");
        command
            .args(["-X", "-q", "-d", &self.conninfo(), "-c"])
            .arg(format!("COPY {table} TO STDOUT{format}"));
        self.timed_client(command, "psql COPY").await
    }

    /// Runs a PostgreSQL client tool with the password in its environment and its output
    /// discarded; fails unless it exits with 0.
    async fn timed_client(
        &self,
        mut command: tokio::process::Command,
        what: &str,
    ) -> Result<Duration> {
        command
            .env("PGPASSWORD", self.password())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let started = Instant::now();
        let output = command
            .output()
            .await
            .context(|| format!("starting {what}"))?;
        let elapsed = started.elapsed();
        if !output.status.success() {
            return Err(Error::Failed(format!(
                "{what} failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        Ok(elapsed)
    }
}
