//! The embedded store: one Usher process, state on local disk, nothing else to install.
//!
//! Engine: [redb](https://docs.rs/redb), a pure-Rust, crash-safe (copy-on-write B-tree, checksummed
//! commit slots) embedded key-value store. Durable records (shows, tickets, API keys) are written in a
//! redb transaction committed with `Durability::Immediate` (fsync) *before* the call returns, so an
//! acknowledged write survives `kill -9`, and a write that could not be made durable is answered with an
//! error. A batch of tickets is one transaction: one fsync for up to 10,000 tickets. Registrations and
//! audit entries made at the same time share a transaction too (group commit, `embedded/group.rs`): each
//! is still answered only after the commit that holds it. The token index is derived from the tickets
//! and kept in memory (`embedded/tokens.rs`), rebuilt at open.
//!
//! Leases change on every heartbeat, so they live in memory (the lease rules of `usher_core::lease`
//! applied under one lock, which makes each step atomic) and are written to redb by [`Store::flush`],
//! which the server calls every second and at shutdown. The heartbeat path therefore never waits for a
//! disk; a crash loses at most the last second of lease renewals, which only shortens leases that the
//! next heartbeat renews again, and a restart finds every lease that was flushed. A flush copies the
//! changed tickets in pieces of [`FLUSH_PIECE`], one piece under the lock at a time, so a heartbeat waits
//! for one piece's copy at most, however many sessions play. A ticket that only renewals changed since its
//! whole record was written is written as its leases alone ([`Renewals`]), all such tickets of one piece
//! in one value of a log (table `lease_renewal_log`, keyed by the piece's sequence number, replayed over
//! the whole records at open), which costs one write instead of a B-tree insert per ticket; it is written
//! whole again at least every [`WHOLE_EVERY_MS`] and at [`Store::close`], and a log value no ticket needs
//! any more is removed by the next flush. The log is binary ([`PackedLease`], postcard): a lease's
//! secret hashes as bytes, where JSON spelled each in hex and the flush spent most of its time on that.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use async_trait::async_trait;
use indexmap::IndexMap;
use redb::{Database, ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use usher_core::admin::{
    AdminUser, AuditEntry, AuditFilter, Backoff, ConsoleSession, LoginGate, OutcomeCount,
    UserChange, UserName,
};
use usher_core::cdn::{Cdn, CdnHealth};
use usher_core::clock::{Clock, UnixMs};
use usher_core::content_key::ContentKeyRecord;
use usher_core::ids::{
    ApiKeyId, CdnId, ContentKeyId, DeliveryId, SessionId, ShowId, TicketId, WebhookId,
};
use usher_core::lease::{
    AdmitDecision, EndReason, HeartbeatDecision, LeaveDecision, Presented, SeatRules, TicketLeases,
};
use usher_core::privacy::{Erased, Retention};
use usher_core::secret::SecretHash;
use usher_core::show::Show;
use usher_core::store::{
    AUDIT_SCAN_LIMIT, AdmitRequest, ApiKey, BackupInfo, DeleteShowOutcome, DoorAnswer, DoorRules,
    HeartbeatAnswer, IdempotencyClaim, IdempotentRequest, NewTicket, PutOutcome, RegisterOutcome,
    RetentionBatch, SessionInfo, Store, StoreError, TV_POLL_SLACK_MS, TicketActivity, TvApproval,
    TvApproveOutcome, TvCode, TvPoll,
};
use usher_core::stream_key::StreamKeyRecord;
use usher_core::ticket::{Ticket, TicketBounds, TicketStatus};
use usher_core::webhook::{Delivery, DeliveryState, WebhookEndpoint};

mod group;
mod tokens;

use tokens::TokenIndex;

const SHOWS: TableDefinition<&str, &[u8]> = TableDefinition::new("shows");
const TICKETS: TableDefinition<&str, &[u8]> = TableDefinition::new("tickets");
/// The token index of schemas 1 to 3 (token hash hex → ticket id); schema 4 keeps it in memory
/// ([`tokens`]), and its migration step drops this table.
const TOKEN_INDEX: TableDefinition<&str, &str> = TableDefinition::new("token_index");
const API_KEYS: TableDefinition<&str, &[u8]> = TableDefinition::new("api_keys");
const CDNS: TableDefinition<&str, &[u8]> = TableDefinition::new("cdns");
const LEASES: TableDefinition<&str, &[u8]> = TableDefinition::new("leases");
/// The renewal log: per flushed piece (key: its sequence number, 16 hex digits), the tickets of it that
/// only renewals changed since their record in [`LEASES`] was written, each with its leases and
/// last-seen time ([`Renewals`], packed: [`pack_renewals`]). Replayed at open over the whole records
/// older than the entry. The releases before the binary form wrote entries as JSON (a JSON array: its
/// first byte is `[`, never [`PACKED_FORM`]); this one still reads those. Such a release refuses an
/// entry in binary (the log is empty after a clean stop): it never runs on a log it cannot read, whose
/// entries it would not know to be older than the records it wrote.
const RENEWAL_LOG: TableDefinition<&str, &[u8]> = TableDefinition::new("lease_renewal_log");

/// A renewal log key.
fn renewal_key(seq: u64) -> String {
    format!("{seq:016x}")
}
const POSTERS: TableDefinition<&str, &[u8]> = TableDefinition::new("posters");
/// Stream keys by show id: JSON records holding the key's keyed hash, never the key.
const STREAM_KEYS: TableDefinition<&str, &[u8]> = TableDefinition::new("stream_keys");
/// Content keys by id: JSON records holding the key wrapped, never in clear.
const CONTENT_KEYS: TableDefinition<&str, &[u8]> = TableDefinition::new("content_keys");
const ADMIN_USERS: TableDefinition<&str, &[u8]> = TableDefinition::new("admin_users");
const CONSOLE_SESSIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("console_sessions");
/// Audit entries keyed `{at ms, 16 hex}-{sequence, 16 hex}`, so key order is time order.
const AUDIT: TableDefinition<&str, &[u8]> = TableDefinition::new("audit");
/// The ticket search's index: `{external ref}\0{created at ms, 16 hex}\0{ticket id}` → ticket id, so the
/// tickets of one reference are one key range, oldest first (references hold no control characters).
const EXTREF_INDEX: TableDefinition<&str, &str> = TableDefinition::new("extref_index");
/// POSTs remembered under their `Idempotency-Key` (keyed hash → JSON record); lapsed records are
/// dropped by the sweep and overwritten by the next claim. Not part of backups: a restored store would
/// replay answers of another time.
const IDEMPOTENCY: TableDefinition<&str, &[u8]> = TableDefinition::new("idempotency");
/// Most tickets one piece of a lease flush copies under the lock and writes in one transaction.
const FLUSH_PIECE: usize = 4_096;
/// Most tickets (or session index entries) one piece of the sweep looks at under the lock. Every admit,
/// heartbeat and media lease check waits for a piece: at 100,000 sessions after takeover rounds a piece
/// of the session index held the lock up to 36 ms at 16,384 entries, up to 20 ms at 4,096 (BENCHMARKS.md,
/// issue 16's fourth step). Pieces of 1,024 with a pause between them since the seventh step: with 4,096
/// and no pause, a sweep over 300,000 tickets stalled requests for hundreds of milliseconds at the load
/// tool while every store operation still took under 25 ms.
const SWEEP_PIECE: usize = 1_024;

/// The sweep's pause between pieces, with the lock let go: long enough for the request workers that
/// waited on it to take it (a mutex let go and taken again at once by the same thread starves them).
const SWEEP_PAUSE: std::time::Duration = std::time::Duration::from_micros(200);

/// Most lapsed idempotency records (and old deliveries) one sweep drops (one write transaction); the
/// next sweep goes on.
const IDEMPOTENCY_SWEEP_BATCH: usize = 10_000;

/// A TV sign-in code as the embedded store keeps it.
#[derive(Serialize, Deserialize)]
struct TvRecord {
    device_secret: SecretHash,
    expires_at: UnixMs,
    interval_s: u32,
    last_poll_at: Option<UnixMs>,
    approval: Option<TvApproval>,
}
/// Webhook endpoints by id (JSON).
/// TV sign-in codes by the hex of their user code's hash (lapse in minutes: not in backups).
const TV_CODES: TableDefinition<&str, &[u8]> = TableDefinition::new("tv_codes");
const WEBHOOKS: TableDefinition<&str, &[u8]> = TableDefinition::new("webhooks");
/// Deliveries by id (JSON): the outbox.
const DELIVERIES: TableDefinition<&str, &[u8]> = TableDefinition::new("deliveries");
/// Pending deliveries by when they are due: `{due ms, 16 hex}\0{id}` → id, so the due ones are one range.
const DELIVERY_DUE: TableDefinition<&str, &str> = TableDefinition::new("delivery_due");
/// An endpoint's deliveries: `{endpoint}\0{created ms, 16 hex}\0{id}` → id, so its log is one range.
const DELIVERY_LOG: TableDefinition<&str, &str> = TableDefinition::new("delivery_log");
/// How long a delivered or given-up delivery is kept (the sweep drops older ones, a batch at a time).
const FINISHED_DELIVERY_KEPT_MS: i64 = 7 * 24 * 3600 * 1000;
/// Facts about the database itself: `schema` = the layout version ([`EMBEDDED_SCHEMA`]) and
/// `extref_index` = `1` once the index covers every ticket.
const META: TableDefinition<&str, &str> = TableDefinition::new("meta");

/// The layout version of the embedded store this build reads and writes (`meta.schema`).
///
/// - 1: tickets without the external-reference index;
/// - 2: with the index (`extref_index`). Usher 0.1.0 wrote this layout without stamping it;
/// - 3: tickets keyed by [`ticket_key`] (ids made since sort by time), where 2 keyed them by their id;
/// - 4: no token index table: the index is built in memory at open from the tickets ([`tokens`]).
///
/// [`EmbeddedStore::open`] migrates older stores forward one step at a time and refuses a newer one,
/// before it reads or changes anything else.
pub const EMBEDDED_SCHEMA: u32 = 4;

/// Most audit entries one [`Store::prune_audit`] drops (one write transaction); the next call goes on.
const PRUNE_BATCH: u64 = 100_000;
/// How many changed tickets end one [`Store::retain_usage`] call (at the end of the piece that reaches
/// it; each is flushed at the next flush).
const RETENTION_BATCH: usize = 10_000;

/// Most keys the failed-login map holds: random user names or addresses cannot grow it without bound.
/// Past it, keys whose record lapsed go first, then those with the fewest attempts (a user under attack
/// keeps the most, so flooding the map with fresh keys does not lift their wait).
const MAX_LOGIN_KEYS: usize = 100_000;

/// How long per-minute outcome counts are kept.
const OUTCOMES_KEPT_MS: i64 = 2 * 3600 * 1000;

/// Every table keyed by text with byte values, for backups (keep in step with the definitions above).
const BYTE_TABLES: &[TableDefinition<'static, &'static str, &'static [u8]>] = &[
    SHOWS,
    TICKETS,
    API_KEYS,
    CDNS,
    LEASES,
    RENEWAL_LOG,
    POSTERS,
    STREAM_KEYS,
    CONTENT_KEYS,
    WEBHOOKS,
    DELIVERIES,
    ADMIN_USERS,
    CONSOLE_SESSIONS,
    AUDIT,
];
/// The tables with text values: the external-reference index, the deliveries' indexes and the
/// database's facts.
const TEXT_TABLES: &[TableDefinition<'static, &'static str, &'static str>] =
    &[EXTREF_INDEX, DELIVERY_DUE, DELIVERY_LOG, META];

/// Memory redb may use for its page cache. redb's default (1 GiB) let the cache grow with every ticket
/// registered and every lease flushed (2.2 KB of RSS per registered ticket in BENCHMARKS.md's memory run):
/// records past this size are read from the kernel's page cache instead.
const CACHE_BYTES: usize = 32 << 20;

/// The file name of the database inside the data directory.
pub const DB_FILE: &str = "usher.redb";

fn unavailable(e: impl Into<redb::Error>) -> StoreError {
    StoreError::Unavailable(e.into().to_string())
}

/// A pending delivery's key in `delivery_due`.
fn due_key(d: &Delivery) -> String {
    format!("{:016x}\0{}", d.next_attempt_at.0.max(0), d.id)
}

/// A delivery's key in `delivery_log`.
fn log_key(d: &Delivery) -> String {
    format!("{}\0{:016x}\0{}", d.endpoint, d.created_at.0.max(0), d.id)
}

fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("domain records serialize")
}

fn decode<T: DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

/// One ticket's leases with the show they play, as kept in memory and flushed to disk.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct TicketRuntime {
    show_id: ShowId,
    leases: TicketLeases,
    /// The ticket's own bounds, for the heartbeats that re-check its window (the terms never change after
    /// registration): from the first admit since the store opened, or read once by a heartbeat.
    #[serde(skip)]
    bounds: Option<TicketBounds>,
    /// The ticket was revoked: set under the lock by `revoke_ticket` (after the durable write), read by
    /// every admit and renewal under the same lock, so none succeeds once a revoke has answered.
    #[serde(default)]
    revoked: bool,
    /// The sequence number of the flushed piece that wrote this whole record (0: before the renewal log);
    /// log entries of higher numbers are newer.
    #[serde(default)]
    seq: u64,
    /// When the flush last wrote the whole record (0: not since this process opened the store).
    #[serde(skip)]
    whole_at: i64,
    /// The renewal log entry holding the ticket's newest renewals (0: none; written whole at close, so
    /// that a release that reads only [`LEASES`] finds every renewal after a clean stop).
    #[serde(skip)]
    apart: u64,
}

