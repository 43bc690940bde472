//! The Redis backend: many stateless Usher nodes share one Redis (or a Redis Cluster, below).
//!
//! Every step that must be atomic is one Lua script (`redis/*.lua`, those that touch leases prefixed with
//! the lease rules of `redis/seats.lua`), run with EVALSHA and reloaded on NOSCRIPT by `redis::Script`.
//! Lease time comes from Redis's `TIME` inside the script, so the clocks of the nodes do not matter.
//!
//! Each node keeps the shows and the CDN pool it read (`redis/cache.rs`), current through the generation
//! `config_gen` that every write of them moves forward and that the heartbeat, admit and token-lookup
//! scripts return. So the viewer's hot paths cost one round trip for a heartbeat (the script also returns
//! the ticket) and two for an admit (token lookup, admit step); the show and the pool come from memory.
//!
//! On a Redis Cluster (found from `INFO cluster` at start) the same scripts run, each on one slot: a
//! ticket's keys carry its shard's hash tag (`usher:{3f}:…`, the shard the first two hex digits of its
//! id and of its sessions' ids, taken from its token's keyed hash), every other key the tag `{config}`
//! (each shard also holds `schema`, `config_gen` (always 0) and `tickets`, its ticket ids for retention);
//! what crosses the two (the configuration generation, the door's count of the seats, a show's ticket
//! count) is read or written apart, each with the bound docs/redis.md ("Redis Cluster") states.
//!
//! # Keys (all under the configured prefix, default `usher:`; on a Redis Cluster followed by the tag)
//! | key | type | what |
//! | --- | --- | --- |
//! | `show:{id}` | string | show JSON |
//! | `shows` | set | show ids |
//! | `show_tickets:{id}` | string (int) | tickets registered for the show |
//! | `ticket:{id}` | string | ticket JSON (token only as keyed hash) |
//! | `token:{hash}` | string | ticket id by token hash |
//! | `seats:{ticket id}` | hash (schema 2, 3) or string (schema 1) | the ticket's leases, ended sessions and usage, with a version `v` every write moves (the retention step compares it); schema 2: fields `show_id`, `v`, `doc` (the rest as JSON), per lease `l:{session}` (JSON) and `h:{session}` (times and secret chain as text), per renewal since the last whole write `t:{session}` (`redis/seats.lua`); schema 3 adds `played`, `ls` (the leases' session ids in order), `jn` (waiting `j:` fields) and, per admit by fields since the last whole write, `j:{seq}` (what it saw for the usage, JSON); schema 1: one JSON string |
//! | `session:{id}` | string, TTL lease + 1 h to lease + 1 h 5 min (rewritten only once less than lease + 1 h is left) | ticket id of a session |
//! | `live:{show id}` | sorted set | live session ids scored by lease expiry (ms) |
//! | `ended:{session id}` | string, TTL 1 h | why a session ended (JSON), for its next heartbeat |
//! | `seats:{ticket id}:ended` | list, TTL 1 h | the ticket's ended session ids, oldest first: at most 256 are remembered, as in the embedded store |
//! | `apikey:{id}` | string | API key JSON (secret only as keyed hash) |
//! | `apikeys` | set | API key ids |
//! | `apikey_used:{id}` | string | last use (ms), best effort |
//! | `cdn:{id}` | string | CDN pool member JSON (signing keys included: protect Redis like the secrets) |
//! | `cdns` | set | CDN ids |
//! | `cdn_health:{id}` | string | the CDN's health record (JSON), written by the prober apart from the rest |
//! | `config_gen` | string (int) | moved forward by every write of a show, a CDN or its health (node caches) |
//! | `extref:{external ref}` | set | ids of the tickets registered with that external reference |
//! | `poster:{show id}` | string | the show's poster: content type, a NUL byte, the image |
//! | `webhook:{id}` | string | a webhook endpoint (JSON, its signing secret included: protect Redis like the secrets) |
//! | `webhooks` | set | webhook endpoint ids |
//! | `delivery:{id}` | string, TTL 7 days once finished | one event for one endpoint (JSON): the outbox |
//! | `deliveries:due` | sorted set | pending delivery ids scored by when they are due (ms); a claim moves the score to its end |
//! | `deliveries:of:{endpoint}` | list | an endpoint's delivery ids, newest first, the last 1,000 |
//! | `idem:{keyed hash}` | string, TTL its lapse | a POST remembered under its `Idempotency-Key` (JSON: request fingerprint, the sealed answer) |
//! | `tv:{keyed hash}` | hash (`secret`, `expires_at`, `interval_s`, `last`, `approval`), TTL a minute past its lapse | a TV sign-in code by its user code's keyed hash: the TV's device secret hash, its poll interval and last poll, the approval (JSON: ticket id, sealed token) |
//! | `door:{show id}:line`, `:seen`, `:passes` | zsets, TTL a few abandon times | a show's door (doors-open capacity): waiting tickets by arrival number, when each was last seen, passes handed out by their lapse |
//! | `door:{show id}` | hash, same TTL | the door's arrival counter, rate bucket and newcomers per window |
//! | `stream_key:{show id}` | string | the show's stream key record (JSON: the key's keyed hash, when it was made) |
//! | `content_key:{id}` | string | a content key's record (JSON: stream folder, the key wrapped under the key-encryption key) |
//! | `admin_user:{name}` | string | console user JSON (password only as an argon2 PHC string) |
//! | `admin_users` | set | console user names |
//! | `console:{hash}` | string, TTL idle timeout | console session JSON, by the keyed hash of its cookie |
//! | `user_sessions:{name}` | set | a user's console session hashes (ended when the user is deleted) |
//! | `login_attempts:{user:…/addr:…}` | hash (`n`, `until`), TTL window | login attempts counted and the end of the wait they set |
//! | `audit` | list | audit entries (JSON), newest first, trimmed to the last 1,000,000, pruned by age and count (`prune_audit.lua`) |
//! | `outcomes:{minute ms}` | hash, TTL 2 h | admit outcomes counted in that minute, by outcome |

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::sentinel::{SentinelClient, SentinelServerType};
use redis::{
    AsyncCommands as _, ErrorKind, RedisError, Script, ServerErrorKind, Value as RedisValue,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use usher_core::admin::{
    AdminUser, AuditEntry, AuditFilter, Backoff, ConsoleSession, LoginGate, OutcomeCount,
    UserChange, UserName,
};
use usher_core::cdn::{Cdn, CdnHealth};
use usher_core::clock::{Clock, SystemClock, UnixMs};
use usher_core::content_key::ContentKeyRecord;
use usher_core::ids::{
    ApiKeyId, CdnId, ContentKeyId, DeliveryId, SessionId, ShowId, TicketId, WebhookId,
};
use usher_core::lease::{
    AdmitDecision, EndReason, HeartbeatDecision, LeaveDecision, Presented, TicketLeases,
};
use usher_core::privacy::{Erased, Retention};
use usher_core::secret::SecretHash;
use usher_core::show::Show;
use usher_core::store::{
    AUDIT_SCAN_LIMIT, AdmitRequest, ApiKey, BackupInfo, DOOR_WINDOW_MS, DeleteShowOutcome,
    DoorAnswer, DoorRules, HeartbeatAnswer, IdempotencyClaim, IdempotentRequest, NewTicket,
    PutOutcome, RegisterOutcome, RetentionBatch, SessionInfo, Store, StoreError, TV_POLL_SLACK_MS,
    TicketActivity, TvApproval, TvApproveOutcome, TvCode, TvPoll,
};
use usher_core::stream_key::StreamKeyRecord;
use usher_core::ticket::{Ticket, TicketBounds, TicketStatus};
use usher_core::webhook::{Delivery, DeliveryState, WebhookEndpoint};

use cache::{ConfigCache, Lookup};

mod admission;
mod cache;
mod renewal;
mod tracked;

/// How to reach Redis.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// `redis://[user:password@]host:port/db`, `rediss://…` for TLS, or `redis+unix:///path`.
    pub url: String,
    /// Prefix of every key (namespaces several deployments in one Redis).
    pub key_prefix: String,
    /// Longest wait for a connection.
    pub connect_timeout: Duration,
    /// Longest wait for an answer; past it the call fails with `Unavailable` (no hung requests).
    pub response_timeout: Duration,
    /// Replicas that must acknowledge a durable write (tickets, shows, keys) before it is answered
    /// (`WAIT`); 0 answers once the master has it.
    pub wait_replicas: u32,
    /// Longest `WAIT` for those replicas.
    pub wait_timeout: Duration,
    /// Find the master through Redis Sentinel instead of `url` (whose credentials and database still
    /// apply to the data nodes).
    pub sentinel: Option<SentinelConfig>,
}

/// Redis Sentinel discovery: a fail-over needs no configuration change and no restart.
#[derive(Debug, Clone)]
pub struct SentinelConfig {
    /// The name the sentinels monitor the master under.
    pub master_name: String,
    /// Sentinel addresses, `host:port`.
    pub addresses: Vec<String>,
}

/// Connections to the configured URL, or to the master Sentinel names: the main one and, with
/// `separate` (`wait_replicas` set), a second for the writes that wait for replicas (see
/// [`RedisStore::durable`]; otherwise the same one twice), and the renewals' own connections
/// (`redis/renewal.rs`, opened as needed). All go to the same master: Sentinel is asked once.
async fn managers(
    url: &str,
    sentinel: Option<&mut SentinelClient>,
    cfg: ConnectionManagerConfig,
    renewer: redis::AsyncConnectionConfig,
    separate: bool,
) -> Result<(Con, Con, Arc<Workers>), StoreError> {
    let sentinel_used = sentinel.is_some();
    let client = match sentinel {
        Some(s) => s
            .async_get_client()
            .await
            .map_err(|e| StoreError::Unavailable(format!("sentinel: {e}")))?,
        None => redis::Client::open(url)
            .map_err(|e| StoreError::Unavailable(format!("redis url: {e}")))?,
    };
    let workers = Workers::new(client.clone(), renewer, sentinel_used);
    let main = client
        .get_connection_manager_with_config(cfg.clone())
        .await
        .map_err(unavailable)?;
    let durable = if separate {
        client
            .get_connection_manager_with_config(cfg)
            .await
            .map_err(unavailable)?
    } else {
        main.clone()
    };
    Ok((Con::One(main), Con::One(durable), workers))
}

/// The node's lease steps without a script, on connections to the master the node's main connection goes
/// to (replaced with it when Sentinel names a new master): renewals and admits, each kind with its own
/// [`renewal::WORKERS`], and the origin's lease checks on a tracked connection (`redis/tracked.rs`).
struct Workers {
    renewals: renewal::Pool<renewal::Job>,
    admits: renewal::Pool<admission::Job>,
    /// The origin's lease checks, on a tracked connection (`redis/tracked.rs`).
    checks: tracked::Tracked,
}

impl Workers {
    /// Starts the workers (they stop once the `Workers` and every step they hold are gone). Under
    /// `sentinel`, a lost tracked connection is not opened again: discovery replaces the workers.
    fn new(
        client: redis::Client,
        config: redis::AsyncConnectionConfig,
        sentinel: bool,
    ) -> Arc<Self> {
        Arc::new(Self {
            checks: tracked::Tracked::new(&client, config.clone(), !sentinel),
            renewals: renewal::Pool::new(client.clone(), config.clone()),
            admits: renewal::Pool::new(client, config),
        })
    }

    /// Renews through a batch; [`renewal::Outcome::Script`] when the workers are gone.
    async fn renew(&self, job: renewal::Job) -> renewal::Outcome {
        self.renewals.run(job).await
    }

    /// Admits through a batch (`redis/admission.rs`); a script outcome when the workers are gone.
    async fn admit(&self, job: admission::Job) -> admission::Outcome {
        self.admits.run(job).await
    }
}

/// A connection: to one Redis (directly or through Sentinel), or to a Redis Cluster, whose client sends
/// each command to the master of its key's slot and follows MOVED, ASK and topology changes.
#[derive(Clone)]
enum Con {
    One(ConnectionManager),
    Cluster(redis::cluster_async::ClusterConnection),
}

impl redis::aio::ConnectionLike for Con {
    fn req_packed_command<'a>(
        &'a mut self,
        cmd: &'a redis::Cmd,
    ) -> redis::RedisFuture<'a, RedisValue> {
        match self {
            Con::One(c) => c.req_packed_command(cmd),
            Con::Cluster(c) => match slot_guarded(cmd) {
                Some(guarded) => Box::pin(async move { c.req_packed_command(&guarded).await }),
                None => c.req_packed_command(cmd),
            },
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<RedisValue>> {
        match self {
            Con::One(c) => c.req_packed_commands(pipeline, offset, count),
            Con::Cluster(c) => {
                if !pipeline.cmd_iter().any(runs_script) {
                    return c.req_packed_commands(pipeline, offset, count);
                }
                // the same commands, each script guarded; the caller's pipeline still sorts the answers
                // (ignored items, a transaction's EXEC) from what this returns
                let mut guarded = redis::pipe();
                if pipeline.is_transaction() {
                    guarded.atomic();
                }
                for cmd in pipeline.cmd_iter() {
                    guarded.add_command(slot_guarded(cmd).unwrap_or_else(|| cmd.clone()));
                }
                Box::pin(async move { c.req_packed_commands(&guarded, offset, count).await })
            }
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Con::One(c) => c.get_db(),
            Con::Cluster(c) => c.get_db(),
        }
    }
}

/// What ends the name of the key [`slot_guarded`] adds to a script's keys on a Redis Cluster: a key that
/// never exists. A NUL byte, which no id, reference or name that reaches a key may hold
/// (`usher_core::validation::check_text`), so the scripts' [`SLOT_GUARD_PRELUDE`] never takes it for a
/// key of their own.
const SLOT_GUARD: &[u8] = b"\0slot-guard";

/// The first lines of every script: drop the key [`slot_guarded`] added (on a Redis Cluster) before the
/// script reads its own keys, some of which are optional (`if KEYS[4] then`).
const SLOT_GUARD_PRELUDE: &str =
    "if #KEYS > 0 and string.sub(KEYS[#KEYS], -11) == '\0slot-guard' then KEYS[#KEYS] = nil end";

/// Every script of this store: [`SLOT_GUARD_PRELUDE`], then `body`.
fn lua(body: &str) -> Script {
    Script::new(&format!("{SLOT_GUARD_PRELUDE}\n{body}"))
}

/// `cmd` with one more key when it runs a script (EVALSHA or EVAL) on a Redis Cluster: a key in the slot
/// of its first key that never exists (`{tag}` + [`SLOT_GUARD`]).
///
/// A script reads keys it did not declare (a session's ticket, seats, endings), which share its slot's
/// hash tag. While `redis-cli --cluster reshard` moves that slot key by key, the master it leaves would
/// answer such a read "not local" mid-script, and the master it goes to (asked with ASKING) would answer
/// nil for a key not yet moved, so a renewal could answer `unknown` for a live session. With a declared
/// key that is never there, Redis runs no script on a slot while it moves: the leaving master answers
/// TRYAGAIN (or ASK, and the receiving one TRYAGAIN), and the cluster client tries again
/// ([`CLUSTER_RETRIES`]) until the slot has one master, which holds all of its keys.
fn slot_guarded(cmd: &redis::Cmd) -> Option<redis::Cmd> {
    if !runs_script(cmd) {
        return None;
    }
    let args: Vec<&[u8]> = cmd
        .args_iter()
        .map(|a| match a {
            redis::Arg::Simple(a) => Some(a),
            _ => None,
        })
        .collect::<Option<_>>()?;
    let (name, rest) = args.split_first()?;
    let (script, rest) = rest.split_first()?;
    let (numkeys, rest) = rest.split_first()?;
    let numkeys: usize = std::str::from_utf8(numkeys).ok()?.parse().ok()?;
    let first = rest
        .first()
        .filter(|_| numkeys > 0 && rest.len() >= numkeys)?;
    // the hash tag as Redis reads it: from the first `{` to the next `}`, not empty
    let open = first.iter().position(|&b| b == b'{')?;
    let close = open + 1 + first[open + 1..].iter().position(|&b| b == b'}')?;
    if close == open + 1 {
        return None;
    }
    let mut guard = first[..=close].to_vec();
    guard.extend_from_slice(SLOT_GUARD);
    let mut out = redis::cmd(std::str::from_utf8(name).ok()?);
    out.arg(*script).arg(numkeys + 1);
    for key in &rest[..numkeys] {
        out.arg(*key);
    }
    out.arg(guard);
    for arg in &rest[numkeys..] {
        out.arg(*arg);
    }
    Some(out)
}

/// Whether `cmd` runs a script (EVALSHA or EVAL), read from its name alone.
fn runs_script(cmd: &redis::Cmd) -> bool {
    matches!(cmd.args_iter().next(), Some(redis::Arg::Simple(name))
        if name.eq_ignore_ascii_case(b"EVALSHA") || name.eq_ignore_ascii_case(b"EVAL"))
}

/// How often the cluster client sends a step again that a master answered TRYAGAIN (its slot is moving,
/// [`slot_guarded`]), CLUSTERDOWN, ASK or MOVED: 8 times, the n-th (1 to 8) after a random wait from
/// 2 ms to below min(5 ms × 2ⁿ, 200 ms), up to ~0.9 s in all (~0.5 s on average), and never past the
/// response timeout, which bounds the whole call. The client's own default waits at least 1.28 s before
/// each.
const CLUSTER_RETRIES: u32 = 8;

/// The shards of a Redis Cluster layout: every key of a ticket (its token, record, seats, sessions,
/// endings and its share of a show's live set) carries the hash tag of its shard, the first two hex
/// digits of its id (`TicketId::generate_in`), so that every lease step touches one slot.
const SHARDS: u16 = 256;

/// The most shards one node asks at once in a step over every shard.
const SHARD_CONCURRENCY: usize = 32;

/// A shard's name: two lower-case hex digits.
fn shard_name(n: u16) -> String {
    format!("{n:02x}")
}

/// The hash tag of every key that is not a ticket's on a Redis Cluster: shows, CDNs, keys, users,
/// audit, webhooks, doors and the configuration generation, on one slot.
const CONFIG_TAG: &str = "{config}:";
/// The hash tag of [`CONFIG_TAG`].
const CONFIG_TAG_NAME: &str = "config";

/// The Redis Cluster hash slot of keys whose hash tag is `tag`: CRC16 (XMODEM) of the tag, modulo
/// 16,384 (the cluster specification's `HASH_SLOT`).
fn cluster_slot(tag: &str) -> u16 {
    const CRC16: crc::Crc<u16> = crc::Crc::<u16>::new(&crc::CRC_16_XMODEM);
    CRC16.checksum(tag.as_bytes()) % 16_384
}

