//! A run's MLflow tracking endpoint: served by the run's supervisor on the
//! host's 127.0.0.1 (a port of its own) for as long as the run lives, so
//! unmodified training code that calls `mlflow.start_run()`,
//! `log_metric`, `autolog()` records into the moor run. The run gets
//! `MLFLOW_TRACKING_URI`, `MLFLOW_TRACKING_TOKEN` (random, checked on every
//! request: other users of the host cannot log into or read the run),
//! `MLFLOW_RUN_ID` (the moor run's id) and `MLFLOW_EXPERIMENT_NAME`. A run
//! of several processes gives each its own token (`TOKEN.rRANK`), so each
//! point knows its rank. A run given its own `MLFLOW_TRACKING_URI` keeps it
//! and gets no endpoint.
//!
//! - [`store`]: the records on disk and the state answered from.
//! - [`api`]: MLflow's REST API, the part its client uses ([`models`]:
//!   MLflow 3's logged models; [`history`]: a metric's points read back).
//! - [`relay`]: the endpoint carried into a Docker-environment run's container.

pub mod api;
pub mod history;
pub mod models;
pub mod relay;
pub mod store;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::io;
use std::net::{Ipv4Addr, TcpListener};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Request, Response, StatusCode};

use store::{ApiError, Store};

/// The largest request body taken (a batch of 1,000 metrics is about 150 KB;
/// `log-inputs` carries a dataset's schema).
const MAX_BODY: usize = 16 << 20;
/// At most this many connections at once.
const MAX_CONNECTIONS: usize = 64;
/// The environment variable a launcher reads the run's token from.
pub const TOKEN_VAR: &str = "MOOR_TRACKING_TOKEN";

/// A running endpoint.
pub struct Endpoint {
    port: u16,
    token: String,
    experiment: String,
    run_id: String,
    store: Arc<Mutex<Store>>,
}

impl Endpoint {
    /// The variables the run's command gets.
    pub fn env(&self) -> BTreeMap<&'static str, String> {
        BTreeMap::from([
            (
                "MLFLOW_TRACKING_URI",
                format!("http://127.0.0.1:{}", self.port),
            ),
            ("MLFLOW_TRACKING_TOKEN", self.token.clone()),
            ("MLFLOW_RUN_ID", self.run_id.clone()),
            ("MLFLOW_EXPERIMENT_NAME", self.experiment.clone()),
            (TOKEN_VAR, self.token.clone()),
        ])
    }

    /// The run's token.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Writes the latest values now (the run ended).
    pub fn finish(&self) {
        if let Ok(mut store) = self.store.lock() {
            store.write_latest(true);
        }
    }
}

/// The token of the process of rank `rank`, from the run's token.
pub fn rank_token(token: &str, rank: u32) -> String {
    format!("{token}.r{rank}")
}

