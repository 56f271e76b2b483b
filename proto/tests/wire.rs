//! Round trips of every message type through frames, and a decoder that
//! survives garbage: truncated, oversized and random input is an error (or a
//! request for more bytes), never a panic or a huge allocation.

use std::collections::BTreeMap;
use std::io::Cursor;

use moor_proto::env::*;
use moor_proto::*;

fn hello() -> Hello {
    Hello {
        protocol: PROTOCOL_VERSION,
        version: "0.1.0".into(),
        build: "ab".repeat(32),
    }
}

fn run_info() -> RunInfo {
    RunInfo {
        id: "r-1".into(),
        name: Some("train".into()),
        state: RunState::Running,
        exit_code: None,
        signal: None,
        command: vec!["python3".into(), "train.py".into()],
        snapshot: "cd".repeat(32),
        environment: None,
        created_at: "2026-11-27T18:00:00Z".into(),
        started_at: Some("2026-11-27T18:00:01Z".into()),
        ended_at: None,
        log_bytes: 42,
        spark: Some(SparkSpec {
            master: "yarn".into(),
            conf: vec!["spark.executor.memory=2g".into()],
        }),
        yarn_application: Some("application_1732700000000_0042".into()),
        error: None,
        env_names: vec!["WANDB_MODE".into()],
        metrics: [("loss".to_owned(), moor_proto::tracking::Latest(0.25))].into(),
    }
}

fn env_spec() -> EnvSpec {
    EnvSpec {
        docker: Some(DockerSpec {
            base: Some("debian:12".into()),
            ..DockerSpec::default()
        }),
        conda: Some(CondaSpec {
            channels: vec!["conda-forge".into()],
            dependencies: vec!["python 3.11.*".into()],
            pip: vec!["scikit-learn==1.5.2".into()],
            variables: Default::default(),
        }),
        pip: None,
        user_managed: false,
    }
}

fn env_info() -> EnvInfo {
    EnvInfo {
        hash: env_spec().hash(),
        kind: EnvKind::Docker,
        state: EnvState::Failed,
        build_run: Some("r-2".into()),
        prefix: None,
        image: Some(image_tag(&env_spec().hash())),
        ready_at: None,
        error: Some("no such package".into()),
        fix: Some("add the channel that has it".into()),
    }
}

fn endpoint_info() -> moor_proto::endpoint::EndpointInfo {
    moor_proto::endpoint::EndpointInfo {
        name: "sum".into(),
        state: moor_proto::endpoint::EndpointState::Failed,
        port: 8080,
        address: "0.0.0.0".into(),
        socket: Some("/home/u/.moor/endpoints/sum/sock".into()),
        health_path: "/ready".into(),
        server: moor_proto::endpoint::Server::Command {
            command: vec!["python3".into(), "server.py".into()],
        },
        model: Some(moor_proto::endpoint::ModelSource::Snapshot {
            sha256: "ab".repeat(32),
        }),
        environment: None,
        run_id: "r-2".into(),
        restarts: 3,
        last_exit: Some("exit 3".into()),
        healthy_since: None,
        created_at: "2026-11-29T23:00:00Z".into(),
        error: Some("its server ended (exit 3) before it answered".into()),
        log_tail: vec!["Traceback".into()],
    }
}

