//! `streaming_runner` and `streaming_pipeline` end to end with the local deployment: the real
//! terraform, the real runner, a real PostgreSQL, the lake read back by an independent reader.

use std::path::{Path, PathBuf};
use std::time::Duration;

use lakestream_acceptance::{Workspace, assert_error};
use lakestream_testkit::lake::replay;
use lakestream_testkit::postgres::PostgresServer;
use serde_json::{Value, json};

const PASSWORD_VARIABLE: &str = "LAKESTREAM_ACC_PGPASSWORD";

/// A throwaway database with the example's tables, and a workspace wired to it.
struct Setup {
    server: PostgresServer,
    workspace: Workspace,
    folder: tempfile::TempDir,
}

impl Setup {
    async fn new() -> Self {
        let server = PostgresServer::start().await.expect("PostgreSQL starts");
        server
            .execute(
                "CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL);
                 CREATE TABLE orders (id int PRIMARY KEY, customer_id int NOT NULL, amount numeric(10,2) NOT NULL);
                 INSERT INTO customers SELECT g, 'customer ' || g FROM generate_series(1, 50) g;
                 INSERT INTO orders SELECT g, 1 + g % 50, g * 1.25 FROM generate_series(1, 200) g;",
            )
            .await
            .unwrap();
        let mut workspace = Workspace::new();
        workspace.env(PASSWORD_VARIABLE, server.admin_password());
        let folder = tempfile::Builder::new()
            .prefix("lakestream-acc-local-")
            .tempdir()
            .unwrap();
        Self {
            server,
            workspace,
            folder,
        }
    }

    fn lake(&self) -> PathBuf {
        self.folder.path().join("lake")
    }

    fn control(&self) -> PathBuf {
        self.folder.path().join("control")
    }

    fn vars(&self, extra: Value) -> Value {
        let mut vars = json!({
            "database_url": format!(
                "postgresql://{}@{}:{}/{}?sslmode=disable",
                self.server.admin_user(),
                self.server.host(),
                self.server.port(),
                self.server.database()
            ),
            "password_env": PASSWORD_VARIABLE,
            "lake_folder": self.lake().display().to_string(),
            "control_folder": self.control().display().to_string(),
        });
        for (key, value) in extra.as_object().cloned().unwrap_or_default() {
            vars[key] = value;
        }
        vars
    }