/// On a Redis Cluster: how often a node reads a show's live count for its door ([`RedisStore::live_count`]).
const LIVE_COUNT_AGE: Duration = Duration::from_millis(250);
/// On a Redis Cluster: how long after its read began a show's live count may still be used (by the
/// asker that read it; the others use it until [`LIVE_COUNT_AGE`]).
const LIVE_COUNT_USABLE: Duration = Duration::from_millis(750);
/// On a Redis Cluster: how long a door pass still counts after its admit took the seat. Above
/// [`LIVE_COUNT_USABLE`], so a seat is counted by the pass or by the count, with 1.25 s to spare for
/// the nodes' clocks, which time the passes.
const PASS_AFTER_ADMIT_MS: i64 = 2_000;

/// The key of the configuration generation (`redis/cache.rs`).
const CONFIG_GEN: &str = "config_gen";

/// The layout of Redis keys this build reads and writes, stamped under `schema` (docs/redis.md, "Keys").
/// 1: the layout of Usher 0.1.0 and 0.2.0 (0.1.0 stamped nothing: a database without the key is schema
/// 1), a ticket's seats one JSON string. 2: the seats a hash whose heartbeat fields need no JSON
/// (`redis/seats.lua`). 3: the same hash, and an admit that needs no JSON document either (it writes what
/// it saw for the usage as a `j:` field that the next whole read replays). This build reads all three and
/// writes the one stamped: a new database is stamped 3; one stamped 1 or 2 keeps its layout, so that
/// nodes of an older release still read every seat during a rolling upgrade, until
/// [`RedisStore::upgrade_schema`] (`usher redis-schema --upgrade`) moves it, and each ticket's seats move
/// at their next write. A node refuses a newer stamp at start.
pub const REDIS_SCHEMA: u32 = 3;

/// The lease rules' clock in `redis/seats.lua`: Redis's `TIME`.
const SERVER_NOW: &str = "local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end";

/// A script that works on leases: the lease rules and the configuration generation, then `body`.
fn script(body: &str) -> Script {
    script_timed(body, SERVER_NOW)
}

/// Where `redis/seats.lua`'s base (constants, clock) ends and its rules begin.
const RULES_BEGIN: &str = "-- end of the lease base";

/// `redis/seats.lua` cut where its rules begin: its base (constants, clock), with `now_ms` as `now_fn`,
/// and its rules.
fn seats_base_and_rules(now_fn: &str) -> (String, &'static str) {
    let (base, rules) = include_str!("redis/seats.lua")
        .split_once(RULES_BEGIN)
        .expect("seats.lua marks where its rules begin");
    assert!(base.contains(SERVER_NOW), "seats.lua's base defines now_ms");
    (base.replace(SERVER_NOW, now_fn), rules)
}

/// The heartbeat: the lease base, the generation and the renewal by fields (`heartbeat_fields.lua`),
/// and only then the lease rules and the rest, which a renewal by fields never runs.
fn heartbeat_script(now_fn: &str) -> Script {
    let (base, rules) = seats_base_and_rules(now_fn);
    lua(&format!(
        "{base}\n{}\n{}\n{RULES_BEGIN}{rules}\n{}",
        include_str!("redis/generation.lua"),
        include_str!("redis/heartbeat_fields.lua"),
        include_str!("redis/heartbeat.lua"),
    ))
}

/// Where the lease rules an admit by fields needs end in `redis/seats.lua`, and the whole document's
/// begin.
const ADMIT_PART_END: &str = "-- end of the admit's part";

/// The admit: the lease base, the generation and the rules an admit by fields needs, the admit by fields
/// (`admit_fields.lua`), and only then the rest of the rules and the whole step (`admit.lua`): defining
/// the rules an admit by fields never runs was ~5 % of its instructions in Redis.
fn admit_script(now_fn: &str) -> Script {
    let (base, rules) = seats_base_and_rules(now_fn);
    let (fields, whole) = rules
        .split_once(ADMIT_PART_END)
        .expect("seats.lua marks where the admit's part ends");
    lua(&format!(
        "{base}\n{}\n{RULES_BEGIN}{fields}\n{}\n{ADMIT_PART_END}{whole}\n{}",
        include_str!("redis/generation.lua"),
        include_str!("redis/admit_fields.lua"),
        include_str!("redis/admit.lua"),
    ))
}

/// [`script`] with the lease rules' `now_ms` replaced by `now_fn`.
fn script_timed(body: &str, now_fn: &str) -> Script {
    let (base, rules) = seats_base_and_rules(now_fn);
    lua(&format!(
        "{base}{RULES_BEGIN}{rules}\n{}\n{body}",
        include_str!("redis/generation.lua"),
    ))
}

/// A script that reads or writes shows or the CDN pool: the configuration generation, then `body`.
fn config_script(body: &str) -> Script {
    lua(&format!(
        "{}\n{}",
        include_str!("redis/generation.lua"),
        body
    ))
}

struct Scripts {
    admit: Script,
    heartbeat: Script,
    end_session: Script,
    leave: Script,
    register: Script,
    revoke: Script,
    delete_show: Script,
    show: Script,
    pool: Script,
    set_cdn_health: Script,
    put_config: Script,
    delete_cdn: Script,
    login_attempt: Script,
    undo_login_attempt: Script,
    change_admin_user: Script,
    end_console_sessions: Script,
    prune_audit: Script,
    live_counts: Script,
    live_counts_shard: Script,
    erase: Script,
    retain: Script,
    seats_read: Script,
    door: Script,
    session_read: Script,
}

/// The current connections, replaced when Sentinel names a new master.
struct Link {
    con: RwLock<Con>,
    /// With `wait_replicas`: a second connection for the writes that wait for replicas, and their
    /// `WAIT` ([`RedisStore::durable`]); without, the same connection as `con`.
    durable: RwLock<Con>,
    /// The renewals' and admits' own connections (`redis/renewal.rs`) and the lease checks' tracked one
    /// (`redis/tracked.rs`), to the same master; none on a Redis Cluster.
    workers: RwLock<Option<Arc<Workers>>>,
    /// Wakes the re-discovery task after a connection-level failure.
    lost: Notify,
    /// With Sentinel: the connection failed and no master Sentinel names has been connected to since.
    /// The old connection is not used meanwhile — it would reconnect by itself to the old master's
    /// address, where the old master may be back as a replica with stale data (or as a master that
    /// Sentinel is about to demote) — so every call fails fast as unavailable until discovery is done.
    stale: AtomicBool,
}

impl Link {
    /// The lease transactions' workers, on the master the node now uses (none on a Redis Cluster).
    fn workers(&self) -> Option<Arc<Workers>> {
        self.workers
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn replace(&self, con: Con, durable: Con, workers: Option<Arc<Workers>>) {
        fn set<T>(slot: &RwLock<T>, to: T) {
            *slot
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = to;
        }
        set(&self.con, con);
        set(&self.durable, durable);
        set(&self.workers, workers);
    }
}

/// How many audit entries the log keeps, newest first (older ones are trimmed as new ones come).
const AUDIT_KEPT: isize = 1_000_000;

/// The Redis backend.
pub struct RedisStore {
    link: Arc<Link>,
    discovery: Option<tokio::task::JoinHandle<()>>,
    /// The prefix of every key that is not a ticket's: the configured one, on a Redis Cluster followed
    /// by [`CONFIG_TAG`].
    prefix: String,
    /// The configured prefix.
    base_prefix: String,
    /// On a Redis Cluster: every ticket's keys carry its shard's hash tag (docs/redis.md, "Redis Cluster").
    cluster: bool,
    /// On a Redis Cluster: each node's copy of every show's live-session count, for the door (see
    /// [`RedisStore::live_count`]).
    live_counts: std::sync::Mutex<std::collections::HashMap<ShowId, (Instant, u64)>>,
    /// One read of a show's live count at a time.
    live_count_read:
        std::sync::Mutex<std::collections::HashMap<ShowId, Arc<tokio::sync::Mutex<()>>>>,
    scripts: Scripts,
    wait_replicas: u32,
    wait_timeout: Duration,
    /// Shows and the CDN pool as last read, kept current by the generation counter (`redis/cache.rs`).
    config: ConfigCache,
    /// The bounds of the tickets this node has read, for the heartbeat (`redis/cache.rs`).
    bounds: cache::BoundsCache,
    /// The ticket of each session this node admitted, renewed or checked, for the renewal without a
    /// script (`redis/renewal.rs`) and the origin's lease check by `HMGET` ([`Store::live_session`]).
    owners: cache::Owners,
    /// Whether the origin's lease check met seats kept as one JSON document lately (schema 1).
    document_seats: cache::DocumentSeats,
    /// The ticket of each token this node looked up, for the next lookup (`redis/cache.rs`).
    token_owners: cache::TokenOwners,
    /// The tickets whose admits met others lately: their admits go straight to the script.
    contended: admission::Contended,
    /// For tests: the key the lease steps read their time from instead of Redis's `TIME`
    /// ([`RedisStore::with_test_clock`]).
    clock_key: Option<String>,
    /// The node's clock (the system's; a test's with [`RedisStore::with_test_clock`]); lease time is
    /// Redis's own.
    clock: Arc<dyn Clock>,
    /// Where this node's pass of [`Store::retain_usage`] stands: the shard (on a Redis Cluster; 0
    /// otherwise) and the `SCAN` (`SSCAN` of the shard's ticket set) cursor; (0, 0): a new pass.
    retention_cursor: std::sync::Mutex<(u16, u64)>,
}

impl Drop for RedisStore {
    fn drop(&mut self) {
        if let Some(d) = &self.discovery {
            d.abort();
        }
    }
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

fn unavailable(e: redis::RedisError) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

/// `SCAN` hint of one [`Store::retain_usage`] call: keys of every kind looked at (the seats among them
/// are read and changed).
const RETENTION_SCAN_COUNT: u64 = 2_000;
/// Times a ticket's retention step is tried again when an admit or heartbeat changed its seats between
/// the read and the step; past them it waits for the next pass.
const RETENTION_TRIES: usize = 3;

/// `text` with the glob characters of `SCAN MATCH` escaped.
fn glob_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Deliveries kept per endpoint in its log.
const DELIVERIES_KEPT: isize = 1_000;
/// How long a delivered or given-up delivery is kept.
const FINISHED_DELIVERY_TTL_S: u64 = 7 * 24 * 3600;

fn decode<T: DeserializeOwned>(what: &str, s: &str) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

fn encode<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("domain records serialize")
}

/// A ticket's seats document as the scripts keep it.
#[derive(Deserialize)]
struct Seats {
    show_id: ShowId,
    /// The document's version, moved by every write (`retain.lua` compares it).
    #[serde(default)]
    v: u64,
    #[serde(flatten)]
    leases: TicketLeases,
}

/// A lease's fixed part as layout 2 keeps it (`l:{session}`, redis/seats.lua).
#[derive(Deserialize)]
struct LeaseFixed {
    session_id: SessionId,
    device_id: usher_core::ids::DeviceId,
    device_label: String,
    created_at: UnixMs,
}

/// The schema version a stamp names; refuses one newer than this build's or one that is no version.
fn check_stamp(key: &str, found: &str) -> Result<u32, StoreError> {
    let version: u32 = found.parse().map_err(|_| {
        StoreError::Incompatible(format!(
            "Redis key {key} holds {found:?}, not a schema version: this database (or key_prefix) \
                 is used by something else"
        ))
    })?;
    if version > REDIS_SCHEMA {
        return Err(StoreError::Incompatible(format!(
            "Redis key {key} says schema {version}, written by a newer Usher; this build ({}) reads \
                 schema {REDIS_SCHEMA} and older. Finish the rollout with the newer release, or roll \
                 back its data",
            env!("CARGO_PKG_VERSION"),
        )));
    }
    Ok(version)
}

/// Sends `pipe` (EVALSHA of `script`, as `pipe.invoke_script` builds it). After a Redis restart (an
/// empty script cache) every item answers NOSCRIPT unrun, so the script is loaded and the pipeline sent
/// again: loading it before every pipeline cost Redis more than a registration itself.
async fn query_scripts<T: redis::FromRedisValue>(
    con: &mut Con,
    script: &Script,
    pipe: &redis::Pipeline,
) -> Result<T, RedisError> {
    match pipe.query_async(con).await {
        Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
            script.load_async(con).await?;
            pipe.query_async(con).await
        }
        answers => answers,
    }
}

/// What the registration step's answer means for `ticket`.
fn register_outcome(ticket: &Ticket, answer: &[String]) -> Result<RegisterOutcome, StoreError> {
    Ok(match answer.first().map(String::as_str) {
        Some("created") => RegisterOutcome::Created(ticket.clone()),
        Some("existing") => {
            let existing: Ticket = decode("ticket", answer.get(1).map_or("", String::as_str))?;
            if existing.terms == ticket.terms {
                RegisterOutcome::Existing(existing)
            } else {
                RegisterOutcome::Conflict(existing.id)
            }
        }
        other => {
            return Err(StoreError::Corrupt(format!("register answered {other:?}")));
        }
    })
}

fn session_info(
    seats: &Seats,
    ticket_id: &TicketId,
    session: &SessionId,
    now: UnixMs,
) -> Option<SessionInfo> {
    seats
        .leases
        .live(now)
        .find(|l| &l.session_id == session)
        .map(|l| SessionInfo {
            session_id: l.session_id.clone(),
            ticket_id: ticket_id.clone(),
            show_id: seats.show_id.clone(),
            device_id: l.device_id.clone(),
            device_label: l.device_label.clone(),
            created_at: l.created_at,
            renewed_at: l.renewed_at,
            expires_at: l.expires_at,
        })
}

/// A session's lease as its ticket's seats keep it (layout 2): the seats' `show_id` and the session's `l:`
/// (fixed, JSON) and `h:` (`renewed_at,expires_at,…`: `redis/seats.lua`) fields; `None` when any is
/// missing (no such lease, or no such seats). Whether it has expired is the caller's to tell.
fn lease_record(
    ticket_id: TicketId,
    show: Option<String>,
    fixed: Option<String>,
    moving: Option<String>,
) -> Result<Option<SessionInfo>, StoreError> {
    let (Some(show), Some(fixed), Some(moving)) = (show, fixed, moving) else {
        return Ok(None);
    };
    let fixed: LeaseFixed = decode("lease", &fixed)?;
    let mut times = moving.splitn(3, ',').map(str::parse::<i64>);
    let (Some(Ok(renewed_at)), Some(Ok(expires_at))) = (times.next(), times.next()) else {
        return Err(StoreError::Corrupt(format!("lease times {moving:?}")));
    };
    Ok(Some(SessionInfo {
        session_id: fixed.session_id,
        ticket_id,
        show_id: ShowId::parse(&show).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        device_id: fixed.device_id,
        device_label: fixed.device_label,
        created_at: fixed.created_at,
        renewed_at: UnixMs(renewed_at),
        expires_at: UnixMs(expires_at),
    }))
}

/// `record` if its lease has not expired by `now`.
fn live_at(record: Option<SessionInfo>, now: UnixMs) -> Option<SessionInfo> {
    record.filter(|info| info.expires_at > now)
}

/// The fields [`lease_record`] reads, of the seats `key` for session `sid`, read as bytes.
async fn lease_hmget(
    con: &mut impl redis::aio::ConnectionLike,
    key: &str,
    sid: &str,
) -> Result<(Option<Vec<u8>>, Option<Vec<u8>>, Option<Vec<u8>>), RedisError> {
    redis::cmd("HMGET")
        .arg(key)
        .arg("show_id")
        .arg(renewal::Joined("l:", sid))
        .arg(renewal::Joined("h:", sid))
        .query_async(con)
        .await
}

/// How the origin's lease check was answered: `usher_redis_lease_checks_total{way}`.
#[derive(Clone, Copy)]
enum LeaseCheck {
    /// From what the tracked connection read and Redis has not invalidated (`redis/tracked.rs`).
    Kept,
    /// By an `HMGET` of the seats' fields.
    Read,
    /// By `redis/session_read.lua` (a session the node has not seen, seats kept as one document).
    Script,
}

fn count_lease_check(way: LeaseCheck) {
    use std::sync::OnceLock;
    static COUNTERS: [OnceLock<metrics::Counter>; 3] = [const { OnceLock::new() }; 3];
    let label = match way {
        LeaseCheck::Kept => "kept",
        LeaseCheck::Read => "read",
        LeaseCheck::Script => "script",
    };
    COUNTERS[way as usize]
        .get_or_init(|| metrics::counter!("usher_redis_lease_checks_total", "way" => label))
        .increment(1);
}

