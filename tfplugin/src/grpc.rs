//! The thin gRPC shell: each RPC unwraps its request, calls the protocol-free handler in
//! [`crate::server`], and wraps the response. RPCs not listed here (ephemeral resources,
//! functions, MoveResourceState) answer `Unimplemented` through the generated default stubs,
//! which Terraform accepts since this provider announces none of them.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};
use tracing::Instrument as _;

use crate::proto::plugin as controller_pb;
use crate::proto::tfplugin6 as pb;
use crate::server::ProviderServer;

/// Terraform sends whole states and schemas in one message; terraform-plugin-go allows
/// 256 MiB, and so do we.
pub(crate) const MAX_MESSAGE_BYTES: usize = 256 * 1024 * 1024;

type RpcResult<T> = Result<Response<T>, Status>;

/// Numbers requests so interleaved log lines of concurrent RPCs can be told apart.
static REQUEST_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Runs one RPC inside a span carrying the field names terraform-plugin-go uses (`tf_rpc`,
/// `tf_resource_type`, `tf_req_id`), so every log line of the provider's own code during the
/// RPC says which RPC and resource it belongs to.
async fn traced<T>(
    rpc: &'static str,
    type_name: &str,
    handler: impl Future<Output = T>,
) -> RpcResult<T> {
    let request_id = REQUEST_COUNTER.fetch_add(1, Ordering::Relaxed);
    let span = tracing::debug_span!(
        "rpc",
        tf_rpc = rpc,
        tf_resource_type = tracing::field::Empty,
        tf_req_id = request_id
    );
    if !type_name.is_empty() {
        span.record("tf_resource_type", type_name);
    }
    let response = async {
        tracing::debug!("received request");
        let response = handler.await;
        tracing::debug!("served request");
        response
    }
    .instrument(span)
    .await;
    Ok(Response::new(response))
}

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
        let request = request.into_inner();
        traced("GetMetadata", "", async {
            self.server.get_metadata(request)
        })
        .await
    }

    async fn get_provider_schema(
        &self,
        request: Request<pb::get_provider_schema::Request>,
    ) -> RpcResult<pb::get_provider_schema::Response> {
        let request = request.into_inner();
        traced("GetProviderSchema", "", async {
            self.server.get_provider_schema(request)
        })
        .await
    }

    async fn validate_provider_config(
        &self,
        request: Request<pb::validate_provider_config::Request>,
    ) -> RpcResult<pb::validate_provider_config::Response> {
        let request = request.into_inner();
        traced("ValidateProviderConfig", "", async {
            self.server.validate_provider_config(request)
        })
        .await
    }

    async fn validate_resource_config(
        &self,
        request: Request<pb::validate_resource_config::Request>,
    ) -> RpcResult<pb::validate_resource_config::Response> {
        let request = request.into_inner();
        let type_name = request.type_name.clone();
        traced("ValidateResourceConfig", &type_name, async {
            self.server.validate_resource_config(request)
        })
        .await
    }

    async fn validate_data_resource_config(
        &self,
        request: Request<pb::validate_data_resource_config::Request>,
    ) -> RpcResult<pb::validate_data_resource_config::Response> {
        let request = request.into_inner();
        let type_name = request.type_name.clone();
        traced("ValidateDataResourceConfig", &type_name, async {
            self.server.validate_data_resource_config(request)
        })
        .await
    }

    async fn upgrade_resource_state(
        &self,
        request: Request<pb::upgrade_resource_state::Request>,
    ) -> RpcResult<pb::upgrade_resource_state::Response> {
        let request = request.into_inner();
        let type_name = request.type_name.clone();
        traced("UpgradeResourceState", &type_name, async {
            self.server.upgrade_resource_state(request)
        })
        .await
    }

    async fn configure_provider(
        &self,
        request: Request<pb::configure_provider::Request>,
    ) -> RpcResult<pb::configure_provider::Response> {
        let request = request.into_inner();
        traced(
            "ConfigureProvider",
            "",
            self.server.configure_provider(request),
        )
        .await
    }

    async fn read_resource(
        &self,
        request: Request<pb::read_resource::Request>,
    ) -> RpcResult<pb::read_resource::Response> {
        let request = request.into_inner();
        let type_name = request.type_name.clone();
        traced(
            "ReadResource",
            &type_name,
            self.server.read_resource(request),
        )
        .await
    }

    async fn plan_resource_change(
        &self,
        request: Request<pb::plan_resource_change::Request>,
    ) -> RpcResult<pb::plan_resource_change::Response> {
        let request = request.into_inner();
        let type_name = request.type_name.clone();
        traced(
            "PlanResourceChange",
            &type_name,
            self.server.plan_resource_change(request),
        )
        .await
    }

    async fn apply_resource_change(
        &self,
        request: Request<pb::apply_resource_change::Request>,
    ) -> RpcResult<pb::apply_resource_change::Response> {
        let request = request.into_inner();
        let type_name = request.type_name.clone();
        traced(
            "ApplyResourceChange",
            &type_name,
            self.server.apply_resource_change(request),
        )
        .await
    }

    async fn import_resource_state(
        &self,
        request: Request<pb::import_resource_state::Request>,
    ) -> RpcResult<pb::import_resource_state::Response> {
        let request = request.into_inner();
        let type_name = request.type_name.clone();
        traced(
            "ImportResourceState",
            &type_name,
            self.server.import_resource_state(request),
        )
        .await
    }

    async fn read_data_source(
        &self,
        request: Request<pb::read_data_source::Request>,
    ) -> RpcResult<pb::read_data_source::Response> {
        let request = request.into_inner();
        let type_name = request.type_name.clone();
        traced(
            "ReadDataSource",
            &type_name,
            self.server.read_data_source(request),
        )
        .await
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
        let request = request.into_inner();
        traced("StopProvider", "", async {
            self.server.stop_provider(request)
        })
        .await
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