    /// Waits until the lake's `table` matches the source table.
    async fn lake_matches(&self, table: &str) {
        let folder = self.lake().join(format!("public.{table}"));
        for _ in 0..120 {
            let source = self.source_ids(table).await;
            if let Ok(replayed) = replay(&folder, "id")
                && replayed
                    .rows
                    .iter()
                    .map(|r| r["id"].as_i64().unwrap())
                    .collect::<Vec<_>>()
                    == source
            {
                assert_eq!(replayed.duplicates, 0);
                return;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        panic!(
            "the lake's {table} never matched the source: {:?}",
            replay(&folder, "id").map(|r| r.rows.len())
        );
    }

    async fn source_ids(&self, table: &str) -> Vec<i64> {
        let client = self.server.client().await.unwrap();
        let rows = client
            .query(
                &format!("SELECT id::int8 FROM {table} ORDER BY id::text"),
                &[],
            )
            .await
            .unwrap();
        rows.iter().map(|row| row.get::<_, i64>(0)).collect()
    }

    async fn slot_exists(&self) -> bool {
        let count = self.server.query_scalar("SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'lakestream_demo_%'").await.unwrap();
        count.as_deref() != Some("0")
    }

    fn pid(&self) -> i64 {
        self.workspace.resource("streaming_runner.local")["local"]["pid"]
            .as_i64()
            .expect("a running runner has a pid")
    }
}

fn alive(pid: i64) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

#[tokio::test(flavor = "multi_thread")]
async fn local_runner_and_pipeline_through_their_whole_lifecycle() {
    let setup = Setup::new().await;
    let workspace = &setup.workspace;
    let example = Workspace::example("local");
    workspace.config(&example).vars(setup.vars(json!({})));

    // Create: rows land in the lake; a second plan is empty (apply checks it).
    workspace.apply();
    setup.lake_matches("orders").await;
    setup.lake_matches("customers").await;
    let pipeline = workspace.resource("streaming_pipeline.demo");
    assert_eq!(
        (
            pipeline["version"].as_i64(),
            pipeline["deployed_version"].as_i64()
        ),
        (Some(1), Some(1))
    );
    assert_eq!(
        workspace.resource("streaming_runner.local")["status"],
        "running"
    );

    // A setting changes: version 2 is written, deployed and observed.
    workspace.config(&example.replace("flush_interval = \"1s\"", "flush_interval = \"500ms\""));
    assert_eq!(
        workspace.planned_actions().get("streaming_pipeline.demo"),
        Some(&vec!["update".to_owned()])
    );
    workspace.apply();
    let pipeline = workspace.resource("streaming_pipeline.demo");
    assert_eq!(
        (
            pipeline["version"].as_i64(),
            pipeline["deployed_version"].as_i64()
        ),
        (Some(2), Some(2))
    );

    // A runner setting its process reads: the runner restarts (a new pid, planned as unknown
    // while the other computed attributes are too) and the pipeline carries on.
    let pid = setup.pid();
    let example = example.replace("heartbeat_interval = \"2s\"", "heartbeat_interval = \"1s\"");
    workspace.config(&example.replace("flush_interval = \"1s\"", "flush_interval = \"500ms\""));
    workspace.apply();
    let restarted = setup.pid();
    assert!(restarted != pid && alive(restarted) && !alive(pid));
    setup
        .server
        .execute("INSERT INTO orders VALUES (9001, 1, 1.00)")
        .await
        .unwrap();
    setup.lake_matches("orders").await;

    // Pin version 1: the runner runs version 1 again.
    let pinned = example
        .replace("flush_interval = \"1s\"", "flush_interval = \"500ms\"")
        .replace(
            "  runner_id = streaming_runner.local.id\n",
            "  runner_id = streaming_runner.local.id\n  pinned_version = 1\n",
        );
    workspace.config(&pinned);
    workspace.apply();
    let pipeline = workspace.resource("streaming_pipeline.demo");
    assert_eq!(
        (
            pipeline["version"].as_i64(),
            pipeline["deployed_version"].as_i64()
        ),
        (Some(2), Some(1))
    );

    // Pause: new rows do not arrive; resume: they do.
    let paused = pinned.replace(
        "  pinned_version = 1\n",
        "  pinned_version = 1\n  state = \"paused\"\n",
    );
    workspace.config(&paused);
    workspace.apply();
    assert_eq!(
        workspace.resource("streaming_pipeline.demo")["phase"],
        "paused"
    );
    let before = replay(&setup.lake().join("public.orders"), "id").unwrap();
    setup
        .server
        .execute("INSERT INTO orders SELECT g, 1, 9.99 FROM generate_series(1001, 1100) g")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        replay(&setup.lake().join("public.orders"), "id")
            .unwrap()
            .changes,
        before.changes,
        "nothing arrives while paused"
    );
    workspace.config(&pinned);
    workspace.apply();
    setup.lake_matches("orders").await;

    // Import both resources into a fresh state and compare with this one.
    let runner_id = workspace.resource("streaming_runner.local")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let pipeline_id = workspace.resource("streaming_pipeline.demo")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let volatile = [
        "timeouts",
        "status",
        "status_reason",
        "last_heartbeat",
        "lag_seconds",
        "rows_delivered",
        "source_position",
    ];
    workspace.import_verify("streaming_runner.local", &runner_id, &volatile);
    workspace.import_verify("streaming_pipeline.demo", &pipeline_id, &volatile);

    // Kill the runner outside Terraform: the plan shows it, the apply brings it back.
    let pid = setup.pid();
    std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    for _ in 0..50 {
        if !alive(pid) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let run = workspace.run(&["plan", "-detailed-exitcode", "-no-color"]);
    assert_eq!(
        run.code, 2,
        "the plan shows the dead runner: {}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains(r#"desired_state      = "stopped" -> "running""#),
        "{}",
        run.stdout
    );
    workspace.apply();
    let restarted = setup.pid();
    assert!(restarted != pid && alive(restarted));
    setup
        .server
        .execute("INSERT INTO customers SELECT g, 'late ' || g FROM generate_series(51, 60) g")
        .await
        .unwrap();
    setup.lake_matches("customers").await;

    // Destroy: no process, no control-store files; the slot is kept by default.
    workspace.destroy();
    assert!(!alive(restarted), "the runner process is gone");
    let leftovers: Vec<_> = walk(&setup.control());
    assert!(
        leftovers.is_empty(),
        "control-store files left: {leftovers:?}"
    );
    assert!(
        setup.slot_exists().await,
        "the slot is kept unless drop_slot_on_destroy"
    );
}

fn walk(folder: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![folder.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if entry.path().is_dir() {
                pending.push(entry.path());
            } else {
                files.push(entry.path());
            }
        }
    }
    files
}

#[tokio::test(flavor = "multi_thread")]
async fn drop_slot_on_destroy_drops_the_slot() {
    let setup = Setup::new().await;
    let example = Workspace::example("local").replace(
        "  runner_id = streaming_runner.local.id\n",
        "  runner_id = streaming_runner.local.id\n  drop_slot_on_destroy = true\n",
    );
    setup.workspace.config(&example).vars(setup.vars(json!({})));
    setup.workspace.apply();
    assert!(setup.slot_exists().await);
    setup.workspace.destroy();
    assert!(!setup.slot_exists().await, "destroy dropped the slot");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_gets_a_clear_diagnostic_and_leaves_state_consistent() {
    let setup = Setup::new().await;
    let workspace = &setup.workspace;
    let example = Workspace::example("local");
    workspace.config(&example).vars(setup.vars(json!({})));
    workspace.apply();

    // A second pipeline on the busy runner: refused at plan time, naming the holder.
    let holder = workspace.resource("streaming_pipeline.demo")["pipeline_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let second = r#"
resource "streaming_pipeline" "second" {
  name      = "second"
  runner_id = streaming_runner.local.id
  source {
    postgres {
      url    = var.database_url
      tables = ["public.orders"]
    }
  }
  target {
    uri = "file://${var.lake_folder}/second"
  }
}
"#;
    workspace.config(&format!("{example}{second}"));
    let errors = workspace.plan_fails();
    assert_error(
        &errors,
        &format!("already runs pipeline {holder} \\(\"demo\"\\); a runner runs one pipeline"),
        "runner_id = streaming_runner.local.id",
    );

    // A pipeline pointing at a runner that does not exist: a diagnostic on runner_id, nothing in state.
    let missing = second.replace(
        "runner_id = streaming_runner.local.id",
        &format!(
            "runner_id = \"file://{}/runners/nobody-abc123\"",
            setup.control().display()
        ),
    );
    workspace.config(&format!("{example}{missing}"));
    let errors = workspace.apply_fails();
    assert_error(&errors, "There is no runner nobody-abc123", "nobody-abc123");
    assert!(!workspace.state().contains_key("streaming_pipeline.second"));

    // An unreachable database: create fails with the runner's error, and destroy still cleans up.
    workspace.destroy();
    let unreachable =
        setup.vars(json!({"database_url": "postgresql://admin@127.0.0.1:1/app?sslmode=disable"}));
    workspace
        .config(&example.replace(
            "resource \"streaming_pipeline\" \"demo\" {\n",
            "resource \"streaming_pipeline\" \"demo\" {\n  max_consecutive_failures = 1\n",
        ))
        .vars(unreachable);
    let errors = workspace.apply_fails();
    assert_error(
        &errors,
        "could not connect to 127.0.0.1:1",
        "resource \"streaming_pipeline\" \"demo\"",
    );
    workspace.destroy();
    assert!(walk(&setup.control()).is_empty());
}