fn all_requests() -> Vec<Request> {
    vec![
        Request::Hello { hello: hello() },
        Request::Ping,
        Request::Status,
        Request::HasSnapshot {
            sha256: "ab".repeat(32),
        },
        Request::PutSnapshot {
            sha256: "ab".repeat(32),
            size: 1234,
        },
        Request::PutTree {
            sha256: "ab".repeat(32),
            size: 99,
        },
        Request::PutBlobs {
            count: 2,
            size: 1 << 20,
            build: Some("ab".repeat(32)),
        },
        Request::BuildTree {
            sha256: "ab".repeat(32),
        },
        Request::StartRunFollowing {
            spec: RunSpec {
                command: vec!["true".into()],
                ..RunSpec::default()
            },
        },
        Request::StartRun {
            spec: RunSpec {
                name: Some("n".into()),
                snapshot: "ab".repeat(32),
                command: vec!["sh".into(), "-c".into(), "echo 'hi'".into()],
                env: BTreeMap::from([("K".into(), "V".into())]),
                environment: Some("ab".repeat(32)),
                spark: Some(SparkSpec {
                    master: "local[*]".into(),
                    conf: vec![],
                }),
                inputs: BTreeMap::from([("data".into(), "cd".repeat(32))]),
                url_inputs: BTreeMap::from([("csv".into(), "https://x.org/a.csv".into())]),
                outputs: vec!["model".into()],
                hold: true,
                processes: Some(moor_proto::Processes {
                    count: 2,
                    first_rank: 2,
                    world_size: 4,
                }),
                mpi: Some(moor_proto::MpiRole::Peer {
                    public_key: "ssh-ed25519 AAAA moor-job".into(),
                    from: "10.0.0.1".into(),
                }),
                gpus: 2,
                link: Some(Box::new(moor_proto::JobLink {
                    hub: "10.0.0.1:29501".into(),
                    token: "ab".repeat(16),
                    rank: 1,
                    nodes: 2,
                    grace: 10,
                })),
                serving: Some(Box::new(moor_proto::run::Serving {
                    name: "iris".into(),
                    port: 5001,
                    address: "127.0.0.1".into(),
                    health_path: "/".into(),
                    socket: Some("/home/u/.moor/endpoints/iris/sock".into()),
                })),
                experiment: Some("sweep".into()),
            },
        },
        Request::CreateEndpoint {
            spec: Box::new(moor_proto::endpoint::EndpointSpec {
                name: "iris".into(),
                port: Some(5001),
                public: false,
                health_path: "/".into(),
                server: moor_proto::endpoint::Server::ScoringScript {
                    script: "score.py".into(),
                },
                model: Some(moor_proto::endpoint::ModelSource::Run {
                    run_id: "r-1".into(),
                    path: Some("model/m.pkl".into()),
                }),
                run: RunSpec::default(),
            }),
        },
        Request::ListEndpoints,
        Request::GetEndpoint {
            name: "iris".into(),
        },
        Request::StopEndpoint {
            name: "iris".into(),
        },
        Request::StartEndpoint {
            name: "iris".into(),
        },
        Request::DeleteEndpoint {
            name: "iris".into(),
        },
        Request::Release { run_id: "r".into() },
        Request::NodeInfo,
        Request::ListRuns,
        Request::GetRun {
            run_id: "r-1".into(),
        },
        Request::ReadLog {
            run_id: "r-1".into(),
            offset: 1 << 40,
            follow: true,
        },
        Request::ReadMetrics {
            run_id: "r-1".into(),
            offset: 7,
            follow: false,
        },
        Request::Cancel {
            run_id: "r-1".into(),
            grace_secs: 10,
        },
        Request::Download {
            run_id: "r-1".into(),
            selection: moor_proto::selection::Selection {
                include: vec!["*.pt".into()],
                exclude: vec!["tmp/**".into()],
                have: [("metrics.json".to_owned(), (12, "ab".repeat(32)))].into(),
                mtimes: [("metrics.json".to_owned(), 1_764_000_000)].into(),
            },
        },
        Request::PrepareEnv {
            spec: Box::new(env_spec()),
            hash: env_spec().hash(),
            options: PrepareOptions {
                channel_dir: Some("cd".repeat(32)),
                wheelhouse: None,
                use_host_conda: true,
                ..PrepareOptions::default()
            },
        },
        Request::GetEnv {
            hash: "ab".repeat(32),
        },
        Request::ListEnvs,
        Request::PruneRuns {
            older_than_secs: Some(604_800),
            keep: Some(3),
        },
        Request::RemoveEnv {
            hash: "ab".repeat(32),
        },
    ]
}

