//! The `racefree makedirs` command line: gather paths, run them in parallel, report
//! in input order.

use std::ffi::OsString;
use std::io::{self, BufRead, BufWriter, Write};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args as ClapArgs;
use rayon::prelude::*;

use super::{Error, Made, Options, make_dirs, mode};
use crate::exit::{self, Exit};
use crate::help;
use crate::quote::{json_path, quote};

/// The long description, for `--help` and the man page. cli.rs names it too: the
/// subcommand's doc comment there would otherwise replace it.
pub const LONG_ABOUT: &str = "Create each PATH and every missing ancestor, like mkdir -p, but correct while \
        any number of other processes create or remove the same or overlapping trees at the same \
        moment.\n\n\
        A PATH succeeds when it is a directory afterwards, whoever created it: 'already exists' is \
        tolerated at every level, whatever errno reported it (EEXIST, EACCES, EROFS, EISDIR). An \
        ancestor removed mid-walk makes the walk start over, a bounded number of times. A component \
        that exists and is not a directory (a file, a socket, a dangling symlink) is an error naming \
        that component, and nothing is created below it.\n\n\
        New ancestors get mode (0777 & ~umask) | u+wx; a new leaf gets -m MODE exactly, else \
        0777 & ~umask; an existing leaf keeps its mode. The process umask is never changed.\n\n\
        Paths longer than PATH_MAX work: such a path is walked one component at a time relative \
        to held directory descriptors.\n\n\
        Many paths run in parallel; output and errors come out in input order, and one path's \
        failure does not stop the others.\n\n\
        Compared with GNU mkdir: -p/--parents is accepted and changes nothing, since makedirs \
        always makes missing parents and accepts a directory that exists (--exclusive is mkdir \
        without -p: the leaf must be new). -m and -v are mkdir's, with -m applying to the leaf \
        only, as mkdir -p applies it, and -v printing 'racefree: created directory' where mkdir \
        prints 'mkdir: created directory'. -Z and --context[=CTX] are refused (exit 2): racefree \
        sets no SELinux or SMACK security context, so a new directory gets the one the kernel \
        gives it (restorecon can set the policy's default afterwards). Error messages start \
        'racefree: error: cannot create directory' where mkdir's start 'mkdir: cannot create \
        directory', and a usage error exits 2 where mkdir exits 1.";

/// makedirs's examples, for `--help` and the man page.
pub const EXAMPLES: &[help::Example] = &[
    help::Example {
        what: "mkdir -p, correct while other processes build or remove the same tree",
        lines: "racefree makedirs -p build/obj/x86_64 build/obj/arm64",
    },
    help::Example {
        what: "copy a tree's directories (any names, newlines included) into another",
        lines: "(cd src && find . -type d -print0) | (cd dst && racefree makedirs -0 --from -)",
    },
    help::Example {
        what: "mkdir as a lock: exit 3 if another job made it first",
        lines: "racefree makedirs --exclusive /run/lock/nightly.d || exit 0",
    },
    help::Example {
        what: "a private leaf, its new ancestors as mkdir -p makes them",
        lines: "racefree makedirs -m 700 \"$HOME/.cache/app/keys\"",
    },
    help::Example {
        what: "in a world-writable directory: refuse every symlink on the way",
        lines: "racefree makedirs --no-symlinks /tmp/shared/$USER/run",
    },
];

/// makedirs' exit statuses, for `--help` and the man page.
pub const STATUSES: &[exit::Status] = &[
    exit::SUCCESS,
    exit::Status {
        code: 1,
        meaning: "at least one PATH failed (it is not a directory afterwards), or stdout could not be written (a closed pipe, a full disk); every other PATH was still made. Also --from - with standard input closed, before anything was made",
    },
    exit::Status {
        code: 2,
        meaning: "usage error: bad option or MODE, -Z or --context, no PATH, an empty PATH or a NUL inside one; nothing was touched, except that a bad --from entry stops the list after the paths before it",
    },
    exit::Status {
        code: 3,
        meaning: "--exclusive: a leaf already existed, so this call did not create it",
    },
];

#[derive(Debug, ClapArgs)]
#[command(long_about = LONG_ABOUT, after_long_help = help::long_help(EXAMPLES, STATUSES))]
pub struct Args {
    /// Directories to create
    // Any bytes at all: an empty PATH is refused by our own check, with a message
    // that says so, rather than by clap's PathBuf parser.
    #[arg(value_name = "PATH", value_hint = clap::ValueHint::DirPath, value_parser = clap::builder::ValueParser::os_string())]
    pub paths: Vec<OsString>,

