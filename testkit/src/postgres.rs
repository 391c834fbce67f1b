//! A throwaway PostgreSQL server: `initdb` into a fresh temporary folder, started on 127.0.0.1
//! with a free port and logical replication enabled, stopped by its recorded postmaster PID.
//!
//! The server is configured the way the CDC tests need it: `wal_level=logical`, enough slots
//! and WAL senders for many concurrent sources, durability off (`fsync`, `synchronous_commit`,
//! `full_page_writes`) because the data is thrown away, TLS on with a throwaway CA so TLS code
//! paths are tested for real, and password authentication (SCRAM-SHA-256) for every TCP
//! connection so wrong-password tests fail the way they would in production. Local socket
//! connections are trusted and only used by `pg_ctl`.
//!
//! PostgreSQL refuses to run as root; when the tests run as root (as on every machine of this
//! project) the binaries run as the `postgres` user through `runuser`, in folders chowned to it.

use std::fmt::Write as _;
use std::io;
use std::net::TcpListener;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tempfile::TempDir;
use tokio::process::Command;
use tokio_postgres::{Client, NoTls};

/// Name of the superuser role created by `initdb` (authenticates with [`PostgresServer::admin_password`]).
pub const ADMIN_USER: &str = "admin";

/// Name of the database created for the test, beside the built-in `postgres` database.
pub const DATABASE: &str = "app";

/// How many times `start` picks a new port when another process took the chosen one first.
const PORT_ATTEMPTS: usize = 5;

/// Settings every test server runs with (beyond the port, passed on the command line).
const SETTINGS: &[(&str, &str)] = &[
    ("listen_addresses", "'127.0.0.1'"),
    ("wal_level", "logical"),
    ("max_replication_slots", "20"),
    ("max_wal_senders", "20"),
    ("max_connections", "100"),
    ("fsync", "off"),
    ("synchronous_commit", "off"),
    ("full_page_writes", "off"),
    ("ssl", "on"),
    ("ssl_cert_file", "'server.crt'"),
    ("ssl_key_file", "'server.key'"),
    ("log_min_messages", "warning"),
    ("log_statement", "none"),
];

/// A running PostgreSQL server owned by one test. Dropping it stops the server and removes its
/// folder.
#[derive(Debug)]
pub struct PostgresServer {
    /// Root of everything the server owns: `data/`, `sock/`, `server.log`, the CA certificate.
    dir: TempDir,
    /// The TCP port on 127.0.0.1; stays the same across [`PostgresServer::restart`].
    port: u16,
    /// The admin role's password.
    password: String,
    /// The postmaster's PID while running, read from `postmaster.pid`.
    pid: Option<u32>,
    /// `(uid, gid)` of the `postgres` user when the tests run as root, `None` otherwise.
    owner: Option<(u32, u32)>,
    /// The folder holding `initdb`, `pg_ctl` and `postgres`.
    bin: PathBuf,
}

impl PostgresServer {
    /// Creates a fresh cluster and starts it: `initdb`, a throwaway CA and server certificate,
    /// a free port (retrying if another process takes it first), then the database
    /// [`DATABASE`]. Takes about a second.
    pub async fn start() -> io::Result<Self> {
        let bin = bin_dir()?;
        let owner = postgres_owner()?;
        let dir = tempfile::Builder::new()
            .prefix("lakestream-pg-")
            .tempdir()?;
        let password = fresh_password();
        let mut server = PostgresServer {
            dir,
            port: 0,
            password,
            pid: None,
            owner,
            bin,
        };
        server.init().await?;
        let mut last_error = None;
        for _ in 0..PORT_ATTEMPTS {
            server.port = free_port()?;
            match server.start_postmaster().await {
                Ok(()) => {
                    last_error = None;
                    break;
                }
                Err(StartError::PortTaken(e)) => last_error = Some(e),
                Err(StartError::Other(e)) => return Err(e),
            }
        }
        if let Some(e) = last_error {
            return Err(e);
        }
        server
            .execute_in("postgres", &format!("CREATE DATABASE {DATABASE}"))
            .await?;
        Ok(server)
    }

    /// Always `127.0.0.1`.
    pub fn host(&self) -> &str {
        "127.0.0.1"
    }

    /// The TCP port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The test database, [`DATABASE`].
    pub fn database(&self) -> &str {
        DATABASE
    }

    /// The superuser role, [`ADMIN_USER`].
    pub fn admin_user(&self) -> &str {
        ADMIN_USER
    }

