//! The origin's lease checks answered from the node's memory for as long as Redis has not said that the
//! ticket's seats changed: server-assisted client-side caching (`CLIENT TRACKING`, RESP3).
//!
//! Why: every media request (`/o/…`) that misses the origin's own kept answers (250 ms) asks whether its
//! session still holds its seat; a player asks every few seconds (each playlist and segment), and its
//! lease changes only when the seats are written (a renewal every heartbeat interval, an admit, a
//! takeover, an end, a revoke). Each such check was a round trip to the one Redis every node shares.
//!
//! How: one connection of the node's own, in RESP3 with `CLIENT TRACKING on`, reads the lease fields
//! (`HMGET seats show_id l:<sid> h:<sid>`). Redis then remembers that this connection read the seats and,
//! on the next write of that key by anyone (or its expiry, eviction, a flush), pushes an invalidation on
//! the same connection; the node forgets what it kept of that key as the push arrives. An answer kept is
//! served while the connection is known alive: a `PING` answered less than [`ALIVE`] ago, one sent
//! every [`PING_EVERY`]. A connection that fails, or whose `PING` fails, drops everything kept. So a kept
//! answer is at most as old as the push's way from Redis (or, on a connection that dies without a word,
//! [`ALIVE`]), where the read it replaces was as old as its own round trip.
//!
//! The race: a write may follow the read on Redis while the read's answer is still on its way to the
//! check that asked. Its invalidation comes after the answer on the connection, but may be handled
//! before the asker keeps the answer. So an entry carries a token taken before its first read, and an
//! invalidation (or a lost connection) removes the entry with its token: an answer is kept only where
//! the entry it was read for is still there with the same token, that is, no invalidation of the key
//! came since before the read was sent. (redis-rs's own client-side cache, the `cache-aio` feature,
//! keeps what it read after the fact and so can keep an answer older than the invalidation it missed:
//! not good enough for a check that stops a shared ticket.)
//!
//! A Redis Cluster keeps the read on its shared connection: its client has no connection of its own per
//! master to track on. A Redis that refuses RESP3 or tracking (older than 6, a proxy) likewise.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, ProtocolVersion, PushInfo, PushKind, Value};
use usher_core::store::SessionInfo;

/// How long after a `PING` was sent that it answered keeps the connection trusted.
const ALIVE: Duration = Duration::from_millis(1_500);
/// How often the connection is asked whether it is alive.
const PING_EVERY: Duration = Duration::from_millis(500);
/// How long a node that could not open the connection (or turn tracking on) waits before it tries again.
const RECONNECT: Duration = Duration::from_secs(1);
/// Shards of the kept answers, each behind its own lock.
const SHARDS: usize = 16;
/// The most seats kept per shard (131,072 in all, ~33 MB with one session each): past it, the shard is
/// emptied (Redis still tracks the keys, and pushes their next invalidation for nothing).
const KEYS_PER_SHARD: usize = 8_192;
/// The most sessions' answers kept per seats (a ticket with more seats reads the others every time).
const ANSWERS_PER_KEY: usize = 4;

/// What the node keeps of one seats key: the token taken before its first read, and the answers read
/// since (a session and its lease, or `None`: no such lease).
struct Entry {
    token: u64,
    answers: Vec<(Box<str>, Option<SessionInfo>)>,
}

type Shard = HashMap<Box<str>, Entry, foldhash::fast::RandomState>;

struct State {
    shards: Box<[Mutex<Shard>]>,
    tokens: AtomicU64,
    /// The tracked connection and its number (counted up with each connection opened).
    con: RwLock<Option<(u64, MultiplexedConnection)>>,
    connections: AtomicU64,
    epoch: Instant,
    /// Until when (ms since `epoch`) the connection is trusted; 0: not.
    alive_until_ms: AtomicU64,
    /// Whether the task opens another connection when one is lost: not under Sentinel, where a lost
    /// connection's address may now be an old master's (a replica with stale leases, or a master
    /// about to be demoted); discovery replaces the whole [`Tracked`] with the master it finds.
    reconnect: bool,
    /// A connection was opened once.
    opened: std::sync::atomic::AtomicBool,
}

/// A read to make through the tracked connection, then to keep with [`Tracked::keep`].
pub(super) struct Read {
    pub(super) con: MultiplexedConnection,
    token: u64,
    connection: u64,
}

