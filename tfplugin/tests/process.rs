//! The example provider as Terraform runs it: cookie check, handshake line, mutual TLS over
//! the unix socket, health service, refusal of foreign clients, Shutdown, signals, and
//! `--debug` mode.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tokio::net::UnixStream;
use tokio_rustls::TlsConnector;
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::support::{terraform_like_client_certificate, toy_provider_binary};

const COOKIE: &str = "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2";

/// A running provider process and what its handshake announced.
struct Plugin {
    child: Child,
    stdout: BufReader<ChildStdout>,
    socket: PathBuf,
    server_certificate: Vec<u8>,
}

impl Drop for Plugin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn launch(client_certificate_pem: &str) -> Plugin {
    let mut child = Command::new(toy_provider_binary())
        .env("TF_PLUGIN_MAGIC_COOKIE", COOKIE)
        .env("PLUGIN_PROTOCOL_VERSIONS", "6,5")
        .env("PLUGIN_MIN_PORT", "10000")
        .env("PLUGIN_MAX_PORT", "25000")
        .env("PLUGIN_CLIENT_CERT", client_certificate_pem)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("provider starts");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).expect("handshake line");
    let fields: Vec<&str> = line.trim_end().split('|').collect();
    assert_eq!(fields.len(), 6, "handshake {line:?}");
    assert_eq!(&fields[..3], ["1", "6", "unix"]);
    assert_eq!(fields[4], "grpc");
    assert!(!fields[5].ends_with('='), "standard base64 without padding");
    let server_certificate = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(fields[5])
        .expect("base64 certificate");
    let socket = PathBuf::from(fields[3]);
    Plugin {
        child,
        stdout,
        socket,
        server_certificate,
    }
}

fn folder_mode(socket: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(socket.parent().unwrap())
        .unwrap()
        .permissions()
        .mode()
        & 0o777
}

/// Connects like Terraform: TLS to `localhost` trusting only the handshake's certificate,
/// ALPN h2, presenting `client` (certificate DER, PKCS#8 key DER) if any.
async fn connect(plugin: &Plugin, client: Option<(Vec<u8>, Vec<u8>)>) -> Result<Channel, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(plugin.server_certificate.clone()))
        .map_err(|e| e.to_string())?;
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots);
    let mut config = match client {
        Some((certificate, key)) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from(certificate)],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)),
            )
            .map_err(|e| e.to_string())?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    let connector = TlsConnector::from(Arc::new(config));
    let socket = plugin.socket.clone();
    Endpoint::from_static("http://localhost")
        .connect_with_connector(tower::service_fn(move |_| {
            let (connector, socket) = (connector.clone(), socket.clone());
            async move {
                let stream = UnixStream::connect(socket).await?;
                let tls = connector
                    .connect(ServerName::try_from("localhost").unwrap(), stream)
                    .await?;
                Ok::<_, std::io::Error>(TokioIo::new(tls))
            }
        }))
        .await
        .map_err(|e| e.to_string())
}

async fn plugin_health(channel: Channel) -> Result<ServingStatus, String> {
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: "plugin".into(),
        })
        .await
        .map_err(|status| status.to_string())?;
    Ok(response.into_inner().status())
}

fn wait_for_exit(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn mutual_tls_health_schema_and_shutdown() {
    let (pem, certificate, key) = terraform_like_client_certificate();
    let mut plugin = launch(&pem);
    assert_eq!(
        folder_mode(&plugin.socket),
        0o700,
        "socket folder is private"
    );

    let channel = connect(&plugin, Some((certificate.clone(), key.clone())))
        .await
        .expect("Terraform's certificate is accepted");
    assert_eq!(
        plugin_health(channel.clone()).await,
        Ok(ServingStatus::Serving)
    );

    let mut provider =
        tfplugin::proto::tfplugin6::provider_client::ProviderClient::new(channel.clone());
    let schema = provider
        .get_provider_schema(tfplugin::proto::tfplugin6::get_provider_schema::Request {})
        .await
        .unwrap()
        .into_inner();
    assert!(schema.resource_schemas.contains_key("toy_thing"));
    let capabilities = schema.server_capabilities.unwrap();
    assert!(capabilities.get_provider_schema_optional && !capabilities.plan_destroy);

    // SIGINT is Terraform's business (StopProvider); the provider must survive it.
    signal(&plugin.child, "INT");
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        plugin.child.try_wait().unwrap().is_none(),
        "SIGINT must not kill the provider"
    );

    let started = Instant::now();
    let mut controller =
        tfplugin::proto::plugin::grpc_controller_client::GrpcControllerClient::new(channel);
    controller
        .shutdown(tfplugin::proto::plugin::Empty {})
        .await
        .expect("Shutdown answers");
    let status = wait_for_exit(&mut plugin.child, Duration::from_secs(3))
        .expect("exits promptly after Shutdown");
    assert!(status.success());
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(2), "exit took {elapsed:?}");
    assert!(
        !plugin.socket.parent().unwrap().exists(),
        "socket folder removed"
    );
    let mut rest = String::new();
    plugin.stdout.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "", "nothing but the handshake on stdout");
}

