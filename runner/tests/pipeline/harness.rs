//! What the pipeline tests share: the runner binary as a process, specs, workloads, and the
//! lake replayed by an independent reader and compared with the source.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use lakestream_testkit::lake::{Replayed, replay};
use lakestream_testkit::postgres::PostgresServer;
use serde_json::{Value, json};

/// A temporary folder for one test, kept (and its path printed) when `LAKESTREAM_KEEP_TEST_DIRS`
/// is set, to read the runner's log after a failure.
pub fn test_dir() -> tempfile::TempDir {
    let mut dir = tempfile::Builder::new()
        .prefix("lakestream-pipeline-")
        .tempdir()
        .unwrap();
    if std::env::var_os("LAKESTREAM_KEEP_TEST_DIRS").is_some() {
        eprintln!("test folder kept: {}", dir.path().display());
        dir.disable_cleanup(true);
    }
    dir
}

/// The environment variable holding the database password for the runner.
pub const PASSWORD_VARIABLE: &str = "LAKESTREAM_TEST_PGPASSWORD";

/// A `streaming-runner` process whose output goes to a log file.
pub struct Runner {
    child: Option<Child>,
    /// The log file.
    pub log: PathBuf,
}

impl Runner {
    /// Starts the runner with `args`, the database password in its environment.
    pub fn start(args: &[&str], server: &PostgresServer, log: &Path) -> Self {
        Self::start_with(args, server, log, &[])
    }

    /// [`Runner::start`] with extra environment variables.
    pub fn start_with(
        args: &[&str],
        server: &PostgresServer,
        log: &Path,
        env: &[(&str, &str)],
    ) -> Self {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_streaming-runner"))
            .args(args)
            .env(PASSWORD_VARIABLE, server.admin_password())
            .env("LAKESTREAM_LOG", "info")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .expect("the runner binary starts");
        Self {
            child: Some(child),
            log: log.to_path_buf(),
        }
    }

    /// SIGKILL: the process gets no chance to flush or clean up.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// SIGTERM and wait for a clean exit; returns the exit code.
    pub fn terminate(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        nix_kill(child.id() as i32, "TERM");
        for _ in 0..300 {
            if let Some(status) = child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        child.kill().unwrap();
        panic!(
            "the runner did not stop within 30 s of SIGTERM; log:\n{}",
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }

    /// Waits for the process to exit on its own; returns the exit code.
    pub fn wait(&mut self, timeout: Duration) -> Option<i32> {
        let mut child = self.child.take()?;
        let deadline = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < deadline {
            if let Some(status) = child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        child.kill().unwrap();
        panic!("the runner did not exit within {timeout:?}");
    }

    /// The log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn nix_kill(pid: i32, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

/// A pipeline spec for `tables` of the test server into `lake` (a folder) as `format`.
pub fn spec(
    server: &PostgresServer,
    tables: &[&str],
    lake: &Path,
    format: &str,
    extra: Value,
) -> Value {
    let mut spec = json!({
        "name": "test pipeline",
        "source": {"postgres": {
            "host": server.host(),
            "port": server.port(),
            "database": server.database(),
            "user": server.admin_user(),
            "password": {"type": "env", "name": PASSWORD_VARIABLE},
            "sslmode": "disable",
            "tables": tables,
        }},
        "target": {"uri": format!("file://{}", lake.display()), "format": format, "flush_interval": "200ms"},
    });
    merge(&mut spec, extra);
    spec
}

/// Merges `extra` into `base`, objects key by key.
pub fn merge(base: &mut Value, extra: Value) {
    match (base, extra) {
        (Value::Object(base), Value::Object(extra)) => {
            for (key, value) in extra {
                merge(base.entry(key).or_insert(Value::Null), value);
            }
        }
        (base, extra) => *base = extra,
    }
}

/// Writes `spec` to a file in `dir` and returns its path.
pub fn write_spec(dir: &Path, spec: &Value) -> PathBuf {
    let path = dir.join("spec.json");
    std::fs::write(&path, serde_json::to_vec_pretty(spec).unwrap()).unwrap();
    path
}

/// The source table's rows as JSON objects, sorted by `key` (compared as text).
pub async fn source_rows(server: &PostgresServer, table: &str, key: &str) -> Vec<Value> {
    let client = server.client().await.unwrap();
    let rows = client
        .query(
            &format!("SELECT to_jsonb(t)::text FROM {table} t ORDER BY {key}::text"),
            &[],
        )
        .await
        .unwrap();
    rows.iter()
        .map(|row| serde_json::from_str(row.get::<_, &str>(0)).unwrap())
        .collect()
}

/// Waits until the lake replays to exactly the source table (and returns the replay), or
/// fails after `timeout` showing the difference.
pub async fn until_lake_matches(
    server: &PostgresServer,
    table: &str,
    folder: &Path,
    key: &str,
    timeout: Duration,
) -> Replayed {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let source = source_rows(server, table, key).await;
        let last = match replay(folder, key) {
            Ok(replayed) if replayed.rows == source => return replayed,
            Ok(replayed) => format!(
                "lake has {} rows from {} changes in {} files, source has {}; first difference: {:?}",
                replayed.rows.len(),
                replayed.changes,
                replayed.files,
                source.len(),
                replayed.rows.iter().zip(&source).find(|(a, b)| a != b)
            ),
            Err(error) => error,
        };
        if tokio::time::Instant::now() >= deadline {
            panic!("the lake did not match {table} within {timeout:?}: {last}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// A writer that keeps changing `table` (id int primary key, val int, note text): each
/// transaction inserts `batch` rows and updates and deletes a few of the rows written shortly
/// before (within the last 3000 ids). It writes
/// `transactions` transactions, or with `until` until that flag is set, pausing `pause`
/// between transactions; returns the next free id.
pub async fn churn_paced(
    server: &PostgresServer,
    table: &str,
    batch: u32,
    first_id: u32,
    pause: Duration,
    transactions: Option<u32>,
    until: Option<&std::sync::atomic::AtomicBool>,
) -> u32 {
    let client = server.client().await.unwrap();
    let mut next_id = first_id;
    let mut n = 0u32;
    while transactions.is_none_or(|limit| n < limit)
        && until.is_none_or(|flag| !flag.load(std::sync::atomic::Ordering::SeqCst))
    {
        let sql = format!(
            "BEGIN;
             INSERT INTO {table} (id, val, note) SELECT g, g % 97, 'row ' || g FROM generate_series({start}, {end}) g;
             UPDATE {table} SET val = val + 1, note = note || '+' WHERE id % 13 = {m} AND id >= {start} - 3000 AND id < {start};
             DELETE FROM {table} WHERE id % 17 = {d} AND id >= {start} - 3000 AND id < {start} - 100;
             COMMIT;",
            start = next_id,
            end = next_id + batch - 1,
            m = n % 13,
            d = n % 17,
        );
        client.batch_execute(&sql).await.unwrap();
        next_id += batch;
        n += 1;
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
    }
    next_id
}

/// [`churn_paced`] without pauses: `transactions` transactions as fast as the server takes them.
pub async fn churn(
    server: &PostgresServer,
    table: &str,
    transactions: u32,
    batch: u32,
    first_id: u32,
) -> u32 {
    churn_paced(
        server,
        table,
        batch,
        first_id,
        Duration::ZERO,
        Some(transactions),
        None,
    )
    .await
}
