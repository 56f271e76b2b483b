//! Framing: how messages and bytes cross a byte stream (an SSH channel, a
//! Unix socket).
//!
//! A frame is
//!
//! ```text
//! u32 BE  length of what follows (kind + id + payload), at most MAX_FRAME
//! u8      kind: 1 request, 2 response, 3 data, 4 end
//! u64 BE  request id: ties responses and data to their request
//! [u8]    payload: JSON for requests and responses, raw bytes for data
//! ```
//!
//! Requests and responses carry JSON ([`crate::Request`],
//! [`crate::Response`]); bulk bytes (logs, snapshots, outputs) travel as data
//! frames, not base64 in JSON, and a stream of them ends with an end frame.
//! Ids let one connection carry many requests at once. Decoding never panics
//! and never allocates more than a frame's declared length, which is capped.

use std::fmt;
use std::io::{self, Read, Write};

/// The largest frame, header excluded: 8 MiB.
pub const MAX_FRAME: u32 = 8 << 20;

/// Bytes before the payload: length, kind, id.
pub const HEADER_LEN: usize = 4 + 1 + 8;

/// What a frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    /// A [`crate::Request`], JSON.
    Request = 1,
    /// A [`crate::Response`], JSON.
    Response = 2,
    /// Raw bytes of a stream belonging to the request id.
    Data = 3,
    /// The end of that stream (its payload, when not empty, is the
    /// stream's trailer: for a download, the JSON
    /// [`Trailer`](crate::archive::Trailer): what the agent left out or
    /// did not send again).
    End = 4,
}

impl FrameKind {
    fn from_u8(b: u8) -> Option<FrameKind> {
        match b {
            1 => Some(FrameKind::Request),
            2 => Some(FrameKind::Response),
            3 => Some(FrameKind::Data),
            4 => Some(FrameKind::End),
            _ => None,
        }
    }
}

/// One frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// What it carries.
    pub kind: FrameKind,
    /// The request it belongs to.
    pub id: u64,
    /// Its payload.
    pub payload: Vec<u8>,
}

/// A frame that cannot be read or written.
#[derive(Debug)]
pub enum FrameError {
    /// A declared length over [`MAX_FRAME`] (or under the header).
    BadLength(u32),
    /// A message to send that is over [`MAX_FRAME`]: its size in bytes.
    TooLarge(usize),
    /// An unknown kind byte.
    BadKind(u8),
    /// The stream ended inside a frame.
    Truncated {
        /// Bytes the frame needed.
        wanted: usize,
        /// Bytes there were.
        got: usize,
    },
    /// The payload is not the JSON message its kind promises.
    BadMessage(String),
    /// The transport failed.
    Io(io::Error),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::BadLength(n) => {
                write!(f, "frame length {n} is out of range (9..={MAX_FRAME})")
            }
            FrameError::TooLarge(n) => write!(
                f,
                "a message of {} is over the {} one frame carries",
                crate::human_bytes(*n as u64),
                crate::human_bytes(u64::from(MAX_FRAME))
            ),
            FrameError::BadKind(k) => write!(f, "unknown frame kind {k}"),
            FrameError::Truncated { wanted, got } => {
                write!(f, "stream ended inside a frame ({got} of {wanted} bytes)")
            }
            FrameError::BadMessage(e) => write!(f, "malformed message: {e}"),
            FrameError::Io(e) => write!(f, "transport: {e}"),
        }
    }
}

impl std::error::Error for FrameError {}

impl From<io::Error> for FrameError {
    fn from(e: io::Error) -> Self {
        FrameError::Io(e)
    }
}

impl Frame {
    /// A data frame.
    pub fn data(id: u64, bytes: impl Into<Vec<u8>>) -> Frame {
        Frame {
            kind: FrameKind::Data,
            id,
            payload: bytes.into(),
        }
    }

    /// The header of a data frame of `len` payload bytes, for writers that
    /// put the payload right after it in their own buffer (no copy).
    pub fn data_header(id: u64, len: usize) -> Result<[u8; HEADER_LEN], FrameError> {
        let total = u32::try_from(1 + 8 + len)
            .ok()
            .filter(|l| *l <= MAX_FRAME)
            .ok_or(FrameError::TooLarge(len))?;
        let mut header = [0u8; HEADER_LEN];
        header[..4].copy_from_slice(&total.to_be_bytes());
        header[4] = FrameKind::Data as u8;
        header[5..].copy_from_slice(&id.to_be_bytes());
        Ok(header)
    }

