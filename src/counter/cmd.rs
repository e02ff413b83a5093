//! The `racefree counter` command line.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args as ClapArgs;

use super::{DEFAULT_ADD, DEFAULT_INIT, Options, Step};
use crate::exit::{self, Exit};
use crate::help;

/// The long description for --help and the man page (set on the subcommand in
/// cli.rs: a doc comment there would otherwise replace it).
pub const LONG_ABOUT: &str = "Add N to the integer stored in FILE and print the new value, atomically: any \
        number of processes (or hosts sharing the filesystem) can run this at once and each \
        gets a different value, with no update lost. It replaces the idiom \
        'flock F.lock sh -c \"n=$(cat F); echo $((n+1)) > F\"' and its usual mistakes.\n\n\
        The first call creates FILE, starting from --init. FILE holds one decimal number: an \
        optional sign, digits, at most one trailing newline; anything else is an error naming \
        FILE, which is then left untouched, as it is when the sum would leave the 64-bit range. \
        An empty FILE is such an error, not 0 (an in-place writer killed between truncating and \
        writing leaves one): remove it, and the next call starts the counter from --init.\n\n\
        The read-modify-write holds an exclusive lock on the sidecar FILE.lock, which is created \
        on first use and never removed (removing a lock file while others wait on it gives two \
        holders). FILE itself is never written in place: the new value goes to a temporary file \
        that is renamed over it, so readers that take no lock (--get, cat) always see a whole \
        number. A call killed between its link and its rename leaves its temporary file \
        .FILE.rf-counter, which the next call, holding the lock, removes. A symlink at FILE is \
        followed. With --sync the new value is on disk (file and \
        directory fsynced) before it is printed; without it, a crash may lose the latest \
        increments, but never mixes two values.";

/// counter's examples, for `--help` and the man page.
pub const EXAMPLES: &[help::Example] = &[
    help::Example {
        what: "a build number, unique however many jobs start at once",
        lines: "n=$(racefree counter /var/lib/ci/build-number)",
    },
    help::Example {
        what: "count in a loop, from many shells at once",
        lines: "for f in *.log; do grep -q ERROR \"$f\" && racefree counter errors >/dev/null; done\nracefree counter --get errors",
    },
    help::Example {
        what: "a slot counter that goes down as well as up, durably",
        lines: "racefree counter --add -1 --sync /var/lib/app/slots",
    },
];

/// counter's exit statuses, for `--help` and the man page.
pub const STATUSES: &[exit::Status] = &[
    exit::SUCCESS,
    exit::Status {
        code: 1,
        meaning: "FILE does not hold a number (an empty FILE included), the sum leaves the 64-bit range, or FILE or FILE.lock cannot be read or replaced; FILE is left as it was",
    },
    exit::Status {
        code: 2,
        meaning: "usage error: bad option or an empty FILE argument ('')",
    },
];

#[derive(Debug, ClapArgs)]
#[command(
    after_long_help = help::long_help(EXAMPLES, STATUSES)
)]
pub struct Args {
    /// The file holding the counter (created on first use)
    #[arg(value_name = "FILE", value_hint = clap::ValueHint::FilePath,
          value_parser = clap::builder::ValueParser::os_string())]
    pub file: OsString,

    /// Add N (may be negative)
    #[arg(long, value_name = "N", default_value_t = DEFAULT_ADD, allow_negative_numbers = true)]
    pub add: i64,

    /// The value a new counter starts from, before the first --add
    #[arg(long, value_name = "N", default_value_t = DEFAULT_INIT, allow_negative_numbers = true)]
    pub init: i64,

    /// fsync the file and its directory before printing the new value
    #[arg(long)]
    pub sync: bool,

    /// Print the current value without changing it or taking the lock (a counter that
    /// does not exist yet reads as --init)
    #[arg(long, conflicts_with_all = ["add", "sync"])]
    pub get: bool,

    /// Print one JSON object: file, value, previous (null when this call created
    /// FILE) and created
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> anyhow::Result<Exit> {
    let file = PathBuf::from(&args.file);
    if args.file.is_empty() {
        return Err(crate::exit::usage("FILE is empty"));
    }
    let step = if args.get {
        let value = super::get(&file)?;
        Step {
            previous: value,
            value: value.unwrap_or(args.init),
        }
    } else {
        let opts = Options {
            add: args.add,
            init: args.init,
            sync: args.sync,
        };
        super::step(&file, &opts)?
    };
    let mut out = std::io::stdout().lock();
    if args.json {
        let obj = serde_json::json!({
            "file": json_path(&file),
            "value": step.value,
            "previous": step.previous,
            "created": !args.get && step.previous.is_none(),
        });
        writeln!(out, "{obj}")?;
    } else {
        writeln!(out, "{}", step.value)?;
    }
    out.flush()?;
    Ok(Exit::Success)
}

/// A path in JSON, losslessly: a string when it is UTF-8, else its bytes as an array.
pub fn json_path(p: &Path) -> serde_json::Value {
    use std::os::unix::ffi::OsStrExt;
    match p.to_str() {
        Some(s) => serde_json::Value::from(s),
        None => serde_json::Value::from(p.as_os_str().as_bytes().to_vec()),
    }
}