fn all_responses() -> Vec<Response> {
    let mut ended = run_info();
    ended.state = RunState::Failed;
    ended.exit_code = Some(3);
    ended.ended_at = Some("2026-11-27T18:05:00Z".into());
    vec![
        Response::Hello { hello: hello() },
        Response::Pong,
        Response::Status(AgentStatus {
            version: "0.1.0".into(),
            uptime_secs: 7,
            load: [0.5, 0.25, 0.0],
            running: 2,
            disk: Some(moor_proto::DiskUse {
                runs_bytes: 3,
                snapshots_bytes: 2,
                envs_bytes: 1,
            }),
        }),
        Response::Pruned(moor_proto::Pruned {
            runs: vec!["20261129T101010-aabbccdd".into()],
            snapshots: 1,
            bytes_freed: 4096,
        }),
        Response::Snapshot { present: true },
        Response::TreeMissing {
            blobs: vec!["cd".repeat(32)],
        },
        Response::Blobs { stored: 3 },
        Response::Run { run: run_info() },
        Response::Runs {
            runs: vec![run_info(), ended],
        },
        Response::Stream {
            offset: 99,
            run: None,
        },
        Response::Stream {
            offset: 0,
            run: Some(Box::new(run_info())),
        },
        Response::Node(moor_proto::NodeInfo {
            addresses: vec!["10.0.3.7/24".into()],
            interfaces: vec!["eth0".into()],
            free_port: 29500,
            link_port: 29501,
            hostname: "node-0".into(),
            host_keys: vec!["ssh-ed25519 AAAA".into()],
            runs_dir: "/home/u/.moor/runs".into(),
        }),
        Response::Env { env: env_info() },
        Response::Envs {
            envs: vec![env_info()],
        },
        Response::Endpoint {
            endpoint: Box::new(endpoint_info()),
        },
        Response::Endpoints {
            endpoints: vec![endpoint_info()],
        },
        Response::error(ErrorKind::NotFound, "no run r-9"),
        Response::error(ErrorKind::VersionMismatch, "agent protocol 2, controller 1"),
        Response::Error {
            error: WireError {
                kind: ErrorKind::Busy,
                message: "1 queued or running run(s) use the environment".into(),
                fix: Some("cancel the run, or wait for it to end".into()),
            },
        },
    ]
}

#[test]
fn every_request_round_trips() {
    for (i, request) in all_requests().into_iter().enumerate() {
        let bytes = request.to_frame(i as u64).to_bytes().unwrap();
        let (frame, used) = Frame::decode(&bytes).unwrap().unwrap();
        assert_eq!(used, bytes.len());
        assert_eq!(frame.id, i as u64);
        assert_eq!(frame.request().unwrap(), request);
        assert!(
            frame.response().is_err(),
            "a request frame is not a response"
        );
    }
}

#[test]
fn every_response_round_trips() {
    for (i, response) in all_responses().into_iter().enumerate() {
        let mut stream = Vec::new();
        write_frame(&mut stream, &response.to_frame(u64::MAX - i as u64)).unwrap();
        let frame = read_frame(&mut Cursor::new(stream)).unwrap().unwrap();
        assert_eq!(frame.id, u64::MAX - i as u64);
        assert_eq!(frame.response().unwrap(), response);
    }
}

#[test]
fn wire_names_are_snake_case_tags() {
    let json = String::from_utf8(
        Request::ReadLog {
            run_id: "r".into(),
            offset: 0,
            follow: false,
        }
        .to_frame(1)
        .payload,
    )
    .unwrap();
    assert_eq!(
        json,
        r#"{"type":"read_log","run_id":"r","offset":0,"follow":false}"#
    );
    let json = String::from_utf8(
        Response::error(ErrorKind::NotFound, "x")
            .to_frame(1)
            .payload,
    )
    .unwrap();
    assert_eq!(
        json,
        r#"{"type":"error","error":{"kind":"not_found","message":"x"}}"#
    );
}

#[test]
fn data_and_end_frames_and_a_stream_of_many() {
    let frames = vec![
        Request::ReadLog {
            run_id: "r".into(),
            offset: 0,
            follow: true,
        }
        .to_frame(7),
        Frame::data(7, b"line 1\n".to_vec()),
        Frame::data(7, vec![0u8, 255, 10]),
        Frame::end(7),
    ];
    let mut stream = Vec::new();
    for f in &frames {
        f.encode(&mut stream).unwrap();
    }
    let mut cursor = Cursor::new(stream.clone());
    for f in &frames {
        assert_eq!(&read_frame(&mut cursor).unwrap().unwrap(), f);
    }
    assert!(
        read_frame(&mut cursor).unwrap().is_none(),
        "clean end between frames"
    );
    // Byte-at-a-time arrival decodes the same frames.
    let mut buf = Vec::new();
    let mut decoded = Vec::new();
    for b in stream {
        buf.push(b);
        while let Some((frame, used)) = Frame::decode(&buf).unwrap() {
            buf.drain(..used);
            decoded.push(frame);
        }
    }
    assert_eq!(decoded, frames);
}

