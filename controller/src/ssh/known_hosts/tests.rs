//! known_hosts parsing and verdicts, on files written here.

use super::*;

const ED1: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFX5JhiUxceeZBpKJzMdFCBfhj6xi/aU9pBwdEVU2+ua";
const ED2: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJXOCi0lHpfc4ReSBu7HotDI4iiwY+q33KdoVEVIoVoS";

fn key(s: &str) -> PublicKey {
    PublicKey::from_openssh(s).unwrap()
}

fn hosts_with(workspace: &str, user: &str) -> (tempfile::TempDir, KnownHosts) {
    let dir = tempfile::tempdir().unwrap();
    let w = dir.path().join("known_hosts");
    let u = dir.path().join("user_known_hosts");
    fs::write(&w, workspace).unwrap();
    fs::write(&u, user).unwrap();
    (dir, KnownHosts::new(w, Some(u)))
}

#[test]
fn negation_and_ports() {
    assert!(host_matches(
        "*.example.com,!bad.example.com",
        "good.example.com"
    ));
    assert!(!host_matches(
        "*.example.com,!bad.example.com",
        "bad.example.com"
    ));
    assert!(host_matches("[h]:2222", &host_entry_name("h", 2222)));
    assert!(!host_matches("h", &host_entry_name("h", 2222)));
}

#[test]
fn hashed_names_match() {
    // `ssh-keygen -H` of "example.com" with this salt.
    let salt = [7u8; 20];
    let mac = Hmac::<Sha1>::new_from_slice(&salt)
        .unwrap()
        .chain_update(b"example.com")
        .finalize()
        .into_bytes();
    let b64 = base64::engine::general_purpose::STANDARD;
    let pattern = format!("|1|{}|{}", b64.encode(salt), b64.encode(mac));
    assert!(host_matches(&pattern, "example.com"));
    assert!(!host_matches(&pattern, "example.org"));
}

#[test]
fn known_unknown_changed_revoked() {
    let (_d, kh) = hosts_with(&format!("h1 {ED1}\n"), &format!("@revoked h3 {ED2}\n"));
    assert!(matches!(
        kh.check("h1", 22, &key(ED1)),
        Verdict::Known { line: 1, .. }
    ));
    assert_eq!(kh.check("h2", 22, &key(ED1)), Verdict::Unknown);
    assert!(matches!(
        kh.check("h1", 22, &key(ED2)),
        Verdict::Changed {
            line: 1,
            in_workspace: true,
            ..
        }
    ));
    assert!(matches!(
        kh.check("h3", 22, &key(ED2)),
        Verdict::Revoked { .. }
    ));
    assert_eq!(kh.known_key_types("h1", 22), vec!["ssh-ed25519".to_owned()]);
}

const EC1: &str = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBMKmoTcMJYCqtcdlVNA0hQ2IXK+NdW70G8iNqYlGu6OYHj1NuN3FxhLkLlRPSXJ2oz1pds84FRXl3BS0mR3hugM=";

#[test]
fn revocation_in_a_later_file_wins_over_a_known_line_in_an_earlier_one() {
    let (_d, kh) = hosts_with(&format!("h1 {ED1}\n"), &format!("@revoked * {ED1}\n"));
    assert!(matches!(
        kh.check("h1", 22, &key(ED1)),
        Verdict::Revoked { .. }
    ));
}

#[test]
fn a_key_of_another_type_is_changed_not_unknown() {
    let (_d, kh) = hosts_with(&format!("h1 {ED1}\n"), &format!("h2 {ED1}\n"));
    assert!(matches!(
        kh.check("h1", 22, &key(EC1)),
        Verdict::Changed {
            line: 1,
            in_workspace: true,
            ..
        }
    ));
    assert!(matches!(
        kh.check("h2", 22, &key(EC1)),
        Verdict::Changed {
            in_workspace: false,
            ..
        }
    ));
}

#[test]
fn a_given_file_vouches_only_where_nothing_else_speaks() {
    let (d, kh) = hosts_with(&format!("h1 {ED1}\n"), &format!("@revoked h4 {ED2}\n"));
    let given = d.path().join("fleet_known_hosts");
    fs::write(&given, format!("h1 {ED2}\nh2 {ED1}\nh3 {ED1}\nh4 {ED2}\n")).unwrap();
    let kh = kh.with_given(&[given]);
    // Known only there: trusted, to be recorded.
    assert!(matches!(
        kh.check("h2", 22, &key(ED1)),
        Verdict::Known {
            given: true,
            line: 2,
            ..
        }
    ));
    // The workspace records another key: changed, whatever the file says.
    assert!(matches!(
        kh.check("h1", 22, &key(ED2)),
        Verdict::Changed {
            in_workspace: true,
            ..
        }
    ));
    // The file records another key: changed.
    assert!(matches!(
        kh.check("h3", 22, &key(ED2)),
        Verdict::Changed {
            in_workspace: false,
            ..
        }
    ));
    // Revoked elsewhere: revoked.
    assert!(matches!(
        kh.check("h4", 22, &key(ED2)),
        Verdict::Revoked { .. }
    ));
    // Known in the workspace already: not recorded again.
    assert!(matches!(
        kh.check("h1", 22, &key(ED1)),
        Verdict::Known { given: false, .. }
    ));
}

#[test]
fn garbage_lines_are_skipped() {
    let text =
        format!("# comment\n\ngarbage\nh1 ssh-ed25519 notbase64\nh1 sk-unknown AAAA\nh1 {ED1}\n");
    let (_d, kh) = hosts_with(&text, "");
    assert!(matches!(
        kh.check("h1", 22, &key(ED1)),
        Verdict::Known { line: 6, .. }
    ));
}

#[test]
fn learn_then_forget() {
    let (_d, kh) = hosts_with("", "");
    kh.learn("h", 2222, &key(ED1)).unwrap();
    kh.learn("other", 22, &key(ED2)).unwrap();
    assert!(matches!(
        kh.check("h", 2222, &key(ED1)),
        Verdict::Known { .. }
    ));
    assert_eq!(kh.forget("h", 2222).unwrap(), 1);
    assert_eq!(kh.check("h", 2222, &key(ED1)), Verdict::Unknown);
    assert!(matches!(
        kh.check("other", 22, &key(ED2)),
        Verdict::Known { .. }
    ));
    assert_eq!(kh.forget("h", 2222).unwrap(), 0);
}
