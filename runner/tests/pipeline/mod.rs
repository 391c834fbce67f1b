//! The pipeline end to end: the runner binary against a real PostgreSQL, its lake replayed by
//! an independent reader and compared with the source table. Exactly once is tested the hard
//! way: SIGKILL at random moments and a database restart under a steady workload.

mod harness;

use std::time::Duration;

use harness::{Runner, churn, churn_paced, merge, spec, test_dir, until_lake_matches, write_spec};
use lakestream_control::{RunnerControl, Store};
use lakestream_spec::control::{
    Assignment, DeploymentRecord, Phase, PipelineState, PipelineVersion, RunnerRecord, RunnerStatus,
};
use lakestream_spec::{PipelineSpec, RunnerSpec, StoreUrl};
use lakestream_testkit::lake::replay;
use lakestream_testkit::postgres::PostgresServer;
use rand::Rng;
use serde_json::json;
use time::OffsetDateTime;

const TABLE: &str = "CREATE TABLE items (id int PRIMARY KEY, val int NOT NULL, note text NOT NULL)";

async fn server_with_items(rows: u32) -> PostgresServer {
    let server = PostgresServer::start().await.expect("PostgreSQL starts");
    server
        .execute(&format!(
            "{TABLE}; INSERT INTO items SELECT g, g % 97, 'row ' || g FROM generate_series(1, {rows}) g"
        ))
        .await
        .unwrap();
    server
}