/// What a renewal changed in a ticket, written by the flush in place of the whole record
/// ([`RENEWAL_LOG`]): the leases (times, secret chains) and the usage's last-seen time. The usage's
/// devices, countries and addresses and the ended sessions, which can hold tens of kilobytes on a ticket
/// that many devices took over, are written whole only when a step other than a renewal changed them,
/// and at least every [`WHOLE_EVERY_MS`]: a crash loses at most that much of a device's last-seen time.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Renewals {
    leases: Vec<usher_core::lease::Lease>,
    last_seen_at: Option<UnixMs>,
}

/// The first byte of a binary renewal log entry: the version of its form ([`PackedLease`]).
const PACKED_FORM: u8 = 1;

/// A lease as the binary renewal log holds it: its fields in order, no names (postcard is not
/// self-describing, so `Lease`'s optional fields are spelled out here), the secret hashes as bytes.
#[derive(Serialize, Deserialize)]
struct PackedLease {
    session_id: SessionId,
    device_id: usher_core::ids::DeviceId,
    device_label: String,
    created_at: UnixMs,
    renewed_at: UnixMs,
    expires_at: UnixMs,
    ttl_ms: i64,
    previous: Option<SecretHash>,
    issued: Vec<SecretHash>,
    retired: Vec<SecretHash>,
}

impl From<usher_core::lease::Lease> for PackedLease {
    fn from(l: usher_core::lease::Lease) -> Self {
        // every field named: a field added to `Lease` does not compile here until the log holds it
        let usher_core::lease::Lease {
            session_id,
            device_id,
            device_label,
            created_at,
            renewed_at,
            expires_at,
            ttl_ms,
            secret:
                usher_core::session_secret::SecretChain {
                    previous,
                    issued,
                    retired,
                },
        } = l;
        Self {
            session_id,
            device_id,
            device_label,
            created_at,
            renewed_at,
            expires_at,
            ttl_ms,
            previous,
            issued,
            retired,
        }
    }
}

impl From<PackedLease> for usher_core::lease::Lease {
    fn from(p: PackedLease) -> Self {
        Self {
            session_id: p.session_id,
            device_id: p.device_id,
            device_label: p.device_label,
            created_at: p.created_at,
            renewed_at: p.renewed_at,
            expires_at: p.expires_at,
            ttl_ms: p.ttl_ms,
            secret: usher_core::session_secret::SecretChain {
                previous: p.previous,
                issued: p.issued,
                retired: p.retired,
            },
        }
    }
}

/// A binary log entry after its form byte: per ticket, its leases and last-seen time.
type PackedEntry = Vec<(TicketId, Vec<PackedLease>, Option<UnixMs>)>;

/// One piece's renewals as a binary log entry: [`PACKED_FORM`], then postcard.
fn pack_renewals(renewed: Vec<(TicketId, Renewals)>) -> Vec<u8> {
    let packed: PackedEntry = renewed
        .into_iter()
        .map(|(id, r)| {
            let leases = r.leases.into_iter().map(PackedLease::from).collect();
            (id, leases, r.last_seen_at)
        })
        .collect();
    postcard::to_extend(&packed, vec![PACKED_FORM]).expect("domain records serialize")
}

/// A binary log entry's renewals ([`pack_renewals`]).
fn unpack_renewals(bytes: &[u8]) -> Result<Vec<(TicketId, Renewals)>, StoreError> {
    let corrupt = |why: String| StoreError::Corrupt(format!("lease renewals: {why}"));
    let body = match bytes.split_first() {
        Some((&PACKED_FORM, body)) => body,
        Some((form, _)) => {
            return Err(corrupt(format!(
                "form {form}, which this build does not read (a newer Usher wrote it?)"
            )));
        }
        None => return Err(corrupt("an empty entry".into())),
    };
    let (packed, rest): (PackedEntry, &[u8]) =
        postcard::take_from_bytes(body).map_err(|e| corrupt(e.to_string()))?;
    if !rest.is_empty() {
        return Err(corrupt(format!("{} bytes after the entry", rest.len())));
    }
    Ok(packed
        .into_iter()
        .map(|(id, leases, last_seen_at)| {
            let leases = leases.into_iter().map(Into::into).collect();
            (
                id,
                Renewals {
                    leases,
                    last_seen_at,
                },
            )
        })
        .collect())
}

/// The longest a ticket flushed for its renewals goes without its whole record written (one whose
/// lease ends is written whole then).
const WHOLE_EVERY_MS: i64 = 60_000;

/// The renewal log's bookkeeping, under the runtime's lock.
#[derive(Default)]
struct RenewalLog {
    /// The next piece's sequence number.
    next: u64,
    /// Per log entry, the tickets whose newest renewals it holds (an entry at zero is not needed).
    refs: BTreeMap<u64, u32>,
    /// Entries no ticket needs, removed by the next flush.
    obsolete: Vec<u64>,
}

impl RenewalLog {
    /// A ticket's newest renewals are no longer in entry `seq` (0: none).
    fn release(&mut self, seq: u64) {
        if seq == 0 {
            return;
        }
        if let Some(n) = self.refs.get_mut(&seq) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.refs.remove(&seq);
                self.obsolete.push(seq);
            }
        }
    }
}

/// What a heartbeat may change without the ticket's whole record being written again: nothing of this.
/// Lengths, counters and a sum (no allocation on the heartbeat path): a renewal that ends or forgets a
/// session changes the leases' or the endings' count, one that meets a clone moves the usage's, and one
/// that remembers a device again (a full list drops its oldest) changes the sum of the devices'
/// first-seen times, which their order (most recent last) does not.
fn heavy_shape(l: &TicketLeases) -> [u64; 8] {
    [
        l.usage
            .devices
            .iter()
            .fold(0i64, |sum, d| sum.wrapping_add(d.first_seen.0)) as u64,
        l.leases.len() as u64,
        l.ended.len() as u64,
        l.usage.devices.len() as u64,
        l.usage.sessions,
        l.usage.clones,
        l.usage.countries.len() as u64,
        l.usage.addresses.len() as u64,
    ]
}

/// The hasher of the runtime's tables of ids ([`Runtime`]).
type IdHash = foldhash::fast::RandomState;

#[derive(Default)]
struct Runtime {
    /// Boxed: a hash table's empty slots cost the value's full size, and at a million tickets the table
    /// has a million empty slots (~200 bytes each unboxed). Index maps, so that the sweep can walk them
    /// in pieces by position, letting go of the lock between pieces.
    ///
    /// Hashed with foldhash rather than SipHash (SipHash and these tables' lookups were ~3 % of a
    /// heartbeat's CPU under wrk): every key in these tables is an id the node generated (random bits),
    /// and a lookup of an id a client made up probes as far as the table's own keys make it, so no
    /// client chooses collisions.
    tickets: IndexMap<TicketId, Box<TicketRuntime>, IdHash>,
    sessions: IndexMap<SessionId, TicketId, IdHash>,
    /// Tickets changed since the last flush.
    dirty: HashSet<TicketId, IdHash>,
    /// Of those, the ones whose whole record must be written (any step but a plain renewal).
    whole: HashSet<TicketId, IdHash>,
    log: RenewalLog,
    /// Leases held per show, kept by every step and the sweep (`Store::live_session_counts`), so counting
    /// sessions never walks every ticket.
    held: HashMap<ShowId, u64>,
}

impl Runtime {
    /// Marks `id` changed, and for the flush to write whole when `whole` (any step but a renewal).
    fn changed(&mut self, id: &TicketId, whole: bool) {
        if whole && !self.whole.contains(id) {
            self.whole.insert(id.clone());
        }
        // a heartbeat makes no new session and its ticket is usually dirty already: no clones then
        if !self.dirty.contains(id) {
            self.dirty.insert(id.clone());
        }
    }

    /// Moves the count of leases `show` holds by `before` → `after`.
    fn count_held(&mut self, show: &ShowId, before: usize, after: usize) {
        if before == after {
            return;
        }
        let n = self.held.entry(show.clone()).or_default();
        *n = (*n + after as u64).saturating_sub(before as u64);
        if *n == 0 {
            self.held.remove(show);
        }
    }

    fn index(&mut self, ticket: &TicketId) {
        if let Some(rt) = self.tickets.get(ticket) {
            for s in rt.leases.known_sessions() {
                self.sessions
                    .entry(s.clone())
                    .or_insert_with(|| ticket.clone());
            }
        }
    }

    fn session_info(
        rt: &TicketRuntime,
        ticket_id: &TicketId,
        session: &SessionId,
        now: UnixMs,
    ) -> Option<SessionInfo> {
        rt.leases
            .live(now)
            .find(|l| &l.session_id == session)
            .map(|l| SessionInfo {
                session_id: l.session_id.clone(),
                ticket_id: ticket_id.clone(),
                show_id: rt.show_id.clone(),
                device_id: l.device_id.clone(),
                device_label: l.device_label.clone(),
                created_at: l.created_at,
                renewed_at: l.renewed_at,
                expires_at: l.expires_at,
            })
    }
}

/// The login attempts counted under one key ([`Store::login_attempt`]).
#[derive(Debug, Clone, Copy)]
struct Attempts {
    count: u32,
    /// No attempt is allowed before this.
    wait_until: UnixMs,
    /// The record is forgotten at this instant.
    forget_at: UnixMs,
}

/// Makes room in a full failed-login map (see [`MAX_LOGIN_KEYS`]): drops lapsed records, then the tenth
/// with the fewest attempts.
fn make_room(all: &mut HashMap<String, Attempts>, now: UnixMs) {
    all.retain(|_, a| a.forget_at > now);
    if all.len() < MAX_LOGIN_KEYS {
        return;
    }
    let mut counts: Vec<u32> = all.values().map(|a| a.count).collect();
    let cut = MAX_LOGIN_KEYS / 10;
    let (_, nth, _) = counts.select_nth_unstable(cut);
    let threshold = *nth;
    let mut dropped = 0;
    all.retain(|_, a| {
        if dropped < cut && a.count <= threshold {
            dropped += 1;
            false
        } else {
            true
        }
    });
}

/// The embedded backend. Cheap to share: wrap it in an `Arc`.
pub struct EmbeddedStore {
    db: Arc<Database>,
    clock: Arc<dyn Clock>,
    shows: RwLock<HashMap<ShowId, Show>>,
    api_keys: RwLock<HashMap<ApiKeyId, ApiKey>>,
    cdns: RwLock<HashMap<CdnId, Cdn>>,
    /// Serializes the writes of the CDN table so that its mirror ends as the last commit left it.
    cdn_writes: tokio::sync::Mutex<()>,
    /// Bumped after every change of the CDN mirror (`Store::cdns_generation`).
    cdn_generation: AtomicU64,
    keys_dirty: Mutex<HashSet<ApiKeyId>>,
    /// Shared with the sweep, which runs off the async runtime.
    runtime: Arc<Mutex<Runtime>>,
    admin_users: RwLock<HashMap<UserName, AdminUser>>,
    /// Console sessions; creation and deletion are durable, touches live in memory (a restart measures
    /// idleness from the last durable write, which can only end a session early).
    console_sessions: RwLock<HashMap<SecretHash, ConsoleSession>>,
    /// Login attempts per key. In memory: the embedded store is one node. At most [`MAX_LOGIN_KEYS`].
    login_failures: Mutex<HashMap<String, Attempts>>,
    /// Serializes the writes of admin users so that their mirror ends as the last commit left it.
    user_writes: tokio::sync::Mutex<()>,
    outcomes: Mutex<BTreeMap<(i64, String), u64>>,
    audit_seq: AtomicU64,
    /// Serializes flushes, so that a flush that copied a ticket before a change never commits after the
    /// flush that copied it after (an erasure's flush must not be undone by an older copy).
    flush_lock: tokio::sync::Mutex<()>,
    /// The shows' doors (doors-open capacity): in memory, as the embedded store is one node.
    doors: Mutex<HashMap<ShowId, crate::door::Door>>,
    /// Registrations and audit entries: concurrent ones share a transaction and its fsync. Their
    /// transactions stage the tokens they register, published to `tokens` after each commit.
    grouped: group::GroupCommit<TokenIndex>,
    /// Token hash → ticket, for every ticket committed: built at open, added to by registrations'
    /// commits (tickets are never deleted, and a ticket's token never changes).
    tokens: Arc<RwLock<TokenIndex>>,
    /// Where the retention pass stands: the position of the next ticket it looks at.
    retention_at: Arc<std::sync::atomic::AtomicUsize>,
}

impl std::fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedStore").finish_non_exhaustive()
    }
}

