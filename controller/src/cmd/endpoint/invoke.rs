//! `moor endpoint invoke NAME --data FILE.json`: one HTTP request to the
//! endpoint, carried by a channel of the target's SSH connection to the
//! endpoint's unix socket (`direct-streamlocal`), or to its port on the
//! host's 127.0.0.1 (`direct-tcpip`), as `ssh -L` would, without a local
//! port. The answer's body is printed as it is.

use std::io::Read;
use std::time::{Duration, Instant};

use moor_proto::endpoint::EndpointState;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::manage::locate;
use crate::cli::EndpointInvokeArgs;
use crate::cmd::Context;
use crate::error::{exit, Error, Result};
use crate::output::{Render, Text};
use crate::reach::Access;

/// Largest request body read.
const MAX_REQUEST: u64 = 256 << 20;
/// Largest answer kept (head and body).
const MAX_ANSWER: usize = 256 << 20;
/// How long the channel to the port may take to open.
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);

/// An endpoint's answer.
#[derive(Debug, Serialize)]
pub struct Invoked {
    /// The endpoint.
    pub endpoint: String,
    /// Its target.
    pub target: String,
    /// The HTTP status.
    pub status: u16,
    /// The body: JSON when it parses as JSON, else text.
    pub body: serde_json::Value,
    /// From sending the request to the end of the answer, in milliseconds.
    pub ms: f64,
    #[serde(skip)]
    raw: Vec<u8>,
}

impl Render for Invoked {
    fn render(&self, out: &mut Text) {
        let text = String::from_utf8_lossy(&self.raw);
        out.raw(&text);
        if !text.ends_with('\n') {
            out.raw("\n");
        }
        if self.status >= 400 {
            out.note(format!(
                "moor: endpoint {} answered HTTP {}",
                self.endpoint, self.status
            ));
        }
    }

    fn exit_code(&self) -> u8 {
        if self.status >= 400 {
            exit::REMOTE
        } else {
            exit::OK
        }
    }
}

/// `moor endpoint invoke`.
pub async fn invoke(args: &EndpointInvokeArgs, ctx: &Context) -> Result<Invoked> {
    let body = request_body(args)?;
    let target = locate(ctx, &args.endpoint)?;
    let access = Access::from_args(&args.endpoint.connect)?;
    // Its own SSH session: the request goes through it to the port.
    let conn = ctx.targets.connect_direct(&target, &access).await?;
    let endpoint = conn.agent.endpoint(&args.endpoint.name).await?;
    if matches!(
        endpoint.state,
        EndpointState::Stopped | EndpointState::Failed
    ) {
        conn.close().await;
        let name = &endpoint.name;
        return Err(Error::Remote {
            host: target.name.clone(),
            step: "endpoint invoke",
            cause: format!("endpoint {name} is {}", endpoint.state.as_str()),
            fix: format!("`moor endpoint start {name}` (see `moor endpoint show {name}`)"),
        });
    }
    let host = match &endpoint.socket {
        Some(_) => "localhost".to_owned(),
        None => format!("127.0.0.1:{}", endpoint.port),
    };
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: moor\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        args.path,
        body.len()
    );
    let limit = Duration::from_secs(args.timeout);
    let started = Instant::now();
    let unreached = |e: std::io::Error| failed(&args.endpoint.name, &target.name, e.to_string());
    let answer = match (conn.session(), &endpoint.socket) {
        (Some(session), Some(socket)) => {
            let channel = session.direct_streamlocal(socket, OPEN_TIMEOUT).await?;
            exchange(channel, &head, &body, limit).await
        }
        (Some(session), None) => {
            let channel = session
                .direct_tcpip("127.0.0.1", endpoint.port, OPEN_TIMEOUT)
                .await?;
            exchange(channel, &head, &body, limit).await
        }
        (None, Some(socket)) => {
            let stream = tokio::net::UnixStream::connect(socket)
                .await
                .map_err(unreached)?;
            exchange(stream, &head, &body, limit).await
        }
        (None, None) => {
            let stream = tokio::net::TcpStream::connect(("127.0.0.1", endpoint.port))
                .await
                .map_err(unreached)?;
            exchange(stream, &head, &body, limit).await
        }
    };
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    conn.close().await;
    let (status, raw) = answer.map_err(|why| failed(&args.endpoint.name, &target.name, why))?;
    let body = serde_json::from_slice(&raw)
        .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&raw).into_owned()));
    Ok(Invoked {
        endpoint: endpoint.name,
        target: target.name,
        status,
        body,
        ms,
        raw,
    })
}