    /// The superuser's password (random per server).
    pub fn admin_password(&self) -> &str {
        &self.password
    }

    /// `postgres://admin:…@127.0.0.1:port/app`, for tools that take a URL.
    pub fn admin_url(&self) -> String {
        format!(
            "postgres://{ADMIN_USER}:{}@127.0.0.1:{}/{DATABASE}",
            self.password, self.port
        )
    }

    /// PEM file of the CA that signed the server's certificate (valid for `127.0.0.1` and
    /// `localhost`), for `verify-ca` / `verify-full` tests.
    pub fn ca_cert_path(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }

    /// The postmaster's PID while the server runs.
    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// The server's log file, useful when a test fails.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// A client connected as the admin to [`DATABASE`]; its connection task runs on the
    /// current Tokio runtime.
    pub async fn client(&self) -> io::Result<Client> {
        self.client_for(DATABASE, ADMIN_USER, &self.password).await
    }

    /// A client connected to `database` as `user` with `password`, over TCP (so password
    /// authentication applies).
    pub async fn client_for(
        &self,
        database: &str,
        user: &str,
        password: &str,
    ) -> io::Result<Client> {
        let (client, connection) = tokio_postgres::Config::new()
            .host("127.0.0.1")
            .port(self.port)
            .dbname(database)
            .user(user)
            .password(password)
            .application_name("lakestream-testkit")
            .connect(NoTls)
            .await
            .map_err(io::Error::other)?;
        tokio::spawn(async move {
            // The connection ends when the client is dropped or the server stops; either is
            // the test's business, not an error here.
            let _ = connection.await;
        });
        Ok(client)
    }

    /// Runs one or more SQL statements (simple query protocol) as the admin in [`DATABASE`].
    pub async fn execute(&self, sql: &str) -> io::Result<()> {
        self.execute_in(DATABASE, sql).await
    }

    /// Runs SQL statements as the admin in `database`.
    pub async fn execute_in(&self, database: &str, sql: &str) -> io::Result<()> {
        let client = self
            .client_for(database, ADMIN_USER, &self.password)
            .await?;
        client.batch_execute(sql).await.map_err(io::Error::other)
    }

    /// Runs a query as the admin in [`DATABASE`] and returns the first column of the first
    /// row as text (`None` for SQL NULL), e.g. `SELECT confirmed_flush_lsn::text FROM …`.
    pub async fn query_scalar(&self, sql: &str) -> io::Result<Option<String>> {
        let client = self.client().await?;
        let messages = client.simple_query(sql).await.map_err(io::Error::other)?;
        for message in messages {
            if let tokio_postgres::SimpleQueryMessage::Row(row) = message {
                return Ok(row.get(0).map(str::to_owned));
            }
        }
        Err(io::Error::other(format!("query returned no row: {sql}")))
    }

    /// Stops the server with a fast shutdown (clients are disconnected, WAL senders end), waits
    /// for it to exit, and keeps its data and port for [`PostgresServer::start_again`].
    pub async fn stop(&mut self) -> io::Result<()> {
        if self.pid.is_none() {
            return Ok(());
        }
        let data = self.data_dir();
        let output = self
            .pg_command("pg_ctl")
            .arg("stop")
            .arg("-D")
            .arg(&data)
            .args(["-m", "fast", "-w", "-t", "60"])
            .output()
            .await?;
        check(&output, "pg_ctl stop")?;
        self.pid = None;
        Ok(())
    }

    /// Starts a stopped server again on the same port with the same data.
    pub async fn start_again(&mut self) -> io::Result<()> {
        match self.start_postmaster().await {
            Ok(()) => Ok(()),
            Err(StartError::PortTaken(e) | StartError::Other(e)) => Err(e),
        }
    }

    /// Stops (fast shutdown) and starts the server again: same port, same data. What a
    /// "PostgreSQL restarted mid-stream" test needs.
    pub async fn restart(&mut self) -> io::Result<()> {
        self.stop().await?;
        self.start_again().await
    }