/// A mirror's records, sorted by key.
fn sorted_values<K: Ord, V: Clone>(mirror: &RwLock<HashMap<K, V>>) -> Vec<V> {
    let map = mirror
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut entries: Vec<(&K, &V)> = map.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    entries.into_iter().map(|(_, v)| v.clone()).collect()
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave half-applied lease rules (each step mutates one
    // ticket's value in place after computing), so a poisoned lock is still usable.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// [`EmbeddedStore::sweep`] over `runtime` at `now`, in pieces of [`SWEEP_PIECE`] entries, each under
/// the lock on its own: however many tickets there are, an admit or a heartbeat waits for one piece.
fn sweep(runtime: &Mutex<Runtime>, now: UnixMs) -> usize {
    let mut dropped = 0;
    // tickets are only ever added (at the end), so positions below the ones looked at stay put
    let mut at = 0;
    loop {
        let mut rt = lock(runtime);
        let end = (at + SWEEP_PIECE).min(rt.tickets.len());
        if at >= end {
            break;
        }
        let mut dirty = Vec::new();
        for i in at..end {
            if let Some((id, t)) = rt.tickets.get_index_mut(i) {
                let n = t.leases.drop_expired(now).len();
                if n > 0 {
                    dropped += n;
                    dirty.push((id.clone(), t.show_id.clone(), n));
                }
            }
        }
        for (id, show, n) in dirty {
            rt.count_held(&show, n, 0);
            rt.changed(&id, true);
        }
        at = end;
        drop(rt);
        std::thread::sleep(SWEEP_PAUSE);
    }
    // the session index, from the end: a removal moves the last entry (looked at already) into the
    // hole, and sessions added meanwhile go to the end, past what is left to look at
    let mut below = lock(runtime).sessions.len();
    while below > 0 {
        let mut rt = lock(runtime);
        let Runtime {
            tickets, sessions, ..
        } = &mut *rt;
        let from = below.saturating_sub(SWEEP_PIECE);
        for i in (from..below.min(sessions.len())).rev() {
            let stale = sessions.get_index(i).is_some_and(|(s, t)| {
                !tickets
                    .get(t)
                    .is_some_and(|rt| rt.leases.known_sessions().any(|k| k == s))
            });
            if stale {
                sessions.swap_remove_index(i);
            }
        }
        below = from;
        drop(rt);
        std::thread::sleep(SWEEP_PAUSE);
    }
    dropped
}

/// [`Store::retain_usage`] over `runtime`: from position `at` on, in pieces of [`SWEEP_PIECE`] tickets,
/// each under the lock on its own (so an admit or a heartbeat waits for one piece, however many tickets
/// there are), until [`RETENTION_BATCH`] tickets changed or the last one; `at` keeps where it stopped.
/// Tickets are only ever added, at the end, so the positions looked at stay put.
fn retain(
    runtime: &Mutex<Runtime>,
    rules: &Retention,
    at: &std::sync::atomic::AtomicUsize,
) -> RetentionBatch {
    use std::sync::atomic::Ordering::Relaxed;
    let (mut from, mut tickets) = (at.load(Relaxed), 0);
    loop {
        let mut rt = lock(runtime);
        let end = (from + SWEEP_PIECE).min(rt.tickets.len());
        if from >= end {
            at.store(0, Relaxed);
            return RetentionBatch {
                tickets,
                done: true,
            };
        }
        let mut changed = Vec::new();
        for i in from..end {
            if let Some((id, t)) = rt.tickets.get_index_mut(i)
                && t.leases.usage.apply_retention(rules)
            {
                changed.push(id.clone());
            }
        }
        for id in &changed {
            rt.changed(id, true);
        }
        drop(rt);
        tickets += changed.len() as u64;
        from = end;
        if tickets >= RETENTION_BATCH as u64 {
            at.store(from, Relaxed);
            return RetentionBatch {
                tickets,
                done: false,
            };
        }
        std::thread::sleep(SWEEP_PAUSE);
    }
}

/// Writes `batch` (each ticket with its `encoded` record) in `txn`: [`Store::register_tickets`]'s step.
/// A token is looked for in `committed` and in what this transaction staged before (`staged`); a new
/// one is staged.
fn register_in(
    txn: &redb::WriteTransaction,
    committed: &RwLock<TokenIndex>,
    staged: &mut TokenIndex,
    batch: &[NewTicket],
    encoded: &[Vec<u8>],
) -> Result<Vec<RegisterOutcome>, StoreError> {
    let mut tickets = txn.open_table(TICKETS).map_err(unavailable)?;
    let mut refs = txn.open_table(EXTREF_INDEX).map_err(unavailable)?;
    let committed = committed
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut out = Vec::with_capacity(batch.len());
    for (NewTicket { ticket }, bytes) in batch.iter().zip(encoded) {
        let hash = &ticket.token_hash;
        // the index lives in memory, so the only B-tree a registration writes at random is gone: its
        // ticket goes next to the ones registered just before it (`ticket_key`)
        let earlier = committed
            .candidates(hash)
            .iter()
            .chain(staged.candidates(hash));
        if let Some(existing) = holder_of(&tickets, earlier, hash)? {
            out.push(if existing.terms == ticket.terms {
                RegisterOutcome::Existing(existing)
            } else {
                RegisterOutcome::Conflict(existing.id)
            });
            continue;
        }
        let key = ticket_key(ticket.id.as_str());
        let taken = tickets
            .insert(key.as_str(), bytes.as_slice())
            .map_err(unavailable)?
            .is_some();
        if taken {
            // two ids alike in their shard, millisecond and 48 random bits: the error aborts the
            // transaction, so the record it replaced stays, and the caller's retry makes a new id
            return Err(StoreError::Unavailable(format!(
                "ticket id {} was made twice; retry",
                ticket.id
            )));
        }
        if let Some(key) = extref_key(ticket) {
            refs.insert(key.as_str(), ticket.id.as_str())
                .map_err(unavailable)?;
        }
        staged.insert(hash, tokens::key_bytes(&key)?);
        out.push(RegisterOutcome::Created(ticket.clone()));
    }
    Ok(out)
}

/// The ticket among `candidates` (keys from the token index) whose token is hashed to `hash`, read from
/// `tickets`. The whole hash is compared in constant time: the index only knows its first eight bytes.
fn holder_of<'k>(
    tickets: &impl ReadableTable<&'static str, &'static [u8]>,
    candidates: impl IntoIterator<Item = &'k tokens::TicketKey>,
    hash: &SecretHash,
) -> Result<Option<Ticket>, StoreError> {
    for key in candidates {
        let key = tokens::key_text(key);
        let Some(v) = tickets.get(key.as_str()).map_err(unavailable)? else {
            return Err(StoreError::Corrupt(format!(
                "the token index names ticket key {key}, which is not in the tickets table"
            )));
        };
        let ticket: Ticket = decode("ticket", v.value())?;
        if ticket.token_hash.ct_eq(hash) {
            return Ok(Some(ticket));
        }
    }
    Ok(None)
}

/// The key of the ticket `id` in [`TICKETS`]: the id without its `t_`, its shard (two hex digits) moved
/// to the end. An id made by `TicketId::generate_in` then sorts by the time it was made, so tickets
/// registered one after the other go to the same leaf pages of the tree, where random keys made each
/// registration read, copy and write a page of its own (issue 16). Anything that is no ticket id is its
/// own key, and is found by no ticket.
fn ticket_key(id: &str) -> String {
    if id.len() == 26 && id.starts_with("t_") && id.is_ascii() {
        format!("{}{}", &id[4..], &id[2..4])
    } else {
        id.to_owned()
    }
}

/// The key of `ticket` in [`EXTREF_INDEX`], when it has an external reference.
fn extref_key(ticket: &Ticket) -> Option<String> {
    let r = ticket.terms.external_ref.as_deref()?;
    let created = UnixMs::from_datetime(ticket.created_at).0.max(0);
    Some(format!("{r}\0{created:016x}\0{}", ticket.id))
}

/// Reads the store's schema version: the stamp, or for a store stamped by no release (0.1.0 and before)
/// the layout its facts show.
///
/// # Errors
/// [`StoreError::Incompatible`] when the stamp is not a number or names a newer layout than
/// [`EMBEDDED_SCHEMA`].
fn schema_of(txn: &redb::WriteTransaction, file: &Path) -> Result<u32, StoreError> {
    let meta = txn.open_table(META).map_err(unavailable)?;
    let stamp = meta
        .get("schema")
        .map_err(unavailable)?
        .map(|v| v.value().to_owned());
    let Some(stamp) = stamp else {
        let indexed = meta.get("extref_index").map_err(unavailable)?.is_some();
        return Ok(if indexed { 2 } else { 1 });
    };
    let version: u32 = stamp.parse().map_err(|_| {
        StoreError::Incompatible(format!(
            "{} has schema {stamp:?}, which is not a version number; it was not written by Usher",
            file.display()
        ))
    })?;
    if version > EMBEDDED_SCHEMA {
        return Err(StoreError::Incompatible(format!(
            "{} has schema {version}, written by a newer Usher; this build ({}) reads schema {EMBEDDED_SCHEMA} and older. \
             Run a release that reads it, or restore a backup taken before the upgrade",
            file.display(),
            env!("CARGO_PKG_VERSION"),
        )));
    }
    Ok(version)
}

/// Brings the store to [`EMBEDDED_SCHEMA`] inside the opening transaction (all steps or none) and stamps
/// it. Returns the version it found.
fn migrate(txn: &redb::WriteTransaction, file: &Path) -> Result<u32, StoreError> {
    let found = schema_of(txn, file)?;
    // a store made just now reads as the oldest layout with nothing in it: its steps are not news
    let holds_tickets = !txn
        .open_table(TICKETS)
        .map_err(unavailable)?
        .is_empty()
        .map_err(unavailable)?;
    let mut version = found;
    while version < EMBEDDED_SCHEMA {
        match version {
            1 => index_external_refs(txn)?,
            2 => key_tickets_by_time(txn)?,
            3 => drop_token_index_table(txn)?,
            _ => unreachable!("every version below EMBEDDED_SCHEMA has a step"),
        }
        version += 1;
        if holds_tickets {
            tracing::info!(file = %file.display(), from = version - 1, to = version, "embedded store migrated");
        }
    }
    let mut meta = txn.open_table(META).map_err(unavailable)?;
    meta.insert("schema", EMBEDDED_SCHEMA.to_string().as_str())
        .map_err(unavailable)?;
    Ok(found)
}

/// Builds the external-reference index (the step from schema 1 to 2).
fn index_external_refs(txn: &redb::WriteTransaction) -> Result<(), StoreError> {
    let mut meta = txn.open_table(META).map_err(unavailable)?;
    let tickets = txn.open_table(TICKETS).map_err(unavailable)?;
    let mut index = txn.open_table(EXTREF_INDEX).map_err(unavailable)?;
    for row in tickets.iter().map_err(unavailable)? {
        let (_, v) = row.map_err(unavailable)?;
        let t: Ticket = decode("ticket", v.value())?;
        if let Some(key) = extref_key(&t) {
            index
                .insert(key.as_str(), t.id.as_str())
                .map_err(unavailable)?;
        }
    }
    meta.insert("extref_index", "1").map_err(unavailable)?;
    Ok(())
}

/// Tickets one piece of [`key_tickets_by_time`] moves: what it holds in memory at once.
const REKEY_PIECE: usize = 10_000;

/// Keys every ticket by [`ticket_key`] (the step from schema 2 to 3). Schema 2 keyed a ticket by its id,
/// which starts with `t_`; every key of schema 3 is hex digits only, so the keys from `t_` on are
/// exactly those left to move, a piece at a time.
fn key_tickets_by_time(txn: &redb::WriteTransaction) -> Result<(), StoreError> {
    let mut tickets = txn.open_table(TICKETS).map_err(unavailable)?;
    loop {
        let piece = tickets
            .range("t_"..)
            .map_err(unavailable)?
            .take(REKEY_PIECE)
            .map(|row| {
                let (k, v) = row.map_err(unavailable)?;
                Ok((k.value().to_owned(), v.value().to_vec()))
            })
            .collect::<Result<Vec<(String, Vec<u8>)>, StoreError>>()?;
        if piece.is_empty() {
            return Ok(());
        }
        for (id, bytes) in piece {
            let key = ticket_key(&id);
            if key == id {
                return Err(StoreError::Corrupt(format!(
                    "the tickets table holds {id:?}, which is no ticket id"
                )));
            }
            tickets.remove(id.as_str()).map_err(unavailable)?;
            tickets
                .insert(key.as_str(), bytes.as_slice())
                .map_err(unavailable)?;
        }
    }
}

/// Drops the token index table (the step from schema 3 to 4): the index is built in memory at open.
fn drop_token_index_table(txn: &redb::WriteTransaction) -> Result<(), StoreError> {
    txn.delete_table(TOKEN_INDEX).map_err(unavailable)?;
    Ok(())
}

/// The part of a ticket record the token index is built from.
#[derive(Deserialize)]
struct TokenOf {
    token_hash: SecretHash,
}

/// The token index of every ticket in `read`'s tickets table.
fn index_tokens(read: &redb::ReadTransaction) -> Result<TokenIndex, StoreError> {
    let tickets = read.open_table(TICKETS).map_err(unavailable)?;
    let mut index = TokenIndex::with_capacity(
        usize::try_from(tickets.len().map_err(unavailable)?).unwrap_or(0),
    );
    for row in tickets.iter().map_err(unavailable)? {
        let (k, v) = row.map_err(unavailable)?;
        let TokenOf { token_hash } = decode("ticket", v.value())?;
        index.insert(&token_hash, tokens::key_bytes(k.value())?);
    }
    Ok(index)
}

impl EmbeddedStore {
    /// The database (for backups).
    fn database(&self) -> Arc<Database> {
        Arc::clone(&self.db)
    }

    /// Opens (or creates) the store in `dir`, loading shows, keys and leases into memory.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the directory or database cannot be opened (for instance another
    /// Usher process holds it), [`StoreError::Corrupt`] when a record cannot be read,
    /// [`StoreError::Incompatible`] when a newer release wrote it (nothing is changed then).
    pub fn open(dir: &Path, clock: Arc<dyn Clock>) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| {
            StoreError::Unavailable(format!("cannot create {}: {e}", dir.display()))
        })?;
        let db = redb::Builder::new()
            .set_cache_size(CACHE_BYTES)
            .create(dir.join(DB_FILE))
            .map_err(unavailable)?;
        let txn = db.begin_write().map_err(unavailable)?;
        for t in BYTE_TABLES {
            txn.open_table(*t).map_err(unavailable)?;
        }
        for t in TEXT_TABLES {
            txn.open_table(*t).map_err(unavailable)?;
        }
        migrate(&txn, &dir.join(DB_FILE))?;
        txn.commit().map_err(unavailable)?;

        let read = db.begin_read().map_err(unavailable)?;
        let started = std::time::Instant::now();
        let tokens = index_tokens(&read)?;
        tracing::info!(
            tickets = tokens.len(),
            ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            "token index built"
        );
        let mut shows = HashMap::new();
        for row in read
            .open_table(SHOWS)
            .map_err(unavailable)?
            .iter()
            .map_err(unavailable)?
        {
            let (_, v) = row.map_err(unavailable)?;
            let show: Show = decode("show", v.value())?;
            shows.insert(show.id.clone(), show);
        }
        let mut api_keys = HashMap::new();
        for row in read
            .open_table(API_KEYS)
            .map_err(unavailable)?
            .iter()
            .map_err(unavailable)?
        {
            let (_, v) = row.map_err(unavailable)?;
            let key: ApiKey = decode("api key", v.value())?;
            api_keys.insert(key.id.clone(), key);
        }
        let mut cdns = HashMap::new();
        for row in read
            .open_table(CDNS)
            .map_err(unavailable)?
            .iter()
            .map_err(unavailable)?
        {
            let (_, v) = row.map_err(unavailable)?;
            let cdn: Cdn = decode("cdn", v.value())?;
            cdns.insert(cdn.id.clone(), cdn);
        }
        let mut admin_users = HashMap::new();
        for row in read
            .open_table(ADMIN_USERS)
            .map_err(unavailable)?
            .iter()
            .map_err(unavailable)?
        {
            let (_, v) = row.map_err(unavailable)?;
            let user: AdminUser = decode("admin user", v.value())?;
            admin_users.insert(user.name.clone(), user);
        }
        let mut console_sessions = HashMap::new();
        for row in read
            .open_table(CONSOLE_SESSIONS)
            .map_err(unavailable)?
            .iter()
            .map_err(unavailable)?
        {
            let (_, v) = row.map_err(unavailable)?;
            let session: ConsoleSession = decode("console session", v.value())?;
            console_sessions.insert(session.id, session);
        }
        let mut runtime = Runtime::default();
        let mut newest = 0;
        for row in read
            .open_table(LEASES)
            .map_err(unavailable)?
            .iter()
            .map_err(unavailable)?
        {
            let (k, v) = row.map_err(unavailable)?;
            let id = TicketId::parse(k.value())
                .map_err(|e| StoreError::Corrupt(format!("lease key: {e}")))?;
            let rt: TicketRuntime = decode("leases", v.value())?;
            newest = newest.max(rt.seq);
            runtime.tickets.insert(id, Box::new(rt));
        }
        // the renewal log, oldest first: an entry newer than a ticket's whole record (and than the
        // entries before it) holds the ticket's leases and last-seen time as renewals left them
        let mut entries = Vec::new();
        for row in read
            .open_table(RENEWAL_LOG)
            .map_err(unavailable)?
            .iter()
            .map_err(unavailable)?
        {
            let (k, v) = row.map_err(unavailable)?;
            let seq = u64::from_str_radix(k.value(), 16)
                .map_err(|e| StoreError::Corrupt(format!("lease renewal log key: {e}")))?;
            newest = newest.max(seq);
            entries.push(seq);
            // an entry of the releases before the binary form is JSON
            let renewed: Vec<(TicketId, Renewals)> = if v.value().first() == Some(&b'[') {
                decode("lease renewal log", v.value())?
            } else {
                unpack_renewals(v.value())?
            };
            for (id, r) in renewed {
                // a whole record without a sequence was written by a release without the log (after
                // a downgrade): it is newer than any entry, which that release never wrote
                if let Some(t) = runtime.tickets.get_mut(&id)
                    && t.seq != 0
                    && seq > t.seq
                    && seq > t.apart
                {
                    t.leases.leases = r.leases;
                    t.leases.usage.last_seen_at = r.last_seen_at.max(t.leases.usage.last_seen_at);
                    t.apart = seq;
                }
            }
        }
        let ids: Vec<TicketId> = runtime.tickets.keys().cloned().collect();
        for id in &ids {
            let (show, held, apart) = {
                let t = &runtime.tickets[id];
                (t.show_id.clone(), t.leases.leases.len(), t.apart)
            };
            runtime.count_held(&show, 0, held);
            runtime.index(id);
            if apart != 0 {
                *runtime.log.refs.entry(apart).or_default() += 1;
            }
        }
        // entries no ticket needs any more (every ticket in them written since) go at the first flush
        runtime.log.obsolete = entries
            .into_iter()
            .filter(|seq| !runtime.log.refs.contains_key(seq))
            .collect();
        runtime.log.next = newest.checked_add(1).ok_or_else(|| {
            StoreError::Corrupt("lease sequence numbers are exhausted (a damaged store?)".into())
        })?;
        drop(read);
        let tokens = Arc::new(RwLock::new(tokens));
        let published = Arc::clone(&tokens);
        Ok(Self {
            db: Arc::new(db),
            clock,
            shows: RwLock::new(shows),
            api_keys: RwLock::new(api_keys),
            cdns: RwLock::new(cdns),
            cdn_writes: tokio::sync::Mutex::new(()),
            cdn_generation: AtomicU64::new(0),
            keys_dirty: Mutex::new(HashSet::new()),
            runtime: Arc::new(Mutex::new(runtime)),
            admin_users: RwLock::new(admin_users),
            console_sessions: RwLock::new(console_sessions),
            login_failures: Mutex::new(HashMap::new()),
            user_writes: tokio::sync::Mutex::new(()),
            outcomes: Mutex::new(BTreeMap::new()),
            doors: Mutex::new(HashMap::new()),
            audit_seq: AtomicU64::new(0),
            flush_lock: tokio::sync::Mutex::new(()),
            grouped: group::GroupCommit::new(move |staged: TokenIndex| {
                if !staged.is_empty() {
                    published
                        .write()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .absorb(staged);
                }
            }),
            tokens,
            retention_at: Arc::default(),
        })
    }

    /// Writes `value` durably under `key` in `table` and then into its in-memory mirror.
    async fn put_mirrored<K: std::hash::Hash + Eq, V: Serialize>(
        &self,
        table: TableDefinition<'static, &'static str, &'static [u8]>,
        mirror: &RwLock<HashMap<K, V>>,
        key: String,
        id: K,
        value: V,
    ) -> Result<PutOutcome, StoreError> {
        let bytes = encode(&value);
        let existed = self
            .write(move |txn| {
                let mut t = txn.open_table(table).map_err(unavailable)?;
                let old = t
                    .insert(key.as_str(), bytes.as_slice())
                    .map_err(unavailable)?;
                Ok(old.is_some())
            })
            .await?;
        mirror
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(id, value);
        Ok(if existed {
            PutOutcome::Replaced
        } else {
            PutOutcome::Created
        })
    }

    /// Runs a durable write off the async runtime and waits for its commit.
    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&redb::WriteTransaction) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.write_durable(redb::Durability::Immediate, f).await
    }

    /// [`EmbeddedStore::write`] committed with `durability` (`None`: made durable by the next commit
    /// that syncs).
    async fn write_durable<T: Send + 'static>(
        &self,
        durability: redb::Durability,
        f: impl FnOnce(&redb::WriteTransaction) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let db = Arc::clone(&self.db);
        tokio::task::spawn_blocking(move || {
            let mut txn = db.begin_write().map_err(unavailable)?;
            txn.set_durability(durability);
            let out = f(&txn)?;
            txn.commit().map_err(unavailable)?;
            Ok(out)
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("write task failed: {e}")))?
    }

    /// Runs a durable write in the next group commit (`group`) and waits for its commit. `f` may run
    /// more than once (again without a failed write of its group), so it must only write through the
    /// transaction and return.
    async fn write_grouped<T: Send + 'static>(
        &self,
        f: impl FnMut(&redb::WriteTransaction, &mut TokenIndex) -> Result<T, StoreError>
        + Send
        + 'static,
    ) -> Result<T, StoreError> {
        self.grouped.write(&self.db, f).await
    }

    /// An audit entry's key in [`AUDIT`] and its record.
    fn audit_row(&self, entry: &AuditEntry) -> (String, Vec<u8>) {
        let seq = self.audit_seq.fetch_add(1, Ordering::Relaxed);
        // the sequence after the time keeps entries of one millisecond apart; a restart resets it, and
        // the random tail keeps a restart within the same millisecond from overwriting an entry
        let key = format!(
            "{:016x}-{seq:08x}{}",
            entry.at.0.max(0),
            usher_core::ids::random_hex(4)
        );
        (key, encode(entry))
    }

    fn read_ticket(&self, id: &str) -> Result<Option<Ticket>, StoreError> {
        let read = self.db.begin_read().map_err(unavailable)?;
        let table = read.open_table(TICKETS).map_err(unavailable)?;
        match table.get(ticket_key(id).as_str()).map_err(unavailable)? {
            Some(v) => decode("ticket", v.value()).map(Some),
            None => Ok(None),
        }
    }

    fn with_ticket<T>(
        &self,
        id: &TicketId,
        show: Option<&ShowId>,
        f: impl FnOnce(&mut TicketLeases, UnixMs) -> T,
    ) -> Option<(T, ShowId, Option<TicketBounds>)> {
        self.with_runtime(id, show, |rt, now| f(&mut rt.leases, now))
    }

    /// [`EmbeddedStore::with_ticket`] with the whole runtime record (its revocation flag).
    fn with_runtime<T>(
        &self,
        id: &TicketId,
        show: Option<&ShowId>,
        f: impl FnOnce(&mut TicketRuntime, UnixMs) -> T,
    ) -> Option<(T, ShowId, Option<TicketBounds>)> {
        self.with_runtime_weighed(id, show, |rt, now| (f(rt, now), true))
    }

    /// [`EmbeddedStore::with_runtime`] where `f` also says whether the flush must write the ticket's
    /// whole record (`false`: a renewal, whose leases alone are written: [`Renewals`]).
    fn with_runtime_weighed<T>(
        &self,
        id: &TicketId,
        show: Option<&ShowId>,
        f: impl FnOnce(&mut TicketRuntime, UnixMs) -> (T, bool),
    ) -> Option<(T, ShowId, Option<TicketBounds>)> {
        let now = self.clock.now();
        let mut rt = lock(&self.runtime);
        let entry = match (rt.tickets.contains_key(id), show) {
            (true, _) => rt.tickets.get_mut(id).expect("checked"),
            (false, Some(show_id)) => rt.tickets.entry(id.clone()).or_insert_with(|| {
                Box::new(TicketRuntime {
                    show_id: show_id.clone(),
                    leases: TicketLeases::default(),
                    bounds: None,
                    revoked: false,
                    seq: 0,
                    whole_at: 0,
                    apart: 0,
                })
            }),
            (false, None) => return None,
        };
        let sessions_before = entry.leases.leases.len();
        let (out, whole) = f(entry, now);
        let show_id = entry.show_id.clone();
        let bounds = entry.bounds;
        let sessions_after = entry.leases.leases.len();
        let new_lease = sessions_after > sessions_before;
        rt.count_held(&show_id, sessions_before, sessions_after);
        rt.changed(id, whole);
        if new_lease || show.is_some() {
            rt.index(id);
        }
        Some((out, show_id, bounds))
    }

    /// [`Store::flush`]; `closing` writes every changed ticket whole (the last flush, at [`Store::close`]).
    async fn flush_pieces(&self, closing: bool) -> Result<(), StoreError> {
        let _one_at_a_time = self.flush_lock.lock().await;
        let keys: Vec<(ApiKeyId, Vec<u8>)> = {
            let dirty: Vec<ApiKeyId> = lock(&self.keys_dirty).drain().collect();
            let all = self
                .api_keys
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            dirty
                .into_iter()
                .filter_map(|id| all.get(&id).map(|k| (id.clone(), encode(k))))
                .collect()
        };
        // the changed tickets, taken whole (the set is swapped out, not walked, under the lock); a ticket
        // that changes from here on is marked again and goes in the next flush
        let (mut dirty, obsolete): (Vec<TicketId>, bool) = {
            let mut rt = lock(&self.runtime);
            (
                std::mem::take(&mut rt.dirty).into_iter().collect(),
                !rt.log.obsolete.is_empty(),
            )
        };
        if dirty.is_empty() && keys.is_empty() && !obsolete {
            return Ok(());
        }
        // in key order, so that each piece is one run of the B-tree's keys: a piece of tickets taken
        // in the set's order touched a leaf page per ticket (each page read, copied and written again
        // at commit), a run touches a few tickets' worth of leaves together
        dirty.sort_unstable();
        // in pieces: the lock is held to copy one piece at a time, the copies are encoded off the lock
        // and off the runtime, and each piece is a transaction of its own, so admits and heartbeats wait
        // for at most one piece's copy and registrations' commits go in between; only the last piece
        // is synced to disk, which makes the pieces before it durable with it
        let mut keys = Some(keys);
        loop {
            let cut = dirty.len().saturating_sub(FLUSH_PIECE);
            let ids = dirty.split_off(cut);
            let last = dirty.is_empty();
            // a ticket changed only by renewals since its whole record (at most WHOLE_EVERY_MS ago) is
            // copied as its leases alone, and all of those of the piece are written as one entry of the
            // renewal log: one write, where a B-tree insert per ticket copied a page per ticket
            let (seq, whole, renewed, obsolete, released) = {
                let now = self.clock.now().0;
                let mut guard = lock(&self.runtime);
                let rt = &mut *guard;
                let seq = rt.log.next;
                rt.log.next += 1;
                let obsolete = std::mem::take(&mut rt.log.obsolete);
                let (mut whole, mut renewed, mut released) = (Vec::new(), Vec::new(), Vec::new());
                for id in &ids {
                    let must = rt.whole.remove(id);
                    let Some(t) = rt.tickets.get_mut(id) else {
                        continue;
                    };
                    // the entry that held the ticket's newest renewals no longer does, once this
                    // piece is written
                    released.push((id.clone(), t.apart));
                    if must || closing || now - t.whole_at >= WHOLE_EVERY_MS {
                        t.whole_at = now;
                        t.seq = seq;
                        t.apart = 0;
                        whole.push((id.clone(), Box::new(TicketRuntime::clone(t))));
                    } else {
                        t.apart = seq;
                        renewed.push((
                            id.clone(),
                            Renewals {
                                leases: t.leases.leases.clone(),
                                last_seen_at: t.leases.usage.last_seen_at,
                            },
                        ));
                    }
                }
                if !renewed.is_empty() {
                    rt.log.refs.insert(seq, renewed.len() as u32);
                }
                (seq, whole, renewed, obsolete, released)
            };
            let keys = if last { keys.take() } else { None };
            let durability = if last {
                redb::Durability::Immediate
            } else {
                redb::Durability::None
            };
            let removed = obsolete.clone();
            let result = self
                .write_durable(durability, move |txn| {
                    let mut t = txn.open_table(LEASES).map_err(unavailable)?;
                    for (id, runtime) in &whole {
                        t.insert(id.as_str(), encode(&**runtime).as_slice())
                            .map_err(unavailable)?;
                    }
                    let mut log = txn.open_table(RENEWAL_LOG).map_err(unavailable)?;
                    if !renewed.is_empty() {
                        log.insert(renewal_key(seq).as_str(), pack_renewals(renewed).as_slice())
                            .map_err(unavailable)?;
                    }
                    // entries every ticket of which was written again in an earlier commit (which
                    // this one makes durable, if it was not)
                    for old in &removed {
                        log.remove(renewal_key(*old).as_str())
                            .map_err(unavailable)?;
                    }
                    let mut k = txn.open_table(API_KEYS).map_err(unavailable)?;
                    for (id, bytes) in keys.iter().flatten() {
                        // a key deleted meanwhile stays deleted
                        if k.get(id.as_str()).map_err(unavailable)?.is_some() {
                            k.insert(id.as_str(), bytes.as_slice())
                                .map_err(unavailable)?;
                        }
                    }
                    Ok(())
                })
                .await;
            let mut rt = lock(&self.runtime);
            if let Err(e) = result {
                // this piece and the ones not yet written go in the next flush, whole, as this piece's
                // records are not on disk (pieces committed before without a sync are made durable by
                // the next synced commit); its tickets' newest renewals are where they were, and the
                // entries to remove are removed then
                rt.log.obsolete.extend(obsolete);
                rt.log.refs.remove(&seq);
                for (id, old) in &released {
                    if let Some(t) = rt.tickets.get_mut(id) {
                        t.apart = *old;
                    }
                }
                for id in ids.iter().chain(&dirty) {
                    rt.changed(id, true);
                }
                return Err(e);
            }
            for (_, old) in released {
                rt.log.release(old);
            }
            drop(rt);
            if last {
                return Ok(());
            }
        }
    }

    /// How many keys the failed-login map holds (at most [`MAX_LOGIN_KEYS`]; for tests and metrics).
    pub fn login_keys(&self) -> usize {
        lock(&self.login_failures).len()
    }

    /// Drops expired leases and forgets sessions no ticket remembers; returns the leases dropped.
    /// Correctness never depends on this (every step drops expired leases itself); it bounds memory and
    /// keeps the live-session counts honest. Blocking (one pass over every ticket under the store's lock):
    /// [`Store::sweep`] runs it off the async runtime.
    pub fn sweep(&self) -> usize {
        sweep(&self.runtime, self.clock.now())
    }
}

