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

/// Opens the run file at `path`; with `follow`, waits (`wait`) while it is
/// not there and the run goes on. `Err` when there is no file to read: the
/// ended run (`ended`, when following), or none.
///
/// The state is read before each try to open (issue 41): a run that was
/// not over before a failed open may have made its log, run and ended
/// since, so only a run already over before the open has no log to come.
/// Read after the failed open, a short run's end was taken for the end of
/// a log that was never read.
fn open_log(
    path: &std::path::Path,
    follow: bool,
    mut ended: impl FnMut() -> io::Result<Option<moor_proto::RunInfo>>,
    mut wait: impl FnMut(),
) -> io::Result<Result<fs::File, Option<moor_proto::RunInfo>>> {
    loop {
        let over = if follow { ended()? } else { None };
        match fs::File::open(path) {
            Ok(file) => return Ok(Ok(file)),
            Err(_) if follow && over.is_none() => wait(),
            Err(_) => return Ok(Err(over)),
        }
    }
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
    let state = || -> io::Result<Option<moor_proto::RunInfo>> {
        Ok(Some(runs.info(run_id)?).filter(|run| run.state.is_final()))
    };
    let mut file = match open_log(&path, follow, state, || wait(&mut idle))? {
        Ok(file) => file,
        Err(ended) => {
            let trailer = match ended {
                Some(run) => serde_json::to_vec(&run).map_err(io::Error::other)?,
                None => Vec::new(),
            };
            return send(writer, &Frame::end_with(id, trailer));
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

#[cfg(test)]
mod tests {
    use super::open_log;
    use moor_proto::{RunInfo, RunState};

    fn ended_run() -> RunInfo {
        serde_json::from_value(serde_json::json!({
            "id": "20261207T180000-0a0b0c0d",
            "state": "succeeded",
            "command": ["true"],
            "snapshot": "",
            "created_at": "2026-12-07T18:00:00Z",
            "log_bytes": 4
        }))
        .unwrap()
    }

    /// The run makes its log, runs and ends between the stream's first
    /// failed open and its reading of the state (as a short run on a loaded
    /// host does): the log is still opened and read, never taken for
    /// absent. Read in the old order (open, then state) this gave no log.
    #[test]
    fn a_run_that_ends_as_its_log_is_first_opened_keeps_its_log() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        let mut looks = 0;
        let state = || {
            looks += 1;
            if looks == 1 {
                // The whole run happens now: its log, then its end.
                std::fs::write(&log, "run\n").unwrap();
                return Ok(Some(ended_run()));
            }
            Ok(Some(ended_run()))
        };
        let opened = open_log(&log, true, state, || {}).unwrap();
        let mut text = String::new();
        std::io::Read::read_to_string(&mut opened.expect("the log is read"), &mut text).unwrap();
        assert_eq!(text, "run\n");
    }

    #[test]
    fn a_run_over_with_no_log_ends_the_stream_with_the_run() {
        let dir = tempfile::tempdir().unwrap();
        let mut waits = 0;
        let mut looks = 0;
        let state = || {
            looks += 1;
            Ok((looks > 3).then(ended_run))
        };
        let opened = open_log(&dir.path().join("log"), true, state, || waits += 1).unwrap();
        let ended = opened.expect_err("no log");
        assert_eq!(ended.map(|r| r.state), Some(RunState::Succeeded));
        assert_eq!(waits, 3, "waited while the run went on");
        let not_followed = open_log(&dir.path().join("log"), false, || unreachable!(), || {});
        assert!(matches!(not_followed, Ok(Err(None))));
    }
}
