//! The `usher-load` binary: the viewer scenario (default), `saturate` (closed-loop Usher throughput),
//! `get` (closed-loop GETs of any URL, for the ceilings), `doors` (a crowd at a show's capacity) and
//! `prepare` (tickets and live sessions written as files for wrk's scripts).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::Serialize;
use usher_load::doors::{self, DoorsConfig, DoorsReport};
use usher_load::prepare::{self, PrepareConfig, PrepareReport};
use usher_load::saturate::{self, Load, SaturateConfig, SaturateReport};
use usher_load::setup::Server;
use usher_load::stats::table;
use usher_load::viewers::{self, Arrival, ViewersConfig, ViewersReport};

#[derive(Parser)]
#[command(
    name = "usher-load",
    version,
    about = "Load generator for Usher: simulated viewers, sharing attacks and closed-loop throughput runs, over HTTP.",
    long_about = "Load generator for Usher: simulated viewers, sharing attacks and closed-loop throughput runs, over HTTP.\n\n\
        Every simulated viewer is an app that keeps its session's secret: the admit's `session_secret` goes in \
        `X-Usher-Session-Secret` with each heartbeat, leave, master playlist and steering reload, and each \
        heartbeat's answer hands the next one, which it adopts. Steering reloads only check (the watch page's \
        way); the heartbeats renew. The `saturate --op heartbeat` workers do the same, each on its own session.",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    viewers: ViewerArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Closed loop on one Usher operation: each of C connections sends the next request as soon as the
    /// last one is answered.
    Saturate(SaturateArgs),
    /// Closed loop of plain GETs (the HTTP and file ceilings: nginx `return 200`, nginx `sendfile`).
    Get(GetArgs),
    /// Doors open: a show with a capacity, a crowd arriving at once; the waiting room lets them in, in
    /// arrival order, as the earliest viewers leave.
    Doors(DoorsArgs),
    /// Tickets and live sessions for another load tool (wrk in `scripts/bench.sh`), written as files:
    /// tokens, session ids with their secrets and grants, media playlist and segment paths.
    ///
    /// A first run creates the show (with --admin-key), registers --sessions tickets and admits each on
    /// a fresh device; with --again it re-admits the folder's tickets on fresh devices (their sessions
    /// before are superseded), so a round starts with fresh secrets, grants and leases.
    Prepare(PrepareArgs),
}

#[derive(Args)]
struct PrepareArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// Tickets, and live sessions (one per ticket).
    #[arg(long, default_value_t = 100_000)]
    sessions: usize,
    /// Folder of the files (created).
    #[arg(long)]
    out: PathBuf,
    /// Re-admit the tickets of --out instead of creating a show and tickets.
    #[arg(long)]
    again: bool,
    /// Connections to admit over.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// The segment of `segments.txt`, relative to the show's stream folder (`bench-1mib/seg_000.ts`);
    /// default: the first segment of the first media playlist.
    #[arg(long)]
    segment: Option<String>,
    #[command(flatten)]
    output: Output,
}

#[derive(Args)]
struct DoorsArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// Viewers arriving at once.
    #[arg(long, default_value_t = 5_000)]
    arrivals: usize,
    /// The show's capacity (most viewers at once).
    #[arg(long, default_value_t = 1_000)]
    capacity: u32,
    /// The show's admit rate, newcomers per second (none: no limit).
    #[arg(long)]
    admit_rate_per_s: Option<u32>,
    /// Viewers leaving per second once the crowd has arrived (the earliest first).
    #[arg(long, default_value_t = 200.0)]
    leave_per_s: f64,
    /// Longest a viewer waits in line before giving up, seconds.
    #[arg(long, default_value_t = 120.0)]
    max_wait_s: f64,
    /// Connections.
    #[arg(long, default_value_t = 256)]
    connections: usize,
    #[command(flatten)]
    output: Output,
}