#[async_trait]
impl Store for EmbeddedStore {
    fn now(&self) -> UnixMs {
        self.clock.now()
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let read = self.db.begin_read().map_err(unavailable)?;
        read.open_table(SHOWS)
            .map_err(unavailable)?
            .len()
            .map_err(unavailable)?;
        Ok(())
    }

    async fn put_show(&self, show: Show) -> Result<PutOutcome, StoreError> {
        let key = show.id.to_string();
        self.put_mirrored(SHOWS, &self.shows, key, show.id.clone(), show)
            .await
    }

    async fn show(&self, id: &ShowId) -> Result<Option<Show>, StoreError> {
        Ok(self
            .shows
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(id)
            .cloned())
    }

    async fn shows(&self) -> Result<Vec<Show>, StoreError> {
        Ok(sorted_values(&self.shows))
    }

    async fn delete_show(&self, id: &ShowId) -> Result<DeleteShowOutcome, StoreError> {
        let key = id.to_string();
        let outcome = self
            .write(move |txn| {
                let mut shows = txn.open_table(SHOWS).map_err(unavailable)?;
                if shows.get(key.as_str()).map_err(unavailable)?.is_none() {
                    return Ok(DeleteShowOutcome::Missing);
                }
                let tickets = txn.open_table(TICKETS).map_err(unavailable)?;
                let mut count = 0u64;
                for row in tickets.iter().map_err(unavailable)? {
                    let (_, v) = row.map_err(unavailable)?;
                    let t: Ticket = decode("ticket", v.value())?;
                    if t.terms.show_id.as_str() == key {
                        count += 1;
                    }
                }
                if count > 0 {
                    return Ok(DeleteShowOutcome::HasTickets(count));
                }
                shows.remove(key.as_str()).map_err(unavailable)?;
                Ok(DeleteShowOutcome::Deleted)
            })
            .await?;
        if outcome == DeleteShowOutcome::Deleted {
            self.shows
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .remove(id);
        }
        Ok(outcome)
    }

