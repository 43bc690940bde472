//! The Lua copy of the lease rules (`src/redis/seats.lua` and the scripts that start with it) against the
//! Rust ones (`usher-core` `lease.rs`, which the embedded store runs): the same random sequences of admits,
//! heartbeats, checks, leaves, a revoke and the passing of time go to an embedded store and to a real
//! `redis-server`, and every answer, the usage and the live sessions must be the same. Sequences are long
//! enough to pass every memory cap (64 devices, 256 ended sessions, 8 issued secrets).
//!
//! Both stores run on one clock the test moves: the embedded store on a manual clock, the Lua rules on a
//! key the test sets to the same time ([`RedisStore::with_test_clock`]).
//!
//! `USHER_DIFF_SEQUENCES` (default 200) and `USHER_DIFF_STEPS` (default 300) set the size; a failure
//! names the seed, which `USHER_DIFF_SEED` replays.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use redis::AsyncCommands;
use usher_core::clock::{Clock, ManualClock, SystemClock, UnixMs};
use usher_core::ids::{DeviceId, SessionId};
use usher_core::lease::{
    AdmitDecision, DEVICE_MEMORY, ENDED_MEMORY, HeartbeatDecision, Presented, SeatRules,
};
use usher_core::secret::{SecretHash, SecretHasher};
use usher_core::show::SharingPolicy;
use usher_core::store::{AdmitRequest, RegisterOutcome, Store};
use usher_store::EmbeddedStore;
use usher_store::contract::{show, ticket};
use usher_store::redis::{RedisConfig, RedisStore};
use usher_testkit::RedisServer;

const CLOCK_KEY: &str = "usher-diff:test-clock-ms";
const TTL_MS: i64 = 45_000;
/// Distinct devices of a sequence: more than the 64 a ticket remembers.
const DEVICES: u64 = 80;

/// A small, seedable generator (xorshift64*), so a failing sequence replays from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Pair {
    embedded: EmbeddedStore,
    redis: RedisStore,
    clock: ManualClock,
    con: redis::aio::MultiplexedConnection,
    _dir: tempfile::TempDir,
    _server: RedisServer,
}

impl Pair {
    async fn start() -> Self {
        let server = RedisServer::start().expect("redis-server");
        let start = SystemClock.now();
        let clock = ManualClock::new(start);
        let dir = tempfile::tempdir().unwrap();
        let embedded = EmbeddedStore::open(dir.path(), Arc::new(clock.clone())).unwrap();
        let redis = RedisStore::connect(RedisConfig {
            url: server.url(),
            key_prefix: "usher-diff:".into(),
            connect_timeout: Duration::from_secs(2),
            response_timeout: Duration::from_secs(5),
            wait_replicas: 0,
            wait_timeout: Duration::from_millis(100),
            sentinel: None,
        })
        .await
        .expect("connect to redis")
        .with_test_clock(Arc::new(clock.clone()), CLOCK_KEY);
        let con = redis::Client::open(server.url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let mut pair = Self {
            embedded,
            redis,
            clock,
            con,
            _dir: dir,
            _server: server,
        };
        pair.advance(0).await;
        pair
    }

    /// Moves both clocks by `ms`.
    async fn advance(&mut self, ms: i64) {
        self.clock.advance_ms(ms);
        let now = self.clock.now().0;
        let _: () = self.con.set(CLOCK_KEY, now).await.unwrap();
    }
}

/// What a device of the sequence holds.
#[derive(Default, Clone)]
struct Device {
    /// Its session's ordinal (the same on both stores), once admitted.
    session: Option<usize>,
    /// The newest secret it was handed.
    secret: Option<u64>,
    /// Secrets it was handed before.
    older: Vec<u64>,
}

/// Per store: session id → ordinal, in the order the sessions were made.
#[derive(Default)]
struct Names(HashMap<SessionId, usize>, Vec<SessionId>);

impl Names {
    fn name(&mut self, id: &SessionId) -> usize {
        if let Some(n) = self.0.get(id) {
            return *n;
        }
        self.1.push(id.clone());
        self.0.insert(id.clone(), self.1.len() - 1);
        self.1.len() - 1
    }

