//! Heartbeat throughput of one Redis against a Redis Cluster of 1 and of 3 masters, driven through
//! `RedisStore` as the server drives it (`heartbeat` only: the step that runs for every viewer every
//! interval), saturated by `--flows` concurrent flows over `--tickets` live sessions, each run
//! `--seconds` long. For each it prints heartbeats per second, p50/p99, and the CPU each redis-server
//! and this process spent per heartbeat (from /proc), so the split of the lease work over the masters
//! shows even where the machine's cores, not Redis, bound the total.
//!
//! `cargo run --release -p usher-store --example redis_cluster_scale [-- --seconds 10 --flows 256 --tickets 20000]`

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use usher_core::ids::{DeviceId, SessionId, ShowId};
use usher_core::lease::{AdmitDecision, HeartbeatDecision, Presented, SeatRules};
use usher_core::secret::SecretHasher;
use usher_core::show::SharingPolicy;
use usher_core::store::{AdmitRequest, NewTicket, Store};
use usher_store::contract::{show, ticket};
use usher_store::redis::{RedisConfig, RedisStore};
use usher_testkit::{RedisCluster, RedisServer};

/// User and system CPU time of a process, in clock ticks (1/100 s on Linux).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // the fields after the command name (which is in parentheses and may hold spaces)
    let after = stat.rsplit_once(") ").map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after the name and state
    field(11) + field(12)
}

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn connect(url: String) -> RedisStore {
    RedisStore::connect(RedisConfig {
        url,
        key_prefix: "usher:".into(),
        connect_timeout: Duration::from_secs(5),
        response_timeout: Duration::from_secs(5),
        wait_replicas: 0,
        wait_timeout: Duration::from_millis(100),
        sentinel: None,
    })
    .await
    .expect("connect")
}

/// Registers `n` tickets and seats one device on each: their sessions.
async fn seat(store: &RedisStore, n: usize) -> Vec<SessionId> {
    store
        .put_show(show("s1", 1, SharingPolicy::NewestWins))
        .await
        .unwrap();
    let batch: Vec<NewTicket> = (0..n)
        .map(|i| ticket("s1", &format!("scale-token-{i:010}"), None))
        .collect();
    for chunk in batch.chunks(1_000) {
        store.register_tickets(chunk.to_vec()).await.unwrap();
    }
    let show_id = ShowId::parse("s1").unwrap();
    let mut sessions = Vec::with_capacity(n);
    for t in &batch {
        let d = store
            .admit(AdmitRequest {
                ticket_id: t.ticket.id.clone(),
                show_id: show_id.clone(),
                bounds: t.ticket.bounds(),
                device_id: DeviceId::parse("device-0001").unwrap(),
                device_label: "Firefox on Linux".into(),
                rules: SeatRules {
                    max_devices: 1,
                    policy: SharingPolicy::NewestWins,
                    ttl_ms: 600_000,
                },
                country: None,
                address: None,
                presented: None,
                fresh: usher_store::contract::seat_secret(),
            })
            .await
            .unwrap();
        let AdmitDecision::Admitted { session_id, .. } = d else {
            panic!("{d:?}")
        };
        sessions.push(session_id);
    }
    sessions
}

/// Saturates `store` with heartbeats for `seconds`; prints the figures against `redis_pids`.
async fn run(
    label: &str,
    store: RedisStore,
    redis_pids: &[u32],
    tickets: usize,
    flows: usize,
    seconds: u64,
) {
    let sessions = Arc::new(seat(&store, tickets).await);
    let store = Arc::new(store);
    let stop = Arc::new(AtomicBool::new(false));
    let redis_before: Vec<u64> = redis_pids.iter().map(|p| cpu_ticks(*p)).collect();
    let own_before = cpu_ticks(std::process::id());
    let started = Instant::now();
    let tasks: Vec<_> = (0..flows)
        .map(|f| {
            let (store, sessions, stop) = (store.clone(), sessions.clone(), stop.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                // this flow's sessions and the secret each was last given, presented at its next
                // heartbeat as a player does
                let mine: Vec<&SessionId> = sessions.iter().skip(f).step_by(flows).collect();
                let mut secrets = vec![usher_store::contract::seat_secret(); mine.len()];
                let hasher = SecretHasher::new(b"scale-example-key-0123456789abcdef");
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) && !mine.is_empty() {
                    let k = i % mine.len();
                    let fresh = hasher.session_secret(&i.to_string());
                    let at = Instant::now();
                    let a = store
                        .heartbeat(
                            mine[k],
                            Presented {
                                secret: &secrets[k],
                                fresh: Some(fresh),
                                revive_since: None,
                            },
                        )
                        .await
                        .unwrap();
                    secrets[k] = fresh;
                    assert!(
                        matches!(a.decision, HeartbeatDecision::Renewed { .. }),
                        "{a:?}"
                    );
                    latencies.push(at.elapsed().as_micros() as u32);
                    i += 1;
                }
                latencies
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.unwrap());
    }
    let elapsed = started.elapsed().as_secs_f64();
    let own = cpu_ticks(std::process::id()) - own_before;
    let redis: Vec<u64> = redis_pids
        .iter()
        .zip(&redis_before)
        .map(|(p, before)| cpu_ticks(*p) - before)
        .collect();
    latencies.sort_unstable();
    let n = latencies.len();
    let pct = |q: f64| f64::from(latencies[((n as f64 * q) as usize).min(n - 1)]) / 1000.0;
    let per = |ticks: u64| ticks as f64 * 10_000.0 / n as f64;
    let masters: Vec<String> = redis
        .iter()
        .map(|t| format!("{:.1} µs ({:.0} %)", per(*t), *t as f64 / elapsed))
        .collect();
    println!(
        "{label:<22} {:>8.0} heartbeats/s  p50 {:>5.2} ms  p99 {:>6.2} ms  node {:>5.1} µs/hb  redis per hb and busy: {}",
        n as f64 / elapsed,
        pct(0.50),
        pct(0.99),
        per(own),
        masters.join(", ")
    );
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let seconds = arg("--seconds", 10);
    let flows = arg("--flows", 256) as usize;
    let tickets = arg("--tickets", 20_000) as usize;
    println!(
        "{tickets} live sessions, {flows} flows, {seconds} s per run, {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    // over TCP like the cluster's nodes
    let (one, port) = RedisServer::start_tcp().expect("redis-server");
    run(
        "one Redis",
        connect(format!("redis://127.0.0.1:{port}")).await,
        &[one.pid()],
        tickets,
        flows,
        seconds,
    )
    .await;
    drop(one);

    for masters in [1, 3] {
        let cluster = RedisCluster::start(masters).expect("cluster");
        let label = format!("cluster, {masters} master(s)");
        run(
            &label,
            connect(cluster.url(0)).await,
            &cluster.pids(),
            tickets,
            flows,
            seconds,
        )
        .await;
    }
}
