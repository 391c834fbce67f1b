//! GetProviderSchema and GetMetadata.

use super::ProviderServer;
use super::convert::schema_to_proto;
use crate::proto::tfplugin6 as pb;

impl ProviderServer {
    /// What Terraform caches: `get_provider_schema_optional` lets it skip this RPC in later
    /// provider processes of a run; `plan_destroy` is on only if some resource asks for it.
    fn server_capabilities(&self) -> pb::ServerCapabilities {
        pb::ServerCapabilities {
            plan_destroy: self
                .resources
                .values()
                .any(|registered| registered.resource.plan_destroy()),
            get_provider_schema_optional: true,
            move_resource_state: false,
        }
    }

    /// GetProviderSchema: every schema, and the server capabilities.
    pub fn get_provider_schema(
        &self,
        _request: pb::get_provider_schema::Request,
    ) -> pb::get_provider_schema::Response {
        pb::get_provider_schema::Response {
            provider: Some(schema_to_proto(&self.provider_schema)),
            resource_schemas: self
                .resources
                .iter()
                .map(|(name, registered)| (name.clone(), schema_to_proto(&registered.schema)))
                .collect(),
            data_source_schemas: self
                .data_sources
                .iter()
                .map(|(name, registered)| (name.clone(), schema_to_proto(&registered.schema)))
                .collect(),
            server_capabilities: Some(self.server_capabilities()),
            ..Default::default()
        }
    }

    /// GetMetadata: the type names, without building schemas.
    pub fn get_metadata(&self, _request: pb::get_metadata::Request) -> pb::get_metadata::Response {
        pb::get_metadata::Response {
            server_capabilities: Some(self.server_capabilities()),
            resources: self
                .resources
                .keys()
                .map(|name| pb::get_metadata::ResourceMetadata {
                    type_name: name.clone(),
                })
                .collect(),
            data_sources: self
                .data_sources
                .keys()
                .map(|name| pb::get_metadata::DataSourceMetadata {
                    type_name: name.clone(),
                })
                .collect(),
            ..Default::default()
        }
    }
}
