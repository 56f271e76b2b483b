//! The fleet flags: an inventory of many hosts (`--inventory`, `--pool`)
//! and how many to work on at once (`--parallel`), for `moor attach
//! --inventory` and `moor validate --inventory`.

use std::path::PathBuf;

use clap::Args;

use super::{AttachOptions, TargetArgs};

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

    /// What each attach may do, and the network settings it records.
    #[command(flatten)]
    pub options: AttachOptions,

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
