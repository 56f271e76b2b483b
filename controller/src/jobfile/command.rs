//! A job's command with `${{inputs.NAME}}` and `${{outputs.NAME}}`
//! replaced. No value ever enters the command's text: each input is a
//! variable of the run (`MOOR_INPUT_NAME`: the literal value, or the path
//! under `$MOOR_INPUTS_DIR`), and `${{...}}` becomes a reference to it that
//! the shell expands as data wherever it stands (a comment, a heredoc,
//! `$(...)`, backticks: the shell never reads an expanded value as code).
//! Where it stands (see `place.rs`) only picks the quoting, so a value is
//! one word, exactly itself.

use super::place::{places, Place};
use super::{Input, JobFile};

/// What `${{...}}` stands for: variables of the run and fixed names only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replacement(String);

impl Replacement {
    /// The value of the run's variable `var`.
    pub fn var(var: &str) -> Replacement {
        Replacement(format!("${{{}}}", checked(var)))
    }

    /// A path: the folder in `dir` (`MOOR_INPUTS_DIR`), then the relative
    /// path in the variable `rel`.
    pub fn under(dir: &str, rel: &str) -> Replacement {
        Replacement(format!("${{{}}}/${{{}}}", checked(dir), checked(rel)))
    }

    /// A path: the folder in `dir` (`MOOR_OUTPUT_DIR`), then `name` (an
    /// output's name: letters, digits, `_`, `-`).
    pub fn under_name(dir: &str, name: &str) -> Replacement {
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-')),
            "{name:?} is not an output name"
        );
        Replacement(format!("${{{}}}/{name}", checked(dir)))
    }

    /// Written for where it stands.
    fn render(&self, place: Place) -> String {
        let refs = &self.0;
        match place {
            Place::Bare => format!("\"{refs}\""),
            Place::Single => format!("'\"{refs}\"'"),
            Place::Double | Place::Heredoc { .. } | Place::Arithmetic | Place::Comment => {
                refs.clone()
            }
        }
    }
}

/// `var` when it is a variable name (letters, digits, `_`).
fn checked(var: &str) -> &str {
    assert!(
        !var.is_empty() && var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
        "{var:?} is not a variable name"
    );
    var
}

/// The run's variable that holds input `name`: `MOOR_INPUT_` and the name,
/// each character that cannot be in a variable name made `_`.
pub fn input_variable(name: &str) -> String {
    let tail: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("MOOR_INPUT_{tail}")
}

impl JobFile {
    /// The command with `${{inputs.NAME}}` replaced by `input(..)` and
    /// `${{outputs.NAME}}` by `output(..)`, each quoted for where it
    /// stands. An unknown name, an input in a heredoc whose delimiter is
    /// quoted (nothing expands there) and a value that is not a number in
    /// `$((...))` (bash reads it as an expression) are errors.
    pub fn command_line(
        &self,
        input: impl Fn(&str, &Input) -> Replacement,
        output: impl Fn(&str) -> Replacement,
    ) -> Result<String, String> {
        let command = self.command.as_str();
        let mut out = String::new();
        let mut from = 0;
        for (start, place) in places(command) {
            out.push_str(&command[from..start]);
            let after = &command[start + 3..];
            let end = after
                .find("}}")
                .ok_or_else(|| format!("command: `${{{{` without `}}}}` in {command:?}"))?;
            let expr = after[..end].trim();
            let value = if let Some(name) = expr.strip_prefix("inputs.") {
                let given = self
                    .inputs
                    .get(name)
                    .ok_or_else(|| format!("command: ${{{{inputs.{name}}}}} names no input"))?;
                fits(name, given, place)?;
                input(name, given)
            } else if let Some(name) = expr.strip_prefix("outputs.") {
                if !self.outputs.iter().any(|o| o == name) {
                    return Err(format!("command: ${{{{outputs.{name}}}}} names no output"));
                }
                output(name)
            } else {
                return Err(format!(
                    "command: ${{{{{expr}}}}} is not supported (inputs.NAME, outputs.NAME)"
                ));
            };
            if place == (Place::Heredoc { quoted: true }) {
                return Err(format!(
                    "command: ${{{{{expr}}}}} stands in a heredoc whose delimiter is quoted, where the shell expands nothing"
                ));
            }
            out.push_str(&value.render(place));
            from = start + 3 + end + 2;
        }
        out.push_str(&command[from..]);
        Ok(out)
    }

    /// The run's variables that hold the inputs, each from `value(..)`; two
    /// names that make one variable are an error.
    pub fn input_variables(
        &self,
        value: impl Fn(&str, &Input) -> String,
    ) -> Result<std::collections::BTreeMap<String, String>, String> {
        let mut vars = std::collections::BTreeMap::new();
        for (name, input) in &self.inputs {
            let var = input_variable(name);
            if vars.insert(var.clone(), value(name, input)).is_some() {
                return Err(format!(
                    "inputs: two names make the variable {var}; rename one (letters, digits, '_')"
                ));
            }
        }
        Ok(vars)
    }
}

/// An input in `$((...))` must be a plain number.
fn fits(name: &str, input: &Input, place: Place) -> Result<(), String> {
    if place != Place::Arithmetic {
        return Ok(());
    }
    match input {
        Input::Literal(v) if is_number(v) => Ok(()),
        _ => Err(format!(
            "command: ${{{{inputs.{name}}}}} stands in $((...)) and is not a number; give a number, or use it outside arithmetic"
        )),
    }
}

fn is_number(v: &str) -> bool {
    let digits = v.strip_prefix('-').unwrap_or(v);
    !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit())
}