#[derive(Args, Clone)]
struct ServerArgs {
    /// Usher's base URL.
    #[arg(
        long,
        env = "USHER_LOAD_BASE_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    base_url: String,
    /// API key with the `tickets` scope (registers the run's tickets).
    #[arg(long, env = "USHER_LOAD_TICKETS_KEY")]
    tickets_key: Option<String>,
    /// API key with the `admin` scope: the run creates its own show.
    #[arg(long, env = "USHER_LOAD_ADMIN_KEY")]
    admin_key: Option<String>,
    /// Show id (created with --admin-key; must exist without it). Default: a fresh `load-…` id.
    #[arg(long)]
    show_id: Option<String>,
    /// Heartbeat interval of the created show, seconds (the server's default when absent).
    #[arg(long)]
    heartbeat_s: Option<u32>,
    /// Stream folder of the created show, under the server's media directory.
    #[arg(long, default_value = "demo")]
    stream_path: String,
    /// Encryption of the created show: `none`, or `aes-128` for a packaged folder (`usher demo` makes
    /// `demo-aes`); `saturate --op key` needs it.
    #[arg(long, default_value = "none")]
    encryption: String,
    /// Per-request timeout, seconds.
    #[arg(long, default_value_t = 30.0)]
    timeout_s: f64,
    /// Server process id: report its CPU (cores) and RSS from /proc.
    #[arg(long)]
    server_pid: Option<u32>,
}

impl ServerArgs {
    fn server(&self) -> anyhow::Result<Server> {
        Ok(Server {
            base_url: self.base_url.clone(),
            tickets_key: self
                .tickets_key
                .clone()
                .ok_or_else(|| anyhow::anyhow!("--tickets-key is required"))?,
            admin_key: self.admin_key.clone(),
            show_id: self.show_id.clone(),
            heartbeat_s: self.heartbeat_s,
            stream_path: self.stream_path.clone(),
            encryption: self.encryption.clone(),
            timeout: Duration::from_secs_f64(self.timeout_s),
        })
    }
}

#[derive(Args, Clone)]
struct Output {
    /// Write the report as JSON to this file (`-`: stdout, and the table goes to stderr).
    #[arg(long)]
    json: Option<PathBuf>,
    /// Exit with status 1 when there was any error, false refusal or over-admission.
    ///
    /// In the sharing attack, also when a copied session still played on two devices after two heartbeats.
    #[arg(long)]
    check: bool,
}

#[derive(Args)]
struct ViewerArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// Simulated viewers (devices).
    #[arg(long, default_value_t = 100)]
    viewers: usize,
    /// Viewers arrive evenly spaced over this many seconds.
    #[arg(long, conflicts_with = "doors_open_s")]
    ramp_s: Option<f64>,
    /// "Doors open": viewers arrive at random instants within this many seconds.
    #[arg(long)]
    doors_open_s: Option<f64>,
    /// Seconds everyone keeps watching after the last arrival.
    #[arg(long, default_value_t = 30.0)]
    duration_s: f64,
    /// Segments each viewer fetches from the origin per heartbeat interval (0: none).
    #[arg(long, default_value_t = 0)]
    segments: u32,
    /// Seconds between each viewer's content-steering reloads (`/hls/{session}/steering.json`; 0: none).
    ///
    /// The viewers play as the watch page does: the reloads send the session's secret in a header and only
    /// check the seat, and the heartbeats renew it (a native player would renew by its reloads' `?secret=`
    /// URL chain instead of heartbeating; not modelled).
    #[arg(long, default_value_t = 0.0)]
    steering_s: f64,
    /// Sharing attack: this many devices (2–5) share each ticket.
    ///
    /// The first admits; the others start with a copy of its credentials (session id, secret, device id),
    /// which the server must refuse with `session_cloned` for all but one of them by their second
    /// heartbeat; a refused device then takes a seat with the ticket itself (newest wins), and the devices
    /// take seats from each other.
    #[arg(long, value_parser = clap::value_parser!(u8).range(2..=5))]
    share_devices: Option<u8>,
    /// Devices each ticket allows at once (k) on the created show.
    #[arg(long, default_value_t = 1)]
    max_devices: u32,
    /// Connections to hold (0: one per viewer, like browsers; the open-files limit must allow it).
    #[arg(long, default_value_t = 0)]
    connections: usize,
    /// Relative heartbeat jitter (0.05: ±5 %).
    #[arg(long, default_value_t = 0.05)]
    jitter: f64,
    /// Seconds between progress lines on stderr (0: none).
    #[arg(long, default_value_t = 5.0)]
    progress_s: f64,
    /// Churn: each viewer watches about this many seconds (±25 %; its first while anywhere up to 1.25×,
    /// so leaves are spread from the start), leaves, and comes back at once with a fresh admit of its
    /// ticket: admits, playlists and leaves go on through the run at about viewers / S a second (0: every
    /// viewer watches to the end). Viewers with their own ticket only.
    #[arg(long, default_value_t = 0.0, conflicts_with = "share_devices")]
    watch_s: f64,
    /// The run spans a store outage (a Redis fail-over): viewers ride it as the watch page does.
    ///
    /// An admit answered 503 or 429 asks again after its `Retry-After` (a failed admit after 2 s), and so
    /// does a master playlist (a player starting); a heartbeat answered `"status": "degraded"` keeps the
    /// session and its secret and comes again after the interval it names; a leave answered 503 is not
    /// asked again (the lease lapses by itself). Those answers are counted under `outage` in the report
    /// (and as owed refusals in the table), not as errors; the rest is checked as always: a session the
    /// server ends is lost, a refused admit is a false refusal, a request without an answer or a 5xx
    /// heartbeat fails.
    #[arg(long)]
    expect_outage: bool,
    #[command(flatten)]
    output: Output,
}

