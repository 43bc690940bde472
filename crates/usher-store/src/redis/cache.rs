//! This node's copy of the shows and of the CDN pool (health included), so that a heartbeat or an admit
//! reads them without a round trip to Redis.
//!
//! Coherence between nodes rests on one generation in Redis, `config_gen`, which every write of a show or
//! of the pool (a CDN, its health, a deletion) moves forward in the same atomic step as the write. The heartbeat,
//! admit and token-lookup scripts return it, so a node learns of a change on its very next viewer request
//! at no extra cost. A copy is served only when it was read at the newest generation this node has seen
//! and that generation was seen less than `freshness` ago; otherwise the reader asks Redis again in one
//! round trip, which also brings the new value when the generation moved. Hence a change made on any node
//! is seen by every other node's next heartbeat or admit, and by any other read within `freshness`.
//!
//! A write sets the generation past both its last value and Redis's clock in microseconds
//! (`redis/generation.lua`), so a value is never handed out twice for different contents, even when a
//! fail-over lost the last writes or a backup was restored. The largest generation seen is thus the newest:
//! an answer that arrives after a newer one cannot roll the node back. (After such a loss, until the next
//! write, a node may keep serving what it read of the lost write for up to `freshness`, then asks Redis on
//! every read, correctly but without the cache.)

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use usher_core::cdn::Cdn;
use usher_core::ids::{SessionId, ShowId, TicketId};
use usher_core::show::Show;
use usher_core::ticket::TicketBounds;

/// How long a generation seen stays trusted without a heartbeat or admit confirming it.
pub(super) const FRESHNESS: Duration = Duration::from_secs(1);

/// A value with the generation it was read at.
#[derive(Debug, Clone)]
pub(super) struct Cached<T> {
    pub(super) generation: i64,
    pub(super) value: T,
}

/// What the cache can tell a reader.
#[derive(Debug)]
pub(super) enum Lookup<T> {
    /// The copy is current: serve it.
    Hit(T),
    /// Ask Redis whether this copy (if any) is still current.
    Check(Option<Cached<T>>),
}

#[derive(Debug, Clone, Copy)]
struct Seen {
    generation: i64,
    /// When the question that brought it was sent (so it was current at some instant after this).
    at: Option<Instant>,
}

/// Shows and the pool as last read, and the newest generation seen.
#[derive(Debug)]
pub(super) struct ConfigCache {
    freshness: Duration,
    seen: Mutex<Seen>,
    shows: RwLock<HashMap<ShowId, Cached<Show>>>,
    pool: RwLock<Option<Cached<Vec<Cdn>>>>,
}

impl ConfigCache {
    pub(super) fn new(freshness: Duration) -> Self {
        Self {
            freshness,
            seen: Mutex::new(Seen {
                generation: -1,
                at: None,
            }),
            shows: RwLock::new(HashMap::new()),
            pool: RwLock::new(None),
        }
    }

    /// Notes that Redis's generation was `generation` at some instant after `asked_at`.
    pub(super) fn observe(&self, generation: i64, asked_at: Instant) {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if generation > seen.generation || seen.at.is_none() {
            *seen = Seen {
                generation,
                at: Some(asked_at),
            };
        } else if generation == seen.generation && seen.at.is_none_or(|at| at < asked_at) {
            seen.at = Some(asked_at);
        }
        // an older generation is an answer overtaken by a newer one: it tells nothing new
    }

    /// The generation this node trusts now (seen within the freshness window), if any.
    pub(super) fn trusted_now(&self) -> Option<i64> {
        self.trusted(Instant::now())
    }

    /// The generation a copy must have to be served now, if one was seen recently enough.
    fn trusted(&self, now: Instant) -> Option<i64> {
        let seen = *self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        let at = seen.at?;
        (now.saturating_duration_since(at) < self.freshness).then_some(seen.generation)
    }

    pub(super) fn show(&self, id: &ShowId) -> Lookup<Show> {
        let trusted = self.trusted(Instant::now());
        let shows = self.shows.read().unwrap_or_else(PoisonError::into_inner);
        lookup(shows.get(id), trusted)
    }

    /// Whether `id`'s door counts its passes against a capacity, as this node knows the show: it has a
    /// capacity in the copy kept (current or not), or no copy is kept. (A door with only an admit rate
    /// hands out passes too, but counts none: such a pass only lets its ticket back in until it lapses.)
    /// Read without cloning the show: every Redis admit asks.
    pub(super) fn door_counts_passes(&self, id: &ShowId) -> bool {
        let shows = self.shows.read().unwrap_or_else(PoisonError::into_inner);
        shows.get(id).is_none_or(|c| c.value.capacity.is_some())
    }