/// The node's tracked connection and the answers it keeps (see the module's documentation). The
/// connection's task stops once this is dropped.
pub(super) struct Tracked {
    state: Arc<State>,
}

impl Tracked {
    /// Starts the task that opens the tracked connection to `client`'s Redis and keeps it alive; with
    /// `reconnect`, opens another whenever one is lost (see [`State::reconnect`]).
    pub(super) fn new(
        client: &redis::Client,
        config: AsyncConnectionConfig,
        reconnect: bool,
    ) -> Self {
        let state = Arc::new(State {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            tokens: AtomicU64::new(1),
            con: RwLock::new(None),
            connections: AtomicU64::new(0),
            epoch: Instant::now(),
            alive_until_ms: AtomicU64::new(0),
            reconnect,
            opened: std::sync::atomic::AtomicBool::new(false),
        });
        let info = client.get_connection_info().clone();
        let resp3 = info
            .redis_settings()
            .clone()
            .set_protocol(ProtocolVersion::RESP3);
        let client = redis::Client::open(info.set_redis_settings(resp3));
        let weak = Arc::downgrade(&state);
        tokio::spawn(async move {
            let Ok(client) = client else { return };
            keep_alive(weak, client, config).await;
        });
        Self { state }
    }

    /// The answer kept for `session` of the seats `key`, if the connection is trusted and one is kept:
    /// `Some(None)` when no such lease was there.
    pub(super) fn kept(&self, key: &str, session: &str) -> Option<Option<SessionInfo>> {
        if !self.state.alive() {
            return None;
        }
        let shard = self.state.shard(key);
        let entry = shard.get(key)?;
        let (_, answer) = entry.answers.iter().find(|(s, _)| &**s == session)?;
        Some(answer.clone())
    }

    /// The connection to read the seats `key` through, and what keeps its answer, while the connection
    /// is trusted.
    pub(super) fn read(&self, key: &str) -> Option<Read> {
        if !self.state.alive() {
            return None;
        }
        // the entry is made under the connection's lock: a loss of the connection, which empties
        // every shard under the same lock, comes wholly before or after it
        let current = self
            .state
            .con
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let (connection, con) = current.clone()?;
        let mut shard = self.state.shard(key);
        let token = match shard.get(key) {
            Some(entry) => entry.token,
            None => {
                if shard.len() >= KEYS_PER_SHARD {
                    shard.clear();
                }
                let token = self.state.tokens.fetch_add(1, Ordering::Relaxed);
                shard.insert(
                    key.into(),
                    Entry {
                        token,
                        answers: Vec::new(),
                    },
                );
                token
            }
        };
        Some(Read {
            con,
            token,
            connection,
        })
    }

    /// Keeps what `read` answered for `session`, unless the seats were invalidated since it was sent
    /// or its connection is no longer the one in use (its tracking went with it).
    pub(super) fn keep(&self, key: &str, read: &Read, session: &str, answer: Option<SessionInfo>) {
        let current = self
            .state
            .con
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        if current.as_ref().is_none_or(|(n, _)| *n != read.connection) {
            return;
        }
        let mut shard = self.state.shard(key);
        let Some(entry) = shard.get_mut(key) else {
            return;
        };
        if entry.token != read.token || entry.answers.len() >= ANSWERS_PER_KEY {
            return;
        }
        if !entry.answers.iter().any(|(s, _)| &**s == session) {
            entry.answers.push((session.into(), answer));
        }
    }

    /// This node wrote the seats `key`: what it kept of them goes now, so that its own next check sees
    /// the write (Redis's invalidation follows, on its way).
    pub(super) fn forget(&self, key: &str) {
        self.state.shard(key).remove(key);
    }

    /// `read`'s connection failed: nothing kept is trusted, and the task opens another.
    pub(super) fn failed(&self, read: &Read) {
        self.state.lost(read.connection);
    }
}

impl State {
    fn shard(&self, key: &str) -> std::sync::MutexGuard<'_, Shard> {
        use std::hash::BuildHasher;
        // the same seed in every process: only the spread over the shards matters
        let hash = foldhash::fast::FixedState::with_seed(0).hash_one(key);
        self.shards[(hash % SHARDS as u64) as usize]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn alive(&self) -> bool {
        self.now_ms() < self.alive_until_ms.load(Ordering::Acquire)
    }

    /// Empties every shard; the maps are freed after their locks are let go.
    fn forget_all(&self) {
        for shard in &*self.shards {
            let gone = std::mem::take(&mut *shard.lock().unwrap_or_else(PoisonError::into_inner));
            drop(gone);
        }
    }

