//! What kind of machine a target is. One type for the command line
//! (`--kind`), the checks and the probe (which ask more of a head node), and
//! the store (which refuses a kind it does not know).

use serde::{Deserialize, Serialize};

/// What kind of machine a target is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum TargetKind {
    /// A VM or server (Ubuntu or Debian).
    Vm,
    /// An HDInsight (or other Spark/YARN) cluster head node.
    Hdinsight,
    /// This machine, reached without SSH (`--target local`); never stored.
    #[value(skip)]
    Local,
}

impl TargetKind {
    /// Its name, as stored and as the probe is told: `vm`, `hdinsight`, `local`.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::Vm => "vm",
            TargetKind::Hdinsight => "hdinsight",
            TargetKind::Local => "local",
        }
    }

    /// The kind called `name`, if there is one.
    pub fn parse(name: &str) -> Option<TargetKind> {
        [TargetKind::Vm, TargetKind::Hdinsight, TargetKind::Local]
            .into_iter()
            .find(|k| k.as_str() == name)
    }
}

impl std::fmt::Display for TargetKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_ones_are_none() {
        for kind in [TargetKind::Vm, TargetKind::Hdinsight, TargetKind::Local] {
            assert_eq!(TargetKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(TargetKind::parse("VM"), None);
        assert_eq!(TargetKind::parse("kubernetes"), None);
    }
}