    /// Mode of each leaf this call creates, as GNU mkdir -m gives it: octal (755,
    /// 00755) or chmod(1)'s symbolic grammar (u=rwx,g=rx,o=, a+X, go-w, -w, =rx, +t);
    /// a clause without u/g/o/a is limited by the umask, and '=' grants only what it names
    #[arg(short, long, value_name = "MODE", allow_hyphen_values = true)]
    pub mode: Option<String>,

    /// Accepted for mkdir -p's sake and changes nothing: missing parents are always
    /// made, and an existing directory is always fine
    #[arg(short = 'p', long, overrides_with = "parents")]
    pub parents: bool,

    /// Refused: racefree sets no SELinux or SMACK security context (mkdir -Z,
    /// --context[=CTX])
    #[arg(short = 'Z', long = "context", value_name = "CTX", num_args = 0..=1,
          require_equals = true, default_missing_value = "")]
    pub context: Option<String>,

    /// Print "racefree: created directory 'P'" for each directory this process created.
    /// Names are quoted as GNU mkdir -v quotes them in the C locale: 'nl'$'\n''x'
    #[arg(short, long)]
    pub verbose: bool,

    /// Refuse every symlink in the path; walk one component at a time with
    /// openat(O_NOFOLLOW) and mkdirat from the first component. Safe in world-writable
    /// directories, where a component could be swapped for a symlink mid-walk
    #[arg(long)]
    pub no_symlinks: bool,

    /// Resolve each PATH relative to DIR and never leave DIR (openat2 RESOLVE_BENEATH):
    /// '..' and symlinks that would escape are errors. Each new directory is resolved
    /// again from DIR after mkdir; if a directory the walk held was moved out of DIR
    /// meanwhile, the one just made (outside) is removed again and the PATH fails:
    /// no directory this call made is left outside DIR, unless something was put into
    /// it in that instant (the error then says so)
    #[arg(long, value_name = "DIR")]
    pub beneath: Option<PathBuf>,

    /// Ancestors may already exist, but the leaf must be created by this call (the
    /// mkdir-as-a-lock idiom); exit 3 if it already exists
    #[arg(long)]
    pub exclusive: bool,

    /// Read paths from FILE ('-' for standard input), one per line, after any PATH
    /// arguments. Read as a stream, 4096 paths at a time, so memory stays flat however
    /// long the list; an entry is at most 1 MiB. The first bad entry (empty, holding a
    /// NUL, too long) is a usage error naming its position: the paths before it are
    /// made and reported, none after it
    #[arg(long, value_name = "FILE")]
    pub from: Option<PathBuf>,

    /// With --from: paths are separated by NUL bytes, not newlines
    #[arg(short = '0', long = "null", requires = "from")]
    pub null: bool,

    /// How many paths to work on at once [default: the number of cores]. Never more
    /// threads than there are paths, nor than 4 per core (at least 64)
    #[arg(short, long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: Option<u16>,

    /// Print one JSON object per path on stdout: path, directory, created, retries, error.
    /// Lossless: a path that is not UTF-8 is written as {"bytes_hex": "<its bytes in hex>"}
    #[arg(long)]
    pub json: bool,

    /// How many times to start over when the tree changes under the walk
    #[arg(long, value_name = "N", default_value_t = super::DEFAULT_ATTEMPTS,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub attempts: u32,
}

/// Paths per batch: each batch runs in parallel and is reported before the next is
/// read, so output streams in input order and memory stays flat for any list length.
const BATCH: usize = 4096;
/// A batch also ends once its paths hold this many bytes.
const BATCH_BYTES: usize = 4 << 20;
/// The longest entry `--from` accepts. Paths longer than PATH_MAX work (the walk
/// goes one component at a time), so the limit is generous, but it is a limit: an
/// input with no separator (`--from /dev/zero`) ends with an error, not with memory.
pub const MAX_ENTRY: usize = 1 << 20;

/// How many worker threads to start: never more than the paths in hand, nor a
/// cap of 4 per core (at least 64), whatever `-j` said.
pub fn worker_count(requested: Option<u16>, paths: usize, cores: usize) -> usize {
    let cap = (4 * cores).max(64);
    let wanted = requested.map_or(cores, usize::from);
    wanted.min(paths).min(cap).max(1)
}

