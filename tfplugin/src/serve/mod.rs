//! Serving a provider to Terraform: the go-plugin handshake, AutoMTLS, the gRPC services, and
//! `--debug` mode.

pub mod tls;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use tokio::net::UnixListener;
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;
use tonic::transport::Server;

use crate::grpc::{ControllerService, MAX_MESSAGE_BYTES, ProviderService};
use crate::proto::plugin::grpc_controller_server::GrpcControllerServer;
use crate::proto::tfplugin6::provider_server::ProviderServer as ProviderGrpcServer;
use crate::provider::Provider;
use crate::server::ProviderServer;

/// The magic cookie Terraform sets, so a provider run by hand can say what it is.
const MAGIC_COOKIE_KEY: &str = "TF_PLUGIN_MAGIC_COOKIE";
const MAGIC_COOKIE_VALUE: &str = "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2";

/// go-plugin's own words, so users who run the binary by hand recognise them.
const NOT_A_PROGRAM: &str = "This binary is a plugin. These are not meant to be executed directly.\n\
Please execute the program that consumes these plugins, which will load any\n\
plugins automatically";

/// The only plugin protocol this crate speaks.
const PROTOCOL_VERSION: u32 = 6;

/// How long in-flight RPCs get to finish after Shutdown or SIGTERM. Terraform calls Shutdown
/// when it is done with the process, so nothing is normally in flight.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(500);

/// How to serve.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    /// The provider's full source address, e.g. `registry.terraform.io/lakestream/streaming`;
    /// `--debug` mode prints it in `TF_REATTACH_PROVIDERS`.
    pub provider_address: String,
}

impl ServeConfig {
    /// A configuration for the provider at `provider_address`.
    pub fn new(provider_address: impl Into<String>) -> Self {
        Self {
            provider_address: provider_address.into(),
        }
    }
}

