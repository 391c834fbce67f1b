//! Plan-time validation: valid configurations plan; each invalid one fails with a diagnostic
//! that names the attribute and what is allowed, on the line Terraform points at.

use lakestream_acceptance::{Workspace, assert_error};

const HEADER: &str = r#"
terraform {
  required_providers {
    streaming = { source = "lakestream/streaming" }
  }
}
"#;

/// A valid runner; `{runner}` lines are replaced per case.
const RUNNER: &str = r#"
resource "streaming_runner" "r" {
  name          = "Orders runner"
  control_store = "file:///tmp/lakestream-plan-only/control"
  local {
    environment = { AWS_REGION = "eu-west-1" }
  }
}
"#;

/// A valid pipeline.
const PIPELINE: &str = r#"
resource "streaming_pipeline" "p" {
  name      = "orders"
  runner_id = streaming_runner.r.id
  source {
    postgres {
      host     = "127.0.0.1"
      database = "app"
      user     = "cdc"
      password {
        type = "env"
        name = "PGPASSWORD"
      }
      tables = ["public.orders", "sales.\"LineItems\""]
    }
  }
  target {
    uri    = "file:///tmp/lakestream-plan-only/lake"
    format = "parquet"
  }
}
"#;

fn config(replace: &[(&str, &str)]) -> String {
    let mut text = format!("{HEADER}{RUNNER}{PIPELINE}");
    for (from, to) in replace {
        assert!(
            text.contains(from),
            "the base configuration has no {from:?}"
        );
        text = text.replacen(from, to, 1);
    }
    text
}

#[test]
fn a_valid_configuration_plans_two_creates() {
    let workspace = Workspace::new();
    workspace.config(&config(&[]));
    let actions = workspace.planned_actions();
    assert_eq!(
        actions.get("streaming_runner.r"),
        Some(&vec!["create".to_owned()])
    );
    assert_eq!(
        actions.get("streaming_pipeline.p"),
        Some(&vec!["create".to_owned()])
    );
    assert!(
        !std::path::Path::new("/tmp/lakestream-plan-only").exists(),
        "planning creates nothing"
    );
}

/// One invalid configuration: what to change, the error it must produce, and a piece of the
/// line Terraform must point at.
struct Case {
    replace: &'static [(&'static str, &'static str)],
    error: &'static str,
    line: &'static str,
}

