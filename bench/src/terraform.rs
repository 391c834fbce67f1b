//! Terraform working folders for the provider cases: each has its own CLI configuration whose
//! `dev_overrides` point at the built provider (so `terraform init`, which would go online, is
//! never run) and `CHECKPOINT_DISABLE=1`, as the project's test rules require.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use crate::error::{Error, IoContext, Result};

/// The provider under test, as configurations name it.
pub const PROVIDER: &str = "lakestream/streaming";

/// A Terraform working folder.
pub struct Workspace {
    /// The folder (holds `main.tf` and the local state).
    dir: PathBuf,
    /// The CLI configuration file.
    cli_config: PathBuf,
    /// Extra environment for every command (and so for the provider).
    env: Vec<(String, String)>,
}

impl Workspace {
    /// A workspace in `dir` (created) using the provider `source` (`lakestream/streaming`)
    /// from `bin_dir`, with `main_tf` as its configuration.
    pub fn new(dir: &Path, source: &str, bin_dir: &Path, main_tf: &str) -> Result<Self> {
        std::fs::create_dir_all(dir).context(|| format!("creating {}", dir.display()))?;
        let cli_config = dir.join(".terraformrc");
        std::fs::write(
            &cli_config,
            format!(
                "provider_installation {{\n  dev_overrides {{\n    \"{source}\" = \"{}\"\n  }}\n  direct {{}}\n}}\n",
                bin_dir.display()
            ),
        )
        .context(|| format!("writing {}", cli_config.display()))?;
        std::fs::write(dir.join("main.tf"), main_tf)
            .context(|| format!("writing {}/main.tf", dir.display()))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            cli_config,
            env: Vec::new(),
        })
    }

    /// Sets an environment variable for every command.
    pub fn env(&mut self, key: &str, value: &str) {
        self.env.push((key.to_owned(), value.to_owned()));
    }

    /// Runs `terraform <args>`; returns its output and wall time.
    pub async fn run(&self, args: &[&str]) -> Result<(Output, Duration)> {
        let started = Instant::now();
        let output = tokio::process::Command::new("terraform")
            .args(args)
            .current_dir(&self.dir)
            .env("TF_CLI_CONFIG_FILE", &self.cli_config)
            .env("CHECKPOINT_DISABLE", "1")
            .env("TF_IN_AUTOMATION", "1")
            .env("TF_INPUT", "0")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .kill_on_drop(true)
            .output()
            .await
            .context(|| "running terraform (is it on PATH? scripts/bench installs it)".into())?;
        Ok((output, started.elapsed()))
    }

    /// `terraform apply -auto-approve`, which must succeed; returns its wall time.
    pub async fn apply(&self) -> Result<Duration> {
        let (output, elapsed) = self
            .run(&["apply", "-auto-approve", "-input=false", "-no-color"])
            .await?;
        succeeded(&output, "apply")?;
        Ok(elapsed)
    }

    /// `terraform plan` (refresh on), which must succeed and propose no change (the
    /// configuration is applied); returns its wall time.
    pub async fn plan(&self) -> Result<Duration> {
        let (output, elapsed) = self
            .run(&["plan", "-input=false", "-no-color", "-detailed-exitcode"])
            .await?;
        match output.status.code() {
            Some(0) => Ok(elapsed),
            Some(2) => Err(Error::Failed(format!(
                "terraform plan in {} proposes changes to an applied configuration:\n{}",
                self.dir.display(),
                String::from_utf8_lossy(&output.stdout)
            ))),
            _ => succeeded(&output, "plan").map(|()| elapsed),
        }
    }

    /// `terraform destroy -auto-approve`, which must succeed; returns its wall time.
    pub async fn destroy(&self) -> Result<Duration> {
        let (output, elapsed) = self
            .run(&["destroy", "-auto-approve", "-input=false", "-no-color"])
            .await?;
        succeeded(&output, "destroy")?;
        Ok(elapsed)
    }
}

/// Fails with Terraform's output unless it exited with 0.
fn succeeded(output: &Output, what: &str) -> Result<()> {
    if output.status.success() {
        return Ok(());
    }
    Err(Error::Failed(format!(
        "terraform {what} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )))
}
