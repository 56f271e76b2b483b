//! Shell words: how a value becomes one POSIX shell word that no shell
//! parses as code. Every command line moor sends to a host is built from
//! constants and words quoted here.

/// Quotes `s` as one POSIX shell word.
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::quote;

    #[test]
    fn a_quoted_word_is_taken_literally_by_sh() {
        for value in [
            "plain",
            "it's",
            "$(touch /tmp/x)",
            "`id`",
            "a b\nc",
            "'",
            "",
        ] {
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("printf %s {}", quote(value)))
                .output()
                .unwrap();
            assert_eq!(String::from_utf8(out.stdout).unwrap(), value);
        }
    }
}
