//! ReadDataSource.

use super::ProviderServer;
use super::convert::{decode_dynamic, diagnostics_to_proto, encode_dynamic};
use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::proto::tfplugin6 as pb;
use crate::provider::ReadDataRequest;

impl ProviderServer {
    /// ReadDataSource.
    pub async fn read_data_source(
        &self,
        request: pb::read_data_source::Request,
    ) -> pb::read_data_source::Response {
        let mut diagnostics = Diagnostics::new();
        let state = match self.read_data(&request, &mut diagnostics).await {
            Ok(state) => state,
            Err(diagnostic) => {
                diagnostics.push(diagnostic);
                None
            }
        };
        pb::read_data_source::Response {
            state,
            diagnostics: diagnostics_to_proto(&diagnostics),
            deferred: None,
        }
    }

    async fn read_data(
        &self,
        request: &pb::read_data_source::Request,
        diagnostics: &mut Diagnostics,
    ) -> Result<Option<pb::DynamicValue>, Diagnostic> {
        let registered = self.data_source(&request.type_name)?;
        let ty = registered.schema.value_type();
        let config = decode_dynamic(request.config.as_ref(), &ty)?;
        let response = registered
            .data_source
            .read(&self.context(), ReadDataRequest { config })
            .await;
        diagnostics.extend(response.diagnostics);
        if diagnostics.has_errors() {
            return Ok(None);
        }
        let state = registered.schema.block.normalize(response.state);
        encode_dynamic(&state, &ty).map(Some)
    }
}
