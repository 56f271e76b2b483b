//! Azure resource ids of the machines moor attaches, checked the way Azure
//! reads them: segment names compare case-insensitively, values are kept as
//! given.
//!
//! - VM: `/subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.Compute/virtualMachines/<vm>`
//! - HDInsight: `/subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.HDInsight/clusters/<cluster>`

use serde::Serialize;

use crate::error::{Error, Result};

/// What kind of resource an id must name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceKind {
    /// `Microsoft.Compute/virtualMachines`.
    VirtualMachine,
    /// `Microsoft.HDInsight/clusters`.
    HdInsightCluster,
}

impl ResourceKind {
    fn provider(self) -> (&'static str, &'static str) {
        match self {
            ResourceKind::VirtualMachine => ("Microsoft.Compute", "virtualMachines"),
            ResourceKind::HdInsightCluster => ("Microsoft.HDInsight", "clusters"),
        }
    }
}

/// A parsed resource id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResourceId {
    /// Subscription GUID.
    pub subscription: String,
    /// Resource group.
    pub resource_group: String,
    /// VM or cluster name.
    pub name: String,
    /// The id as given.
    pub id: String,
}

/// Parses `id` as a resource of `kind`; the error names the wrong segment.
pub fn parse(id: &str, kind: ResourceKind) -> Result<ResourceId> {
    let (provider, resource_type) = kind.provider();
    let expected =
        format!("/subscriptions/<subscription-id>/resourceGroups/<group>/providers/{provider}/{resource_type}/<name>");
    let bad = |what: String| {
        Error::usage(
            format!("--resource-id {id:?}: {what}"),
            format!("pass it as {expected}"),
        )
    };
    let Some(rest) = id.strip_prefix('/') else {
        return Err(bad("it must start with /subscriptions/".into()));
    };
    let segments: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
    let names = [
        "subscriptions",
        "",
        "resourceGroups",
        "",
        "providers",
        provider,
        resource_type,
        "",
    ];
    let labels = [
        "subscriptions",
        "subscription id",
        "resourceGroups",
        "resource group",
        "providers",
        "provider",
        "resource type",
        "name",
    ];
    for (i, (want, label)) in names.iter().zip(labels).enumerate() {
        let Some(got) = segments.get(i) else {
            return Err(bad(format!("the {label} segment is missing")));
        };
        if got.is_empty() {
            return Err(bad(format!("the {label} segment is empty")));
        }
        if !want.is_empty() && !got.eq_ignore_ascii_case(want) {
            return Err(bad(format!(
                "segment {} is {got:?}, expected {want:?} ({label})",
                i + 1
            )));
        }
    }
    if segments.len() > names.len() {
        return Err(bad(format!(
            "unexpected segments after the name: {:?}",
            segments[names.len()..].join("/")
        )));
    }
    if !is_guid(segments[1]) {
        return Err(bad(format!(
            "the subscription id {:?} is not a GUID",
            segments[1]
        )));
    }
    if let Err(why) = check_resource_group(segments[3]) {
        return Err(bad(format!("the resource group {:?} {why}", segments[3])));
    }
    let name_rule = match kind {
        ResourceKind::VirtualMachine => check_vm_name(segments[7]),
        ResourceKind::HdInsightCluster => check_cluster_name(segments[7]),
    };
    if let Err(why) = name_rule {
        return Err(bad(format!(
            "the {resource_type} name {:?} {why}",
            segments[7]
        )));
    }
    Ok(ResourceId {
        subscription: segments[1].to_owned(),
        resource_group: segments[3].to_owned(),
        name: segments[7].to_owned(),
        id: id.to_owned(),
    })
}

/// Azure's rule for resource group names: 1 to 90 letters, digits, `-`, `_`,
/// `.`, `(`, `)`, not ending in `.`.
fn check_resource_group(name: &str) -> std::result::Result<(), &'static str> {
    if name.chars().count() > 90 {
        return Err("is longer than 90 characters");
    }
    if !name
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | '(' | ')'))
    {
        return Err("may hold only letters, digits, '-', '_', '.', '(' and ')'");
    }
    if name.ends_with('.') {
        return Err("may not end with '.'");
    }
    Ok(())
}

/// Azure's rule for (Linux) VM names: 1 to 64 characters, none of them
/// white space, a control character or one of
/// `~ ! @ # $ % ^ & * ( ) = + _ [ ] { } \ | ; : ' " , < > / ?`, not ending
/// with `.` or `-`.
fn check_vm_name(name: &str) -> std::result::Result<(), &'static str> {
    const FORBIDDEN: &str = "~!@#$%^&*()=+_[]{}\\|;:'\",<>/?";
    if name.chars().count() > 64 {
        return Err("is longer than 64 characters");
    }
    if name
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || FORBIDDEN.contains(c))
    {
        return Err("may not hold white space or any of ~ ! @ # $ % ^ & * ( ) = + _ [ ] { } \\ | ; : ' \" , < > / ?");
    }
    if name.ends_with('.') || name.ends_with('-') {
        return Err("may not end with '.' or '-'");
    }
    Ok(())
}

