//! The handshake over an in-memory pipe, the test playing the agent.

use std::sync::Arc;

use moor_proto::{Frame, Hello, Request, Response, MAGIC, PROTOCOL_VERSION};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream, ReadHalf, WriteHalf};

use super::Connection;
use crate::error::Error;

/// The controller's end as a pipelined connection, and the agent's end.
async fn pipelined() -> (
    Arc<Connection>,
    ReadHalf<DuplexStream>,
    WriteHalf<DuplexStream>,
) {
    let (ours, theirs) = tokio::io::duplex(1 << 16);
    let (reader, writer) = tokio::io::split(ours);
    let conn = Connection::handshake_pipelined(Box::new(reader), Box::new(writer), "h".into())
        .await
        .unwrap();
    let (agent_reader, agent_writer) = tokio::io::split(theirs);
    (Arc::new(conn), agent_reader, agent_writer)
}

/// Reads, as the agent, the magic and then `n` frames.
async fn frames(reader: &mut ReadHalf<DuplexStream>, n: usize) -> Vec<Frame> {
    let mut buf = Vec::new();
    let mut got = Vec::new();
    let mut magic_seen = false;
    while got.len() < n {
        let mut chunk = [0u8; 4096];
        let len = reader.read(&mut chunk).await.unwrap();
        assert!(len > 0, "the controller closed the pipe");
        buf.extend_from_slice(&chunk[..len]);
        if !magic_seen && buf.len() >= MAGIC.len() {
            assert_eq!(&buf[..MAGIC.len()], MAGIC);
            buf.drain(..MAGIC.len());
            magic_seen = true;
        }
        while let Some((frame, used)) = Frame::decode(&buf).unwrap().filter(|_| magic_seen) {
            buf.drain(..used);
            got.push(frame);
        }
    }
    got
}

fn hello(protocol: u32) -> Vec<u8> {
    let mut out = b"shell noise\n".to_vec();
    out.extend_from_slice(MAGIC);
    let hello = Hello {
        protocol,
        version: "0.1.0".into(),
        build: "b".into(),
    };
    Response::Hello { hello }
        .to_frame(0)
        .encode(&mut out)
        .unwrap();
    out
}

#[tokio::test]
async fn requests_go_before_the_agents_hello_and_are_answered_after_it() {
    let (conn, mut agent_reader, mut agent_writer) = pipelined().await;
    let asking = conn.clone();
    let call = tokio::spawn(async move { asking.call(&Request::ListRuns).await });
    // The request arrived behind the controller's hello, with no hello
    // from the agent yet.
    let got = frames(&mut agent_reader, 2).await;
    assert!(matches!(got[0].request().unwrap(), Request::Hello { .. }));
    assert!(matches!(got[1].request().unwrap(), Request::ListRuns));
    let mut answer = hello(PROTOCOL_VERSION);
    Response::Runs { runs: Vec::new() }
        .to_frame(got[1].id)
        .encode(&mut answer)
        .unwrap();
    agent_writer.write_all(&answer).await.unwrap();
    let runs = call.await.unwrap().unwrap();
    assert!(matches!(runs, Response::Runs { runs } if runs.is_empty()));
}

#[tokio::test]
async fn a_wrong_hello_fails_waiting_and_later_requests_with_the_handshake_error() {
    let (conn, mut agent_reader, mut agent_writer) = pipelined().await;
    let asking = conn.clone();
    let call = tokio::spawn(async move { asking.call(&Request::ListRuns).await });
    frames(&mut agent_reader, 2).await;
    agent_writer
        .write_all(&hello(PROTOCOL_VERSION + 1))
        .await
        .unwrap();
    let handshake = |result: crate::error::Result<Response>| match result {
        Err(Error::Remote { step, cause, .. }) => {
            assert_eq!(step, "agent handshake");
            assert!(cause.contains("agent protocol"), "{cause}");
        }
        other => panic!("not the handshake's error: {other:?}"),
    };
    handshake(call.await.unwrap());
    // A request after that fails at once rather than waiting for an answer.
    let later = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        conn.call(&Request::ListRuns),
    )
    .await
    .expect("no answer: the request waited on a closed link");
    handshake(later);
}

#[tokio::test]
async fn an_agent_that_closes_before_its_hello_fails_the_request() {
    let (conn, mut agent_reader, agent_writer) = pipelined().await;
    let asking = conn.clone();
    let call = tokio::spawn(async move { asking.call(&Request::ListRuns).await });
    frames(&mut agent_reader, 2).await;
    drop(agent_writer);
    drop(agent_reader);
    match call.await.unwrap() {
        Err(Error::Remote { step, cause, .. }) => {
            assert_eq!(step, "agent handshake");
            assert!(cause.contains("closed"), "{cause}");
        }
        other => panic!("not the handshake's error: {other:?}"),
    }
}