    /// The cluster's data folder.
    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Writes the password file and certificates, runs `initdb`, appends our settings.
    async fn init(&mut self) -> io::Result<()> {
        let root = self.dir.path().to_path_buf();
        self.chown(&root)?;
        let pwfile = root.join("pwfile");
        std::fs::write(&pwfile, &self.password)?;
        self.chown(&pwfile)?;
        std::fs::create_dir(root.join("sock"))?;
        self.chown(&root.join("sock"))?;

        let output = self
            .pg_command("initdb")
            .arg("-D")
            .arg(self.data_dir())
            .args(["-U", ADMIN_USER])
            .arg(format!("--pwfile={}", pwfile.display()))
            .args(["--auth-host=scram-sha-256", "--auth-local=trust"])
            .args(["-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"])
            .output()
            .await?;
        check(&output, "initdb")?;
        std::fs::remove_file(&pwfile)?;

        self.write_certificates()?;
        let mut conf = String::from("\n# lakestream-testkit\n");
        for (name, value) in SETTINGS {
            let _ = writeln!(conf, "{name} = {value}");
        }
        let _ = writeln!(
            conf,
            "unix_socket_directories = '{}'",
            root.join("sock").display()
        );
        let conf_path = self.data_dir().join("postgresql.conf");
        let mut existing = std::fs::read_to_string(&conf_path)?;
        existing.push_str(&conf);
        std::fs::write(&conf_path, existing)?;
        Ok(())
    }

    /// A throwaway CA and a server certificate for `127.0.0.1` and `localhost`, written as
    /// `ca.crt` (for clients) and `data/server.{crt,key}` (mode 0600, owned by the server).
    fn write_certificates(&self) -> io::Result<()> {
        let ca_key = rcgen::KeyPair::generate().map_err(io::Error::other)?;
        let mut ca_params =
            rcgen::CertificateParams::new(Vec::<String>::new()).map_err(io::Error::other)?;
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "lakestream-testkit CA");
        let ca_cert = ca_params.self_signed(&ca_key).map_err(io::Error::other)?;
        let issuer = rcgen::Issuer::from_params(&ca_params, &ca_key);

        let server_key = rcgen::KeyPair::generate().map_err(io::Error::other)?;
        let mut server_params =
            rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
                .map_err(io::Error::other)?;
        server_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "127.0.0.1");
        let server_cert = server_params
            .signed_by(&server_key, &issuer)
            .map_err(io::Error::other)?;

        std::fs::write(self.ca_cert_path(), ca_cert.pem())?;
        let data = self.data_dir();
        for (name, pem) in [
            ("server.crt", server_cert.pem()),
            ("server.key", server_key.serialize_pem()),
        ] {
            let path = data.join(name);
            std::fs::write(&path, pem)?;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
            self.chown(&path)?;
        }
        Ok(())
    }

    /// `pg_ctl start -w` on the current port; records the postmaster PID.
    async fn start_postmaster(&mut self) -> Result<(), StartError> {
        let log = self.log_path();
        let log_len_before = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
        let output = self
            .pg_command("pg_ctl")
            .arg("start")
            .arg("-D")
            .arg(self.data_dir())
            .arg("-l")
            .arg(&log)
            .args(["-w", "-t", "60", "-o"])
            .arg(format!("-p {}", self.port))
            .output()
            .await
            .map_err(StartError::Other)?;
        if !output.status.success() {
            let log_text = std::fs::read(&log)
                .map(|bytes| {
                    let start = usize::try_from(log_len_before)
                        .unwrap_or(0)
                        .min(bytes.len());
                    String::from_utf8_lossy(&bytes[start..]).into_owned()
                })
                .unwrap_or_default();
            let error = io::Error::other(format!(
                "pg_ctl start failed on port {}: {}\n{}",
                self.port,
                String::from_utf8_lossy(&output.stderr).trim(),
                log_text.trim()
            ));
            return Err(
                if log_text.contains("could not bind") || log_text.contains("in use") {
                    StartError::PortTaken(error)
                } else {
                    StartError::Other(error)
                },
            );
        }
        let pid_file = std::fs::read_to_string(self.data_dir().join("postmaster.pid"))
            .map_err(StartError::Other)?;
        let pid = pid_file
            .lines()
            .next()
            .and_then(|line| line.trim().parse().ok())
            .ok_or_else(|| StartError::Other(io::Error::other("postmaster.pid has no PID")))?;
        self.pid = Some(pid);
        Ok(())
    }

    /// A command for one of the PostgreSQL binaries, run as the `postgres` user when we are
    /// root.
    fn pg_command(&self, program: &str) -> Command {
        let program = self.bin.join(program);
        let mut command = if self.owner.is_some() {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        };
        command.current_dir(self.dir.path()).kill_on_drop(true);
        command
    }

    /// Hands `path` to the `postgres` user when we run as root.
    fn chown(&self, path: &Path) -> io::Result<()> {
        match self.owner {
            Some((uid, gid)) => std::os::unix::fs::chown(path, Some(uid), Some(gid)),
            None => Ok(()),
        }
    }
}

