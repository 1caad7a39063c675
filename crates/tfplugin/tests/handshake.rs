//! The go-plugin handshake as Terraform sees it, checked against the toy provider binary:
//! magic cookie, protocol negotiation, the handshake line, and AutoMTLS that accepts only the
//! client certificate announced in `PLUGIN_CLIENT_CERT`.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use base64::Engine;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use common::COOKIE;

/// Kills the child on drop so a failed assertion never leaks a provider process.
struct Provider(Child);

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(envs: &[(&str, &str)]) -> (Provider, String) {
    let mut cmd = Command::new(common::toyfs_binary());
    cmd.env_remove("TF_PLUGIN_MAGIC_COOKIE")
        .env_remove("PLUGIN_CLIENT_CERT");
    cmd.envs(envs.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(Stdio::null());
    let mut child = cmd.spawn().expect("spawn toy provider");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read handshake line");
    (Provider(child), line)
}

#[test]
fn running_by_hand_explains_that_terraform_starts_the_plugin() {
    let out = Command::new(common::toyfs_binary())
        .env_remove("TF_PLUGIN_MAGIC_COOKIE")
        .stdin(Stdio::null())
        .output()
        .expect("run toy provider");
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "nothing may reach stdout");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Terraform provider plugin") && err.contains("--debug"),
        "{err}"
    );
}

#[test]
fn a_terraform_without_protocol_6_is_refused_with_a_message() {
    let out = Command::new(common::toyfs_binary())
        .env(COOKIE.0, COOKIE.1)
        .env("PLUGIN_PROTOCOL_VERSIONS", "5")
        .stdin(Stdio::null())
        .output()
        .expect("run toy provider");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("speaks only 6"));
}

#[test]
fn handshake_line_is_plaintext_without_a_client_certificate() {
    let (_p, line) = start(&[COOKIE, ("PLUGIN_PROTOCOL_VERSIONS", "5,6")]);
    let fields: Vec<&str> = line.trim_end_matches('\n').split('|').collect();
    assert_eq!(fields.len(), 6, "{line:?}");
    assert_eq!(&fields[..3], &["1", "6", "tcp"]);
    assert!(fields[3].starts_with("127.0.0.1:"), "{line:?}");
    assert_eq!(fields[4], "grpc");
    assert_eq!(fields[5], "", "no certificate in plaintext mode");
}

#[test]
fn handshake_binds_inside_the_port_range_terraform_gives() {
    let (_p, line) = start(&[
        COOKIE,
        ("PLUGIN_MIN_PORT", "23411"),
        ("PLUGIN_MAX_PORT", "23430"),
    ]);
    let addr = line.split('|').nth(3).expect("address field");
    let port: u16 = addr
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port");
    assert!((23411..=23430).contains(&port), "{line:?}");
}

/// Trusts exactly the server certificate from the handshake line (what go-plugin does).
#[derive(Debug)]
struct PinnedServer(Vec<u8>, Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for PinnedServer {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.0.as_slice() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "unexpected server certificate".into(),
            ))
        }
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.1.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.1.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.1.signature_verification_algorithms.supported_schemes()
    }
}

fn client_identity() -> (String, CertificateDer<'static>, PrivateKeyDer<'static>) {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).expect("key");
    let mut params = rcgen::CertificateParams::new(vec!["localhost".into()]).expect("params");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let cert = params.self_signed(&key).expect("cert");
    let der = cert.der().clone();
    (
        cert.pem(),
        der,
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    )
}

/// Connects with `identity` and reports whether the server answers an HTTP/2 preface.
async fn h2_answers(
    addr: &str,
    server_der: Vec<u8>,
    cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
) -> bool {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PinnedServer(server_der, provider)))
        .with_client_auth_cert(vec![cert], key)
        .expect("client auth");
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let conn = tokio_rustls::TlsConnector::from(Arc::new(cfg));
    let Ok(mut tls) = conn
        .connect(ServerName::try_from("localhost").expect("name"), tcp)
        .await
    else {
        return false;
    };
    assert_eq!(
        tls.get_ref().1.alpn_protocol(),
        Some(&b"h2"[..]),
        "server must select ALPN h2"
    );
    if tls
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await
        .is_err()
    {
        return false;
    }
    let mut buf = [0u8; 9];
    let read =
        tokio::time::timeout(std::time::Duration::from_secs(5), tls.read_exact(&mut buf)).await;
    // A SETTINGS frame (type 4) comes back only over an accepted connection.
    matches!(read, Ok(Ok(_))) && buf[3] == 4
}

#[tokio::test]
async fn automtls_accepts_only_the_client_certificate_terraform_announced() {
    let (pem, cert, key) = client_identity();
    let (_p, line) = start(&[COOKIE, ("PLUGIN_CLIENT_CERT", pem.as_str())]);
    let fields: Vec<&str> = line.trim_end_matches('\n').split('|').collect();
    assert_eq!(fields.len(), 6, "{line:?}");
    assert!(
        !fields[5].contains('='),
        "certificate must be unpadded base64"
    );
    let server_der = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(fields[5])
        .expect("base64 certificate");
    assert!(
        h2_answers(fields[3], server_der.clone(), cert, key).await,
        "the announced client certificate is accepted"
    );

    let (_, other_cert, other_key) = client_identity();
    assert!(
        !h2_answers(fields[3], server_der, other_cert, other_key).await,
        "any other client certificate is refused"
    );
}

#[tokio::test]
async fn shutdown_rpc_ends_the_process_before_terraforms_kill_timer() {
    let (mut p, line) = start(&[COOKIE]);
    let addr = line.split('|').nth(3).expect("address").to_string();
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .connect()
        .await
        .expect("connect plaintext");
    let mut ctl = tfplugin::pb::plugin::grpc_controller_client::GrpcControllerClient::new(channel);
    ctl.shutdown(tfplugin::pb::plugin::Empty {})
        .await
        .expect("Shutdown answers");
    // Terraform closes its connection and kills the process after 2 s; we must be gone first.
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(1500);
    loop {
        if let Some(status) = p.0.try_wait().expect("wait") {
            assert!(status.success(), "clean exit after Shutdown: {status}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "provider still running 1.5 s after Shutdown"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn sigint_does_not_kill_a_running_provider() {
    let (mut p, line) = start(&[COOKIE]);
    let addr = line.split('|').nth(3).expect("address").to_string();
    let status = Command::new("kill")
        .args(["-INT", &p.0.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        p.0.try_wait().expect("wait").is_none(),
        "provider died on SIGINT"
    );
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .connect()
        .await;
    assert!(channel.is_ok(), "provider still serves after SIGINT");
}