fn as_string(v: &RedisValue) -> Option<String> {
    match v {
        RedisValue::BulkString(b) => String::from_utf8(b.clone()).ok(),
        RedisValue::SimpleString(s) => Some(s.clone()),
        RedisValue::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

/// A JSON record in a script's answer, decoded in place; `None` for a nil (Lua `false`).
fn decode_bulk<T: DeserializeOwned>(what: &str, v: &RedisValue) -> Result<Option<T>, StoreError> {
    match v {
        RedisValue::Nil => Ok(None),
        RedisValue::BulkString(b) => serde_json::from_slice(b)
            .map(Some)
            .map_err(|e| StoreError::Corrupt(format!("{what}: {e}"))),
        other => Err(StoreError::Corrupt(format!(
            "{what}: not a string: {other:?}"
        ))),
    }
}

fn as_i64(v: &RedisValue) -> Option<i64> {
    match v {
        RedisValue::Int(i) => Some(*i),
        other => as_string(other).and_then(|s| s.parse().ok()),
    }
}

impl RedisStore {
    /// Connects (failing fast when Redis does not answer) and warns when Redis may evict data.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the URL is invalid or Redis does not answer in time.
    pub async fn connect(cfg: RedisConfig) -> Result<Self, StoreError> {
        let mgr_cfg = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(cfg.connect_timeout))
            .set_response_timeout(Some(cfg.response_timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let deadline = cfg.connect_timeout + cfg.response_timeout;
        let mut sentinel = match &cfg.sentinel {
            Some(s) => {
                let addrs: Vec<String> =
                    s.addresses.iter().map(|a| format!("redis://{a}")).collect();
                Some(
                    SentinelClient::build(
                        addrs,
                        s.master_name.clone(),
                        None,
                        SentinelServerType::Master,
                    )
                    .map_err(|e| StoreError::Unavailable(format!("sentinel: {e}")))?,
                )
            }
            None => None,
        };
        let separate = cfg.wait_replicas > 0;
        let renewer = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(cfg.connect_timeout))
            .set_response_timeout(Some(cfg.response_timeout));
        let (con, durable, workers) = tokio::time::timeout(
            deadline,
            managers(
                &cfg.url,
                sentinel.as_mut(),
                mgr_cfg.clone(),
                renewer.clone(),
                separate,
            ),
        )
        .await
        .map_err(|_| StoreError::Unavailable("redis did not answer in time".into()))??;
        let link = Arc::new(Link {
            con: RwLock::new(con),
            durable: RwLock::new(durable),
            workers: RwLock::new(Some(workers)),
            lost: Notify::new(),
            stale: AtomicBool::new(false),
        });
        let discovery = sentinel.map(|mut sentinel| {
            let link = Arc::clone(&link);
            let url = cfg.url.clone();
            tokio::spawn(async move {
                loop {
                    link.lost.notified().await;
                    // follow the master Sentinel names now; retry until one answers
                    loop {
                        match tokio::time::timeout(
                            deadline,
                            managers(
                                &url,
                                Some(&mut sentinel),
                                mgr_cfg.clone(),
                                renewer.clone(),
                                separate,
                            ),
                        )
                        .await
                        {
                            Ok(Ok((con, durable, workers))) => {
                                link.replace(con, durable, Some(workers));
                                link.stale.store(false, Ordering::Release);
                                tracing::warn!("Redis connection re-established through Sentinel");
                                break;
                            }
                            Ok(Err(e)) => {
                                tracing::warn!(error = %e, "Sentinel has no reachable master yet")
                            }
                            Err(_) => tracing::warn!("Sentinel discovery timed out"),
                        }
                        tokio::time::sleep(Duration::from_millis(250)).await;
                    }
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            })
        });
        let mut store = Self {
            link,
            discovery,
            prefix: cfg.key_prefix.clone(),
            base_prefix: cfg.key_prefix.clone(),
            cluster: false,
            live_counts: std::sync::Mutex::default(),
            live_count_read: std::sync::Mutex::default(),
            scripts: Scripts {
                admit: admit_script(SERVER_NOW),
                heartbeat: heartbeat_script(SERVER_NOW),
                end_session: script(include_str!("redis/end_session.lua")),
                leave: script(include_str!("redis/leave.lua")),
                // no lease rule: without seats.lua, whose definitions were a third of its instructions
                register: lua(include_str!("redis/register.lua")),
                revoke: script(include_str!("redis/revoke.lua")),
                delete_show: script(include_str!("redis/delete_show.lua")),
                show: config_script(include_str!("redis/show.lua")),
                pool: config_script(include_str!("redis/pool.lua")),
                set_cdn_health: config_script(include_str!("redis/set_cdn_health.lua")),
                put_config: config_script(include_str!("redis/put_config.lua")),
                delete_cdn: config_script(include_str!("redis/delete_cdn.lua")),
                login_attempt: lua(include_str!("redis/login_attempt.lua")),
                undo_login_attempt: lua(include_str!("redis/undo_login_attempt.lua")),
                change_admin_user: lua(include_str!("redis/change_admin_user.lua")),
                end_console_sessions: lua(include_str!("redis/end_console_sessions.lua")),
                prune_audit: lua(include_str!("redis/prune_audit.lua")),
                live_counts: lua(include_str!("redis/live_counts.lua")),
                live_counts_shard: lua(include_str!("redis/live_counts_shard.lua")),
                erase: script(include_str!("redis/erase.lua")),
                retain: script(include_str!("redis/retain.lua")),
                seats_read: script(include_str!("redis/seats_read.lua")),
                door: lua(include_str!("redis/door.lua")),
                session_read: lua(include_str!("redis/session_read.lua")),
            },
            wait_replicas: cfg.wait_replicas,
            wait_timeout: cfg.wait_timeout,
            config: ConfigCache::new(cache::FRESHNESS),
            bounds: cache::BoundsCache::default(),
            owners: cache::Owners::default(),
            document_seats: cache::DocumentSeats::default(),
            token_owners: cache::TokenOwners::default(),
            contended: admission::Contended::default(),
            clock_key: None,
            clock: Arc::new(SystemClock),
            retention_cursor: std::sync::Mutex::new((0, 0)),
        };
        if store.is_cluster_node().await {
            store.join_cluster(&cfg).await?;
        }
        store.check_eviction_policy().await;
        store.check_schema().await?;
        Ok(store)
    }

    /// Whether the Redis at the configured URL is a node of a Redis Cluster (`cluster_enabled:1` in
    /// `INFO cluster`). A server whose INFO has no cluster section (a proxy, an old Redis) is taken at its
    /// word.
    async fn is_cluster_node(&self) -> bool {
        let Ok(mut con) = self.con() else {
            return false;
        };
        let info: Result<String, _> = redis::cmd("INFO")
            .arg("cluster")
            .query_async(&mut con)
            .await;
        match info {
            Ok(info) => info.lines().any(|l| l.trim() == "cluster_enabled:1"),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read Redis's INFO cluster; taking this Redis for a single master");
                false
            }
        }
    }

    /// Moves to the cluster layout and a cluster connection, which learns the cluster's slots from the
    /// node at the configured URL. Refuses, before anything is read or written, what the cluster layout
    /// does not offer: Sentinel (a cluster fails over by itself) and a key prefix holding braces (its own
    /// hash tag would put every key on one slot). `wait_replicas` works as on one Redis: see
    /// [`RedisStore::replicate_shards`].
    async fn join_cluster(&mut self, cfg: &RedisConfig) -> Result<(), StoreError> {
        let refuse = |why: &str| {
            Err(StoreError::Incompatible(format!(
                "this Redis is a node of a Redis Cluster, and {why} (docs/redis.md, \"Redis Cluster\")"
            )))
        };
        if cfg.sentinel.is_some() {
            return refuse(
                "Sentinel is configured too: a cluster fails over by itself, drop `sentinel`",
            );
        }
        if cfg.key_prefix.contains(['{', '}']) {
            return refuse(
                "the key prefix holds a brace, which would be its own hash tag: drop it",
            );
        }
        let client = redis::cluster::ClusterClientBuilder::new(vec![cfg.url.as_str()])
            .retries(CLUSTER_RETRIES)
            .min_retry_wait(2)
            .max_retry_wait(200)
            .retry_wait_formula(5, 2)
            .connection_timeout(cfg.connect_timeout)
            .response_timeout(cfg.response_timeout)
            .build()
            .map_err(|e| StoreError::Unavailable(format!("redis cluster: {e}")))?;
        let connect = || async {
            tokio::time::timeout(
                cfg.connect_timeout + cfg.response_timeout,
                client.get_async_connection(),
            )
            .await
            .map_err(|_| StoreError::Unavailable("redis cluster did not answer in time".into()))?
            .map(Con::Cluster)
            .map_err(|e| StoreError::Unavailable(format!("redis cluster: {e}")))
        };
        let con = connect().await?;
        // a connection of its own for the writes that wait for replicas, as on one Redis
        // ([`RedisStore::durable`]): a cluster connection holds one connection to each master
        let durable = if cfg.wait_replicas > 0 {
            connect().await?
        } else {
            con.clone()
        };
        self.link.replace(con, durable, None);
        self.cluster = true;
        self.prefix = format!("{}{CONFIG_TAG}", cfg.key_prefix);
        Ok(())
    }

    /// Sets how long this node serves the shows and CDN pool it holds without a heartbeat, admit or token
    /// lookup confirming them ([`cache::FRESHNESS`] unless set; `Duration::ZERO` asks Redis on every read).
    /// For tests and measurements: a change made on another node is seen by the next heartbeat or admit
    /// whatever this is.
    #[must_use]
    pub fn with_config_freshness(mut self, freshness: Duration) -> Self {
        self.config = ConfigCache::new(freshness);
        self
    }

    /// For tests only: the lease rules take their time from the Redis key `clock_key` (milliseconds since
    /// the epoch, which the test keeps equal to `clock`) instead of Redis's `TIME`, and the node's own
    /// reads from `clock`, so a test moves time for this store and an embedded one at once (the
    /// differential test of the Lua lease rules against the Rust ones). Never used by `usher serve`.
    #[must_use]
    pub fn with_test_clock(mut self, clock: Arc<dyn Clock>, clock_key: &str) -> Self {
        let now_fn = format!(
            "local function now_ms()\n  return tonumber(redis.call('GET', '{clock_key}'))\nend"
        );
        let t = |body| script_timed(body, &now_fn);
        let scripts = &mut self.scripts;
        scripts.admit = admit_script(&now_fn);
        scripts.heartbeat = heartbeat_script(&now_fn);
        scripts.end_session = t(include_str!("redis/end_session.lua"));
        scripts.leave = t(include_str!("redis/leave.lua"));
        scripts.register = lua(include_str!("redis/register.lua"));
        scripts.revoke = t(include_str!("redis/revoke.lua"));
        scripts.delete_show = t(include_str!("redis/delete_show.lua"));
        scripts.erase = t(include_str!("redis/erase.lua"));
        scripts.retain = t(include_str!("redis/retain.lua"));
        self.clock = clock;
        self.clock_key = Some(clock_key.to_owned());
        self
    }

    /// Maps a Redis error to ours, and after a connection-level failure (refused, dropped, timed out, or a
    /// demoted master answering READONLY) wakes Sentinel discovery.
    fn fail(&self, e: RedisError) -> StoreError {
        let connection_lost = e.is_io_error()
            || e.is_connection_refusal()
            || e.is_connection_dropped()
            || e.is_timeout()
            || e.kind() == ErrorKind::Server(ServerErrorKind::ReadOnly);
        if connection_lost && self.discovery.is_some() {
            self.link.stale.store(true, Ordering::Release);
            self.link.lost.notify_one();
        }
        unavailable(e)
    }

    async fn check_eviction_policy(&self) {
        let Ok(mut con) = self.con() else { return };
        let policy: Result<Vec<String>, _> = redis::cmd("CONFIG")
            .arg("GET")
            .arg("maxmemory-policy")
            .query_async(&mut con)
            .await;
        match policy {
            Ok(v) => {
                if let Some(p) = v.get(1)
                    && p != "noeviction"
                {
                    tracing::error!(redis.maxmemory_policy = %p, "Redis may EVICT keys under memory pressure and silently drop tickets: set `maxmemory-policy noeviction`");
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read Redis maxmemory-policy (CONFIG may be disabled); make sure it is noeviction")
            }
        }
    }

    /// Reads the layout version under `schema`, stamps a database no release stamped (1 when it holds
    /// 0.1.0's records, which wrote schema 1 without a stamp; [`REDIS_SCHEMA`] when it is empty), and
    /// refuses a newer layout or a value that is not a version, before this node serves anything.
    async fn check_schema(&self) -> Result<(), StoreError> {
        let key = self.key(&["schema"]);
        let mut con = self.con()?;
        let found: Option<String> = con.get(&key).await.map_err(unavailable)?;
        let Some(found) = found else {
            // a database with records but no stamp is 0.1.0's (schema 1), whose nodes may still run; an
            // empty one starts on this build's layout
            let mut used = false;
            for set in ["shows", "apikeys", "admin_users", "cdns"] {
                let n: i64 = con.exists(self.key(&[set])).await.map_err(unavailable)?;
                used |= n > 0;
            }
            // NX: a node of a newer release stamping at the same moment keeps its stamp, and the
            // check below sees it at this node's next start
            let _: Option<String> = redis::cmd("SET")
                .arg(&key)
                .arg(if used { 1 } else { REDIS_SCHEMA })
                .arg("NX")
                .query_async(&mut con)
                .await
                .map_err(unavailable)?;
            // read back: a node that stamped first decides, and its stamp is checked like any other
            let stamped: Option<String> = con.get(&key).await.map_err(unavailable)?;
            let version = check_stamp(&key, stamped.as_deref().unwrap_or("1"))?;
            return self.stamp_shards(&self.con()?, version, true).await;
        };
        let version = check_stamp(&key, &found)?;
        self.stamp_shards(&self.con()?, version, true).await
    }

    /// On a Redis Cluster: stamps every shard with `version` (unless stamped, with `only_new`), where the
    /// lease scripts, which touch only their shard's slot, read the layout (`redis/seats.lua` `layout`).
    async fn stamp_shards(
        &self,
        con: &Con,
        version: u32,
        only_new: bool,
    ) -> Result<(), StoreError> {
        if !self.cluster {
            return Ok(());
        }
        self.each_shard(con, |shard, mut con| {
            // one round trip per shard: both keys are on its slot
            let mut pipe = redis::pipe();
            let set = pipe
                .cmd("SET")
                .arg(self.shard_key(&shard, &["schema"]))
                .arg(version);
            if only_new {
                set.arg("NX");
            }
            // the generation the shard's lease steps read ([`RedisStore::step_generation_key`])
            pipe.cmd("SET")
                .arg(self.shard_key(&shard, &[CONFIG_GEN]))
                .arg(0)
                .arg("NX");
            async move { pipe.query_async::<()>(&mut con).await }
        })
        .await
        .map(drop)
    }

    fn key(&self, parts: &[&str]) -> String {
        let mut k = self.prefix.clone();
        for (i, p) in parts.iter().enumerate() {
            if i > 0 {
                k.push(':');
            }
            k.push_str(p);
        }
        k
    }

    /// The prefix of the keys of the tickets of shard `shard` (two hex digits): the configured prefix on
    /// one Redis, with the shard's hash tag on a Redis Cluster. The lease scripts build every key of a
    /// ticket from it, so each touches one slot.
    fn shard_prefix(&self, shard: &str) -> String {
        if self.cluster {
            format!("{}{{{shard}}}:", self.base_prefix)
        } else {
            self.prefix.clone()
        }
    }

    /// A key of a ticket of shard `shard` (see [`RedisStore::shard_prefix`]).
    fn shard_key(&self, shard: &str, parts: &[&str]) -> String {
        let mut k = self.shard_prefix(shard);
        k.push_str(&parts.join(":"));
        k
    }

    /// The configuration generation as a lease step of shard `shard` reads it. On a Redis Cluster the
    /// generation is on another slot, so the step reads its shard's, stamped `0` at start and never
    /// changed, and the node's copy of the shows and pool follows the generation by its reads of them
    /// instead ([`RedisStore::observe_step`]).
    fn step_generation_key(&self, shard: &str) -> String {
        if self.cluster {
            self.shard_key(shard, &[CONFIG_GEN])
        } else {
            self.key(&[CONFIG_GEN])
        }
    }

    /// Notes the generation a lease step returned; on a Redis Cluster the step could not read it.
    fn observe_step(&self, generation: i64, asked: Instant) {
        if !self.cluster {
            self.config.observe(generation, asked);
        }
    }

    /// A ticket's bounds for a heartbeat: this node's copy, or one read, then kept.
    async fn bounds_of(&self, ticket_id: &TicketId) -> Result<Option<TicketBounds>, StoreError> {
        match self.bounds.get(ticket_id) {
            Some(b) => Ok(Some(b)),
            None => Ok(self.ticket(ticket_id).await?.map(|t| t.bounds())),
        }
    }

    /// The heartbeat's renewal without a script (`redis/renewal.rs`): `None` when the script is to
    /// decide (a cluster, a session this node has not renewed yet, a case other than the two common
    /// ones, a conflicting write, a connection that failed before anything was written).
    async fn renew_without_script(
        &self,
        session: &SessionId,
        presented: &Presented<'_>,
        asked: Instant,
    ) -> Result<Option<HeartbeatAnswer>, StoreError> {
        use renewal::{Kind, Why};
        let count = |way| renewal::count(Kind::Renewal, way);
        let why = if presented.fresh.is_none() {
            Some(Why::NoFreshSecret)
        } else if self.cluster {
            Some(Why::Cluster)
        } else if self.usable().is_err() {
            Some(Why::Unreachable)
        } else {
            None
        };
        let (Some(fresh), None) = (presented.fresh, why) else {
            count(why);
            return Ok(None);
        };
        let Some(ticket_id) = self.owners.get(session) else {
            count(Some(Why::UnknownSession));
            return Ok(None);
        };
        let workers = self.link.workers();
        let Some(workers) = workers else {
            count(Some(Why::Unreachable));
            return Ok(None);
        };
        let shard = session.shard();
        let job = renewal::Job {
            seats: self.shard_key(shard, &["seats", ticket_id.as_str()]),
            index: self.shard_key(shard, &["session", session.as_str()]),
            live: self.shard_key(shard, &["live", ""]),
            session: session.as_str().to_owned(),
            ticket: ticket_id.as_str().to_owned(),
            generation: self.step_generation_key(shard),
            clock: self.clock_key.clone(),
            presented: presented.secret.to_hex(),
            fresh: fresh.to_hex(),
            revive_since: presented.revive_since.map(|t| t.0),
        };
        let outcome = workers.renew(job).await;
        count(match outcome {
            renewal::Outcome::Script(why) => Some(why),
            _ => None,
        });
        let (expires_at, show_id, generation) = match outcome {
            renewal::Outcome::Script(_) => return Ok(None),
            renewal::Outcome::Failed(e) => return Err(self.fail(e)),
            renewal::Outcome::Wrong {
                show_id,
                generation,
            } => {
                let show_id = ShowId::parse(&show_id)
                    .map_err(|_| StoreError::Corrupt(format!("a lease's show id {show_id:?}")))?;
                self.observe_step(generation, asked);
                return Ok(Some(HeartbeatAnswer {
                    decision: HeartbeatDecision::WrongSecret,
                    owner: Some((ticket_id, show_id)),
                    ticket: None,
                }));
            }
            renewal::Outcome::Renewed {
                expires_at,
                show_id,
                generation,
            } => (expires_at, show_id, generation),
        };
        let show_id = ShowId::parse(&show_id)
            .map_err(|_| StoreError::Corrupt(format!("a lease's show id {show_id:?}")))?;
        // a session still renewing stays known through the node's generations of sessions
        self.owners.refresh(session);
        self.observe_step(generation, asked);
        let ticket = self.bounds_of(&ticket_id).await?;
        Ok(Some(HeartbeatAnswer {
            decision: HeartbeatDecision::Renewed {
                expires_at: UnixMs(expires_at),
            },
            owner: Some((ticket_id, show_id)),
            ticket,
        }))
    }

    /// The admit without a script (`redis/admission.rs`): `None` when the script is to decide (a
    /// cluster, a first play, a re-attachment, a case of another shape, a conflicting write, a connection
    /// that failed before anything was written).
    async fn admit_without_script(
        &self,
        req: &AdmitRequest,
        new_session: &SessionId,
        asked: Instant,
    ) -> Result<Option<AdmitDecision>, StoreError> {
        use renewal::{Kind, Why};
        let count = |way| renewal::count(Kind::Admit, way);
        let why = if self.cluster {
            Some(Why::Cluster)
        } else if self.usable().is_err() {
            Some(Why::Unreachable)
        } else if self.contended.holds(req.ticket_id.as_str()) {
            Some(Why::Crowd)
        } else {
            None
        };
        let workers = self.link.workers();
        let (Some(workers), None) = (workers, why) else {
            count(why.or(Some(Why::Unreachable)));
            return Ok(None);
        };
        let shard = req.ticket_id.shard();
        let prefix = self.shard_prefix(shard);
        let job = admission::Job {
            seats: self.shard_key(shard, &["seats", req.ticket_id.as_str()]),
            ticket_key: self.shard_key(shard, &["ticket", req.ticket_id.as_str()]),
            schema: format!("{prefix}schema"),
            prefix,
            generation: self.step_generation_key(shard),
            clock: self.clock_key.clone(),
            passes: self.passes_key(&req.show_id),
            ticket: req.ticket_id.as_str().to_owned(),
            device: req.device_id.as_str().to_owned(),
            label: req.device_label.clone(),
            session: new_session.as_str().to_owned(),
            seats_allowed: req.rules.max_devices.max(1) as usize,
            oldest_wins: req.rules.policy == usher_core::show::SharingPolicy::OldestWins,
            ttl_ms: req.rules.ttl_ms,
            country: req.country.as_ref().map_or("", |c| c.as_str()).to_owned(),
            address: req.address.map_or_else(String::new, |a| a.to_string()),
            presented: req.presented.map_or_else(String::new, |h| h.to_hex()),
            fresh: req.fresh.to_hex(),
        };
        let outcome = workers.admit(job).await;
        count(match outcome {
            admission::Outcome::Script(why) => Some(why),
            _ => None,
        });
        if let admission::Outcome::Script(Why::Crowd | Why::Conflict) = outcome {
            self.contended.mark(req.ticket_id.as_str());
        }
        let (decision, generation) = match outcome {
            admission::Outcome::Script(_) => return Ok(None),
            admission::Outcome::Failed(e) => return Err(self.fail(e)),
            admission::Outcome::Revoked { generation } => (AdmitDecision::Revoked, generation),
            admission::Outcome::InUse {
                retry_after_s,
                generation,
            } => (
                AdmitDecision::InUse {
                    retry_after_s: retry_after_s.max(1) as u64,
                },
                generation,
            ),
            admission::Outcome::Admitted {
                session,
                expires_at,
                superseded,
                reattached,
                generation,
            } => {
                let session_id = SessionId::parse(&session).map_err(|_| {
                    StoreError::Corrupt(format!("an admit's session id {session:?}"))
                })?;
                // as from the script: a stored id of another form is no session to tell of
                let superseded = superseded
                    .iter()
                    .filter_map(|s| SessionId::parse(s).ok())
                    .collect();
                // the session's ticket, for its renewals without a script (redis/renewal.rs)
                self.owners.keep(&session_id, req.ticket_id.clone());
                (
                    AdmitDecision::Admitted {
                        session_id,
                        expires_at: UnixMs(expires_at),
                        reattached,
                        first_play: false,
                        superseded,
                    },
                    generation,
                )
            }
        };
        self.observe_step(generation, asked);
        Ok(Some(decision))
    }

    /// [`Store::admit`]'s step.
    async fn admit_step(&self, req: &AdmitRequest) -> Result<AdmitDecision, StoreError> {
        let policy = match req.rules.policy {
            usher_core::show::SharingPolicy::NewestWins => "newest_wins",
            usher_core::show::SharingPolicy::OldestWins => "oldest_wins",
        };
        let asked = Instant::now();
        let shard = req.ticket_id.shard();
        let new_session = SessionId::generate_in(shard);
        if let Some(decision) = self.admit_without_script(req, &new_session, asked).await? {
            return Ok(decision);
        }
        let answer: Vec<RedisValue> = self
            .scripts
            .admit
            .key(self.shard_key(shard, &["seats", req.ticket_id.as_str()]))
            .key(self.step_generation_key(shard))
            .key(self.shard_key(shard, &["ticket", req.ticket_id.as_str()]))
            .arg(self.shard_prefix(shard))
            .arg(req.ticket_id.as_str())
            .arg(req.show_id.as_str())
            .arg(req.device_id.as_str())
            .arg(&req.device_label)
            .arg(new_session.as_str())
            .arg(req.rules.max_devices.max(1))
            .arg(policy)
            .arg(req.rules.ttl_ms)
            .arg(req.country.as_ref().map_or("", |c| c.as_str()))
            .arg(req.address.map_or_else(String::new, |a| a.to_string()))
            .arg(req.presented.map_or_else(String::new, |h| h.to_hex()))
            .arg(req.fresh.to_hex())
            // on a Redis Cluster the door's passes are on another slot: the node shortens this
            // ticket's pass after the step ([`RedisStore::pass_used`])
            .arg(if self.cluster {
                String::new()
            } else {
                self.passes_key(&req.show_id)
            })
            .invoke_async(&mut self.con()?)
            .await
            .map_err(|e| self.fail(e))?;
        let bad = || StoreError::Corrupt(format!("admit answered {answer:?}"));
        match answer.first().and_then(as_string).as_deref() {
            Some("revoked") => {
                let generation = answer.get(1).and_then(as_i64).ok_or_else(bad)?;
                self.observe_step(generation, asked);
                Ok(AdmitDecision::Revoked)
            }
            Some("in_use") => {
                let generation = answer.get(2).and_then(as_i64).ok_or_else(bad)?;
                self.observe_step(generation, asked);
                Ok(AdmitDecision::InUse {
                    retry_after_s: answer.get(1).and_then(as_i64).ok_or_else(bad)?.max(1) as u64,
                })
            }
            Some("admitted") => {
                let sid = answer
                    .get(1)
                    .and_then(as_string)
                    .and_then(|s| SessionId::parse(&s).ok())
                    .ok_or_else(bad)?;
                let expires_at = UnixMs(answer.get(2).and_then(as_i64).ok_or_else(bad)?);
                let reattached = answer.get(3).and_then(as_i64) == Some(1);
                let generation = answer.get(4).and_then(as_i64).ok_or_else(bad)?;
                self.observe_step(generation, asked);
                let first_play = answer.get(5).and_then(as_i64).ok_or_else(bad)? == 1;
                let superseded = answer[6..]
                    .iter()
                    .filter_map(as_string)
                    .filter_map(|s| SessionId::parse(&s).ok())
                    .collect();
                if self.cluster && !reattached {
                    self.pass_used(&req.show_id, &req.ticket_id);
                }
                // the session's ticket, for its renewals without a script (redis/renewal.rs)
                self.owners.keep(&sid, req.ticket_id.clone());
                Ok(AdmitDecision::Admitted {
                    session_id: sid,
                    expires_at,
                    reattached,
                    first_play,
                    superseded,
                })
            }
            _ => Err(bad()),
        }
    }

    /// This node wrote (or may have written) `ticket`'s seats: the origin's lease checks it kept of them
    /// go now, so that this node sees its own change at its next check; other nodes drop theirs as
    /// Redis's invalidation reaches them (`redis/tracked.rs`).
    fn wrote_seats(&self, ticket: &TicketId) {
        if let Some(workers) = self.link.workers() {
            workers
                .checks
                .forget(&self.shard_key(ticket.shard(), &["seats", ticket.as_str()]));
        }
    }

    /// [`Self::wrote_seats`] for `session`'s ticket: the one this node knows, else the session's index
    /// names (one `GET`, on one Redis only: a Redis Cluster keeps no answers). No index, no answer kept.
    async fn wrote_session_seats(&self, session: &SessionId) {
        if self.link.workers().is_none() {
            return;
        }
        let ticket = match self.owners.get(session) {
            Some(t) => Some(t),
            None => self.ticket_of_session(session).await.ok().flatten(),
        };
        if let Some(ticket) = ticket {
            self.wrote_seats(&ticket);
        }
    }

    /// [`Store::heartbeat`]'s step.
    async fn heartbeat_step(
        &self,
        session: &SessionId,
        presented: Presented<'_>,
    ) -> Result<HeartbeatAnswer, StoreError> {
        let asked = Instant::now();
        if let Some(answer) = self
            .renew_without_script(session, &presented, asked)
            .await?
        {
            return Ok(answer);
        }
        let answer: Vec<RedisValue> = self
            .scripts
            .heartbeat
            .key(self.shard_key(session.shard(), &["session", session.as_str()]))
            .key(self.step_generation_key(session.shard()))
            .arg(self.shard_prefix(session.shard()))
            .arg(session.as_str())
            .arg(presented.secret.to_hex())
            .arg(presented.fresh.map_or_else(String::new, |h| h.to_hex()))
            .arg(
                presented
                    .revive_since
                    .map_or_else(String::new, |t| t.0.to_string()),
            )
            .invoke_async(&mut self.con()?)
            .await
            .map_err(|e| self.fail(e))?;
        let bad = || StoreError::Corrupt(format!("heartbeat answered {answer:?}"));
        let owner = || -> Result<(TicketId, ShowId), StoreError> {
            let t = answer
                .get(2)
                .and_then(as_string)
                .and_then(|s| TicketId::parse(&s).ok())
                .ok_or_else(bad)?;
            let s = answer
                .get(3)
                .and_then(as_string)
                .and_then(|s| ShowId::parse(&s).ok())
                .ok_or_else(bad)?;
            // the session's ticket, for its next renewal without a script (redis/renewal.rs)
            self.owners.keep(session, t.clone());
            Ok((t, s))
        };
        match answer.first().and_then(as_string).as_deref() {
            Some(word @ ("unknown" | "cloned" | "wrong")) => {
                let generation = answer.get(1).and_then(as_i64).ok_or_else(bad)?;
                self.observe_step(generation, asked);
                // a refused secret still names the session's owner, as the embedded store does
                let (decision, owner) = match word {
                    "cloned" => (HeartbeatDecision::Cloned, Some(owner()?)),
                    "wrong" => (HeartbeatDecision::WrongSecret, Some(owner()?)),
                    _ => (HeartbeatDecision::Unknown, None),
                };
                Ok(HeartbeatAnswer {
                    decision,
                    owner,
                    ticket: None,
                })
            }
            Some("renewed") => {
                let generation = answer.get(4).and_then(as_i64).ok_or_else(bad)?;
                self.observe_step(generation, asked);
                let expires_at = UnixMs(answer.get(1).and_then(as_i64).ok_or_else(bad)?);
                let (ticket_id, show_id) = owner()?;
                // the renewal by fields reads no ticket (redis/cache.rs BoundsCache): its bounds come from
                // this node's copy, or the whole step's answer, or one more read
                let ticket = match decode_bulk::<Ticket>("ticket", answer.get(5).ok_or_else(bad)?)?
                {
                    Some(t) => {
                        let b = t.bounds();
                        self.bounds.keep(&t.id, b);
                        Some(b)
                    }
                    None => self.bounds_of(&ticket_id).await?,
                };
                Ok(HeartbeatAnswer {
                    decision: HeartbeatDecision::Renewed { expires_at },
                    owner: Some((ticket_id, show_id)),
                    ticket,
                })
            }
            Some("ended") => {
                let generation = answer.get(4).and_then(as_i64).ok_or_else(bad)?;
                self.observe_step(generation, asked);
                let reason: EndReason = decode(
                    "end reason",
                    &answer.get(1).and_then(as_string).ok_or_else(bad)?,
                )?;
                Ok(HeartbeatAnswer {
                    decision: HeartbeatDecision::Ended(reason),
                    owner: Some(owner()?),
                    ticket: None,
                })
            }
            _ => Err(bad()),
        }
    }

    /// [`Store::end_session`]'s step.
    async fn end_session_step(
        &self,
        session: &SessionId,
        reason: EndReason,
    ) -> Result<bool, StoreError> {
        let n: i64 = self
            .scripts
            .end_session
            .key(self.shard_key(session.shard(), &["session", session.as_str()]))
            .arg(self.shard_prefix(session.shard()))
            .arg(session.as_str())
            .arg(encode(&reason))
            .invoke_async(&mut self.con()?)
            .await
            .map_err(|e| self.fail(e))?;
        Ok(n == 1)
    }

    /// [`Store::leave`]'s step.
    async fn leave_step(
        &self,
        session: &SessionId,
        secret: &SecretHash,
    ) -> Result<LeaveDecision, StoreError> {
        let answer: String = self
            .scripts
            .leave
            .key(self.shard_key(session.shard(), &["session", session.as_str()]))
            .arg(self.shard_prefix(session.shard()))
            .arg(session.as_str())
            .arg(secret.to_hex())
            .invoke_async(&mut self.con()?)
            .await
            .map_err(|e| self.fail(e))?;
        match answer.as_str() {
            "left" => Ok(LeaveDecision::Left),
            "not_live" => Ok(LeaveDecision::NotLive),
            "cloned" => Ok(LeaveDecision::Cloned),
            "wrong" => Ok(LeaveDecision::WrongSecret),
            other => Err(StoreError::Corrupt(format!("leave answered {other:?}"))),
        }
    }

    /// Registers `batch` on a Redis Cluster: one pipeline per shard, all at once, each ticket's step on its
    /// shard's slot. The show's ticket counter and the external reference index are on the
    /// configuration's slot, so they are written before the steps and taken back for every ticket a step
    /// answered `existing`: a node lost in between, or a step whose answer is lost, leaves a counter
    /// too high (the show cannot be deleted until it is corrected), never a ticket its show does not
    /// count.
    async fn register_sharded(
        &self,
        con: &Con,
        batch: Vec<NewTicket>,
    ) -> Result<Vec<RegisterOutcome>, StoreError> {
        for NewTicket { ticket } in &batch {
            if ticket.id.shard() != ticket.token_hash.shard() {
                return Err(StoreError::Corrupt(format!(
                    "ticket {} is not in its token's shard: a ticket id is made by TicketId::generate_in with its token hash's shard",
                    ticket.id
                )));
            }
        }
        let mut con = con.clone();
        let counts = |sign: i64, which: &dyn Fn(usize) -> bool| {
            let mut pipe = redis::pipe();
            for (i, NewTicket { ticket }) in batch.iter().enumerate() {
                if !which(i) {
                    continue;
                }
                pipe.incr(
                    self.key(&["show_tickets", ticket.terms.show_id.as_str()]),
                    sign,
                )
                .ignore();
                if let Some(r) = &ticket.terms.external_ref {
                    let key = self.key(&["extref", r]);
                    if sign > 0 {
                        pipe.sadd(key, ticket.id.as_str()).ignore();
                    } else {
                        pipe.srem(key, ticket.id.as_str()).ignore();
                    }
                }
            }
            pipe
        };
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let _: () = counts(1, &|_| true)
            .query_async(&mut con)
            .await
            .map_err(|e| self.fail(e))?;
        let mut by_shard: std::collections::BTreeMap<&str, Vec<usize>> = Default::default();
        for (i, NewTicket { ticket }) in batch.iter().enumerate() {
            by_shard.entry(ticket.id.shard()).or_default().push(i);
        }
        let steps = by_shard.into_iter().map(|(shard, items)| {
            let mut con = con.clone();
            let batch = &batch;
            async move {
                let ticket_prefix = self.shard_key(shard, &["ticket", ""]);
                // the answers of the chunks sent before a failure are kept: their tickets stay counted
                // or are taken back as those answers say
                let mut answers: Vec<(usize, Vec<String>)> = Vec::with_capacity(items.len());
                for chunk in items.chunks(1000) {
                    let mut pipe = redis::pipe();
                    for &i in chunk {
                        let ticket = &batch[i].ticket;
                        let mut inv = self.scripts.register.prepare_invoke();
                        inv.key(self.shard_key(shard, &["token", &ticket.token_hash.to_hex()]))
                            .key(self.shard_key(shard, &["ticket", ticket.id.as_str()]))
                            .key(self.shard_key(shard, &["tickets"]))
                            .arg(ticket.id.as_str())
                            .arg(encode(ticket))
                            .arg(&ticket_prefix)
                            .arg("0")
                            .arg("cluster");
                        pipe.invoke_script(&inv);
                    }
                    match query_scripts::<Vec<Vec<String>>>(&mut con, &self.scripts.register, &pipe)
                        .await
                    {
                        Ok(got) => answers.extend(chunk.iter().copied().zip(got)),
                        Err(e) => return (answers, Some(e)),
                    }
                }
                (answers, None)
            }
        });
        let answered = futures::future::join_all(steps).await;
        let mut answers: Vec<Option<Vec<String>>> = vec![None; batch.len()];
        let mut failed = None;
        for (items, error) in answered {
            for (i, answer) in items {
                answers[i] = Some(answer);
            }
            if error.is_some() {
                failed = error;
            }
        }
        // take back the counts of the tickets a step certainly did not create (their token was
        // registered before). One without an answer (a chunk that failed, or whose answer was lost
        // while Redis ran it) stays counted: a count too high only keeps a show from deletion, one too
        // low would let a show with tickets go. A retry answers it `existing` and takes its own count back.
        let existing = |i: usize| {
            answers[i]
                .as_ref()
                .is_some_and(|a| a.first().map(String::as_str) == Some("existing"))
        };
        let undo = counts(-1, &existing);
        if undo.cmd_iter().next().is_some() {
            let _: () = undo.query_async(&mut con).await.map_err(|e| self.fail(e))?;
        }
        if let Some(e) = failed {
            return Err(self.fail(e));
        }
        batch
            .iter()
            .zip(answers)
            .map(|(NewTicket { ticket }, answer)| {
                register_outcome(ticket, &answer.unwrap_or_default())
            })
            .collect()
    }

    /// The next seats keys of this node's retention pass, where the pass stands after them and whether
    /// they end it. One Redis: one `SCAN` step over the keys. A Redis Cluster: the ticket sets of the
    /// shards in turn (`SSCAN`; a cluster has no SCAN over every master), until a batch's worth or the
    /// last shard; the keys of one batch are all of one shard, so one pipeline reads them.
    async fn retention_batch(&self) -> Result<(Vec<String>, (u16, u64), bool), StoreError> {
        let (mut shard, mut cursor) = *self
            .retention_cursor
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut con = self.con()?;
        if !self.cluster {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{}seats:*", glob_escape(&self.prefix)))
                .arg("COUNT")
                .arg(RETENTION_SCAN_COUNT)
                .query_async(&mut con)
                .await
                .map_err(|e| self.fail(e))?;
            // `seats:{id}:ended` lists match too; ticket ids hold no colon
            let keys = keys
                .into_iter()
                .filter(|k| !k.ends_with(":ended"))
                .collect();
            return Ok((keys, (0, next), next == 0));
        }
        loop {
            let name = shard_name(shard);
            let (next, ids): (u64, Vec<String>) = redis::cmd("SSCAN")
                .arg(self.shard_key(&name, &["tickets"]))
                .arg(cursor)
                .arg("COUNT")
                .arg(RETENTION_SCAN_COUNT)
                .query_async(&mut con)
                .await
                .map_err(|e| self.fail(e))?;
            let (after, done) = match (next, shard + 1 == SHARDS) {
                (0, true) => ((0, 0), true),
                (0, false) => ((shard + 1, 0), false),
                (next, _) => ((shard, next), false),
            };
            if !ids.is_empty() || done {
                let keys = ids
                    .iter()
                    .map(|id| self.shard_key(&name, &["seats", id]))
                    .collect();
                return Ok((keys, after, done));
            }
            (shard, cursor) = after;
        }
    }

    /// Runs `step` on every shard at once (a Redis Cluster: every slot's master in parallel), answers in
    /// shard order.
    async fn each_shard<T, F, Fut>(&self, con: &Con, step: F) -> Result<Vec<T>, StoreError>
    where
        F: Fn(String, Con) -> Fut,
        Fut: std::future::Future<Output = Result<T, RedisError>>,
    {
        use futures::{StreamExt as _, TryStreamExt as _};
        futures::stream::iter((0..SHARDS).map(|n| step(shard_name(n), con.clone())))
            .buffered(SHARD_CONCURRENCY)
            .try_collect()
            .await
            .map_err(|e| self.fail(e))
    }

    /// The ids of the sessions whose lease on `show` runs at `now`: its live set, or on a Redis Cluster
    /// the live sets of every shard.
    async fn live_sessions_of(
        &self,
        show: &ShowId,
        now: UnixMs,
    ) -> Result<Vec<String>, StoreError> {
        let range = |key: String, mut con: Con| async move {
            con.zrangebyscore::<_, _, _, Vec<String>>(key, format!("({}", now.0), "+inf")
                .await
        };
        if !self.cluster {
            return range(self.key(&["live", show.as_str()]), self.con()?)
                .await
                .map_err(|e| self.fail(e));
        }
        let shards = self
            .each_shard(&self.con()?, |shard, con| {
                range(self.shard_key(&shard, &["live", show.as_str()]), con)
            })
            .await?;
        Ok(shards.into_iter().flatten().collect())
    }

    /// The live sessions of each of `shows` summed over the shards of a Redis Cluster, counted from
    /// Redis's clock.
    async fn live_counts_sharded(&self, shows: &[String]) -> Result<Vec<u64>, StoreError> {
        if shows.is_empty() {
            return Ok(Vec::new());
        }
        let per_shard = self
            .each_shard(&self.con()?, |shard, mut con| {
                let mut inv = self.scripts.live_counts_shard.prepare_invoke();
                inv.key(self.shard_key(&shard, &["live", ""]))
                    .arg(self.shard_prefix(&shard));
                for show in shows {
                    inv.arg(show);
                }
                async move { inv.invoke_async::<Vec<u64>>(&mut con).await }
            })
            .await?;
        let mut sums = vec![0u64; shows.len()];
        for counts in per_shard {
            for (sum, n) in sums.iter_mut().zip(counts) {
                *sum += n;
            }
        }
        Ok(sums)
    }

    /// On a Redis Cluster: the sessions live on `show`, as the door counts them: the sum over the shards,
    /// read at most every [`LIVE_COUNT_AGE`] by one asker of this node per show (the others wait for it).
    /// A seat taken while the sum is read may be missing from it; its admit's pass still counts for
    /// [`PASS_AFTER_ADMIT_MS`] ([`RedisStore::pass_used`]), so a sum is used only until
    /// [`LIVE_COUNT_USABLE`] after its read began, and a read slower than that fails the ask (503, the
    /// viewer asks again) rather than let the door count too few. So the door never lets in more than
    /// its capacity while the nodes' clocks, which time the passes, differ by less than the margin
    /// between the two (docs/redis.md).
    async fn live_count(&self, show: &ShowId) -> Result<u64, StoreError> {
        let fresh = |store: &Self| {
            store
                .live_counts
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .get(show)
                .filter(|(at, _)| at.elapsed() < LIVE_COUNT_AGE)
                .map(|(_, n)| *n)
        };
        if let Some(n) = fresh(self) {
            return Ok(n);
        }
        let lock = Arc::clone(
            self.live_count_read
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .entry(show.clone())
                .or_default(),
        );
        let _one_read = lock.lock().await;
        if let Some(n) = fresh(self) {
            return Ok(n);
        }
        let read_at = Instant::now();
        let n = self
            .live_counts_sharded(&[show.to_string()])
            .await?
            .first()
            .copied()
            .unwrap_or(0);
        if read_at.elapsed() >= LIVE_COUNT_USABLE {
            return Err(StoreError::Unavailable(format!(
                "the door's count of the seats took {:?}, too long to be trusted",
                read_at.elapsed()
            )));
        }
        self.live_counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(show.clone(), (read_at, n));
        Ok(n)
    }

    /// The key of `show`'s door passes for an admit's step to use a pass of (one Redis), or `""` for a
    /// show whose door counts none as this node knows it (no capacity: one command fewer per admit). A
    /// pass not used up (a rate-only door's, or one left by a capacity taken away just before) lapses by
    /// itself.
    fn passes_key(&self, show: &ShowId) -> String {
        if self.config.door_counts_passes(show) {
            self.key(&["door", show.as_str(), "passes"])
        } else {
            String::new()
        }
    }

    /// On a Redis Cluster, after an admit took a seat on `show`: the ticket's pass through the show's
    /// door (if it holds one) lapses [`PASS_AFTER_ADMIT_MS`] from now, which one Redis does at once in
    /// the admit's own step. Sent apart (the admit does not wait for it), and only for a show with a
    /// capacity as this node knows it; a pass not shortened lapses by itself, and until then counts.
    fn pass_used(&self, show: &ShowId, ticket: &TicketId) {
        if !self.config.door_counts_passes(show) {
            return;
        }
        let Ok(mut con) = self.con() else { return };
        let mut shorten = redis::cmd("ZADD");
        shorten
            .arg(self.key(&["door", show.as_str(), "passes"]))
            .arg("XX")
            .arg(self.now().0 + PASS_AFTER_ADMIT_MS)
            .arg(ticket.as_str());
        let show = show.clone();
        tokio::spawn(async move {
            if let Err(e) = shorten.query_async::<i64>(&mut con).await {
                tracing::warn!(error = %e, show = %show, "a used door pass was not shortened; it lapses by itself");
            }
        });
    }

    /// The connection to use; with Sentinel, unavailable while the last one failed and discovery has
    /// not connected to the master Sentinel names yet ([`Link::stale`]).
    fn con(&self) -> Result<Con, StoreError> {
        self.usable()?;
        Ok(self
            .link
            .con
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone())
    }

    /// Fails fast while Sentinel discovery has not replaced a failed connection ([`Link::stale`]).
    fn usable(&self) -> Result<(), StoreError> {
        if self.discovery.is_some() && self.link.stale.load(Ordering::Acquire) {
            // discovery may have stopped waiting (a failure it has not seen): wake it again
            self.link.lost.notify_one();
            return Err(StoreError::Unavailable(
                "following Sentinel to the master: the connection failed".into(),
            ));
        }
        Ok(())
    }

    /// The connection for a write that waits for replicas ([`Self::replicate`]): the write and its
    /// `WAIT` must go over it, since `WAIT` counts only the writes of its own connection. With
    /// `wait_replicas` it is not the connection of heartbeats, admits and reads: Redis serves one
    /// connection's commands in order, and a `WAIT` blocks its connection until the replicas answer (up to
    /// `wait_timeout` while one lags), which on a shared connection would hold up every request queued
    /// behind it. Writes that wait share this one, and each `WAIT` covers the writes sent before it.
    fn durable(&self) -> Result<Con, StoreError> {
        self.usable()?;
        Ok(self
            .link
            .durable
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone())
    }

    /// Registers `batch` over `con` without waiting for replicas: [`Store::register_tickets`]'s writes.
    /// Also answers the shards written (on a Redis Cluster; none on one Redis), for
    /// [`Self::replicate_shards`], and whether `audit` was appended: by the registration's own step
    /// when it created its ticket, for a batch of one on one Redis (where the audit log shares its
    /// server); never otherwise.
    async fn register_on(
        &self,
        con: &mut Con,
        batch: Vec<NewTicket>,
        audit: Option<&AuditEntry>,
    ) -> Result<(Vec<RegisterOutcome>, Vec<String>, bool), StoreError> {
        if self.cluster {
            let shards: std::collections::BTreeSet<String> = batch
                .iter()
                .map(|t| t.ticket.id.shard().to_owned())
                .collect();
            let out = self.register_sharded(con, batch).await?;
            return Ok((out, shards.into_iter().collect(), false));
        }
        let audit = audit.filter(|_| batch.len() == 1).map(encode);
        let mut out = Vec::with_capacity(batch.len());
        let ticket_prefix = self.key(&["ticket", ""]);
        for chunk in batch.chunks(1000) {
            let mut pipe = redis::pipe();
            for NewTicket { ticket } in chunk {
                let mut inv = self.scripts.register.prepare_invoke();
                inv.key(self.key(&["token", &ticket.token_hash.to_hex()]))
                    .key(self.key(&["ticket", ticket.id.as_str()]))
                    .key(self.key(&["show_tickets", ticket.terms.show_id.as_str()]))
                    .key(self.key(&["extref", ticket.terms.external_ref.as_deref().unwrap_or("")]))
                    .arg(ticket.id.as_str())
                    .arg(encode(ticket))
                    .arg(&ticket_prefix)
                    .arg(if ticket.terms.external_ref.is_some() {
                        "1"
                    } else {
                        "0"
                    });
                if let Some(entry) = &audit {
                    inv.key(self.key(&["audit"]))
                        .arg("")
                        .arg(entry)
                        .arg(AUDIT_KEPT - 1);
                }
                pipe.invoke_script(&inv);
            }
            let answers: Vec<Vec<String>> = query_scripts(con, &self.scripts.register, &pipe)
                .await
                .map_err(|e| self.fail(e))?;
            for (NewTicket { ticket }, answer) in chunk.iter().zip(answers) {
                out.push(register_outcome(ticket, &answer)?);
            }
        }
        let audited = audit.is_some() && RegisterOutcome::any_created(&out);
        Ok((out, Vec::new(), audited))
    }

    /// Appends `entry` to the audit log over `con`, without waiting for replicas.
    async fn append_audit_on(&self, con: &mut Con, entry: &AuditEntry) -> Result<(), StoreError> {
        let k = self.key(&["audit"]);
        redis::pipe()
            .atomic()
            .lpush(&k, encode(entry))
            .ignore()
            .ltrim(&k, 0, AUDIT_KEPT - 1)
            .ignore()
            .query_async(con)
            .await
            .map_err(|e| self.fail(e))
    }

    /// Waits for the configured number of replicas to acknowledge the writes so far of a step that
    /// wrote only the `{config}` slot's keys (on one Redis: every key) over `con`, a connection from
    /// [`Self::durable`]. See [`Self::replicate_shards`].
    async fn replicate(&self, con: &mut Con) -> Result<(), StoreError> {
        self.replicate_shards(con, std::iter::empty()).await
    }

    /// Waits for the configured number of replicas to acknowledge the writes so far over `con` (from
    /// [`Self::durable`]). `WAIT` counts the writes its own connection made to the server it is sent to.
    /// On one Redis that is every write sent over `con`. On a Redis Cluster it is sent to the masters of
    /// the slots the step wrote, `shards`' and the `{config}` slot, each over `con`'s connection to it
    /// (which carried this node's waiting writes there), and the fewest replicas any of them counted is
    /// the answer: a master the step did not write, whose replica may be down, is not asked.
    async fn replicate_shards<'a>(
        &self,
        con: &mut Con,
        shards: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), StoreError> {
        if self.wait_replicas == 0 {
            return Ok(());
        }
        let wait = redis::cmd("WAIT")
            .arg(self.wait_replicas)
            .arg(self.wait_timeout.as_millis() as u64)
            .to_owned();
        let acked: i64 = match con {
            Con::Cluster(c) => {
                let slots: std::collections::BTreeSet<u16> = shards
                    .into_iter()
                    .chain([CONFIG_TAG_NAME])
                    .map(cluster_slot)
                    .collect();
                let answers = futures::future::try_join_all(slots.into_iter().map(|slot| {
                    let (mut c, wait) = (c.clone(), wait.clone());
                    let to = redis::cluster_routing::RoutingInfo::SingleNode(
                        redis::cluster_routing::SingleNodeRoutingInfo::SpecificNode(
                            redis::cluster_routing::Route::new(
                                slot,
                                redis::cluster_routing::SlotAddr::Master,
                            ),
                        ),
                    );
                    async move { c.route_command(wait, to).await }
                }))
                .await
                .map_err(|e| self.fail(e))?;
                answers
                    .iter()
                    .map(|v| {
                        as_i64(v).ok_or_else(|| StoreError::Corrupt(format!("WAIT answered {v:?}")))
                    })
                    .try_fold(i64::MAX, |low, n| n.map(|n| low.min(n)))?
            }
            con => wait.query_async(con).await.map_err(|e| self.fail(e))?,
        };
        if acked < i64::from(self.wait_replicas) {
            return Err(StoreError::Unavailable(format!(
                "only {acked} of {} replicas acknowledged the write",
                self.wait_replicas
            )));
        }
        Ok(())
    }

    /// Writes `value` at `{kind}:{id}`, adds `id` to the set `{set}` (shows, CDNs) and, when given, sets
    /// `health` = (key, record) unless it exists, moving the configuration generation in the same atomic
    /// step.
    async fn put_config<T: Serialize>(
        &self,
        kind: &str,
        set: &str,
        id: &str,
        value: &T,
        health: Option<(String, String)>,
    ) -> Result<PutOutcome, StoreError> {
        let mut con = self.durable()?;
        let mut invocation = self.scripts.put_config.prepare_invoke();
        invocation
            .key(self.key(&[kind, id]))
            .key(self.key(&[set]))
            .key(self.key(&[CONFIG_GEN]))
            .arg(encode(value))
            .arg(id);
        if let Some((key, record)) = health {
            invocation.key(key).arg(record);
        }
        let asked = Instant::now();
        let answer: Vec<RedisValue> = invocation
            .invoke_async(&mut con)
            .await
            .map_err(|e| self.fail(e))?;
        let (Some(replaced), Some(generation)) = (
            answer.first().and_then(as_i64),
            answer.get(1).and_then(as_i64),
        ) else {
            return Err(StoreError::Corrupt(format!(
                "put {kind} answered {answer:?}"
            )));
        };
        self.config.observe(generation, asked);
        self.replicate(&mut con).await?;
        Ok(if replaced == 1 {
            PutOutcome::Replaced
        } else {
            PutOutcome::Created
        })
    }

    /// Every record of the set `{set}`, by id.
    async fn members<T: DeserializeOwned>(
        &self,
        kind: &str,
        set: &str,
    ) -> Result<Vec<T>, StoreError> {
        let mut con = self.con()?;
        let mut ids: Vec<String> = con
            .smembers(self.key(&[set]))
            .await
            .map_err(|e| self.fail(e))?;
        ids.sort();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = ids.iter().map(|id| self.key(&[kind, id])).collect();
        let raw: Vec<Option<String>> = con.mget(keys).await.map_err(|e| self.fail(e))?;
        raw.into_iter()
            .flatten()
            .map(|s| decode(kind, &s))
            .collect()
    }

    async fn get_json<T: DeserializeOwned>(
        &self,
        what: &str,
        key: String,
    ) -> Result<Option<T>, StoreError> {
        let raw: Option<String> = self.con()?.get(key).await.map_err(|e| self.fail(e))?;
        raw.map(|s| decode(what, &s)).transpose()
    }

    async fn seats(&self, ticket: &TicketId) -> Result<Option<Seats>, StoreError> {
        let raw: Option<String> = self
            .scripts
            .seats_read
            .key(self.shard_key(ticket.shard(), &["seats", ticket.as_str()]))
            .invoke_async(&mut self.con()?)
            .await
            .map_err(|e| self.fail(e))?;
        raw.map(|s| decode("seats", &s)).transpose()
    }

    /// The schema this database is stamped with, and after `upgrade` the one it is stamped with now:
    /// 1 or 2 moves to [`REDIS_SCHEMA`]. Upgrade only once no node of an older build uses this database:
    /// those of 0.2 or before read the seats as JSON strings only, and those that write schema 2 would
    /// drop the usage that schema 3's admits keep in `j:` fields.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when Redis does not answer; [`StoreError::Incompatible`] when the stamp
    /// is not a version this build knows.
    pub async fn upgrade_schema(&self, upgrade: bool) -> Result<(u32, u32), StoreError> {
        let key = self.key(&["schema"]);
        let mut con = self.durable()?;
        let found: Option<String> = con.get(&key).await.map_err(|e| self.fail(e))?;
        let found = check_stamp(&key, found.as_deref().unwrap_or("1"))?;
        if !upgrade || found == REDIS_SCHEMA {
            self.stamp_shards(&con, found, true).await?;
            return Ok((found, found));
        }
        let _: () = con
            .set(&key, REDIS_SCHEMA)
            .await
            .map_err(|e| self.fail(e))?;
        self.stamp_shards(&con, REDIS_SCHEMA, false).await?;
        // every shard's stamp was written (on one Redis there are none: the schema key alone)
        let every: Vec<String> = if self.cluster {
            (0..SHARDS).map(shard_name).collect()
        } else {
            Vec::new()
        };
        self.replicate_shards(&mut con, every.iter().map(String::as_str))
            .await?;
        Ok((found, REDIS_SCHEMA))
    }

    /// The CDN pool (health included) as stored, and the generation it was read at; `None` when the
    /// caller's copy, read at `known`, is still current.
    async fn load_pool(&self, known: Option<i64>) -> Result<Option<Vec<Cdn>>, StoreError> {
        let asked = Instant::now();
        let answer: Vec<RedisValue> = self
            .scripts
            .pool
            .key(self.key(&[CONFIG_GEN]))
            .key(self.key(&["cdns"]))
            .arg(&self.prefix)
            .arg(known.map_or_else(String::new, |g| g.to_string()))
            .invoke_async(&mut self.con()?)
            .await
            .map_err(|e| self.fail(e))?;
        let bad = || StoreError::Corrupt(format!("pool answered {answer:?}"));
        let generation = answer.first().and_then(as_i64).ok_or_else(bad)?;
        self.config.observe(generation, asked);
        match answer.get(1).and_then(as_string).as_deref() {
            Some("current") => return Ok(None),
            Some("pool") => {}
            _ => return Err(bad()),
        }
        let mut cdns = Vec::with_capacity(answer.len() / 2);
        for pair in answer[2..].chunks(2) {
            let [cdn, health] = pair else {
                return Err(bad());
            };
            let mut cdn: Cdn = decode_bulk("cdn", cdn)?.ok_or_else(bad)?;
            if let Some(h) = decode_bulk("cdn health", health)? {
                cdn.health = h;
            }
            cdns.push(cdn);
        }
        cdns.sort_by(|a, b| a.id.cmp(&b.id));
        self.config.keep_pool(generation, &cdns);
        Ok(Some(cdns))
    }

    async fn ticket_of_session(&self, session: &SessionId) -> Result<Option<TicketId>, StoreError> {
        let raw: Option<String> = self
            .con()?
            .get(self.shard_key(session.shard(), &["session", session.as_str()]))
            .await
            .map_err(|e| self.fail(e))?;
        raw.map(|s| {
            TicketId::parse(&s).map_err(|e| StoreError::Corrupt(format!("session index: {e}")))
        })
        .transpose()
    }
}

#[async_trait]
impl Store for RedisStore {
    fn now(&self) -> UnixMs {
        self.clock.now()
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let mut con = self.con()?;
        let _: String = redis::cmd("PING")
            .query_async(&mut con)
            .await
            .map_err(|e| self.fail(e))?;
        Ok(())
    }

    async fn put_show(&self, show: Show) -> Result<PutOutcome, StoreError> {
        self.put_config("show", "shows", show.id.as_str(), &show, None)
            .await
    }

    async fn show(&self, id: &ShowId) -> Result<Option<Show>, StoreError> {
        let cached = match self.config.show(id) {
            Lookup::Hit(show) => return Ok(Some(show)),
            Lookup::Check(cached) => cached,
        };
        let asked = Instant::now();
        let answer: Vec<RedisValue> = self
            .scripts
            .show
            .key(self.key(&[CONFIG_GEN]))
            .key(self.key(&["show", id.as_str()]))
            .arg(
                cached
                    .as_ref()
                    .map_or_else(String::new, |c| c.generation.to_string()),
            )
            .invoke_async(&mut self.con()?)
            .await
            .map_err(|e| self.fail(e))?;
        let bad = || StoreError::Corrupt(format!("show answered {answer:?}"));
        let generation = answer.first().and_then(as_i64).ok_or_else(bad)?;
        self.config.observe(generation, asked);
        let Some(raw) = answer.get(1) else {
            // the copy is current
            return cached.map(|c| Some(c.value)).ok_or_else(bad);
        };
        match decode_bulk::<Show>("show", raw)? {
            Some(show) => {
                self.config.keep_show(generation, &show);
                Ok(Some(show))
            }
            None => {
                self.config.forget_show(generation, id);
                Ok(None)
            }
        }
    }

    async fn shows(&self) -> Result<Vec<Show>, StoreError> {
        self.members("show", "shows").await
    }

    async fn delete_show(&self, id: &ShowId) -> Result<DeleteShowOutcome, StoreError> {
        let mut con = self.durable()?;
        let asked = Instant::now();
        let answer: Vec<RedisValue> = self
            .scripts
            .delete_show
            .key(self.key(&["show", id.as_str()]))
            .key(self.key(&["shows"]))
            .key(self.key(&["show_tickets", id.as_str()]))
            .key(self.key(&[CONFIG_GEN]))
            .arg(id.as_str())
            .invoke_async(&mut con)
            .await
            .map_err(|e| self.fail(e))?;
        let answer: Vec<i64> = answer.iter().filter_map(as_i64).collect();
        Ok(match answer[..] {
            [-1] => DeleteShowOutcome::Missing,
            [0, generation] => {
                self.config.observe(generation, asked);
                self.replicate(&mut con).await?;
                DeleteShowOutcome::Deleted
            }
            [n] if n > 0 => DeleteShowOutcome::HasTickets(n as u64),
            _ => {
                return Err(StoreError::Corrupt(format!(
                    "delete show answered {answer:?}"
                )));
            }
        })
    }

    async fn register_tickets(
        &self,
        batch: Vec<NewTicket>,
    ) -> Result<Vec<RegisterOutcome>, StoreError> {
        let mut con = self.durable()?;
        let (out, shards, _) = self.register_on(&mut con, batch, None).await?;
        self.replicate_shards(&mut con, shards.iter().map(String::as_str))
            .await?;
        Ok(out)
    }

    async fn register_tickets_audited(
        &self,
        batch: Vec<NewTicket>,
        audit: AuditEntry,
    ) -> Result<Vec<RegisterOutcome>, StoreError> {
        // one ticket on one Redis: its step appends the entry too; otherwise the entry follows over the
        // same connection. Then one WAIT for both
        let mut con = self.durable()?;
        let (out, shards, audited) = self.register_on(&mut con, batch, Some(&audit)).await?;
        if !audited && RegisterOutcome::any_created(&out) {
            self.append_audit_on(&mut con, &audit).await?;
        }
        self.replicate_shards(&mut con, shards.iter().map(String::as_str))
            .await?;
        Ok(out)
    }

    async fn ticket(&self, id: &TicketId) -> Result<Option<Ticket>, StoreError> {
        let t: Option<Ticket> = self
            .get_json(
                "ticket",
                self.shard_key(id.shard(), &["ticket", id.as_str()]),
            )
            .await?;
        if let Some(t) = &t {
            self.bounds.keep(&t.id, t.bounds());
        }
        Ok(t)
    }

    async fn ticket_by_token(&self, hash: &SecretHash) -> Result<Option<Ticket>, StoreError> {
        // plain reads, no script (a script's own cost is most of a lookup's in redis-server): the
        // generation read with them tells the admit that follows whether this node's copy of the show is
        // current. A token this node looked up before: one round trip, by the ticket it led to (checked
        // below: the ticket holds its token's hash). Else two: the token's ticket id, then the ticket.
        let asked = Instant::now();
        let shard = hash.shard();
        let generation_key = self.step_generation_key(&shard);
        let ticket_key = |id: &str| self.shard_key(&shard, &["ticket", id]);
        let mut con = self.con()?;
        let generation = |g: Option<String>| match g {
            None => Ok(0),
            Some(g) => g
                .parse::<i64>()
                .map_err(|_| StoreError::Corrupt(format!("a configuration generation {g:?}"))),
        };
        let found = |raw: Option<String>| -> Result<Option<Ticket>, StoreError> {
            let t: Option<Ticket> = raw.map(|s| decode("ticket", &s)).transpose()?;
            Ok(t.filter(|t| t.token_hash.ct_eq(hash)))
        };
        if let Some(id) = self.token_owners.get(hash) {
            // one MGET (the generation is the shard's on a Redis Cluster: the same slot)
            let (g, raw): (Option<String>, Option<String>) = redis::cmd("MGET")
                .arg(&generation_key)
                .arg(ticket_key(id.as_str()))
                .query_async(&mut con)
                .await
                .map_err(|e| self.fail(e))?;
            self.observe_step(generation(g)?, asked);
            if let Some(t) = found(raw)? {
                self.bounds.keep(&t.id, t.bounds());
                return Ok(Some(t));
            }
            // not that ticket's token (a database restored from another): looked up afresh
        }
        let (g, id): (Option<String>, Option<String>) = redis::cmd("MGET")
            .arg(&generation_key)
            .arg(self.shard_key(&shard, &["token", &hash.to_hex()]))
            .query_async(&mut con)
            .await
            .map_err(|e| self.fail(e))?;
        self.observe_step(generation(g)?, asked);
        let Some(id) = id else {
            return Ok(None);
        };
        let raw: Option<String> = con.get(ticket_key(&id)).await.map_err(|e| self.fail(e))?;
        let t = found(raw)?;
        if let Some(t) = &t {
            self.bounds.keep(&t.id, t.bounds());
            self.token_owners.keep(hash, t.id.clone());
        }
        Ok(t)
    }

    async fn revoke_ticket(&self, id: &TicketId) -> Result<Option<Ticket>, StoreError> {
        let mut con = self.durable()?;
        let Some(mut ticket) = self.ticket(id).await? else {
            return Ok(None);
        };
        let now = self.now();
        if ticket.status != TicketStatus::Revoked {
            ticket.status = TicketStatus::Revoked;
            ticket.revoked_at = Some(now.to_datetime());
        }
        let stored: Result<Option<String>, RedisError> = self
            .scripts
            .revoke
            .key(self.shard_key(id.shard(), &["ticket", id.as_str()]))
            .key(self.shard_key(id.shard(), &["seats", id.as_str()]))
            .arg(encode(&ticket))
            .arg(self.shard_prefix(id.shard()))
            .invoke_async(&mut con)
            .await;
        // written, or perhaps written with its answer lost
        self.wrote_seats(id);
        let stored = stored.map_err(|e| self.fail(e))?;
        let Some(stored) = stored else {
            return Ok(None);
        };
        self.replicate_shards(&mut con, [id.shard()]).await?;
        decode("ticket", &stored).map(Some)
    }

    async fn ticket_activity(&self, id: &TicketId) -> Result<TicketActivity, StoreError> {
        let now = self.now();
        Ok(match self.seats(id).await? {
            Some(s) => TicketActivity {
                usage: s.leases.usage.clone(),
                live: s
                    .leases
                    .live(now)
                    .filter_map(|l| session_info(&s, id, &l.session_id, now))
                    .collect(),
            },
            None => TicketActivity {
                usage: Default::default(),
                live: Vec::new(),
            },
        })
    }

    async fn erase_personal_data(&self, id: &TicketId) -> Result<Erased, StoreError> {
        let mut con = self.durable()?;
        let answer: Result<Vec<u64>, StoreError> = self
            .scripts
            .erase
            .key(self.shard_key(id.shard(), &["seats", id.as_str()]))
            .arg(self.shard_prefix(id.shard()))
            .invoke_async(&mut con)
            .await
            .map_err(|e| self.fail(e));
        // written, or perhaps written with its answer lost
        self.wrote_seats(id);
        let answer = answer?;
        let [addresses, countries, devices, sessions, live_sessions] = answer[..] else {
            return Err(StoreError::Corrupt(format!("erase answered {answer:?}")));
        };
        self.replicate_shards(&mut con, [id.shard()]).await?;
        Ok(Erased {
            addresses,
            countries,
            devices,
            sessions,
            live_sessions,
        })
    }

    async fn claim_retention_pass(&self, rest: std::time::Duration) -> Result<bool, StoreError> {
        // one pass for every node: the first to ask within `rest` makes it
        let claimed: Option<String> = redis::cmd("SET")
            .arg(self.key(&["retention", "pass"]))
            .arg(1)
            .arg("NX")
            .arg("PX")
            .arg(u64::try_from(rest.as_millis()).unwrap_or(u64::MAX).max(1))
            .query_async(&mut self.con()?)
            .await
            .map_err(|e| self.fail(e))?;
        Ok(claimed.is_some())
    }

    async fn retain_usage(&self, rules: &Retention) -> Result<RetentionBatch, StoreError> {
        let (keys, next, done) = self.retention_batch().await?;
        let mut tickets = 0;
        if !keys.is_empty() {
            // either layout (`redis/seats.lua`), in one round trip
            let mut con = self.con()?;
            let mut pipe = redis::pipe();
            for key in &keys {
                pipe.invoke_script(&self.scripts.seats_read.key(key));
            }
            let docs: Vec<Option<String>> =
                query_scripts(&mut con, &self.scripts.seats_read, &pipe)
                    .await
                    .map_err(|e| self.fail(e))?;
            for (key, doc) in keys.iter().zip(docs) {
                let mut doc = doc;
                for _ in 0..RETENTION_TRIES {
                    let Some(raw) = doc.take() else { break };
                    let mut seats: Seats = decode("seats", &raw)?;
                    let usage = &mut seats.leases.usage;
                    if !usage.apply_retention(rules) {
                        break;
                    }
                    let lists = serde_json::json!({
                        "devices": usage.devices,
                        "countries": usage.countries,
                        "addresses": usage.addresses,
                    });
                    let written: i64 = self
                        .scripts
                        .retain
                        .key(key)
                        .arg(seats.v)
                        .arg(lists.to_string())
                        .invoke_async(&mut con)
                        .await
                        .map_err(|e| self.fail(e))?;
                    if written == 1 {
                        tickets += 1;
                    }
                    if written != 0 {
                        break;
                    }
                    // an admit or heartbeat came between: read the seats again
                    doc = self
                        .scripts
                        .seats_read
                        .key(key)
                        .invoke_async(&mut con)
                        .await
                        .map_err(|e| self.fail(e))?;
                }
            }
        }
        *self
            .retention_cursor
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = next;
        Ok(RetentionBatch { tickets, done })
    }

    async fn admit(&self, req: AdmitRequest) -> Result<AdmitDecision, StoreError> {
        // (the step itself is `admit_step`: every way out of it wrote, or may have written, the seats)
        let decision = self.admit_step(&req).await;
        self.wrote_seats(&req.ticket_id);
        decision
    }

    async fn heartbeat(
        &self,
        session: &SessionId,
        presented: Presented<'_>,
    ) -> Result<HeartbeatAnswer, StoreError> {
        let answer = self.heartbeat_step(session, presented).await;
        // whatever it answered, the step may have written (a lapsed lease revived, an end, the leases of
        // a revoked ticket ended, a renewal whose answer was lost); a session this node does not know is
        // left to Redis's invalidation (a heartbeat costs no extra round trip)
        if let Some(ticket) = self.owners.get(session) {
            self.wrote_seats(&ticket);
        }
        answer
    }

    async fn end_session(
        &self,
        session: &SessionId,
        reason: EndReason,
    ) -> Result<bool, StoreError> {
        let ended = self.end_session_step(session, reason).await;
        self.wrote_session_seats(session).await;
        ended
    }

    async fn leave(
        &self,
        session: &SessionId,
        secret: &SecretHash,
    ) -> Result<LeaveDecision, StoreError> {
        let left = self.leave_step(session, secret).await;
        // a wrong secret or a lease already gone wrote nothing (and a guess costs no extra round trip)
        if !matches!(
            left,
            Ok(LeaveDecision::WrongSecret | LeaveDecision::NotLive)
        ) {
            self.wrote_session_seats(session).await;
        }
        left
    }

    async fn live_session(&self, session: &SessionId) -> Result<Option<SessionInfo>, StoreError> {
        // a session never changes ticket: where this node knows it, one HMGET of the seats' three fields
        // answers, where the script first reads the session's index (an EVALSHA costs Redis several
        // times an HMGET, and the origin asks on every media request that misses its kept answers); on
        // one Redis, through the tracked connection, whose answers the node keeps until Redis says the
        // seats changed (`redis/tracked.rs`). Under Sentinel, nothing while the connection is stale
        // (kept answers included: they may be an old master's)
        self.usable()?;
        if let Some(ticket) = self.owners.get(session)
            && !self.document_seats.lately()
        {
            let sid = session.as_str();
            let key = self.shard_key(session.shard(), &["seats", ticket.as_str()]);
            let workers = self.link.workers();
            let checks = workers.as_ref().map(|w| &w.checks);
            if let Some(kept) = checks.and_then(|c| c.kept(&key, sid)) {
                self.owners.refresh(session);
                count_lease_check(LeaseCheck::Kept);
                return Ok(live_at(kept, self.now()));
            }
            let mut tracked = checks.and_then(|c| Some((c, c.read(&key)?)));
            let mut fields = match &mut tracked {
                Some((_, read)) => lease_hmget(&mut read.con, &key, sid).await,
                None => lease_hmget(&mut self.con()?, &key, sid).await,
            };
            if let (Err(e), Some((checks, read))) = (&fields, &tracked)
                && e.code().is_none()
            {
                // the tracked connection failed: forget what it kept, ask on the shared one
                checks.failed(read);
                tracked = None;
                fields = lease_hmget(&mut self.con()?, &key, sid).await;
            }
            match fields {
                Ok((show, fixed, moving)) => {
                    self.owners.refresh(session);
                    // a field that is no text is none, as the script's answer reads it
                    let text = |f: Option<Vec<u8>>| f.and_then(|b| String::from_utf8(b).ok());
                    let record = lease_record(ticket, text(show), text(fixed), text(moving))?;
                    count_lease_check(LeaseCheck::Read);
                    if let Some((checks, read)) = &tracked {
                        checks.keep(&key, read, sid, record.clone());
                    }
                    return Ok(live_at(record, self.now()));
                }
                // the seats are still one JSON document (schema 1): the script reads those
                Err(e) if e.code() == Some("WRONGTYPE") => self.document_seats.met(),
                Err(e) => return Err(self.fail(e)),
            }
        }
        count_lease_check(LeaseCheck::Script);
        let answer: Option<Vec<RedisValue>> = self
            .scripts
            .session_read
            .key(self.shard_key(session.shard(), &["session", session.as_str()]))
            .arg(self.shard_prefix(session.shard()))
            .arg(session.as_str())
            .invoke_async(&mut self.con()?)
            .await
            .map_err(|e| self.fail(e))?;
        let Some(answer) = answer else {
            return Ok(None);
        };
        let bad = || StoreError::Corrupt(format!("session read answered {answer:?}"));
        let ticket = answer
            .first()
            .and_then(as_string)
            .and_then(|s| TicketId::parse(&s).ok())
            .ok_or_else(bad)?;
        self.owners.keep(session, ticket.clone());
        let now = self.now();
        match answer.get(1).and_then(as_string).as_deref() {
            Some("doc") => {
                let seats: Option<Seats> = decode_bulk("seats", answer.get(2).ok_or_else(bad)?)?;
                Ok(seats.and_then(|s| session_info(&s, &ticket, session, now)))
            }
            Some("hash") => Ok(live_at(
                lease_record(
                    ticket,
                    answer.get(2).and_then(as_string),
                    answer.get(3).and_then(as_string),
                    answer.get(4).and_then(as_string),
                )?,
                now,
            )),
            _ => Err(bad()),
        }
    }

    async fn sessions(&self, show: Option<&ShowId>) -> Result<Vec<SessionInfo>, StoreError> {
        let shows: Vec<ShowId> = match show {
            Some(s) => vec![s.clone()],
            None => self.shows().await?.into_iter().map(|s| s.id).collect(),
        };
        let now = self.now();
        let mut out = Vec::new();
        for show in shows {
            let sids = self.live_sessions_of(&show, now).await?;
            let mut cache: std::collections::HashMap<TicketId, Option<Seats>> =
                std::collections::HashMap::new();
            for sid in sids {
                let Ok(sid) = SessionId::parse(&sid) else {
                    continue;
                };
                let Some(ticket) = self.ticket_of_session(&sid).await? else {
                    continue;
                };
                if !cache.contains_key(&ticket) {
                    let seats = self.seats(&ticket).await?;
                    cache.insert(ticket.clone(), seats);
                }
                if let Some(Some(seats)) = cache.get(&ticket)
                    && let Some(info) = session_info(seats, &ticket, &sid, now)
                {
                    out.push(info);
                }
            }
        }
        out.sort_by(|a, b| {
            a.created_at
                .cmp(&b.created_at)
                .then_with(|| a.session_id.cmp(&b.session_id))
        });
        Ok(out)
    }

    async fn put_api_key(&self, key: ApiKey) -> Result<(), StoreError> {
        let mut con = self.durable()?;
        let _: () = redis::pipe()
            .atomic()
            .set(self.key(&["apikey", key.id.as_str()]), encode(&key))
            .ignore()
            .sadd(self.key(&["apikeys"]), key.id.as_str())
            .ignore()
            .query_async(&mut con)
            .await
            .map_err(|e| self.fail(e))?;
        self.replicate(&mut con).await
    }

    async fn api_key(&self, id: &ApiKeyId) -> Result<Option<ApiKey>, StoreError> {
        let mut con = self.con()?;
        let (raw, used): (Option<String>, Option<i64>) = redis::pipe()
            .get(self.key(&["apikey", id.as_str()]))
            .get(self.key(&["apikey_used", id.as_str()]))
            .query_async(&mut con)
            .await
            .map_err(|e| self.fail(e))?;
        let Some(raw) = raw else { return Ok(None) };
        let mut key: ApiKey = decode("api key", &raw)?;
        if let Some(u) = used {
            key.last_used_at = Some(UnixMs(u));
        }
        Ok(Some(key))
    }

    async fn api_keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        let ids: Vec<String> = self
            .con()?
            .smembers(self.key(&["apikeys"]))
            .await
            .map_err(|e| self.fail(e))?;
        let mut out = Vec::new();
        for id in ids {
            if let Ok(id) = ApiKeyId::parse(&id)
                && let Some(k) = self.api_key(&id).await?
            {
                out.push(k);
            }
        }
        out.sort_by(|a, b| {
            a.created_at
                .cmp(&b.created_at)
                .then_with(|| a.id.cmp(&b.id))
        });
        Ok(out)
    }

    async fn delete_api_key(&self, id: &ApiKeyId) -> Result<bool, StoreError> {
        let mut con = self.durable()?;
        let (n, _, _): (i64, i64, i64) = redis::pipe()
            .atomic()
            .del(self.key(&["apikey", id.as_str()]))
            .srem(self.key(&["apikeys"]), id.as_str())
            .del(self.key(&["apikey_used", id.as_str()]))
            .query_async(&mut con)
            .await
            .map_err(|e| self.fail(e))?;
        self.replicate(&mut con).await?;
        Ok(n == 1)
    }

    async fn touch_api_key(&self, id: &ApiKeyId) -> Result<(), StoreError> {
        let _: () = self
            .con()?
            .set(self.key(&["apikey_used", id.as_str()]), self.now().0)
            .await
            .map_err(|e| self.fail(e))?;
        Ok(())
    }

    async fn put_cdn(&self, cdn: Cdn) -> Result<PutOutcome, StoreError> {
        // the health belongs to the prober (`set_cdn_health`): a new CDN starts with the one given
        let health = (
            self.key(&["cdn_health", cdn.id.as_str()]),
            encode(&cdn.health),
        );
        self.put_config("cdn", "cdns", cdn.id.as_str(), &cdn, Some(health))
            .await
    }

    async fn cdn(&self, id: &CdnId) -> Result<Option<Cdn>, StoreError> {
        let (cdn, health): (Option<String>, Option<String>) = redis::pipe()
            .get(self.key(&["cdn", id.as_str()]))
            .get(self.key(&["cdn_health", id.as_str()]))
            .query_async(&mut self.con()?)
            .await
            .map_err(|e| self.fail(e))?;
        let Some(cdn) = cdn else { return Ok(None) };
        let mut cdn: Cdn = decode("cdn", &cdn)?;
        if let Some(h) = health {
            cdn.health = decode("cdn health", &h)?;
        }
        Ok(Some(cdn))
    }

    async fn cdns(&self) -> Result<Vec<Cdn>, StoreError> {
        let cached = match self.config.pool() {
            Lookup::Hit(cdns) => return Ok(cdns),
            Lookup::Check(cached) => cached,
        };
        let known = cached.as_ref().map(|c| c.generation);
        match (self.load_pool(known).await?, cached) {
            (Some(cdns), _) => Ok(cdns),
            (None, Some(cached)) => Ok(cached.value),
            (None, None) => Err(StoreError::Corrupt(
                "pool answered current without a copy".into(),
            )),
        }
    }

    fn cdns_generation(&self) -> Option<u64> {
        // the generation covers the pool (and the shows); while this node trusts it, what a caller derived
        // from `cdns` at that generation is current
        self.config
            .trusted_now()
            .and_then(|g| u64::try_from(g).ok())
    }

    async fn set_cdn_health(&self, id: &CdnId, health: CdnHealth) -> Result<bool, StoreError> {
        let asked = Instant::now();
        let answer: RedisValue = self
            .scripts
            .set_cdn_health
            .key(self.key(&["cdn", id.as_str()]))
            .key(self.key(&["cdn_health", id.as_str()]))
            .key(self.key(&[CONFIG_GEN]))
            .arg(encode(&health))
            .invoke_async(&mut self.con()?)
            .await
            .map_err(|e| self.fail(e))?;
        if answer == RedisValue::Nil {
            return Ok(false);
        }
        let generation = as_i64(&answer)
            .ok_or_else(|| StoreError::Corrupt(format!("set CDN health answered {answer:?}")))?;
        self.config.observe(generation, asked);
        Ok(true)
    }

    async fn delete_cdn(&self, id: &CdnId) -> Result<bool, StoreError> {
        let mut con = self.durable()?;
        let asked = Instant::now();
        let answer: Vec<RedisValue> = self
            .scripts
            .delete_cdn
            .key(self.key(&["cdn", id.as_str()]))
            .key(self.key(&["cdn_health", id.as_str()]))
            .key(self.key(&["cdns"]))
            .key(self.key(&[CONFIG_GEN]))
            .arg(id.as_str())
            .invoke_async(&mut con)
            .await
            .map_err(|e| self.fail(e))?;
        let (Some(n), Some(generation)) = (
            answer.first().and_then(as_i64),
            answer.get(1).and_then(as_i64),
        ) else {
            return Err(StoreError::Corrupt(format!(
                "delete CDN answered {answer:?}"
            )));
        };
        self.config.observe(generation, asked);
        self.replicate(&mut con).await?;
        Ok(n == 1)
    }

    async fn tickets_by_external_ref(
        &self,
        external_ref: &str,
        limit: usize,
    ) -> Result<Vec<Ticket>, StoreError> {
        let mut con = self.con()?;
        let ids: Vec<String> = con
            .smembers(self.key(&["extref", external_ref]))
            .await
            .map_err(|e| self.fail(e))?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<TicketId> = ids
            .iter()
            .filter_map(|id| TicketId::parse(id).ok())
            .collect();
        let keys = ids
            .iter()
            .map(|id| self.shard_key(id.shard(), &["ticket", id.as_str()]));
        let raw: Vec<Option<String>> = if self.cluster {
            // the tickets are on the slots of their shards
            futures::future::try_join_all(keys.map(|key| {
                let mut con = con.clone();
                async move { con.get::<_, Option<String>>(key).await }
            }))
            .await
            .map_err(|e| self.fail(e))?
        } else {
            con.mget(keys.collect::<Vec<_>>())
                .await
                .map_err(|e| self.fail(e))?
        };
        let mut out: Vec<Ticket> = raw
            .into_iter()
            .flatten()
            .map(|s| decode("ticket", &s))
            .collect::<Result<_, _>>()?;
        out.sort_by(|a, b| {
            a.created_at
                .cmp(&b.created_at)
                .then_with(|| a.id.cmp(&b.id))
        });
        out.truncate(limit);
        Ok(out)
    }

    async fn poster(&self, show: &ShowId) -> Result<Option<(String, Vec<u8>)>, StoreError> {
        let raw: Option<Vec<u8>> = self
            .con()?
            .get(self.key(&["poster", show.as_str()]))
            .await
            .map_err(|e| self.fail(e))?;
        let Some(bytes) = raw else { return Ok(None) };
        let split = bytes
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| StoreError::Corrupt("poster without a content type".into()))?;
        let ctype = String::from_utf8(bytes[..split].to_vec())
            .map_err(|e| StoreError::Corrupt(format!("poster content type: {e}")))?;
        Ok(Some((ctype, bytes[split + 1..].to_vec())))
    }

    async fn put_poster(
        &self,
        show: &ShowId,
        poster: Option<(String, Vec<u8>)>,
    ) -> Result<(), StoreError> {
        let key = self.key(&["poster", show.as_str()]);
        let mut con = self.durable()?;
        match poster {
            Some((ctype, bytes)) => {
                let mut v = ctype.into_bytes();
                v.push(0);
                v.extend_from_slice(&bytes);
                let _: () = con.set(key, v).await.map_err(|e| self.fail(e))?;
            }
            None => {
                let _: () = con.del(key).await.map_err(|e| self.fail(e))?;
            }
        }
        self.replicate(&mut con).await
    }

    async fn stream_key(&self, show: &ShowId) -> Result<Option<StreamKeyRecord>, StoreError> {
        let raw: Option<String> = self
            .con()?
            .get(self.key(&["stream_key", show.as_str()]))
            .await
            .map_err(|e| self.fail(e))?;
        raw.map(|b| decode("stream key", &b)).transpose()
    }

    async fn put_stream_key(
        &self,
        show: &ShowId,
        record: Option<StreamKeyRecord>,
    ) -> Result<(), StoreError> {
        let key = self.key(&["stream_key", show.as_str()]);
        let mut con = self.durable()?;
        match record {
            Some(r) => {
                let _: () = con.set(key, encode(&r)).await.map_err(|e| self.fail(e))?;
            }
            None => {
                let _: () = con.del(key).await.map_err(|e| self.fail(e))?;
            }
        }
        self.replicate(&mut con).await
    }

    async fn put_content_key(
        &self,
        id: &ContentKeyId,
        record: ContentKeyRecord,
    ) -> Result<bool, StoreError> {
        let mut con = self.durable()?;
        let stored: bool = redis::cmd("SET")
            .arg(self.key(&["content_key", id.as_str()]))
            .arg(encode(&record))
            .arg("NX")
            .query_async::<Option<String>>(&mut con)
            .await
            .map_err(|e| self.fail(e))?
            .is_some();
        self.replicate(&mut con).await?;
        Ok(stored)
    }

    async fn content_key(&self, id: &ContentKeyId) -> Result<Option<ContentKeyRecord>, StoreError> {
        let raw: Option<String> = self
            .con()?
            .get(self.key(&["content_key", id.as_str()]))
            .await
            .map_err(|e| self.fail(e))?;
        raw.map(|b| decode("content key", &b)).transpose()
    }

    async fn create_admin_user(&self, user: AdminUser) -> Result<bool, StoreError> {
        let mut con = self.durable()?;
        let created: i64 = lua(
            "if redis.call('SET', KEYS[1], ARGV[1], 'NX') then redis.call('SADD', KEYS[2], ARGV[2]) return 1 end return 0",
        )
        .key(self.key(&["admin_user", user.name.as_str()]))
        .key(self.key(&["admin_users"]))
        .arg(encode(&user))
        .arg(user.name.as_str())
        .invoke_async(&mut con)
        .await
        .map_err(|e| self.fail(e))?;
        self.replicate(&mut con).await?;
        Ok(created == 1)
    }

    async fn change_admin_user(
        &self,
        name: &UserName,
        change: UserChange,
    ) -> Result<Option<AdminUser>, StoreError> {
        let mut con = self.durable()?;
        let (hash, must_change) = change
            .password
            .as_ref()
            .map_or(("", ""), |(h, m)| (h.as_str(), if *m { "1" } else { "0" }));
        let raw: Option<String> = self
            .scripts
            .change_admin_user
            .key(self.key(&["admin_user", name.as_str()]))
            .arg(change.role.map_or("", |r| r.as_str()))
            .arg(hash)
            .arg(must_change)
            .arg(change.at.0)
            .invoke_async(&mut con)
            .await
            .map_err(|e| self.fail(e))?;
        self.replicate(&mut con).await?;
        raw.map(|s| decode("admin user", &s)).transpose()
    }

    async fn admin_user(&self, name: &UserName) -> Result<Option<AdminUser>, StoreError> {
        self.get_json("admin user", self.key(&["admin_user", name.as_str()]))
            .await
    }

    async fn admin_users(&self) -> Result<Vec<AdminUser>, StoreError> {
        self.members("admin_user", "admin_users").await
    }

    async fn delete_admin_user(&self, name: &UserName) -> Result<bool, StoreError> {
        let mut con = self.durable()?;
        let n: i64 = lua(
            "local n = redis.call('DEL', KEYS[1]) redis.call('SREM', KEYS[2], ARGV[1]) \
             for _, h in ipairs(redis.call('SMEMBERS', KEYS[3])) do redis.call('DEL', ARGV[2] .. h) end \
             redis.call('DEL', KEYS[3]) return n",
        )
        .key(self.key(&["admin_user", name.as_str()]))
        .key(self.key(&["admin_users"]))
        .key(self.key(&["user_sessions", name.as_str()]))
        .arg(name.as_str())
        .arg(self.key(&["console", ""]))
        .invoke_async(&mut con)
        .await
        .map_err(|e| self.fail(e))?;
        self.replicate(&mut con).await?;
        Ok(n == 1)
    }

    async fn put_console_session(&self, session: ConsoleSession) -> Result<(), StoreError> {
        let ttl = (session.expires_at.0 - self.now().0).max(1);
        let hash = session.id.to_hex();
        let _: () = redis::pipe()
            .atomic()
            .cmd("SET")
            .arg(self.key(&["console", &hash]))
            .arg(encode(&session))
            .arg("PX")
            .arg(ttl)
            .ignore()
            .sadd(self.key(&["user_sessions", session.user.as_str()]), &hash)
            .ignore()
            .query_async(&mut self.con()?)
            .await
            .map_err(|e| self.fail(e))?;
        Ok(())
    }

    async fn console_session(&self, id: &SecretHash) -> Result<Option<ConsoleSession>, StoreError> {
        let now = self.now();
        let s: Option<ConsoleSession> = self
            .get_json("console session", self.key(&["console", &id.to_hex()]))
            .await?;
        Ok(s.filter(|s| s.expires_at > now && s.id.ct_eq(id)))
    }

    async fn touch_console_session(
        &self,
        id: &SecretHash,
        expires_at: UnixMs,
    ) -> Result<(), StoreError> {
        let Some(mut s) = self.console_session(id).await? else {
            return Ok(());
        };
        let now = self.now();
        s.last_seen = now;
        s.expires_at = expires_at;
        let _: () = redis::cmd("SET")
            .arg(self.key(&["console", &id.to_hex()]))
            .arg(encode(&s))
            .arg("PX")
            .arg((expires_at.0 - now.0).max(1))
            .arg("XX")
            .query_async(&mut self.con()?)
            .await
            .map_err(|e| self.fail(e))?;
        Ok(())
    }

    async fn delete_console_session(&self, id: &SecretHash) -> Result<bool, StoreError> {
        let n: i64 = self
            .con()?
            .del(self.key(&["console", &id.to_hex()]))
            .await
            .map_err(|e| self.fail(e))?;
        Ok(n == 1)
    }

    async fn end_console_sessions(
        &self,
        user: &UserName,
        keep: Option<&SecretHash>,
    ) -> Result<u64, StoreError> {
        let ended: i64 = self
            .scripts
            .end_console_sessions
            .key(self.key(&["user_sessions", user.as_str()]))
            .arg(self.key(&["console", ""]))
            .arg(keep.map(SecretHash::to_hex).unwrap_or_default())
            .invoke_async(&mut self.con()?)
            .await
            .map_err(|e| self.fail(e))?;
        Ok(u64::try_from(ended).unwrap_or(0))
    }

    async fn login_attempt(&self, key: &str, rule: &Backoff) -> Result<LoginGate, StoreError> {
        let (allowed, n): (i64, i64) = self
            .scripts
            .login_attempt
            .key(self.key(&["login_attempts", key]))
            .arg(rule.free)
            .arg(rule.initial_ms)
            .arg(rule.max_ms)
            .arg(rule.window_ms)
            .invoke_async(&mut self.con()?)
            .await
            .map_err(|e| self.fail(e))?;
        Ok(if allowed == 1 {
            LoginGate::Allowed {
                attempts: u32::try_from(n).unwrap_or(u32::MAX),
            }
        } else {
            LoginGate::Wait { retry_after_ms: n }
        })
    }

    async fn undo_login_attempt(&self, key: &str, rule: &Backoff) -> Result<(), StoreError> {
        let _: i64 = self
            .scripts
            .undo_login_attempt
            .key(self.key(&["login_attempts", key]))
            .arg(rule.free)
            .invoke_async(&mut self.con()?)
            .await
            .map_err(|e| self.fail(e))?;
        Ok(())
    }

    async fn clear_login_failures(&self, key: &str) -> Result<(), StoreError> {
        let _: () = self
            .con()?
            .del(self.key(&["login_attempts", key]))
            .await
            .map_err(|e| self.fail(e))?;
        Ok(())
    }

    async fn append_audit(&self, entry: AuditEntry) -> Result<(), StoreError> {
        let mut con = self.durable()?;
        self.append_audit_on(&mut con, &entry).await?;
        self.replicate(&mut con).await
    }

    async fn audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>, StoreError> {
        const PAGE: isize = 1000;
        const MAX_SCANNED: isize = AUDIT_SCAN_LIMIT as isize;
        let k = self.key(&["audit"]);
        let mut con = self.con()?;
        let mut out = Vec::new();
        let mut start = 0isize;
        while out.len() < filter.limit && start < MAX_SCANNED {
            let page: Vec<String> = con
                .lrange(&k, start, start + PAGE - 1)
                .await
                .map_err(|e| self.fail(e))?;
            if page.is_empty() {
                break;
            }
            for raw in &page {
                let e: AuditEntry = decode("audit entry", raw)?;
                if filter.since.is_some_and(|s| e.at < s) {
                    return Ok(out);
                }
                if filter.matches(&e) {
                    out.push(e);
                    if out.len() >= filter.limit {
                        break;
                    }
                }
            }
            start += PAGE;
        }
        Ok(out)
    }

    async fn prune_audit(&self, before: UnixMs, max_rows: u64) -> Result<u64, StoreError> {
        let dropped: i64 = self
            .scripts
            .prune_audit
            .key(self.key(&["audit"]))
            .arg(before.0)
            .arg(max_rows)
            .arg(100_000)
            .invoke_async(&mut self.con()?)
            .await
            .map_err(|e| self.fail(e))?;
        Ok(u64::try_from(dropped).unwrap_or(0))
    }

    async fn live_session_counts(&self) -> Result<Vec<(ShowId, u64)>, StoreError> {
        if self.cluster {
            let mut shows: Vec<String> = self
                .con()?
                .smembers(self.key(&["shows"]))
                .await
                .map_err(|e| self.fail(e))?;
            shows.sort();
            let counts = self.live_counts_sharded(&shows).await?;
            return shows
                .into_iter()
                .zip(counts)
                .filter(|(_, n)| *n > 0)
                .map(|(id, n)| {
                    ShowId::parse(&id)
                        .map(|id| (id, n))
                        .map_err(|e| StoreError::Corrupt(format!("live counts: {e}")))
                })
                .collect();
        }
        let answer: Vec<RedisValue> = self
            .scripts
            .live_counts
            .key(self.key(&["shows"]))
            .arg(&self.prefix)
            .invoke_async(&mut self.con()?)
            .await
            .map_err(|e| self.fail(e))?;
        answer
            .chunks(2)
            .map(|pair| match pair {
                [id, n] => {
                    let id = as_string(id)
                        .and_then(|s| ShowId::parse(&s).ok())
                        .ok_or_else(|| StoreError::Corrupt(format!("live counts: {id:?}")))?;
                    let n = as_i64(n)
                        .and_then(|n| u64::try_from(n).ok())
                        .ok_or_else(|| StoreError::Corrupt(format!("live counts: {n:?}")))?;
                    Ok((id, n))
                }
                _ => Err(StoreError::Corrupt("live counts: odd answer".into())),
            })
            .collect()
    }

    async fn add_outcome_counts(&self, counts: Vec<OutcomeCount>) -> Result<(), StoreError> {
        if counts.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for c in &counts {
            let k = self.key(&["outcomes", &c.minute.0.to_string()]);
            pipe.hincr(&k, &c.outcome, c.count).ignore();
            pipe.expire(&k, 2 * 3600 + 120).ignore();
        }
        let _: () = pipe
            .query_async(&mut self.con()?)
            .await
            .map_err(|e| self.fail(e))?;
        Ok(())
    }

    async fn outcome_counts(&self, since: UnixMs) -> Result<Vec<OutcomeCount>, StoreError> {
        let now = self.now();
        let first = usher_core::admin::minute_of(since)
            .0
            .max(now.0 - 2 * 3600 * 1000);
        let first = if first < since.0 {
            first + 60_000
        } else {
            first
        };
        let minutes: Vec<i64> = (0..)
            .map(|i| first + i * 60_000)
            .take_while(|m| *m <= now.0)
            .collect();
        if minutes.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for m in &minutes {
            pipe.hgetall(self.key(&["outcomes", &m.to_string()]));
        }
        let maps: Vec<std::collections::BTreeMap<String, u64>> = pipe
            .query_async(&mut self.con()?)
            .await
            .map_err(|e| self.fail(e))?;
        Ok(minutes
            .into_iter()
            .zip(maps)
            .flat_map(|(m, map)| {
                map.into_iter().map(move |(outcome, count)| OutcomeCount {
                    minute: UnixMs(m),
                    outcome,
                    count,
                })
            })
            .collect())
    }

    async fn flush(&self) -> Result<(), StoreError> {
        // Redis persists by itself (AOF/RDB); nothing is held back in this process.
        Ok(())
    }

    async fn put_webhook(&self, endpoint: WebhookEndpoint) -> Result<PutOutcome, StoreError> {
        let mut con = self.durable()?;
        let (old, _): (Option<String>, i64) = redis::pipe()
            .atomic()
            .cmd("SET")
            .arg(self.key(&["webhook", endpoint.id.as_str()]))
            .arg(encode(&endpoint))
            .arg("GET")
            .sadd(self.key(&["webhooks"]), endpoint.id.as_str())
            .query_async(&mut con)
            .await
            .map_err(|e| self.fail(e))?;
        self.replicate(&mut con).await?;
        Ok(if old.is_some() {
            PutOutcome::Replaced
        } else {
            PutOutcome::Created
        })
    }

    async fn webhook(&self, id: &WebhookId) -> Result<Option<WebhookEndpoint>, StoreError> {
        let raw: Option<String> = self
            .con()?
            .get(self.key(&["webhook", id.as_str()]))
            .await
            .map_err(|e| self.fail(e))?;
        raw.map(|v| decode("webhook", &v)).transpose()
    }

    async fn webhooks(&self) -> Result<Vec<WebhookEndpoint>, StoreError> {
        let mut ids: Vec<String> = self
            .con()?
            .smembers(self.key(&["webhooks"]))
            .await
            .map_err(|e| self.fail(e))?;
        ids.sort();
        let mut out = Vec::new();
        for id in ids {
            if let Ok(id) = WebhookId::parse(&id)
                && let Some(w) = self.webhook(&id).await?
            {
                out.push(w);
            }
        }
        Ok(out)
    }

    async fn delete_webhook(&self, id: &WebhookId) -> Result<bool, StoreError> {
        let mut con = self.durable()?;
        let (n, _): (i64, i64) = redis::pipe()
            .atomic()
            .del(self.key(&["webhook", id.as_str()]))
            .srem(self.key(&["webhooks"]), id.as_str())
            .query_async(&mut con)
            .await
            .map_err(|e| self.fail(e))?;
        self.replicate(&mut con).await?;
        Ok(n == 1)
    }

    async fn enqueue_deliveries(&self, deliveries: Vec<Delivery>) -> Result<(), StoreError> {
        let mut con = self.durable()?;
        if deliveries.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        pipe.atomic();
        for d in &deliveries {
            pipe.set(self.key(&["delivery", d.id.as_str()]), encode(d))
                .ignore();
            if d.state == DeliveryState::Pending {
                pipe.zadd(
                    self.key(&["deliveries", "due"]),
                    d.id.as_str(),
                    d.next_attempt_at.0,
                )
                .ignore();
            }
            let log = self.key(&["deliveries", "of", d.endpoint.as_str()]);
            pipe.lpush(&log, d.id.as_str()).ignore();
            pipe.ltrim(&log, 0, DELIVERIES_KEPT - 1).ignore();
        }
        let _: () = pipe.query_async(&mut con).await.map_err(|e| self.fail(e))?;
        self.replicate(&mut con).await
    }

    async fn claim_deliveries(
        &self,
        until: UnixMs,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        let mut con = self.durable()?;
        // one script: the due ids move to `until` (claimed), so racing nodes never get the same one
        let raw: Vec<String> = lua(
            "local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3]) \
             local out = {} \
             for _, id in ipairs(ids) do \
               local v = redis.call('GET', ARGV[4] .. id) \
               if v then redis.call('ZADD', KEYS[1], ARGV[2], id) table.insert(out, v) \
               else redis.call('ZREM', KEYS[1], id) end \
             end \
             return out",
        )
        .key(self.key(&["deliveries", "due"]))
        .arg(self.now().0)
        .arg(until.0)
        .arg(limit)
        .arg(self.key(&["delivery", ""]))
        .invoke_async(&mut con)
        .await
        .map_err(|e| self.fail(e))?;
        self.replicate(&mut con).await?;
        raw.iter()
            .map(|v| {
                let mut d: Delivery = decode("delivery", v)?;
                d.next_attempt_at = until;
                Ok(d)
            })
            .collect()
    }

    async fn save_delivery(&self, delivery: Delivery) -> Result<(), StoreError> {
        let mut con = self.durable()?;
        let key = self.key(&["delivery", delivery.id.as_str()]);
        let due = self.key(&["deliveries", "due"]);
        let mut pipe = redis::pipe();
        pipe.atomic();
        if delivery.state == DeliveryState::Pending {
            pipe.set(&key, encode(&delivery)).ignore();
            pipe.zadd(&due, delivery.id.as_str(), delivery.next_attempt_at.0)
                .ignore();
        } else {
            pipe.set_ex(&key, encode(&delivery), FINISHED_DELIVERY_TTL_S)
                .ignore();
            pipe.zrem(&due, delivery.id.as_str()).ignore();
        }
        let _: () = pipe.query_async(&mut con).await.map_err(|e| self.fail(e))?;
        self.replicate(&mut con).await
    }

    async fn delivery(&self, id: &DeliveryId) -> Result<Option<Delivery>, StoreError> {
        let raw: Option<String> = self
            .con()?
            .get(self.key(&["delivery", id.as_str()]))
            .await
            .map_err(|e| self.fail(e))?;
        raw.map(|v| decode("delivery", &v)).transpose()
    }

    async fn deliveries(
        &self,
        endpoint: &WebhookId,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        let ids: Vec<String> = self
            .con()?
            .lrange(
                self.key(&["deliveries", "of", endpoint.as_str()]),
                0,
                DELIVERIES_KEPT - 1,
            )
            .await
            .map_err(|e| self.fail(e))?;
        let mut out = Vec::new();
        for id in ids {
            if out.len() >= limit {
                break;
            }
            if let Ok(id) = DeliveryId::parse(&id)
                && let Some(d) = self.delivery(&id).await?
            {
                out.push(d);
            }
        }
        Ok(out)
    }

    async fn claim_idempotency(
        &self,
        key: &str,
        fingerprint: &str,
        until: UnixMs,
    ) -> Result<IdempotencyClaim, StoreError> {
        let mut con = self.durable()?;
        // one script: a record that has not lapsed by the store's clock is answered, else the claim is
        // written; its key lives until the lapse (at least a millisecond)
        let now = self.now();
        let claim = encode(&IdempotentRequest {
            fingerprint: fingerprint.to_owned(),
            answer: None,
            expires_at: until,
        });
        let held: Option<String> = lua("local v = redis.call('GET', KEYS[1]) \
             if v and tonumber(cjson.decode(v).expires_at) > tonumber(ARGV[2]) then return v end \
             redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3]) return false")
        .key(self.key(&["idem", key]))
        .arg(claim)
        .arg(now.0)
        .arg((until.0 - now.0).max(1))
        .invoke_async(&mut con)
        .await
        .map_err(|e| self.fail(e))?;
        self.replicate(&mut con).await?;
        match held {
            Some(v) => Ok(IdempotencyClaim::Held(decode("idempotency record", &v)?)),
            None => Ok(IdempotencyClaim::Claimed),
        }
    }

    async fn finish_idempotency(
        &self,
        key: &str,
        record: IdempotentRequest,
    ) -> Result<(), StoreError> {
        let mut con = self.durable()?;
        let ttl = (record.expires_at.0 - self.now().0).max(1);
        let _: () = redis::cmd("SET")
            .arg(self.key(&["idem", key]))
            .arg(encode(&record))
            .arg("PX")
            .arg(ttl)
            .query_async(&mut con)
            .await
            .map_err(|e| self.fail(e))?;
        self.replicate(&mut con).await
    }

    async fn release_idempotency(&self, key: &str) -> Result<(), StoreError> {
        let mut con = self.durable()?;
        let _: () = con
            .del(self.key(&["idem", key]))
            .await
            .map_err(|e| self.fail(e))?;
        self.replicate(&mut con).await
    }

    async fn door(
        &self,
        show: &ShowId,
        ticket: &TicketId,
        rules: DoorRules,
    ) -> Result<DoorAnswer, StoreError> {
        // one script: the line's order is the arrival numbers one Redis hands out, so it is first come,
        // first served across every node
        let mut ask = self.scripts.door.prepare_invoke();
        ask.key(self.key(&["door", show.as_str(), "line"]))
            .key(self.key(&["door", show.as_str(), "seen"]))
            .key(self.key(&["door", show.as_str(), "passes"]))
            .key(self.key(&["door", show.as_str()]));
        // the seats taken: the show's live set on one Redis; on a Redis Cluster, whose live sets are on
        // the slots of the tickets' shards, the node's recent count of them
        let live = if !self.cluster {
            ask.key(self.key(&["live", show.as_str()]));
            String::new()
        } else if rules.capacity.is_some() {
            self.live_count(show).await?.to_string()
        } else {
            // no capacity: the seats taken do not matter
            "0".to_owned()
        };
        let said: Vec<redis::Value> = ask
            .arg(ticket.as_str())
            .arg(self.now().0)
            .arg(rules.capacity.map_or(-1, i64::from))
            .arg(rules.rate_per_s.map_or(-1, i64::from))
            .arg(rules.pass_ms)
            .arg(rules.abandon_ms)
            .arg(DOOR_WINDOW_MS)
            .arg(live)
            .invoke_async(&mut self.con()?)
            .await
            .map_err(|e| self.fail(e))?;
        let int = |i: usize| match said.get(i) {
            Some(redis::Value::Int(n)) => u64::try_from(*n).ok(),
            _ => None,
        };
        match said.first() {
            Some(redis::Value::BulkString(b)) if b.as_slice() == b"enter" => Ok(DoorAnswer::Enter),
            Some(redis::Value::BulkString(b)) if b.as_slice() == b"wait" => Ok(DoorAnswer::Wait {
                position: int(1).unwrap_or(1),
                entered_recently: int(2).unwrap_or(0),
            }),
            _ => Err(StoreError::Corrupt(format!("the door's answer: {said:?}"))),
        }
    }

    async fn create_tv_code(
        &self,
        user_code: &SecretHash,
        code: TvCode,
    ) -> Result<bool, StoreError> {
        let mut con = self.durable()?;
        // the key outlives the code's lapse by a minute (the scripts compare `expires_at` with the
        // store's clock; Redis's own clock only collects the garbage)
        let now = self.now();
        let created: i64 = lua(
            "if redis.call('EXISTS', KEYS[1]) == 1 and \
                tonumber(redis.call('HGET', KEYS[1], 'expires_at')) > tonumber(ARGV[4]) then return 0 end \
             redis.call('DEL', KEYS[1]) \
             redis.call('HSET', KEYS[1], 'secret', ARGV[1], 'expires_at', ARGV[2], 'interval_s', ARGV[3]) \
             redis.call('PEXPIRE', KEYS[1], ARGV[5]) return 1",
        )
        .key(self.key(&["tv", &user_code.to_hex()]))
        .arg(code.device_secret.to_hex())
        .arg(code.expires_at.0)
        .arg(code.interval_s)
        .arg(now.0)
        .arg((code.expires_at.0 - now.0).max(1) + 60_000)
        .invoke_async(&mut con)
        .await
        .map_err(|e| self.fail(e))?;
        self.replicate(&mut con).await?;
        Ok(created == 1)
    }

    async fn approve_tv_code(
        &self,
        user_code: &SecretHash,
        approval: TvApproval,
    ) -> Result<TvApproveOutcome, StoreError> {
        let mut con = self.durable()?;
        let said: String = lua(
            "local f = redis.call('HMGET', KEYS[1], 'expires_at', 'approval') \
             if not f[1] or tonumber(f[1]) <= tonumber(ARGV[2]) then return 'unknown' end \
             if f[2] then return 'approved_already' end \
             redis.call('HSET', KEYS[1], 'approval', ARGV[1]) return 'approved'",
        )
        .key(self.key(&["tv", &user_code.to_hex()]))
        .arg(encode(&approval))
        .arg(self.now().0)
        .invoke_async(&mut con)
        .await
        .map_err(|e| self.fail(e))?;
        self.replicate(&mut con).await?;
        Ok(match said.as_str() {
            "approved" => TvApproveOutcome::Approved,
            "approved_already" => TvApproveOutcome::AlreadyApproved,
            _ => TvApproveOutcome::Unknown,
        })
    }

    async fn poll_tv_code(
        &self,
        user_code: &SecretHash,
        device_secret: &SecretHash,
    ) -> Result<TvPoll, StoreError> {
        let mut con = self.durable()?;
        // one script: the approval is taken by exactly one poll, and `slow_down` grows the interval
        // for every later poll (RFC 8628 section 3.5)
        let said: Vec<String> = lua(
            "local f = redis.call('HMGET', KEYS[1], 'secret', 'expires_at', 'interval_s', 'last', 'approval') \
             local now = tonumber(ARGV[2]) \
             if not f[1] or f[1] ~= ARGV[1] or tonumber(f[2]) <= now then return {'unknown'} end \
             if f[5] then redis.call('DEL', KEYS[1]) return {'approved', f[5]} end \
             local interval = tonumber(f[3]) \
             if f[4] and now < tonumber(f[4]) + interval * 1000 - tonumber(ARGV[3]) then \
               interval = interval + 5 \
               redis.call('HSET', KEYS[1], 'interval_s', interval, 'last', now) \
               return {'slow_down', tostring(interval)} end \
             redis.call('HSET', KEYS[1], 'last', now) \
             return {'pending', tostring(interval)}",
        )
        .key(self.key(&["tv", &user_code.to_hex()]))
        .arg(device_secret.to_hex())
        .arg(self.now().0)
        .arg(TV_POLL_SLACK_MS)
        .invoke_async(&mut con)
        .await
        .map_err(|e| self.fail(e))?;
        self.replicate(&mut con).await?;
        let interval = |i: usize| -> Result<u32, StoreError> {
            said.get(i)
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| StoreError::Corrupt(format!("a TV poll's answer: {said:?}")))
        };
        Ok(match said.first().map(String::as_str) {
            Some("approved") => TvPoll::Approved(decode(
                "TV approval",
                said.get(1).map_or("", String::as_str),
            )?),
            Some("pending") => TvPoll::Pending {
                interval_s: interval(1)?,
            },
            Some("slow_down") => TvPoll::SlowDown {
                interval_s: interval(1)?,
            },
            _ => TvPoll::Unknown,
        })
    }

    async fn sweep(&self) -> Result<u64, StoreError> {
        // every script drops the lapsed leases of the ticket it touches, and session and ended-session
        // keys carry their own lifetimes (docs/redis.md): nothing to sweep from a node
        Ok(0)
    }

    async fn backup(&self, _dest: &std::path::Path) -> Result<BackupInfo, StoreError> {
        // a node holds none of the data: Redis is backed up by its own means (docs/redis.md)
        Err(StoreError::Unsupported {
            operation: "take a backup (back Redis itself up)",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::cluster_slot;

    #[test]
    fn cluster_slots_are_the_specifications_hash_slots() {
        // the cluster specification's CRC16 check value (0x31C3), and what `CLUSTER KEYSLOT` answers
        assert_eq!(cluster_slot("123456789"), 12_739);
        assert_eq!(cluster_slot("foo"), 12_182);
        assert_eq!(cluster_slot(""), 0);
    }
}
