//! The team server's client: HTTPS to the URL of a login, the server's
//! certificate checked against the pinned fingerprint (a changed one is
//! refused, as a changed host key is), the token sent as a bearer token,
//! every step under a timeout, answers read up to [`MAX_ANSWER`].

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
pub use hyper::Method;
use hyper::Request;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use serde::de::DeserializeOwned;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::net::TcpStream;

use super::api::{ApiError, Fault};
use crate::error::{Error, Result};
use crate::secret::Secret;

/// How long connecting (TCP and TLS) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a request may take once connected.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// The largest answer read.
pub const MAX_ANSWER: usize = 16 * 1024 * 1024;

/// A certificate's fingerprint as moor shows it: `SHA256:` and the
/// unpadded base64 of the SHA-256 of its DER form (as OpenSSH shows keys).
pub fn fingerprint(der: &[u8]) -> String {
    let digest = Sha256::digest(der);
    format!(
        "SHA256:{}",
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(digest)
    )
}

/// A server's address, from a URL `https://HOST[:PORT]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerUrl {
    /// The host (a name or an address; an IPv6 one without brackets).
    pub host: String,
    /// The port (443 when the URL names none).
    pub port: u16,
}

impl ServerUrl {
    /// Parses `https://HOST[:PORT][/]`.
    pub fn parse(url: &str) -> Result<ServerUrl> {
        let bad = |why: &str| {
            Error::usage(
                format!("{url:?} is not a moor server's URL: {why}"),
                "give it as https://HOST:PORT, as `moor server start` printed it",
            )
        };
        let rest = url
            .strip_prefix("https://")
            .ok_or_else(|| bad("it must start with https://"))?;
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#', '@']) || rest.is_empty() {
            return Err(bad("it must be only a host and a port"));
        }
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            let (host, tail) = v6.split_once(']').ok_or_else(|| bad("an unclosed ["))?;
            (host, tail.strip_prefix(':'))
        } else {
            match rest.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (rest, None),
            }
        };
        let port = match port {
            Some(p) => p.parse().map_err(|_| bad("the port is not a number"))?,
            None => 443,
        };
        Ok(ServerUrl {
            host: host.to_owned(),
            port,
        })
    }
}

impl std::fmt::Display for ServerUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "https://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "https://{}:{}", self.host, self.port)
        }
    }
}

/// Checks the server's certificate against a pinned fingerprint (or, with
/// none pinned, only records it and fails the handshake: nothing is sent
/// to a server not yet trusted). The handshake's signatures are checked
/// against the certificate's key as usual.
#[derive(Debug)]
struct Pinned {
    want: Option<String>,
    seen: Mutex<Option<String>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let got = fingerprint(end_entity.as_ref());
        let pinned = self.want.as_deref() == Some(got.as_str());
        *self.seen.lock().unwrap_or_else(|e| e.into_inner()) = Some(got);
        if pinned {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General("not the pinned certificate".into()))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A client of one server, as one login sees it.
pub struct Client {
    url: ServerUrl,
    fingerprint: Option<String>,
    token: Option<Secret>,
}

/// A TLS connection that could not be made, and the certificate seen.
enum Dialed {
    Open(Box<tokio_rustls::client::TlsStream<TcpStream>>),
    /// The handshake failed on the certificate: this one was shown.
    Unpinned(String),
}

impl Client {
    /// A client of `url` that trusts only the certificate `fingerprint`.
    pub fn new(url: ServerUrl, fingerprint: Option<String>, token: Option<Secret>) -> Client {
        Client {
            url,
            fingerprint,
            token,
        }
    }

    /// The server's URL.
    pub fn url(&self) -> &ServerUrl {
        &self.url
    }

    /// The fingerprint of the certificate the server shows (nothing is sent).
    pub async fn certificate(&self) -> Result<String> {
        let probe = Client::new(self.url.clone(), None, None);
        match probe.dial().await? {
            Dialed::Unpinned(seen) => Ok(seen),
            Dialed::Open(_) => unreachable!("nothing is pinned"),
        }
    }

    async fn dial(&self) -> Result<Dialed> {
        let unreachable = |cause: String| self.unavailable(cause);
        let tcp = tokio::time::timeout(
            CONNECT_TIMEOUT,
            TcpStream::connect((self.url.host.as_str(), self.url.port)),
        )
        .await
        .map_err(|_| unreachable(format!("no answer within {}s", CONNECT_TIMEOUT.as_secs())))?
        .map_err(|e| unreachable(e.to_string()))?;
        let _ = tcp.set_nodelay(true);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = Arc::new(Pinned {
            want: self.fingerprint.clone(),
            seen: Mutex::new(None),
            provider: provider.clone(),
        });
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| unreachable(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(verifier.clone())
            .with_no_client_auth();
        let name =
            ServerName::try_from(self.url.host.clone()).map_err(|e| unreachable(e.to_string()))?;
        let handshake = tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp);
        let result = tokio::time::timeout(CONNECT_TIMEOUT, handshake)
            .await
            .map_err(|_| {
                unreachable(format!(
                    "no TLS handshake within {}s",
                    CONNECT_TIMEOUT.as_secs()
                ))
            })?;
        let seen = verifier
            .seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        match (result, seen) {
            (Ok(tls), _) => Ok(Dialed::Open(Box::new(tls))),
            (Err(_), Some(seen)) if self.fingerprint.as_deref() != Some(seen.as_str()) => {
                Ok(Dialed::Unpinned(seen))
            }
            (Err(e), _) => Err(unreachable(format!("TLS: {e}"))),
        }
    }

