//! The dashboard's HTTP rules: who may ask (the `Host` must be this
//! machine's loopback name and port, and every page and API request must
//! carry the token), the answers' shapes (JSON, errors as `--json` prints
//! them, embedded files) and the headers every answer carries (a strict
//! content security policy, no caching, no framing, no referrer).

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame};
use hyper::header::{HeaderName, HeaderValue};
use hyper::{HeaderMap, Response, StatusCode};
use serde::Serialize;

use crate::error::Error;

/// Every answer's body.
pub type Answer = Response<BoxBody<Bytes, Infallible>>;

/// The header a page sends its token in.
pub const TOKEN_HEADER: &str = "x-moor-token";

/// Whether the request is for this server by its loopback name: a page of
/// another site that resolves its name to 127.0.0.1 (DNS rebinding) sends
/// its own name and is refused.
pub fn host_allowed(headers: &HeaderMap, port: u16) -> bool {
    let Some(host) = headers
        .get(hyper::header::HOST)
        .and_then(|h| h.to_str().ok())
    else {
        return false;
    };
    ["127.0.0.1", "localhost"]
        .iter()
        .any(|name| host == format!("{name}:{port}"))
}

/// Whether the request carries the token: in the `X-Moor-Token` header
/// (the page's requests), or as `token=` in the query (the URL moor
/// printed, and GETs only).
pub fn has_token(headers: &HeaderMap, query: &str, token: &str, get: bool) -> bool {
    let given = headers
        .get(TOKEN_HEADER)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| get.then(|| query_value(query, "token")).flatten());
    given.is_some_and(|given| moor_proto::same_secret(given.as_bytes(), token.as_bytes()))
}

/// The first value of `name` in a query string, percent-decoded.
pub fn query_value(query: &str, name: &str) -> Option<String> {
    query_values(query, name).into_iter().next()
}

/// Every value of `name` in a query string, percent-decoded.
pub fn query_values(query: &str, name: &str) -> Vec<String> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
        .filter(|(key, _)| *key == name)
        .filter_map(|(_, value)| percent_decode(value))
        .collect()
}

/// `%XX` and `+` decoded; `None` when not UTF-8 or malformed.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// Headers every answer carries: nothing outside this server may load or
/// frame the page, and no URL (with its token) leaves in a Referer.
fn secure(mut response: Answer) -> Answer {
    let headers = response.headers_mut();
    let set = |headers: &mut HeaderMap, name: &'static str, value: &'static str| {
        headers.insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    };
    set(
        headers,
        "content-security-policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    );
    set(headers, "x-content-type-options", "nosniff");
    set(headers, "referrer-policy", "no-referrer");
    set(headers, "x-frame-options", "DENY");
    set(headers, "cache-control", "no-store");
    response
}

/// An answer of `status` with `body` of `content_type`.
pub fn bytes(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Answer {
    let mut response = Response::new(Full::new(body.into()).boxed());
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        HeaderValue::from_static(content_type),
    );
    secure(response)
}

/// `value` as JSON, 200.
pub fn json<T: Serialize>(value: &T) -> Answer {
    match serde_json::to_vec(value) {
        Ok(body) => bytes(StatusCode::OK, "application/json", body),
        Err(e) => problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            &format!("cannot write the answer as JSON: {e}"),
            "report this as a bug",
        ),
    }
}

/// An error answer, in the shape `--json` prints errors: `{"ok": false,
/// "error": {kind, message, fix, exit_code}}`.
pub fn problem(status: StatusCode, kind: &str, message: &str, fix: &str) -> Answer {
    let body = serde_json::json!({
        "ok": false,
        "error": {"kind": kind, "message": message, "fix": fix},
    });
    bytes(status, "application/json", body.to_string())
}

