//! `moor server start`: serves the API over HTTPS in the foreground until
//! SIGTERM or SIGINT, then drains: no new connection is taken, requests
//! under way finish (at most [`DRAIN`]), and it exits 0.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use moor::error::{Error, Result};
use serde::Serialize;
use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::data::{self, DataDir};
use crate::db::Db;
use crate::http;
use crate::init::team_error;
use crate::shared::Shared;
use crate::tls;

/// The most connections served at once; more wait in the kernel's backlog.
pub const MAX_CONNECTIONS: usize = 512;

/// How long a TLS handshake may take.
const HANDSHAKE: Duration = Duration::from_secs(10);

/// How long a client may take to send a request's headers.
const HEADERS: Duration = Duration::from_secs(30);

/// How long requests under way may take to finish at shutdown.
pub const DRAIN: Duration = Duration::from_secs(30);

/// What `start` is given.
#[derive(Debug, Clone)]
pub struct StartOptions {
    /// The server's folder.
    pub data: PathBuf,
    /// The database URL (`None`: what `init` recorded).
    pub database: Option<String>,
    /// Where to listen.
    pub listen: SocketAddr,
    /// A certificate chain (PEM) to serve instead of the self-signed one.
    pub tls_cert: Option<PathBuf>,
    /// Its key (PEM).
    pub tls_key: Option<PathBuf>,
}

/// Where the server listens, as printed when it is ready.
#[derive(Debug, Clone, Serialize)]
pub struct Ready {
    /// Its URL.
    pub url: String,
    /// The certificate's fingerprint.
    pub fingerprint: String,
}

/// How the server ended.
#[derive(Debug, Clone, Serialize)]
pub struct Stopped {
    /// Its URL.
    pub url: String,
    /// Connections still open when the drain ran out (0: all finished).
    pub cut: usize,
}

/// Serves until SIGTERM/SIGINT; `ready` is called once it listens.
pub async fn start(options: &StartOptions, ready: impl FnOnce(&Ready)) -> Result<Stopped> {
    data::check_no_password_in_argv(options.database.as_deref())?;
    let dir = DataDir::new(&options.data);
    let url = dir.database_url(options.database.as_deref())?;
    let identity =
        match (&options.tls_cert, &options.tls_key) {
            (Some(cert), Some(key)) => tls::load(cert, key)?,
            (None, None) => tls::load(&dir.cert_file(), &dir.key_file())?,
            _ => return Err(Error::usage(
                "--tls-cert and --tls-key go together",
                "pass both (a PEM certificate chain and its key), or neither for the server's own",
            )),
        };
    let db = Db::open(&url).await.map_err(team_error)?;
    db.migrate().await.map_err(team_error)?;
    let listener = TcpListener::bind(options.listen).await.map_err(|e| {
        Error::usage(
            format!("cannot listen on {}: {e}", options.listen),
            "pick another --listen address or port (127.0.0.1:0 takes a free one)",
        )
    })?;
    let at = listener.local_addr().map_err(|cause| Error::Io {
        what: "cannot read the listening address",
        path: options.data.clone(),
        cause,
    })?;
    let shown = Ready {
        url: format!("https://{at}"),
        fingerprint: identity.fingerprint.clone(),
    };
    ready(&shown);
    let moor = std::env::current_exe().map_err(|cause| Error::Io {
        what: "cannot find this moor executable",
        path: "/proc/self/exe".into(),
        cause,
    })?;
    let shared = Arc::new(Shared {
        db: db.clone(),
        slow: Default::default(),
        data: dir.clone(),
        moor,
    });
    let cut = serve(
        listener,
        tokio_rustls::TlsAcceptor::from(identity.config),
        shared,
    )
    .await?;
    db.close().await;
    Ok(Stopped {
        url: shown.url,
        cut,
    })
}

/// Accepts connections until a signal, then drains; returns how many were cut.
async fn serve(
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    shared: Arc<Shared>,
) -> Result<usize> {
    let signal_error = |cause| Error::Io {
        what: "cannot watch for SIGTERM",
        path: "signal".into(),
        cause,
    };
    let mut term = signal(SignalKind::terminate()).map_err(signal_error)?;
    let mut int = signal(SignalKind::interrupt()).map_err(signal_error)?;
    let (stop, stopping) = watch::channel(false);
    let mut tasks = JoinSet::new();
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            accepted = listener.accept(), if tasks.len() < MAX_CONNECTIONS => match accepted {
                Ok((stream, peer)) => {
                    tasks.spawn(connection(stream, peer, acceptor.clone(), shared.clone(), stopping.clone()));
                }
                Err(e) => {
                    tracing::warn!("moor server: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
    drop(listener);
    let _ = stop.send(true);
    let drained =
        tokio::time::timeout(DRAIN, async { while tasks.join_next().await.is_some() {} }).await;
    Ok(if drained.is_ok() { 0 } else { tasks.len() })
}

/// Serves one connection: TLS, then HTTP/1.1 until the client closes it or
/// the server stops (a request under way finishes first).
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    acceptor: tokio_rustls::TlsAcceptor,
    shared: Arc<Shared>,
    mut stopping: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let Ok(Ok(tls)) = tokio::time::timeout(HANDSHAKE, acceptor.accept(stream)).await else {
        return;
    };
    let service = hyper::service::service_fn(move |request| {
        let shared = shared.clone();
        async move { Ok::<_, Infallible>(http::handle(shared, peer.ip(), request).await) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADERS)
        .serve_connection(hyper_util::rt::TokioIo::new(tls), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = async { let _ = stopping.wait_for(|stop| *stop).await; } => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

impl moor::output::Render for Stopped {
    fn render(&self, out: &mut moor::output::Text) {
        match self.cut {
            0 => out.note(format!("moor server: {} drained and stopped", self.url)),
            n => out.note(format!(
                "moor server: {} stopped; {n} connections did not finish in time",
                self.url
            )),
        }
    }

    /// The ready line was the JSON; the end says nothing more on stdout.
    fn has_json(&self) -> bool {
        false
    }
}
