//! The pinned client-certificate verifier.

use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::ClientCertVerifier;
use tfplugin::tls::PinnedClientCertVerifier;

use crate::support::terraform_like_client_certificate;

#[test]
fn accepts_exactly_the_pinned_certificate() {
    let (_, terraform, _) = terraform_like_client_certificate();
    let (_, other, _) = terraform_like_client_certificate();
    let verifier = PinnedClientCertVerifier::new(CertificateDer::from(terraform.clone()));
    let now = UnixTime::now();
    assert!(
        verifier
            .verify_client_cert(&CertificateDer::from(terraform), &[], now)
            .is_ok()
    );
    assert!(
        verifier
            .verify_client_cert(&CertificateDer::from(other), &[], now)
            .is_err()
    );
    assert!(
        verifier.client_auth_mandatory(),
        "no certificate, no connection"
    );
    assert!(
        verifier
            .supported_verify_schemes()
            .contains(&rustls::SignatureScheme::ECDSA_NISTP521_SHA512),
        "Terraform signs with P-521/SHA-512"
    );
}

#[test]
fn server_identity_is_a_localhost_server_certificate() {
    let identity = tfplugin::tls::ServerIdentity::generate().unwrap();
    let (pem, _, _) = terraform_like_client_certificate();
    let config = identity.server_config(&pem).unwrap();
    assert_eq!(config.alpn_protocols, vec![b"h2".to_vec()]);
    assert!(
        identity.certificate_der().len() > 50,
        "Terraform ignores certificates of 50 characters or fewer"
    );
    assert!(identity.server_config("not a certificate").is_err());
}