    fn id(&self, ordinal: usize) -> &SessionId {
        &self.1[ordinal]
    }
}

fn normal_admit(d: &AdmitDecision, names: &mut Names) -> String {
    match d {
        AdmitDecision::Admitted {
            session_id,
            expires_at,
            reattached,
            first_play,
            superseded,
        } => {
            let mut sup: Vec<usize> = superseded.iter().map(|s| names.name(s)).collect();
            sup.sort_unstable();
            format!(
                "admitted #{} until {} reattached {reattached} first play {first_play} superseding {sup:?}",
                names.name(session_id),
                expires_at.0
            )
        }
        other => format!("{other:?}"),
    }
}

struct Sequence {
    seed: u64,
    hasher: SecretHasher,
    devices: Vec<Device>,
    names: [Names; 2],
    secrets: u64,
    log: Vec<String>,
}

impl Sequence {
    fn hash(&self, secret: u64) -> SecretHash {
        self.hasher
            .session_secret(&format!("seq-{}-secret-{secret}", self.seed))
    }

    fn fresh(&mut self) -> u64 {
        self.secrets += 1;
        self.secrets
    }

    fn fail(&self, what: &str, embedded: &str, redis: &str) -> ! {
        panic!(
            "seed {}: {what} differs\n  embedded: {embedded}\n  redis:    {redis}\nsteps so far:\n  {}",
            self.seed,
            self.log.join("\n  ")
        )
    }

