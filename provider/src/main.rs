//! `terraform-provider-streaming`: run by Terraform, not by hand (except with `--debug`).

use std::process::ExitCode;

fn main() -> ExitCode {
    tfplugin::serve(
        terraform_provider_streaming::StreamingProvider,
        tfplugin::ServeConfig::new(terraform_provider_streaming::ADDRESS),
    )
}