#[tokio::test(flavor = "multi_thread")]
async fn backfill_then_streaming_lands_exactly_what_the_source_committed() {
    let server = server_with_items(50_000).await;
    let dir = test_dir();
    let lake = dir.path().join("lake");
    let spec = write_spec(
        dir.path(),
        &spec(&server, &["items"], &lake, "parquet", json!({})),
    );
    let mut runner = Runner::start(
        &["run", "--spec", spec.to_str().unwrap()],
        &server,
        &dir.path().join("runner.log"),
    );
    // Writes keep coming while the backfill copies the table, and after.
    churn(&server, "items", 40, 250, 50_001).await;
    let replayed = until_lake_matches(
        &server,
        "items",
        &lake.join("public.items"),
        "id",
        Duration::from_secs(90),
    )
    .await;
    assert_eq!(replayed.duplicates, 0);
    assert_eq!(
        runner.terminate(),
        Some(0),
        "a clean stop; log:\n{}",
        runner.log_text()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_at_random_moments_loses_nothing_and_duplicates_nothing() {
    let server = server_with_items(300_000).await;
    let dir = test_dir();
    let lake = dir.path().join("lake");
    let spec = write_spec(
        dir.path(),
        &spec(
            &server,
            &["items"],
            &lake,
            "parquet",
            json!({"max_consecutive_failures": 1000}),
        ),
    );
    let args = ["run", "--spec", spec.to_str().unwrap()];
    let log = dir.path().join("runner.log");
    let mut runner = Runner::start(&args, &server, &log);
    // Each process is killed at a random moment after it committed at least once more, so the
    // kills land while it streams, flushes and commits (killing faster than a restart can catch
    // up would only test start-up).
    let checkpoint = lake.join("_lakestream/checkpoints/test-pipeline.json");
    let committed = || {
        std::fs::read(&checkpoint)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
            .map(|document| document["committed"].clone())
    };
    let writing = std::sync::atomic::AtomicBool::new(false);
    let killer = async {
        // The first kill lands in the middle of the backfill, as soon as its first files exist.
        let table_folder = lake.join("public.items");
        while std::fs::read_dir(&table_folder).map_or(true, |mut files| files.next().is_none()) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        runner.kill9();
        runner = Runner::start(&args, &server, &log);
        let mut kills = 1;
        for _ in 0..12 {
            let before = committed();
            for _ in 0..500 {
                if committed() != before {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let pause = rand::rng().random_range(0..800);
            tokio::time::sleep(Duration::from_millis(pause)).await;
            runner.kill9();
            if std::env::var("LAKESTREAM_KEEP_LOG").is_ok() {
                eprintln!(
                    "kill {kills}: checkpoint {}",
                    std::fs::read_to_string(&checkpoint)
                        .unwrap_or_default()
                        .replace('\n', " ")
                );
            }
            kills += 1;
            runner = Runner::start(&args, &server, &log);
        }
        writing.store(true, std::sync::atomic::Ordering::SeqCst);
        kills
    };
    // A steady workload for as long as the kills go on: transactions of 100 inserts plus some
    // 300 updates and deletes, tens of thousands of changes in all.
    let (next_id, kills) = tokio::join!(
        churn_paced(
            &server,
            "items",
            100,
            300_001,
            Duration::from_millis(25),
            None,
            Some(&writing)
        ),
        killer
    );
    let transactions = (next_id - 300_001) / 100;
    assert!(
        kills >= 10 && transactions >= 100,
        "{kills} kills, {transactions} transactions"
    );
    let replayed = until_lake_matches(
        &server,
        "items",
        &lake.join("public.items"),
        "id",
        Duration::from_secs(180),
    )
    .await;
    assert_eq!(replayed.duplicates, 0, "no change is in the lake twice");
    let log_text = runner.log_text();
    assert!(!log_text.contains("panicked"), "{log_text}");
    eprintln!(
        "crash test: {kills} SIGKILLs, {} changes in {} files, lake == source",
        replayed.changes, replayed.files
    );
    if std::env::var("LAKESTREAM_KEEP_LOG").is_ok() {
        std::fs::copy(&log, "/tmp/crash-runner.log").unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_postgres_restart_mid_stream_loses_nothing() {
    let mut server = server_with_items(1_000).await;
    let dir = test_dir();
    let lake = dir.path().join("lake");
    let spec = write_spec(
        dir.path(),
        &spec(
            &server,
            &["items"],
            &lake,
            "jsonl",
            json!({"max_consecutive_failures": 100}),
        ),
    );
    let mut runner = Runner::start(
        &["run", "--spec", spec.to_str().unwrap()],
        &server,
        &dir.path().join("runner.log"),
    );
    let next = churn(&server, "items", 20, 100, 1_001).await;
    server
        .restart()
        .await
        .expect("PostgreSQL restarts on the same port");
    churn(&server, "items", 20, 100, next).await;
    let replayed = until_lake_matches(
        &server,
        "items",
        &lake.join("public.items"),
        "id",
        Duration::from_secs(90),
    )
    .await;
    assert_eq!(replayed.duplicates, 0);
    assert!(
        runner.log_text().contains("retrying"),
        "the runner noticed the restart"
    );
    assert_eq!(runner.terminate(), Some(0));
}

/// Waits until the runner's status satisfies `ready`.
async fn status_until(
    control: &RunnerControl,
    what: &str,
    ready: impl Fn(&RunnerStatus) -> bool,
) -> RunnerStatus {
    for _ in 0..240 {
        if let Ok(Some(status)) = control.status().await
            && ready(&status)
        {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!(
        "the runner never reported {what}; last status: {:?}",
        control.status().await
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn deployed_mode_follows_pause_resume_and_a_version_switch() {
    let server = server_with_items(500).await;
    let dir = test_dir();
    let lake = dir.path().join("lake");
    let folder = lake.join("public.items");
    let url = StoreUrl::parse(&format!("file://{}/control", dir.path().display())).unwrap();
    let control = RunnerControl::new(Store::open(&url).unwrap(), "r1");
    let runner_spec = RunnerSpec {
        name: "r".into(),
        description: String::new(),
        heartbeat_interval: "1s".into(),
    };
    let record = RunnerRecord {
        runner_id: "r1".into(),
        spec: runner_spec,
        deployment: DeploymentRecord {
            kind: "local".into(),
            settings: serde_json::Value::Null,
        },
        provider_version: "test".into(),
        created_at: OffsetDateTime::now_utc(),
    };
    control.put_record(&record).await.unwrap();
    let put_version = |version: u64, format: &str| {
        let spec: PipelineSpec =
            serde_json::from_value(spec(&server, &["items"], &lake, format, json!({}))).unwrap();
        let control = control.clone();
        async move {
            control
                .put_version(&PipelineVersion {
                    pipeline_id: "p1".into(),
                    version,
                    spec,
                    created_at: OffsetDateTime::now_utc(),
                })
                .await
                .unwrap()
        }
    };
    let assign = |version: u64, state: PipelineState| {
        let control = control.clone();
        async move {
            control
                .update_desired(|desired| {
                    desired.pipeline = Some(Assignment {
                        pipeline_id: "p1".into(),
                        version,
                        state,
                        backfill_generation: 1,
                        restart_generation: 0,
                    });
                    Ok::<_, std::convert::Infallible>(())
                })
                .await
                .unwrap()
                .generation
        }
    };
    put_version(1, "parquet").await;
    let generation = assign(1, PipelineState::Running).await;
    let mut runner = Runner::start(
        &[
            "run",
            "--control-store",
            url.url().as_str(),
            "--runner-id",
            "r1",
        ],
        &server,
        &dir.path().join("runner.log"),
    );
    let phase = |status: &RunnerStatus| status.pipeline.as_ref().map(|p| p.phase);
    status_until(&control, "streaming", |s| {
        s.observed_generation >= generation && phase(s) == Some(Phase::Streaming)
    })
    .await;
    churn(&server, "items", 5, 50, 501).await;
    let before_pause =
        until_lake_matches(&server, "items", &folder, "id", Duration::from_secs(60)).await;

    let generation = assign(1, PipelineState::Paused).await;
    status_until(&control, "paused", |s| {
        s.observed_generation >= generation && phase(s) == Some(Phase::Paused)
    })
    .await;
    let next = churn(&server, "items", 5, 50, 751).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        replay(&folder, "id").unwrap().changes,
        before_pause.changes,
        "nothing arrives while paused"
    );

    let generation = assign(1, PipelineState::Running).await;
    status_until(&control, "streaming again", |s| {
        s.observed_generation >= generation && phase(s) == Some(Phase::Streaming)
    })
    .await;
    let resumed =
        until_lake_matches(&server, "items", &folder, "id", Duration::from_secs(60)).await;
    assert!(resumed.changes > before_pause.changes);

    put_version(2, "jsonl").await;
    let generation = assign(2, PipelineState::Running).await;
    status_until(&control, "version 2", |s| {
        s.observed_generation >= generation
            && s.pipeline
                .as_ref()
                .is_some_and(|p| p.deployed_version == 2 && p.phase == Phase::Streaming)
    })
    .await;
    churn(&server, "items", 5, 50, next).await;
    let switched =
        until_lake_matches(&server, "items", &folder, "id", Duration::from_secs(60)).await;
    assert_eq!(switched.duplicates, 0);
    let jsonl_files = std::fs::read_dir(&folder)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "jsonl")
        })
        .count();
    assert!(jsonl_files > 0, "version 2 writes JSON Lines");

    assert_eq!(runner.terminate(), Some(0));
    let lease = control.lease().await.unwrap().unwrap().value;
    assert_eq!(
        lease.ttl_ms, 0,
        "a clean stop releases the lease for the next instance"
    );
}

#[test]
fn an_invalid_spec_is_one_line_naming_the_field_and_exit_code_2() {
    let dir = test_dir();
    let spec = dir.path().join("spec.json");
    std::fs::write(
        &spec,
        r#"{"name":"x","source":{"postgres":{"url":"postgresql://u@h/d","tables":["t"]}},"target":{"uri":"file:///tmp/l","flush_interval":"1d"}}"#,
    )
    .unwrap();
    for command in ["validate", "run"] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_streaming-runner"))
            .args([command, "--spec", spec.to_str().unwrap()])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{command}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(
            stderr.contains("target.flush_interval: \"1d\" is not a duration"),
            "{stderr}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_inputs_fail_with_one_line_naming_the_problem_and_write_nothing() {
    let server = server_with_items(10).await;
    server
        .execute("CREATE ROLE limited LOGIN REPLICATION PASSWORD 'limited'; GRANT SELECT ON items TO limited")
        .await
        .unwrap();
    /// Name, spec overrides, runner environment, expected error text.
    type Case = (
        &'static str,
        serde_json::Value,
        &'static [(&'static str, &'static str)],
        &'static str,
    );
    let cases: [Case; 3] = [
        (
            "wrong password",
            json!({"source": {"postgres": {"password": {"type": "env", "name": "WRONG_PASSWORD"}}}}),
            &[("WRONG_PASSWORD", "not-the-password")],
            "password authentication failed for user \"admin\"",
        ),
        (
            "missing table",
            json!({"source": {"postgres": {"tables": ["public.missing"]}}}),
            &[],
            "public.missing",
        ),
        (
            "no privilege to create the publication",
            json!({"source": {"postgres": {"user": "limited", "password": {"type": "env", "name": "LIMITED_PASSWORD"}}}}),
            &[("LIMITED_PASSWORD", "limited")],
            "permission denied",
        ),
    ];
    for (name, overrides, env, expected) in cases {
        let dir = test_dir();
        let lake = dir.path().join("lake");
        let mut document = spec(
            &server,
            &["items"],
            &lake,
            "parquet",
            json!({"max_consecutive_failures": 1}),
        );
        merge(&mut document, overrides);
        let spec = write_spec(dir.path(), &document);
        let log = dir.path().join("runner.log");
        let mut runner = Runner::start_with(
            &["run", "--spec", spec.to_str().unwrap()],
            &server,
            &log,
            env,
        );
        assert_eq!(
            runner.wait(Duration::from_secs(30)),
            Some(1),
            "{name}: exit code; log:\n{}",
            runner.log_text()
        );
        let last = runner
            .log_text()
            .lines()
            .last()
            .unwrap_or_default()
            .to_owned();
        assert!(
            last.starts_with("streaming-runner: ") && last.contains(expected),
            "{name}: {last}"
        );
        assert!(!lake.exists(), "{name}: nothing is written to the lake");
    }
}
