//! The thin gRPC shell: each RPC unwraps its request, calls the protocol-free handler in
//! [`crate::server`], and wraps the response. RPCs not listed here (ephemeral resources,
//! functions, MoveResourceState) answer `Unimplemented` through the generated default stubs,
//! which Terraform accepts since this provider announces none of them.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use crate::proto::plugin as controller_pb;
use crate::proto::tfplugin6 as pb;
use crate::server::ProviderServer;

/// Terraform sends whole states and schemas in one message; terraform-plugin-go allows
/// 256 MiB, and so do we.
pub(crate) const MAX_MESSAGE_BYTES: usize = 256 * 1024 * 1024;

type RpcResult<T> = Result<Response<T>, Status>;

/// `tfplugin6.Provider` over a [`ProviderServer`].
pub(crate) struct ProviderService {
    pub(crate) server: Arc<ProviderServer>,
}

#[tonic::async_trait]
impl pb::provider_server::Provider for ProviderService {
    async fn get_metadata(
        &self,
        request: Request<pb::get_metadata::Request>,
    ) -> RpcResult<pb::get_metadata::Response> {
        Ok(Response::new(
            self.server.get_metadata(request.into_inner()),
        ))
    }

    async fn get_provider_schema(
        &self,
        request: Request<pb::get_provider_schema::Request>,
    ) -> RpcResult<pb::get_provider_schema::Response> {
        Ok(Response::new(
            self.server.get_provider_schema(request.into_inner()),
        ))
    }

    async fn validate_provider_config(
        &self,
        request: Request<pb::validate_provider_config::Request>,
    ) -> RpcResult<pb::validate_provider_config::Response> {
        Ok(Response::new(
            self.server.validate_provider_config(request.into_inner()),
        ))
    }

    async fn validate_resource_config(
        &self,
        request: Request<pb::validate_resource_config::Request>,
    ) -> RpcResult<pb::validate_resource_config::Response> {
        Ok(Response::new(
            self.server.validate_resource_config(request.into_inner()),
        ))
    }

    async fn validate_data_resource_config(
        &self,
        request: Request<pb::validate_data_resource_config::Request>,
    ) -> RpcResult<pb::validate_data_resource_config::Response> {
        Ok(Response::new(
            self.server
                .validate_data_resource_config(request.into_inner()),
        ))
    }

    async fn upgrade_resource_state(
        &self,
        request: Request<pb::upgrade_resource_state::Request>,
    ) -> RpcResult<pb::upgrade_resource_state::Response> {
        Ok(Response::new(
            self.server.upgrade_resource_state(request.into_inner()),
        ))
    }

    async fn configure_provider(
        &self,
        request: Request<pb::configure_provider::Request>,
    ) -> RpcResult<pb::configure_provider::Response> {
        Ok(Response::new(
            self.server.configure_provider(request.into_inner()).await,
        ))
    }

    async fn read_resource(
        &self,
        request: Request<pb::read_resource::Request>,
    ) -> RpcResult<pb::read_resource::Response> {
        Ok(Response::new(
            self.server.read_resource(request.into_inner()).await,
        ))
    }

    async fn plan_resource_change(
        &self,
        request: Request<pb::plan_resource_change::Request>,
    ) -> RpcResult<pb::plan_resource_change::Response> {
        Ok(Response::new(
            self.server.plan_resource_change(request.into_inner()).await,
        ))
    }

    async fn apply_resource_change(
        &self,
        request: Request<pb::apply_resource_change::Request>,
    ) -> RpcResult<pb::apply_resource_change::Response> {
        Ok(Response::new(
            self.server
                .apply_resource_change(request.into_inner())
                .await,
        ))
    }

    async fn import_resource_state(
        &self,
        request: Request<pb::import_resource_state::Request>,
    ) -> RpcResult<pb::import_resource_state::Response> {
        Ok(Response::new(
            self.server
                .import_resource_state(request.into_inner())
                .await,
        ))
    }

    async fn read_data_source(
        &self,
        request: Request<pb::read_data_source::Request>,
    ) -> RpcResult<pb::read_data_source::Response> {
        Ok(Response::new(
            self.server.read_data_source(request.into_inner()).await,
        ))
    }

    async fn get_functions(
        &self,
        _request: Request<pb::get_functions::Request>,
    ) -> RpcResult<pb::get_functions::Response> {
        Ok(Response::new(pb::get_functions::Response::default()))
    }

    async fn stop_provider(
        &self,
        request: Request<pb::stop_provider::Request>,
    ) -> RpcResult<pb::stop_provider::Response> {
        Ok(Response::new(
            self.server.stop_provider(request.into_inner()),
        ))
    }
}

/// go-plugin's `plugin.GRPCController`: Shutdown answers, then asks the serve loop to end.
pub(crate) struct ControllerService {
    pub(crate) shutdown: CancellationToken,
}

#[tonic::async_trait]
impl controller_pb::grpc_controller_server::GrpcController for ControllerService {
    async fn shutdown(
        &self,
        _request: Request<controller_pb::Empty>,
    ) -> RpcResult<controller_pb::Empty> {
        tracing::debug!("shutdown requested by Terraform");
        self.shutdown.cancel();
        Ok(Response::new(controller_pb::Empty {}))
    }
}