#[test]
fn truncated_input_is_an_error_not_a_hang() {
    let bytes = Request::Ping.to_frame(1).to_bytes().unwrap();
    for cut in 1..bytes.len() {
        assert!(
            Frame::decode(&bytes[..cut]).unwrap().is_none(),
            "incomplete: read more"
        );
        let err = read_frame(&mut Cursor::new(&bytes[..cut])).unwrap_err();
        assert!(
            matches!(err, FrameError::Truncated { .. }),
            "cut at {cut}: {err}"
        );
    }
}

#[test]
fn oversized_and_bad_headers_are_refused_before_allocating() {
    let mut huge = (u32::MAX).to_be_bytes().to_vec();
    huge.extend_from_slice(&[1; 9]);
    assert!(matches!(
        Frame::decode(&huge),
        Err(FrameError::BadLength(u32::MAX))
    ));
    assert!(matches!(
        read_frame(&mut Cursor::new(&huge)),
        Err(FrameError::BadLength(_))
    ));
    let too_big = (MAX_FRAME + 1).to_be_bytes();
    assert!(matches!(
        Frame::decode(&too_big),
        Err(FrameError::BadLength(_))
    ));
    let too_small = 8u32.to_be_bytes();
    assert!(matches!(
        Frame::decode(&too_small),
        Err(FrameError::BadLength(8))
    ));
    let mut bad_kind = 9u32.to_be_bytes().to_vec();
    bad_kind.push(42);
    assert!(matches!(
        Frame::decode(&bad_kind),
        Err(FrameError::BadKind(42))
    ));
    // Encoding refuses a payload over the limit.
    assert!(Frame::data(1, vec![0u8; MAX_FRAME as usize])
        .to_bytes()
        .is_err());
    assert!(Frame::data(1, vec![0u8; MAX_FRAME as usize - 9])
        .to_bytes()
        .is_ok());
}

#[test]
fn garbled_json_is_a_bad_message() {
    let frame = Frame {
        kind: FrameKind::Request,
        id: 1,
        payload: b"{\"type\":\"no_such\"}".to_vec(),
    };
    assert!(matches!(frame.request(), Err(FrameError::BadMessage(_))));
    let frame = Frame {
        kind: FrameKind::Response,
        id: 1,
        payload: vec![0xff, 0xfe],
    };
    assert!(matches!(frame.response(), Err(FrameError::BadMessage(_))));
}

/// Deterministic random input: the decoder returns (never panics), and what
/// it accepts re-encodes to the same bytes. The cargo-fuzz target in
/// proto/fuzz does the same, coverage-guided.
#[test]
fn random_bytes_never_panic() {
    let mut state = 0x9e3779b97f4a7c15u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..20_000 {
        let len = (next() % 64) as usize;
        let mut bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        if next() % 2 == 0 && bytes.len() >= 5 {
            // Often a plausible header, to get past the length check.
            let body = (bytes.len() - 4) as u32;
            bytes[..4].copy_from_slice(&body.to_be_bytes());
            bytes[4] = (next() % 5) as u8;
        }
        if let Ok(Some((frame, used))) = Frame::decode(&bytes) {
            assert_eq!(frame.to_bytes().unwrap(), bytes[..used]);
            let _ = frame.request();
            let _ = frame.response();
        }
        let _ = read_frame(&mut Cursor::new(&bytes));
    }
}

#[test]
fn a_data_header_with_its_payload_is_a_data_frame() {
    let payload = b"some log bytes\n";
    let mut bytes = Frame::data_header(7, payload.len()).unwrap().to_vec();
    bytes.extend_from_slice(payload);
    assert_eq!(bytes, Frame::data(7, payload.to_vec()).to_bytes().unwrap());
    assert!(Frame::data_header(7, MAX_FRAME as usize).is_err());
}