#[derive(Clone, Copy, ValueEnum)]
enum SatOp {
    Heartbeat,
    Admit,
    Segment,
    /// Content keys (`GET /keys/{id}` with the session's headers) of an `aes-128` show.
    Key,
}

#[derive(Args)]
struct SaturateArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// Operation to saturate.
    #[arg(long, value_enum)]
    op: SatOp,
    /// Connections (one worker each).
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Seconds measured.
    #[arg(long, default_value_t = 10.0)]
    duration_s: f64,
    /// Seconds of warm-up before measuring.
    #[arg(long, default_value_t = 2.0)]
    warmup_s: f64,
    /// Tickets in the admit pool (each admit uses the next ticket with a fresh device).
    #[arg(long, default_value_t = 20_000)]
    tickets: usize,
    #[command(flatten)]
    output: Output,
}

#[derive(Args)]
struct GetArgs {
    /// URL to GET (repeat to cycle through several on the same host).
    #[arg(long, required = true)]
    url: Vec<String>,
    /// Connections (one worker each).
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Seconds measured.
    #[arg(long, default_value_t = 10.0)]
    duration_s: f64,
    /// Seconds of warm-up before measuring.
    #[arg(long, default_value_t = 2.0)]
    warmup_s: f64,
    /// Server process id: report its CPU from /proc.
    #[arg(long)]
    server_pid: Option<u32>,
    #[command(flatten)]
    output: Output,
}

fn emit<T: Serialize>(report: &T, text: &str, output: &Output) -> anyhow::Result<()> {
    match &output.json {
        Some(p) if p.as_os_str() == "-" => {
            eprint!("{text}");
            println!("{}", serde_json::to_string_pretty(report)?);
        }
        Some(p) => {
            print!("{text}");
            std::fs::write(p, serde_json::to_vec_pretty(report)?)?;
        }
        None => print!("{text}"),
    }
    Ok(())
}

