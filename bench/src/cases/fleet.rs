//! `fleet_apply_50_fargate_s`: `terraform apply` of 50 runners on the Fargate deployment
//! against moto. The Fargate deployment (`provider/src/deploy/fargate.rs`) is still being
//! built and tested against moto, so the key is reported as not measured. Once it is done, this
//! case is a [`crate::terraform::Workspace`] with 50 `streaming_runner` resources in a
//! `fargate {}` block, moto from `lakestream_testkit::moto` (with `scripts/lib/tools.sh`'s
//! `ensure_moto` in `scripts/bench`), and a timed `apply()` per repetition, as the plan case
//! does.

use super::Bench;
use crate::error::Result;

/// Why the figure is missing.
const NOT_IMPLEMENTED: &str = "the Fargate deployment is still in progress; this case follows it";

/// Reports the key as not measured.
pub async fn run(bench: &mut Bench) -> Result<()> {
    bench
        .report
        .not_measured("fleet_apply_50_fargate_s", NOT_IMPLEMENTED);
    Ok(())
}