const CASES: &[Case] = &[
    Case {
        replace: &[(
            r#"name          = "Orders runner""#,
            r#"name          = "a runner name that is far too long""#,
        )],
        error: r"name.*allowed: 1 to 30 characters",
        line: "far too long",
    },
    Case {
        replace: &[(
            r#"name          = "Orders runner""#,
            r#"name          = " leading space""#,
        )],
        error: r"space \(not first\)",
        line: "leading space",
    },
    Case {
        replace: &[(
            r#"name          = "Orders runner""#,
            r#"name          = "tab/slash""#,
        )],
        error: r"not a valid name",
        line: "tab/slash",
    },
    Case {
        replace: &[(
            "file:///tmp/lakestream-plan-only/control",
            "gs://bucket/control",
        )],
        error: r"control_store.*unsupported scheme gs://.*s3://",
        line: "gs://bucket/control",
    },
    Case {
        replace: &[("file:///tmp/lakestream-plan-only/control", "tmp/control")],
        error: r"control_store.*not a URL",
        line: "tmp/control",
    },
    Case {
        replace: &[(
            "  local {\n    environment = { AWS_REGION = \"eu-west-1\" }\n  }\n",
            "",
        )],
        error: r"Exactly one of `local`",
        line: r#"resource "streaming_runner" "r""#,
    },
    Case {
        replace: &[(
            r#"name          = "Orders runner""#,
            "name          = \"Orders runner\"\n  desired_state = \"paused\"",
        )],
        error: r#"desired_state.*"running", "stopped""#,
        line: "desired_state",
    },
    Case {
        replace: &[(
            r#"name          = "Orders runner""#,
            "name          = \"Orders runner\"\n  heartbeat_interval = \"500ms\"",
        )],
        error: r"heartbeat_interval.*out of range; allowed: 1s to 5m",
        line: "500ms",
    },
    Case {
        replace: &[(
            r#"name          = "Orders runner""#,
            "name          = \"Orders runner\"\n  heartbeat_interval = \"5 seconds\"",
        )],
        error: r#"not a duration.*"30s""#,
        line: "5 seconds",
    },
    Case {
        replace: &[(
            "environment = { AWS_REGION = \"eu-west-1\" }",
            "runner_binary = \"bin/streaming-runner\"",
        )],
        error: r"runner_binary.*absolute path",
        line: "bin/streaming-runner",
    },
    Case {
        replace: &[("AWS_REGION = \"eu-west-1\"", "\"1BAD\" = \"x\"")],
        error: r"environment.*not an environment variable name",
        line: "1BAD",
    },
    Case {
        replace: &[(
            "runner_id = streaming_runner.r.id",
            "runner_id = \"orders\"",
        )],
        error: r"runner_id.*not a runner id; expected <control_store>/runners/<runner_id>",
        line: "runner_id = \"orders\"",
    },
    Case {
        replace: &[("name      = \"orders\"", "name      = \"orders/v2\"")],
        error: r"allowed: 1 to 64 characters",
        line: "orders/v2",
    },
    Case {
        replace: &[(
            "name      = \"orders\"",
            "name      = \"orders\"\n  state     = \"stopped\"",
        )],
        error: r#"state.*"running", "paused""#,
        line: "state     = \"stopped\"",
    },
    Case {
        replace: &[(
            "host     = \"127.0.0.1\"",
            "url      = \"postgresql://cdc:secret@db/app\"",
        )],
        error: r"url.*must not contain a password; give a secret reference",
        line: "cdc:secret",
    },
    Case {
        replace: &[(
            "host     = \"127.0.0.1\"",
            "host     = \"127.0.0.1\"\n      url      = \"postgresql://cdc@db/app\"",
        )],
        error: r"url cannot be set together with `host`",
        line: "postgresql://cdc@db/app",
    },
    Case {
        replace: &[("      user     = \"cdc\"\n", "")],
        error: r"give url, or host, database and user \(missing: user\)",
        line: "postgres {",
    },
    Case {
        replace: &[(
            "host     = \"127.0.0.1\"",
            "host     = \"127.0.0.1\"\n      port     = 70000",
        )],
        error: r"port.*not a TCP port; allowed: 1 to 65535",
        line: "70000",
    },
    Case {
        replace: &[(
            "tables = [\"public.orders\", \"sales.\\\"LineItems\\\"\"]",
            "tables = []",
        )],
        error: r"(?i)tables.*at least 1",
        line: "tables = []",
    },
    Case {
        replace: &[("\"public.orders\", ", "\"a.b.c\", ")],
        error: r"not a table name \(at most one '\.' between schema and table\)",
        line: "a.b.c",
    },
    Case {
        replace: &[(
            "host     = \"127.0.0.1\"",
            "host     = \"127.0.0.1\"\n      slot     = \"Orders-Slot\"",
        )],
        error: r"not a valid replication slot name; allowed: 1 to 63 characters of a-z, 0-9 and '_'",
        line: "Orders-Slot",
    },
    Case {
        replace: &[(
            "host     = \"127.0.0.1\"",
            "host     = \"127.0.0.1\"\n      sslmode  = \"allow\"",
        )],
        error: r#"sslmode.*"disable", "prefer", "require", "verify-ca", "verify-full""#,
        line: "\"allow\"",
    },
    Case {
        replace: &[("type = \"env\"", "type = \"vault\"")],
        error: r#"type.*"env", "file""#,
        line: "vault",
    },
    Case {
        replace: &[("name = \"PGPASSWORD\"", "name = \"1PASSWORD\"")],
        error: r"password.name.*not an environment variable name",
        line: "1PASSWORD",
    },
    Case {
        replace: &[
            ("type = \"env\"", "type = \"file\""),
            ("name = \"PGPASSWORD\"", "name = \"secrets/pg\""),
        ],
        error: r"password.name.*absolute path",
        line: "secrets/pg",
    },
    Case {
        replace: &[(
            "file:///tmp/lakestream-plan-only/lake",
            "s3://lake-bucket/orders.parquet",
        )],
        error: r"target.uri.*names a file; the target uri must be a folder",
        line: "orders.parquet",
    },
    Case {
        replace: &[(
            "file:///tmp/lakestream-plan-only/lake",
            "s3://lake-bucket/orders.jsonl",
        )],
        error: r#"does not match format "parquet""#,
        line: "orders.jsonl",
    },
    Case {
        replace: &[("file:///tmp/lakestream-plan-only/lake", "gs://lake/cdc")],
        error: r"target.uri.*unsupported scheme gs://",
        line: "gs://lake/cdc",
    },
    Case {
        replace: &[("format = \"parquet\"", "format = \"csv\"")],
        error: r#"format.*"parquet", "jsonl", "avro""#,
        line: "\"csv\"",
    },
    Case {
        replace: &[(
            "format = \"parquet\"",
            "format = \"parquet\"\n    flush_interval = \"50ms\"",
        )],
        error: r"flush_interval.*out of range; allowed: 100ms to 1h",
        line: "50ms",
    },
    Case {
        replace: &[(
            "format = \"parquet\"",
            "format = \"parquet\"\n    target_file_size = \"512KB\"",
        )],
        error: r"target_file_size.*out of range; allowed: 1MiB to 1GiB",
        line: "512KB",
    },
    Case {
        replace: &[(
            "format = \"parquet\"",
            "format = \"parquet\"\n    target_file_size = \"32 MB\"",
        )],
        error: r"not a size",
        line: "32 MB",
    },
    Case {
        replace: &[(
            "name      = \"orders\"",
            "name      = \"orders\"\n  on_schema_change = \"backfill\"",
        )],
        error: r#"on_schema_change.*"evolve", "fail""#,
        line: "backfill",
    },
    Case {
        replace: &[(
            "name      = \"orders\"",
            "name      = \"orders\"\n  max_consecutive_failures = 0",
        )],
        error: r"max_consecutive_failures.*out of range; allowed: 1 to 1000",
        line: "max_consecutive_failures = 0",
    },
    Case {
        replace: &[(
            "name      = \"orders\"",
            "name      = \"orders\"\n  pinned_version = 0",
        )],
        error: r"(?i)pinned_version",
        line: "pinned_version = 0",
    },
    Case {
        replace: &[(
            "host     = \"127.0.0.1\"",
            "host     = \"127.0.0.1\"\n      sslmode  = \"verify-full\"",
        )],
        error: r"ssl_root_cert.*required when sslmode is verify-ca or verify-full",
        line: "postgres {",
    },
];

#[test]
fn invalid_configurations_fail_at_plan_time_on_the_right_line() {
    let mut failures = Vec::new();
    for (index, case) in CASES.iter().enumerate() {
        let workspace = Workspace::new();
        workspace.config(&config(case.replace));
        let outcome = std::panic::catch_unwind(|| {
            let errors = workspace.plan_fails();
            assert_error(&errors, case.error, case.line);
        });
        if let Err(panic) = outcome {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            failures.push(format!("case {index} ({:?}): {message}", case.error));
        }
    }
    assert!(CASES.len() >= 20);
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n\n")
    );
}

#[test]
fn a_second_pipeline_on_one_runner_in_one_configuration_is_refused_at_apply_time_only_when_unknown()
{
    // Both pipelines reference a runner that does not exist yet: Terraform cannot know at plan
    // time that they collide, so planning succeeds (the apply-time check is tested with a
    // real runner).
    let second = PIPELINE.replace(
        "\"streaming_pipeline\" \"p\"",
        "\"streaming_pipeline\" \"q\"",
    );
    let workspace = Workspace::new();
    workspace.config(&format!("{HEADER}{RUNNER}{PIPELINE}{second}"));
    assert_eq!(workspace.planned_actions().len(), 3);
}
