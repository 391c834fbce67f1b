//! `terraform plan` (refresh on) of an applied configuration of 100 runners and 100 pipelines
//! on the local deployment, against 200 `terraform_data` resources planned on the same machine
//! in the same run, interleaved.
//!
//! The pipelines are created `paused`: a paused pipeline is a complete resource for Terraform
//! (its versions, its runner's desired state and status are all read on refresh) while its
//! runner consumes nothing, so a hundred runners do not compete with the plan for the two
//! cores by streaming. The runners are real processes and keep heartbeating (every 10 s) during
//! the plans, as they would in use. Everything is destroyed afterwards, and every runner
//! process recorded at apply time is checked (by PID and start time) to be gone.

use std::time::Duration;

use nix::sys::signal::Signal;
use serde_json::json;

use super::{Bench, reference_first};
use crate::error::{Error, Result};
use crate::figure::{Figure, Target};
use crate::postgres::PASSWORD_VARIABLE;
use crate::process::{Tracked, deployed_runners};
use crate::terraform::Workspace;

/// The project's goal: planning the provider's resources takes at most this multiple of
/// planning as many `terraform_data` resources.
const TARGET_RATIO: f64 = 1.5;
/// The runners' heartbeat interval.
const HEARTBEAT: &str = "10s";

/// Runs the case.
pub async fn run(bench: &mut Bench) -> Result<()> {
    let dir = bench.case_dir("plan")?;
    let runners = bench.sizes.plan_runners;
    let control = dir.join("control");
    let lake = dir.join("lake");
    let main_tf = format!(
        r#"terraform {{
  required_providers {{
    streaming = {{ source = "lakestream/streaming" }}
  }}
}}

resource "streaming_runner" "bench" {{
  count              = {runners}
  name               = "bench ${{count.index}}"
  control_store      = "file://{control}"
  heartbeat_interval = "{HEARTBEAT}"
  local {{}}
}}

resource "streaming_pipeline" "bench" {{
  count     = {runners}
  name      = "bench ${{count.index}}"
  runner_id = streaming_runner.bench[count.index].id
  state     = "paused"
  source {{
    postgres {{
      url    = "{url}"
      tables = ["public.stream"]
      password {{
        type = "env"
        name = "{PASSWORD_VARIABLE}"
      }}
    }}
  }}
  target {{
    uri = "file://{lake}/p${{count.index}}"
  }}
}}
"#,
        control = control.display(),
        lake = lake.display(),
        url = bench.database.url(),
    );
    let resources = 2 * runners;
    let data_tf = format!(
        "resource \"terraform_data\" \"bench\" {{\n  count = {resources}\n  input = \"value ${{count.index}}\"\n}}\n"
    );
    let mut provider = Workspace::new(&dir.join("provider"), &bench.bin_dir, &main_tf)?;
    provider.env(PASSWORD_VARIABLE, bench.database.password());
    let data = Workspace::new(&dir.join("terraform_data"), &bench.bin_dir, &data_tf)?;

    let measured = measure(bench, &provider, &data).await;
    // Destroy whatever happened, and check by PID that no runner outlived it.
    let started = deployed_runners(&control);
    let destroyed = provider.destroy().await;
    data.destroy().await?;
    let survivors: Vec<Tracked> = started.iter().filter(|p| p.is_alive()).copied().collect();
    for process in &survivors {
        process.stop(Signal::SIGTERM, Duration::from_secs(20)).await;
    }
    if !survivors.is_empty() {
        return Err(Error::Failed(format!(
            "{} runner processes survived terraform destroy (pids {:?}); stopped them",
            survivors.len(),
            survivors.iter().map(|p| p.pid).collect::<Vec<_>>()
        )));
    }
    let (apply, plans, references) = measured?;
    let destroy = destroyed?;

    let figure = Figure::new("plan_200_s", "s", plans)
        .reference("terraform_data", references)
        .details(json!({
            "resources": resources,
            "runners": runners,
            "pipelines": runners,
            "pipeline_state": "paused",
            "heartbeat_interval": HEARTBEAT,
            "apply_s": apply.as_secs_f64(),
            "destroy_s": destroy.as_secs_f64(),
            "runner_processes_started": started.len(),
            "runner_processes_left_after_destroy": 0,
        }));
    let ratios = figure.ratios().unwrap_or_default();
    bench.report.add(figure);
    bench.report.add(
        Figure::new("plan_vs_terraform_data", "×", ratios)
            .target(Target::MedianAtMost(TARGET_RATIO)),
    );
    Ok(())
}

/// Applies both configurations, then times their plans, interleaved. Returns the provider's
/// apply time and the plan times of the provider and of `terraform_data`.
async fn measure(
    bench: &Bench,
    provider: &Workspace,
    data: &Workspace,
) -> Result<(Duration, Vec<f64>, Vec<f64>)> {
    let apply = provider.apply().await?;
    data.apply().await?;
    // One untimed plan each, so the first timed one does not pay for cold caches alone.
    provider.plan().await?;
    data.plan().await?;
    let (mut plans, mut references) = (Vec::new(), Vec::new());
    for repetition in 0..bench.sizes.repetitions {
        if reference_first(repetition) {
            references.push(data.plan().await?.as_secs_f64());
            plans.push(provider.plan().await?.as_secs_f64());
        } else {
            plans.push(provider.plan().await?.as_secs_f64());
            references.push(data.plan().await?.as_secs_f64());
        }
    }
    Ok((apply, plans, references))
}
