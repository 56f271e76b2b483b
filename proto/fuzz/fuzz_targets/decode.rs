//! Fuzzes the frame decoder and message parsing: any input must give a
//! frame, a request for more bytes, or an error; never a panic, and what is
//! accepted re-encodes to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use moor_proto::{read_frame, Frame};

fuzz_target!(|data: &[u8]| {
    if let Ok(Some((frame, used))) = Frame::decode(data) {
        assert_eq!(frame.to_bytes().unwrap(), &data[..used]);
        let _ = frame.request();
        let _ = frame.response();
    }
    let mut cursor = std::io::Cursor::new(data);
    while let Ok(Some(_)) = read_frame(&mut cursor) {}
});