    /// A secret device `d` may present: its newest, an older one (a copy or a late retry), a wrong one or
    /// none.
    fn presented(&mut self, rng: &mut Rng, d: usize) -> Option<u64> {
        let dev = &self.devices[d];
        match rng.below(10) {
            0..=5 => dev.secret,
            6 | 7 => {
                if dev.older.is_empty() {
                    dev.secret
                } else {
                    Some(dev.older[rng.below(dev.older.len() as u64) as usize])
                }
            }
            8 => Some(1_000_000 + rng.below(1000)),
            _ => None,
        }
    }
}

/// How far a sequence went: sessions that ended by being superseded, devices the usage remembers.
struct Reach {
    superseded: usize,
    devices: usize,
}

async fn run_sequence(pair: &mut Pair, seed: u64, steps: u64) -> Reach {
    let mut rng = Rng(seed | 1);
    let k = 1 + rng.below(3) as u32;
    let policy = if rng.below(2) == 0 {
        SharingPolicy::NewestWins
    } else {
        SharingPolicy::OldestWins
    };
    let show_id = format!("diff-{seed}");
    let s = show(&show_id, k, policy);
    pair.embedded.put_show(s.clone()).await.unwrap();
    pair.redis.put_show(s).await.unwrap();
    let new = ticket(&show_id, &format!("diff-token-{seed:020}"), None);
    let mut tickets = Vec::new();
    for store in [&pair.embedded as &dyn Store, &pair.redis] {
        match store
            .register_tickets(vec![new.clone()])
            .await
            .unwrap()
            .remove(0)
        {
            RegisterOutcome::Created(t) => tickets.push(t),
            other => panic!("register: {other:?}"),
        }
    }
    let t = tickets.remove(0);
    let mut seq = Sequence {
        seed,
        hasher: SecretHasher::new(b"differential-test-key-0123456789ab"),
        devices: vec![Device::default(); DEVICES as usize],
        names: [Names::default(), Names::default()],
        secrets: 0,
        log: Vec::new(),
    };
    let rules = SeatRules {
        max_devices: k,
        policy,
        ttl_ms: TTL_MS,
    };
    seq.log.push(format!("k {k}, {policy:?}"));
    // one sequence in ten is a storm: nine steps in ten are admits, mostly of new devices, so more than
    // the 256 ended sessions a ticket remembers pile up within the hour
    let storm = seed.is_multiple_of(10);
    seq.log.push(format!("storm {storm}"));
    // time moves by at most 50 minutes in all, inside the hour for which ended sessions are remembered
    let mut moved_ms = 0i64;
    let mut superseded = 0;
    for _ in 0..steps {
        let roll = if storm {
            match rng.below(10) {
                0..=8 => 0,
                _ => 30 + rng.below(70),
            }
        } else {
            rng.below(100)
        };
        // most steps go to a few devices, so sessions are renewed, copied and superseded; some to many,
        // so the device memory fills
        let d = if storm || rng.below(4) == 0 {
            rng.below(DEVICES) as usize
        } else {
            rng.below(6) as usize
        };
        if roll < 30 {
            let presented = seq.presented(&mut rng, d);
            let fresh = seq.fresh();
            let req = AdmitRequest {
                ticket_id: t.id.clone(),
                show_id: t.terms.show_id.clone(),
                bounds: t.bounds(),
                device_id: DeviceId::parse(&format!("diff-device-{d:03}")).unwrap(),
                device_label: format!("Device {d}"),
                rules,
                country: None,
                address: None,
                presented: presented.map(|p| seq.hash(p)),
                fresh: seq.hash(fresh),
            };
            seq.log.push(format!(
                "admit device {d} presenting {presented:?}, handed {fresh}"
            ));
            let e = pair.embedded.admit(req.clone()).await.unwrap();
            let r = pair.redis.admit(req).await.unwrap();
            let (ne, nr) = (
                normal_admit(&e, &mut seq.names[0]),
                normal_admit(&r, &mut seq.names[1]),
            );
            if ne != nr {
                seq.fail("admit", &ne, &nr);
            }
            seq.log.push(format!("  → {ne}"));
            if let AdmitDecision::Admitted {
                session_id,
                superseded: gone,
                ..
            } = &e
            {
                superseded += gone.len();
                let ordinal = seq.names[0].name(session_id);
                let dev = &mut seq.devices[d];
                if let Some(old) = dev.secret.replace(fresh) {
                    dev.older.push(old);
                }
                dev.session = Some(ordinal);
            }
        } else if roll < 75 {
            // a heartbeat (or, one in five, a check) of the device's session, or of another one's
            let target = if rng.below(8) == 0 {
                seq.devices[rng.below(DEVICES) as usize].session
            } else {
                seq.devices[d].session
            };
            let Some(ordinal) = target else { continue };
            let Some(secret) = seq.presented(&mut rng, d) else {
                continue;
            };
            let check = rng.below(5) == 0;
            let fresh = seq.fresh();
            let held = seq.hash(secret);
            let fresh_hash = seq.hash(fresh);
            // one in four rides out a store outage that began up to a minute ago (a lease lapsed since
            // is held again)
            let revive_since =
                (rng.below(4) == 0).then(|| UnixMs(pair.clock.now().0 - rng.below(60_000) as i64));
            let presented = Presented {
                secret: &held,
                fresh: (!check).then_some(fresh_hash),
                revive_since,
            };
            seq.log.push(format!(
                "{} #{ordinal} by device {d} presenting {secret}{}{}",
                if check { "check" } else { "heartbeat" },
                if check {
                    String::new()
                } else {
                    format!(", handed {fresh}")
                },
                revive_since.map_or(String::new(), |t| format!(
                    ", reviving leases lapsed after {} ms ago",
                    pair.clock.now().0 - t.0
                ))
            ));
            let e = pair
                .embedded
                .heartbeat(seq.names[0].id(ordinal), presented)
                .await
                .unwrap();
            let r = pair
                .redis
                .heartbeat(seq.names[1].id(ordinal), presented)
                .await
                .unwrap();
            let (ne, nr) = (format!("{:?}", e.decision), format!("{:?}", r.decision));
            if ne != nr || e.owner != r.owner {
                seq.fail(
                    "heartbeat",
                    &format!("{ne} of {:?}", e.owner),
                    &format!("{nr} of {:?}", r.owner),
                );
            }
            seq.log.push(format!("  → {ne}"));
            if !check && matches!(e.decision, HeartbeatDecision::Renewed { .. }) {
                let dev = &mut seq.devices[d];
                if let Some(old) = dev.secret.replace(fresh) {
                    dev.older.push(old);
                }
            }
        } else if roll < 83 {
            let Some(ordinal) = seq.devices[d].session else {
                continue;
            };
            let Some(secret) = seq.presented(&mut rng, d) else {
                continue;
            };
            let held = seq.hash(secret);
            seq.log.push(format!(
                "leave #{ordinal} by device {d} presenting {secret}"
            ));
            let e = pair
                .embedded
                .leave(seq.names[0].id(ordinal), &held)
                .await
                .unwrap();
            let r = pair
                .redis
                .leave(seq.names[1].id(ordinal), &held)
                .await
                .unwrap();
            if e != r {
                seq.fail("leave", &format!("{e:?}"), &format!("{r:?}"));
            }
            seq.log.push(format!("  → {e:?}"));
        } else if roll < 99 {
            let longest = if rng.below(4) == 0 { 60 } else { 15 };
            let ms = 1_000 * (1 + rng.below(longest)) as i64;
            if moved_ms + ms > 50 * 60_000 {
                continue;
            }
            moved_ms += ms;
            pair.advance(ms).await;
            seq.log.push(format!("{} s pass", ms / 1000));
        } else {
            seq.log.push("revoke".into());
            let e = pair.embedded.revoke_ticket(&t.id).await.unwrap();
            let r = pair.redis.revoke_ticket(&t.id).await.unwrap();
            if e.as_ref().map(|t| t.status) != r.as_ref().map(|t| t.status) {
                seq.fail("revoke", &format!("{e:?}"), &format!("{r:?}"));
            }
        }
    }
    // a roll call of every session the sequence made, with a check that changes nothing: what each
    // store still knows of it (live, ended and why, or forgotten past the ended memory)
    let nobody = seq.hash(u64::MAX);
    for ordinal in 0..seq.names[0].1.len() {
        let check = Presented {
            secret: &nobody,
            fresh: None,
            revive_since: None,
        };
        let e = pair
            .embedded
            .heartbeat(seq.names[0].id(ordinal), check)
            .await
            .unwrap();
        let r = pair
            .redis
            .heartbeat(seq.names[1].id(ordinal), check)
            .await
            .unwrap();
        let (ne, nr) = (format!("{:?}", e.decision), format!("{:?}", r.decision));
        if ne != nr {
            seq.fail(&format!("the roll call of #{ordinal}"), &ne, &nr);
        }
    }
    // what is left: the usage and the live sessions
    let e = pair.embedded.ticket_activity(&t.id).await.unwrap();
    let r = pair.redis.ticket_activity(&t.id).await.unwrap();
    if e.usage != r.usage {
        seq.fail(
            "usage",
            &format!("{:?}", e.usage),
            &format!("{:?}", r.usage),
        );
    }
    let live = |a: &usher_core::store::TicketActivity, names: &mut Names| {
        let mut v: Vec<String> = a
            .live
            .iter()
            .map(|s| {
                format!(
                    "#{} {} until {}",
                    names.name(&s.session_id),
                    s.device_id,
                    s.expires_at.0
                )
            })
            .collect();
        v.sort();
        v
    };
    let (le, lr) = (live(&e, &mut seq.names[0]), live(&r, &mut seq.names[1]));
    if le != lr {
        seq.fail("live sessions", &format!("{le:?}"), &format!("{lr:?}"));
    }
    Reach {
        superseded,
        devices: e.usage.devices.len(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lua_lease_rules_answer_as_the_rust_ones() {
    let mut pair = Pair::start().await;
    let sequences = env("USHER_DIFF_SEQUENCES", 200);
    let steps = env("USHER_DIFF_STEPS", 300);
    let first = env("USHER_DIFF_SEED", 0);
    let started = std::time::Instant::now();
    let (mut most_superseded, mut most_devices) = (0, 0);
    for i in 0..sequences {
        let seed = if first > 0 {
            first + i
        } else {
            0x5EED_0000 + i
        };
        let reach = run_sequence(&mut pair, seed, steps).await;
        most_superseded = most_superseded.max(reach.superseded);
        most_devices = most_devices.max(reach.devices);
    }
    eprintln!(
        "{sequences} sequences of {steps} steps on both stores in {:?}; at most {most_superseded} \
         sessions superseded and {most_devices} devices remembered in one sequence",
        started.elapsed()
    );
    // both ways a Redis node takes a lease step were compared: the node's transactions (a renewal, an
    // admit: the admit's read alone asks `LLEN`) and the scripts for the cases the node leaves to them
    let stats: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut pair.con)
        .await
        .unwrap();
    let calls = |command: &str| {
        stats
            .lines()
            .find_map(|l| l.strip_prefix(&format!("cmdstat_{command}:calls=")))
            .and_then(|rest| rest.split(',').next()?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let (exec, llen, evalsha) = (calls("exec"), calls("llen"), calls("evalsha"));
    eprintln!("{exec} transactions ({llen} admits read), {evalsha} scripts");
    if sequences >= 20 && steps >= 300 {
        assert!(
            llen > 1_000 && exec > 1_000 && evalsha > 1_000,
            "{exec} EXEC, {llen} LLEN, {evalsha} EVALSHA"
        );
    }
    // the sequences went past the caps, so the eviction code ran on both sides
    if sequences >= 20 && steps >= 300 {
        assert!(
            most_superseded > ENDED_MEMORY,
            "{most_superseded} superseded"
        );
        assert_eq!(most_devices, DEVICE_MEMORY);
    }
}