    pub(super) fn pool(&self) -> Lookup<Vec<Cdn>> {
        let trusted = self.trusted(Instant::now());
        let pool = self.pool.read().unwrap_or_else(PoisonError::into_inner);
        lookup(pool.as_ref(), trusted)
    }

    /// Keeps `show` as read at `generation` (unless a copy read later is already there).
    pub(super) fn keep_show(&self, generation: i64, show: &Show) {
        let mut shows = self.shows.write().unwrap_or_else(PoisonError::into_inner);
        if shows
            .get(&show.id)
            .is_none_or(|c| c.generation <= generation)
        {
            shows.insert(
                show.id.clone(),
                Cached {
                    generation,
                    value: show.clone(),
                },
            );
        }
    }

    /// Forgets the show `id`, missing at `generation` (unless a copy read later is there).
    pub(super) fn forget_show(&self, generation: i64, id: &ShowId) {
        let mut shows = self.shows.write().unwrap_or_else(PoisonError::into_inner);
        if shows.get(id).is_some_and(|c| c.generation <= generation) {
            shows.remove(id);
        }
    }

    /// Keeps the pool as read at `generation` (unless a copy read later is already there).
    pub(super) fn keep_pool(&self, generation: i64, cdns: &[Cdn]) {
        let mut pool = self.pool.write().unwrap_or_else(PoisonError::into_inner);
        if pool.as_ref().is_none_or(|c| c.generation <= generation) {
            *pool = Some(Cached {
                generation,
                value: cdns.to_vec(),
            });
        }
    }
}

/// How many entries a [`Kept`] holds at most: tickets' bounds are ~100 bytes each, the sessions' ticket
/// ids ~120, so at most ~30 MB each; a node plays far fewer at once.
pub(super) const KEPT: usize = 1 << 18;

/// Facts that never change, as this node read them, up to [`KEPT`] of them in two generations: new
/// entries go into the newer, and when it holds half of [`KEPT`] it becomes the older and the older is
/// dropped. So filling up forgets only what was kept two generations ago, never everything at once (a
/// miss costs the node one read, or the script's way, and then the entry is kept again).
#[derive(Debug)]
pub(super) struct Kept<K, V> {
    kept: RwLock<Generations<K, V>>,
}

/// Hashed with foldhash rather than SipHash (SipHash was ~1.3 % of a Redis heartbeat's instructions on
/// the node). Every key kept is one the node made or read from Redis (a session or ticket id made by
/// an admit, a keyed hash of a token); an id a client makes up is only looked up, and a lookup probes
/// only as far as the kept keys make it, so no client picks collisions.
#[derive(Debug)]
struct Generations<K, V> {
    newer: HashMap<K, V, foldhash::fast::RandomState>,
    older: HashMap<K, V, foldhash::fast::RandomState>,
}

impl<K: Eq + std::hash::Hash, V> Generations<K, V> {
    /// Inserts into the newer generation, which first becomes the older one when it is full.
    fn insert(&mut self, id: K, value: V) {
        if self.newer.len() >= KEPT / 2 {
            self.older = std::mem::take(&mut self.newer);
        }
        self.newer.insert(id, value);
    }
}

impl<K, V> Default for Kept<K, V> {
    fn default() -> Self {
        Self {
            kept: RwLock::new(Generations {
                newer: HashMap::default(),
                older: HashMap::default(),
            }),
        }
    }
}

impl<K: Eq + std::hash::Hash + Clone, V: Clone> Kept<K, V> {
    pub(super) fn get<Q>(&self, id: &Q) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Eq + std::hash::Hash + ?Sized,
    {
        let kept = self.kept.read().unwrap_or_else(PoisonError::into_inner);
        kept.newer.get(id).or_else(|| kept.older.get(id)).cloned()
    }

    /// Moves `id`'s entry from the older generation into the newer one, if it is only there: what is
    /// still used is not forgotten.
    pub(super) fn refresh<Q>(&self, id: &Q)
    where
        K: std::borrow::Borrow<Q>,
        Q: Eq + std::hash::Hash + ?Sized,
    {
        if self.in_newer(id) {
            return;
        }
        let mut kept = self.kept.write().unwrap_or_else(PoisonError::into_inner);
        if let Some((k, v)) = kept.older.remove_entry(id) {
            kept.insert(k, v);
        }
    }

