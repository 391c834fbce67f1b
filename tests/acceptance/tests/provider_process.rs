//! The provider as a process: run by hand it refuses politely; under Terraform it serves the
//! schema with a description on every attribute, and a plan costs little provider time.

use std::process::Command;
use std::time::Instant;

use lakestream_acceptance::{Workspace, bin_dir};
use serde_json::Value;

#[test]
fn run_by_hand_it_prints_the_plugin_message_and_exits_1() {
    let output = Command::new(bin_dir().join("terraform-provider-streaming"))
        .env_remove("TF_PLUGIN_MAGIC_COOKIE")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("This binary is a plugin. These are not meant to be executed directly."),
        "{stderr}"
    );
    assert!(output.stdout.is_empty());
}

fn assert_described(kind: &str, name: &str, block: &Value, path: &str, missing: &mut Vec<String>) {
    for (attribute, schema) in block["attributes"].as_object().into_iter().flatten() {
        let described = schema["description"]
            .as_str()
            .is_some_and(|d| !d.trim().is_empty());
        if !described {
            missing.push(format!("{kind} {name}: {path}{attribute}"));
        }
    }
    for (nested, schema) in block["block_types"].as_object().into_iter().flatten() {
        assert_described(
            kind,
            name,
            &schema["block"],
            &format!("{path}{nested}."),
            missing,
        );
    }
}

#[test]
fn the_schema_lists_both_resources_with_a_description_on_every_attribute() {
    let workspace = Workspace::new();
    workspace.config("terraform {\n  required_providers {\n    streaming = { source = \"lakestream/streaming\" }\n  }\n}\n");
    let run = workspace.run(&["providers", "schema", "-json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let document: Value = serde_json::from_str(&run.stdout).unwrap();
    let provider = &document["provider_schemas"]["registry.terraform.io/lakestream/streaming"];
    let mut missing = Vec::new();
    for (kind, section) in [
        ("resource", "resource_schemas"),
        ("data source", "data_source_schemas"),
    ] {
        for (name, schema) in provider[section].as_object().expect(section) {
            assert_described(kind, name, &schema["block"], "", &mut missing);
        }
    }
    let resources: Vec<&String> = provider["resource_schemas"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(resources, ["streaming_pipeline", "streaming_runner"]);
    let data_sources: Vec<&String> = provider["data_source_schemas"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(
        data_sources,
        ["streaming_pipeline_status", "streaming_runner"]
    );
    assert!(
        missing.is_empty(),
        "attributes without a description: {missing:?}"
    );
}

#[test]
fn a_one_resource_plan_takes_well_under_a_second() {
    let workspace = Workspace::new();
    workspace.config(
        "resource \"streaming_runner\" \"r\" {\n  name = \"r\"\n  control_store = \"file:///tmp/lakestream-plan-timing\"\n  local {}\n}\n",
    );
    // Warm the file cache, then take the best of three: the machine is shared.
    workspace.run(&["plan", "-no-color"]);
    let best = (0..3)
        .map(|_| {
            let started = Instant::now();
            let run = workspace.run(&["plan", "-no-color"]);
            assert_eq!(run.code, 0, "{}", run.stderr);
            started.elapsed()
        })
        .min()
        .unwrap();
    eprintln!("one-resource terraform plan: {best:?} (terraform and provider together)");
    assert!(
        best.as_secs_f64() < 2.0,
        "a plan took {best:?}; Shutdown is not answered promptly?"
    );
}