    fn unavailable(&self, cause: String) -> Error {
        Error::team(Fault::Unavailable, format!("cannot reach the moor server at {}: {cause}", self.url), "check that `moor server start` runs there and that the URL is right (moor whoami shows the one you logged in to)")
    }

    /// Sends a request (with `body` as JSON, if any) and reads the answer.
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> Result<T> {
        let bytes = body
            .map(|b| serde_json::to_vec(b).expect("requests serialize"))
            .unwrap_or_default();
        let answer = self
            .send(method, path, Bytes::from(bytes), "application/json")
            .await?;
        let bytes = self.read_all(answer).await?;
        serde_json::from_slice(&bytes).map_err(|e| {
            self.unavailable(format!(
                "an answer moor cannot read ({e}): update moor to the server's version"
            ))
        })
    }

    /// Sends a request with `body` and returns the answer's head once the
    /// server accepted it (a refusal is the error it carries); its body is
    /// the caller's to read.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Bytes,
        content_type: &str,
    ) -> Result<hyper::Response<hyper::body::Incoming>> {
        let tls = match self.dial().await? {
            Dialed::Open(tls) => tls,
            Dialed::Unpinned(seen) => return Err(self.changed(seen)),
        };
        let request = self.request(method, path, body, content_type)?;
        let exchange = async {
            let (mut sender, conn) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(*tls)).await?;
            tokio::spawn(conn);
            sender.send_request(request).await
        };
        let answer = tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .map_err(|_| {
                self.unavailable(format!("no answer within {}s", REQUEST_TIMEOUT.as_secs()))
            })?
            .map_err(|e| self.unavailable(e.to_string()))?;
        if answer.status().is_success() {
            return Ok(answer);
        }
        let status = answer.status().as_u16();
        let bytes = self.read_all(answer).await?;
        Err(self.refusal(status, &bytes))
    }

    async fn read_all(&self, answer: hyper::Response<hyper::body::Incoming>) -> Result<Bytes> {
        Ok(tokio::time::timeout(
            REQUEST_TIMEOUT,
            Limited::new(answer.into_body(), MAX_ANSWER).collect(),
        )
        .await
        .map_err(|_| self.unavailable("the answer stalled".into()))?
        .map_err(|e| self.unavailable(format!("the answer could not be read: {e}")))?
        .to_bytes())
    }

    fn request(
        &self,
        method: Method,
        path: &str,
        body: Bytes,
        content_type: &str,
    ) -> Result<Request<Full<Bytes>>> {
        let mut builder = Request::builder()
            .method(method)
            .uri(path)
            .header(
                hyper::header::HOST,
                format!("{}:{}", self.url.host, self.url.port),
            )
            .header(hyper::header::CONTENT_TYPE, content_type);
        if let Some(token) = &self.token {
            builder = builder.header(
                hyper::header::AUTHORIZATION,
                format!("Bearer {}", token.expose()),
            );
        }
        builder.body(Full::new(body)).map_err(|e| {
            Error::usage(
                format!("cannot make the request: {e}"),
                "check the names given",
            )
        })
    }

    /// The error of a stream that broke or went quiet.
    pub fn broken(&self, cause: String) -> Error {
        self.unavailable(cause)
    }

    fn refusal(&self, status: u16, bytes: &[u8]) -> Error {
        match serde_json::from_slice::<ApiError>(bytes) {
            Ok(e) => Error::team(
                Fault::of_kind(&e.kind).unwrap_or(Fault::Unavailable),
                e.message,
                e.fix,
            ),
            Err(_) => self.unavailable(format!("it answered HTTP {status} without moor's error")),
        }
    }

    /// The error of a certificate that is not the pinned one.
    pub fn changed(&self, seen: String) -> Error {
        Error::team(Fault::CertificateChanged, format!(
                "the moor server at {} shows certificate {seen}, not the {} this login pinned: it was replaced, or someone is in between",
                self.url,
                self.fingerprint.as_deref().unwrap_or("one")
            ), "ask the server's operator for its fingerprint (moor server start prints it); if it was replaced on purpose, `moor logout` and log in again with --fingerprint")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls_are_https_host_and_port() {
        let at = |host: &str, port| ServerUrl {
            host: host.into(),
            port,
        };
        assert_eq!(
            ServerUrl::parse("https://moor.example:8443").unwrap(),
            at("moor.example", 8443)
        );
        assert_eq!(
            ServerUrl::parse("https://moor.example/").unwrap(),
            at("moor.example", 443)
        );
        assert_eq!(ServerUrl::parse("https://[::1]:9").unwrap(), at("::1", 9));
        assert_eq!(
            ServerUrl::parse("https://[::1]:9").unwrap().to_string(),
            "https://[::1]:9"
        );
        for bad in [
            "http://h:1",
            "h:1",
            "https://",
            "https://h:x",
            "https://u@h:1",
            "https://h:1/api",
        ] {
            assert_eq!(ServerUrl::parse(bad).unwrap_err().exit_code(), 2, "{bad}");
        }
    }

    #[test]
    fn fingerprints_are_openssh_style() {
        let f = fingerprint(b"certificate");
        assert!(f.starts_with("SHA256:") && !f.ends_with('='), "{f}");
        assert_eq!(f.len(), "SHA256:".len() + 43);
    }
}
