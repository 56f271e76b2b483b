//! The flags of `moor validate` and `moor attach` (one host, or a fleet
//! from an inventory).

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::exit_codes::EXIT_CODES;
use super::{AttachFleetArgs, ConnectArgs, InventoryArgs, NetworkArgs};
use crate::target_kind::TargetKind;

/// `moor validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Attached targets to re-validate with their stored settings (instead
    /// of --host); several at once, at most --parallel in flight.
    #[arg(
        value_name = "NAME",
        conflicts_with_all = ["host", "cluster", "inventory"],
        required_unless_present_any = ["host", "cluster", "inventory"]
    )]
    pub targets: Vec<String>,

    /// Validate every host of this inventory (SkyPilot's
    /// ssh_node_pools.yaml, as `moor attach --inventory` reads it); records
    /// nothing but host keys learned. --user and --port stand in for hosts
    /// the file gives none (jump hosts: the ssh config's ProxyJump). Exits with the highest host exit code.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["host", "cluster", "kind", "jump"], help_heading = "Fleet")]
    pub inventory: Option<PathBuf>,

    /// Which pools of the inventory, how many hosts at once.
    #[command(flatten)]
    pub fleet: InventoryArgs,

    /// Where to connect and how to authenticate.
    #[command(flatten)]
    pub connect: ConnectArgs,

    /// What the machine is: a VM/server, or an HDInsight (Spark) head node.
    #[arg(long, value_enum, default_value_t = TargetKind::Vm)]
    pub kind: TargetKind,

    /// With --kind hdinsight: the cluster's name; the host defaults to
    /// <cluster>-ssh.azurehdinsight.net, and another --host is flagged.
    #[arg(long, value_name = "CLUSTER")]
    pub cluster: Option<String>,

    /// Fail (instead of warn) when the machine has no public IP address.
    #[arg(long)]
    pub require_public_ip: bool,
}

/// `moor attach vm|hdinsight NAME`, or `moor attach --inventory FILE`.
#[derive(Debug, Args)]
#[command(
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    arg_required_else_help = true
)]
pub struct AttachArgsTop {
    /// One machine.
    #[command(subcommand)]
    pub command: Option<AttachCommand>,

    /// Attach every host of this inventory (SkyPilot's ssh_node_pools.yaml:
    /// POOL: {hosts: [...], user, identity_file, password: $VAR}), at most
    /// --parallel at once; each pool becomes a moor pool of its attached
    /// targets, named POOL-N (N: the host's place in the list) or the
    /// host's ssh-config alias. Exits with the highest host exit code.
    #[arg(long, value_name = "FILE", required = true, help_heading = "Fleet")]
    pub inventory: Option<PathBuf>,

    /// Options of a fleet attach.
    #[command(flatten)]
    pub fleet: AttachFleetArgs,
}

/// `moor attach vm|hdinsight`.
#[derive(Debug, Subcommand)]
pub enum AttachCommand {
    /// Attach a VM or server (Ubuntu 20.04/22.04/24.04, Debian 11/12).
    #[command(after_help = EXIT_CODES)]
    Vm(AttachVmArgs),
    /// Attach an HDInsight (Spark) cluster's head node.
    #[command(after_help = EXIT_CODES)]
    Hdinsight(AttachHdinsightArgs),
}

/// `moor attach vm`.
#[derive(Debug, Args)]
pub struct AttachVmArgs {
    /// Options every attach takes.
    #[command(flatten)]
    pub common: AttachArgs,

    /// /subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.Compute/virtualMachines/<vm>
    #[arg(long, value_name = "ID")]
    pub resource_id: Option<String>,

    /// Where to connect and how to authenticate.
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// `moor attach hdinsight`.
#[derive(Debug, Args)]
pub struct AttachHdinsightArgs {
    /// Options every attach takes.
    #[command(flatten)]
    pub common: AttachArgs,

    /// /subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.HDInsight/clusters/<cluster>
    #[arg(long, value_name = "ID")]
    pub resource_id: Option<String>,

    /// Cluster name: connects to <cluster>-ssh.azurehdinsight.net.
    #[arg(long, value_name = "CLUSTER")]
    pub cluster: Option<String>,

    /// Where to connect and how to authenticate (--host overrides the cluster's SSH endpoint).
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// Options of every attach of one machine.
#[derive(Debug, Args)]
pub struct AttachArgs {
    /// Target name: a letter, then letters, digits, '-' or '_' (at most 64).
    #[arg(value_name = "NAME")]
    pub name: String,

    /// What an attach may do, and the network settings it records.
    #[command(flatten)]
    pub options: AttachOptions,
}

/// What an attach may do (one machine, or each of a fleet's).
#[derive(Debug, Clone, Args)]
pub struct AttachOptions {
    /// Move the machine's attachment here if it is attached under another name.
    #[arg(long)]
    pub replace: bool,

    /// Claim the machine even if another workspace claimed it.
    #[arg(long)]
    pub take_over: bool,

    /// With password authentication: do not enroll the workspace key, so
    /// every later command needs the password again.
    #[arg(long)]
    pub no_enroll_key: bool,

    /// Fail (instead of warn) when the machine has no public IP address.
    #[arg(long)]
    pub require_public_ip: bool,

    /// How the machine reaches package indexes (proxy, CA).
    #[command(flatten)]
    pub network: NetworkArgs,
}