    /// Keeps `value` for `id` in the newer generation, unless it is there already.
    pub(super) fn keep(&self, id: &K, value: V) {
        if !self.in_newer(id) {
            self.kept
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(id.clone(), value);
        }
    }

    fn in_newer<Q>(&self, id: &Q) -> bool
    where
        K: std::borrow::Borrow<Q>,
        Q: Eq + std::hash::Hash + ?Sized,
    {
        self.kept
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .newer
            .contains_key(id)
    }
}

/// How long after the origin's lease check met seats kept as one JSON document (schema 1) it goes
/// straight to the script.
const DOCUMENT_SEATS_MS: u64 = 5_000;

/// Whether the origin's lease check met seats kept as one JSON document lately. On a database stamped
/// schema 1 every seats is one (and its `HMGET` fails with `WRONGTYPE`); after an upgrade, those not
/// written since. So after such a meeting the check takes the script at once, for
/// [`DOCUMENT_SEATS_MS`]: a node wastes at most one round trip in that time, and takes up the `HMGET`
/// again once the upgrade has moved the seats.
#[derive(Debug)]
pub(super) struct DocumentSeats {
    epoch: Instant,
    /// Until when (ms since `epoch`) the check takes the script.
    until_ms: std::sync::atomic::AtomicU64,
}

impl Default for DocumentSeats {
    fn default() -> Self {
        Self {
            epoch: Instant::now(),
            until_ms: std::sync::atomic::AtomicU64::new(0),
        }
    }
}

impl DocumentSeats {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Seats kept as one document were met less than [`DOCUMENT_SEATS_MS`] ago. A node that never met
    /// one reads no clock.
    pub(super) fn lately(&self) -> bool {
        let until = self.until_ms.load(std::sync::atomic::Ordering::Relaxed);
        until != 0 && self.now_ms() < until
    }

    /// Seats kept as one document were met now.
    pub(super) fn met(&self) {
        self.until_ms.store(
            self.now_ms().saturating_add(DOCUMENT_SEATS_MS),
            std::sync::atomic::Ordering::Relaxed,
        );
    }
}

/// The bounds (`valid_from`, `valid_until`) of the tickets this node has read, so that a heartbeat needs
/// neither to read the ticket in Redis nor to decode it on the node.
///
/// No generation guards them, because they never change: a ticket's terms are fixed at its registration
/// (registering its token again with other terms is a conflict, not an update) and no step deletes a
/// ticket. Its status does change, but a heartbeat needs no copy of that: the revoke ends every lease of
/// the ticket in its own step (`redis/revoke.lua`), and an admit reads the status in its step, so a lease
/// that a heartbeat renews belongs to a ticket that was not revoked when the step ran.
pub(super) type BoundsCache = Kept<TicketId, TicketBounds>;

/// The ticket of each session this node has admitted, renewed or checked for the origin (a session never
/// changes ticket), which names the seats a renewal without a script watches (`redis/renewal.rs`) and
/// the origin's lease check reads with one `HMGET` (`RedisStore::live_session`).
pub(super) type Owners = Kept<SessionId, TicketId>;

/// The ticket of each token this node has looked up (a token never changes ticket): a hint, which the
/// lookup checks against the ticket's own token hash before it answers.
pub(super) type TokenOwners = Kept<usher_core::secret::SecretHash, TicketId>;

