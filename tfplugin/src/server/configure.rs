//! ConfigureProvider and StopProvider.

use super::convert::{client_capabilities, decode_dynamic, diagnostics_to_proto};
use super::{ProviderServer, RunState};
use crate::diagnostics::Diagnostics;
use crate::proto::tfplugin6 as pb;
use crate::provider::ConfigureRequest;

impl ProviderServer {
    /// ConfigureProvider: starts a run. In `--debug` mode one process serves many runs, so
    /// each configure replaces the provider data and starts with a fresh cancellation token
    /// (a previous run's Ctrl-C must not cancel this one).
    pub async fn configure_provider(
        &self,
        request: pb::configure_provider::Request,
    ) -> pb::configure_provider::Response {
        let mut diagnostics = Diagnostics::new();
        match decode_dynamic(request.config.as_ref(), &self.provider_schema.value_type()) {
            Ok(config) => {
                let response = self
                    .provider
                    .configure(ConfigureRequest {
                        config,
                        terraform_version: request.terraform_version,
                        client_capabilities: client_capabilities(
                            request.client_capabilities.as_ref(),
                        ),
                    })
                    .await;
                diagnostics.extend(response.diagnostics);
                let mut run = self
                    .run
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                *run = RunState {
                    provider_data: response.provider_data,
                    ..RunState::default()
                };
            }
            Err(diagnostic) => diagnostics.push(diagnostic),
        }
        pb::configure_provider::Response {
            diagnostics: diagnostics_to_proto(&diagnostics),
        }
    }

    /// StopProvider: cancels in-flight operations through their contexts and answers at once
    /// with an empty error, as Terraform expects.
    pub fn stop_provider(
        &self,
        _request: pb::stop_provider::Request,
    ) -> pb::stop_provider::Response {
        self.stop();
        pb::stop_provider::Response {
            error: String::new(),
        }
    }
}
