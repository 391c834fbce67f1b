//! The `lakestream/streaming` Terraform provider: `streaming_runner` deploys a CDC runner,
//! `streaming_pipeline` assigns it one pipeline; both talk to the runner only through the
//! control store (see `ARCHITECTURE.md`).
//!
//! - [`resources`]: the two resources.
//! - [`data_sources`]: `streaming_runner` and `streaming_pipeline_status`.
//! - [`deploy`]: one module per deployment target behind the [`deploy::Deployment`] trait.
//! - [`rules`]: the shared spec rules as Terraform validators and diagnostics.

use std::sync::Arc;

use tfplugin::{
    Block, ConfigureRequest, ConfigureResponse, DataSource, Diagnostic, Provider, Resource, Schema,
};

pub mod address;
pub mod aws;
pub mod context;
pub mod data_sources;
pub mod deploy;
pub mod docs;
pub mod observe;
pub mod resources;
pub mod rules;
pub mod wait;

/// The provider's registry address.
pub const ADDRESS: &str = "registry.terraform.io/lakestream/streaming";

/// The provider's version, recorded in `runner.json`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The provider.
pub struct StreamingProvider;

#[tfplugin::async_trait]
impl Provider for StreamingProvider {
    fn schema(&self) -> Schema {
        Schema::new(
            Block::new()
                .description("Settings shared by every resource of this provider.")
                .block(aws::block()),
        )
    }

    async fn configure(&self, request: ConfigureRequest) -> ConfigureResponse {
        let mut response = ConfigureResponse::default();
        let aws = request.config.unknowns_as_null().attribute("aws").clone();
        let settings = if aws.is_null() {
            Ok(aws::AwsSettings::default())
        } else {
            aws.to_typed::<aws::AwsSettings>()
        };
        match settings {
            Ok(settings) => {
                response.provider_data =
                    Some(std::sync::Arc::new(context::ProviderContext::new(settings)))
            }
            Err(err) => response.diagnostics.push(Diagnostic::from(err)),
        }
        response
    }

    fn resources(&self) -> Vec<Arc<dyn Resource>> {
        vec![
            Arc::new(resources::runner::RunnerResource),
            Arc::new(resources::pipeline::PipelineResource),
        ]
    }

    fn data_sources(&self) -> Vec<Arc<dyn DataSource>> {
        vec![
            Arc::new(data_sources::runner::RunnerDataSource),
            Arc::new(data_sources::pipeline_status::PipelineStatusDataSource),
        ]
    }
}
