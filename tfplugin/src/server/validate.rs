//! ValidateProviderConfig, ValidateResourceConfig and ValidateDataResourceConfig: the
//! schema's validators, then the provider's own checks.

use super::ProviderServer;
use super::convert::{client_capabilities, decode_dynamic, diagnostics_to_proto};
use crate::diagnostics::Diagnostics;
use crate::path::AttributePath;
use crate::proto::tfplugin6 as pb;
use crate::schema::Schema;
use crate::validator::{refuse_write_only, validate_block};
use crate::value::Value;

/// Decodes `config` and runs the schema's validators, then `extra` if decoding worked.
fn validate(
    schema: &Schema,
    config: Option<&pb::DynamicValue>,
    extra: impl FnOnce(&Value, &mut Diagnostics),
) -> Diagnostics {
    let mut diagnostics = Diagnostics::new();
    match decode_dynamic(config, &schema.value_type()) {
        Ok(config) => {
            validate_block(
                &schema.block,
                &config,
                &AttributePath::empty(),
                &mut diagnostics,
            );
            extra(&config, &mut diagnostics);
        }
        Err(diagnostic) => diagnostics.push(diagnostic),
    }
    diagnostics
}

impl ProviderServer {
    /// ValidateProviderConfig.
    pub fn validate_provider_config(
        &self,
        request: pb::validate_provider_config::Request,
    ) -> pb::validate_provider_config::Response {
        let diagnostics = validate(
            &self.provider_schema,
            request.config.as_ref(),
            |config, diagnostics| {
                self.provider.validate(config, diagnostics);
            },
        );
        pb::validate_provider_config::Response {
            diagnostics: diagnostics_to_proto(&diagnostics),
        }
    }

    /// ValidateResourceConfig. Write-only attributes are refused when the calling Terraform
    /// does not announce support for them.
    pub fn validate_resource_config(
        &self,
        request: pb::validate_resource_config::Request,
    ) -> pb::validate_resource_config::Response {
        let capabilities = client_capabilities(request.client_capabilities.as_ref());
        let diagnostics = match self.resource(&request.type_name) {
            Ok(registered) => validate(
                &registered.schema,
                request.config.as_ref(),
                |config, diagnostics| {
                    if !capabilities.write_only_attributes_allowed {
                        refuse_write_only(
                            &registered.schema.block,
                            config,
                            &AttributePath::empty(),
                            diagnostics,
                        );
                    }
                    registered.resource.validate(config, diagnostics);
                },
            ),
            Err(diagnostic) => diagnostic.into(),
        };
        pb::validate_resource_config::Response {
            diagnostics: diagnostics_to_proto(&diagnostics),
        }
    }

    /// ValidateDataResourceConfig.
    pub fn validate_data_resource_config(
        &self,
        request: pb::validate_data_resource_config::Request,
    ) -> pb::validate_data_resource_config::Response {
        let diagnostics = match self.data_source(&request.type_name) {
            Ok(registered) => validate(
                &registered.schema,
                request.config.as_ref(),
                |config, diagnostics| {
                    registered.data_source.validate(config, diagnostics);
                },
            ),
            Err(diagnostic) => diagnostic.into(),
        };
        pb::validate_data_resource_config::Response {
            diagnostics: diagnostics_to_proto(&diagnostics),
        }
    }
}
