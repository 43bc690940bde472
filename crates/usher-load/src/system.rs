//! The machine around a run: the load tool's file-descriptor limit, and the server process's CPU and
//! memory read from `/proc/<pid>` (Linux).

use std::time::Instant;

use anyhow::Context as _;
use nix::sys::resource::{Resource, getrlimit, setrlimit};
use serde::Serialize;

/// File descriptors the tool keeps for itself besides its connections (stdio, runtime, files).
pub const FD_RESERVE: u64 = 64;

/// The open-files limit after raising the soft limit to the hard one.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct FdLimit {
    /// Soft limit now in force.
    pub soft: u64,
    /// Hard limit (only root with `CAP_SYS_RESOURCE` can raise it).
    pub hard: u64,
}

impl FdLimit {
    /// Connections this process can hold.
    pub fn connections(&self) -> u64 {
        self.soft.saturating_sub(FD_RESERVE)
    }
}

/// Raises this process's soft open-files limit to `want` (or to the hard limit when that is lower); tries
/// to raise the hard limit too when `want` is above it.
///
/// # Errors
/// When the limits cannot be read or set.
pub fn raise_fd_limit(want: u64) -> anyhow::Result<FdLimit> {
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).context("reading RLIMIT_NOFILE")?;
    let hard = if want > hard && setrlimit(Resource::RLIMIT_NOFILE, want, want).is_ok() {
        want
    } else {
        hard
    };
    let soft = want.min(hard);
    let (cur, _) = getrlimit(Resource::RLIMIT_NOFILE)?;
    if cur < soft {
        setrlimit(Resource::RLIMIT_NOFILE, soft, hard).context("raising RLIMIT_NOFILE")?;
    }
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    Ok(FdLimit { soft, hard })
}

/// One reading of a process's counters.
#[derive(Debug, Clone, Copy)]
pub struct ProcSample {
    at: Instant,
    /// User plus system CPU time, in clock ticks.
    ticks: u64,
    /// Resident set size, KiB.
    pub rss_kib: u64,
    /// Peak resident set size, KiB.
    pub hwm_kib: u64,
}

/// Reads a process's counters from `/proc`.
#[derive(Debug, Clone)]
pub struct ProcWatch {
    pid: u32,
    ticks_per_s: f64,
}

impl ProcWatch {
    /// Watches `pid` (use `std::process::id()` for the tool itself).
    ///
    /// # Errors
    /// When `/proc/<pid>` cannot be read.
    pub fn new(pid: u32) -> anyhow::Result<Self> {
        let ticks_per_s = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
            .ok()
            .flatten()
            .unwrap_or(100) as f64;
        let w = Self { pid, ticks_per_s };
        w.sample()
            .with_context(|| format!("reading /proc/{pid} (is the server running here?)"))?;
        Ok(w)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Reads the counters now: the process and its direct children (nginx's workers under its master),
    /// summed.
    ///
    /// # Errors
    /// When the process is gone.
    pub fn sample(&self) -> anyhow::Result<ProcSample> {
        let mut total = read_proc(self.pid)?;
        for child in children(self.pid) {
            if let Ok(c) = read_proc(child) {
                total.ticks += c.ticks;
                total.rss_kib += c.rss_kib;
                total.hwm_kib += c.hwm_kib;
            }
        }
        Ok(total)
    }

    /// Cores used on average between two samples.
    pub fn cores(&self, from: &ProcSample, to: &ProcSample) -> f64 {
        let secs = (to.at - from.at).as_secs_f64();
        if secs <= 0.0 {
            return 0.0;
        }
        to.ticks.saturating_sub(from.ticks) as f64 / self.ticks_per_s / secs
    }
}

/// Processes whose parent is `pid`.
fn children(pid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&p| {
            std::fs::read_to_string(format!("/proc/{p}/stat"))
                .ok()
                .and_then(|s| {
                    let rest = s.rsplit_once(')')?.1.to_owned();
                    rest.split_whitespace().nth(1)?.parse::<u32>().ok()
                })
                == Some(pid)
        })
        .collect()
}

/// One process's counters.
fn read_proc(pid: u32) -> anyhow::Result<ProcSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // fields after the command name (which may hold spaces) start at field 3 (state)
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .context("odd /proc/<pid>/stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| -> anyhow::Result<u64> {
        Ok(fields
            .get(n - 3)
            .context("short /proc/<pid>/stat")?
            .parse()?)
    };
    let ticks = field(14)? + field(15)?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib = |key: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Ok(ProcSample {
        at: Instant::now(),
        ticks,
        rss_kib: kib("VmRSS:"),
        hwm_kib: kib("VmHWM:"),
    })
}

/// CPU and memory of a process over one phase of a run.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseUsage {
    /// The phase.
    pub phase: String,
    /// Seconds it lasted.
    pub seconds: f64,
    /// Cores used on average.
    pub cores: f64,
    /// RSS at its end, MiB.
    pub rss_mib: f64,
}

/// Samples a process at phase boundaries.
#[derive(Debug)]
pub struct PhaseClock {
    watch: ProcWatch,
    last: ProcSample,
    /// RSS at the start, KiB.
    pub start_rss_kib: u64,
    /// Phases so far.
    pub phases: Vec<PhaseUsage>,
}

impl PhaseClock {
    /// Starts at now.
    ///
    /// # Errors
    /// When the process cannot be read.
    pub fn start(watch: ProcWatch) -> anyhow::Result<Self> {
        let last = watch.sample()?;
        Ok(Self {
            watch,
            start_rss_kib: last.rss_kib,
            last,
            phases: Vec::new(),
        })
    }

    /// Closes the phase `name` now; returns its usage.
    pub fn mark(&mut self, name: &str) -> Option<PhaseUsage> {
        let now = self.watch.sample().ok()?;
        let usage = PhaseUsage {
            phase: name.to_owned(),
            seconds: (now.at - self.last.at).as_secs_f64(),
            cores: self.watch.cores(&self.last, &now),
            rss_mib: now.rss_kib as f64 / 1024.0,
        };
        self.last = now;
        self.phases.push(usage.clone());
        Some(usage)
    }

    /// The latest sample.
    pub fn last(&self) -> ProcSample {
        self.last
    }

    /// The process watched.
    pub fn watch(&self) -> &ProcWatch {
        &self.watch
    }
}
