//! Run sources sent by members, kept by content: `PUT /v1/sources/SHA`
//! streams a snapshot (the tar `moor run` packs) to `DATA/sources/SHA.tar`,
//! checked against its hash and bounded by [`MAX_SOURCE`] (memory stays one
//! chunk); `GET` says whether the server has it, so a source any member
//! sent already is not sent again. A run unpacks it once into
//! `DATA/sources/SHA/` (nothing in it can write outside that folder).

use std::path::{Path, PathBuf};

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::Request;
use moor::team::api::{Fault, SourceState, MAX_SOURCE};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::db::Refusal;

fn sources(data: &Path) -> PathBuf {
    data.join("sources")
}

fn check_sha(sha: &str) -> Result<(), Refusal> {
    if sha.len() == 64
        && sha
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    {
        return Ok(());
    }
    Err(Refusal::new(
        Fault::BadRequest,
        format!("{sha:?} is not a sha256"),
        "send what `moor` sends",
    ))
}

fn io(what: &str) -> impl Fn(std::io::Error) -> Refusal + '_ {
    move |e| {
        Refusal::new(
            Fault::Unavailable,
            format!("the server cannot {what}: {e}"),
            "the server's operator should check the disk of its folder",
        )
    }
}

/// Whether the server has the source `sha`.
pub fn state(data: &Path, sha: &str) -> Result<SourceState, Refusal> {
    check_sha(sha)?;
    Ok(SourceState {
        present: sources(data).join(format!("{sha}.tar")).exists(),
    })
}

/// Receives the source `sha`.
pub async fn receive(
    data: &Path,
    sha: &str,
    request: Request<Incoming>,
) -> Result<SourceState, Refusal> {
    check_sha(sha)?;
    let dir = sources(data);
    let done = dir.join(format!("{sha}.tar"));
    if done.exists() {
        return Ok(SourceState { present: true });
    }
    moor::private_fs::create_private_dir(&dir).map_err(io("make its sources folder"))?;
    let part = dir.join(format!(".{sha}.{}.part", moor::random::hex(8)));
    let result = write(&part, sha, request.into_body()).await;
    if let Err(e) = result {
        let _ = tokio::fs::remove_file(&part).await;
        return Err(e);
    }
    tokio::fs::rename(&part, &done)
        .await
        .map_err(io("keep the source"))?;
    Ok(SourceState { present: true })
}

async fn write(part: &Path, sha: &str, mut body: Incoming) -> Result<(), Refusal> {
    let mut file = tokio::fs::File::create(part)
        .await
        .map_err(io("write the source"))?;
    let mut hash = Sha256::new();
    let mut size = 0u64;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            Refusal::new(
                Fault::BadRequest,
                format!("the upload broke off: {e}"),
                "run the command again",
            )
        })?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        size += data.len() as u64;
        if size > MAX_SOURCE {
            return Err(Refusal::new(
                Fault::BadRequest,
                format!("the source is over the {} MiB a team server takes", MAX_SOURCE >> 20),
                "leave large files out with .moorignore, or pass --workspace DIR to run from a local workspace",
            ));
        }
        hash.update(&data);
        file.write_all(&data)
            .await
            .map_err(io("write the source"))?;
    }
    file.sync_all().await.map_err(io("write the source"))?;
    let got: String = hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
    if got != sha {
        return Err(Refusal::new(
            Fault::BadRequest,
            format!("the source sent has sha256 {got}, not {sha}"),
            "run the command again",
        ));
    }
    Ok(())
}

/// The folder the source `sha` is unpacked in, unpacking it the first time.
pub async fn unpacked(data: &Path, sha: &str) -> Result<PathBuf, Refusal> {
    check_sha(sha)?;
    let dir = sources(data);
    let tar = dir.join(format!("{sha}.tar"));
    let out = dir.join(sha);
    if out.is_dir() {
        return Ok(out);
    }
    if !tar.exists() {
        return Err(Refusal::new(
            Fault::NotFound,
            format!("the server has no source {sha}"),
            "run the command again: moor sends the source first",
        ));
    }
    let (tar2, out2, sha) = (tar.clone(), out.clone(), sha.to_owned());
    tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        let tmp = out2.with_file_name(format!(".{sha}.{}.unpack", moor::random::hex(8)));
        std::fs::create_dir(&tmp)?;
        let file = std::fs::File::open(&tar2)?;
        let unpacked = moor_proto::archive::unpack_within(file, &tmp, 0);
        if let Err(e) = unpacked {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
        // Another run may have unpacked it meanwhile: either copy is whole.
        if std::fs::rename(&tmp, &out2).is_err() {
            let _ = std::fs::remove_dir_all(&tmp);
        }
        Ok(())
    })
    .await
    .map_err(|e| {
        Refusal::new(
            Fault::Unavailable,
            format!("unpacking the source failed: {e}"),
            "run the command again",
        )
    })?
    .map_err(io("unpack the source"))?;
    Ok(out)
}
