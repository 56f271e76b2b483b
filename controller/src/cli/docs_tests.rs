//! The reference stays whole: every command `moor --help` lists has its
//! section in docs/reference.md (a `###` heading naming `moor COMMAND`), and
//! the README names the two quick-start commands and links the reference.

use clap::CommandFactory;

use super::Cli;

fn read(path: &str) -> String {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    std::fs::read_to_string(root.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn every_command_has_its_section_in_the_reference() {
    let reference = read("docs/reference.md");
    let headings: Vec<&str> = reference
        .lines()
        .filter(|l| l.starts_with("### "))
        .collect();
    let mut missing = Vec::new();
    for command in Cli::command().get_subcommands() {
        let name = command.get_name();
        if name == "help" {
            continue;
        }
        let named = format!("`moor {name}");
        if !headings.iter().any(|h| h.contains(&named)) {
            missing.push(name.to_owned());
        }
    }
    assert!(
        missing.is_empty(),
        "docs/reference.md has no `### ... `moor NAME ...` section for: {}",
        missing.join(", ")
    );
}

#[test]
fn the_readme_is_the_front_door() {
    let readme = read("README.md");
    for needed in [
        "deploy/demo.sh",
        "deploy/test.sh",
        "docs/reference.md",
        "docs/layout.md",
        "BENCHMARKS.md",
    ] {
        assert!(
            readme.contains(needed),
            "README.md does not mention {needed}"
        );
    }
    assert!(
        readme.lines().count() < 200,
        "README.md is the front door: the reference lives in docs/"
    );
}
