//! The fleet flags: an inventory of many hosts (`--inventory`, `--pool`)
//! and how many to work on at once (`--parallel`), for `moor attach
//! --inventory` and `moor validate --inventory`.

use std::path::PathBuf;

use clap::Args;

use super::{NetworkArgs, TargetArgs};

/// Which hosts of an inventory, and how many at once.
#[derive(Debug, Args)]
pub struct InventoryArgs {
    /// Only this pool of the inventory (repeatable) [default: every pool].
    #[arg(
        long,
        value_name = "POOL",
        requires = "inventory",
        help_heading = "Fleet"
    )]
    pub pool: Vec<String>,

    /// Hosts worked on at once.
    #[arg(long, value_name = "N", default_value_t = crate::fleet::DEFAULT_PARALLEL, value_parser = clap::value_parser!(u16).range(1..=1024), help_heading = "Fleet")]
    pub parallel: u16,
}

/// `moor attach --inventory FILE`: every host of the file.
#[derive(Debug, Args)]
pub struct AttachFleetArgs {
    /// Which pools, how many at once.
    #[command(flatten)]
    pub inventory: InventoryArgs,

    /// Move a machine's attachment to its inventory name if it is attached under another name.
    #[arg(long)]
    pub replace: bool,

    /// Claim the machines even if another workspace claimed them.
    #[arg(long)]
    pub take_over: bool,

    /// With password authentication: do not enroll the workspace key.
    #[arg(long)]
    pub no_enroll_key: bool,

    /// Fail (instead of warn) when a machine has no public IP address.
    #[arg(long)]
    pub require_public_ip: bool,

    /// How the machines reach package indexes (proxy, CA).
    #[command(flatten)]
    pub network: NetworkArgs,

    /// Remote user for hosts the inventory gives none [default: from
    /// ~/.ssh/config, else $USER].
    #[arg(long, value_name = "USER", help_heading = "Connection")]
    pub user: Option<String>,

    /// SSH port for hosts the inventory gives none [default: from
    /// ~/.ssh/config, else 22].
    #[arg(long, value_name = "PORT", help_heading = "Connection")]
    pub port: Option<u16>,

    /// ssh client config to read Host aliases from.
    #[arg(long, value_name = "PATH", help_heading = "Connection")]
    pub ssh_config: Option<PathBuf>,

    /// Timeout, authentication (for hosts the file gives no key or
    /// password) and host-key flags.
    #[command(flatten)]
    pub target: TargetArgs,
}