    /// An end-of-stream frame.
    pub fn end(id: u64) -> Frame {
        Frame::end_with(id, Vec::new())
    }

    /// The end of a stream, with a trailer.
    pub fn end_with(id: u64, trailer: Vec<u8>) -> Frame {
        Frame {
            kind: FrameKind::End,
            id,
            payload: trailer,
        }
    }

    /// Appends the encoded frame to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), FrameError> {
        let len = 1 + 8 + self.payload.len();
        let len = u32::try_from(len)
            .ok()
            .filter(|l| *l <= MAX_FRAME)
            .ok_or(FrameError::TooLarge(len))?;
        out.reserve(4 + len as usize);
        out.extend_from_slice(&len.to_be_bytes());
        out.push(self.kind as u8);
        out.extend_from_slice(&self.id.to_be_bytes());
        out.extend_from_slice(&self.payload);
        Ok(())
    }

    /// The encoded frame.
    pub fn to_bytes(&self) -> Result<Vec<u8>, FrameError> {
        let mut out = Vec::with_capacity(HEADER_LEN + self.payload.len());
        self.encode(&mut out)?;
        Ok(out)
    }

    /// Decodes one frame from the front of `buf`: `Ok(None)` when `buf`
    /// holds only part of one (read more), else the frame and the bytes it
    /// took.
    pub fn decode(buf: &[u8]) -> Result<Option<(Frame, usize)>, FrameError> {
        let Some(len_bytes) = buf.get(..4) else {
            return Ok(None);
        };
        let len = u32::from_be_bytes(len_bytes.try_into().expect("4 bytes"));
        if !(9..=MAX_FRAME).contains(&len) {
            return Err(FrameError::BadLength(len));
        }
        // The kind is checked as soon as it arrives, not after the payload.
        if let Some(&kind) = buf.get(4) {
            FrameKind::from_u8(kind).ok_or(FrameError::BadKind(kind))?;
        }
        let total = 4 + len as usize;
        let Some(frame) = buf.get(..total) else {
            return Ok(None);
        };
        let kind = FrameKind::from_u8(frame[4]).expect("checked above");
        let id = u64::from_be_bytes(frame[5..13].try_into().expect("8 bytes"));
        Ok(Some((
            Frame {
                kind,
                id,
                payload: frame[13..].to_vec(),
            },
            total,
        )))
    }
}

/// Reads one frame from a blocking reader: `Ok(None)` on a clean end of
/// stream between frames, `Err(Truncated)` on one inside a frame.
pub fn read_frame<R: Read>(r: &mut R) -> Result<Option<Frame>, FrameError> {
    let mut header = [0u8; HEADER_LEN];
    let got = read_full(r, &mut header)?;
    if got == 0 {
        return Ok(None);
    }
    if got >= 4 {
        let len = u32::from_be_bytes(header[..4].try_into().expect("4 bytes"));
        if !(9..=MAX_FRAME).contains(&len) {
            return Err(FrameError::BadLength(len));
        }
    }
    if got >= 5 {
        FrameKind::from_u8(header[4]).ok_or(FrameError::BadKind(header[4]))?;
    }
    if got < HEADER_LEN {
        return Err(FrameError::Truncated {
            wanted: HEADER_LEN,
            got,
        });
    }
    let len = u32::from_be_bytes(header[..4].try_into().expect("4 bytes")) as usize;
    let mut payload = vec![0u8; len - 9];
    let got = read_full(r, &mut payload)?;
    if got < payload.len() {
        return Err(FrameError::Truncated {
            wanted: HEADER_LEN + payload.len(),
            got: HEADER_LEN + got,
        });
    }
    Ok(Some(Frame {
        kind: FrameKind::from_u8(header[4]).expect("checked above"),
        id: u64::from_be_bytes(header[5..13].try_into().expect("8 bytes")),
        payload,
    }))
}

/// Writes one frame to a blocking writer.
pub fn write_frame<W: Write>(w: &mut W, frame: &Frame) -> Result<(), FrameError> {
    w.write_all(&frame.to_bytes()?)?;
    Ok(())
}

/// Reads until `buf` is full or the stream ends; returns how much was read.
fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}
