//! The part of a command's long `--help` after its options: examples, then exit
//! statuses. Each command declares both lists beside its `Args`; `--help` shows them
//! through [`long_help`], and the man pages read them back from that same text
//! ([`examples_in_help`], [`crate::exit::statuses_in_help`]), so each list exists once.

use crate::exit;

/// One example: what it does, in words, and the command lines that do it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Example {
    pub what: &'static str,
    /// One or more shell lines, separated by newlines.
    pub lines: &'static str,
}

/// The heading above the examples.
const HEADING: &str = "Examples:";

/// Examples, then exit statuses: the `after_long_help` of a command.
pub fn long_help(examples: &[Example], statuses: &[exit::Status]) -> String {
    let mut s = String::new();
    if !examples.is_empty() {
        s.push_str(HEADING);
        s.push('\n');
        for e in examples {
            s.push_str(&format!("  # {}\n", e.what));
            for line in e.lines.lines() {
                s.push_str(&format!("  {line}\n"));
            }
        }
        s.push('\n');
    }
    s.push_str(&exit::help_text(statuses));
    s
}

/// The examples in a text made by [`long_help`], as (what, lines) in order.
pub fn examples_in_help(text: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text
        .lines()
        .skip_while(|l| *l != HEADING)
        .skip(1)
        .take_while(|l| !l.is_empty())
    {
        let Some(line) = line.strip_prefix("  ") else {
            break;
        };
        match (line.strip_prefix("# "), out.last_mut()) {
            (Some(what), _) => out.push((what.to_string(), String::new())),
            (None, Some((_, lines))) => {
                if !lines.is_empty() {
                    lines.push('\n');
                }
                lines.push_str(line);
            }
            (None, None) => break,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_man_pages_read_back_the_examples_help_shows() {
        let examples = [
            Example {
                what: "one line",
                lines: "racefree makedirs a/b",
            },
            Example {
                what: "two lines",
                lines: "exec 9>/run/lock/job\nracefree lock -n 9 || exit 1",
            },
        ];
        let help = long_help(&examples, &[exit::SUCCESS]);
        assert_eq!(
            examples_in_help(&help),
            vec![
                ("one line".to_string(), "racefree makedirs a/b".to_string()),
                (
                    "two lines".to_string(),
                    "exec 9>/run/lock/job\nracefree lock -n 9 || exit 1".to_string()
                ),
            ]
        );
        assert_eq!(exit::statuses_in_help(&help), vec![(0, "success".into())]);
    }

    #[test]
    fn no_examples_no_heading() {
        let help = long_help(&[], &[exit::SUCCESS]);
        assert!(!help.contains(HEADING));
        assert!(examples_in_help(&help).is_empty());
    }
}
