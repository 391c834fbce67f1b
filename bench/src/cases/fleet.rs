//! `fleet_apply_50_fargate_s`: `terraform apply` of 50 runners on the Fargate deployment
//! against moto, with Terraform's default parallelism (10), then `terraform destroy`. Each
//! runner gets its own log group, two roles, a task definition and a service; the provider
//! shares one set of AWS clients between them. moto runs no tasks, so the runners do not wait
//! for a heartbeat (`wait_for_heartbeat = false`): the figure is the provider's own work and
//! the AWS calls it makes. There is no reference to compare with; the time per runner is in
//! the details.

use serde_json::json;

use super::Bench;
use crate::error::{Error, Result};
use crate::figure::Figure;
use crate::terraform::{PROVIDER, Workspace};
use lakestream_testkit::moto::MotoServer;

/// Runners per apply.
const RUNNERS: usize = 50;
const CLUSTER: &str = "fleet";
const BUCKET: &str = "lakestream-fleet";

/// Runs the case.
pub async fn run(bench: &mut Bench) -> Result<()> {
    let failed = |what: &str, err: std::io::Error| Error::Failed(format!("{what}: {err}"));
    let dir = bench.case_dir("fleet")?;
    let moto = MotoServer::start()
        .await
        .map_err(|err| failed("starting moto", err))?;
    moto.create_ecs_cluster(CLUSTER)
        .await
        .map_err(|err| failed("creating the cluster", err))?;
    moto.create_bucket(BUCKET)
        .await
        .map_err(|err| failed("creating the bucket", err))?;
    let (subnet, security_group) = moto
        .default_network()
        .await
        .map_err(|err| failed("reading moto's default VPC", err))?;
    let main_tf = format!(
        r#"terraform {{
  required_providers {{
    streaming = {{ source = "lakestream/streaming" }}
  }}
}}

provider "streaming" {{
  aws {{
    region = "us-east-1"
  }}
}}

resource "streaming_runner" "fleet" {{
  count              = {RUNNERS}
  name               = "fleet ${{count.index}}"
  control_store      = "s3://{BUCKET}/control"
  wait_for_heartbeat = false
  fargate {{
    cluster         = "{CLUSTER}"
    subnets         = ["{subnet}"]
    security_groups = ["{security_group}"]
    cpu             = 256
    memory          = 512
  }}
}}
"#
    );
    let mut workspace = Workspace::new(&dir, PROVIDER, &bench.bin_dir, &main_tf)?;
    for (key, value) in moto.env() {
        workspace.env(key, &value);
    }
    let (mut applies, mut destroys) = (Vec::new(), Vec::new());
    for _ in 0..bench.sizes.fleet_repetitions {
        let applied = workspace.apply().await;
        // Destroy whatever the apply managed, before reporting a failure.
        let destroyed = workspace.destroy().await?;
        applies.push(applied?.as_secs_f64());
        destroys.push(destroyed.as_secs_f64());
    }
    let per_runner: Vec<f64> = applies.iter().map(|s| s / RUNNERS as f64).collect();
    bench.report.add(
        Figure::new("fleet_apply_50_fargate_s", "s", applies).details(json!({
            "runners": RUNNERS,
            "parallelism": 10,
            "apply_s_per_runner": per_runner,
            "destroy_s": destroys,
            "emulator": "moto",
        })),
    );
    Ok(())
}
