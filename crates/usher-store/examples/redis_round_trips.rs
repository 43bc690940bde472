//! What the viewer's two hot paths cost on Redis, driven through `RedisStore` exactly as the server
//! drives the store (`usher-server/src/viewer.rs` and `delivery.rs`):
//!
//! - heartbeat: `heartbeat`, `show`, `ticket` (only when the answer carries none), `cdns`; each presents
//!   the secret the last one handed out, as a player does, so the renewal takes the same steps as in
//!   production (a stale secret would fill the session's issued list and take the whole-document path);
//! - admit: `ticket_by_token`, `show`, `admit` (the device re-attaches), `cdns`.
//!
//! It starts a throw-away `redis-server`, counts with `MONITOR` the commands 1,000 of each send
//! (top-level ones, one round trip each unless pipelined, and those run inside Lua scripts), then measures
//! throughput with 16 concurrent flows for a few seconds each, next to `PING` through the same store
//! (one round trip, nothing decoded) so that runs on a noisy machine compare as ratios, with the CPU time
//! each flow cost Redis (`INFO cpu`; of that, the time running commands: `INFO commandstats`) and this process.
//!
//! `cargo run --release -p usher-store --example redis_round_trips [-- <seconds per throughput run>]`

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use usher_core::ids::{DeviceId, SessionId, ShowId, TicketId};
use usher_core::lease::{AdmitDecision, HeartbeatDecision, Presented, SeatRules};
use usher_core::secret::{SecretHash, SecretHasher};
use usher_core::show::SharingPolicy;
use usher_core::store::{AdmitRequest, Store};
use usher_store::contract::{cdn, show, ticket};
use usher_store::redis::{RedisConfig, RedisStore};
use usher_testkit::RedisServer;

#[path = "../tests/it/support/monitor.rs"]
mod monitor;

use monitor::{Commands, Monitor};

const COUNTED: usize = 1_000;
const FLOWS: usize = 16;

/// A ticket with a live session, ready for both flows.
#[derive(Clone)]
struct Viewer {
    ticket: TicketId,
    token: SecretHash,
    device: DeviceId,
    /// The current session: an admit ends the one before and begins another.
    session: Arc<Mutex<SessionId>>,
    /// The session's current secret: the one its admit or its last heartbeat handed out.
    secret: Arc<Mutex<SecretHash>>,
}

fn admit_request(show_id: &ShowId, v: &Viewer) -> AdmitRequest {
    AdmitRequest {
        ticket_id: v.ticket.clone(),
        show_id: show_id.clone(),
        bounds: usher_core::ticket::TicketBounds::default(),
        device_id: v.device.clone(),
        device_label: "Firefox on Linux".into(),
        rules: SeatRules {
            max_devices: 1,
            policy: SharingPolicy::NewestWins,
            ttl_ms: 45_000,
        },
        country: None,
        address: Some([192, 0, 2, 7].into()),
        presented: None,
        fresh: usher_store::contract::seat_secret(),
    }
}

/// The server's heartbeat: the step, the show, the ticket (unless the answer has it), the pool.
async fn heartbeat_flow(store: &RedisStore, show_id: &ShowId, v: &Viewer) -> anyhow::Result<()> {
    let current = *v.secret.lock().expect("secret lock");
    let session = v.session.lock().expect("session lock").clone();
    let fresh = SecretHasher::new(b"round-trips-key-0123456789abcdef0")
        .session_secret(&SessionId::generate().to_string());
    let answer = store
        .heartbeat(
            &session,
            Presented {
                secret: &current,
                fresh: Some(fresh),
                revive_since: None,
            },
        )
        .await?;
    anyhow::ensure!(
        matches!(answer.decision, HeartbeatDecision::Renewed { .. }),
        "not renewed: {answer:?}"
    );
    *v.secret.lock().expect("secret lock") = fresh;
    let (ticket_id, owner_show) = answer.owner.context("renewed session has an owner")?;
    anyhow::ensure!(&owner_show == show_id, "session of another show");
    store.show(&owner_show).await?.context("show")?;
    if answer.ticket.is_none() {
        store.ticket(&ticket_id).await?.context("ticket")?;
    }
    store.cdns().await?;
    Ok(())
}

