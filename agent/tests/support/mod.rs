//! What the agent's protocol tests share: an agent daemon on a temporary
//! home, in this process, and the controller's client of it.

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use moor::agent_client::AgentClient;
use moor_agent::handler::{self, Daemon};

/// The agent executable (runs are supervised by it).
pub const AGENT: &str = env!("CARGO_BIN_EXE_moor-agent");

/// A daemon on `home`, in this process, and a client of it over
/// `UnixStream::pair()` (the protocol end to end, no SSH).
pub async fn in_process(home: &Path) -> AgentClient {
    let daemon = Arc::new(Daemon::at(home, PathBuf::from(AGENT)));
    let (ours, theirs) = UnixStream::pair().unwrap();
    std::thread::spawn(move || handler::connection(&daemon, theirs));
    ours.set_nonblocking(true).unwrap();
    let stream = tokio::net::UnixStream::from_std(ours).unwrap();
    let (reader, writer) = stream.into_split();
    AgentClient::over(Box::new(reader), Box::new(writer), "in-process".into())
        .await
        .unwrap()
}
