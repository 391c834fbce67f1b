//! A harness that drives the real `terraform` binary against the freshly built provider, in
//! the spirit of terraform-plugin-testing: apply → check state → **plan again and fail unless
//! empty** → import into a fresh state and compare (ImportStateVerify) → expected plan actions
//! → expected errors on the right attribute and line → destroy → check nothing is left.
//!
//! Every workspace is a temporary folder with its own `TF_CLI_CONFIG_FILE` whose
//! `dev_overrides` point at the provider binary built next to this test executable;
//! `terraform init` is never run (it would go online), and `CHECKPOINT_DISABLE=1` keeps
//! Terraform from calling home.

pub mod fargate;
pub mod kubelet;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use regex::Regex;
use serde_json::Value;

/// The provider's source address.
pub const PROVIDER: &str = "lakestream/streaming";

/// The folder holding `terraform-provider-streaming` and `streaming-runner`: the cargo target
/// folder of this test executable (`target/<profile>/deps/..`), or `LAKESTREAM_BIN_DIR`.
pub fn bin_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("LAKESTREAM_BIN_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("the test executable's path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps")
        .to_path_buf();
    let provider = dir.join("terraform-provider-streaming");
    assert!(
        provider.exists(),
        "{} is missing: build the binaries first (scripts/test does: cargo build --workspace --bins)",
        provider.display()
    );
    dir
}

/// A Terraform diagnostic from `-json` output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// `error` or `warning`.
    pub severity: String,
    /// The summary line.
    pub summary: String,
    /// The detail text.
    pub detail: String,
    /// The configuration line Terraform points at, when it points at one.
    pub line: Option<u64>,
    /// The source text of that line.
    pub code: Option<String>,
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} — {} (line {:?}: {:?})",
            self.severity, self.summary, self.detail, self.line, self.code
        )
    }
}

/// The result of one terraform command.
#[derive(Debug)]
pub struct Run {
    /// Exit code.
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// Diagnostics from `-json` output (JSON lines or a `validate -json` document).
    pub fn diagnostics(&self) -> Vec<Diagnostic> {
        let mut found = Vec::new();
        let mut collect = |d: &Value| found.push(diagnostic(d));
        if let Ok(document) = serde_json::from_str::<Value>(&self.stdout) {
            if let Some(list) = document["diagnostics"].as_array() {
                list.iter().for_each(&mut collect);
            }
        } else {
            for line in self.stdout.lines() {
                if let Ok(event) = serde_json::from_str::<Value>(line)
                    && event["type"] == "diagnostic"
                {
                    collect(&event["diagnostic"]);
                }
            }
        }
        found
    }