    async fn register_tickets(
        &self,
        batch: Vec<NewTicket>,
    ) -> Result<Vec<RegisterOutcome>, StoreError> {
        let encoded: Vec<Vec<u8>> = batch.iter().map(|n| encode(&n.ticket)).collect();
        let tokens = Arc::clone(&self.tokens);
        self.write_grouped(move |txn, staged| register_in(txn, &tokens, staged, &batch, &encoded))
            .await
    }

    async fn register_tickets_audited(
        &self,
        batch: Vec<NewTicket>,
        audit: AuditEntry,
    ) -> Result<Vec<RegisterOutcome>, StoreError> {
        let encoded: Vec<Vec<u8>> = batch.iter().map(|n| encode(&n.ticket)).collect();
        let (key, entry) = self.audit_row(&audit);
        let tokens = Arc::clone(&self.tokens);
        self.write_grouped(move |txn, staged| {
            let out = register_in(txn, &tokens, staged, &batch, &encoded)?;
            if RegisterOutcome::any_created(&out) {
                let mut t = txn.open_table(AUDIT).map_err(unavailable)?;
                t.insert(key.as_str(), entry.as_slice())
                    .map_err(unavailable)?;
            }
            Ok(out)
        })
        .await
    }

    async fn ticket(&self, id: &TicketId) -> Result<Option<Ticket>, StoreError> {
        self.read_ticket(id.as_str())
    }

    async fn ticket_by_token(&self, hash: &SecretHash) -> Result<Option<Ticket>, StoreError> {
        // copied out (nearly always one key), so that no read of the disk holds up a publish
        let candidates = self
            .tokens
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .candidates(hash)
            .to_vec();
        if candidates.is_empty() {
            // an unknown token (a guess) costs a lookup in memory, not a read of the database
            return Ok(None);
        }
        // a key in the index was published after its commit, so this snapshot holds its ticket
        let read = self.db.begin_read().map_err(unavailable)?;
        let tickets = read.open_table(TICKETS).map_err(unavailable)?;
        holder_of(&tickets, &candidates, hash)
    }

    async fn revoke_ticket(&self, id: &TicketId) -> Result<Option<Ticket>, StoreError> {
        let key = ticket_key(id.as_str());
        let now = self.clock.now();
        let ticket = self
            .write(move |txn| {
                let mut tickets = txn.open_table(TICKETS).map_err(unavailable)?;
                let mut ticket: Ticket = match tickets.get(key.as_str()).map_err(unavailable)? {
                    Some(v) => decode("ticket", v.value())?,
                    None => return Ok(None),
                };
                if ticket.status != TicketStatus::Revoked {
                    ticket.status = TicketStatus::Revoked;
                    ticket.revoked_at = Some(now.to_datetime());
                    tickets
                        .insert(key.as_str(), encode(&ticket).as_slice())
                        .map_err(unavailable)?;
                }
                Ok(Some(ticket))
            })
            .await?;
        if let Some(t) = &ticket {
            // after the durable write, under the lock every admit and renewal takes: from here on none
            // of them succeeds, and the sessions alive now end (a ticket never played gets a record,
            // so an admit that read the ticket before the revoke cannot seat it after)
            self.with_runtime(id, Some(&t.terms.show_id), |rt, now| {
                rt.revoked = true;
                rt.leases.end_all(EndReason::Revoked { at: now })
            });
        }
        Ok(ticket)
    }

    async fn ticket_activity(&self, id: &TicketId) -> Result<TicketActivity, StoreError> {
        let now = self.clock.now();
        let rt = lock(&self.runtime);
        Ok(match rt.tickets.get(id) {
            Some(t) => TicketActivity {
                usage: t.leases.usage.clone(),
                live: t
                    .leases
                    .live(now)
                    .filter_map(|l| Runtime::session_info(t, id, &l.session_id, now))
                    .collect(),
            },
            None => TicketActivity {
                usage: Default::default(),
                live: Vec::new(),
            },
        })
    }

    async fn erase_personal_data(&self, id: &TicketId) -> Result<Erased, StoreError> {
        let erased = self.with_runtime(id, None, |rt, now| {
            rt.leases.drop_expired(now);
            rt.leases.erase_personal_data()
        });
        let Some((erased, ..)) = erased else {
            return Ok(Erased::default());
        };
        // the ticket is dirty now: the flush writes it (and whatever else changed) durably
        self.flush().await?;
        Ok(erased)
    }

    async fn retain_usage(&self, rules: &Retention) -> Result<RetentionBatch, StoreError> {
        // in pieces with the lock let go between them, as the sweep: not on the runtime
        let (runtime, rules, at) = (
            Arc::clone(&self.runtime),
            *rules,
            Arc::clone(&self.retention_at),
        );
        tokio::task::spawn_blocking(move || retain(&runtime, &rules, &at))
            .await
            .map_err(|e| StoreError::Unavailable(format!("retention task failed: {e}")))
    }

    async fn claim_retention_pass(&self, _rest: std::time::Duration) -> Result<bool, StoreError> {
        Ok(true)
    }

    async fn admit(&self, req: AdmitRequest) -> Result<AdmitDecision, StoreError> {
        let rules: SeatRules = req.rules;
        let (decision, ..) = self
            .with_runtime(&req.ticket_id, Some(&req.show_id), |rt, now| {
                if rt.revoked {
                    return AdmitDecision::Revoked;
                }
                // the terms never change, so the caller's copy serves every later heartbeat, which
                // would otherwise read the ticket once. `revoked` stays as it is: the caller read the
                // ticket active after this process opened the store, and a revocation is for good, so
                // none was missed before; one after sets the flag itself
                rt.bounds.get_or_insert(req.bounds);
                let l = &mut rt.leases;
                let decision = l.admit(
                    &req.device_id,
                    &req.device_label,
                    req.presented.as_ref(),
                    req.fresh,
                    SessionId::generate(),
                    rules,
                    now,
                );
                if let AdmitDecision::Admitted { reattached, .. } = &decision {
                    if !reattached {
                        // a pass through the show's door is used up by this seat, under the same lock
                        // as the lease (the door reads both under it too)
                        if let Some(d) = lock(&self.doors).get_mut(&req.show_id) {
                            d.entered(&req.ticket_id);
                        }
                    }
                    if let Some(country) = req.country {
                        l.saw_country(country, now);
                    }
                    if let Some(address) = req.address {
                        l.saw_address(address, now);
                    }
                }
                decision
            })
            .expect("admit creates the ticket's runtime");
        Ok(decision)
    }

