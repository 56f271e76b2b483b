//! `moor-agent keep-endpoint RUN_DIR`: the job of an endpoint's run. It
//! starts the server (the command in the run's `serve-command.json`, written
//! by the supervisor) in its own process group with the run's log as its
//! output, probes it until it answers, and restarts it with backoff when
//! it dies, writing what it sees to the run's `serving.json`:
//!
//! - a server that dies before it ever answered in this run (a scoring
//!   script whose `init()` raises, a taken port) fails the endpoint at once;
//! - one that answered before is restarted after 1, 2, 4 ... 30 s; five
//!   deaths in a row without answering in between fail it;
//! - one that stops answering the probe three times running while it runs
//!   is `unhealthy` until it answers again.
//!
//! A cancel (stop, delete) is the supervisor's: it signals every process of
//! the run; the keeper never restarts a server once the cancel marker is
//! there.

use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use moor_proto::endpoint::EndpointState;
use moor_proto::run::Serving;

use super::{probe, Report, REPORT};
use crate::error::{AgentError, Result};
use crate::runs::{files, StoredSpec};
use crate::sys;

/// The server's command (JSON list) in the run's folder.
pub const COMMAND: &str = "serve-command.json";

/// How often a starting server is probed.
const PROBE_STARTING: Duration = Duration::from_millis(200);
/// How often a healthy one is.
const PROBE_HEALTHY: Duration = Duration::from_secs(2);
/// How long one probe may take.
const PROBE_LIMIT: Duration = Duration::from_secs(2);
/// Failed probes in a row that make a healthy server `unhealthy`.
const MISSES: u32 = 3;
/// Deaths in a row (without answering in between) that fail an endpoint.
const DEATHS: u32 = 5;
/// The longest wait before a restart.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The scoring server's command: `azureml-inference-server-http` bound to
/// `bind` (gunicorn's `unix:PATH` or `ADDRESS:PORT`). Its command line can
/// name neither a socket nor an address (it listens on every address), so
/// the gunicorn application it starts gets its `-b` replaced first.
pub fn scoring_command(script: &str, bind: &str) -> Vec<String> {
    let shim = "import sys\n\
        import gunicorn.app.wsgiapp as wsgiapp\n\
        import azureml_inference_server_http.amlserver as server\n\
        bind = sys.argv.pop(1)\n\
        class Bound(wsgiapp.WSGIApplication):\n\
        \x20   def __init__(self, *args, **kwargs):\n\
        \x20       argv, rest = sys.argv[:1], sys.argv[1:]\n\
        \x20       while rest:\n\
        \x20           word = rest.pop(0)\n\
        \x20           if word == '-b':\n\
        \x20               rest.pop(0)\n\
        \x20           else:\n\
        \x20               argv.append(word)\n\
        \x20       sys.argv = argv[:1] + ['-b', bind] + argv[1:]\n\
        \x20       super().__init__(*args, **kwargs)\n\
        wsgiapp.WSGIApplication = Bound\n\
        sys.argv[0] = 'azmlinfsrv'\n\
        server.run()\n";
    let mut command: Vec<String> = ["python3", "-c", shim, bind, "--entry_script", script]
        .map(str::to_owned)
        .to_vec();
    // Its own `--port` only names the port in its log (`-b` is ours).
    if let Some((_, port)) = bind.rsplit_once(':').filter(|_| !bind.starts_with("unix:")) {
        command.extend(["--port".to_owned(), port.to_owned()]);
    }
    command
}

