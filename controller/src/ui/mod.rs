//! `moor ui`: a local web dashboard of the workspace, served by `moor`
//! itself (hyper's HTTP/1.1 server; the page's files are built in, nothing
//! is fetched from elsewhere, so it works offline). Targets with their
//! checks and facts, runs and jobs (a run's log live, its MLflow metrics
//! as charts with zoom, several runs compared on one chart), environments,
//! endpoints with their health.
//!
//! It listens on 127.0.0.1 only, and prints a URL with a random token (as
//! Jupyter does): the page and every API request must carry it, so other
//! users of this machine can read nothing; no request from another site
//! can carry it (no CORS is answered, the `Host` must be the loopback
//! name), so no other page can cancel a run. Until Ctrl-C.
//!
//! - [`http`]: who may ask, the answers' shapes and headers, streamed bodies.
//! - [`api`]: the JSON API the page reads (what the commands' `--json` print);
//!   [`args`]: the commands' arguments for it.
//! - [`live`]: a run's log as it grows, and metric curves for the charts.
//! - [`assets`]: the page's files.

mod api;
mod args;
mod assets;
mod http;
mod live;

use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hyper::{Method, Request, StatusCode};
use serde::Serialize;
use tokio::net::TcpListener;

use crate::cli::UiArgs;
use crate::context::Context;
use crate::error::{Error, Result};
use crate::output::{Render, Text};

/// The port tried first, and how many after it, when none is given.
const DEFAULT_PORT: u16 = 8650;
const DEFAULT_PORTS: u16 = 10;
/// At most this many connections at once (a page holds a few: its API
/// requests and a streaming log).
const MAX_CONNECTIONS: usize = 128;

/// How the dashboard went, when Ctrl-C ended it.
#[derive(Debug, Serialize)]
pub struct Served {
    /// The URL it was served at (with its token).
    pub url: String,
    /// Requests answered.
    pub requests: u64,
}

impl Render for Served {
    fn render(&self, out: &mut Text) {
        out.note(format!("moor ui: stopped after {} requests", self.requests));
    }

    fn has_json(&self) -> bool {
        // `--json` printed the URL when it started.
        false
    }
}

/// What every request's handler shares.
struct Shared {
    ctx: Context,
    token: String,
    port: u16,
    requests: AtomicU64,
}

/// `moor ui`: serves until Ctrl-C (or SIGTERM).
pub async fn serve(args: &UiArgs, ctx: &Context) -> Result<Served> {
    let listener = bind(args.port).await?;
    let port = listener
        .local_addr()
        .map_err(|e| io_error("cannot read the dashboard's address", e))?
        .port();
    let token = crate::random::hex(24);
    let url = format!("http://127.0.0.1:{port}/?token={token}");
    if ctx.json {
        println!("{}", serde_json::json!({ "url": url, "port": port }));
    } else {
        println!("{url}");
    }
    eprintln!(
        "moor ui: the workspace {} at {url} (only this machine can open it, with the token); Ctrl-C stops",
        ctx.workspace.dir().display()
    );
    let shared = Arc::new(Shared {
        // The API answers JSON whatever the command line said.
        ctx: Context {
            workspace: ctx.workspace.clone(),
            targets: ctx.targets.clone(),
            json: false,
        },
        token,
        port,
        requests: AtomicU64::new(0),
    });
    let mut interrupt = crate::signals::ctrl_c()?;
    let mut terminate = crate::signals::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        () = accept(listener, shared.clone()) => {}
        _ = interrupt.recv() => {}
        _ = terminate.recv() => {}
    }
    Ok(Served {
        url,
        requests: shared.requests.load(Ordering::Relaxed),
    })
}

/// Listens on 127.0.0.1: the port given, else the first free one of the
/// default ports, else any.
async fn bind(port: Option<u16>) -> Result<TcpListener> {
    let at = |port: u16| SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    if let Some(port) = port {
        return TcpListener::bind(at(port)).await.map_err(|e| {
            Error::usage(
                format!("cannot listen on 127.0.0.1:{port} ({e})"),
                "choose another port with --port P (0: any free port)",
            )
        });
    }
    for port in DEFAULT_PORT..DEFAULT_PORT + DEFAULT_PORTS {
        if let Ok(listener) = TcpListener::bind(at(port)).await {
            return Ok(listener);
        }
    }
    TcpListener::bind(at(0))
        .await
        .map_err(|e| io_error("cannot listen on 127.0.0.1", e))
}

fn io_error(what: &'static str, cause: std::io::Error) -> Error {
    Error::Io {
        what,
        path: "127.0.0.1".into(),
        cause,
    }
}

/// Accepts connections until the process is told to stop.
async fn accept(listener: TcpListener, shared: Arc<Shared>) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors, say: wait, then go on.
                tracing::warn!("moor ui: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let shared = shared.clone();
                async move { Ok::<_, Infallible>(route(&shared, request).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(Duration::from_secs(30))
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
            drop(permit);
        });
    }
}

/// The largest request body the API takes (a new run's command line).
const MAX_BODY: usize = 64 * 1024;

/// Answers one request.
async fn route(shared: &Arc<Shared>, request: Request<hyper::body::Incoming>) -> http::Answer {
    shared.requests.fetch_add(1, Ordering::Relaxed);
    let headers = request.headers();
    if !http::host_allowed(headers, shared.port) {
        return http::problem(
            StatusCode::FORBIDDEN,
            "forbidden",
            "this dashboard answers only requests for 127.0.0.1 or localhost on its port",
            &format!(
                "open http://127.0.0.1:{}/ with the token moor ui printed",
                shared.port
            ),
        );
    }
    let path = request.uri().path().to_owned();
    let query = request.uri().query().unwrap_or("").to_owned();
    let get = request.method() == Method::GET;
    if let Some(name) = path.strip_prefix("/assets/") {
        // The page's code and style: the same for everybody, no token.
        return match get.then(|| assets::answer(name)).flatten() {
            Some(answer) => answer,
            None => not_found(&path),
        };
    }
    if path != "/" && !path.starts_with("/api/") {
        return not_found(&path);
    }
    if !http::has_token(headers, &query, &shared.token, get) {
        return http::problem(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "the request does not carry this dashboard's token",
            "open the URL `moor ui` printed (it ends with ?token=...)",
        );
    }
    let method = request.method().clone();
    if method == Method::GET && path == "/" {
        return assets::index();
    }
    let body = match http::read_body(request.into_body(), MAX_BODY).await {
        Ok(body) => body,
        Err(problem) => return problem,
    };
    let api_path = path.trim_start_matches("/api/").to_owned();
    api::answer(shared, &method, &api_path, &query, &body).await
}

fn not_found(path: &str) -> http::Answer {
    http::problem(
        StatusCode::NOT_FOUND,
        "not_found",
        &format!("nothing at {path}"),
        "open the URL `moor ui` printed",
    )
}
