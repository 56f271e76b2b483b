//! Where each `${{...}}` of a job's command stands, as the shell will read
//! it: bare, in double or single quotes, in a heredoc (its delimiter quoted
//! or not), in arithmetic, in a comment. Command substitutions (`$(...)`,
//! backticks) open a new bare level wherever they stand.
//!
//! This reading only chooses how a reference to a variable is written so
//! that the shell gives the value exactly (see `command.rs`): a value never
//! enters the command's text, so a wrong reading gives a wrong word, never
//! code.

/// Where a point of a shell command stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// A word of a command (also inside `$(...)` and backticks).
    Bare,
    /// Inside `"..."`.
    Double,
    /// Inside `'...'`.
    Single,
    /// In a heredoc's body; `quoted` when its delimiter was quoted (the
    /// shell expands nothing there).
    Heredoc {
        /// The delimiter was quoted (`<<'EOF'`).
        quoted: bool,
    },
    /// Inside `$((...))`.
    Arithmetic,
    /// After a `#` that starts a comment.
    Comment,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Frame {
    /// Bare words; `sub` for `$(...)` (a `)` closes it).
    Command {
        sub: bool,
    },
    Backtick,
    Double,
    Single,
    Arithmetic {
        depth: u32,
    },
}

/// A heredoc announced on the current line, read after its newline.
struct Pending {
    delimiter: String,
    quoted: bool,
    strip_tabs: bool,
}

/// The place of every `${{` in `command`, in order, by byte offset.
pub fn places(command: &str) -> Vec<(usize, Place)> {
    let bytes = command.as_bytes();
    let mut found = Vec::new();
    let mut stack = vec![Frame::Command { sub: false }];
    let mut pending: Vec<Pending> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if command[i..].starts_with("${{") {
            found.push((i, place_of(&stack)));
            i = command[i..]
                .find("}}")
                .map_or(bytes.len(), |end| i + end + 2);
            continue;
        }
        let top = *stack.last().unwrap_or(&Frame::Command { sub: false });
        let c = bytes[i];
        let word_start = i == 0 || b" \t\n;&|()".contains(&bytes[i - 1]);
        i += match top {
            Frame::Command { .. } | Frame::Backtick => {
                if c == b'#' && word_start {
                    let end = command[i..].find('\n').map_or(bytes.len(), |n| i + n);
                    comment(command, i, end, &mut found);
                    end - i
                } else if c == b'\n' && !pending.is_empty() {
                    1 + heredocs(command, i + 1, &mut pending, &mut found)
                } else if c == b'<'
                    && command[i..].starts_with("<<")
                    && !command[i..].starts_with("<<<")
                {
                    announce(command, i, &mut pending)
                } else {
                    step(command, i, &mut stack)
                }
            }
            _ => step(command, i, &mut stack),
        };
    }
    found
}

fn place_of(stack: &[Frame]) -> Place {
    match stack.last() {
        Some(Frame::Double) => Place::Double,
        Some(Frame::Single) => Place::Single,
        Some(Frame::Arithmetic { .. }) => Place::Arithmetic,
        _ => Place::Bare,
    }
}

/// Records the placeholders inside a comment (from `start` to `end`).
fn comment(command: &str, start: usize, end: usize, found: &mut Vec<(usize, Place)>) {
    let mut from = start;
    while let Some(at) = command[from..end].find("${{") {
        found.push((from + at, Place::Comment));
        from += at + 3;
    }
}

/// One step of quotes, escapes and substitutions at `i`; the bytes read.
fn step(command: &str, i: usize, stack: &mut Vec<Frame>) -> usize {
    let rest = &command[i..];
    let top = *stack.last().unwrap_or(&Frame::Command { sub: false });
    let c = rest.as_bytes()[0];
    let len = rest.chars().next().map_or(1, char::len_utf8);
    match (top, c) {
        (Frame::Single, b'\'') => {
            stack.pop();
            1
        }
        (Frame::Single, _) => len,
        (_, b'\\') => 1 + rest[1..].chars().next().map_or(0, char::len_utf8),
        (_, b'$') if rest.starts_with("$((") => {
            stack.push(Frame::Arithmetic { depth: 0 });
            3
        }
        (_, b'$') if rest.starts_with("$(") => {
            stack.push(Frame::Command { sub: true });
            2
        }
        (Frame::Arithmetic { depth }, b'(') => {
            stack.pop();
            stack.push(Frame::Arithmetic { depth: depth + 1 });
            1
        }
        (Frame::Arithmetic { depth: 0 }, b')') => {
            stack.pop();
            if rest.starts_with("))") {
                2
            } else {
                1
            }
        }
        (Frame::Arithmetic { depth }, b')') => {
            stack.pop();
            stack.push(Frame::Arithmetic { depth: depth - 1 });
            1
        }
        (Frame::Backtick, b'`') => {
            stack.pop();
            1
        }
        (_, b'`') => {
            stack.push(Frame::Backtick);
            1
        }
        (Frame::Double, b'"') => {
            stack.pop();
            1
        }
        (Frame::Command { .. } | Frame::Backtick, b'"') => {
            stack.push(Frame::Double);
            1
        }
        (Frame::Command { .. } | Frame::Backtick, b'\'') => {
            stack.push(Frame::Single);
            1
        }
        (Frame::Command { sub: true }, b')') => {
            stack.pop();
            1
        }
        _ => len,
    }
}