    async fn heartbeat(
        &self,
        session: &SessionId,
        presented: Presented<'_>,
    ) -> Result<HeartbeatAnswer, StoreError> {
        // the session's ticket and whether its bounds are known, under one acquisition of the lock
        let found = {
            let rt = lock(&self.runtime);
            rt.sessions.get(session).map(|ticket| {
                let known = rt.tickets.get(ticket).and_then(|t| t.bounds);
                (ticket.clone(), known)
            })
        };
        let Some((ticket, known)) = found else {
            return Ok(HeartbeatAnswer {
                decision: HeartbeatDecision::Unknown,
                owner: None,
                ticket: None,
            });
        };
        // the ticket's bounds and status are read once per process (the terms never change; a revoke
        // sets the flag itself): before the step, so a lease restored from a flush older than the
        // ticket's revocation never renews
        if known.is_none()
            && let Some(t) = self.read_ticket(ticket.as_str())?
            && let Some(rt) = lock(&self.runtime).tickets.get_mut(&ticket)
        {
            rt.bounds = Some(t.bounds());
            rt.revoked |= t.status == TicketStatus::Revoked;
        }
        let step = self.with_runtime_weighed(&ticket, None, |rt, now| {
            let before = heavy_shape(&rt.leases);
            let revoked = rt.revoked;
            if revoked {
                rt.leases.end_all(EndReason::Revoked { at: now });
            }
            let decision = rt.leases.heartbeat(session, presented, now);
            // a plain renewal changes the leases and last-seen times only: the flush writes those
            let whole = revoked
                || !matches!(decision, HeartbeatDecision::Renewed { .. })
                || heavy_shape(&rt.leases) != before;
            (decision, whole)
        });
        Ok(match step {
            Some((decision, show, bounds)) => HeartbeatAnswer {
                decision,
                owner: Some((ticket, show)),
                ticket: bounds,
            },
            None => HeartbeatAnswer {
                decision: HeartbeatDecision::Unknown,
                owner: None,
                ticket: None,
            },
        })
    }

    async fn end_session(
        &self,
        session: &SessionId,
        reason: EndReason,
    ) -> Result<bool, StoreError> {
        let ticket = lock(&self.runtime).sessions.get(session).cloned();
        let Some(ticket) = ticket else {
            return Ok(false);
        };
        Ok(self
            .with_ticket(&ticket, None, |l, now| {
                l.drop_expired(now);
                l.end_session(session, reason)
            })
            .is_some_and(|(ended, ..)| ended))
    }

    async fn leave(
        &self,
        session: &SessionId,
        secret: &SecretHash,
    ) -> Result<LeaveDecision, StoreError> {
        let ticket = lock(&self.runtime).sessions.get(session).cloned();
        let Some(ticket) = ticket else {
            return Ok(LeaveDecision::NotLive);
        };
        Ok(self
            .with_ticket(&ticket, None, |l, now| l.leave(session, secret, now))
            .map_or(LeaveDecision::NotLive, |(d, ..)| d))
    }

    async fn live_session(&self, session: &SessionId) -> Result<Option<SessionInfo>, StoreError> {
        let now = self.clock.now();
        let rt = lock(&self.runtime);
        Ok(rt.sessions.get(session).and_then(|tid| {
            rt.tickets
                .get(tid)
                .and_then(|t| Runtime::session_info(t, tid, session, now))
        }))
    }

    async fn sessions(&self, show: Option<&ShowId>) -> Result<Vec<SessionInfo>, StoreError> {
        let now = self.clock.now();
        let rt = lock(&self.runtime);
        let mut out: Vec<SessionInfo> = rt
            .tickets
            .iter()
            .filter(|(_, t)| show.is_none_or(|s| &t.show_id == s))
            .flat_map(|(id, t)| {
                t.leases
                    .live(now)
                    .filter_map(move |l| Runtime::session_info(t, id, &l.session_id, now))
            })
            .collect();
        out.sort_by(|a, b| {
            a.created_at
                .cmp(&b.created_at)
                .then_with(|| a.session_id.cmp(&b.session_id))
        });
        Ok(out)
    }

    async fn put_api_key(&self, key: ApiKey) -> Result<(), StoreError> {
        let bytes = encode(&key);
        let id = key.id.to_string();
        self.write(move |txn| {
            let mut t = txn.open_table(API_KEYS).map_err(unavailable)?;
            t.insert(id.as_str(), bytes.as_slice())
                .map_err(unavailable)?;
            Ok(())
        })
        .await?;
        self.api_keys
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(key.id.clone(), key);
        Ok(())
    }

    async fn api_key(&self, id: &ApiKeyId) -> Result<Option<ApiKey>, StoreError> {
        Ok(self
            .api_keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(id)
            .cloned())
    }