pub fn run(args: Args) -> anyhow::Result<Exit> {
    if args.context.is_some() {
        return Err(exit::usage(
            "-Z/--context: racefree sets no SELinux or SMACK security context; a new directory gets \
             the one the kernel gives it (drop -Z, or run restorecon on the directories afterwards)",
        ));
    }
    // Read the umask before any worker thread exists (see mode::umask).
    let umask = mode::umask();
    let leaf_mode = match &args.mode {
        Some(spec) => Some(mode::parse_mode(spec, umask).map_err(exit::usage)?),
        None => None,
    };
    // PATH arguments are checked before anything is touched.
    for p in &args.paths {
        super::validate(Path::new(p))
            .map_err(|e| exit::usage(format!("invalid PATH {}: {e}", quote(p))))?;
    }
    if args.paths.is_empty() && args.from.is_none() {
        return Err(exit::usage("no PATH given (as arguments or with --from)"));
    }
    let mut input = Input {
        args: args
            .paths
            .iter()
            .map(PathBuf::from)
            .collect::<Vec<_>>()
            .into_iter(),
        list: match &args.from {
            Some(from) => Some(List::open(from, args.null)?),
            None => None,
        },
    };
    let beneath = match &args.beneath {
        Some(dir) => Some(open_beneath(dir)?),
        None => None,
    };
    let opts = Options {
        follow_symlinks: !args.no_symlinks,
        beneath,
        leaf_mode,
        exclusive: args.exclusive,
        attempts: args.attempts,
    };

    let mut out = Output {
        w: BufWriter::new(io::stdout().lock()),
        lost: None,
    };
    let mut status = Exit::Success;
    let mut pool: Option<Option<rayon::ThreadPool>> = None;
    let mut total = 0usize;
    loop {
        let (batch, stop) = input.next_batch();
        total += batch.len();
        if total == 0 && stop.is_none() {
            return Err(exit::usage("no PATH given (as arguments or with --from)"));
        }
        // The first batch is all the paths there are, or BATCH of them: enough to
        // know how many threads the work can use.
        let pool = match &mut pool {
            Some(p) => p,
            None => pool.insert(start_workers(args.jobs, batch.len())?),
        };
        let results: Vec<Result<Made, Error>> = match pool {
            Some(pool) => pool.install(|| batch.par_iter().map(|p| make_dirs(p, &opts)).collect()),
            None => batch.iter().map(|p| make_dirs(p, &opts)).collect(),
        };
        for (path, result) in batch.iter().zip(results) {
            if let Err(e) = &result {
                status = status.worst(e.exit());
            }
            report(&mut out, &args, path, &result);
        }
        // Errors go to stderr as they happen; keep stdout in step with them.
        out.flush();
        if let Some(err) = stop {
            out.finish();
            return Err(err);
        }
        if input.is_done() {
            break;
        }
    }
    Ok(status.worst(out.finish()))
}

/// The worker pool for `paths` paths, or none when one thread is all the work can use.
fn start_workers(jobs: Option<u16>, paths: usize) -> anyhow::Result<Option<rayon::ThreadPool>> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let n = worker_count(jobs, paths, cores);
    if n == 1 {
        return Ok(None);
    }
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build()
        .map(Some)
        // rayon's error repeats the io::Error's own text; say it once, without
        // "(os error N)", like every other message here.
        .map_err(|e| {
            let why = std::error::Error::source(&e)
                .and_then(|s| s.downcast_ref::<io::Error>())
                .map_or_else(|| e.to_string(), os_desc);
            anyhow::anyhow!("starting {n} worker threads: {why}")
        })
}

/// An I/O error as strerror words it, without Rust's "(os error N)".
fn os_desc(e: &io::Error) -> String {
    let s = e.to_string();
    match e.raw_os_error() {
        Some(n) => s
            .strip_suffix(&format!(" (os error {n})"))
            .map_or(s.clone(), str::to_owned),
        None => s,
    }
}

/// stdout, written until it fails. A failed write (the reader went away, the disk
/// is full) stops the output, never the work: the directories are what was asked
/// for. The failure is reported once at the end and makes the exit status 1.
struct Output<W: Write> {
    w: BufWriter<W>,
    lost: Option<io::Error>,
}

impl<W: Write> Output<W> {
    fn line(&mut self, line: std::fmt::Arguments<'_>) {
        if self.lost.is_none() {
            if let Err(e) = writeln!(self.w, "{line}") {
                self.lost = Some(e);
            }
        }
    }

    fn flush(&mut self) {
        if self.lost.is_none() {
            if let Err(e) = self.w.flush() {
                self.lost = Some(e);
            }
        }
    }

    /// Flushes, and says whether all of the output got out.
    fn finish(&mut self) -> Exit {
        self.flush();
        match &self.lost {
            None => Exit::Success,
            Some(e) => {
                let why = os_desc(e);
                exit::print_error(format_args!(
                    "writing to stdout: {why} (output stopped there; every PATH was still worked on)"
                ));
                Exit::Failure
            }
        }
    }
}

