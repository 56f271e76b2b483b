//! Random bytes from the kernel: workspace ids and key seeds.

use std::fs::File;
use std::io::{self, Read};

/// Fills `buf` from the kernel's random source.
pub fn fill(buf: &mut [u8]) -> io::Result<()> {
    File::open("/dev/urandom")?.read_exact(buf)
}

/// `n` random bytes as lowercase hex.
pub fn hex(n: usize) -> String {
    let mut buf = vec![0u8; n];
    fill(&mut buf).expect("/dev/urandom is readable");
    moor_proto::hex(&buf)
}
