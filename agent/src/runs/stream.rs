//! A run's growing files (its log, its MLflow records) streamed to the
//! controller: from a byte offset, and with `follow` until the run ends,
//! the ended run then in the end frame's trailer.

use std::fs;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::time::Duration;

use moor_proto::frame::HEADER_LEN;
use moor_proto::{ErrorKind, Frame, Response};

use std::os::unix::net::UnixStream;
use std::sync::Mutex;

use crate::runs::Runs;
use crate::sys::send_frame as send;

/// Answers a request for the run file `name`: not found, or the stream's
/// start and then [`stream`].
pub fn answer(
    runs: &Runs,
    writer: &Mutex<UnixStream>,
    id: u64,
    run_id: &str,
    name: &str,
    offset: u64,
    follow: bool,
) -> io::Result<()> {
    if runs.info(run_id).is_err() {
        let missing = Response::error(ErrorKind::NotFound, format!("no run {run_id}"));
        return send(writer, &missing.to_frame(id));
    }
    send(writer, &Response::Stream { offset, run: None }.to_frame(id))?;
    stream(runs, writer, id, run_id, name, offset, follow)
}

/// Sends the run file `name` (its log, its MLflow records) from `offset`
/// as data frames; with `follow`, until the run
/// has ended and every byte is sent, the ended run (JSON) then in the end
/// frame's trailer: the follower needs no other request to learn how it
/// ended.
pub fn stream(
    runs: &Runs,
    writer: &Mutex<UnixStream>,
    id: u64,
    run_id: &str,
    name: &str,
    offset: u64,
    follow: bool,
) -> io::Result<()> {
    let path = runs.dir(run_id).join(name);
    // Polled at 1 ms, then less often while nothing happens (25 ms at most):
    // a short run's end is seen at once, a quiet long one costs little.
    let mut idle = Duration::from_millis(1);
    let wait = |idle: &mut Duration| {
        std::thread::sleep(*idle);
        *idle = (*idle * 2).min(Duration::from_millis(25));
    };
    let mut file = loop {
        match fs::File::open(&path) {
            Ok(f) => break f,
            Err(_) if follow && !runs.info(run_id)?.state.is_final() => wait(&mut idle),
            Err(_) => return send(writer, &Frame::end(id)),
        }
    };
    file.seek(SeekFrom::Start(offset))?;
    // Read straight behind a frame header and write header and bytes at once.
    let mut buf = vec![0u8; HEADER_LEN + 256 * 1024];
    let mut send_chunk = |file: &mut fs::File| -> io::Result<usize> {
        let n = file.read(&mut buf[HEADER_LEN..])?;
        if n > 0 {
            let header = Frame::data_header(id, n).map_err(io::Error::other)?;
            buf[..HEADER_LEN].copy_from_slice(&header);
            writer
                .lock()
                .expect("writer lock")
                .write_all(&buf[..HEADER_LEN + n])?;
        }
        Ok(n)
    };
    loop {
        if send_chunk(&mut file)? > 0 {
            idle = Duration::from_millis(1);
            continue;
        }
        // At the end of what is written: done, unless following a live run.
        // The state is read before the last read, so no final bytes are lost.
        let ended = if follow {
            Some(runs.info(run_id)?).filter(|run| run.state.is_final())
        } else {
            None
        };
        if !follow || ended.is_some() {
            if send_chunk(&mut file)? > 0 {
                continue;
            }
            let trailer = match ended {
                Some(run) => serde_json::to_vec(&run).map_err(io::Error::other)?,
                None => Vec::new(),
            };
            return send(writer, &Frame::end_with(id, trailer));
        }
        wait(&mut idle);
    }
}