    /// Exit code, stdout and stderr, for assertion messages.
    pub fn describe(&self) -> String {
        format!(
            "exit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

fn diagnostic(d: &Value) -> Diagnostic {
    Diagnostic {
        severity: d["severity"].as_str().unwrap_or_default().to_owned(),
        summary: d["summary"].as_str().unwrap_or_default().to_owned(),
        detail: d["detail"].as_str().unwrap_or_default().to_owned(),
        line: d["range"]["start"]["line"].as_u64(),
        code: d["snippet"]["code"].as_str().map(str::to_owned),
    }
}

/// Planned actions per resource address, from a saved plan.
pub type PlannedActions = BTreeMap<String, Vec<String>>;

/// One Terraform working folder with its own CLI configuration and state.
pub struct Workspace {
    dir: tempfile::TempDir,
    cli_config: PathBuf,
    env: Vec<(String, String)>,
}

impl Default for Workspace {
    fn default() -> Self {
        Self::new()
    }
}

impl Workspace {
    /// An empty workspace using the provider built next to this test.
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("lakestream-acc-")
            .tempdir()
            .expect("a temporary folder");
        let cli_config = dir.path().join(".terraformrc");
        std::fs::write(
            &cli_config,
            format!(
                "provider_installation {{\n  dev_overrides {{\n    \"{PROVIDER}\" = \"{}\"\n  }}\n  direct {{}}\n}}\n",
                bin_dir().display()
            ),
        )
        .expect("write the CLI configuration");
        Self {
            dir,
            cli_config,
            env: Vec::new(),
        }
    }

    /// The working folder.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Sets an environment variable for every terraform command (and so for the provider).
    pub fn env(&mut self, key: &str, value: &str) -> &mut Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Replaces the configuration (`main.tf`), adding the `required_providers` entry for this
    /// provider unless the text has its own.
    pub fn config(&self, hcl: &str) -> &Self {
        let text = if hcl.contains("required_providers") {
            hcl.to_owned()
        } else {
            format!(
                "terraform {{\n  required_providers {{\n    streaming = {{ source = \"{PROVIDER}\" }}\n  }}\n}}\n\n{hcl}"
            )
        };
        std::fs::write(self.path().join("main.tf"), text).expect("write main.tf");
        self
    }

    /// Sets input variables (written to `terraform.tfvars.json`).
    pub fn vars(&self, values: serde_json::Value) -> &Self {
        std::fs::write(
            self.path().join("terraform.tfvars.json"),
            serde_json::to_vec_pretty(&values).unwrap(),
        )
        .expect("write tfvars");
        self
    }

    /// Runs `terraform <args>`.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_in(self.path(), args)
    }

    fn run_in(&self, dir: &Path, args: &[&str]) -> Run {
        let output: Output = Command::new("terraform")
            .args(args)
            .current_dir(dir)
            .env("TF_CLI_CONFIG_FILE", &self.cli_config)
            .env("CHECKPOINT_DISABLE", "1")
            .env("TF_IN_AUTOMATION", "1")
            .env("TF_INPUT", "0")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .output()
            .expect("terraform runs (is it on PATH? scripts/test installs it)");
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// The repository's example configuration `examples/terraform/<name>/main.tf`.
    pub fn example(name: &str) -> String {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../examples/terraform")
            .join(name)
            .join("main.tf");
        std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
    }

    /// `terraform apply`, which must succeed; then the plan must be empty.
    pub fn apply(&self) -> Run {
        let run = self.run(&["apply", "-auto-approve", "-no-color", "-input=false"]);
        assert_eq!(run.code, 0, "apply failed: {}", run.describe());
        self.assert_plan_empty();
        run
    }

    /// `terraform apply` that must fail; returns its error diagnostics.
    pub fn apply_fails(&self) -> Vec<Diagnostic> {
        let run = self.run(&[
            "apply",
            "-auto-approve",
            "-no-color",
            "-input=false",
            "-json",
        ]);
        assert_ne!(
            run.code,
            0,
            "apply was expected to fail: {}",
            run.describe()
        );
        let errors: Vec<_> = run
            .diagnostics()
            .into_iter()
            .filter(|d| d.severity == "error")
            .collect();
        assert!(
            !errors.is_empty(),
            "apply failed without an error diagnostic: {}",
            run.describe()
        );
        errors
    }

    /// `terraform plan` that must fail; returns its error diagnostics.
    pub fn plan_fails(&self) -> Vec<Diagnostic> {
        let run = self.run(&["plan", "-no-color", "-input=false", "-json"]);
        assert_ne!(run.code, 0, "plan was expected to fail: {}", run.describe());
        run.diagnostics()
            .into_iter()
            .filter(|d| d.severity == "error")
            .collect()
    }

    /// Asserts that `terraform plan` proposes no change to any resource (the plugin-testing
    /// rule that catches drift and unstable plans). Outputs may change: an output that reports
    /// live status (a pipeline's phase, rows delivered) differs from run to run by design.
    pub fn assert_plan_empty(&self) {
        let actions = self.planned_actions();
        assert!(
            actions.is_empty(),
            "expected no resource changes, got {actions:?}"
        );
    }

    /// The actions a plan proposes, per resource address (`["update"]`, `["delete","create"]` …).
    pub fn planned_actions(&self) -> PlannedActions {
        let run = self.run(&["plan", "-out=tfplan", "-no-color", "-input=false"]);
        assert!(run.code == 0, "plan failed: {}", run.describe());
        let show = self.run(&["show", "-json", "tfplan"]);
        let plan: Value = serde_json::from_str(&show.stdout).expect("plan JSON");
        plan["resource_changes"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|change| {
                let actions = change["change"]["actions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|a| a.as_str().map(str::to_owned))
                    .collect();
                (
                    change["address"].as_str().unwrap_or_default().to_owned(),
                    actions,
                )
            })
            .filter(|(_, actions): &(String, Vec<String>)| actions != &["no-op"])
            .collect()
    }

    /// The attributes of every resource in state, by address.
    pub fn state(&self) -> BTreeMap<String, Value> {
        let run = self.run(&["show", "-json"]);
        assert_eq!(run.code, 0, "show failed: {}", run.describe());
        resources(&serde_json::from_str(&run.stdout).expect("state JSON"))
    }

    /// One resource's attributes.
    pub fn resource(&self, address: &str) -> Value {
        self.state()
            .remove(address)
            .unwrap_or_else(|| panic!("{address} is not in state"))
    }

    /// ImportStateVerify: imports `address` by `id` into a fresh state with the same
    /// configuration and checks every attribute equals the current state's, except `ignore`.
    pub fn import_verify(&self, address: &str, id: &str, ignore: &[&str]) {
        let fresh = tempfile::Builder::new()
            .prefix("lakestream-import-")
            .tempdir()
            .expect("a temporary folder");
        for file in ["main.tf", "terraform.tfvars.json"] {
            if self.path().join(file).exists() {
                std::fs::copy(self.path().join(file), fresh.path().join(file))
                    .expect("copy the configuration");
            }
        }
        let run = self.run_in(
            fresh.path(),
            &["import", "-no-color", "-input=false", address, id],
        );
        assert_eq!(
            run.code,
            0,
            "import of {address} as {id:?} failed: {}",
            run.describe()
        );
        let show = self.run_in(fresh.path(), &["show", "-json"]);
        let imported = resources(&serde_json::from_str(&show.stdout).expect("state JSON"));
        let expected = self.resource(address);
        let actual = imported
            .get(address)
            .unwrap_or_else(|| panic!("{address} missing after import"));
        for (key, value) in expected.as_object().expect("attributes") {
            if ignore.contains(&key.as_str()) {
                continue;
            }
            assert_eq!(
                &actual[key], value,
                "imported {address}.{key} differs from state"
            );
        }
    }

    /// `terraform destroy`, which must succeed and leave no resources in state.
    pub fn destroy(&self) {
        let run = self.run(&["destroy", "-auto-approve", "-no-color", "-input=false"]);
        assert_eq!(run.code, 0, "destroy failed: {}", run.describe());
        assert!(
            self.state().is_empty(),
            "resources left in state after destroy"
        );
    }
}

/// Whether a test against a real cloud account runs: `TF_ACC_CLOUD` names `cloud`. When it
/// does not, the test says what it would need and is skipped.
pub fn real_cloud(cloud: &str, needs: &str) -> bool {
    let wanted = std::env::var("TF_ACC_CLOUD").as_deref() == Ok(cloud);
    if !wanted {
        eprintln!("skipped: set TF_ACC_CLOUD={cloud} with {needs}");
    }
    wanted
}

/// A variable a real-cloud run needs.
pub fn cloud_variable(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("a TF_ACC_CLOUD run needs {name}"))
}

/// Applies `streaming_runner.this` of the example `name` with `vars` for real, destroys what
/// it created whatever happened, and fails unless the apply succeeded.
pub fn apply_example_runner_for_real(name: &str, vars: Value) {
    let workspace = Workspace::new();
    workspace.config(&Workspace::example(name)).vars(vars);
    let run = workspace.run(&[
        "apply",
        "-auto-approve",
        "-no-color",
        "-input=false",
        "-target=streaming_runner.this",
    ]);
    workspace.run(&["destroy", "-auto-approve", "-no-color", "-input=false"]);
    assert_eq!(run.code, 0, "apply of {name} failed: {}", run.describe());
}

fn resources(document: &Value) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    let mut modules = vec![&document["values"]["root_module"]];
    while let Some(module) = modules.pop() {
        for resource in module["resources"].as_array().into_iter().flatten() {
            out.insert(
                resource["address"].as_str().unwrap_or_default().to_owned(),
                resource["values"].clone(),
            );
        }
        modules.extend(module["child_modules"].as_array().into_iter().flatten());
    }
    out
}

/// Asserts that exactly one error names `attribute` (in summary or detail), matches
/// `pattern`, and points at the configuration line containing `line_text`.
pub fn assert_error(errors: &[Diagnostic], pattern: &str, line_text: &str) {
    let pattern = Regex::new(pattern).expect("a valid pattern");
    let matching: Vec<_> = errors
        .iter()
        .filter(|d| pattern.is_match(&format!("{}\n{}", d.summary, d.detail)))
        .collect();
    assert!(
        !matching.is_empty(),
        "no error matches /{pattern}/; errors:\n{}",
        errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        matching.iter().any(|d| d
            .code
            .as_deref()
            .is_some_and(|code| code.contains(line_text))),
        "the error matching /{pattern}/ does not point at a line containing {line_text:?}: {}",
        matching
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    );
}