fn lookup<T: Clone>(cached: Option<&Cached<T>>, trusted: Option<i64>) -> Lookup<T> {
    match (cached, trusted) {
        (Some(c), Some(g)) if c.generation == g => Lookup::Hit(c.value.clone()),
        (c, _) => Lookup::Check(c.cloned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(id: &str, title: &str) -> Show {
        let mut s = crate::contract::show(id, 1, usher_core::show::SharingPolicy::NewestWins);
        s.title = title.into();
        s
    }

    fn hit(l: Lookup<Show>) -> Option<String> {
        match l {
            Lookup::Hit(s) => Some(s.title),
            Lookup::Check(_) => None,
        }
    }

    #[test]
    fn a_copy_is_served_only_at_the_newest_generation_seen_recently() {
        let cache = ConfigCache::new(Duration::from_secs(3600));
        let id = ShowId::parse("s1").unwrap();
        assert!(hit(cache.show(&id)).is_none(), "nothing seen yet");
        cache.observe(5, Instant::now());
        cache.keep_show(5, &show("s1", "five"));
        assert_eq!(hit(cache.show(&id)).as_deref(), Some("five"));
        cache.observe(6, Instant::now());
        match cache.show(&id) {
            Lookup::Check(Some(c)) => assert_eq!(c.generation, 5, "offered for checking"),
            other => panic!("a copy older than the generation seen was served: {other:?}"),
        }
    }

    #[test]
    fn an_overtaken_answer_does_not_roll_back() {
        let cache = ConfigCache::new(Duration::from_secs(3600));
        let id = ShowId::parse("s1").unwrap();
        cache.observe(7, Instant::now());
        cache.keep_show(7, &show("s1", "seven"));
        cache.observe(6, Instant::now());
        cache.keep_show(6, &show("s1", "six"));
        assert_eq!(hit(cache.show(&id)).as_deref(), Some("seven"));
        cache.forget_show(6, &id);
        assert_eq!(hit(cache.show(&id)).as_deref(), Some("seven"));
        cache.forget_show(7, &id);
        assert!(hit(cache.show(&id)).is_none());
    }

    #[test]
    fn a_generation_seen_too_long_ago_is_checked_again() {
        let cache = ConfigCache::new(Duration::from_millis(500));
        let id = ShowId::parse("s1").unwrap();
        cache.observe(1, Instant::now() - Duration::from_millis(600));
        cache.keep_show(1, &show("s1", "one"));
        assert!(hit(cache.show(&id)).is_none(), "stale observation");
        cache.observe(1, Instant::now());
        assert_eq!(hit(cache.show(&id)).as_deref(), Some("one"));
        let off = ConfigCache::new(Duration::ZERO);
        off.observe(1, Instant::now());
        off.keep_show(1, &show("s1", "one"));
        assert!(hit(off.show(&id)).is_none(), "freshness 0 never serves");
    }

    #[test]
    fn the_pool_follows_the_same_rule() {
        let cache = ConfigCache::new(Duration::from_secs(3600));
        cache.observe(3, Instant::now());
        cache.keep_pool(3, &[crate::contract::cdn("a-cdn", 1)]);
        assert!(matches!(cache.pool(), Lookup::Hit(p) if p.len() == 1));
        cache.keep_pool(2, &[]);
        assert!(matches!(cache.pool(), Lookup::Hit(p) if p.len() == 1));
        cache.observe(4, Instant::now());
        assert!(matches!(cache.pool(), Lookup::Check(Some(c)) if c.generation == 3));
    }

    #[test]
    fn bounds_are_kept_in_two_generations_and_only_the_older_is_forgotten() {
        let cache = BoundsCache::default();
        let b = TicketBounds {
            valid_from: None,
            valid_until: Some(usher_core::clock::UnixMs(9)),
        };
        let id = |n: usize| TicketId::parse(&format!("t_{n:024x}")).unwrap();
        assert_eq!(cache.get(&id(0)), None);
        let half = KEPT / 2;
        for n in 0..half {
            cache.keep(&id(n), b);
        }
        // the newer generation is full: the next entry starts another, and the first stay as the older
        cache.keep(&id(half), b);
        assert_eq!(
            cache.get(&id(0)),
            Some(b),
            "the older generation is still read"
        );
        assert_eq!(cache.get(&id(half)), Some(b));
        // kept again while it is in the older generation: it moves to the newer one
        cache.keep(&id(0), b);
        for n in half + 1..2 * half {
            cache.keep(&id(n), b);
        }
        cache.keep(&id(2 * half), b);
        assert_eq!(cache.get(&id(1)), None, "two generations ago: forgotten");
        assert_eq!(cache.get(&id(0)), Some(b), "kept again: still there");
        assert_eq!(cache.get(&id(half)), Some(b), "the older generation");
        assert_eq!(cache.get(&id(2 * half)), Some(b));
        // one in use (refreshed) outlives the next generation; one not used is forgotten with it
        cache.refresh(&id(half + 1));
        for n in 2 * half + 1..3 * half + 1 {
            cache.keep(&id(n), b);
        }
        assert_eq!(cache.get(&id(half + 1)), Some(b), "refreshed: still there");
        assert_eq!(cache.get(&id(half + 2)), None, "not used: forgotten");
    }
}
