//! `terraform plan` (refresh on) of an applied configuration of 100 runners and 100 pipelines
//! on the local deployment, against 200 `terraform_data` resources planned on the same machine
//! in the same run, interleaved.
//!
//! `terraform_data` is built into Terraform: it has no plugin process and no RPCs. What any
//! plugin costs is measured beside it, as `plan_floor_200_s`: 200 resources of the protocol
//! layer's example provider (`toy_thing`, a handful of flat attributes, each read from a JSON
//! file), built from `tfplugin/examples/toy_provider.rs`.
//!
//! The pipelines are created `paused`: a paused pipeline is a complete resource for Terraform
//! (its versions, its runner's desired state and status are all read on refresh) while its
//! runner consumes nothing, so a hundred runners do not compete with the plan for the two
//! cores by streaming. The runners are real processes and keep heartbeating (every 10 s) during
//! the plans, as they would in use. Everything is destroyed afterwards, and every runner
//! process recorded at apply time is checked (by PID and start time) to be gone.

use std::path::Path;
use std::time::Duration;

use nix::sys::signal::Signal;
use serde_json::json;

use super::{Bench, reference_first};
use crate::error::{Error, IoContext, Result};
use crate::figure::{Figure, Target};
use crate::postgres::PASSWORD_VARIABLE;
use crate::process::{Tracked, deployed_runners};
use crate::terraform::{PROVIDER, Workspace};

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
    let mut provider = Workspace::new(&dir.join("provider"), PROVIDER, &bench.bin_dir, &main_tf)?;
    provider.env(PASSWORD_VARIABLE, bench.database.password());
    let data = Workspace::new(
        &dir.join("terraform_data"),
        PROVIDER,
        &bench.bin_dir,
        &data_tf,
    )?;
    let floor = floor_workspace(bench, &dir, resources)?;

    let measured = measure(bench, &provider, &data, &floor).await;
    // Destroy whatever happened, and check by PID that no runner outlived it.
    let started = deployed_runners(&control);
    let destroyed = provider.destroy().await;
    data.destroy().await?;
    floor.destroy().await?;
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
    let Measured {
        apply,
        plans,
        references,
        floors,
    } = measured?;
    let destroy = destroyed?;

    let figure = Figure::new("plan_200_s", "s", plans)
        .reference("terraform_data", references.clone())
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
    bench.report.add(
        Figure::new("plan_floor_200_s", "s", floors)
            .reference("terraform_data", references)
            .details(json!({
                "resources": resources,
                "provider": "tfplugin/examples/toy_provider.rs (toy_thing)",
            })),
    );
    Ok(())
}

/// A workspace of `resources` `toy_thing` resources of the example provider, which must have
/// been built (`cargo build --release -p tfplugin --example toy_provider`).
fn floor_workspace(bench: &Bench, dir: &Path, resources: usize) -> Result<Workspace> {
    let built = bench.bin_dir.join("examples/toy_provider");
    if !built.is_file() {
        return Err(Error::Failed(format!(
            "{} is missing: build it with cargo build --release -p tfplugin --example toy_provider",
            built.display()
        )));
    }
    // Terraform finds an overridden provider as `terraform-provider-<type>` in its folder.
    let plugin_dir = dir.join("toy-plugin");
    std::fs::create_dir_all(&plugin_dir)
        .context(|| format!("creating {}", plugin_dir.display()))?;
    let plugin = plugin_dir.join("terraform-provider-toy");
    std::os::unix::fs::symlink(&built, &plugin)
        .context(|| format!("linking {}", plugin.display()))?;
    let things = dir.join("toy-things");
    std::fs::create_dir_all(&things).context(|| format!("creating {}", things.display()))?;
    let main_tf = format!(
        r#"terraform {{
  required_providers {{
    toy = {{ source = "example/toy" }}
  }}
}}

provider "toy" {{
  folder = "{things}"
}}

resource "toy_thing" "bench" {{
  count = {resources}
  name  = "thing-${{count.index}}"
}}
"#,
        things = things.display(),
    );
    Workspace::new(&dir.join("floor"), "example/toy", &plugin_dir, &main_tf)
}

/// What [`measure`] returns.
struct Measured {
    /// The provider's apply time.
    apply: Duration,
    /// Plan times of the provider's configuration.
    plans: Vec<f64>,
    /// Plan times of `terraform_data`.
    references: Vec<f64>,
    /// Plan times of the example provider.
    floors: Vec<f64>,
}

/// Applies the three configurations, then times their plans, interleaved (the reference
/// first on even repetitions, last on odd ones).
async fn measure(
    bench: &Bench,
    provider: &Workspace,
    data: &Workspace,
    floor: &Workspace,
) -> Result<Measured> {
    let apply = provider.apply().await?;
    data.apply().await?;
    floor.apply().await?;
    // One untimed plan each, so the first timed one does not pay for cold caches alone.
    for workspace in [provider, data, floor] {
        workspace.plan().await?;
    }
    let (mut plans, mut references, mut floors) = (Vec::new(), Vec::new(), Vec::new());
    for repetition in 0..bench.sizes.repetitions {
        if reference_first(repetition) {
            references.push(data.plan().await?.as_secs_f64());
        }
        plans.push(provider.plan().await?.as_secs_f64());
        floors.push(floor.plan().await?.as_secs_f64());
        if !reference_first(repetition) {
            references.push(data.plan().await?.as_secs_f64());
        }
    }
    Ok(Measured {
        apply,
        plans,
        references,
        floors,
    })
}