/// The server's admit: the token lookup, the show, the step, the pool.
async fn admit_flow(store: &RedisStore, show_id: &ShowId, v: &Viewer) -> anyhow::Result<()> {
    let t = store.ticket_by_token(&v.token).await?.context("ticket")?;
    store.show(&t.terms.show_id).await?.context("show")?;
    match store.admit(admit_request(show_id, v)).await? {
        // a session of its own, whose chain starts from the admit's secret
        AdmitDecision::Admitted { session_id, .. } => {
            *v.session.lock().expect("session lock") = session_id;
            *v.secret.lock().expect("secret lock") = usher_store::contract::seat_secret();
        }
        other => bail!("not admitted: {other:?}"),
    }
    store.cdns().await?;
    Ok(())
}

fn report(what: &str, seen: &Commands) {
    let detail: Vec<String> = seen
        .top
        .iter()
        .map(|(c, n)| format!("{c} {:.2}", *n as f64 / COUNTED as f64))
        .collect();
    let scripted: Vec<String> = seen
        .scripted
        .iter()
        .map(|(c, n)| format!("{c} {:.2}", *n as f64 / COUNTED as f64))
        .collect();
    println!(
        "{what}: {:.2} top-level commands ({}), {:.2} more inside scripts ({})",
        seen.top_level() as f64 / COUNTED as f64,
        detail.join(", "),
        seen.in_scripts as f64 / COUNTED as f64,
        scripted.join(", ")
    );
}

/// Flows per second, and the CPU time each cost Redis and this process.
struct Rate {
    per_s: f64,
    redis_us: f64,
    /// Of that, the time Redis spent running the commands (`INFO commandstats`: scripts with the
    /// commands they call; no reading, parsing or answering).
    commands_us: f64,
    client_us: f64,
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.0}/s, CPU per flow: Redis {:.1} µs (in commands {:.1} µs), client {:.1} µs",
            self.per_s, self.redis_us, self.commands_us, self.client_us
        )
    }
}

/// Redis's CPU time so far (`INFO cpu`), in seconds.
async fn redis_cpu(con: &mut redis::aio::MultiplexedConnection) -> anyhow::Result<f64> {
    let info: String = redis::cmd("INFO").arg("cpu").query_async(con).await?;
    Ok(info
        .lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(k, _)| *k == "used_cpu_user" || *k == "used_cpu_sys")
        .filter_map(|(_, v)| v.trim().parse::<f64>().ok())
        .sum())
}

/// The time Redis spent in commands since the last `CONFIG RESETSTAT`, in seconds: the sum of
/// `INFO commandstats`' `usec`, without the commands of this measurement's own connection (`INFO`, `CONFIG`).
async fn redis_command_time(con: &mut redis::aio::MultiplexedConnection) -> anyhow::Result<f64> {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(con)
        .await?;
    let mut usec = 0u64;
    for line in info.lines() {
        let Some((name, stats)) = line.split_once(':') else {
            continue;
        };
        if name.starts_with("cmdstat_info") || name.starts_with("cmdstat_config") {
            continue;
        }
        for field in stats.split(',') {
            if let Some(v) = field.strip_prefix("usec=") {
                usec += v.parse::<u64>()?;
            }
        }
    }
    Ok(usec as f64 / 1e6)
}

/// This process's CPU time so far, in seconds (`/proc/self/stat`, in USER_HZ = 100 ticks a second).
fn own_cpu() -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    let after_name = stat.rsplit_once(')').context("stat format")?.1;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
    Ok(ticks as f64 / 100.0)
}

