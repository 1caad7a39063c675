//! AutoMTLS: a throw-away server certificate and a client verifier that accepts exactly the
//! certificate Terraform passed in `PLUGIN_CLIENT_CERT` (true mutual TLS). Handshake
//! signatures are verified with aws-lc-rs, which supports Terraform's ECDSA P-521/SHA-512.
//! See `docs/design/terraform-protocol.md` for why stock webpki verification cannot be used.

use std::sync::Arc;

use rustls::DigitallySignedStruct;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, UnixTime};

use crate::error::Error;

/// The process crypto provider (installed explicitly: rustls panics when it must guess).
pub fn crypto_provider() -> Arc<CryptoProvider> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    CryptoProvider::get_default().cloned().unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
}

/// A fresh self-signed server certificate for `localhost` (DER) and its key.
pub fn server_certificate() -> Result<(CertificateDer<'static>, PrivateKeyDer<'static>), Error> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(|e| Error::Tls(e.to_string()))?;
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).map_err(|e| Error::Tls(e.to_string()))?;
    params.distinguished_name.push(rcgen::DnType::OrganizationName, "tfplugin");
    params.distinguished_name.push(rcgen::DnType::CommonName, "localhost");
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth, rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature, rcgen::KeyUsagePurpose::KeyEncipherment];
    let cert = params.self_signed(&key).map_err(|e| Error::Tls(e.to_string()))?;
    let der = cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    Ok((der, key))
}

/// Parses the first certificate of a PEM text.
pub fn pem_certificate(pem: &str) -> Result<CertificateDer<'static>, Error> {
    use rustls_pki_types::pem::PemObject;
    CertificateDer::from_pem_slice(pem.as_bytes())
        .map_err(|e| Error::Tls(format!("PLUGIN_CLIENT_CERT is not a PEM certificate: {e:?}")))
}

/// Accepts exactly one client certificate, byte for byte.
#[derive(Debug)]
pub struct PinnedClientCert {
    der: CertificateDer<'static>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl PinnedClientCert {
    pub fn new(der: CertificateDer<'static>, provider: &CryptoProvider) -> Self {
        PinnedClientCert { der, algorithms: provider.signature_verification_algorithms }
    }
}

impl ClientCertVerifier for PinnedClientCert {
    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        &[]
    }
    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.der.as_ref() {
            Ok(ClientCertVerified::assertion())
        } else {
            Err(rustls::Error::General("client certificate is not the one Terraform announced".into()))
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
    fn client_auth_mandatory(&self) -> bool {
        true
    }
}

/// The rustls server config for AutoMTLS: pinned client cert, ALPN `h2`.
pub fn server_config(
    client_cert_pem: &str,
    cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
) -> Result<rustls::ServerConfig, Error> {
    let provider = crypto_provider();
    let verifier = PinnedClientCert::new(pem_certificate(client_cert_pem)?, &provider);
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(e.to_string()))?
        .with_client_cert_verifier(Arc::new(verifier))
        .with_single_cert(vec![cert], key)
        .map_err(|e| Error::Tls(e.to_string()))?;
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    Ok(cfg)
}