impl Drop for PostgresServer {
    /// Immediate shutdown of the postmaster recorded in this server's own data folder (its PID
    /// file), then the folder goes with the `TempDir`.
    fn drop(&mut self) {
        if self.pid.is_none() {
            return;
        }
        let program = self.bin.join("pg_ctl");
        let mut command = if self.owner.is_some() {
            let mut command = std::process::Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            std::process::Command::new(program)
        };
        let _ = command
            .arg("stop")
            .arg("-D")
            .arg(self.data_dir())
            .args(["-m", "immediate", "-w", "-t", "30"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// Why starting the postmaster failed: a port race (retry with another port) or anything else.
enum StartError {
    /// Another process bound the port between our probe and the server's bind.
    PortTaken(io::Error),
    /// Any other failure; retrying would not help.
    Other(io::Error),
}

/// Fails with the command's stderr when it did not succeed.
fn check(output: &Output, what: &str) -> io::Result<()> {
    if output.status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "{what} failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim(),
            String::from_utf8_lossy(&output.stdout).trim()
        )))
    }
}

/// A port that was free a moment ago: bind port 0 on loopback and let the listener go.
fn free_port() -> io::Result<u16> {
    let listener = TcpListener::bind(("127.0.0.1", 0))?;
    Ok(listener.local_addr()?.port())
}

/// The PostgreSQL binaries: `$LAKESTREAM_PG_BIN`, else the newest
/// `/usr/lib/postgresql/<major>/bin` that has `pg_ctl`.
fn bin_dir() -> io::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("LAKESTREAM_PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let major = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("pg_ctl").exists().then_some((major, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin).ok_or_else(|| {
        io::Error::other(
            "no PostgreSQL server binaries under /usr/lib/postgresql (apt-get install -y postgresql-15) \
             and LAKESTREAM_PG_BIN is not set",
        )
    })
}

/// `(uid, gid)` of the `postgres` user when this process is root (the server refuses to run
/// as root), `None` when we can run the server as ourselves.
fn postgres_owner() -> io::Result<Option<(u32, u32)>> {
    if std::fs::metadata("/proc/self")?.uid() != 0 {
        return Ok(None);
    }
    let passwd = std::fs::read_to_string("/etc/passwd")?;
    passwd
        .lines()
        .find_map(|line| {
            let mut fields = line.split(':');
            (fields.next()? == "postgres").then_some(())?;
            let _password = fields.next()?;
            let uid = fields.next()?.parse().ok()?;
            let gid = fields.next()?.parse().ok()?;
            Some(Some((uid, gid)))
        })
        .ok_or_else(|| {
            io::Error::other("running as root but there is no postgres user to run the server as")
        })
}

/// A password unique enough for a throwaway server (time and PID mixed).
fn fresh_password() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_nanos();
    let mixed = (nanos as u64) ^ (u64::from(std::process::id()) << 32) ^ 0x9e37_79b9_7f4a_7c15;
    format!("pw{mixed:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The server starts, takes passwords, restarts on the same port keeping data, and its
    /// folder disappears when dropped.
    #[tokio::test]
    async fn starts_restarts_and_cleans_up() {
        let mut server = PostgresServer::start().await.expect("start");
        server
            .execute("CREATE TABLE t (id int); INSERT INTO t VALUES (1)")
            .await
            .expect("execute");
        assert_eq!(
            server
                .query_scalar("SHOW wal_level")
                .await
                .expect("wal_level")
                .as_deref(),
            Some("logical")
        );
        let wrong = server.client_for(DATABASE, ADMIN_USER, "wrong").await;
        assert!(wrong.is_err(), "a wrong password must be refused");

        let port = server.port();
        let pid = server.pid();
        server.restart().await.expect("restart");
        assert_eq!(server.port(), port);
        assert_ne!(server.pid(), pid);
        assert_eq!(
            server
                .query_scalar("SELECT count(*) FROM t")
                .await
                .expect("count")
                .as_deref(),
            Some("1")
        );

        let dir = server.dir.path().to_path_buf();
        drop(server);
        assert!(!dir.exists(), "the server's folder is removed on drop");
    }
}