async fn throughput<F, Fut>(
    secs: u64,
    viewers: &[Viewer],
    con: &mut redis::aio::MultiplexedConnection,
    one: F,
) -> anyhow::Result<Rate>
where
    F: Fn(Viewer) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query_async(con)
        .await?;
    let (redis_before, own_before) = (redis_cpu(con).await?, own_cpu()?);
    let end = Instant::now() + Duration::from_secs(secs);
    let mut tasks = tokio::task::JoinSet::new();
    for v in &viewers[..FLOWS] {
        let (one, v) = (one.clone(), v.clone());
        tasks.spawn(async move {
            let mut n = 0u64;
            while Instant::now() < end {
                one(v.clone()).await?;
                n += 1;
            }
            anyhow::Ok(n)
        });
    }
    let mut total = 0;
    while let Some(n) = tasks.join_next().await {
        total += n??;
    }
    let (redis_after, own_after) = (redis_cpu(con).await?, own_cpu()?);
    let commands = redis_command_time(con).await?;
    let n = total.max(1) as f64;
    Ok(Rate {
        per_s: total as f64 / secs as f64,
        redis_us: (redis_after - redis_before) * 1e6 / n,
        commands_us: commands * 1e6 / n,
        client_us: (own_after - own_before) * 1e6 / n,
    })
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let secs: u64 = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(3);
    let server = RedisServer::start()?;
    let url = server.url();
    let store = Arc::new(
        RedisStore::connect(RedisConfig {
            url: url.clone(),
            key_prefix: "usher:".into(),
            connect_timeout: Duration::from_secs(2),
            response_timeout: Duration::from_secs(2),
            wait_replicas: 0,
            wait_timeout: Duration::from_millis(100),
            sentinel: None,
        })
        .await?,
    );
    let show_id = ShowId::parse("rt-show")?;
    store
        .put_show(show("rt-show", 1, SharingPolicy::NewestWins))
        .await?;
    store.put_cdn(cdn("cdn-a", 10)).await?;
    store.put_cdn(cdn("cdn-b", 20)).await?;
    let mut viewers = Vec::new();
    for i in 0..FLOWS {
        let nt = ticket("rt-show", &format!("round-trip-token-{i:06}"), None);
        let (id, token) = (nt.ticket.id.clone(), nt.ticket.token_hash);
        store.register_tickets(vec![nt]).await?;
        let mut v = Viewer {
            ticket: id,
            token,
            device: DeviceId::parse(&format!("device-{i:06}"))?,
            session: Arc::new(Mutex::new(SessionId::generate())),
            secret: Arc::new(Mutex::new(usher_store::contract::seat_secret())),
        };
        match store.admit(admit_request(&show_id, &v)).await? {
            AdmitDecision::Admitted { session_id, .. } => {
                v.session = Arc::new(Mutex::new(session_id));
            }
            other => bail!("not admitted: {other:?}"),
        }
        viewers.push(v);
    }
    // warm up: scripts loaded, caches (if any) filled
    heartbeat_flow(&store, &show_id, &viewers[0]).await?;
    admit_flow(&store, &show_id, &viewers[0]).await?;

    let mut monitor = Monitor::attach(&url).await?;
    let (done, heartbeats) = monitor
        .count(async {
            for i in 0..COUNTED {
                heartbeat_flow(&store, &show_id, &viewers[i % FLOWS]).await?;
            }
            anyhow::Ok(())
        })
        .await?;
    done?;
    let (done, admits) = monitor
        .count(async {
            for i in 0..COUNTED {
                admit_flow(&store, &show_id, &viewers[i % FLOWS]).await?;
            }
            anyhow::Ok(())
        })
        .await?;
    done?;
    drop(monitor);
    println!("per flow, over {COUNTED} flows:");
    report("heartbeat", &heartbeats);
    report("admit", &admits);

    println!("throughput, {FLOWS} concurrent flows, {secs} s each:");
    let mut con = redis::Client::open(url.as_str())?
        .get_multiplexed_async_connection()
        .await?;
    let ping = {
        let store = Arc::clone(&store);
        throughput(secs, &viewers, &mut con, move |_| {
            let store = Arc::clone(&store);
            async move { Ok(store.ping().await?) }
        })
        .await?
    };
    let hb = {
        let (store, show_id) = (Arc::clone(&store), show_id.clone());
        throughput(secs, &viewers, &mut con, move |v| {
            let (store, show_id) = (Arc::clone(&store), show_id.clone());
            async move { heartbeat_flow(&store, &show_id, &v).await }
        })
        .await?
    };
    let admit = {
        let (store, show_id) = (Arc::clone(&store), show_id.clone());
        throughput(secs, &viewers, &mut con, move |v| {
            let (store, show_id) = (Arc::clone(&store), show_id.clone());
            async move { admit_flow(&store, &show_id, &v).await }
        })
        .await?
    };
    println!("PING {ping}");
    println!("heartbeat {hb} ({:.3} of PING)", hb.per_s / ping.per_s);
    println!("admit {admit} ({:.3} of PING)", admit.per_s / ping.per_s);
    drop(server);
    Ok(())
}
