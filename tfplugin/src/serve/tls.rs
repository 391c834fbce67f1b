//! go-plugin's AutoMTLS, done for real.
//!
//! Terraform passes its client certificate in `PLUGIN_CLIENT_CERT` and trusts exactly the
//! server certificate announced in the handshake line. Its certificate is self-signed ECDSA
//! P-521 with SHA-512 and marked `CA:TRUE`: webpki-based verifiers reject a CA certificate
//! used as an end entity, and ring cannot verify P-521 at all. So the server pins the exact
//! DER Terraform sent and checks handshake signatures with the aws-lc-rs provider's
//! algorithms, which include P-521. Client authentication is mandatory: a process that can
//! reach the socket but does not hold Terraform's key gets nothing.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{
    CryptoProvider, WebPkiSupportedAlgorithms, aws_lc_rs, verify_tls12_signature,
    verify_tls13_signature,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, ServerConfig, SignatureScheme,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{UnixListener, UnixStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;

/// A TLS handshake that has not finished by then is dropped, so a stuck client cannot hold
/// a task forever.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    /// `PLUGIN_CLIENT_CERT` holds no PEM certificate.
    #[error("PLUGIN_CLIENT_CERT does not hold a PEM certificate")]
    ClientCertificate(#[source] rustls::pki_types::pem::Error),
    /// The server certificate could not be generated.
    #[error("cannot generate the server certificate")]
    Certificate(#[source] rcgen::Error),
    /// rustls refused the configuration.
    #[error("cannot configure TLS")]
    Rustls(#[source] rustls::Error),
}

/// The aws-lc-rs provider: the only one here that verifies P-521 signatures.
fn crypto_provider() -> Arc<CryptoProvider> {
    Arc::new(aws_lc_rs::default_provider())
}

/// The server's self-signed certificate and key, fresh for every process.
pub struct ServerIdentity {
    certificate: CertificateDer<'static>,
    key: PrivatePkcs8KeyDer<'static>,
}

impl ServerIdentity {
    /// A P-256 certificate for `localhost` (the name Terraform dials) with the serverAuth
    /// usage, valid from a minute ago (clock skew) for ten years (debug sessions can be long;
    /// the key dies with the process anyway).
    pub fn generate() -> Result<Self, TlsSetupError> {
        use rcgen::{
            CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyPair, KeyUsagePurpose,
            PKCS_ECDSA_P256_SHA256,
        };
        let key =
            KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(TlsSetupError::Certificate)?;
        let mut params = CertificateParams::new(vec!["localhost".to_owned()])
            .map_err(TlsSetupError::Certificate)?;
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        params
            .distinguished_name
            .push(DnType::OrganizationName, "tfplugin");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::minutes(1);
        params.not_after = now + time::Duration::days(3650);
        let certificate = params
            .self_signed(&key)
            .map_err(TlsSetupError::Certificate)?;
        Ok(Self {
            certificate: certificate.der().clone(),
            key: PrivatePkcs8KeyDer::from(key.serialize_der()),
        })
    }

    /// The certificate's DER, which the handshake line announces.
    pub fn certificate_der(&self) -> &[u8] {
        self.certificate.as_ref()
    }

    /// A rustls server configuration that presents this identity, offers ALPN `h2` (gRPC),
    /// and accepts only the client certificate in `client_certificate_pem`.
    pub fn server_config(
        &self,
        client_certificate_pem: &str,
    ) -> Result<Arc<ServerConfig>, TlsSetupError> {
        let client_certificate = CertificateDer::from_pem_slice(client_certificate_pem.as_bytes())
            .map_err(TlsSetupError::ClientCertificate)?;
        let verifier = PinnedClientCertVerifier::new(client_certificate);
        let mut config = ServerConfig::builder_with_provider(crypto_provider())
            .with_safe_default_protocol_versions()
            .map_err(TlsSetupError::Rustls)?
            .with_client_cert_verifier(Arc::new(verifier))
            .with_single_cert(
                vec![self.certificate.clone()],
                PrivateKeyDer::Pkcs8(self.key.clone_key()),
            )
            .map_err(TlsSetupError::Rustls)?;
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Arc::new(config))
    }
}

/// Accepts exactly one client certificate, byte for byte, and nothing else.
#[derive(Debug)]
pub struct PinnedClientCertVerifier {
    expected: CertificateDer<'static>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl PinnedClientCertVerifier {
    /// Pins `expected` (DER).
    pub fn new(expected: CertificateDer<'static>) -> Self {
        Self {
            expected,
            algorithms: crypto_provider().signature_verification_algorithms,
        }
    }
}

impl ClientCertVerifier for PinnedClientCertVerifier {
    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.expected.as_ref() {
            Ok(ClientCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, certificate, signature, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, certificate, signature, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// A server-side TLS connection, in the form tonic's `serve_with_incoming` takes.
pub(crate) struct TlsConnection(TlsStream<UnixStream>);

impl tonic::transport::server::Connected for TlsConnection {
    type ConnectInfo = ();

    fn connect_info(&self) -> Self::ConnectInfo {}
}

impl AsyncRead for TlsConnection {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsConnection {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }
}

/// Accepts connections and completes their TLS handshakes concurrently; only connections
/// whose handshake succeeded (i.e. Terraform's) come out of the stream.
pub(crate) fn accept_tls(
    listener: UnixListener,
    config: Arc<ServerConfig>,
) -> ReceiverStream<io::Result<TlsConnection>> {
    let (sender, receiver) = tokio::sync::mpsc::channel(16);
    let acceptor = TlsAcceptor::from(config);
    tokio::spawn(async move {
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(error) => {
                    tracing::warn!(%error, "accepting a connection failed");
                    // Errors such as running out of file descriptors persist for a while;
                    // do not spin on them.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let acceptor = acceptor.clone();
            let sender = sender.clone();
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(connection)) => {
                        let _ = sender.send(Ok(TlsConnection(connection))).await;
                    }
                    Ok(Err(error)) => {
                        tracing::warn!(%error, "refused a connection: TLS handshake failed")
                    }
                    Err(_) => tracing::warn!("refused a connection: TLS handshake timed out"),
                }
            });
        }
    });
    ReceiverStream::new(receiver)
}
