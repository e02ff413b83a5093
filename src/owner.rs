//! Whether the process that left something behind (a link lock, a temporary file)
//! is provably dead, for the commands that clean up after a killed call: `lock
//! --nfs` breaks a dead owner's lock, `write` removes a dead writer's temporary file.
//!
//! A process is named by the host it ran on, the boot of that host, its pid and its
//! start time (clock ticks after boot, from /proc/PID/stat): a pid alone is reused,
//! and a pid with its start time is unique for one boot. Only processes of this host
//! and this boot can be looked up, so only they can be proven dead; a process of
//! another host cannot be judged from here at all.

use std::sync::Mutex;

use procfs::process::Stat;

/// What a verdict names: the process that made a file.
pub trait Identity {
    fn host(&self) -> &str;
    fn boot(&self) -> &str;
    fn pid(&self) -> i32;
    /// Start time, in clock ticks after boot (field 22 of /proc/PID/stat).
    fn start(&self) -> u64;
}

/// The facts about this host and process a verdict compares against.
#[derive(Clone, Debug)]
pub struct Here {
    pub host: String,
    pub boot: String,
    /// This process's own start time.
    pub start: u64,
}

/// The facts about this process, read once per process: cached with the pid they
/// belong to, because a child forked without exec must not sign what it leaves with
/// its parent's start time (anyone checking would find the child's pid with another
/// start time, judge it dead, and remove what the live child holds).
pub fn here() -> anyhow::Result<Here> {
    static HERE: Mutex<Option<(u32, Here)>> = Mutex::new(None);
    let pid = std::process::id();
    let mut cached = HERE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((p, h)) = cached.as_ref()
        && *p == pid
    {
        return Ok(h.clone());
    }
    let fresh = read_here(pid).map_err(|e| {
        anyhow::anyhow!("cannot tell who this process is (host, boot id, start time): {e}")
    })?;
    *cached = Some((pid, fresh.clone()));
    Ok(fresh)
}

fn read_here(pid: u32) -> Result<Here, String> {
    let host = nix::sys::utsname::uname()
        .map_err(|e| format!("cannot read the host name: {}", e.desc()))?
        .nodename()
        .to_string_lossy()
        .into_owned();
    let boot = procfs::sys::kernel::random::boot_id()
        .map_err(|e| format!("cannot read the boot id: {e}"))?;
    let start = process(pid as i32)
        .ok_or_else(|| format!("cannot read /proc/{pid}/stat"))?
        .start;
    Ok(Here { host, boot, start })
}

/// What /proc says about a process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Process {
    pub start: u64,
    pub zombie: bool,
}

impl From<&Stat> for Process {
    fn from(stat: &Stat) -> Process {
        Process {
            start: stat.starttime,
            zombie: matches!(stat.state, 'Z' | 'X'),
        }
    }
}

/// Reads /proc/PID/stat; `None` when there is no such process.
pub fn process(pid: i32) -> Option<Process> {
    let stat = procfs::process::Process::new(pid).ok()?.stat().ok()?;
    Some(Process::from(&stat))
}

/// Whether a process can be proven dead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Live,
    /// Provably dead, and why.
    Stale(String),
    /// Cannot be judged from here (another host): to be treated as live.
    Unknown(String),
}

/// Judges the process `who` names. Pure: `probe` is how processes are looked up.
pub fn judge(who: &impl Identity, here: &Here, probe: impl Fn(i32) -> Option<Process>) -> Verdict {
    let pid = who.pid();
    if who.host() != here.host {
        return Verdict::Unknown(format!(
            "held by pid {pid} on host {}, whose processes cannot be seen from here",
            who.host()
        ));
    }
    if who.boot() != here.boot {
        return Verdict::Stale(format!("held by pid {pid} before this host rebooted"));
    }
    match alive(pid, who.start(), probe) {
        Ok(()) => Verdict::Live,
        Err(why) => Verdict::Stale(format!("held by {why}")),
    }
}

/// `Ok` while process `pid` that started at `start` runs; otherwise how it is known
/// to be gone: no such pid, the pid now another process's, or a zombie.
pub fn alive(pid: i32, start: u64, probe: impl Fn(i32) -> Option<Process>) -> Result<(), String> {
    match probe(pid) {
        None => Err(format!("pid {pid}, which no longer exists")),
        Some(now) if now.start != start => Err(format!(
            "pid {pid}, which no longer exists (the pid now belongs to another process)"
        )),
        Some(now) if now.zombie => Err(format!("pid {pid}, which has exited")),
        Some(_) => Ok(()),
    }
}