    /// Connection number `connection` failed or closed: distrust it, forget what it kept, let the task
    /// open another. A later connection's answers stay.
    fn lost(&self, connection: u64) {
        let mut con = self.con.write().unwrap_or_else(PoisonError::into_inner);
        if con.as_ref().is_some_and(|(n, _)| *n == connection) {
            *con = None;
            self.alive_until_ms.store(0, Ordering::Release);
            // under the lock: no entry is made for the lost connection after this
            self.forget_all();
        }
    }

    /// Connection number `connection` answered a command sent at `sent_ms`: trusted until [`ALIVE`]
    /// after that, if it is still the one in use.
    fn answered(&self, connection: u64, sent_ms: u64) {
        let con = self.con.read().unwrap_or_else(PoisonError::into_inner);
        if con.as_ref().is_some_and(|(n, _)| *n == connection) {
            let until =
                sent_ms.saturating_add(u64::try_from(ALIVE.as_millis()).unwrap_or(u64::MAX));
            self.alive_until_ms.fetch_max(until, Ordering::AcqRel);
        }
    }

    /// A push on connection number `connection`, as the connection's reader meets it (before the
    /// replies after it are handed out).
    fn pushed(&self, connection: u64, push: &PushInfo) {
        match push.kind {
            PushKind::Invalidate => match push.data.first() {
                Some(Value::Array(keys)) => {
                    for key in keys {
                        let key = match key {
                            Value::BulkString(b) => std::str::from_utf8(b).ok(),
                            Value::SimpleString(s) => Some(s.as_str()),
                            _ => None,
                        };
                        match key {
                            Some(key) => drop(self.shard(key).remove(key)),
                            // no key of ours is such, but a key not understood is not ignored
                            None => self.forget_all(),
                        }
                    }
                }
                // a flush of the whole database: Redis names no keys
                _ => self.forget_all(),
            },
            PushKind::Disconnection => self.lost(connection),
            _ => {}
        }
    }
}

/// Opens the tracked connection, keeps asking it whether it is alive, opens another when it fails;
/// returns once the [`Tracked`] is gone.
async fn keep_alive(state: Weak<State>, client: redis::Client, config: AsyncConnectionConfig) {
    loop {
        let Some(s) = state.upgrade() else { return };
        let current = s.con.read().unwrap_or_else(PoisonError::into_inner).clone();
        let wait = match current {
            // under Sentinel, a lost connection stays lost (see `State::reconnect`)
            None if s.reconnect || !s.opened.load(Ordering::Relaxed) => {
                match open(&s, &state, &client, &config).await {
                    Ok(()) => PING_EVERY,
                    Err(e) => {
                        tracing::debug!(error = %e, "redis: no tracked connection for the lease checks");
                        RECONNECT
                    }
                }
            }
            None => return,
            Some((n, mut con)) => {
                let sent = s.now_ms();
                let pong: redis::RedisResult<String> =
                    redis::cmd("PING").query_async(&mut con).await;
                match pong {
                    Ok(_) => s.answered(n, sent),
                    Err(_) => s.lost(n),
                }
                PING_EVERY
            }
        };
        drop(s);
        tokio::time::sleep(wait).await;
    }
}

