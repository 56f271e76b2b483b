//! A workspace command through the team server: the run's source sent
//! first by content (what the server has is not sent again), then the
//! command line and the secrets its flags name, then the command's stdout
//! and stderr written here as the server streams them, and its exit code.

use std::io::Write;

use bytes::Bytes;
use http_body_util::BodyExt;

use super::api::{Exec, SourceState};
use super::client::{Client, Method};
use super::frames::{Decoder, ALIVE_EVERY, EXIT, STDERR, STDOUT};
use crate::error::{Error, Result};

/// How long the stream may be silent (the server sends a keepalive every
/// [`ALIVE_EVERY`]).
const SILENCE: std::time::Duration = std::time::Duration::from_secs(4 * ALIVE_EVERY.as_secs());

/// Sends the source in `dir` (a snapshot, as `moor run` packs it) unless
/// the server has it; its sha256.
pub async fn upload_source(client: &Client, dir: &std::path::Path) -> Result<String> {
    let dir = dir.to_path_buf();
    let snapshot =
        tokio::task::spawn_blocking(move || crate::snapshot::pack(&dir, super::api::MAX_SOURCE))
            .await
            .map_err(|e| {
                Error::usage(format!("packing the source failed: {e}"), "run it again")
            })??;
    let sha256 = snapshot.sha256.clone();
    let Some(archive) = snapshot.into_archive() else {
        return Err(Error::usage(
            "the source could not be packed as one archive",
            "pass --workspace DIR to run it from a local workspace",
        ));
    };
    let path = format!("/v1/sources/{sha256}");
    let state: SourceState = client.call(Method::GET, &path, None::<&()>).await?;
    if !state.present {
        let answer = client
            .send(
                Method::PUT,
                &path,
                Bytes::from(archive),
                "application/x-tar",
            )
            .await?;
        drop(answer);
    }
    Ok(sha256)
}

/// Runs `exec` on the server, writing its output here; its exit code.
pub async fn exec(client: &Client, exec: &Exec) -> Result<u8> {
    let body = Bytes::from(serde_json::to_vec(exec).expect("requests serialize"));
    let answer = client
        .send(Method::POST, "/v1/exec", body, "application/json")
        .await?;
    let mut body = answer.into_body();
    let mut decoder = Decoder::default();
    loop {
        let frame = tokio::time::timeout(SILENCE, body.frame())
            .await
            .map_err(|_| {
                client.broken(format!(
                    "the command's stream was silent for {}s",
                    SILENCE.as_secs()
                ))
            })?;
        let Some(frame) = frame else {
            return Err(client.broken("the command's stream ended without its exit code".into()));
        };
        let frame = frame.map_err(|e| client.broken(format!("the command's stream broke: {e}")))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        decoder.push(&data);
        while let Some((kind, data)) = decoder.next_frame().map_err(|e| client.broken(e))? {
            match kind {
                STDOUT => write(&mut std::io::stdout().lock(), &data),
                STDERR => write(&mut std::io::stderr().lock(), &data),
                EXIT => return Ok(data.first().copied().unwrap_or(1)),
                _ => {}
            }
        }
    }
}

/// Writes what the command wrote (a closed pipe here, `| head`, is no error).
fn write(out: &mut impl Write, data: &[u8]) {
    let _ = out.write_all(data);
    let _ = out.flush();
}