fn viewers_text(r: &ViewersReport) -> String {
    let mut s = format!(
        "\nusher-load: {} viewers ({}), show `{}`, heartbeat {} s, {} connections (open-files limit {}/{})\n\n",
        r.config.viewers,
        match r.config.arrival {
            Arrival::Ramp(x) => format!("ramp over {x} s"),
            Arrival::DoorsOpen(x) => format!("doors open within {x} s"),
        },
        r.show_id,
        r.heartbeat_s.map_or("?".into(), |h| h.to_string()),
        r.connections,
        r.fd_limit.soft,
        r.fd_limit.hard,
    );
    s.push_str(&table(&r.ops));
    let c = &r.checks;
    s.push_str(&format!(
        "\npeak live sessions {}   errors {}   failed viewer tasks {}   false refusals {}   over-admissions {} ({} devices over, {} rounds checked)   expected refusals {}\n",
        r.peak_live_sessions,
        r.errors,
        r.task_failures,
        c.false_refusals,
        c.over_admissions,
        c.over_admitted_devices,
        c.rounds_checked,
        c.expected_refusals
    ));
    s.push_str(&format!(
        "failed requests {}   sessions lost {}   false admit refusals {}{}\n",
        r.failed_requests,
        c.sessions_lost,
        c.false_admit_refusals,
        if r.stopped_early {
            "   (stopped early by a signal)"
        } else {
            ""
        }
    ));
    let o = &r.outage;
    if r.config.expect_outage {
        s.push_str(&format!(
            "outage: {} admits told to come back later ({} admitted after waiting, longest wait {} ms), {} heartbeats degraded; of {} degraded viewers {} renewed again and {} left first; {} leaves and {} master playlists answered 503, {} leaves found the lease lapsed\n",
            o.admits_unavailable,
            o.admits_paused,
            o.longest_admit_pause_ms,
            o.heartbeats_degraded,
            o.viewers_degraded,
            o.viewers_recovered,
            o.viewers_left_degraded,
            o.leaves_unavailable,
            o.playlists_unavailable,
            o.leaves_lapsed
        ));
    }
    if c.clones_made > 0 {
        s.push_str(&format!(
            "copied credentials: {} copies, {} refused as session_cloned, {} devices still playing a copied session after two heartbeats\n",
            c.clones_made, c.clones_refused, c.clones_unstopped
        ));
    }
    if let Some(srv) = &r.server {
        s.push_str(&format!("server pid {}:", srv.pid));
        for p in &srv.phases {
            s.push_str(&format!(
                "  {} {:.1} s {:.2} cores {:.0} MiB;",
                p.phase, p.seconds, p.cores, p.rss_mib
            ));
        }
        s.push_str(&format!(
            "\n  RSS before admits {:.0} MiB, at the end of the steady phase {:.0} MiB, peak {:.0} MiB: {:.0} bytes per session\n",
            srv.rss_before_mib, srv.rss_steady_mib, srv.rss_peak_mib, srv.bytes_per_session
        ));
    }
    s.push_str("load tool:");
    for p in &r.tool {
        s.push_str(&format!("  {} {:.2} cores;", p.phase, p.cores));
    }
    s.push_str(&format!(
        "\n{}\n",
        if r.passed { "PASSED" } else { "FAILED" }
    ));
    s
}

fn doors_text(r: &DoorsReport) -> String {
    let mut s = format!(
        "\nusher-load doors: {} arrivals at once, capacity {}{}, show `{}`, leaving {}/s\n\n",
        r.config.arrivals,
        r.config.capacity,
        r.config
            .admit_rate_per_s
            .map_or(String::new(), |x| format!(", admit rate {x}/s")),
        r.show_id,
        r.config.leave_per_s,
    );
    s.push_str(&table(&r.ops));
    s.push_str(&format!(
        "\nlet in at once {}   waited {}   let in from the line {}   never let in {}   peak playing {}\n\
         order let in vs place in line: rank correlation {:.4}, most overtaken by one waiter {} (bound {})\n\
         heartbeats refused {}   line cleared after {:.1} s\n{}\n",
        r.admitted_at_once,
        r.waited,
        r.admitted_from_line,
        r.never_admitted,
        r.peak_playing,
        r.order_correlation,
        r.max_overtaken,
        r.overtake_bound,
        r.heartbeat_refusals,
        r.line_cleared_s,
        if r.passed { "PASSED" } else { "FAILED" }
    ));
    s
}

fn prepare_text(r: &PrepareReport) -> String {
    let mut s = format!(
        "\nusher-load prepare: {} live sessions of show `{}` (heartbeat {} s){} in {}\n\n",
        r.sessions,
        r.show_id,
        r.heartbeat_s,
        if r.config.again {
            ", tickets admitted again".to_owned()
        } else {
            format!(", {:.1} s registering", r.register_s)
        },
        r.config.out.display()
    );
    s.push_str(&table(&r.ops));
    s.push_str(&format!(
        "admits took {:.1} s; master playlist {} bytes, media playlist {} ({} bytes), segment {} ({} bytes)\n",
        r.admit_s, r.master_bytes, r.playlist, r.playlist_bytes, r.segment, r.segment_bytes
    ));
    s
}

