//! ImportResourceState: the imported objects, which Terraform reads right after.

use super::ProviderServer;
use super::convert::{diagnostics_to_proto, encode_dynamic};
use crate::diagnostics::Diagnostics;
use crate::proto::tfplugin6 as pb;
use crate::provider::ImportRequest;

impl ProviderServer {
    /// ImportResourceState.
    pub async fn import_resource_state(
        &self,
        request: pb::import_resource_state::Request,
    ) -> pb::import_resource_state::Response {
        let mut diagnostics = Diagnostics::new();
        let mut imported_resources = Vec::new();
        match self.resource(&request.type_name) {
            Err(diagnostic) => diagnostics.push(diagnostic),
            Ok(registered) => {
                let response = registered
                    .resource
                    .import(&self.context(), ImportRequest { id: request.id })
                    .await;
                diagnostics.extend(response.diagnostics);
                for imported in response.resources {
                    let type_name = imported
                        .type_name
                        .unwrap_or_else(|| request.type_name.clone());
                    let Some(schema) = self.resource_schema(&type_name) else {
                        diagnostics.push(super::unknown_type("resource", &type_name));
                        continue;
                    };
                    let state = schema.block.normalize(imported.state);
                    match encode_dynamic(&state, &schema.value_type()) {
                        Ok(encoded) => {
                            imported_resources.push(pb::import_resource_state::ImportedResource {
                                type_name,
                                state: Some(encoded),
                                private: imported.private,
                            })
                        }
                        Err(diagnostic) => diagnostics.push(diagnostic),
                    }
                }
            }
        }
        if diagnostics.has_errors() {
            imported_resources.clear();
        }
        pb::import_resource_state::Response {
            imported_resources,
            diagnostics: diagnostics_to_proto(&diagnostics),
            deferred: None,
        }
    }
}
