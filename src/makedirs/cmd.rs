//! The `racefree makedirs` command line: gather paths, run them in parallel, report
//! in input order.

use std::ffi::OsString;
use std::io::{self, BufWriter, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args as ClapArgs;
use rayon::prelude::*;

use super::{Error, Made, Options, make_dirs, mode};
use crate::exit::{self, Exit};
use crate::quote::{json_path, quote};

#[derive(Debug, ClapArgs)]
#[command(
    long_about = "Create each PATH and every missing ancestor, like mkdir -p, but correct while \
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
        failure does not stop the others."
)]
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
    /// '..' and symlinks that would escape are errors
    #[arg(long, value_name = "DIR")]
    pub beneath: Option<PathBuf>,

    /// Ancestors may already exist, but the leaf must be created by this call (the
    /// mkdir-as-a-lock idiom); exit 3 if it already exists
    #[arg(long)]
    pub exclusive: bool,

    /// Read paths from FILE ('-' for standard input), one per line, in addition to
    /// any PATH arguments
    #[arg(long, value_name = "FILE")]
    pub from: Option<PathBuf>,

    /// With --from: paths are separated by NUL bytes, not newlines
    #[arg(short = '0', long = "null", requires = "from")]
    pub null: bool,

    /// How many paths to work on at once [default: the number of cores]
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

/// Paths per batch: each batch runs in parallel and is reported before the next
/// starts, so output streams in input order with bounded memory for huge lists.
const BATCH: usize = 4096;

pub fn run(args: Args) -> anyhow::Result<Exit> {
    // Read the umask before any worker thread exists (see mode::umask).
    let umask = mode::umask();
    let leaf_mode = match &args.mode {
        Some(spec) => Some(mode::parse_mode(spec, umask).map_err(exit::usage)?),
        None => None,
    };
    let paths = gather_paths(&args)?;
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
    // One path (the common shell case) or -j 1 runs on this thread: no pool to start.
    let pool = if paths.len() > 1 && args.jobs != Some(1) {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(args.jobs.map_or(0, usize::from))
            .build()
            .context("starting worker threads")?;
        Some(pool)
    } else {
        None
    };

    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut status = Exit::Success;
    for batch in paths.chunks(BATCH) {
        let results: Vec<Result<Made, Error>> = match &pool {
            Some(pool) => pool.install(|| batch.par_iter().map(|p| make_dirs(p, &opts)).collect()),
            None => batch.iter().map(|p| make_dirs(p, &opts)).collect(),
        };
        for (path, result) in batch.iter().zip(results) {
            if let Err(e) = &result {
                status = status.worst(e.exit());
            }
            report(&mut out, &args, path, &result)?;
        }
        // Errors go to stderr as they happen; keep stdout in step with them.
        out.flush()?;
    }
    Ok(status)
}

fn report(
    out: &mut impl Write,
    args: &Args,
    path: &Path,
    result: &Result<Made, Error>,
) -> io::Result<()> {
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
        writeln!(out, "{obj}")?;
    } else if let Ok(made) = result {
        if args.verbose {
            for p in &made.created {
                writeln!(out, "racefree: created directory {}", quote(p))?;
            }
        }
    }
    if let Err(e) = result {
        out.flush()?;
        exit::print_error(format_args!("cannot create directory {}: {e}", quote(path)));
    }
    Ok(())
}

/// Every path to make, from the arguments and `--from`, checked before anything is
/// touched: an empty path or a NUL inside one is a usage error for the whole run.
fn gather_paths(args: &Args) -> anyhow::Result<Vec<PathBuf>> {
    let mut paths: Vec<PathBuf> = args.paths.iter().map(PathBuf::from).collect();
    if let Some(from) = &args.from {
        let data = read_list(from)?;
        let sep = if args.null { b'\0' } else { b'\n' };
        let mut items: Vec<&[u8]> = data.split(|&b| b == sep).collect();
        // A final separator ends the last path rather than starting an empty one.
        if items.last().is_some_and(|last| last.is_empty()) {
            items.pop();
        }
        for (i, item) in items.into_iter().enumerate() {
            let item = if args.null {
                item
            } else {
                item.strip_suffix(b"\r").unwrap_or(item)
            };
            let p = PathBuf::from(OsString::from_vec(item.to_vec()));
            super::validate(&p)
                .map_err(|e| exit::usage(format!("{}, entry {}: {e}", quote(from), i + 1)))?;
            paths.push(p);
        }
    }
    if paths.is_empty() {
        return Err(exit::usage("no PATH given (as arguments or with --from)"));
    }
    for p in &args.paths {
        super::validate(Path::new(p))
            .map_err(|e| exit::usage(format!("invalid PATH {}: {e}", quote(p))))?;
    }
    Ok(paths)
}

fn read_list(from: &Path) -> anyhow::Result<Vec<u8>> {
    let mut data = Vec::new();
    if from == Path::new("-") {
        io::stdin()
            .lock()
            .read_to_end(&mut data)
            .context("reading paths from standard input")?;
    } else {
        data =
            std::fs::read(from).with_context(|| format!("reading paths from {}", quote(from)))?;
    }
    Ok(data)
}

fn open_beneath(dir: &Path) -> anyhow::Result<OwnedFd> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_PATH)
        .open(dir)
        .with_context(|| format!("cannot open --beneath directory {}", quote(dir)))?;
    Ok(OwnedFd::from(f))
}
