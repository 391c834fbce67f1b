//! UpgradeResourceState: answered for every resource in state on every run.

use super::ProviderServer;
use super::convert::{diagnostics_to_proto, encode_dynamic};
use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::proto::tfplugin6 as pb;
use crate::provider::UpgradeStateRequest;

impl ProviderServer {
    /// UpgradeResourceState: raw JSON state in, msgpack state of the current schema out.
    pub fn upgrade_resource_state(
        &self,
        request: pb::upgrade_resource_state::Request,
    ) -> pb::upgrade_resource_state::Response {
        let mut diagnostics = Diagnostics::new();
        let upgraded = self.resource(&request.type_name).and_then(|registered| {
            let raw = request.raw_state.unwrap_or_default();
            if raw.json.is_empty() && !raw.flatmap.is_empty() {
                return Err(Diagnostic::error(
                    "Unsupported State Format",
                    "This state was written in the pre-0.12 flatmap format, which this provider cannot read. \
                     Refresh it with the provider version that wrote it and a current Terraform first.",
                ));
            }
            let response = registered
                .resource
                .upgrade_state(&registered.schema, UpgradeStateRequest { version: request.version, raw_json: raw.json });
            diagnostics.extend(response.diagnostics);
            if diagnostics.has_errors() {
                return Ok(None);
            }
            let state = registered.schema.block.normalize(response.state);
            encode_dynamic(&state, &registered.schema.value_type()).map(Some)
        });
        let upgraded_state = upgraded.unwrap_or_else(|diagnostic| {
            diagnostics.push(diagnostic);
            None
        });
        pb::upgrade_resource_state::Response {
            upgraded_state,
            diagnostics: diagnostics_to_proto(&diagnostics),
        }
    }
}
