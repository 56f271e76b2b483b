//! Session channels for people: `moor ssh`'s login shell or command, with a
//! pseudo-terminal when asked.

use russh::client::Msg;
use russh::Channel;

use super::Session;
use crate::error::Result;

/// The pseudo-terminal a session gets: `TERM` and the window's size.
#[derive(Debug, Clone)]
pub struct Pty {
    /// `TERM` on the host.
    pub term: String,
    /// Columns.
    pub cols: u32,
    /// Rows.
    pub rows: u32,
}

impl Session {
    /// Opens a session channel running `command` (the user's login shell
    /// when none), on a pseudo-terminal when `pty` is given.
    pub async fn interactive(
        &self,
        command: Option<&str>,
        pty: Option<&Pty>,
    ) -> Result<Channel<Msg>> {
        let ssh_err = |e: russh::Error| self.ssh_error(e);
        let channel = self.handle.channel_open_session().await.map_err(ssh_err)?;
        if let Some(pty) = pty {
            channel
                .request_pty(true, &pty.term, pty.cols, pty.rows, 0, 0, &[])
                .await
                .map_err(ssh_err)?;
        }
        match command {
            Some(command) => channel.exec(true, command).await.map_err(ssh_err)?,
            None => channel.request_shell(true).await.map_err(ssh_err)?,
        }
        Ok(channel)
    }
}
