//! The team workspace, from the client's side: `moor login` pins a `moor
//! server`'s certificate and keeps its token ([`login`]), and [`client`]
//! talks to the server's API ([`api`], the types both ends share) with the
//! certificate checked against the pin on every connection.

pub mod api;
pub mod client;
pub mod exec;
pub mod frames;
pub mod login;
