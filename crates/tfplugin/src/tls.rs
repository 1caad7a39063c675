//! AutoMTLS: a throw-away server certificate and a client verifier that accepts exactly the
//! certificate Terraform passed in `PLUGIN_CLIENT_CERT` (true mutual TLS).
//!
//! Crypto: rustls with the `ring` provider (cheap to start: the aws-lc-rs provider spends
//! 60–100 ms initialising on first use, which every provider process would pay), plus one
//! signature algorithm ring lacks and Terraform needs: ECDSA P-521 with SHA-512, the key type
//! of go-plugin's client certificate, verified with RustCrypto's `p521`. See
//! `docs/design/terraform-protocol.md` for why stock webpki verification cannot be used.

use std::sync::{Arc, OnceLock};

use rustls::DigitallySignedStruct;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls_pki_types::{
    AlgorithmIdentifier, CertificateDer, InvalidSignature, PrivateKeyDer, PrivatePkcs8KeyDer,
    SignatureVerificationAlgorithm, UnixTime, alg_id,
};

use crate::error::Error;

/// The process crypto provider (installed explicitly: rustls panics when it must guess).
pub fn crypto_provider() -> Arc<CryptoProvider> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()))
}

/// ECDSA over P-521 with SHA-512 (webpki signature algorithm backed by RustCrypto `p521`).
#[derive(Debug)]
pub struct EcdsaP521Sha512;

impl SignatureVerificationAlgorithm for EcdsaP521Sha512 {
    fn verify_signature(
        &self,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), InvalidSignature> {
        use p521::ecdsa::signature::Verifier;
        let key =
            p521::ecdsa::VerifyingKey::from_sec1_bytes(public_key).map_err(|_| InvalidSignature)?;
        let sig = p521::ecdsa::Signature::from_der(signature).map_err(|_| InvalidSignature)?;
        key.verify(message, &sig).map_err(|_| InvalidSignature)
    }
    fn public_key_alg_id(&self) -> AlgorithmIdentifier {
        alg_id::ECDSA_P521
    }
    fn signature_alg_id(&self) -> AlgorithmIdentifier {
        alg_id::ECDSA_SHA512
    }
}

static P521: EcdsaP521Sha512 = EcdsaP521Sha512;
static P521_ONLY: [&dyn SignatureVerificationAlgorithm; 1] = [&P521];

/// ring's signature algorithms plus ECDSA P-521/SHA-512.
pub fn verification_algorithms() -> WebPkiSupportedAlgorithms {
    static ALGS: OnceLock<WebPkiSupportedAlgorithms> = OnceLock::new();
    *ALGS.get_or_init(|| {
        let base = rustls::crypto::ring::default_provider().signature_verification_algorithms;
        let mut all: Vec<&'static dyn SignatureVerificationAlgorithm> = base.all.to_vec();
        all.push(&P521);
        let mut mapping = base.mapping.to_vec();
        mapping.push((
            rustls::SignatureScheme::ECDSA_NISTP521_SHA512,
            &P521_ONLY[..],
        ));
        WebPkiSupportedAlgorithms {
            all: Vec::leak(all),
            mapping: Vec::leak(mapping),
        }
    })
}

/// A fresh self-signed server certificate for `localhost` (DER) and its key.
pub fn server_certificate() -> Result<(CertificateDer<'static>, PrivateKeyDer<'static>), Error> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .map_err(|e| Error::Tls(e.to_string()))?;
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .map_err(|e| Error::Tls(e.to_string()))?;
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "tfplugin");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "localhost");
    params.extended_key_usages = vec![
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::DigitalSignature,
        rcgen::KeyUsagePurpose::KeyEncipherment,
    ];
    let cert = params
        .self_signed(&key)
        .map_err(|e| Error::Tls(e.to_string()))?;
    let der = cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    Ok((der, key))
}

/// Parses the first certificate of a PEM text.
pub fn pem_certificate(pem: &str) -> Result<CertificateDer<'static>, Error> {
    use rustls_pki_types::pem::PemObject;
    CertificateDer::from_pem_slice(pem.as_bytes()).map_err(|e| {
        Error::Tls(format!(
            "PLUGIN_CLIENT_CERT is not a PEM certificate: {e:?}"
        ))
    })
}

/// Accepts exactly one client certificate, byte for byte.
#[derive(Debug)]
pub struct PinnedClientCert {
    der: CertificateDer<'static>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl PinnedClientCert {
    /// Accepts `der` only; verifies handshake signatures with [`verification_algorithms`].
    pub fn new(der: CertificateDer<'static>) -> Self {
        PinnedClientCert {
            der,
            algorithms: verification_algorithms(),
        }
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
            Err(rustls::Error::General(
                "client certificate is not the one Terraform announced".into(),
            ))
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
    let verifier = PinnedClientCert::new(pem_certificate(client_cert_pem)?);
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(e.to_string()))?
        .with_client_cert_verifier(Arc::new(verifier))
        .with_single_cert(vec![cert], key)
        .map_err(|e| Error::Tls(e.to_string()))?;
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p521_sha512_signatures_verify_and_tampering_fails() {
        use p521::ecdsa::signature::Signer;
        let mut scalar = [7u8; 66];
        scalar[0] = 0; // below the group order
        let sk = p521::ecdsa::SigningKey::from_slice(&scalar).unwrap_or_else(|e| panic!("{e}"));
        let vk = p521::ecdsa::VerifyingKey::from(&sk);
        let public = vk.to_encoded_point(false);
        let sig: p521::ecdsa::Signature = sk.sign(b"handshake transcript");
        let der = sig.to_der();
        assert!(
            EcdsaP521Sha512
                .verify_signature(public.as_bytes(), b"handshake transcript", der.as_bytes())
                .is_ok()
        );
        assert!(
            EcdsaP521Sha512
                .verify_signature(public.as_bytes(), b"other transcript", der.as_bytes())
                .is_err()
        );
        assert!(
            verification_algorithms()
                .supported_schemes()
                .contains(&rustls::SignatureScheme::ECDSA_NISTP521_SHA512),
            "P-521 is offered in CertificateRequest"
        );
    }
}
