//! The API over HTTP/1.1: every request shows a token (`Authorization:
//! Bearer ...`) and is checked against its user's role before anything is
//! read or changed. Bodies are JSON of at most [`MAX_BODY`] bytes with no
//! unknown fields; every refusal is an [`ApiError`] with the HTTP status of
//! its [`Fault`]. Unknown tokens are slowed down ([`crate::slow`]).

mod routes;

use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;
use std::convert::Infallible;

use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use moor::team::api::{ApiError, Fault, MAX_BODY};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::db::{Caller, Refusal};
pub use crate::shared::Shared;

/// An answer: a JSON value, or a command's stream of frames.
pub type Answer = Response<BoxBody<Bytes, Infallible>>;

/// Answers one request from `peer`.
pub async fn handle(shared: Arc<Shared>, peer: IpAddr, request: Request<Incoming>) -> Answer {
    match authenticate(&shared, peer, &request).await {
        Ok(caller) => match routes::route(&shared, &caller, request).await {
            Ok(answer) => answer,
            Err(refusal) => refused(&refusal),
        },
        Err(refusal) => refused(&refusal),
    }
}

/// The caller, from the request's token; an unknown one waits before its
/// answer (see [`slow`]).
async fn authenticate(
    shared: &Shared,
    peer: IpAddr,
    request: &Request<Incoming>,
) -> Result<Caller, Refusal> {
    let token = request
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return Err(Refusal::new(
            Fault::Unauthorized,
            "the request carries no token",
            "log in with `moor login URL`",
        ));
    };
    match shared.db.caller(token).await? {
        Some(caller) => {
            shared.slow.succeeded(peer);
            Ok(caller)
        }
        None => {
            let wait = shared.slow.failed(peer);
            tracing::info!("unknown token from {peer} (answered after {wait:?})");
            tokio::time::sleep(wait).await;
            Err(Refusal::new(
                Fault::Unauthorized,
                "the server does not know this token (it was rotated, or its user removed)",
                "log in again with `moor login URL` and a token an admin gives you (moor user token NAME --rotate)",
            ))
        }
    }
}

/// A JSON answer.
pub fn json<T: Serialize>(status: StatusCode, value: &T) -> Answer {
    let body = serde_json::to_vec(value).expect("answers serialize");
    Response::builder()
        .status(status)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header(hyper::header::CACHE_CONTROL, "no-store")
        .body(Full::new(Bytes::from(body)).boxed())
        .expect("a valid response")
}

/// A refusal's answer.
pub fn refused(refusal: &Refusal) -> Answer {
    let status =
        StatusCode::from_u16(refusal.fault.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json(
        status,
        &ApiError {
            kind: refusal.fault.kind().to_owned(),
            message: refusal.message.clone(),
            fix: refusal.fix.clone(),
        },
    )
}

/// The most of a too-large body read (and dropped) before the refusal, so
/// that a client still sending reads the answer instead of a reset.
const DRAIN_LIMIT: usize = 16 * MAX_BODY;

/// Reads a request's JSON body: at most [`MAX_BODY`] bytes, no unknown field.
pub async fn body<T: DeserializeOwned>(request: Request<Incoming>) -> Result<T, Refusal> {
    let bad = |message: String| {
        Refusal::new(
            Fault::BadRequest,
            message,
            "send what `moor` sends; update moor if this one is older than the server",
        )
    };
    let mut incoming = request.into_body();
    let mut bytes = Vec::new();
    let mut seen = 0usize;
    while let Some(frame) = incoming.frame().await {
        let frame = frame.map_err(|e| bad(format!("the request body could not be read: {e}")))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        seen += data.len();
        if seen > DRAIN_LIMIT {
            break;
        }
        if seen <= MAX_BODY {
            bytes.extend_from_slice(&data);
        }
    }
    if seen > MAX_BODY {
        return Err(bad(format!(
            "the request body is over the {} KiB the API takes",
            MAX_BODY / 1024
        )));
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| bad(format!("the request body is not what the API takes: {e}")))
}

/// A command's answer: its frames as they come ([`crate::exec`]).
pub fn frames(rx: tokio::sync::mpsc::Receiver<Bytes>) -> Answer {
    Response::builder()
        .status(StatusCode::OK)
        .header(hyper::header::CONTENT_TYPE, "application/vnd.moor.frames")
        .header(hyper::header::CACHE_CONTROL, "no-store")
        .body(Frames(rx).boxed())
        .expect("a valid response")
}

/// The body of a command's answer: the frames, as the channel gives them.
struct Frames(tokio::sync::mpsc::Receiver<Bytes>);

impl hyper::body::Body for Frames {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Infallible>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|bytes| Ok(hyper::body::Frame::data(bytes))))
    }
}
