//! TLS for PostgreSQL connections with rustls (aws-lc-rs provider), following libpq's
//! `sslmode` semantics: `prefer` and `require` encrypt without checking the certificate,
//! `verify-ca` checks the chain against `ssl_root_cert`, `verify-full` also checks that the
//! certificate names the host.

use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::config::{PostgresSourceConfig, SslMode};
use crate::source::{ErrorKind, SourceError};

/// Runs the TLS handshake on `tcp` (after the server accepted `SSLRequest`).
pub(crate) async fn handshake(
    config: &PostgresSourceConfig,
    tcp: TcpStream,
) -> Result<TlsStream<TcpStream>, SourceError> {
    let endpoint = config.endpoint();
    let client = client_config(config)?;
    let name = ServerName::try_from(config.host.clone()).map_err(|e| {
        SourceError::with_source(
            ErrorKind::Config,
            format!("{:?} is not a valid TLS server name: {e}", config.host),
            e,
        )
    })?;
    TlsConnector::from(Arc::new(client))
        .connect(name, tcp)
        .await
        .map_err(|e| {
            let certificate = e
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
                .is_some_and(|inner| matches!(inner, rustls::Error::InvalidCertificate(_)));
            let kind = if certificate {
                ErrorKind::Config
            } else {
                ErrorKind::Connect
            };
            SourceError::with_source(
                kind,
                format!("TLS handshake with {endpoint} failed: {e}"),
                e,
            )
        })
}

/// The rustls client configuration for the configured `sslmode`.
fn client_config(config: &PostgresSourceConfig) -> Result<rustls::ClientConfig, SourceError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| {
            SourceError::with_source(ErrorKind::Config, format!("TLS setup failed: {e}"), e)
        })?;
    let verifier: Arc<dyn ServerCertVerifier> = match config.sslmode {
        SslMode::Disable | SslMode::Prefer | SslMode::Require => {
            Arc::new(EncryptOnly(Arc::clone(&provider)))
        }
        SslMode::VerifyCa | SslMode::VerifyFull => {
            let roots = root_store(config)?;
            let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| {
                    SourceError::with_source(ErrorKind::Config, format!("TLS setup failed: {e}"), e)
                })?;
            if config.sslmode == SslMode::VerifyCa {
                Arc::new(ChainOnly(webpki))
            } else {
                webpki
            }
        }
    };
    Ok(builder
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
}

/// The CA certificates of `ssl_root_cert`.
fn root_store(config: &PostgresSourceConfig) -> Result<RootCertStore, SourceError> {
    let path = config.ssl_root_cert.as_ref().ok_or_else(|| {
        SourceError::new(
            ErrorKind::Config,
            "sslmode verify-ca/verify-full needs ssl_root_cert",
        )
    })?;
    let unreadable = |e: rustls::pki_types::pem::Error| {
        SourceError::with_source(
            ErrorKind::Config,
            format!(
                "could not read CA certificates from {}: {e}",
                path.display()
            ),
            e,
        )
    };
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path).map_err(unreadable)? {
        let cert = cert.map_err(unreadable)?;
        roots.add(cert).map_err(|e| {
            SourceError::with_source(
                ErrorKind::Config,
                format!("invalid CA certificate in {}: {e}", path.display()),
                e,
            )
        })?;
    }
    if roots.is_empty() {
        return Err(SourceError::new(
            ErrorKind::Config,
            format!("{} holds no CA certificate", path.display()),
        ));
    }
    Ok(roots)
}

/// `prefer` / `require`: any certificate is accepted (as libpq does), but the handshake
/// signatures are still verified so the session keys belong to whoever holds that certificate.
#[derive(Debug)]
struct EncryptOnly(Arc<CryptoProvider>);

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: the chain must lead to a trusted CA; the host name is not checked.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}
