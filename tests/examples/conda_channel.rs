//! Writes the test conda channel (real `.conda` packages) into a directory,
//! for benchmarks and trying `moor env prepare --channel-dir` by hand:
//! `cargo run -p moor-tests --example conda_channel -- DIR`.

fn main() {
    let dir = std::env::args().nth(1).expect("usage: conda_channel DIR");
    std::fs::create_dir_all(&dir).expect("create the channel directory");
    moor_tests::packages::conda_channel(std::path::Path::new(&dir));
}