fn saturate_text(r: &SaturateReport) -> String {
    let mut s = format!(
        "\nusher-load closed loop on {}: {} connections, {} s measured after {} s warm-up\n\n",
        r.base_url, r.config.concurrency, r.config.duration_s, r.config.warmup_s
    );
    s.push_str(&table(&r.ops));
    if let Some(p) = &r.server {
        s.push_str(&format!(
            "server: {:.2} cores, RSS {:.0} MiB\n",
            p.cores, p.rss_mib
        ));
    }
    if let Some(p) = &r.tool {
        s.push_str(&format!("load tool: {:.2} cores\n", p.cores));
    }
    s
}

async fn run(cli: Cli) -> anyhow::Result<bool> {
    match cli.command {
        None => {
            let a = cli.viewers;
            let arrival = match (a.ramp_s, a.doors_open_s) {
                (_, Some(s)) => Arrival::DoorsOpen(s),
                (Some(s), None) => Arrival::Ramp(s),
                (None, None) => Arrival::Ramp(10.0),
            };
            let cfg = ViewersConfig {
                viewers: a.viewers,
                devices_per_ticket: a.share_devices.map_or(1, usize::from),
                max_devices: a.max_devices,
                arrival,
                duration_s: a.duration_s,
                segments: a.segments,
                steering_s: a.steering_s,
                jitter: a.jitter.clamp(0.0, 0.5),
                connections: a.connections,
                progress_s: a.progress_s,
                watch_s: a.watch_s.max(0.0),
                expect_outage: a.expect_outage,
            };
            let report =
                viewers::run_until(&a.server.server()?, cfg, a.server.server_pid, stop_signal())
                    .await?;
            emit(&report, &viewers_text(&report), &a.output)?;
            Ok(!a.output.check || report.passed)
        }
        Some(Command::Saturate(a)) => {
            let cfg = SaturateConfig {
                load: match a.op {
                    SatOp::Heartbeat => Load::Heartbeat,
                    SatOp::Admit => Load::Admit { tickets: a.tickets },
                    SatOp::Segment => Load::Segment,
                    SatOp::Key => Load::Key,
                },
                concurrency: a.concurrency,
                duration_s: a.duration_s,
                warmup_s: a.warmup_s,
            };
            let report = saturate::run(Some(&a.server.server()?), cfg, a.server.server_pid).await?;
            emit(&report, &saturate_text(&report), &a.output)?;
            Ok(!a.output.check || report.errors == 0)
        }
        Some(Command::Get(a)) => {
            let cfg = SaturateConfig {
                load: Load::Get(a.url),
                concurrency: a.concurrency,
                duration_s: a.duration_s,
                warmup_s: a.warmup_s,
            };
            let report = saturate::run(None, cfg, a.server_pid).await?;
            emit(&report, &saturate_text(&report), &a.output)?;
            Ok(!a.output.check || report.errors == 0)
        }
        Some(Command::Doors(a)) => {
            let cfg = DoorsConfig {
                arrivals: a.arrivals,
                capacity: a.capacity,
                admit_rate_per_s: a.admit_rate_per_s,
                leave_per_s: a.leave_per_s,
                max_wait_s: a.max_wait_s,
                connections: a.connections,
            };
            let report = doors::run(&a.server.server()?, cfg).await?;
            emit(&report, &doors_text(&report), &a.output)?;
            Ok(!a.output.check || report.passed)
        }
        Some(Command::Prepare(a)) => {
            let cfg = PrepareConfig {
                sessions: a.sessions,
                out: a.out,
                again: a.again,
                connections: a.connections,
                segment: a.segment,
            };
            // every admit must succeed, or the run fails: nothing is left to check
            let report = prepare::run(&a.server.server()?, cfg).await?;
            emit(&report, &prepare_text(&report), &a.output)?;
            Ok(true)
        }
    }
}

/// Resolves on the first SIGINT or SIGTERM: the viewer run then ends early (the viewers leave) and
/// reports; a second one ends the process at once.
async fn stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
    // the next signal ends the process
    tokio::spawn(async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        std::process::exit(130);
    });
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("usher-load: error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::from(2)
        }
    }
}
