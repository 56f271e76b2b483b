//! `moor login`, `whoami`, `logout`, `moor user` and `moor audit`: the
//! team server's client commands. None needs a local workspace.

use std::io::{BufRead, IsTerminal};

use hyper::Method;
use serde::Serialize;

use crate::cli::{AuditArgs, LoginArgs, UserCommand};
use crate::error::{Error, Result};
use crate::output::{Render, Table, Text};
use crate::secret::Secret;
use crate::team::api::{Audit, Issued, NewUser, Removed, Role, User, WhoAmI};
use crate::team::client::{Client, ServerUrl};
use crate::team::login::{self, Login};

/// `moor login` and `moor whoami`: who, with which role, on which server.
#[derive(Debug, Serialize)]
pub struct Whoami {
    /// The user.
    pub user: String,
    /// Its role.
    pub role: Role,
    /// The server's URL.
    pub server: String,
    /// Its certificate's pinned fingerprint.
    pub fingerprint: String,
}

impl Render for Whoami {
    fn render(&self, out: &mut Text) {
        out.line(format!("{} ({}) on {}", self.user, self.role, self.server));
        out.line(format!("certificate {}", self.fingerprint));
    }
}

/// `moor login URL`: checks the server and the token, then saves the login.
pub async fn login(args: &LoginArgs) -> Result<Whoami> {
    let url = ServerUrl::parse(&args.url)?;
    let shown = Client::new(url.clone(), None, None).certificate().await?;
    let fingerprint = match &args.fingerprint {
        Some(pinned) if *pinned == shown => shown,
        Some(pinned) => return Err(Client::new(url, Some(pinned.clone()), None).changed(shown)),
        None => confirm(&url, shown)?,
    };
    if let Some(saved) = login::load()?.filter(|l| l.url == url.to_string()) {
        if saved.fingerprint != fingerprint {
            return Err(Client::new(url, Some(saved.fingerprint), None).changed(fingerprint));
        }
    }
    let token = read_token(args.token_stdin)?;
    let client = Client::new(url.clone(), Some(fingerprint.clone()), Some(token.clone()));
    let me: WhoAmI = client.call(Method::GET, "/v1/whoami", None::<&()>).await?;
    login::save(&Login {
        url: url.to_string(),
        fingerprint: fingerprint.clone(),
        user: me.user.clone(),
        role: me.role,
        token: token.expose().to_owned(),
    })?;
    Ok(Whoami {
        user: me.user,
        role: me.role,
        server: url.to_string(),
        fingerprint,
    })
}

/// With no `--fingerprint`, the fingerprint is shown on the terminal to be
/// confirmed (as ssh asks of a new host key); without a terminal, refused.
fn confirm(url: &ServerUrl, shown: String) -> Result<String> {
    let refuse = || {
        Error::usage(
            format!("the moor server at {url} shows certificate {shown}, and no fingerprint was given to check it against"),
            format!("compare it with what `moor server start` printed, then pass --fingerprint {shown}"),
        )
    };
    if !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
        return Err(refuse());
    }
    eprint!("The moor server at {url} shows certificate {shown}.\nIs it the one `moor server start` printed? [y/N] ");
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|_| refuse())?;
    match answer.trim() {
        "y" | "Y" | "yes" => Ok(shown),
        _ => Err(refuse()),
    }
}

/// The token: from standard input (`--token-stdin`), or typed on the
/// terminal without echo.
fn read_token(from_stdin: bool) -> Result<Secret> {
    let none = || {
        Error::usage("no token was given", "pass it on standard input with --token-stdin (an admin prints it with `moor user add` or `moor user token NAME --rotate`)")
    };
    let mut line = String::new();
    if from_stdin {
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|_| none())?;
    } else if std::io::stdin().is_terminal() {
        eprint!("token: ");
        line = read_hidden().map_err(|_| none())?;
        eprintln!();
    } else {
        return Err(none());
    }
    let token = line.trim().to_owned();
    line.clear();
    if token.is_empty() {
        return Err(none());
    }
    Ok(Secret::new(token))
}

/// A line from the terminal with echo off.
fn read_hidden() -> std::io::Result<String> {
    use nix::sys::termios::{tcgetattr, tcsetattr, LocalFlags, SetArg};
    let stdin = std::io::stdin();
    let saved = tcgetattr(&stdin).map_err(std::io::Error::from)?;
    let mut quiet = saved.clone();
    quiet.local_flags.remove(LocalFlags::ECHO);
    tcsetattr(&stdin, SetArg::TCSANOW, &quiet).map_err(std::io::Error::from)?;
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    let _ = tcsetattr(&stdin, SetArg::TCSANOW, &saved);
    read.map(|_| line)
}

/// `moor whoami`: asks the server (so a removed user learns it now).
pub async fn whoami() -> Result<Whoami> {
    let saved = login::require()?;
    let me: WhoAmI = saved
        .client()?
        .call(Method::GET, "/v1/whoami", None::<&()>)
        .await?;
    Ok(Whoami {
        user: me.user,
        role: me.role,
        server: saved.url,
        fingerprint: saved.fingerprint,
    })
}

