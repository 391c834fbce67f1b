//! ApplyResourceChange: create, update or delete, decided by which states are null.

use super::ProviderServer;
use super::convert::{decode_dynamic, diagnostics_to_proto, encode_dynamic};
use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::planning::{check_apply_result, nullify_write_only};
use crate::proto::tfplugin6 as pb;
use crate::provider::{CreateRequest, DeleteRequest, UpdateRequest};
use crate::value::Value;

impl ProviderServer {
    /// ApplyResourceChange. A null planned state deletes (and answers null), a null prior
    /// state creates, anything else updates. In debug builds the result is checked against
    /// the plan ([`check_apply_result`]), so the provider's own tests see a precise error
    /// where Terraform would only say "inconsistent result after apply".
    pub async fn apply_resource_change(
        &self,
        request: pb::apply_resource_change::Request,
    ) -> pb::apply_resource_change::Response {
        let mut diagnostics = Diagnostics::new();
        let mut private = request.planned_private.clone();
        let new_state = match self.apply(&request, &mut private, &mut diagnostics).await {
            Ok(state) => Some(state),
            Err(diagnostic) => {
                diagnostics.push(diagnostic);
                request.prior_state.clone()
            }
        };
        pb::apply_resource_change::Response {
            new_state,
            private,
            diagnostics: diagnostics_to_proto(&diagnostics),
            legacy_type_system: false,
        }
    }

    async fn apply(
        &self,
        request: &pb::apply_resource_change::Request,
        private: &mut Vec<u8>,
        diagnostics: &mut Diagnostics,
    ) -> Result<pb::DynamicValue, Diagnostic> {
        let registered = self.resource(&request.type_name)?;
        let ty = registered.schema.value_type();
        let prior = decode_dynamic(request.prior_state.as_ref(), &ty)?;
        let planned = decode_dynamic(request.planned_state.as_ref(), &ty)?;
        let config = decode_dynamic(request.config.as_ref(), &ty)?;
        let resource = &registered.resource;
        let context = self.context();

        if planned.is_null() {
            let request = DeleteRequest {
                prior: prior.clone(),
                private: private.clone(),
            };
            diagnostics.extend(resource.delete(&context, request).await);
            let remaining = if diagnostics.has_errors() {
                prior
            } else {
                Value::Null
            };
            return encode_dynamic(&remaining, &ty);
        }

        let creating = prior.is_null();
        let response = if creating {
            resource
                .create(
                    &context,
                    CreateRequest {
                        config,
                        planned: planned.clone(),
                        private: private.clone(),
                    },
                )
                .await
        } else {
            let request = UpdateRequest {
                config,
                prior: prior.clone(),
                planned: planned.clone(),
                private: private.clone(),
            };
            resource.update(&context, request).await
        };
        diagnostics.extend(response.diagnostics);
        if let Some(new_private) = response.private {
            *private = new_private;
        }
        let mut state = response.state;
        if state.is_null() {
            if diagnostics.has_errors() {
                // Nothing was created, or the update changed nothing: keep what was there.
                return encode_dynamic(&prior, &ty);
            }
            return Err(Diagnostic::error(
                "Missing Resource State After Apply",
                format!(
                    "The {} of {} succeeded but returned no state. This is a bug in the provider.",
                    if creating { "create" } else { "update" },
                    request.type_name
                ),
            ));
        }
        state = registered.schema.block.normalize(state);
        nullify_write_only(&registered.schema.block, &mut state);
        if cfg!(debug_assertions) && !diagnostics.has_errors() {
            diagnostics.extend(check_apply_result(&planned, &state));
        }
        encode_dynamic(&state, &ty)
    }
}