    async fn api_keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        let mut v: Vec<ApiKey> = self
            .api_keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        v.sort_by(|a, b| {
            a.created_at
                .cmp(&b.created_at)
                .then_with(|| a.id.cmp(&b.id))
        });
        Ok(v)
    }

    async fn delete_api_key(&self, id: &ApiKeyId) -> Result<bool, StoreError> {
        let key = id.to_string();
        let existed = self
            .write(move |txn| {
                let mut t = txn.open_table(API_KEYS).map_err(unavailable)?;
                Ok(t.remove(key.as_str()).map_err(unavailable)?.is_some())
            })
            .await?;
        self.api_keys
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(id);
        Ok(existed)
    }

    async fn touch_api_key(&self, id: &ApiKeyId) -> Result<(), StoreError> {
        let now = self.clock.now();
        if let Some(k) = self
            .api_keys
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get_mut(id)
        {
            // a second's precision is plenty for "last used"; skip the write when nothing changes
            if k.last_used_at.is_none_or(|t| now.0 - t.0 >= 1000) {
                k.last_used_at = Some(now);
                lock(&self.keys_dirty).insert(id.clone());
            }
        }
        Ok(())
    }

    async fn put_cdn(&self, mut cdn: Cdn) -> Result<PutOutcome, StoreError> {
        let _serial = self.cdn_writes.lock().await;
        // the health belongs to the prober (`set_cdn_health`); the mirror is current under the lock
        if let Some(old) = self
            .cdns
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&cdn.id)
        {
            cdn.health = old.health.clone();
        }
        let key = cdn.id.to_string();
        let outcome = self
            .put_mirrored(CDNS, &self.cdns, key, cdn.id.clone(), cdn)
            .await;
        self.cdn_generation.fetch_add(1, Ordering::SeqCst);
        outcome
    }

    async fn cdn(&self, id: &CdnId) -> Result<Option<Cdn>, StoreError> {
        Ok(self
            .cdns
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(id)
            .cloned())
    }

    async fn cdns(&self) -> Result<Vec<Cdn>, StoreError> {
        Ok(sorted_values(&self.cdns))
    }

    fn cdns_generation(&self) -> Option<u64> {
        Some(self.cdn_generation.load(Ordering::SeqCst))
    }

    async fn set_cdn_health(&self, id: &CdnId, health: CdnHealth) -> Result<bool, StoreError> {
        let _serial = self.cdn_writes.lock().await;
        let key = id.to_string();
        let updated = self
            .write(move |txn| {
                let mut t = txn.open_table(CDNS).map_err(unavailable)?;
                let old = t
                    .get(key.as_str())
                    .map_err(unavailable)?
                    .map(|v| decode::<Cdn>("cdn", v.value()));
                let Some(cdn) = old else {
                    return Ok(None);
                };
                let mut cdn = cdn?;
                cdn.health = health;
                t.insert(key.as_str(), encode(&cdn).as_slice())
                    .map_err(unavailable)?;
                Ok(Some(cdn))
            })
            .await?;
        let Some(cdn) = updated else {
            return Ok(false);
        };
        self.cdns
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(cdn.id.clone(), cdn);
        self.cdn_generation.fetch_add(1, Ordering::SeqCst);
        Ok(true)
    }

    async fn delete_cdn(&self, id: &CdnId) -> Result<bool, StoreError> {
        let _serial = self.cdn_writes.lock().await;
        let key = id.to_string();
        let existed = self
            .write(move |txn| {
                let mut t = txn.open_table(CDNS).map_err(unavailable)?;
                Ok(t.remove(key.as_str()).map_err(unavailable)?.is_some())
            })
            .await?;
        self.cdns
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(id);
        self.cdn_generation.fetch_add(1, Ordering::SeqCst);
        Ok(existed)
    }

    async fn tickets_by_external_ref(
        &self,
        external_ref: &str,
        limit: usize,
    ) -> Result<Vec<Ticket>, StoreError> {
        // one key range of the index, oldest first, and at most `limit` ticket reads
        let read = self.db.begin_read().map_err(unavailable)?;
        let index = read.open_table(EXTREF_INDEX).map_err(unavailable)?;
        let tickets = read.open_table(TICKETS).map_err(unavailable)?;
        let prefix = format!("{external_ref}\0");
        let mut out = Vec::new();
        for row in index.range(prefix.as_str()..).map_err(unavailable)? {
            if out.len() >= limit {
                break;
            }
            let (k, id) = row.map_err(unavailable)?;
            if !k.value().starts_with(&prefix) {
                break;
            }
            match tickets
                .get(ticket_key(id.value()).as_str())
                .map_err(unavailable)?
            {
                Some(v) => out.push(decode::<Ticket>("ticket", v.value())?),
                None => {
                    return Err(StoreError::Corrupt(format!(
                        "external reference index names missing ticket {}",
                        id.value()
                    )));
                }
            }
        }
        Ok(out)
    }

    async fn poster(&self, show: &ShowId) -> Result<Option<(String, Vec<u8>)>, StoreError> {
        let read = self.db.begin_read().map_err(unavailable)?;
        let table = read.open_table(POSTERS).map_err(unavailable)?;
        let Some(v) = table.get(show.as_str()).map_err(unavailable)? else {
            return Ok(None);
        };
        let bytes = v.value();
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
        let key = show.to_string();
        self.write(move |txn| {
            let mut t = txn.open_table(POSTERS).map_err(unavailable)?;
            match poster {
                Some((ctype, bytes)) => {
                    let mut v = ctype.into_bytes();
                    v.push(0);
                    v.extend_from_slice(&bytes);
                    t.insert(key.as_str(), v.as_slice()).map_err(unavailable)?;
                }
                None => {
                    t.remove(key.as_str()).map_err(unavailable)?;
                }
            }
            Ok(())
        })
        .await
    }

    async fn stream_key(&self, show: &ShowId) -> Result<Option<StreamKeyRecord>, StoreError> {
        let read = self.db.begin_read().map_err(unavailable)?;
        let table = read.open_table(STREAM_KEYS).map_err(unavailable)?;
        match table.get(show.as_str()).map_err(unavailable)? {
            Some(v) => decode("stream key", v.value()).map(Some),
            None => Ok(None),
        }
    }

    async fn put_stream_key(
        &self,
        show: &ShowId,
        record: Option<StreamKeyRecord>,
    ) -> Result<(), StoreError> {
        let key = show.to_string();
        let bytes = record.as_ref().map(encode);
        self.write(move |txn| {
            let mut t = txn.open_table(STREAM_KEYS).map_err(unavailable)?;
            match bytes {
                Some(b) => {
                    t.insert(key.as_str(), b.as_slice()).map_err(unavailable)?;
                }
                None => {
                    t.remove(key.as_str()).map_err(unavailable)?;
                }
            }
            Ok(())
        })
        .await
    }

    async fn put_content_key(
        &self,
        id: &ContentKeyId,
        record: ContentKeyRecord,
    ) -> Result<bool, StoreError> {
        let key = id.to_string();
        let bytes = encode(&record);
        self.write(move |txn| {
            let mut t = txn.open_table(CONTENT_KEYS).map_err(unavailable)?;
            if t.get(key.as_str()).map_err(unavailable)?.is_some() {
                return Ok(false);
            }
            t.insert(key.as_str(), bytes.as_slice())
                .map_err(unavailable)?;
            Ok(true)
        })
        .await
    }

    async fn content_key(&self, id: &ContentKeyId) -> Result<Option<ContentKeyRecord>, StoreError> {
        let read = self.db.begin_read().map_err(unavailable)?;
        let table = read.open_table(CONTENT_KEYS).map_err(unavailable)?;
        match table.get(id.as_str()).map_err(unavailable)? {
            Some(v) => decode("content key", v.value()).map(Some),
            None => Ok(None),
        }
    }

    async fn create_admin_user(&self, user: AdminUser) -> Result<bool, StoreError> {
        let _serial = self.user_writes.lock().await;
        let key = user.name.to_string();
        let bytes = encode(&user);
        let created = self
            .write(move |txn| {
                let mut t = txn.open_table(ADMIN_USERS).map_err(unavailable)?;
                if t.get(key.as_str()).map_err(unavailable)?.is_some() {
                    return Ok(false);
                }
                t.insert(key.as_str(), bytes.as_slice())
                    .map_err(unavailable)?;
                Ok(true)
            })
            .await?;
        if created {
            self.admin_users
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(user.name.clone(), user);
        }
        Ok(created)
    }

    async fn change_admin_user(
        &self,
        name: &UserName,
        change: UserChange,
    ) -> Result<Option<AdminUser>, StoreError> {
        let _serial = self.user_writes.lock().await;
        let key = name.to_string();
        let changed = self
            .write(move |txn| {
                let mut t = txn.open_table(ADMIN_USERS).map_err(unavailable)?;
                let mut user: AdminUser = match t.get(key.as_str()).map_err(unavailable)? {
                    Some(v) => decode("admin user", v.value())?,
                    None => return Ok(None),
                };
                change.apply(&mut user);
                t.insert(key.as_str(), encode(&user).as_slice())
                    .map_err(unavailable)?;
                Ok(Some(user))
            })
            .await?;
        if let Some(user) = &changed {
            self.admin_users
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(user.name.clone(), user.clone());
        }
        Ok(changed)
    }

    async fn admin_user(&self, name: &UserName) -> Result<Option<AdminUser>, StoreError> {
        Ok(self
            .admin_users
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(name)
            .cloned())
    }

    async fn admin_users(&self) -> Result<Vec<AdminUser>, StoreError> {
        Ok(sorted_values(&self.admin_users))
    }

    async fn delete_admin_user(&self, name: &UserName) -> Result<bool, StoreError> {
        let _serial = self.user_writes.lock().await;
        let key = name.to_string();
        let sessions: Vec<String> = self
            .console_sessions
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .filter(|s| &s.user == name)
            .map(|s| s.id.to_hex())
            .collect();
        let existed = self
            .write(move |txn| {
                let mut t = txn.open_table(ADMIN_USERS).map_err(unavailable)?;
                let existed = t.remove(key.as_str()).map_err(unavailable)?.is_some();
                let mut cs = txn.open_table(CONSOLE_SESSIONS).map_err(unavailable)?;
                for s in &sessions {
                    cs.remove(s.as_str()).map_err(unavailable)?;
                }
                Ok(existed)
            })
            .await?;
        self.admin_users
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(name);
        self.console_sessions
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|_, s| &s.user != name);
        Ok(existed)
    }

    async fn put_console_session(&self, session: ConsoleSession) -> Result<(), StoreError> {
        let key = session.id.to_hex();
        let bytes = encode(&session);
        let now = self.clock.now();
        // lapsed sessions go when a new one comes (a login), rows and memory together
        let lapsed: Vec<SecretHash> = self
            .console_sessions
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .filter(|s| s.expires_at <= now)
            .map(|s| s.id)
            .collect();
        let lapsed_keys: Vec<String> = lapsed.iter().map(SecretHash::to_hex).collect();
        self.write(move |txn| {
            let mut t = txn.open_table(CONSOLE_SESSIONS).map_err(unavailable)?;
            for k in &lapsed_keys {
                t.remove(k.as_str()).map_err(unavailable)?;
            }
            t.insert(key.as_str(), bytes.as_slice())
                .map_err(unavailable)?;
            Ok(())
        })
        .await?;
        let mut all = self
            .console_sessions
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for id in &lapsed {
            all.remove(id);
        }
        all.insert(session.id, session);
        Ok(())
    }

    async fn console_session(&self, id: &SecretHash) -> Result<Option<ConsoleSession>, StoreError> {
        let now = self.clock.now();
        Ok(self
            .console_sessions
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(id)
            .filter(|s| s.expires_at > now && s.id.ct_eq(id))
            .cloned())
    }

    async fn touch_console_session(
        &self,
        id: &SecretHash,
        expires_at: UnixMs,
    ) -> Result<(), StoreError> {
        let now = self.clock.now();
        if let Some(s) = self
            .console_sessions
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get_mut(id)
        {
            s.last_seen = now;
            s.expires_at = expires_at;
        }
        Ok(())
    }

    async fn delete_console_session(&self, id: &SecretHash) -> Result<bool, StoreError> {
        let key = id.to_hex();
        self.write(move |txn| {
            let mut t = txn.open_table(CONSOLE_SESSIONS).map_err(unavailable)?;
            t.remove(key.as_str()).map_err(unavailable)?;
            Ok(())
        })
        .await?;
        Ok(self
            .console_sessions
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(id)
            .is_some())
    }

    async fn end_console_sessions(
        &self,
        user: &UserName,
        keep: Option<&SecretHash>,
    ) -> Result<u64, StoreError> {
        let ending: Vec<SecretHash> = self
            .console_sessions
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .filter(|s| &s.user == user && keep.is_none_or(|k| !s.id.ct_eq(k)))
            .map(|s| s.id)
            .collect();
        if ending.is_empty() {
            return Ok(0);
        }
        let keys: Vec<String> = ending.iter().map(SecretHash::to_hex).collect();
        self.write(move |txn| {
            let mut t = txn.open_table(CONSOLE_SESSIONS).map_err(unavailable)?;
            for k in &keys {
                t.remove(k.as_str()).map_err(unavailable)?;
            }
            Ok(())
        })
        .await?;
        let mut all = self
            .console_sessions
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for id in &ending {
            all.remove(id);
        }
        Ok(ending.len() as u64)
    }

    async fn login_attempt(&self, key: &str, rule: &Backoff) -> Result<LoginGate, StoreError> {
        let mut all = lock(&self.login_failures);
        // the time is read under the lock: read before it, an attempt that waited for the lock would
        // find the wait its successor set in what is, for it, the future, and be refused
        let now = self.clock.now();
        if all.len() >= MAX_LOGIN_KEYS && !all.contains_key(key) {
            make_room(&mut all, now);
        }
        let a = all.entry(key.to_owned()).or_insert(Attempts {
            count: 0,
            wait_until: UnixMs(0),
            forget_at: now,
        });
        if a.forget_at <= now {
            *a = Attempts {
                count: 0,
                wait_until: UnixMs(0),
                forget_at: now,
            };
        }
        if a.wait_until > now {
            return Ok(LoginGate::Wait {
                retry_after_ms: a.wait_until.0 - now.0,
            });
        }
        a.count = a.count.saturating_add(1);
        let wait = rule.wait_after(a.count);
        // no wait is no instant to wait for (a clock that steps back must not make one)
        a.wait_until = if wait > 0 {
            UnixMs(now.0 + wait)
        } else {
            UnixMs(0)
        };
        a.forget_at = UnixMs(now.0 + rule.keep_ms(wait));
        Ok(LoginGate::Allowed { attempts: a.count })
    }

    async fn undo_login_attempt(&self, key: &str, rule: &Backoff) -> Result<(), StoreError> {
        if let Some(a) = lock(&self.login_failures).get_mut(key) {
            a.count = a.count.saturating_sub(1);
            if a.count < rule.free {
                a.wait_until = UnixMs(0);
            }
        }
        Ok(())
    }

    async fn clear_login_failures(&self, key: &str) -> Result<(), StoreError> {
        lock(&self.login_failures).remove(key);
        Ok(())
    }

    async fn append_audit(&self, entry: AuditEntry) -> Result<(), StoreError> {
        let (key, bytes) = self.audit_row(&entry);
        self.write_grouped(move |txn, _| {
            let mut t = txn.open_table(AUDIT).map_err(unavailable)?;
            t.insert(key.as_str(), bytes.as_slice())
                .map_err(unavailable)?;
            Ok(())
        })
        .await
    }

    async fn audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>, StoreError> {
        // a scan of up to AUDIT_SCAN_LIMIT rows: off the async runtime, so heartbeats never wait for it
        let (db, filter) = (Arc::clone(&self.db), filter.clone());
        tokio::task::spawn_blocking(move || {
            let read = db.begin_read().map_err(unavailable)?;
            let table = read.open_table(AUDIT).map_err(unavailable)?;
            let mut out = Vec::new();
            let until = filter.until.map(|u| format!("{:016x}", u.0.max(0)));
            let rows = match &until {
                // entries before `until` only: start the newest-first walk there
                Some(u) => table.range(..u.as_str()).map_err(unavailable)?,
                None => table.iter().map_err(unavailable)?,
            };
            for row in rows.rev().take(AUDIT_SCAN_LIMIT) {
                if out.len() >= filter.limit {
                    break;
                }
                let (_, v) = row.map_err(unavailable)?;
                let e: AuditEntry = decode("audit entry", v.value())?;
                if filter.since.is_some_and(|s| e.at < s) {
                    break;
                }
                if filter.matches(&e) {
                    out.push(e);
                }
            }
            Ok(out)
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("audit read task failed: {e}")))?
    }

    async fn prune_audit(&self, before: UnixMs, max_rows: u64) -> Result<u64, StoreError> {
        let cutoff = format!("{:016x}", before.0.max(0));
        self.write(move |txn| {
            let mut t = txn.open_table(AUDIT).map_err(unavailable)?;
            let mut dropped = 0;
            while dropped < PRUNE_BATCH {
                let beyond_cap = t.len().map_err(unavailable)? > max_rows;
                let prune = match t.first().map_err(unavailable)? {
                    Some((k, _)) => beyond_cap || k.value() < cutoff.as_str(),
                    None => false,
                };
                if !prune {
                    break;
                }
                t.pop_first().map_err(unavailable)?;
                dropped += 1;
            }
            Ok(dropped)
        })
        .await
    }

    async fn live_session_counts(&self) -> Result<Vec<(ShowId, u64)>, StoreError> {
        // the counts are kept as leases change: a copy of one small map, no walk over the tickets
        let rt = lock(&self.runtime);
        Ok(rt.held.iter().map(|(s, n)| (s.clone(), *n)).collect())
    }

    async fn add_outcome_counts(&self, counts: Vec<OutcomeCount>) -> Result<(), StoreError> {
        let horizon = self.clock.now().0 - OUTCOMES_KEPT_MS;
        let mut all = lock(&self.outcomes);
        for c in counts {
            *all.entry((c.minute.0, c.outcome)).or_default() += c.count;
        }
        all.retain(|(minute, _), _| *minute >= horizon);
        Ok(())
    }

    async fn outcome_counts(&self, since: UnixMs) -> Result<Vec<OutcomeCount>, StoreError> {
        Ok(lock(&self.outcomes)
            .range((since.0, String::new())..)
            .map(|((minute, outcome), count)| OutcomeCount {
                minute: UnixMs(*minute),
                outcome: outcome.clone(),
                count: *count,
            })
            .collect())
    }

    async fn flush(&self) -> Result<(), StoreError> {
        self.flush_pieces(false).await
    }

    async fn close(&self) -> Result<(), StoreError> {
        // the tickets whose newest renewals are in the log, and every ticket changed since the last
        // flush, are written whole: a release that reads only the whole records then finds every
        // renewal
        {
            let mut rt = lock(&self.runtime);
            let apart: Vec<TicketId> = rt
                .tickets
                .iter()
                .filter(|(_, t)| t.apart != 0)
                .map(|(id, _)| id.clone())
                .collect();
            for id in &apart {
                rt.changed(id, true);
            }
        }
        // every changed ticket whole, then the log entries those whole writes made obsolete
        self.flush_pieces(true).await?;
        self.flush_pieces(true).await
    }

    async fn sweep(&self) -> Result<u64, StoreError> {
        // a pass over every ticket, in pieces under the lock (a million sessions take a while): not on the
        // runtime
        let (runtime, now) = (Arc::clone(&self.runtime), self.clock.now());
        let dropped = tokio::task::spawn_blocking(move || sweep(&runtime, now))
            .await
            .map_err(|e| StoreError::Unavailable(format!("sweep task failed: {e}")))?;
        self.write(move |txn| {
            let mut t = txn.open_table(IDEMPOTENCY).map_err(unavailable)?;
            let mut lapsed = Vec::new();
            for row in t.iter().map_err(unavailable)? {
                let (k, v) = row.map_err(unavailable)?;
                let lapses = decode::<IdempotentRequest>("idempotency record", v.value())
                    .map_or(true, |r| r.expires_at <= now);
                if lapses {
                    lapsed.push(k.value().to_owned());
                    if lapsed.len() >= IDEMPOTENCY_SWEEP_BATCH {
                        break;
                    }
                }
            }
            for k in lapsed {
                t.remove(k.as_str()).map_err(unavailable)?;
            }
            let mut tv = txn.open_table(TV_CODES).map_err(unavailable)?;
            let mut lapsed = Vec::new();
            for row in tv.iter().map_err(unavailable)? {
                let (k, v) = row.map_err(unavailable)?;
                if decode::<TvRecord>("TV code", v.value()).map_or(true, |r| r.expires_at <= now) {
                    lapsed.push(k.value().to_owned());
                    if lapsed.len() >= IDEMPOTENCY_SWEEP_BATCH {
                        break;
                    }
                }
            }
            for k in lapsed {
                tv.remove(k.as_str()).map_err(unavailable)?;
            }
            // finished deliveries past their week
            let mut records = txn.open_table(DELIVERIES).map_err(unavailable)?;
            let mut log = txn.open_table(DELIVERY_LOG).map_err(unavailable)?;
            let mut old = Vec::new();
            for row in log.iter().map_err(unavailable)? {
                let (k, id) = row.map_err(unavailable)?;
                let Some(v) = records.get(id.value()).map_err(unavailable)? else {
                    old.push((k.value().to_owned(), None));
                    continue;
                };
                let d: Delivery = decode("delivery", v.value())?;
                if d.state != DeliveryState::Pending
                    && d.created_at.0 + FINISHED_DELIVERY_KEPT_MS <= now.0
                {
                    old.push((k.value().to_owned(), Some(d.id.to_string())));
                }
                if old.len() >= IDEMPOTENCY_SWEEP_BATCH {
                    break;
                }
            }
            for (k, id) in old {
                log.remove(k.as_str()).map_err(unavailable)?;
                if let Some(id) = id {
                    records.remove(id.as_str()).map_err(unavailable)?;
                }
            }
            Ok(())
        })
        .await?;
        Ok(dropped as u64)
    }

    async fn put_webhook(&self, endpoint: WebhookEndpoint) -> Result<PutOutcome, StoreError> {
        let (key, bytes) = (endpoint.id.to_string(), encode(&endpoint));
        self.write(move |txn| {
            let mut t = txn.open_table(WEBHOOKS).map_err(unavailable)?;
            let old = t
                .insert(key.as_str(), bytes.as_slice())
                .map_err(unavailable)?;
            Ok(if old.is_some() {
                PutOutcome::Replaced
            } else {
                PutOutcome::Created
            })
        })
        .await
    }

    async fn webhook(&self, id: &WebhookId) -> Result<Option<WebhookEndpoint>, StoreError> {
        let read = self.db.begin_read().map_err(unavailable)?;
        let table = read.open_table(WEBHOOKS).map_err(unavailable)?;
        match table.get(id.as_str()).map_err(unavailable)? {
            Some(v) => decode("webhook", v.value()).map(Some),
            None => Ok(None),
        }
    }

    async fn webhooks(&self) -> Result<Vec<WebhookEndpoint>, StoreError> {
        let read = self.db.begin_read().map_err(unavailable)?;
        let table = read.open_table(WEBHOOKS).map_err(unavailable)?;
        let mut out = Vec::new();
        for row in table.iter().map_err(unavailable)? {
            let (_, v) = row.map_err(unavailable)?;
            out.push(decode("webhook", v.value())?);
        }
        Ok(out)
    }

    async fn delete_webhook(&self, id: &WebhookId) -> Result<bool, StoreError> {
        let key = id.to_string();
        self.write(move |txn| {
            let mut t = txn.open_table(WEBHOOKS).map_err(unavailable)?;
            let gone = t.remove(key.as_str()).map_err(unavailable)?.is_some();
            Ok(gone)
        })
        .await
    }

    async fn enqueue_deliveries(&self, deliveries: Vec<Delivery>) -> Result<(), StoreError> {
        self.write(move |txn| {
            let mut records = txn.open_table(DELIVERIES).map_err(unavailable)?;
            let mut due = txn.open_table(DELIVERY_DUE).map_err(unavailable)?;
            let mut log = txn.open_table(DELIVERY_LOG).map_err(unavailable)?;
            for d in &deliveries {
                records
                    .insert(d.id.as_str(), encode(d).as_slice())
                    .map_err(unavailable)?;
                if d.state == DeliveryState::Pending {
                    due.insert(due_key(d).as_str(), d.id.as_str())
                        .map_err(unavailable)?;
                }
                log.insert(log_key(d).as_str(), d.id.as_str())
                    .map_err(unavailable)?;
            }
            Ok(())
        })
        .await
    }

    async fn claim_deliveries(
        &self,
        until: UnixMs,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        let now = self.clock.now();
        self.write(move |txn| {
            let mut records = txn.open_table(DELIVERIES).map_err(unavailable)?;
            let mut due = txn.open_table(DELIVERY_DUE).map_err(unavailable)?;
            let end = format!("{:016x}\u{1}", now.0.max(0));
            let mut keys = Vec::new();
            for row in due.range::<&str>(..end.as_str()).map_err(unavailable)? {
                let (k, v) = row.map_err(unavailable)?;
                keys.push((k.value().to_owned(), v.value().to_owned()));
                if keys.len() >= limit {
                    break;
                }
            }
            let mut out = Vec::new();
            for (key, id) in keys {
                due.remove(key.as_str()).map_err(unavailable)?;
                let Some(bytes) = records
                    .get(id.as_str())
                    .map_err(unavailable)?
                    .map(|v| v.value().to_vec())
                else {
                    continue;
                };
                let mut d: Delivery = decode("delivery", &bytes)?;
                d.next_attempt_at = until;
                due.insert(due_key(&d).as_str(), id.as_str())
                    .map_err(unavailable)?;
                records
                    .insert(id.as_str(), encode(&d).as_slice())
                    .map_err(unavailable)?;
                out.push(d);
            }
            Ok(out)
        })
        .await
    }

    async fn save_delivery(&self, delivery: Delivery) -> Result<(), StoreError> {
        self.write(move |txn| {
            let mut records = txn.open_table(DELIVERIES).map_err(unavailable)?;
            let mut due = txn.open_table(DELIVERY_DUE).map_err(unavailable)?;
            let old = records
                .get(delivery.id.as_str())
                .map_err(unavailable)?
                .map(|v| v.value().to_vec());
            if let Some(old) = old {
                let old: Delivery = decode("delivery", &old)?;
                due.remove(due_key(&old).as_str()).map_err(unavailable)?;
            }
            if delivery.state == DeliveryState::Pending {
                due.insert(due_key(&delivery).as_str(), delivery.id.as_str())
                    .map_err(unavailable)?;
            }
            records
                .insert(delivery.id.as_str(), encode(&delivery).as_slice())
                .map_err(unavailable)?;
            Ok(())
        })
        .await
    }

    async fn delivery(&self, id: &DeliveryId) -> Result<Option<Delivery>, StoreError> {
        let read = self.db.begin_read().map_err(unavailable)?;
        let table = read.open_table(DELIVERIES).map_err(unavailable)?;
        match table.get(id.as_str()).map_err(unavailable)? {
            Some(v) => decode("delivery", v.value()).map(Some),
            None => Ok(None),
        }
    }

    async fn deliveries(
        &self,
        endpoint: &WebhookId,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        let read = self.db.begin_read().map_err(unavailable)?;
        let log = read.open_table(DELIVERY_LOG).map_err(unavailable)?;
        let records = read.open_table(DELIVERIES).map_err(unavailable)?;
        let (start, end) = (format!("{endpoint}\0"), format!("{endpoint}\u{1}"));
        let mut out = Vec::new();
        for row in log
            .range::<&str>(start.as_str()..end.as_str())
            .map_err(unavailable)?
            .rev()
        {
            let (_, id) = row.map_err(unavailable)?;
            if let Some(v) = records.get(id.value()).map_err(unavailable)? {
                out.push(decode("delivery", v.value())?);
                if out.len() >= limit {
                    break;
                }
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
        let (key, now) = (key.to_owned(), self.clock.now());
        let claim = encode(&IdempotentRequest {
            fingerprint: fingerprint.to_owned(),
            answer: None,
            expires_at: until,
        });
        // redb has one writer at a time: the read and the insert are one step
        self.write(move |txn| {
            let mut t = txn.open_table(IDEMPOTENCY).map_err(unavailable)?;
            if let Some(v) = t.get(key.as_str()).map_err(unavailable)? {
                let held: IdempotentRequest = decode("idempotency record", v.value())?;
                if held.expires_at > now {
                    return Ok(IdempotencyClaim::Held(held));
                }
            }
            t.insert(key.as_str(), claim.as_slice())
                .map_err(unavailable)?;
            Ok(IdempotencyClaim::Claimed)
        })
        .await
    }

    async fn finish_idempotency(
        &self,
        key: &str,
        record: IdempotentRequest,
    ) -> Result<(), StoreError> {
        let (key, bytes) = (key.to_owned(), encode(&record));
        self.write(move |txn| {
            let mut t = txn.open_table(IDEMPOTENCY).map_err(unavailable)?;
            t.insert(key.as_str(), bytes.as_slice())
                .map_err(unavailable)?;
            Ok(())
        })
        .await
    }

    async fn release_idempotency(&self, key: &str) -> Result<(), StoreError> {
        let key = key.to_owned();
        self.write(move |txn| {
            let mut t = txn.open_table(IDEMPOTENCY).map_err(unavailable)?;
            t.remove(key.as_str()).map_err(unavailable)?;
            Ok(())
        })
        .await
    }

    async fn door(
        &self,
        show: &ShowId,
        ticket: &TicketId,
        rules: DoorRules,
    ) -> Result<DoorAnswer, StoreError> {
        let now = self.clock.now();
        // the leases the show holds (kept as leases change; a lapsed one counts until the sweep drops
        // it, so the door may let in a little late, never too many), read under the lock an admit
        // takes a seat and uses up its pass under: no seat is counted twice or not at all
        let rt = lock(&self.runtime);
        let held = rt.held.get(show).copied().unwrap_or(0);
        let answer = lock(&self.doors)
            .entry(show.clone())
            .or_default()
            .ask(ticket, rules, held, now);
        drop(rt);
        Ok(answer)
    }

    async fn create_tv_code(
        &self,
        user_code: &SecretHash,
        code: TvCode,
    ) -> Result<bool, StoreError> {
        let (key, now) = (user_code.to_hex(), self.clock.now());
        let record = encode(&TvRecord {
            device_secret: code.device_secret,
            expires_at: code.expires_at,
            interval_s: code.interval_s,
            last_poll_at: None,
            approval: None,
        });
        self.write(move |txn| {
            let mut t = txn.open_table(TV_CODES).map_err(unavailable)?;
            if let Some(v) = t.get(key.as_str()).map_err(unavailable)? {
                let held: TvRecord = decode("TV code", v.value())?;
                if held.expires_at > now {
                    return Ok(false);
                }
            }
            t.insert(key.as_str(), record.as_slice())
                .map_err(unavailable)?;
            Ok(true)
        })
        .await
    }

    async fn approve_tv_code(
        &self,
        user_code: &SecretHash,
        approval: TvApproval,
    ) -> Result<TvApproveOutcome, StoreError> {
        let (key, now) = (user_code.to_hex(), self.clock.now());
        self.write(move |txn| {
            let mut t = txn.open_table(TV_CODES).map_err(unavailable)?;
            let Some(mut record) = t
                .get(key.as_str())
                .map_err(unavailable)?
                .map(|v| decode::<TvRecord>("TV code", v.value()))
                .transpose()?
            else {
                return Ok(TvApproveOutcome::Unknown);
            };
            if record.expires_at <= now {
                return Ok(TvApproveOutcome::Unknown);
            }
            if record.approval.is_some() {
                return Ok(TvApproveOutcome::AlreadyApproved);
            }
            record.approval = Some(approval);
            t.insert(key.as_str(), encode(&record).as_slice())
                .map_err(unavailable)?;
            Ok(TvApproveOutcome::Approved)
        })
        .await
    }

    async fn poll_tv_code(
        &self,
        user_code: &SecretHash,
        device_secret: &SecretHash,
    ) -> Result<TvPoll, StoreError> {
        let (key, secret, now) = (user_code.to_hex(), *device_secret, self.clock.now());
        self.write(move |txn| {
            let mut t = txn.open_table(TV_CODES).map_err(unavailable)?;
            let Some(mut record) = t
                .get(key.as_str())
                .map_err(unavailable)?
                .map(|v| decode::<TvRecord>("TV code", v.value()))
                .transpose()?
            else {
                return Ok(TvPoll::Unknown);
            };
            if record.expires_at <= now || record.device_secret != secret {
                return Ok(TvPoll::Unknown);
            }
            if let Some(approval) = record.approval.take() {
                t.remove(key.as_str()).map_err(unavailable)?;
                return Ok(TvPoll::Approved(approval));
            }
            let early = record.last_poll_at.is_some_and(|last| {
                now.0 < last.0 + i64::from(record.interval_s) * 1000 - TV_POLL_SLACK_MS
            });
            if early {
                record.interval_s += 5;
            }
            record.last_poll_at = Some(now);
            t.insert(key.as_str(), encode(&record).as_slice())
                .map_err(unavailable)?;
            let interval_s = record.interval_s;
            Ok(if early {
                TvPoll::SlowDown { interval_s }
            } else {
                TvPoll::Pending { interval_s }
            })
        })
        .await
    }

    async fn backup(&self, dest: &Path) -> Result<BackupInfo, StoreError> {
        // the leases live in memory and are flushed every second: make the latest ones part of the copy
        self.flush().await?;
        crate::snapshot::write(self.database(), BYTE_TABLES, TEXT_TABLES, dest).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use usher_core::ids::DeviceId;
    use usher_core::lease::Lease;
    use usher_core::secret::SecretHasher;
    use usher_core::session_secret::SecretChain;

    fn entry() -> Vec<(TicketId, Renewals)> {
        let h = SecretHasher::new(&[5u8; 32]);
        let lease = Lease {
            session_id: SessionId::generate(),
            device_id: DeviceId::parse("device-000001").unwrap(),
            device_label: "Firefox on Linux".into(),
            created_at: UnixMs(1_000),
            renewed_at: UnixMs(2_000),
            expires_at: UnixMs(62_000),
            ttl_ms: 60_000,
            secret: SecretChain {
                previous: Some(h.session_secret("p")),
                issued: vec![h.session_secret("i1"), h.session_secret("i2")],
                retired: vec![h.session_secret("r")],
            },
        };
        vec![(
            TicketId::generate(),
            Renewals {
                leases: vec![lease],
                last_seen_at: Some(UnixMs(2_000)),
            },
        )]
    }

    #[test]
    fn a_packed_entry_reads_back_as_written_and_is_smaller_than_json() {
        let written = entry();
        let json = encode(&written);
        let packed = pack_renewals(written.clone());
        assert!(
            packed.len() * 2 < json.len(),
            "{} vs {}",
            packed.len(),
            json.len()
        );
        let read = unpack_renewals(&packed).unwrap();
        assert_eq!(encode(&read), json);
    }

    #[test]
    fn a_damaged_entry_is_refused_as_corrupt() {
        let packed = pack_renewals(entry());
        let mut newer = packed.clone();
        newer[0] = PACKED_FORM + 1;
        let mut trailing = packed.clone();
        trailing.push(0);
        for (what, bytes) in [
            ("empty", Vec::new()),
            ("a newer form", newer),
            ("cut short", packed[..packed.len() - 3].to_vec()),
            ("bytes after it", trailing),
            ("JSON", encode(&entry())),
        ] {
            match unpack_renewals(&bytes) {
                Err(StoreError::Corrupt(why)) => {
                    assert!(why.starts_with("lease renewals"), "{why}")
                }
                other => panic!("{what}: {other:?}"),
            }
        }
    }
}
