//! The `lakestream/streaming` Terraform provider: `streaming_runner` deploys a CDC runner,
//! `streaming_pipeline` assigns it one pipeline; both talk to the runner only through the
//! control store (see `ARCHITECTURE.md`).
//!
//! - [`resources`]: the two resources.
//! - [`data_sources`]: `streaming_runner` and `streaming_pipeline_status`.
//! - [`deploy`]: one module per deployment target behind the [`deploy::Deployment`] trait.
//! - [`rules`]: the shared spec rules as Terraform validators and diagnostics.

use std::sync::Arc;

use tfplugin::{DataSource, Provider, Resource};

pub mod address;
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