/// Keeps the server of the run in `dir` up; the exit code of the run's job
/// (non-zero once the endpoint failed).
pub fn run(dir: &Path) -> Result<i32> {
    let stored: StoredSpec = sys::read_json(&dir.join(files::SPEC))?;
    let command: Vec<String> = sys::read_json(&dir.join(COMMAND))?;
    if command.is_empty() {
        return Err(AgentError::usage("keep-endpoint: an empty server command"));
    }
    let serving = stored
        .spec
        .serving
        .as_deref()
        .cloned()
        .ok_or_else(|| AgentError::usage("keep-endpoint: the run serves no endpoint"))?;
    let mut keeper = Keeper {
        dir,
        serving,
        report: Report::default(),
        warned: false,
    };
    let mut answered_ever = false;
    let mut deaths = 0u32;
    loop {
        if keeper.cancelled() {
            return Ok(0);
        }
        keeper.set(EndpointState::Starting);
        if let Some(socket) = &keeper.serving.socket {
            // A socket left by a server that died (ours: in our folder).
            let _ = std::fs::remove_file(socket);
        }
        let taken = match keeper.serving.port {
            0 => Ok(0),
            port => super::free_port(&keeper.serving.address, Some(port)),
        };
        if let Err(why) = taken {
            if !answered_ever {
                return Ok(keeper.fail(why.to_string()));
            }
            deaths += 1;
            if deaths >= DEATHS {
                return Ok(keeper.fail(format!("{why}, {deaths} times in a row")));
            }
            keeper.say(&format!("{why}; trying again"));
        } else {
            let mut child = match Command::new(&command[0])
                .args(&command[1..])
                .process_group(0)
                .spawn()
            {
                Ok(child) => child,
                Err(e) => {
                    let why = match e.kind() {
                        std::io::ErrorKind::NotFound => {
                            format!("no {:?} on this host or in the environment", command[0])
                        }
                        _ => format!("cannot start {:?}: {e}", command[0]),
                    };
                    return Ok(keeper.fail(why));
                }
            };
            let (status, answered) = keeper.watch(&mut child);
            stop_group(&child);
            let how = describe(status);
            keeper.report.last_exit = Some(how.clone());
            if keeper.cancelled() {
                return Ok(0);
            }
            if answered {
                answered_ever = true;
                deaths = 0;
            }
            if !answered_ever {
                return Ok(keeper.fail(format!(
                    "its server ended ({how}) before it answered on {}",
                    keeper.place()
                )));
            }
            deaths += 1;
            if deaths >= DEATHS {
                return Ok(keeper.fail(format!(
                    "its server died {deaths} times in a row without answering (last: {how})"
                )));
            }
        }
        let wait = Duration::from_secs(1 << deaths.saturating_sub(1).min(5)).min(MAX_BACKOFF);
        keeper.report.restarts += 1;
        keeper.say(&format!(
            "the server ended ({}); restart {} in {} s",
            keeper.report.last_exit.as_deref().unwrap_or("?"),
            keeper.report.restarts,
            wait.as_secs()
        ));
        keeper.set(EndpointState::Starting);
        keeper.write();
        let until = Instant::now() + wait;
        while Instant::now() < until && !keeper.cancelled() {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

struct Keeper<'a> {
    dir: &'a Path,
    serving: Serving,
    report: Report,
    /// Whether the open-port warning was said.
    warned: bool,
}

impl Keeper<'_> {
    /// Where the server is asked: its socket once it listens there (a
    /// scoring server always does), else its port.
    fn at(&self) -> probe::At<'_> {
        match self.serving.socket.as_deref().map(Path::new) {
            Some(socket) if self.serving.port == 0 || socket.exists() => probe::At::Socket(socket),
            _ => probe::At::Port(self.serving.port),
        }
    }

    /// Where it answers, in words.
    fn place(&self) -> String {
        match self.at() {
            probe::At::Socket(socket) => format!("unix:{}", socket.display()),
            probe::At::Port(port) => format!("{}:{port}", self.serving.address),
        }
    }

    fn cancelled(&self) -> bool {
        self.dir.join(files::CANCEL).exists()
    }

    /// A line from moor in the endpoint's log (its stdout is the log).
    fn say(&self, line: &str) {
        println!("moor: endpoint {}: {line}", self.serving.name);
    }

    fn write(&self) {
        if let Err(e) = sys::write_json_atomic(&self.dir.join(REPORT), &self.report) {
            tracing::warn!("cannot write {REPORT}: {e}");
        }
    }

    fn set(&mut self, state: EndpointState) {
        if self.report.state != Some(state) {
            self.report.state = Some(state);
            if state != EndpointState::Healthy {
                self.report.healthy_since = None;
            }
            self.write();
        }
    }

    fn fail(&mut self, why: String) -> i32 {
        self.say(&format!("failed: {why}"));
        self.report.error = Some(why);
        self.set(EndpointState::Failed);
        self.write();
        1
    }

    /// Probes the server until it ends; how it ended and whether it
    /// answered meanwhile.
    fn watch(&mut self, child: &mut Child) -> (ExitStatus, bool) {
        let mut answered = false;
        let mut misses = 0;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return (status, answered);
            }
            let at = self.at();
            let up = probe::answers(at, &self.serving.health_path, PROBE_LIMIT);
            if up {
                misses = 0;
                if self.report.state != Some(EndpointState::Healthy) {
                    if !answered {
                        self.say(&format!("healthy on {}", self.place()));
                        let on_socket = matches!(at, probe::At::Socket(_));
                        self.warn_if_open(on_socket);
                    }
                    answered = true;
                    self.report.healthy_since = Some(moor_proto::time::now());
                    self.set(EndpointState::Healthy);
                }
            } else if answered {
                misses += 1;
                if misses == MISSES {
                    self.say("does not answer its probe");
                    self.set(EndpointState::Unhealthy);
                }
            }
            let pause = if answered {
                PROBE_HEALTHY
            } else {
                PROBE_STARTING
            };
            let until = Instant::now() + pause;
            while Instant::now() < until {
                if let Ok(Some(status)) = child.try_wait() {
                    return (status, answered);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

impl Keeper<'_> {
    /// A server command that answers on the loopback port, not on the
    /// socket it was given: every user of this host can call it. Said in
    /// its log, once a run.
    fn warn_if_open(&mut self, on_socket: bool) {
        self.report.on_socket = on_socket;
        if self.serving.socket.is_some() && !self.report.on_socket && !self.warned {
            self.warned = true;
            self.say(&format!(
                "it answers on {}:{}, where every user of this host can call it; have it listen on the unix socket $MOOR_ENDPOINT_SOCKET instead (only you and moor reach that)",
                self.serving.address, self.serving.port
            ));
        }
    }
}

/// Ends what is left of the server's process group (workers of a server
/// that died).
fn stop_group(child: &Child) {
    let Ok(pid) = i32::try_from(child.id()) else {
        return;
    };
    let group = nix::unistd::Pid::from_raw(pid);
    if nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGTERM).is_ok() {
        std::thread::sleep(Duration::from_millis(500));
        let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
    }
}

/// `exit 3`, `signal 9`.
fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit {code}"),
        (None, Some(signal)) => format!("signal {signal}"),
        _ => "ended".into(),
    }
}
