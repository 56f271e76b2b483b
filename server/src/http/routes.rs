//! Which request does what, and who may: the routing table of the API.

use std::collections::HashMap;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use moor::team::api::{Audit, Exec, Fault, NewUser, Removed, Role, WhoAmI, PREFIX};

use super::{body, json, Answer, Shared};
use crate::db::{Caller, Refusal, Since};

/// Routes a request of an authenticated `caller`.
pub async fn route(
    shared: &Arc<Shared>,
    caller: &Caller,
    request: Request<Incoming>,
) -> Result<Answer, Refusal> {
    let path = request.uri().path().to_owned();
    let query = query(request.uri().query().unwrap_or(""));
    let parts: Vec<&str> = path
        .strip_prefix(PREFIX)
        .unwrap_or("")
        .split('/')
        .filter(|p| !p.is_empty())
        .collect();
    let db = &shared.db;
    match (request.method().clone(), parts.as_slice()) {
        (Method::GET, ["whoami"]) => Ok(json(
            StatusCode::OK,
            &WhoAmI {
                user: caller.name.clone(),
                role: caller.role,
            },
        )),
        (Method::GET, ["users"]) => Ok(json(StatusCode::OK, &db.users().await?)),
        (Method::POST, ["users"]) => {
            caller.require(Role::Admin, "add users")?;
            let new: NewUser = body(request).await?;
            Ok(json(
                StatusCode::CREATED,
                &db.add_user(&caller.name, &new).await?,
            ))
        }
        (Method::DELETE, ["users", name]) => {
            caller.require(Role::Admin, "remove users")?;
            db.remove_user(&caller.name, name).await?;
            Ok(json(
                StatusCode::OK,
                &Removed {
                    name: (*name).to_owned(),
                },
            ))
        }
        (Method::POST, ["users", name, "token"]) => {
            if *name != caller.name {
                caller.require(Role::Admin, "give another user a new token")?;
            }
            Ok(json(
                StatusCode::OK,
                &db.rotate_token(&caller.name, name).await?,
            ))
        }
        (Method::POST, ["exec"]) => {
            let exec: Exec = body(request).await?;
            Ok(super::frames(
                crate::exec::exec(shared, caller, exec).await?,
            ))
        }
        (Method::GET, ["sources", sha]) => Ok(json(
            StatusCode::OK,
            &crate::sources::state(shared.data.dir(), sha)?,
        )),
        (Method::PUT, ["sources", sha]) => {
            caller.require(Role::Member, "send a run's source")?;
            let sha = (*sha).to_owned();
            Ok(json(
                StatusCode::OK,
                &crate::sources::receive(shared.data.dir(), &sha, request).await?,
            ))
        }
        (Method::GET, ["audit"]) => {
            caller.require(Role::Admin, "read the audit log")?;
            let since = Since {
                user: query.get("user").cloned().unwrap_or_default(),
                from_ms: match query.get("since_ms") {
                    Some(ms) => ms.parse().map_err(|_| bad_query("since_ms", ms))?,
                    None => 0,
                },
            };
            let (entries, truncated) = db.audit(&since).await?;
            Ok(json(StatusCode::OK, &Audit { entries, truncated }))
        }
        _ => Err(Refusal::new(
            Fault::NotFound,
            format!("the server has no {} {path}", request.method()),
            "update moor: this server may be older than this moor",
        )),
    }
}

fn bad_query(name: &str, value: &str) -> Refusal {
    Refusal::new(
        Fault::BadRequest,
        format!("{name}={value:?} is not a number"),
        "send what `moor` sends",
    )
}

/// A query string's `name=value` pairs (the API's values need no escapes).
fn query(text: &str) -> HashMap<String, String> {
    text.split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}
