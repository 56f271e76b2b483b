//! The frames of a command run through a team server (`POST /v1/exec`):
//! the answer's body is a sequence of `[kind: u8][length: u32 BE][data]`,
//! stdout and stderr as the command writes them, a keepalive while it is
//! quiet, and last its exit code. Both ends use this one definition.

use bytes::{Buf, Bytes, BytesMut};

/// Bytes the command wrote to its stdout.
pub const STDOUT: u8 = 1;
/// Bytes it wrote to its stderr.
pub const STDERR: u8 = 2;
/// Its exit code (one byte), the last frame.
pub const EXIT: u8 = 3;
/// Nothing: the command is quiet, the server is there.
pub const ALIVE: u8 = 4;

/// The largest frame's data.
pub const MAX_FRAME: usize = 1 << 20;

/// How often the server sends [`ALIVE`] while the command is quiet.
pub const ALIVE_EVERY: std::time::Duration = std::time::Duration::from_secs(15);

/// One frame, encoded.
pub fn encode(kind: u8, data: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(5 + data.len());
    out.extend_from_slice(&[kind]);
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(data);
    out.freeze()
}

/// Reassembles frames from the body's chunks, holding at most one frame.
#[derive(Default)]
pub struct Decoder {
    buf: BytesMut,
}

impl Decoder {
    /// Adds a chunk of the body.
    pub fn push(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    /// The next whole frame, if one is in; an error for a frame over
    /// [`MAX_FRAME`] or of an unknown kind.
    pub fn next_frame(&mut self) -> Result<Option<(u8, Bytes)>, String> {
        if self.buf.len() < 5 {
            return Ok(None);
        }
        let kind = self.buf[0];
        let len = u32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]]) as usize;
        if !(STDOUT..=ALIVE).contains(&kind) || len > MAX_FRAME {
            return Err(format!("a frame of kind {kind} and {len} bytes"));
        }
        if self.buf.len() < 5 + len {
            return Ok(None);
        }
        self.buf.advance(5);
        Ok(Some((kind, self.buf.split_to(len).freeze())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_come_back_whole_however_the_body_is_cut() {
        let mut body = Vec::new();
        body.extend_from_slice(&encode(STDOUT, b"hello\n"));
        body.extend_from_slice(&encode(ALIVE, b""));
        body.extend_from_slice(&encode(STDERR, &[7u8; 3000]));
        body.extend_from_slice(&encode(EXIT, &[3]));
        for cut in [1, 2, 5, 7, 100, body.len()] {
            let mut decoder = Decoder::default();
            let mut got = Vec::new();
            for chunk in body.chunks(cut) {
                decoder.push(chunk);
                while let Some(frame) = decoder.next_frame().unwrap() {
                    got.push(frame);
                }
            }
            assert_eq!(got.len(), 4, "cut {cut}");
            assert_eq!(got[0], (STDOUT, Bytes::from_static(b"hello\n")));
            assert_eq!(got[2].1.len(), 3000);
            assert_eq!(got[3], (EXIT, Bytes::from_static(&[3])));
        }
    }

    #[test]
    fn an_oversized_or_unknown_frame_is_an_error() {
        let mut decoder = Decoder::default();
        decoder.push(&[STDOUT, 0xff, 0xff, 0xff, 0xff]);
        assert!(decoder.next_frame().is_err());
        let mut decoder = Decoder::default();
        decoder.push(&[9, 0, 0, 0, 0]);
        assert!(decoder.next_frame().is_err());
    }
}