/// Starts the endpoint of the run in `dir` (id `run_id`, experiment
/// `experiment`; its code sees its outputs at `outputs`, when not in
/// `dir`): bound before this returns, served on a thread of its own.
pub fn start(
    dir: &Path,
    run_id: &str,
    experiment: Option<&str>,
    outputs: Option<&Path>,
) -> io::Result<Endpoint> {
    let user = std::env::var("USER").unwrap_or_default();
    let mut store = Store::open(dir, run_id, experiment, &user)?;
    if let Some(outputs) = outputs {
        store.set_outputs(outputs);
    }
    let (_, experiment) = store.experiment_of_main();
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    listener.set_nonblocking(true)?;
    let port = listener.local_addr()?.port();
    let token = crate::sys::secret_hex(24)?;
    let store = Arc::new(Mutex::new(store));
    let shared = Arc::new(Shared {
        token: token.clone(),
        store: store.clone(),
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("mlflow".into())
        .spawn(move || runtime.block_on(serve(listener, shared)))?;
    Ok(Endpoint {
        port,
        token,
        experiment,
        run_id: run_id.to_owned(),
        store,
    })
}

struct Shared {
    token: String,
    store: Arc<Mutex<Store>>,
}

async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
        return;
    };
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        // An answer goes out at once (no wait for the client's ACK).
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let shared = shared.clone();
                async move { Ok::<_, Infallible>(answer(&shared, request).await) }
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

async fn answer(shared: &Shared, request: Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
    let Some(caller) = authorized(&shared.token, request.headers()) else {
        return error_response(&ApiError::new(
            401,
            "UNAUTHENTICATED",
            "a moor run's tracking endpoint takes only its run's MLFLOW_TRACKING_TOKEN",
        ));
    };
    let method = request.method().as_str().to_owned();
    let uri = request.uri().clone();
    let Some(path) = uri
        .path()
        .strip_prefix("/api/2.0/mlflow/")
        .or_else(|| uri.path().strip_prefix("/ajax-api/2.0/mlflow/"))
    else {
        return error_response(&ApiError::new(
            404,
            "ENDPOINT_NOT_FOUND",
            format!(
                "moor's tracking endpoint serves /api/2.0/mlflow/, not {}",
                uri.path()
            ),
        ));
    };
    let body = match Limited::new(request.into_body(), MAX_BODY).collect().await {
        Ok(body) => body.to_bytes(),
        Err(e) => {
            return error_response(&ApiError::new(
                400,
                "INVALID_PARAMETER_VALUE",
                format!("request body not read (at most {MAX_BODY} bytes): {e}"),
            ))
        }
    };
    let answered = match shared.store.lock() {
        Ok(mut store) => api::handle(
            &mut store,
            caller,
            &method,
            path,
            uri.query().unwrap_or(""),
            &body,
        ),
        Err(_) => Err(ApiError::new(
            500,
            "INTERNAL_ERROR",
            "the endpoint's state is lost",
        )),
    };
    match answered {
        Ok(value) => json_response(StatusCode::OK, &value),
        Err(error) => error_response(&error),
    }
}

/// The caller if the request carries the run's token (`Bearer TOKEN`, or
/// `Bearer TOKEN.rRANK` from a process of a run of several).
fn authorized(token: &str, headers: &hyper::HeaderMap) -> Option<api::Caller> {
    let given = headers
        .get(hyper::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")?;
    let (secret, rank) = match given.split_once(".r") {
        Some((secret, rank)) => (secret, Some(rank.parse::<u32>().ok()?)),
        None => (given, None),
    };
    moor_proto::same_secret(secret.as_bytes(), token.as_bytes()).then_some(api::Caller { rank })
}

fn json_response(status: StatusCode, value: &serde_json::Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(value.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

fn error_response(error: &ApiError) -> Response<Full<Bytes>> {
    json_response(
        StatusCode::from_u16(error.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        &serde_json::json!({ "error_code": error.code, "message": error.message }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_runs_token_is_let_in() {
        let mut headers = hyper::HeaderMap::new();
        assert!(authorized("abc", &headers).is_none());
        headers.insert(hyper::header::AUTHORIZATION, "Bearer abd".parse().unwrap());
        assert!(authorized("abc", &headers).is_none());
        headers.insert(hyper::header::AUTHORIZATION, "Bearer abc".parse().unwrap());
        assert_eq!(authorized("abc", &headers).unwrap().rank, None);
        headers.insert(
            hyper::header::AUTHORIZATION,
            rank_token("Bearer abc", 3).parse().unwrap(),
        );
        assert_eq!(authorized("abc", &headers).unwrap().rank, Some(3));
        headers.insert(
            hyper::header::AUTHORIZATION,
            "Bearer abc.rx".parse().unwrap(),
        );
        assert!(authorized("abc", &headers).is_none());
        headers.insert(
            hyper::header::AUTHORIZATION,
            "Bearer ab.r1".parse().unwrap(),
        );
        assert!(authorized("abc", &headers).is_none());
    }
}