/// Everything that can stop the provider from serving.
#[derive(Debug, thiserror::Error)]
enum ServeError {
    #[error("{NOT_A_PROGRAM}")]
    NotLaunchedByTerraform,
    #[error(
        "this provider speaks Terraform plugin protocol {PROTOCOL_VERSION} only, but Terraform offered \
         protocol versions {offered}; use Terraform 1.0 or later (or OpenTofu)"
    )]
    ProtocolMismatch { offered: String },
    #[error(
        "PLUGIN_CLIENT_CERT is not set: Terraform always sends its client certificate (AutoMTLS), and this \
         provider does not serve without mutual TLS"
    )]
    MissingClientCertificate,
    #[error("the provider's schemas break Terraform's rules")]
    Schema(#[from] crate::schema::SchemaError),
    #[error("cannot create the socket folder")]
    SocketFolder(#[source] std::io::Error),
    #[error("cannot listen on {path}")]
    Listen {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot set up mutual TLS")]
    Tls(#[from] tls::TlsSetupError),
    #[error("cannot start the async runtime")]
    Runtime(#[source] std::io::Error),
    #[error("cannot write the handshake to stdout")]
    Handshake(#[source] std::io::Error),
    #[error("cannot install the signal handlers")]
    Signals(#[source] std::io::Error),
    #[error("the gRPC server failed")]
    Grpc(#[source] tonic::transport::Error),
}

/// Serves `provider` until Terraform is done with it, and returns the process's exit code.
///
/// Run without arguments by Terraform: checks the magic cookie and protocol version, serves
/// gRPC with mutual TLS on a unix socket in a private folder, and exits right after
/// Terraform's Shutdown call (or SIGTERM). Run by hand with `--debug`: serves without TLS and
/// prints the `TF_REATTACH_PROVIDERS` value to use, until Ctrl-C.
///
/// Installs the hclog-style logger ([`crate::logging::init`]) unless one is already set.
pub fn serve<P: Provider>(provider: P, config: ServeConfig) -> ExitCode {
    crate::logging::init();
    let debug = std::env::args()
        .skip(1)
        .any(|argument| argument == "--debug");
    match run(Arc::new(provider), &config, debug) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let mut message = error.to_string();
            let mut source = std::error::Error::source(&error);
            while let Some(cause) = source {
                message.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}

fn run(provider: Arc<dyn Provider>, config: &ServeConfig, debug: bool) -> Result<(), ServeError> {
    let client_certificate = if debug {
        None
    } else {
        Some(check_launch_environment()?)
    };
    let server = Arc::new(ProviderServer::new(provider)?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(ServeError::Runtime)?;
    let result = runtime.block_on(async {
        match client_certificate {
            Some(pem) => serve_plugin(server, &pem).await,
            None => serve_debug(server, config).await,
        }
    });
    // Blocking tasks (if a provider spawned any) must not keep the process alive.
    runtime.shutdown_timeout(Duration::from_millis(100));
    result
}

/// Checks what Terraform sets when it launches a provider; returns its client certificate.
fn check_launch_environment() -> Result<String, ServeError> {
    if std::env::var(MAGIC_COOKIE_KEY).as_deref() != Ok(MAGIC_COOKIE_VALUE) {
        return Err(ServeError::NotLaunchedByTerraform);
    }
    if let Ok(offered) = std::env::var("PLUGIN_PROTOCOL_VERSIONS")
        && !offers_protocol(&offered, PROTOCOL_VERSION)
    {
        return Err(ServeError::ProtocolMismatch { offered });
    }
    std::env::var("PLUGIN_CLIENT_CERT")
        .ok()
        .filter(|pem| !pem.trim().is_empty())
        .ok_or(ServeError::MissingClientCertificate)
}

/// Whether a `PLUGIN_PROTOCOL_VERSIONS` value (a comma-separated set in any order) contains
/// `version`.
fn offers_protocol(offered: &str, version: u32) -> bool {
    offered
        .split(',')
        .filter_map(|item| item.trim().parse::<u32>().ok())
        .any(|item| item == version)
}

/// A private (0700) folder for the socket; removed when dropped, i.e. on every way out of
/// [`serve`].
fn socket_folder() -> Result<tempfile::TempDir, ServeError> {
    use std::os::unix::fs::PermissionsExt as _;
    let folder = tempfile::Builder::new()
        .prefix("tfplugin")
        .tempdir()
        .map_err(ServeError::SocketFolder)?;
    std::fs::set_permissions(folder.path(), std::fs::Permissions::from_mode(0o700))
        .map_err(ServeError::SocketFolder)?;
    Ok(folder)
}

fn bind(path: &Path) -> Result<UnixListener, ServeError> {
    UnixListener::bind(path).map_err(|source| ServeError::Listen {
        path: path.to_owned(),
        source,
    })
}

/// Writes to stdout and flushes: the one thing this process ever writes there.
fn announce(text: &str) -> Result<(), ServeError> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(ServeError::Handshake)
}

/// The gRPC services every mode serves.
async fn router(
    server: Arc<ProviderServer>,
    shutdown: CancellationToken,
) -> tonic::transport::server::Router {
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter
        .set_service_status("plugin", tonic_health::ServingStatus::Serving)
        .await;
    let provider = ProviderGrpcServer::new(ProviderService { server })
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    Server::builder()
        .add_service(provider)
        .add_service(GrpcControllerServer::new(ControllerService { shutdown }))
        .add_service(health_service)
}

async fn serve_plugin(
    server: Arc<ProviderServer>,
    client_certificate_pem: &str,
) -> Result<(), ServeError> {
    let folder = socket_folder()?;
    let socket = folder.path().join("plugin.sock");
    let listener = bind(&socket)?;
    let identity = tls::ServerIdentity::generate()?;
    let tls_config = identity.server_config(client_certificate_pem)?;
    let shutdown = CancellationToken::new();
    let router = router(server, shutdown.clone()).await;

    // Terraform handles Ctrl-C itself (StopProvider, then Shutdown) and the terminal sends
    // SIGINT to the whole process group: like go-plugin, ignore it here, or a Ctrl-C would
    // kill applies Terraform is stopping gracefully. SIGTERM ends the process.
    let mut interrupts = signal(SignalKind::interrupt()).map_err(ServeError::Signals)?;
    tokio::spawn(async move {
        while interrupts.recv().await.is_some() {
            tracing::debug!(
                "ignoring SIGINT; Terraform stops providers through StopProvider and Shutdown"
            );
        }
    });
    let mut terminations = signal(SignalKind::terminate()).map_err(ServeError::Signals)?;
    let stop = shutdown.clone();
    tokio::spawn(async move {
        terminations.recv().await;
        stop.cancel();
    });

    let certificate =
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(identity.certificate_der());
    let incoming = tls::accept_tls(listener, tls_config);
    announce(&format!(
        "1|{PROTOCOL_VERSION}|unix|{}|grpc|{certificate}\n",
        socket.display()
    ))?;
    tracing::debug!(socket = %socket.display(), "serving");
    let result = serve_until(
        router.serve_with_incoming_shutdown(incoming, shutdown.clone().cancelled_owned()),
        &shutdown,
    )
    .await;
    drop(folder);
    result
}

/// Runs the server until it ends by itself or `shutdown` fires and the grace period passes,
/// whichever is first: a client that keeps its connection open must not delay the exit.
async fn serve_until(
    server: impl std::future::Future<Output = Result<(), tonic::transport::Error>>,
    shutdown: &CancellationToken,
) -> Result<(), ServeError> {
    tokio::select! {
        result = server => result.map_err(ServeError::Grpc),
        () = async {
            shutdown.cancelled().await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } => Ok(()),
    }
}

async fn serve_debug(server: Arc<ProviderServer>, config: &ServeConfig) -> Result<(), ServeError> {
    let folder = socket_folder()?;
    let socket = folder.path().join("plugin.sock");
    let listener = bind(&socket)?;
    let shutdown = CancellationToken::new();
    let router = router(server, shutdown.clone()).await;

    let mut interrupts = signal(SignalKind::interrupt()).map_err(ServeError::Signals)?;
    let mut terminations = signal(SignalKind::terminate()).map_err(ServeError::Signals)?;
    let stop = shutdown.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = interrupts.recv() => {}
            _ = terminations.recv() => {}
        }
        stop.cancel();
    });

    let reattach = serde_json::json!({
        &config.provider_address: {
            "Protocol": "grpc",
            "ProtocolVersion": PROTOCOL_VERSION,
            "Pid": std::process::id(),
            // Terraform 1.11 crashes on protocol 6 providers reattached without it.
            "Test": true,
            "Addr": { "Network": "unix", "String": socket.display().to_string() },
        }
    });
    announce(&format!(
        "Provider started. To attach Terraform CLI, set the TF_REATTACH_PROVIDERS environment variable \
         with the following:\n\n\tTF_REATTACH_PROVIDERS='{reattach}'\n\n\
         Run terraform in another shell with it set; press Ctrl-C here to stop the provider.\n"
    ))?;
    let incoming = tokio_stream::wrappers::UnixListenerStream::new(listener);
    let result = serve_until(
        router.serve_with_incoming_shutdown(incoming, shutdown.clone().cancelled_owned()),
        &shutdown,
    )
    .await;
    drop(folder);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_versions_are_a_set() {
        assert!(offers_protocol("5,6", 6));
        assert!(offers_protocol("6,5", 6));
        assert!(offers_protocol(" 6 ", 6));
        assert!(!offers_protocol("5", 6));
        assert!(!offers_protocol("16,60", 6));
        assert!(!offers_protocol("", 6));
    }
}