/// Azure's rule for HDInsight cluster names: 3 to 59 ASCII letters, digits
/// and `-`, starting and ending with a letter or digit.
fn check_cluster_name(name: &str) -> std::result::Result<(), &'static str> {
    if !(3..=59).contains(&name.len()) {
        return Err("must be 3 to 59 characters long");
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err("may hold only letters, digits and '-'");
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Err("must start and end with a letter or digit");
    }
    Ok(())
}

fn is_guid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()))
}

/// The SSH endpoint of an HDInsight cluster: `<cluster>-ssh.azurehdinsight.net`.
pub fn hdinsight_ssh_host(cluster: &str) -> String {
    format!("{cluster}-ssh.azurehdinsight.net")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUB: &str = "6c2f2e4a-1b2c-4d5e-8f90-123456789abc";

    fn vm(id: &str) -> Result<ResourceId> {
        parse(id, ResourceKind::VirtualMachine)
    }

    fn message(r: Result<ResourceId>) -> String {
        r.unwrap_err().to_string()
    }

    #[test]
    fn vm_ids_parse_case_insensitively() {
        let id = format!("/subscriptions/{SUB}/resourceGroups/ml-rg/providers/Microsoft.Compute/virtualMachines/dsvm1");
        let r = vm(&id).unwrap();
        assert_eq!(
            (
                r.subscription.as_str(),
                r.resource_group.as_str(),
                r.name.as_str()
            ),
            (SUB, "ml-rg", "dsvm1")
        );
        let lower = format!("/SUBSCRIPTIONS/{SUB}/resourcegroups/ml-rg/PROVIDERS/microsoft.compute/VIRTUALMACHINES/dsvm1/");
        assert_eq!(vm(&lower).unwrap().name, "dsvm1");
    }

    #[test]
    fn segments_follow_azures_naming_rules_and_errors_name_them() {
        let id = |rg: &str, vm_name: &str| {
            format!("/subscriptions/{SUB}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachines/{vm_name}")
        };
        assert!(vm(&id("ml_rg.(prod)", "dsvm-1.a")).is_ok());
        assert!(vm(&id("rg", "gpu.vm-2")).is_ok());
        assert!(vm(&id("rg", "x")).is_ok());
        for (rg, name, says) in [
            ("rg.", "vm", "resource group \"rg.\" may not end with '.'"),
            ("r;g", "vm", "resource group \"r;g\" may hold only"),
            (&"r".repeat(91), "vm", "longer than 90"),
            ("rg", "_vm", "virtualMachines name \"_vm\" may not hold"),
            ("rg", "vm-", "may not end with '.' or '-'"),
            ("rg", "v;m", "may not hold white space"),
            ("rg", "v$(id)m", "may not hold"),
            ("rg", &"v".repeat(65), "longer than 64"),
        ] {
            let m = message(vm(&id(rg, name)));
            assert!(m.contains(says), "{rg} {name}: {m}");
        }
        let cluster = |name: &str| {
            parse(
                &format!("/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.HDInsight/clusters/{name}"),
                ResourceKind::HdInsightCluster,
            )
        };
        assert!(cluster("spark-1").is_ok());
        for bad in ["ab", "-spark", "spark_1", "spärk"] {
            assert!(message(cluster(bad)).contains("clusters name"), "{bad}");
        }
    }

    #[test]
    fn hdinsight_ids() {
        let id = format!(
            "/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.HDInsight/clusters/spark1"
        );
        assert_eq!(
            parse(&id, ResourceKind::HdInsightCluster).unwrap().name,
            "spark1"
        );
        assert_eq!(
            hdinsight_ssh_host("spark1"),
            "spark1-ssh.azurehdinsight.net"
        );
        // A VM id is the wrong provider for a cluster, and the other way round.
        let err = message(parse(&id, ResourceKind::VirtualMachine));
        assert!(
            err.contains("segment 6 is \"Microsoft.HDInsight\", expected \"Microsoft.Compute\""),
            "{err}"
        );
        let missing = format!(
            "/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.HDInsight/clusters"
        );
        assert!(message(parse(&missing, ResourceKind::HdInsightCluster))
            .contains("the name segment is missing"));
    }

    #[test]
    fn errors_name_the_segment() {
        let cases = [
            ("subscriptions/x".to_owned(), "must start with /subscriptions/"),
            (format!("/subscription/{SUB}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/v"), "segment 1 is \"subscription\""),
            ("/subscriptions/not-a-guid/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/v".to_owned(), "is not a GUID"),
            (format!("/subscriptions/{SUB}/resourceGroups//providers/Microsoft.Compute/virtualMachines/v"), "resource group segment is empty"),
            (format!("/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Compute/disks/v"), "(resource type)"),
            (format!("/subscriptions/{SUB}/resourceGroups/rg"), "providers segment is missing"),
            (format!("/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/v/extra"), "unexpected segments"),
        ];
        for (id, needle) in cases {
            let err = vm(&id).unwrap_err();
            assert_eq!(err.exit_code(), crate::error::exit::USAGE);
            assert!(err.to_string().contains(needle), "{id}: {err}");
            assert!(err.fix().contains("Microsoft.Compute/virtualMachines"));
        }
    }
}