/// Reads `<<WORD` / `<<-WORD` at `i` (the word may be quoted); the bytes read.
fn announce(command: &str, i: usize, pending: &mut Vec<Pending>) -> usize {
    let mut j = i + 2;
    let bytes = command.as_bytes();
    let strip_tabs = bytes.get(j) == Some(&b'-');
    if strip_tabs {
        j += 1;
    }
    while matches!(bytes.get(j), Some(b' ' | b'\t')) {
        j += 1;
    }
    let start = j;
    while j < bytes.len() && !b" \t\n;&|<>()".contains(&bytes[j]) {
        j += 1;
    }
    let word = &command[start..j];
    if !word.is_empty() {
        let quoted = word.contains(['\'', '"', '\\']);
        pending.push(Pending {
            delimiter: word.replace(['\'', '"', '\\'], ""),
            quoted,
            strip_tabs,
        });
    }
    j - i
}

/// Reads the bodies of the pending heredocs from `start` (just after the
/// newline that announced them); the bytes read, through each delimiter line.
fn heredocs(
    command: &str,
    start: usize,
    pending: &mut Vec<Pending>,
    found: &mut Vec<(usize, Place)>,
) -> usize {
    let mut at = start;
    for doc in pending.drain(..) {
        loop {
            if at >= command.len() {
                return command.len() - start;
            }
            let end = command[at..].find('\n').map_or(command.len(), |n| at + n);
            let line = &command[at..end];
            let line = if doc.strip_tabs {
                line.trim_start_matches('\t')
            } else {
                line
            };
            let next = (end + 1).min(command.len());
            if line == doc.delimiter {
                at = next;
                break;
            }
            let mut from = at;
            while let Some(p) = command[from..end].find("${{") {
                found.push((from + p, Place::Heredoc { quoted: doc.quoted }));
                from += p + 3;
            }
            at = next;
        }
    }
    at - start
}

#[cfg(test)]
mod tests {
    use super::{places, Place};

    fn of(command: &str) -> Vec<Place> {
        places(command).into_iter().map(|(_, p)| p).collect()
    }

    #[test]
    fn quotes_comments_heredocs_and_substitutions() {
        assert_eq!(
            of("echo ${{a}} \"${{a}}\" '${{a}}'"),
            [Place::Bare, Place::Double, Place::Single]
        );
        // A comment's quote does not open a quote.
        assert_eq!(
            of("# don't\necho ${{a}} # ${{a}}"),
            [Place::Bare, Place::Comment]
        );
        assert_eq!(of("echo a#b ${{a}}"), [Place::Bare]);
        assert_eq!(
            of("cat <<EOF\nx ${{a}} 'y\nEOF\necho ${{a}}\ncat <<-'E'\n\t${{a}}\n\tE\n${{a}}"),
            [
                Place::Heredoc { quoted: false },
                Place::Bare,
                Place::Heredoc { quoted: true },
                Place::Bare
            ]
        );
        assert_eq!(
            of("echo \"$(echo ${{a}})\" `echo ${{a}}` \"`echo '${{a}}'`\""),
            [Place::Bare, Place::Bare, Place::Single]
        );
        assert_eq!(
            of("echo $(( ${{a}} + (1) )) ${{a}}"),
            [Place::Arithmetic, Place::Bare]
        );
        assert_eq!(
            of("echo \\' ${{a}} \"\\\"${{a}}\""),
            [Place::Bare, Place::Double]
        );
    }
}
