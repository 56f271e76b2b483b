//! A job's part on this host: the link through which a job's nodes watch
//! one another ([`link`]), this host's addresses for the rendezvous
//! ([`node`]), and the launchers of a node's ranks: several processes
//! torch-style ([`launch`]) and MPI's ([`mpi`]).

pub mod launch;
pub mod link;
pub mod mpi;
pub mod node;
