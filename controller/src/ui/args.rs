//! A command's arguments for a dashboard request, parsed as its command
//! line would be (the same defaults, the same environment variables), so
//! the dashboard calls the commands' own functions with what they expect.

use clap::{Args, FromArgMatches, Parser};

use crate::error::{Error, Result};

/// A command's arguments as its command line would give them (the same
/// defaults, the same environment variables).
pub fn parse<A: Args + FromArgMatches>(argv: &[&str]) -> Result<A> {
    #[derive(Parser)]
    #[command(no_binary_name = true)]
    struct Parsed<A: Args> {
        #[command(flatten)]
        args: A,
    }
    Parsed::<A>::try_parse_from(argv)
        .map(|parsed| parsed.args)
        .map_err(|e| {
            let first = e.to_string();
            let first = first.lines().next().unwrap_or("").to_owned();
            Error::usage(
                format!("the dashboard's request is not valid: {first}"),
                "reload the page",
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{CancelArgs, RunsArgs};

    #[test]
    fn arguments_get_the_command_line_s_defaults() {
        let args: CancelArgs = parse(&["abc"]).unwrap();
        assert_eq!(args.run, "abc");
        assert_eq!(args.grace, 10);
        let runs: RunsArgs = parse(&["--all"]).unwrap();
        assert!(runs.all && runs.target.is_none());
        let wrong = parse::<CancelArgs>(&["--nope"]).unwrap_err();
        assert!(wrong.to_string().contains("not valid"), "{wrong}");
    }
}
