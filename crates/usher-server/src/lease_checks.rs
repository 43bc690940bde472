//! The origin's lease check, kept per session for a fraction of a second (`/o/` playlists and segments;
//! the key endpoint always asks the store).
//!
//! Every media request (`/o/{grant}/…`: playlists and segments) asks the store whether its grant's
//! session still holds its seat. A player asks for a playlist and a segment or two every few seconds, and
//! on Redis each of those asks cost a round trip. Here the store's answer is kept for
//! `http.media_lease_check_ms` (250 ms by default), so a session's requests within that time share one.
//!
//! The bound: a session that lost its seat (revoked, taken over, ended, expired) may still get media from
//! another node's origin for at most that long after the store says so, and a lease that expires gets
//! its media that long past its expiry. On the node that made the change (an admit, a revoke, a leave,
//! an end by an admin or by the window or Geo check) every kept answer is dropped at once
//! ([`LeaseChecks::changed`]), so that node's origin refuses at once.

use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use usher_core::ids::SessionId;
use usher_core::store::{SessionInfo, Store, StoreError};

/// One kept answer.
struct Kept {
    at_ms: u64,
    generation: u64,
    info: Option<SessionInfo>,
}

/// Kept answers of [`Store::live_session`] for the origin.
pub struct LeaseChecks {
    keep_ms: u64,
    epoch: Instant,
    /// Bumped by every change this node makes to leases: answers kept before it are not used.
    generation: AtomicU64,
    /// The answers in [`SHARDS`] maps by session: every media request takes one of their locks (a miss
    /// for writing), and one lock for all of them made the workers take turns on each request.
    kept: Box<[RwLock<Answers>]>,
}

/// How many maps the kept answers are spread over (a power of two).
const SHARDS: usize = 64;

struct Answers {
    map: HashMap<SessionId, Kept>,
    /// Past this size, the next insert drops the lapsed answers first.
    prune_at: usize,
}

/// The fewest entries a shard holds before an insert drops its lapsed answers.
const PRUNE_FLOOR: usize = 4_096 / SHARDS;

impl std::fmt::Debug for LeaseChecks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaseChecks")
            .field("keep_ms", &self.keep_ms)
            .finish_non_exhaustive()
    }
}

impl LeaseChecks {
    /// Keeps answers for `keep_ms` milliseconds; 0 asks the store every time.
    pub fn new(keep_ms: u64) -> Self {
        Self {
            keep_ms,
            epoch: Instant::now(),
            generation: AtomicU64::new(0),
            kept: (0..SHARDS)
                .map(|_| {
                    RwLock::new(Answers {
                        map: HashMap::new(),
                        prune_at: PRUNE_FLOOR,
                    })
                })
                .collect(),
        }
    }