fn failed(name: &str, target: &str, why: String) -> Error {
    Error::Remote {
        host: target.to_owned(),
        step: "endpoint invoke",
        cause: format!("endpoint {name}: {why}"),
        fix: format!("see `moor endpoint show {name}` and `moor endpoint logs {name}`"),
    }
}

/// The body: `--data FILE`, or standard input (`-` or no `--data`, not a
/// terminal).
fn request_body(args: &EndpointInvokeArgs) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    match args.data.as_deref().filter(|p| p.as_os_str() != "-") {
        Some(path) => {
            let file = std::fs::File::open(path).map_err(|cause| Error::Io {
                what: "cannot read the request",
                path: path.to_owned(),
                cause,
            })?;
            file.take(MAX_REQUEST).read_to_end(&mut body)
        }
        None => {
            if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
                return Err(Error::usage(
                    "no request body: --data was not given and standard input is a terminal",
                    "give --data FILE.json, or pipe the JSON in",
                ));
            }
            std::io::stdin().take(MAX_REQUEST).read_to_end(&mut body)
        }
    }
    .map_err(|cause| Error::Io {
        what: "cannot read the request",
        path: args.data.clone().unwrap_or_else(|| "-".into()),
        cause,
    })?;
    Ok(body)
}

/// Sends the request and reads the whole answer (the server closes the
/// connection); the status and the body, de-chunked.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    head: &str,
    body: &[u8],
    limit: Duration,
) -> std::result::Result<(u16, Vec<u8>), String> {
    let talk = async {
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(body).await?;
        stream.flush().await?;
        let mut answer = Vec::new();
        (&mut stream)
            .take(MAX_ANSWER as u64 + 1)
            .read_to_end(&mut answer)
            .await?;
        Ok::<_, std::io::Error>(answer)
    };
    let answer = tokio::time::timeout(limit, talk)
        .await
        .map_err(|_| format!("no answer within {} s", limit.as_secs()))?
        .map_err(|e| format!("the connection to its port failed: {e}"))?;
    if answer.len() > MAX_ANSWER {
        return Err(format!(
            "its answer is larger than {} MiB (reach it with `moor forward`)",
            MAX_ANSWER >> 20
        ));
    }
    parse_answer(&answer)
}

/// An HTTP/1.1 answer's status and body (`Transfer-Encoding: chunked`
/// undone).
fn parse_answer(answer: &[u8]) -> std::result::Result<(u16, Vec<u8>), String> {
    let end = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("its answer is not HTTP (no end of headers); is the port its server's?")?;
    let head = String::from_utf8_lossy(&answer[..end]);
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.strip_prefix("HTTP/1."))
        .and_then(|l| l.get(2..5))
        .and_then(|code| code.parse().ok())
        .ok_or("its answer has no HTTP status line")?;
    let chunked = lines.any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let body = &answer[end + 4..];
    if !chunked {
        return Ok((status, body.to_vec()));
    }
    let mut out = Vec::new();
    let mut rest = body;
    loop {
        let line_end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("a chunked answer was cut short")?;
        let size_text = String::from_utf8_lossy(&rest[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| "a chunked answer has a bad chunk size")?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok((status, out));
        }
        if rest.len() < size {
            return Err("a chunked answer was cut short".into());
        }
        out.extend_from_slice(&rest[..size]);
        rest = rest.get(size + 2..).unwrap_or(&[]);
    }
}

#[cfg(test)]
mod tests {
    use super::parse_answer;

    #[test]
    fn answers_plain_and_chunked_give_their_body() {
        let plain = b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n{\"y\":1}";
        assert_eq!(parse_answer(plain).unwrap(), (200, b"{\"y\":1}".to_vec()));
        let chunked =
            b"HTTP/1.1 500 Error\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n3;x=1\r\nefg\r\n0\r\n\r\n";
        assert_eq!(parse_answer(chunked).unwrap(), (500, b"abcdefg".to_vec()));
        assert!(parse_answer(b"SSH-2.0-OpenSSH_9.2\r\n").is_err());
        assert!(
            parse_answer(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n9\r\nab").is_err()
        );
    }
}
