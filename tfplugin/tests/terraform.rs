//! End to end with the real `terraform` binary and the example provider, offline: a
//! `dev_overrides` CLI configuration and no `terraform init`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::support::toy_provider_binary;

struct Workspace {
    root: tempfile::TempDir,
}

impl Workspace {
    fn new() -> Self {
        let root = tempfile::tempdir().unwrap();
        let bin = root.path().join("bin");
        for folder in ["bin", "work", "data"] {
            std::fs::create_dir(root.path().join(folder)).unwrap();
        }
        std::fs::copy(toy_provider_binary(), bin.join("terraform-provider-toy")).unwrap();
        std::fs::write(
            root.path().join("cli.tfrc"),
            format!("provider_installation {{\n  dev_overrides {{ \"example/toy\" = \"{}\" }}\n  direct {{}}\n}}\n", bin.display()),
        )
        .unwrap();
        Self { root }
    }

    fn work(&self) -> PathBuf {
        self.root.path().join("work")
    }

    fn data(&self) -> PathBuf {
        self.root.path().join("data")
    }

    fn write_config(&self, tags: &str) {
        let config = format!(
            r#"terraform {{
  required_providers {{
    toy = {{ source = "example/toy" }}
  }}
}}

provider "toy" {{
  folder = "{data}"
}}

resource "toy_thing" "a" {{
  name   = "alpha"
  tags   = {{ {tags} }}
  secret = "never stored"
  timeouts {{
    create = "5m"
  }}
}}
"#,
            data = self.data().display()
        );
        std::fs::write(self.work().join("main.tf"), config).unwrap();
    }

    fn terraform(&self, args: &[&str]) -> Output {
        Command::new("terraform")
            .args(args)
            .current_dir(self.work())
            .env("TF_CLI_CONFIG_FILE", self.root.path().join("cli.tfrc"))
            .env("CHECKPOINT_DISABLE", "1")
            .env("TF_IN_AUTOMATION", "1")
            .env("TF_INPUT", "0")
            .env_remove("TF_LOG")
            .env_remove("TF_REATTACH_PROVIDERS")
            .output()
            .expect("terraform runs")
    }

    fn expect(&self, args: &[&str], code: i32) -> String {
        let output = self.terraform(args);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(
            output.status.code(),
            Some(code),
            "terraform {args:?}:\n{text}"
        );
        text
    }
}

fn terraform_available() -> bool {
    Command::new("terraform")
        .arg("version")
        .output()
        .is_ok_and(|output| output.status.success())
}

fn state_attributes(work: &Path) -> serde_json::Value {
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(work.join("terraform.tfstate")).unwrap()).unwrap();
    state["resources"][0]["instances"][0]["attributes"].clone()
}

#[test]
fn plan_apply_replan_update_import_destroy_with_real_terraform() {
    if !terraform_available() {
        eprintln!("SKIPPED: `terraform` is not on PATH; this test needs Terraform 1.11+");
        return;
    }
    let workspace = Workspace::new();
    workspace.write_config(r#"env = "dev""#);

    let plan = workspace.expect(&["plan", "-no-color", "-detailed-exitcode"], 2);
    assert!(plan.contains("+ id       = (known after apply)"), "{plan}");
    assert!(plan.contains("+ size     = 1"), "default planned: {plan}");
    workspace.expect(&["apply", "-auto-approve", "-no-color"], 0);
    let attributes = state_attributes(&workspace.work());
    assert_eq!(attributes["id"], "alpha");
    assert_eq!(
        attributes["secret"],
        serde_json::Value::Null,
        "write-only never stored"
    );
    assert!(workspace.data().join("alpha.json").exists());

    // An unchanged configuration plans nothing; measure what one provider round costs.
    let started = Instant::now();
    workspace.expect(&["plan", "-no-color", "-detailed-exitcode"], 0);
    let elapsed = started.elapsed();
    println!(
        "one-resource `terraform plan` (empty): {:.3} s",
        elapsed.as_secs_f64()
    );
    assert!(
        elapsed < Duration::from_secs(4),
        "plan took {elapsed:?}: is Shutdown answered?"
    );

    workspace.write_config(r#"env = "prod""#);
    let plan = workspace.expect(&["plan", "-no-color", "-detailed-exitcode"], 2);
    assert!(plan.contains("updated in-place"), "{plan}");
    assert!(
        plan.contains("revision = 0 -> (known after apply)"),
        "{plan}"
    );
    workspace.expect(&["apply", "-auto-approve", "-no-color"], 0);
    assert_eq!(state_attributes(&workspace.work())["revision"], 1);
    workspace.expect(&["plan", "-no-color", "-detailed-exitcode"], 0);

    workspace.expect(&["state", "rm", "-no-color", "toy_thing.a"], 0);
    workspace.expect(&["import", "-no-color", "toy_thing.a", "alpha"], 0);
    assert_eq!(state_attributes(&workspace.work())["tags"]["env"], "prod");

    let schema = workspace.expect(&["providers", "schema", "-json"], 0);
    let schema: serde_json::Value =
        serde_json::from_str(schema.lines().find(|line| line.starts_with('{')).unwrap()).unwrap();
    let thing = &schema["provider_schemas"]["registry.terraform.io/example/toy"]["resource_schemas"]
        ["toy_thing"]["block"];
    assert_eq!(thing["attributes"]["name"]["required"], true);
    assert_eq!(thing["attributes"]["secret"]["write_only"], true);
    assert_eq!(thing["block_types"]["timeouts"]["nesting_mode"], "single");

    workspace.write_config(r#"env = """#);
    let invalid = workspace.expect(&["plan", "-no-color"], 1);
    assert!(
        invalid.contains("Invalid Attribute Value Length") && invalid.contains("main.tf line"),
        "{invalid}"
    );

    workspace.write_config(r#"env = "prod""#);
    workspace.expect(&["destroy", "-auto-approve", "-no-color"], 0);
    assert!(!workspace.data().join("alpha.json").exists());
}
