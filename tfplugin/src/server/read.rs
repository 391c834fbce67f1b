//! ReadResource: refresh, and the read that follows an import.

use super::ProviderServer;
use super::convert::{decode_dynamic, diagnostics_to_proto, encode_dynamic};
use crate::diagnostics::Diagnostics;
use crate::planning::nullify_write_only;
use crate::proto::tfplugin6 as pb;
use crate::provider::ReadRequest;

impl ProviderServer {
    /// ReadResource. A null new state tells Terraform the object is gone. On errors the
    /// current state is returned unchanged, so a failed refresh loses nothing.
    pub async fn read_resource(
        &self,
        request: pb::read_resource::Request,
    ) -> pb::read_resource::Response {
        let mut diagnostics = Diagnostics::new();
        let mut private = request.private.clone();
        let new_state = match self.resource(&request.type_name) {
            Err(diagnostic) => {
                diagnostics.push(diagnostic);
                request.current_state.clone()
            }
            Ok(registered) => {
                let ty = registered.schema.value_type();
                match decode_dynamic(request.current_state.as_ref(), &ty) {
                    Err(diagnostic) => {
                        diagnostics.push(diagnostic);
                        request.current_state.clone()
                    }
                    Ok(state) => {
                        let response = registered
                            .resource
                            .read(
                                &self.context(),
                                ReadRequest {
                                    state,
                                    private: request.private.clone(),
                                },
                            )
                            .await;
                        diagnostics.extend(response.diagnostics);
                        if diagnostics.has_errors() {
                            request.current_state.clone()
                        } else {
                            private = response.private.unwrap_or(private);
                            let mut new_state = registered.schema.block.normalize(response.state);
                            nullify_write_only(&registered.schema.block, &mut new_state);
                            match encode_dynamic(&new_state, &ty) {
                                Ok(encoded) => Some(encoded),
                                Err(diagnostic) => {
                                    diagnostics.push(diagnostic);
                                    request.current_state.clone()
                                }
                            }
                        }
                    }
                }
            }
        };
        pb::read_resource::Response {
            new_state,
            diagnostics: diagnostics_to_proto(&diagnostics),
            private,
            deferred: None,
        }
    }
}