/// Opens a tracked connection (RESP3, tracking on) and makes it the one in use.
async fn open(
    s: &State,
    state: &Weak<State>,
    client: &redis::Client,
    config: &AsyncConnectionConfig,
) -> redis::RedisResult<()> {
    let n = s.connections.fetch_add(1, Ordering::Relaxed) + 1;
    let pushes = Weak::clone(state);
    let config = config
        .clone()
        .set_push_sender(move |push: PushInfo| -> Result<(), ()> {
            if let Some(s) = pushes.upgrade() {
                s.pushed(n, &push);
            }
            Ok(())
        });
    let mut con = client
        .get_multiplexed_async_connection_with_config(&config)
        .await?;
    // a replica (an old master back from a fail-over) would answer reads of leases it may never see
    // written
    let role: Vec<Value> = redis::cmd("ROLE").query_async(&mut con).await?;
    let master = match role.first() {
        Some(Value::BulkString(r)) => r.as_slice() == b"master",
        Some(Value::SimpleString(r)) => r == "master",
        _ => false,
    };
    if !master {
        return Err(redis::RedisError::from((
            redis::ErrorKind::Client,
            "not a master",
        )));
    }
    let sent = s.now_ms();
    let () = redis::cmd("CLIENT")
        .arg("TRACKING")
        .arg("on")
        .query_async(&mut con)
        .await?;
    *s.con.write().unwrap_or_else(PoisonError::into_inner) = Some((n, con));
    s.opened.store(true, Ordering::Relaxed);
    s.answered(n, sent);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use usher_core::clock::UnixMs;
    use usher_core::ids::{DeviceId, SessionId, ShowId, TicketId};
    use usher_testkit::RedisServer;

    const KEY: &str = "usher-test:seats:t1";

    fn info() -> SessionInfo {
        SessionInfo {
            session_id: SessionId::generate(),
            ticket_id: TicketId::generate(),
            show_id: ShowId::parse("s1").unwrap(),
            device_id: DeviceId::parse("device-1").unwrap(),
            device_label: "dev".into(),
            created_at: UnixMs(1),
            renewed_at: UnixMs(2),
            expires_at: UnixMs(3),
        }
    }

    /// A tracked connection to `server`, once it is trusted.
    async fn tracked(server: &RedisServer) -> Tracked {
        let client = redis::Client::open(server.url()).unwrap();
        let tracked = Tracked::new(&client, AsyncConnectionConfig::new(), true);
        for _ in 0..500 {
            if tracked.read(KEY).is_some() {
                return tracked;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the tracked connection never came");
    }

    fn invalidate(tracked: &Tracked, read: &Read, keys: Value) {
        tracked.state.pushed(
            read.connection,
            &PushInfo {
                kind: PushKind::Invalidate,
                data: vec![keys],
            },
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_answer_is_kept_until_its_seats_are_invalidated() {
        let server = RedisServer::start().unwrap();
        let t = tracked(&server).await;
        let read = t.read(KEY).unwrap();
        t.keep(KEY, &read, "s1", Some(info()));
        t.keep(KEY, &read, "s2", None);
        assert!(t.kept(KEY, "s1").unwrap().is_some());
        assert_eq!(t.kept(KEY, "s2"), Some(None));
        assert_eq!(t.kept(KEY, "s3"), None);
        invalidate(&t, &read, Value::Array(vec![Value::BulkString(KEY.into())]));
        assert_eq!(t.kept(KEY, "s1"), None);
        // a flush names no keys: everything goes
        let read = t.read(KEY).unwrap();
        t.keep(KEY, &read, "s1", None);
        invalidate(&t, &read, Value::Nil);
        assert_eq!(t.kept(KEY, "s1"), None);
    }

    /// The answer of a read that crossed a write: its invalidation came before the answer was kept.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_answer_read_before_an_invalidation_handled_is_not_kept() {
        let server = RedisServer::start().unwrap();
        let t = tracked(&server).await;
        let read = t.read(KEY).unwrap();
        invalidate(&t, &read, Value::Array(vec![Value::BulkString(KEY.into())]));
        // another check reads anew meanwhile: a new entry, with a new token
        let again = t.read(KEY).unwrap();
        t.keep(KEY, &read, "s1", Some(info()));
        assert_eq!(t.kept(KEY, "s1"), None, "the older read is not kept");
        t.keep(KEY, &again, "s1", None);
        assert_eq!(t.kept(KEY, "s1"), Some(None), "the newer read is");
    }

    /// A read on a connection lost before its answer came: that connection's tracking is gone with it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_answer_read_on_a_lost_connection_is_not_kept() {
        let server = RedisServer::start().unwrap();
        let t = tracked(&server).await;
        let kept = t.read(KEY).unwrap();
        t.keep(KEY, &kept, "s0", None);
        let read = t.read(KEY).unwrap();
        t.state.lost(read.connection);
        assert_eq!(t.kept(KEY, "s0"), None, "a lost connection's answers go");
        assert!(
            t.read(KEY).is_none(),
            "no read while no connection is trusted"
        );
        t.keep(KEY, &read, "s1", None);
        let next = loop {
            if let Some(next) = t.read(KEY) {
                break next;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        assert_ne!(next.connection, read.connection);
        assert_eq!(t.kept(KEY, "s1"), None);
        t.keep(KEY, &read, "s1", None);
        assert_eq!(
            t.kept(KEY, "s1"),
            None,
            "not kept on the next connection either"
        );
    }
}