/// A command's error as an answer (its kind, cause, fix and exit code):
/// 502 when a target did not answer, 400 for a wrong request, 404 for a
/// run not found, else 500.
pub fn error(e: &Error) -> Answer {
    let error = crate::output::ErrorJson::from(e);
    let status = match (error.exit_code, error.kind) {
        (_, "not_found" | "no_target" | "no_env") => StatusCode::NOT_FOUND,
        (crate::error::exit::UNREACHABLE, _) => StatusCode::BAD_GATEWAY,
        (crate::error::exit::USAGE, _) => StatusCode::BAD_REQUEST,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let body = serde_json::json!({"ok": false, "error": error});
    bytes(status, "application/json", body.to_string())
}

/// The most bytes a stream holds for a page that reads slower than they
/// come; beyond it the stream ends with a note (the page reconnects from
/// where it was).
pub const STREAM_QUEUE: usize = 8 << 20;

/// A body whose bytes are sent as a task produces them (a log as it
/// grows); the task is stopped when the page goes away.
pub struct Streamed {
    receiver: tokio::sync::mpsc::UnboundedReceiver<Bytes>,
    queued: Arc<AtomicUsize>,
    task: tokio::task::AbortHandle,
}

/// The producing side of a [`Streamed`] body.
#[derive(Clone)]
pub struct StreamSender {
    sender: tokio::sync::mpsc::UnboundedSender<Bytes>,
    queued: Arc<AtomicUsize>,
}

impl StreamSender {
    /// Queues `bytes`; false when the page is gone or reads too slowly
    /// (more than [`STREAM_QUEUE`] waiting): the producer stops then.
    pub fn send(&self, bytes: &[u8]) -> bool {
        if self.queued.load(Ordering::Relaxed) + bytes.len() > STREAM_QUEUE {
            return false;
        }
        self.queued.fetch_add(bytes.len(), Ordering::Relaxed);
        self.sender.send(Bytes::copy_from_slice(bytes)).is_ok()
    }

    /// Queues `bytes` whatever is waiting (the stream's last note).
    pub fn send_anyway(&self, bytes: &[u8]) {
        self.queued.fetch_add(bytes.len(), Ordering::Relaxed);
        let _ = self.sender.send(Bytes::copy_from_slice(bytes));
    }
}

/// A streamed answer of `content_type`, produced by `produce` on a task of
/// its own.
pub fn streamed<F, Fut>(content_type: &'static str, produce: F) -> Answer
where
    F: FnOnce(StreamSender) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
    let queued = Arc::new(AtomicUsize::new(0));
    let producer = produce(StreamSender {
        sender,
        queued: queued.clone(),
    });
    let task = tokio::spawn(producer).abort_handle();
    let body = Streamed {
        receiver,
        queued,
        task,
    };
    let mut response = Response::new(body.boxed());
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        HeaderValue::from_static(content_type),
    );
    secure(response)
}

impl Body for Streamed {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.receiver.poll_recv(cx) {
            Poll::Ready(Some(bytes)) => {
                self.queued.fetch_sub(bytes.len(), Ordering::Relaxed);
                Poll::Ready(Some(Ok(Frame::data(bytes))))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for Streamed {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The request's body, at most `limit` bytes (more: 413, the limit named).
pub async fn read_body(
    body: hyper::body::Incoming,
    limit: usize,
) -> std::result::Result<Bytes, Answer> {
    match http_body_util::Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(_) => Err(problem(
            StatusCode::PAYLOAD_TOO_LARGE,
            "bad_request",
            &format!("the request's body is larger than {limit} bytes, or was cut"),
            "send a smaller request",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn only_the_loopback_names_of_this_port_are_served() {
        assert!(host_allowed(&headers(&[("host", "127.0.0.1:8650")]), 8650));
        assert!(host_allowed(&headers(&[("host", "localhost:8650")]), 8650));
        assert!(!host_allowed(&headers(&[("host", "127.0.0.1:8651")]), 8650));
        assert!(!host_allowed(
            &headers(&[("host", "evil.example:8650")]),
            8650
        ));
        assert!(!host_allowed(&headers(&[]), 8650));
    }

    #[test]
    fn the_token_comes_in_the_header_or_in_a_get_s_query() {
        let t = "abc123";
        assert!(has_token(&headers(&[(TOKEN_HEADER, t)]), "", t, false));
        assert!(has_token(&headers(&[]), "x=1&token=abc123", t, true));
        assert!(!has_token(&headers(&[]), "token=abc123", t, false));
        assert!(!has_token(
            &headers(&[(TOKEN_HEADER, "abc12")]),
            "",
            t,
            true
        ));
        assert!(!has_token(&headers(&[]), "token=", t, true));
    }

    #[test]
    fn a_stream_holds_a_bounded_queue_for_a_slow_page() {
        let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel();
        let sender = StreamSender {
            sender,
            queued: Arc::new(AtomicUsize::new(0)),
        };
        let chunk = vec![b'x'; 1 << 20];
        let mut sent = 0;
        while sender.send(&chunk) {
            sent += 1;
        }
        assert_eq!(sent, STREAM_QUEUE >> 20, "whole chunks up to the bound");
        // The stream's last note goes in anyway.
        sender.send_anyway(b"note");
        let mut got = 0;
        while let Ok(bytes) = receiver.try_recv() {
            got += bytes.len();
        }
        assert_eq!(got, STREAM_QUEUE + 4);
    }

    #[test]
    fn query_values_are_decoded() {
        let q = "run=a%2Fb&run=c&key=val+loss&bad=%zz";
        assert_eq!(query_values(q, "run"), vec!["a/b", "c"]);
        assert_eq!(query_value(q, "key").as_deref(), Some("val loss"));
        assert_eq!(query_value(q, "bad"), None);
        assert_eq!(query_value(q, "none"), None);
    }
}