#[tokio::test(flavor = "multi_thread")]
async fn foreign_or_missing_client_certificates_are_refused() {
    let (pem, _, _) = terraform_like_client_certificate();
    let (_, other_certificate, other_key) = terraform_like_client_certificate();
    let plugin = launch(&pem);
    let foreign = match connect(&plugin, Some((other_certificate, other_key))).await {
        Ok(channel) => plugin_health(channel).await,
        Err(error) => Err(error),
    };
    assert!(
        foreign.is_err(),
        "a different client certificate must be refused, got {foreign:?}"
    );
    let anonymous = match connect(&plugin, None).await {
        Ok(channel) => plugin_health(channel).await,
        Err(error) => Err(error),
    };
    assert!(
        anonymous.is_err(),
        "a client without certificate must be refused, got {anonymous:?}"
    );
}

#[test]
fn sigterm_exits_and_cleans_up() {
    let (pem, _, _) = terraform_like_client_certificate();
    let mut plugin = launch(&pem);
    signal(&plugin.child, "TERM");
    let status =
        wait_for_exit(&mut plugin.child, Duration::from_secs(3)).expect("exits on SIGTERM");
    assert!(status.success());
    assert!(!plugin.socket.parent().unwrap().exists());
}

#[test]
fn refuses_to_run_without_terraform() {
    let output = Command::new(toy_provider_binary())
        .env_remove("TF_PLUGIN_MAGIC_COOKIE")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("This binary is a plugin. These are not meant to be executed directly."),
        "{stderr}"
    );
    assert!(
        stderr.contains("which will load any\nplugins automatically"),
        "{stderr}"
    );

    let output = Command::new(toy_provider_binary())
        .env("TF_PLUGIN_MAGIC_COOKIE", COOKIE)
        .env("PLUGIN_PROTOCOL_VERSIONS", "4,5")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("protocol 6 only"));
    assert!(output.stdout.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn debug_mode_prints_reattach_and_serves_plaintext() {
    let mut child = Command::new(toy_provider_binary())
        .arg("--debug")
        .env_remove("TF_PLUGIN_MAGIC_COOKIE")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let reattach = loop {
        let mut line = String::new();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "no TF_REATTACH_PROVIDERS line"
        );
        if let Some(rest) = line.trim().strip_prefix("TF_REATTACH_PROVIDERS='") {
            break rest.trim_end_matches('\'').to_owned();
        }
    };
    let reattach: serde_json::Value = serde_json::from_str(&reattach).unwrap();
    let entry = &reattach["registry.terraform.io/example/toy"];
    assert_eq!(entry["Protocol"], "grpc");
    assert_eq!(entry["ProtocolVersion"], 6);
    assert_eq!(entry["Test"], true);
    assert_eq!(entry["Pid"], child.id());
    assert_eq!(entry["Addr"]["Network"], "unix");
    let socket = PathBuf::from(entry["Addr"]["String"].as_str().unwrap());

    let path = socket.clone();
    let channel = Endpoint::from_static("http://localhost")
        .connect_with_connector(tower::service_fn(move |_| {
            let path = path.clone();
            async move { Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(path).await?)) }
        }))
        .await
        .unwrap();
    assert_eq!(plugin_health(channel).await, Ok(ServingStatus::Serving));

    signal(&child, "INT");
    let status = wait_for_exit(&mut child, Duration::from_secs(3)).expect("Ctrl-C ends debug mode");
    assert!(status.success());
    assert!(!socket.parent().unwrap().exists());
}
