//! Running a provider binary: magic cookie, `--debug`, listener, AutoMTLS, the go-plugin
//! handshake line, SIGINT handling and shutdown. `tfplugin::run(MyProvider::new())` is a whole
//! `main`.

use std::io::Write;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use base64::Engine;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::server::Connected;

use crate::error::Error;
use crate::framework::Provider;
use crate::pb;
use crate::server::controller::Controller;
use crate::server::{Inner, ProviderService};

/// go-plugin's magic cookie key and value for Terraform providers.
pub const MAGIC_COOKIE_KEY: &str = "TF_PLUGIN_MAGIC_COOKIE";
pub const MAGIC_COOKIE_VALUE: &str =
    "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2";
/// Largest request/response we accept or send (terraform-plugin-go uses the same).
pub const MAX_MESSAGE_BYTES: usize = 256 << 20;

/// How the process was started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Started by Terraform (cookie present).
    Plugin,
    /// `--debug`: plaintext, prints `TF_REATTACH_PROVIDERS`, runs until Ctrl-C.
    Debug,
}

/// Runs the provider as the whole `main`: builds a runtime, serves, maps errors to an exit
/// code (with a message on stderr).
pub fn run<P: Provider>(provider: P) -> std::process::ExitCode {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(serve(provider)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Serves the provider until Terraform shuts it down (or Ctrl-C in `--debug` mode).
pub async fn serve<P: Provider>(provider: P) -> Result<(), Error> {
    let mode = if std::env::args()
        .skip(1)
        .any(|a| a == "--debug" || a == "-debug")
    {
        Mode::Debug
    } else if std::env::var(MAGIC_COOKIE_KEY).ok().as_deref() == Some(MAGIC_COOKIE_VALUE) {
        Mode::Plugin
    } else {
        return Err(Error::NotStartedByTerraform);
    };
    serve_mode(provider, mode).await
}

/// Like [`serve`] with the mode decided by the caller.
pub async fn serve_mode<P: Provider>(provider: P, mode: Mode) -> Result<(), Error> {
    if mode == Mode::Plugin
        && let Ok(versions) = std::env::var("PLUGIN_PROTOCOL_VERSIONS")
        && !versions.split(',').any(|v| v.trim() == "6")
    {
        return Err(Error::Handshake(format!(
            "terraform offers plugin protocol versions {versions}, this provider speaks only 6"
        )));
    }
    let inner = Arc::new(Inner::new(provider)?);
    let source_address = inner.provider.source_address();
    let shutdown = CancellationToken::new();

    // Ctrl-C reaches the whole process group; Terraform then calls StopProvider. Ignore it
    // as go-plugin servers do (in debug mode it stops the server instead). The handler is
    // registered here, before the handshake line, so no early SIGINT can kill the process.
    #[cfg(unix)]
    {
        let mut sigint = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
        let shutdown = shutdown.clone();
        let debug = mode == Mode::Debug;
        tokio::spawn(async move {
            while sigint.recv().await.is_some() {
                if debug {
                    shutdown.cancel();
                    return;
                }
                tracing::debug!(
                    "ignoring SIGINT; terraform stops the provider through StopProvider"
                );
            }
        });
    }

    let listener = bind().await?;
    let addr = listener.local_addr()?;
    let client_cert = if mode == Mode::Plugin {
        std::env::var("PLUGIN_CLIENT_CERT")
            .ok()
            .filter(|c| !c.trim().is_empty())
    } else {
        None
    };

    let (tls, cert_field) = match &client_cert {
        Some(pem) => {
            let (cert, key) = crate::tls::server_certificate()?;
            let field = base64::engine::general_purpose::STANDARD_NO_PAD.encode(cert.as_ref());
            let cfg = crate::tls::server_config(pem, cert, key)?;
            (Some(tokio_rustls::TlsAcceptor::from(Arc::new(cfg))), field)
        }
        None => (None, String::new()),
    };

    let incoming = accept_loop(listener, tls);

    let provider_svc = pb::tfplugin6::provider_server::ProviderServer::new(ProviderService {
        inner: inner.clone(),
    })
    .max_decoding_message_size(MAX_MESSAGE_BYTES)
    .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let controller = pb::plugin::grpc_controller_server::GrpcControllerServer::new(Controller {
        shutdown: shutdown.clone(),
    });
    let (health_reporter, health_svc) = tonic_health::server::health_reporter();
    health_reporter
        .set_service_status("plugin", tonic_health::ServingStatus::Serving)
        .await;

    let server = tonic::transport::Server::builder()
        .add_service(provider_svc)
        .add_service(controller)
        .add_service(health_svc)
        .serve_with_incoming_shutdown(incoming, {
            let shutdown = shutdown.clone();
            async move { shutdown.cancelled().await }
        });
    let server = tokio::spawn(server);

    match mode {
        Mode::Plugin => {
            let line = format!("1|6|tcp|{addr}|grpc|{cert_field}\n");
            let mut out = std::io::stdout().lock();
            out.write_all(line.as_bytes())?;
            out.flush()?;
        }
        Mode::Debug => {
            let reattach = serde_json::json!({
                source_address.clone(): {
                    "Protocol": "grpc",
                    "ProtocolVersion": 6,
                    "Pid": std::process::id(),
                    "Test": true,
                    "Addr": {"Network": "tcp", "String": addr.to_string()},
                }
            });
            let mut out = std::io::stdout().lock();
            writeln!(
                out,
                "Provider started. To attach Terraform CLI, set the TF_REATTACH_PROVIDERS environment variable with the following:\n\n\tTF_REATTACH_PROVIDERS='{reattach}'\n"
            )?;
            out.flush()?;
        }
    }

    // Graceful stop after Shutdown; do not wait long for Terraform to close its connection.
    let mut server = server;
    tokio::select! {
        res = &mut server => {
            res.map_err(|e| Error::Handshake(format!("server task failed: {e}")))??;
        }
        () = async { shutdown.cancelled().await; tokio::time::sleep(Duration::from_millis(500)).await } => {}
    }
    Ok(())
}

async fn bind() -> Result<TcpListener, Error> {
    let min = std::env::var("PLUGIN_MIN_PORT")
        .ok()
        .and_then(|v| v.parse::<u16>().ok())
        .unwrap_or(0);
    let max = std::env::var("PLUGIN_MAX_PORT")
        .ok()
        .and_then(|v| v.parse::<u16>().ok())
        .unwrap_or(0);
    if min == 0 || max == 0 {
        return Ok(TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?);
    }
    if min > max {
        return Err(Error::Handshake(format!(
            "PLUGIN_MIN_PORT {min} is above PLUGIN_MAX_PORT {max}"
        )));
    }
    for port in min..=max {
        if let Ok(l) = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await {
            return Ok(l);
        }
    }
    Err(Error::Handshake(format!(
        "no free port between {min} and {max}"
    )))
}

/// Accepts connections, runs TLS handshakes concurrently, and yields ready connections.
fn accept_loop(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> ReceiverStream<Result<Conn, std::io::Error>> {
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(async move {
        loop {
            let (tcp, _) = match listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            let tx = tx.clone();
            match &tls {
                None => {
                    if tx.send(Ok(Conn::Plain(tcp))).await.is_err() {
                        return;
                    }
                }
                Some(acc) => {
                    let acc = acc.clone();
                    tokio::spawn(async move {
                        match acc.accept(tcp).await {
                            Ok(s) => {
                                let _ = tx.send(Ok(Conn::Tls(Box::new(s)))).await;
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "tls handshake with terraform failed")
                            }
                        }
                    });
                }
            }
        }
    });
    ReceiverStream::new(rx)
}

/// A plaintext or TLS connection.
#[derive(Debug)]
pub(crate) enum Conn {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

impl Connected for Conn {
    type ConnectInfo = ();
    fn connect_info(&self) -> Self::ConnectInfo {}
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_flush(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
