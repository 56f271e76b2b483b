//! The team workspace (`moor server`): one scenario driven against a real
//! PostgreSQL cluster of the test's own and against the SQLite default. An
//! admin, two members and a viewer, each with their own HOME (their own
//! saved login), talk to a real `moor server` over HTTPS: roles refused
//! where they must be (exit 8, kind `forbidden`), a removed user and a
//! rotated token refused at once (exit 4, `unauthorized`), a changed
//! certificate refused (exit 5), failed logins slowed, bad bodies refused,
//! the database stopped and started under a running server (exit 6, then
//! working again), a server killed with -9 losing nothing it acknowledged,
//! no token and no database password in the database or the server's
//! folder, and SIGTERM ending it with exit 0.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use moor_tests::postgres::Postgres;
use moor_tests::{assert_exit, Moor, Output};
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_moor");

/// A `moor server start` in the foreground.
struct Server {
    child: Child,
    url: String,
    fingerprint: String,
    _stdout: BufReader<std::process::ChildStdout>,
}

impl Server {
    fn start(operator: &Moor, data: &Path, listen: &str, extra: &[&str]) -> Server {
        let mut args = vec![
            "server",
            "start",
            "--data",
            data.to_str().unwrap(),
            "--listen",
            listen,
            "--json",
        ];
        args.extend(extra);
        let mut child = operator.spawn_piped(&args);
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        if line.is_empty() {
            let out = child.wait_with_output().unwrap();
            panic!(
                "moor server start ended: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let ready: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        Server {
            child,
            url: ready["url"].as_str().unwrap().to_owned(),
            fingerprint: ready["fingerprint"].as_str().unwrap().to_owned(),
            _stdout: stdout,
        }
    }

    fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM; the exit code.
    fn term(mut self) -> i32 {
        let pid = self.child.id().to_string();
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            assert!(
                Instant::now() < deadline,
                "moor server did not stop on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// One member of the team: a HOME of their own.
struct Member {
    moor: Moor,
    name: String,
}

impl Member {
    fn new(name: &str) -> Member {
        let mut moor = Moor::new(BIN);
        moor.without_workspace();
        Member {
            moor,
            name: name.to_owned(),
        }
    }

    fn login(&self, server: &Server, token: &str) -> Output {
        self.moor.run_with_stdin(
            &[
                "login",
                &server.url,
                "--fingerprint",
                &server.fingerprint,
                "--token-stdin",
                "--json",
            ],
            Some(&format!("{token}\n")),
        )
    }

    fn run(&self, args: &[&str]) -> Output {
        self.moor.run(args)
    }

    fn login_file(&self) -> PathBuf {
        self.moor.home().join(".config/moor/login.json")
    }
}

fn kind(out: &Output) -> String {
    out.json()["error"]["kind"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Exit `code` with JSON kind `want`, and one line on stderr saying why.
fn refused(out: &Output, code: i32, want: &str) {
    assert_exit(out, code);
    assert_eq!(kind(out), want, "{}", out.stdout);
    assert_eq!(
        out.stderr.trim().lines().count(),
        1,
        "one line: {}",
        out.stderr
    );
    assert!(out.stderr.contains("; fix: "), "{}", out.stderr);
}

fn token_of(out: &Output) -> String {
    assert_exit(out, 0);
    out.json()["token"].as_str().unwrap().to_owned()
}

/// Everything under `dir`, as bytes, for looking for secrets in it.
fn all_bytes(dir: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            all.extend(all_bytes(&path));
        } else if let Ok(bytes) = std::fs::read(&path) {
            all.extend(bytes);
        }
    }
    all
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// The team scenario; `pg` is the PostgreSQL cluster, or `None` for SQLite.
fn team_scenario(pg: Option<&Postgres>) {
    let mut operator = Moor::new(BIN);
    if let Some(pg) = pg {
        operator.env("MOOR_DATABASE_URL", &pg.url());
    }
    let data = operator.home().join("server");
    let init = operator.run(&["server", "init", "--data", data.to_str().unwrap(), "--json"]);
    assert_exit(&init, 0);
    let init = init.json();
    let admin_token = init["admin_token"].as_str().unwrap().to_owned();
    let again = operator.run(&["server", "init", "--data", data.to_str().unwrap(), "--json"]);
    refused(&again, 7, "conflict");

    let mut server = Server::start(&operator, &data, "127.0.0.1:0", &[]);
    let at = server.url.trim_start_matches("https://").to_owned();
    assert_eq!(server.fingerprint, init["fingerprint"].as_str().unwrap());

    // The admin logs in; a login without a fingerprint to check, or with
    // another one, is refused before the token is sent.
    let mut admin = Member::new("admin");
    // The password of the host the admin attaches, in its environment only.
    admin.moor.env("BOX_PW", HOST_PASSWORD);
    let admin = admin;
    let unpinned = admin.moor.run_with_stdin(
        &["login", &server.url, "--token-stdin", "--json"],
        Some(&admin_token),
    );
    refused(&unpinned, 2, "usage");
    assert!(
        unpinned.stderr.contains(&server.fingerprint),
        "{}",
        unpinned.stderr
    );
    let wrong = admin.moor.run_with_stdin(
        &[
            "login",
            &server.url,
            "--fingerprint",
            "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "--token-stdin",
            "--json",
        ],
        Some(&admin_token),
    );
    refused(&wrong, 5, "server_certificate_changed");
    let login = admin.login(&server, &admin_token);
    assert_exit(&login, 0);
    assert_eq!(login.json()["user"], "admin");
    assert_eq!(login.json()["role"], "admin");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(admin.login_file())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);

    // The admin makes the team; each logs in with the token shown once.
    let mut tokens = std::collections::HashMap::new();
    for (name, role) in [("alice", "member"), ("bob", "member"), ("vic", "viewer")] {
        let out = admin.run(&["user", "add", name, "--role", role, "--json"]);
        assert_eq!(out.json()["role"], role);
        tokens.insert(name, token_of(&out));
    }
    refused(
        &admin.run(&["user", "add", "alice", "--role", "viewer", "--json"]),
        7,
        "conflict",
    );
    refused(
        &admin.run(&["user", "add", "Bad Name", "--role", "viewer", "--json"]),
        2,
        "bad_request",
    );
    let [alice, bob, vic] = ["alice", "bob", "vic"].map(Member::new);
    for member in [&alice, &bob, &vic] {
        assert_exit(&member.login(&server, &tokens[member.name.as_str()]), 0);
        let who = member.run(&["whoami", "--json"]);
        assert_exit(&who, 0);
        assert_eq!(who.json()["user"], member.name.as_str());
        assert_eq!(who.json()["server"], server.url.as_str());
    }

    // Roles: a viewer reads, but neither it nor a member manages users or
    // reads the audit log.
    let users = vic.run(&["user", "list", "--json"]);
    assert_exit(&users, 0);
    let listed = users.json();
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["admin", "alice", "bob", "vic"]);
    refused(
        &vic.run(&["user", "add", "eve", "--role", "admin", "--json"]),
        8,
        "forbidden",
    );
    refused(
        &alice.run(&["user", "remove", "bob", "--json"]),
        8,
        "forbidden",
    );
    refused(
        &alice.run(&["user", "token", "bob", "--rotate", "--json"]),
        8,
        "forbidden",
    );
    refused(&alice.run(&["audit", "--json"]), 8, "forbidden");

    workspace_through_the_server(&admin, &alice, &bob, &vic, &data);

    // A member rotates its own token: the old one is refused at once, the
    // saved login carries the new one.
    let rotated = token_of(&alice.run(&["user", "token", "alice", "--rotate", "--json"]));
    assert_ne!(rotated, tokens["alice"]);
    assert_exit(&alice.run(&["whoami", "--json"]), 0);
    refused(
        &Member::new("alice").login(&server, &tokens["alice"]),
        4,
        "unauthorized",
    );

    // A removed user is refused at once; the last admin cannot be removed.
    assert_exit(&admin.run(&["user", "remove", "bob", "--json"]), 0);
    refused(&bob.run(&["whoami", "--json"]), 4, "unauthorized");
    refused(
        &admin.run(&["user", "remove", "admin", "--json"]),
        7,
        "conflict",
    );

    bad_requests(&server, &admin_token);
    failed_logins_are_slowed(&server);

    // The audit log: who did what.
    let audit = admin.run(&["audit", "--json"]);
    assert_exit(&audit, 0);
    let entries = audit.json()["entries"].as_array().unwrap().clone();
    let seen: Vec<(String, String, String)> = entries
        .iter()
        .map(|e| {
            (
                e["user"].as_str().unwrap().into(),
                e["action"].as_str().unwrap().into(),
                e["subject"].as_str().unwrap().into(),
            )
        })
        .collect();
    for want in [
        ("", "user.add", "admin"),
        ("admin", "user.add", "alice"),
        ("alice", "user.token", "alice"),
        ("admin", "user.remove", "bob"),
        ("admin", "attach", "box"),
        ("alice", "run", "box"),
        ("bob", "run", "box"),
        ("admin", "cancel", "long"),
    ] {
        assert!(
            seen.contains(&(want.0.into(), want.1.into(), want.2.into())),
            "{want:?} not in {seen:?}"
        );
    }
    let alices = admin.run(&["audit", "--user", "alice", "--since", "1h", "--json"]);
    let listed = alices.json();
    let actions: Vec<&str> = listed["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["run", "run", "user.token"], "{}", alices.stdout);
    // Refusals are not actions: alice's refused attach and cancel are not in it.

    if let Some(pg) = pg {
        // The database goes away under the running server, then comes back.
        pg.stop();
        let down = alice.run(&["whoami", "--json"]);
        refused(&down, 6, "server_unavailable");
        assert!(down.elapsed < Duration::from_secs(20), "{:?}", down.elapsed);
        pg.resume();
        assert_exit(&alice.run(&["whoami", "--json"]), 0);
    }

    // Killed with -9 right after an acknowledged change: nothing lost.
    let carol = token_of(&admin.run(&["user", "add", "carol", "--role", "member", "--json"]));
    server.kill9();
    drop(server);
    let server = Server::start(&operator, &data, &at, &[]);
    assert_exit(&Member::new("carol").login(&server, &carol), 0);
    assert_exit(&alice.run(&["whoami", "--json"]), 0);

    // No token and no database password is kept anywhere in clear.
    let mut secrets: Vec<String> = vec![
        admin_token.clone(),
        rotated.clone(),
        carol.clone(),
        tokens["vic"].clone(),
    ];
    if let Some(pg) = pg {
        secrets.push(pg.password().to_owned());
        let dump = pg.dump();
        assert!(dump.contains("alice"), "the dump holds the team");
        for secret in &secrets {
            assert!(
                !dump.contains(secret.as_str()),
                "a secret is in the database dump"
            );
        }
    }
    let folder = all_bytes(&data);
    for secret in &secrets {
        assert!(
            !contains(&folder, secret),
            "a secret is in the server's folder"
        );
    }

    assert_eq!(server.term(), 0, "SIGTERM drains and exits 0");
    certificate_change(&operator, &data, &at, &admin);
}

/// The password of the team's test host.
const HOST_PASSWORD: &str = "team-host-pw-4c1d";

/// The workspace commands go through the server: the admin attaches a real
/// host with a password that never reaches the server's disk or database,
/// members run on it from their own source folders, everyone sees whose
/// run is whose, a member cannot cancel another's run, a viewer cannot run.
fn workspace_through_the_server(
    admin: &Member,
    alice: &Member,
    bob: &Member,
    vic: &Member,
    data: &Path,
) {
    use moor_tests::{HostSpec, SshAuth, TestHost};
    // Password and keys: attach enrols the workspace key with the password.
    let host = TestHost::start(&HostSpec {
        auth: SshAuth::Any,
        password: Some(HOST_PASSWORD.into()),
        ..HostSpec::default()
    });
    let mut attach = vec![
        "attach",
        "vm",
        "box",
        "--json",
        "--password-env",
        "BOX_PW",
        "--accept-new-host-key",
    ];
    attach.extend(host.login());
    let mut without_password = vec!["attach", "vm", "box2", "--json", "--accept-new-host-key"];
    without_password.extend(host.login());
    refused(&alice.run(&without_password), 8, "forbidden");
    let attached = admin.run(&attach);
    assert_exit(&attached, 0);
    assert_eq!(
        attached.json()["target"]["name"],
        "box",
        "{}",
        attached.stdout
    );

    // Members run from their own folders; the source travels through the server.
    let source = moor_tests::source_dir(&[("data.txt", "alice's data\n")]);
    let src = source.path().to_str().unwrap();
    let ran = alice.run(&[
        "run",
        "--target",
        "box",
        "--source-dir",
        src,
        "--",
        "sh",
        "-c",
        "cat data.txt; echo from-alice",
    ]);
    assert_exit(&ran, 0);
    assert_eq!(ran.stdout, "alice's data\nfrom-alice\n", "{}", ran.stderr);
    let again = alice.run(&["run", "--target", "box", "--source-dir", src, "--", "true"]);
    assert_exit(&again, 0);
    let long = bob.run(&[
        "run",
        "--target",
        "box",
        "--name",
        "long",
        "--detach",
        "--json",
        "--source-dir",
        src,
        "--",
        "sleep",
        "300",
    ]);
    assert_exit(&long, 0);
    let long_id = long.json()["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{}", long.stdout))
        .to_owned();
    refused(
        &vic.run(&[
            "run",
            "--json",
            "--target",
            "box",
            "--source-dir",
            src,
            "--",
            "true",
        ]),
        8,
        "forbidden",
    );

    // Everyone sees whose run is whose.
    let runs = vic.run(&["runs", "--json"]);
    assert_exit(&runs, 0);
    let rows = runs.json();
    let user_of = |id: &str| {
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id)
            .map(|r| r["user"].clone())
    };
    assert_eq!(user_of(&long_id), Some(json!("bob")), "{}", runs.stdout);
    let alices = rows
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["user"] == "alice")
        .count();
    assert_eq!(alices, 2, "{}", runs.stdout);
    let table = vic.run(&["runs"]);
    assert!(
        table.stdout.lines().next().unwrap().contains("USER"),
        "{}",
        table.stdout
    );

    // A member cancels only its own runs; an admin anyone's.
    refused(&alice.run(&["cancel", &long_id, "--json"]), 8, "forbidden");
    assert_exit(&admin.run(&["cancel", "long", "--json"]), 0);

    // The attach password is nowhere in the server's folder (the database's
    // dump is checked by the caller).
    assert!(
        !contains(&all_bytes(data), HOST_PASSWORD),
        "the host's password is in the server's folder"
    );
    // Not through the server yet: said, with the way out.
    let ssh = alice.run(&["ssh", "box", "--json", "--", "true"]);
    refused(&ssh, 2, "bad_request");
    assert!(ssh.stderr.contains("--workspace"), "{}", ssh.stderr);
}

/// Bodies that are too large or carry an unknown field are refused, through
/// the client library (`moor` itself never sends them).
fn bad_requests(server: &Server, admin_token: &str) {
    use moor::team::client::{Client, ServerUrl};
    let client = Client::new(
        ServerUrl::parse(&server.url).unwrap(),
        Some(server.fingerprint.clone()),
        Some(moor::secret::Secret::new(admin_token.to_owned())),
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let call = |body: Value| {
        runtime
            .block_on(client.call::<Value>(
                moor::team::client::Method::POST,
                "/v1/users",
                Some(&body),
            ))
            .unwrap_err()
    };
    let unknown = call(json!({"name": "mallory", "role": "member", "admin": true}));
    assert_eq!(unknown.kind(), "bad_request", "{unknown}");
    let huge = call(json!({"name": "x".repeat(200_000), "role": "member"}));
    assert_eq!(huge.kind(), "bad_request", "{huge}");
    assert!(huge.to_string().contains("64 KiB"), "{huge}");
}

/// Unknown tokens get slower answers; the right one is not slowed.
fn failed_logins_are_slowed(server: &Server) {
    let guesser = Member::new("guesser");
    let mut elapsed = Vec::new();
    for i in 0..6 {
        let out = guesser.login(server, &format!("moor_guess{i}"));
        refused(&out, 4, "unauthorized");
        elapsed.push(out.elapsed);
    }
    assert!(
        elapsed[5] >= Duration::from_millis(1900),
        "the sixth failure waited {:?}",
        elapsed[5]
    );
    assert!(
        elapsed[0] < Duration::from_millis(1500),
        "the first failure waited {:?}",
        elapsed[0]
    );
}

/// A server that comes back with another certificate (at the same
/// address) is refused by every login that pinned the old one.
fn certificate_change(operator: &Moor, data: &Path, at: &str, admin: &Member) {
    let other = operator.home().join("other-tls");
    std::fs::create_dir_all(&other).unwrap();
    let (cert, key) = (other.join("cert.pem"), other.join("key.pem"));
    let made = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let server = Server::start(
        operator,
        data,
        at,
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    let out = admin.run(&["whoami", "--json"]);
    refused(&out, 5, "server_certificate_changed");
    assert!(out.stderr.contains(&server.fingerprint), "{}", out.stderr);
    assert_eq!(server.term(), 0);
}

#[test]
fn a_team_on_postgresql_shares_one_workspace_with_roles() {
    let pg = Postgres::start();
    team_scenario(Some(&pg));
}

#[test]
fn a_team_on_the_sqlite_default_shares_one_workspace_with_roles() {
    team_scenario(None);
}