/// `moor logout`.
#[derive(Debug, Serialize)]
pub struct LoggedOut {
    /// The server it was logged in to (none: it was not).
    pub server: Option<String>,
}

impl Render for LoggedOut {
    fn render(&self, out: &mut Text) {
        match &self.server {
            Some(server) => out.line(format!("logged out of {server}")),
            None => out.line("not logged in"),
        }
    }
}

/// `moor logout`: forgets the login here (the token stays valid on the
/// server until rotated).
pub fn logout() -> Result<LoggedOut> {
    let saved = login::load()?;
    login::remove()?;
    Ok(LoggedOut {
        server: saved.map(|l| l.url),
    })
}

/// A user's new token, shown once.
#[derive(Debug, Serialize)]
pub struct Token(pub Issued);

impl Render for Token {
    fn render(&self, out: &mut Text) {
        out.line(&self.0.token);
        out.note(format!(
            "the token of {} ({}); it is shown only now: hand it over privately, it logs in with `moor login URL --token-stdin`",
            self.0.name, self.0.role
        ));
    }
}

/// `moor user list`.
#[derive(Debug, Serialize)]
pub struct Users(pub Vec<User>);

impl Render for Users {
    fn render(&self, out: &mut Text) {
        let mut table = Table::new(&["USER", "ROLE", "ADDED", "BY"]);
        for user in &self.0 {
            table.row(vec![
                user.name.clone(),
                user.role.to_string(),
                user.created_at.clone(),
                user.created_by.clone(),
            ]);
        }
        out.raw(&table.render());
    }
}

impl Render for Removed {
    fn render(&self, out: &mut Text) {
        out.line(format!("removed {}: its token no longer works", self.name));
    }
}

/// What `moor user ...` printed.
pub enum UserResult {
    /// A new token.
    Token(Token),
    /// The users.
    Users(Users),
    /// One removed.
    Removed(Removed),
}

/// `moor user ...`.
pub async fn user(command: &UserCommand) -> Result<UserResult> {
    let saved = login::require()?;
    let client = saved.client()?;
    Ok(match command {
        UserCommand::Add { name, role } => {
            let new = NewUser {
                name: name.clone(),
                role: (*role).into(),
            };
            UserResult::Token(Token(
                client.call(Method::POST, "/v1/users", Some(&new)).await?,
            ))
        }
        UserCommand::List => UserResult::Users(Users(
            client.call(Method::GET, "/v1/users", None::<&()>).await?,
        )),
        UserCommand::Remove { name } => {
            check_name(name)?;
            UserResult::Removed(
                client
                    .call(Method::DELETE, &format!("/v1/users/{name}"), None::<&()>)
                    .await?,
            )
        }
        UserCommand::Token { name, .. } => {
            check_name(name)?;
            let path = format!("/v1/users/{name}/token");
            let issued: Issued = client.call(Method::POST, &path, None::<&()>).await?;
            // One's own rotation: the saved login takes the new token.
            if *name == saved.user {
                login::save(&Login {
                    token: issued.token.clone(),
                    ..saved
                })?;
            }
            UserResult::Token(Token(issued))
        }
    })
}

/// A name that goes into a path: only what can name a user.
fn check_name(name: &str) -> Result<()> {
    if crate::team::api::valid_user_name(name) {
        return Ok(());
    }
    Err(Error::usage(
        format!("{name:?} cannot name a user"),
        "see `moor user list`",
    ))
}

/// `moor audit`.
#[derive(Debug, Serialize)]
pub struct AuditLog(pub Audit);

impl Render for AuditLog {
    fn render(&self, out: &mut Text) {
        let mut table = Table::new(&["WHEN", "USER", "ACTION", "SUBJECT", "DETAIL"]);
        for e in &self.0.entries {
            let user = if e.user.is_empty() {
                "(server)"
            } else {
                &e.user
            };
            table.row(vec![
                e.at.clone(),
                user.to_owned(),
                e.action.clone(),
                e.subject.clone(),
                e.detail.clone(),
            ]);
        }
        out.raw(&table.render());
        if self.0.truncated {
            out.note("older entries matched too: narrow it with --since or --user");
        }
    }
}

/// `moor audit [--user U] [--since AGE]` (admins).
pub async fn audit(args: &AuditArgs) -> Result<AuditLog> {
    let client = login::require()?.client()?;
    let mut path = "/v1/audit?".to_owned();
    if let Some(user) = &args.user {
        check_name(user)?;
        path.push_str(&format!("user={user}&"));
    }
    if let Some(age) = args.since {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        path.push_str(&format!("since_ms={}", now.saturating_sub(age * 1000)));
    }
    Ok(AuditLog(
        client.call(Method::GET, &path, None::<&()>).await?,
    ))
}

impl UserResult {
    /// Rendered, to print.
    pub fn printed(&self) -> crate::output::Printed {
        use crate::output::Printed;
        match self {
            UserResult::Token(t) => Printed::of(t),
            UserResult::Users(u) => Printed::of(u),
            UserResult::Removed(r) => Printed::of(r),
        }
    }
}
