//! `moor ssh TARGET [-- CMD...]`: the login shell or one command on a
//! target, over its SSH connection (stored settings, pinned host key).
//!
//! When this side is a terminal (and not `-T`), the host gives the session a
//! pseudo-terminal of this window's size, kept in step when the window
//! changes, and this terminal goes raw while it lasts: every key, Ctrl-C
//! included, goes to the host as typed (the terminal is restored however
//! moor ends). Otherwise stdin is piped to the command, and Ctrl-C is
//! passed to it as SIGINT (twice: moor gives up, exit 130). The exit code
//! is the remote one; a remote death by signal N is 128+N; no status, 255.

use std::io::{IsTerminal, Read, Write};
use std::os::fd::AsFd;

use russh::{ChannelMsg, Sig};
use serde::Serialize;
use tokio::sync::mpsc;

use super::Context;
use crate::cli::SshArgs;
use crate::error::Result;
use crate::output::{Render, Text};
use crate::reach::Access;
use crate::shell::quote;
use crate::ssh::Pty;

/// How the remote session ended.
#[derive(Debug, Serialize)]
pub struct Ended {
    /// The target.
    pub target: String,
    /// The exit code moor ends with.
    pub exit_code: u8,
    /// The signal that ended the remote command, if one did.
    pub signal: Option<String>,
}

impl Render for Ended {
    fn render(&self, _out: &mut Text) {}

    fn exit_code(&self) -> u8 {
        self.exit_code
    }

    /// The session's own output is the output.
    fn has_json(&self) -> bool {
        false
    }
}

/// `moor ssh`.
pub async fn ssh(args: &SshArgs, ctx: &Context) -> Result<Ended> {
    let store = ctx.store()?;
    let target = ctx.targets.attached(&store, &args.target)?;
    let access = Access::from_args(&args.connect)?;
    let command = (!args.command.is_empty()).then(|| {
        args.command
            .iter()
            .map(|w| quote(w))
            .collect::<Vec<_>>()
            .join(" ")
    });
    let terminal = !args.no_pty && std::io::stdin().is_terminal();
    let pty = terminal.then(|| {
        let (cols, rows) = window_size();
        Pty {
            term: std::env::var("TERM").unwrap_or_else(|_| "xterm".into()),
            cols,
            rows,
        }
    });
    let session = ctx.targets.session(&target, &access).await?;
    let channel = session
        .interactive(command.as_deref(), pty.as_ref())
        .await?;
    let (mut from_host, to_host) = channel.split();
    let mut window = crate::signals::signal(tokio::signal::unix::SignalKind::window_change())?;
    let mut interrupt = crate::signals::ctrl_c()?;
    // Raw from here to the end (restored when this is dropped).
    let _raw = if terminal { RawMode::enter() } else { None };
    let mut stdin = stdin_chunks();
    let mut stdin_open = true;
    let mut interrupts = 0;
    let (mut status, mut signal) = (None, None);
    let mut out = std::io::stdout();
    let mut err = std::io::stderr();
    loop {
        tokio::select! {
            msg = from_host.wait() => match msg {
                Some(ChannelMsg::Data { data }) => {
                    let _ = out.write_all(&data);
                    let _ = out.flush();
                }
                Some(ChannelMsg::ExtendedData { data, .. }) => {
                    let _ = err.write_all(&data);
                    let _ = err.flush();
                }
                Some(ChannelMsg::ExitStatus { exit_status }) => status = Some(exit_status),
                Some(ChannelMsg::ExitSignal { signal_name, .. }) => signal = Some(signal_name),
                Some(_) => {}
                None => break,
            },
            chunk = stdin.recv(), if stdin_open => match chunk {
                Some(bytes) => {
                    if to_host.data_bytes(bytes).await.is_err() {
                        stdin_open = false;
                    }
                }
                None => {
                    stdin_open = false;
                    let _ = to_host.eof().await;
                }
            },
            _ = window.recv() => {
                let (cols, rows) = window_size();
                let _ = to_host.window_change(cols, rows, 0, 0).await;
            }
            _ = interrupt.recv() => {
                interrupts += 1;
                if interrupts > 1 {
                    eprintln!("moor: interrupted twice; leaving the remote command (exit 130)");
                    session.close().await;
                    return Ok(Ended {
                        target: target.name,
                        exit_code: 130,
                        signal: None,
                    });
                }
                let _ = to_host.signal(Sig::INT).await;
            }
        }
    }
    session.close().await;
    let exit_code = match (&signal, status) {
        (Some(sig), _) => {
            eprintln!("moor: the remote command ended by signal {sig:?}");
            128 + signal_number(sig)
        }
        (None, Some(code)) => u8::try_from(code).unwrap_or(255),
        (None, None) => {
            eprintln!(
                "moor: the session on {} ended without an exit status (exit 255)",
                target.name
            );
            255
        }
    };
    Ok(Ended {
        target: target.name,
        exit_code,
        signal: signal.map(|s| format!("{s:?}")),
    })
}

/// The number of a signal the host names.
fn signal_number(sig: &Sig) -> u8 {
    match sig {
        Sig::HUP => 1,
        Sig::INT => 2,
        Sig::QUIT => 3,
        Sig::ILL => 4,
        Sig::ABRT => 6,
        Sig::FPE => 8,
        Sig::KILL => 9,
        Sig::USR1 => 10,
        Sig::SEGV => 11,
        Sig::PIPE => 13,
        Sig::ALRM => 14,
        Sig::TERM => 15,
        _ => 127,
    }
}

/// This terminal's columns and rows (80x24 when unknown).
fn window_size() -> (u32, u32) {
    terminal_size::terminal_size_of(std::io::stdout().as_fd())
        .or_else(|| terminal_size::terminal_size_of(std::io::stdin().as_fd()))
        .map(|(w, h)| (u32::from(w.0), u32::from(h.0)))
        .unwrap_or((80, 24))
}

/// stdin in chunks as they come, read on a thread of its own (a blocking
/// read never holds up the runtime; the thread ends with the process).
fn stdin_chunks() -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel(16);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if tx.blocking_send(buf[..n].to_vec()).is_err() {
                        return;
                    }
                }
            }
        }
    });
    rx
}

/// The terminal in raw mode; restored when dropped.
struct RawMode {
    saved: nix::sys::termios::Termios,
}

impl RawMode {
    fn enter() -> Option<RawMode> {
        use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
        let stdin = std::io::stdin();
        let saved = tcgetattr(stdin.as_fd()).ok()?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(stdin.as_fd(), SetArg::TCSADRAIN, &raw).ok()?;
        Some(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = nix::sys::termios::tcsetattr(
            std::io::stdin().as_fd(),
            nix::sys::termios::SetArg::TCSADRAIN,
            &self.saved,
        );
    }
}