    /// The map that keeps `session`'s answers: by the last bytes of its id (random hex digits; any
    /// text spreads well enough, and a chosen one only crowds one shard).
    fn shard(&self, session: &SessionId) -> &RwLock<Answers> {
        let tail = session.as_str().bytes().rev().take(4);
        let n = tail.fold(0usize, |n, b| {
            n.wrapping_mul(31).wrapping_add(usize::from(b))
        });
        &self.kept[n % SHARDS]
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Every kept answer is out of date: this node changed a lease.
    pub fn changed(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// The store's [`Store::live_session`] for `session`, or the answer kept from less than `keep_ms`
    /// ago. Errors are never kept.
    ///
    /// # Errors
    /// The store's error.
    pub async fn live_session(
        &self,
        store: &dyn Store,
        session: &SessionId,
    ) -> Result<Option<SessionInfo>, StoreError> {
        if self.keep_ms == 0 {
            return store.live_session(session).await;
        }
        let now = self.now_ms();
        let generation = self.generation.load(Ordering::SeqCst);
        let shard = self.shard(session);
        let hit = shard
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .map
            .get(session)
            .filter(|k| k.generation == generation && now.saturating_sub(k.at_ms) < self.keep_ms)
            .map(|k| k.info.clone());
        if let Some(info) = hit {
            return Ok(info);
        }
        let info = store.live_session(session).await?;
        // a change made while the store was asked may not be in this answer: keep it under the
        // generation read before asking, so the change's bump makes it unused
        let mut kept = shard
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if kept.map.len() >= kept.prune_at {
            let (keep_ms, current) = (self.keep_ms, self.generation.load(Ordering::SeqCst));
            kept.map
                .retain(|_, k| k.generation == current && now.saturating_sub(k.at_ms) < keep_ms);
            kept.prune_at = (kept.map.len() * 2).max(PRUNE_FLOOR);
        }
        kept.map.insert(
            session.clone(),
            Kept {
                at_ms: now,
                generation,
                info: info.clone(),
            },
        );
        Ok(info)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use usher_core::clock::SystemClock;
    use usher_core::ids::{DeviceId, ShowId, TicketId, TicketToken};
    use usher_core::lease::{AdmitDecision, EndReason, SeatRules};
    use usher_core::secret::SecretHasher;
    use usher_core::show::{SharingPolicy, ShowSpec};
    use usher_core::store::{AdmitRequest, NewTicket};
    use usher_core::ticket::{Ticket, TicketStatus, TicketTerms};
    use usher_store::EmbeddedStore;

    use super::*;

    /// A store with one admitted session.
    async fn one_session() -> (tempfile::TempDir, EmbeddedStore, SessionId) {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path(), Arc::new(SystemClock)).unwrap();
        let now = store.now();
        let show = ShowId::parse("s").unwrap();
        let spec: ShowSpec = serde_json::from_value(serde_json::json!({
            "title": "s", "starts_at": "2020-01-01T00:00:00Z", "ends_at": "2100-01-01T00:00:00Z",
            "stream_path": "demo",
        }))
        .unwrap();
        store
            .put_show(spec.into_show(show.clone(), now, None).unwrap())
            .await
            .unwrap();
        let ticket = TicketId::generate();
        let terms = TicketTerms {
            show_id: show.clone(),
            valid_from: None,
            valid_until: None,
            max_devices: None,
            external_ref: None,
        };
        let hash = SecretHasher::new(&[1; 32]).ticket_token(&TicketToken::generate());
        store
            .register_tickets(vec![NewTicket {
                ticket: Ticket {
                    id: ticket.clone(),
                    token_hash: hash,
                    terms,
                    status: TicketStatus::Active,
                    created_at: now.to_datetime(),
                    revoked_at: None,
                },
            }])
            .await
            .unwrap();
        let decision = store
            .admit(AdmitRequest {
                ticket_id: ticket,
                show_id: show,
                bounds: usher_core::ticket::TicketBounds::default(),
                device_id: DeviceId::generate(),
                device_label: "test".into(),
                rules: SeatRules {
                    max_devices: 1,
                    policy: SharingPolicy::NewestWins,
                    ttl_ms: 60_000,
                },
                country: None,
                address: None,
                presented: None,
                fresh: usher_store::contract::seat_secret(),
            })
            .await
            .unwrap();
        let AdmitDecision::Admitted { session_id, .. } = decision else {
            panic!("not admitted: {decision:?}");
        };
        (dir, store, session_id)
    }

    /// Whether `checks` says `session` holds its seat.
    async fn plays(checks: &LeaseChecks, store: &EmbeddedStore, session: &SessionId) -> bool {
        checks.live_session(store, session).await.unwrap().is_some()
    }

    /// Ends `session` in the store, as another node (or this one) does.
    async fn end(store: &EmbeddedStore, session: &SessionId) {
        let at = store.now();
        let ended = store.end_session(session, EndReason::EndedByAdmin { at });
        assert!(ended.await.unwrap(), "the session was live");
    }

    #[tokio::test]
    async fn an_answer_is_kept_for_its_time_and_dropped_at_once_by_a_change_here() {
        let (_dir, store, session) = one_session().await;
        let checks = LeaseChecks::new(300);
        assert!(plays(&checks, &store, &session).await);
        // another node ends the seat: this node's origin may serve it until the kept answer is 300 ms old
        end(&store, &session).await;
        assert!(plays(&checks, &store, &session).await);
        tokio::time::sleep(Duration::from_millis(320)).await;
        assert!(!plays(&checks, &store, &session).await);

        // a change made by this node drops every kept answer at once
        let (_dir2, store2, session2) = one_session().await;
        assert!(plays(&checks, &store2, &session2).await);
        end(&store2, &session2).await;
        checks.changed();
        assert!(!plays(&checks, &store2, &session2).await);

        // 0: the store every time
        let (_dir3, store3, session3) = one_session().await;
        let every_time = LeaseChecks::new(0);
        assert!(plays(&every_time, &store3, &session3).await);
        end(&store3, &session3).await;
        assert!(!plays(&every_time, &store3, &session3).await);
    }
}