fn report<W: Write>(out: &mut Output<W>, args: &Args, path: &Path, result: &Result<Made, Error>) {
    if args.json {
        let (created, retries, error) = match result {
            Ok(made) => (made.created.as_slice(), made.retries, None),
            Err(e) => (&[][..], 0, Some(e.to_string())),
        };
        let obj = serde_json::json!({
            "path": json_path(path),
            "directory": result.is_ok(),
            "created": created.iter().map(json_path).collect::<Vec<_>>(),
            "retries": retries,
            "error": error,
        });
        out.line(format_args!("{obj}"));
    } else if let Ok(made) = result {
        if args.verbose {
            for p in &made.created {
                out.line(format_args!("racefree: created directory {}", quote(p)));
            }
        }
    }
    if let Err(e) = result {
        out.flush();
        exit::print_error(format_args!("cannot create directory {}: {e}", quote(path)));
    }
}

/// The paths to make: the PATH arguments, then `--from`'s entries as they are read.
struct Input {
    args: std::vec::IntoIter<PathBuf>,
    list: Option<List>,
}

impl Input {
    /// Up to BATCH paths (or BATCH_BYTES), and the error that ended the input early
    /// if one did: the paths before a bad entry are made, none after it.
    fn next_batch(&mut self) -> (Vec<PathBuf>, Option<anyhow::Error>) {
        let mut batch = Vec::new();
        let mut bytes = 0;
        while batch.len() < BATCH && bytes < BATCH_BYTES {
            let next = match self.args.next() {
                Some(p) => Some(p),
                None => match &mut self.list {
                    Some(list) => match list.next_entry() {
                        Ok(p) => p,
                        Err(e) => return (batch, Some(e)),
                    },
                    None => None,
                },
            };
            let Some(p) = next else { break };
            bytes += p.as_os_str().len();
            batch.push(p);
        }
        (batch, None)
    }

    fn is_done(&self) -> bool {
        self.args.len() == 0 && self.list.as_ref().is_none_or(|l| l.done)
    }
}

/// `--from FILE`: entries separated by newlines (a trailing `\r` dropped) or NULs,
/// read one at a time through a buffer, each at most MAX_ENTRY bytes.
struct List {
    reader: Box<dyn BufRead>,
    /// How the list is named in messages.
    name: String,
    sep: u8,
    /// Entries read so far.
    entries: u64,
    done: bool,
}

impl List {
    fn open(from: &Path, null: bool) -> anyhow::Result<List> {
        let (reader, name): (Box<dyn BufRead>, String) = if from == Path::new("-") {
            if crate::startup::was_closed(libc::STDIN_FILENO) {
                // Start-up put /dev/null there: its empty list is not the user's.
                anyhow::bail!("reading paths from standard input: it is closed");
            }
            (Box::new(io::stdin().lock()), "standard input".into())
        } else {
            let f = std::fs::File::open(from)
                .with_context(|| format!("reading paths from {}", quote(from)))?;
            (
                Box::new(io::BufReader::with_capacity(64 << 10, f)),
                quote(from),
            )
        };
        Ok(List {
            reader,
            name,
            sep: if null { b'\0' } else { b'\n' },
            entries: 0,
            done: false,
        })
    }

    /// The next entry as a path, `None` at the end, or the error (a bad entry is a
    /// usage error naming its position).
    fn next_entry(&mut self) -> anyhow::Result<Option<PathBuf>> {
        if self.done {
            return Ok(None);
        }
        let entry = self.entries + 1;
        let mut item = Vec::new();
        let ended = loop {
            let buf = match self.reader.fill_buf() {
                Ok(buf) => buf,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.done = true;
                    let e = anyhow::Error::new(e);
                    return Err(e.context(format!("reading paths from {}", self.name)));
                }
            };
            if buf.is_empty() {
                break true;
            }
            let (take, found) = match memchr::memchr(self.sep, buf) {
                Some(i) => (i, true),
                None => (buf.len(), false),
            };
            if item.len() + take > MAX_ENTRY {
                self.done = true;
                return Err(exit::usage(format!(
                    "{}, entry {entry}: longer than {MAX_ENTRY} bytes",
                    self.name
                )));
            }
            item.extend_from_slice(&buf[..take]);
            self.reader.consume(take + usize::from(found));
            if found {
                break false;
            }
        };
        if ended {
            self.done = true;
            // A final separator ends the last path rather than starting an empty one.
            if item.is_empty() {
                return Ok(None);
            }
        }
        self.entries = entry;
        if self.sep == b'\n' && item.last() == Some(&b'\r') {
            item.pop();
        }
        let p = PathBuf::from(OsString::from_vec(item));
        if let Err(e) = super::validate(&p) {
            self.done = true;
            return Err(exit::usage(format!("{}, entry {entry}: {e}", self.name)));
        }
        Ok(Some(p))
    }
}

fn open_beneath(dir: &Path) -> anyhow::Result<OwnedFd> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_PATH)
        .open(dir)
        .with_context(|| format!("cannot open --beneath directory {}", quote(dir)))?;
    Ok(OwnedFd::from(f))
}
