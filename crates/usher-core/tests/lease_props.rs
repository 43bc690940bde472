//! Property tests of the lease rules in `usher_core::lease` (DESIGN.md, "Sharing protection: the lease
//! protocol").
//!
//! Each case draws random [`SeatRules`] (1–4 devices, `newest_wins` or `oldest_wins`, a lease lifetime of
//! 1–60 s) and up to 60 operations on ONE [`TicketLeases`]: admits from up to 6 devices, heartbeats of issued
//! (or unknown) sessions, leaves, revocations, clock steps of 0–60 s, jumps to the instant a stored lease
//! lapses or an ended session reaches [`ENDED_RETENTION_MS`], and rare pauses of 0.5–2 h. A small model kept
//! alongside (the leases the ticket should store, and why each ended session ended) checks after every step
//! that:
//!
//! 1. the ticket never holds more than `k` unexpired leases, nor more than `k` leases at all after an admit;
//! 2. a device that holds an unexpired lease is never refused: it re-attaches to the same session;
//! 3. under `oldest_wins` an admit never takes a live lease's seat, and a refusal's `retry_after_s` is the
//!    whole seconds (rounded up, at least 1) until the earliest lease lapses;
//! 4. under `newest_wins` a new device is always admitted, supersedes exactly the least recently renewed
//!    lease when (and only when) all seats are taken, holds a live lease itself, and the superseded session's
//!    heartbeat answers `Superseded` by the new device's label at the admit time;
//! 5. a heartbeat renews a live lease to `now + ttl`; a lease that lapsed has ended, `Expired` at its lapse
//!    instant, even while it is still stored: its heartbeat answers so, and an admit, a leave or a
//!    revocation ends it so (a leave of it reports no lease held, a revocation does not list it); an ended
//!    session never holds a lease again, and answers its end reason as long as the ticket must remember it
//!    (fewer than [`ENDED_MEMORY`] later ends, ended less than [`ENDED_RETENTION_MS`] before the last admit,
//!    leave or revocation, the steps that forget old ends), and not once such a step must have forgotten it
//!    (it, every end logged before it and the rest of its batch ended longer ago than that);
//! 6. `usage.sessions` counts the admits that created a session, and `usage.devices` lists each admitted
//!    device exactly once.
//!
//! Every admit and heartbeat presents the session secret its player holds (the newest one the ticket
//! handed out for that session; a device re-attaching presents its session's) and hands out a fresh one
//! (DESIGN.md "Session integrity"); two more operations present other secrets:
//!
//! 9. a heartbeat presenting a secret the session never had is refused (`WrongSecret`) and changes
//!    nothing: the lease keeps its expiry, the usage counts no clone;
//! 10. a heartbeat presenting the secret the player held two renewals ago (a copy taken then) is refused
//!     as `Cloned` and changes nothing but `usage.clones`, which counts exactly those refusals; the player
//!     holding the current secret renews as before.
//!
//! The model also checks that the stored and the live leases are exactly the ones it expects.
//!
//! A second property draws a show's window, a ticket's own bounds, a Geo answer and an instant around the
//! window's end, and checks the rule that ends a renewed session ([`after_renewal`]):
//!
//! 7. it never answers `Continue` at or past the end of the ticket's window (its bounds narrowed to the
//!    show's): that ends with `WindowEnded` at `now`, whatever Geo says; inside the window a Geo refusal
//!    always ends with `GeoBlocked` at `now` naming the country detected, and `Allowed` or `Undecided`
//!    (no database loaded) always continue, so `Undecided` never ends a session that `Allowed` keeps;
//! 8. the answer depends on nothing else: not on the rest of the show (title, policy, Geo policy, CDNs…),
//!    not on how the bounds spell the same window, and not on being asked twice.

use std::collections::{BTreeSet, HashMap};

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, TestCaseError};
use usher_core::clock::UnixMs;
use usher_core::geo::{Country, GeoPolicy, UnknownAddresses};
use usher_core::ids::{CdnId, ShowId};
use usher_core::ids::{DeviceId, SessionId};
use usher_core::lease::{
    AdmitDecision, AfterRenewal, ENDED_MEMORY, ENDED_RETENTION_MS, EndReason, GeoCheck,
    HeartbeatDecision, Presented, SeatRules, TicketLeases, after_renewal,
};
use usher_core::secret::{SecretHash, SecretHasher};
use usher_core::show::{SharingPolicy, Show, ShowKind};
use usher_core::ticket::TicketBounds;

/// Devices that take turns on the ticket.
const DEVICES: usize = 6;
/// Where the clock starts.
const START: i64 = 1_700_000_000_000;

/// Which session a heartbeat or a leave names.
#[derive(Debug, Clone)]
enum Target {
    /// One of the sessions admits returned so far (any of them, if there are none yet: an unknown one).
    Issued(Index),
    /// A session id the ticket never issued.
    Unknown,
}

#[derive(Debug, Clone)]
enum Op {
    /// `admit` from device `device`, labelled with one of two labels per device.
    Admit { device: usize, variant: u8 },
    /// `heartbeat` with the secret the session's player holds.
    Heartbeat(Target),
    /// `heartbeat` with a secret the session never had.
    WrongSecret(Target),
    /// `heartbeat` with the secret the session's player held two renewals ago (a copy).
    Copy(Target),
    /// `end_session` with `EndReason::Left`.
    Leave(Target),
    /// `end_all` with `EndReason::Revoked`.
    RevokeAll,
    /// The clock moves forward by this many milliseconds.
    Advance(i64),
    /// The clock moves to the lapse instant of one of the stored leases not lapsed yet, if any.
    ToLapse(Index),
    /// The clock moves to the instant one of the ended sessions has been ended for [`ENDED_RETENTION_MS`],
    /// if any is not that old yet.
    ToRetentionLimit(Index),
}

fn device(i: usize) -> DeviceId {
    DeviceId::parse(&format!("device-{i:02}")).expect("a valid device id")
}

fn label(i: usize, variant: u8) -> String {
    format!("Device {i} ({variant})")
}

fn hash(secret: &str) -> SecretHash {
    SecretHasher::new(&[3u8; 32]).session_secret(secret)
}

fn session(n: u64) -> SessionId {
    SessionId::parse(&format!("s_{n:032x}")).expect("a valid session id")
}

/// A lease the model believes the ticket stores.
#[derive(Debug, Clone)]
struct ModelLease {
    session: SessionId,
    device: usize,
    created_at: i64,
    renewed_at: i64,
    expires_at: i64,
}

/// An ended session: why, and where its entry sits in the ticket's log of ended sessions (a batch ended
/// together occupies `first..=last` in an order the model does not assume).
#[derive(Debug, Clone)]
struct Ended {
    reason: EndReason,
    first: usize,
    last: usize,
}

struct Model {
    rules: SeatRules,
    k: usize,
    now: i64,
    /// The leases the ticket stores, lapsed ones included until the rules drop them.
    leases: Vec<ModelLease>,
    /// Every session that ended, with the reason its heartbeat should answer.
    ended: HashMap<SessionId, Ended>,
    /// How many entries the rules have appended to the ticket's log of ended sessions.
    pushes: usize,
    /// For each entry of that log, in push order: the latest end instant among it, the entries before it and
    /// the rest of its batch.
    latest_end_so_far: Vec<i64>,
    /// The time of the last admit, leave or revocation (when the rules forget sessions that ended long ago).
    last_prune: Option<i64>,
    /// How many entries had been appended to the log at the last admit, leave or revocation.
    pushes_at_prune: usize,
    /// Every session an admit returned, in order.
    issued: Vec<SessionId>,
    /// Admits that created a session.
    new_sessions: u64,
    /// Devices admitted at least once.
    devices_seen: BTreeSet<usize>,
    next_id: u64,
    /// Each session's secrets as its player received them, oldest first (the last one it holds).
    secrets: HashMap<SessionId, Vec<String>>,
    /// Heartbeats refused as clones.
    clones: u64,
}

impl Model {
    fn new(rules: SeatRules) -> Self {
        Self {
            rules,
            k: rules.max_devices as usize,
            now: START,
            leases: Vec::new(),
            ended: HashMap::new(),
            pushes: 0,
            latest_end_so_far: Vec::new(),
            last_prune: None,
            pushes_at_prune: 0,
            issued: Vec::new(),
            new_sessions: 0,
            devices_seen: BTreeSet::new(),
            next_id: 1,
            secrets: HashMap::new(),
            clones: 0,
        }
    }

    /// A secret never handed out before.
    fn fresh_secret(&mut self) -> String {
        self.next_id += 1;
        format!("secret-{}", self.next_id)
    }

    /// The secret the player of `s` holds (one no session ever had, for a session never issued).
    fn held_secret(&self, s: &SessionId) -> String {
        self.secrets
            .get(s)
            .and_then(|h| h.last().cloned())
            .unwrap_or_else(|| "never-issued".to_owned())
    }

    fn fresh_session(&mut self) -> SessionId {
        self.next_id += 1;
        session(self.next_id)
    }

    fn pick(&mut self, target: &Target) -> SessionId {
        match target {
            Target::Issued(i) if !self.issued.is_empty() => i.get(&self.issued).clone(),
            _ => self.fresh_session(),
        }
    }

    fn live(&self) -> impl Iterator<Item = &ModelLease> {
        self.leases.iter().filter(|l| l.expires_at > self.now)
    }

    /// Records sessions the rules end together (one batch of log entries).
    fn end_batch(&mut self, batch: Vec<(SessionId, EndReason)>) {
        if batch.is_empty() {
            return;
        }
        let first = self.pushes;
        let last = first + batch.len() - 1;
        self.pushes += batch.len();
        let latest = batch
            .iter()
            .map(|(_, reason)| reason.at().0)
            .chain(self.latest_end_so_far.last().copied())
            .max()
            .expect("a batch is not empty");
        self.latest_end_so_far.resize(self.pushes, latest);
        for (s, reason) in batch {
            let previous = self.ended.insert(
                s,
                Ended {
                    reason,
                    first,
                    last,
                },
            );
            assert!(previous.is_none(), "the model ended a session twice");
        }
    }

    /// Whether the ticket must still remember an ended session: fewer than [`ENDED_MEMORY`] sessions ended
    /// after it, and it ended less than [`ENDED_RETENTION_MS`] before the last admit, leave or revocation.
    fn must_remember(&self, e: &Ended) -> bool {
        let recent = self
            .last_prune
            .is_none_or(|t| e.reason.at().0 >= t - ENDED_RETENTION_MS);
        e.first >= self.pushes.saturating_sub(ENDED_MEMORY) && recent
    }

    /// Whether the ticket may still remember an ended session: not [`ENDED_MEMORY`] sessions ended after it,
    /// and the last admit, leave or revocation did not forget it. That step forgets the oldest entries of the
    /// log as long as they ended more than [`ENDED_RETENTION_MS`] before it, so it forgets for sure a session
    /// logged before it when that session, every one logged earlier and the rest of its batch all ended that
    /// long before.
    fn may_remember(&self, e: &Ended) -> bool {
        let forgotten = self.last_prune.is_some_and(|t| {
            e.last < self.pushes_at_prune && self.latest_end_so_far[e.last] < t - ENDED_RETENTION_MS
        });
        e.last >= self.pushes.saturating_sub(ENDED_MEMORY) && !forgotten
    }

    /// What an admit, a leave or a revocation does first: forget the sessions that ended long before now,
    /// then end the stored leases that lapsed, as `Expired` at their lapse instant (one batch).
    fn drop_lapsed(&mut self) {
        let now = self.now;
        self.last_prune = Some(now);
        self.pushes_at_prune = self.pushes;
        let lapsed: Vec<(SessionId, EndReason)> = self
            .leases
            .iter()
            .filter(|l| l.expires_at <= now)
            .map(|l| {
                (
                    l.session.clone(),
                    EndReason::Expired {
                        at: UnixMs(l.expires_at),
                    },
                )
            })
            .collect();
        self.leases.retain(|l| l.expires_at > now);
        self.end_batch(lapsed);
    }

    /// Moves the clock to one of `instants` not past yet (so that steps land exactly on the rules' edges).
    fn jump_to_one_of(&mut self, mut instants: Vec<i64>, i: &Index) {
        instants.retain(|&t| t >= self.now);
        instants.sort_unstable();
        instants.dedup();
        if !instants.is_empty() {
            self.now = *i.get(&instants);
        }
    }

    fn step(&mut self, t: &mut TicketLeases, op: &Op) -> Result<(), TestCaseError> {
        match op {
            Op::Admit { device, variant } => self.admit(t, *device, *variant)?,
            Op::Heartbeat(target) => {
                let s = self.pick(target);
                self.heartbeat(t, &s)?;
            }
            Op::WrongSecret(target) => {
                let s = self.pick(target);
                self.refused(t, &s, "a-guess", HeartbeatDecision::WrongSecret)?;
            }
            Op::Copy(target) => {
                let s = self.pick(target);
                let copy = self
                    .secrets
                    .get(&s)
                    .and_then(|h| h.len().checked_sub(3).map(|i| h[i].clone()));
                if let Some(copy) = copy {
                    self.refused(t, &s, &copy, HeartbeatDecision::Cloned)?;
                }
            }
            Op::Leave(target) => {
                let s = self.pick(target);
                self.leave(t, &s)?;
            }
            Op::RevokeAll => self.revoke_all(t)?,
            Op::Advance(ms) => self.now += ms,
            Op::ToLapse(i) => {
                let lapses = self.leases.iter().map(|l| l.expires_at);
                self.jump_to_one_of(lapses.collect(), i);
            }
            Op::ToRetentionLimit(i) => {
                let limits = self
                    .ended
                    .values()
                    .map(|e| e.reason.at().0 + ENDED_RETENTION_MS);
                self.jump_to_one_of(limits.collect(), i);
            }
        }
        self.check_always(t)
    }

    fn admit(
        &mut self,
        t: &mut TicketLeases,
        dev: usize,
        variant: u8,
    ) -> Result<(), TestCaseError> {
        let now = self.now;
        let k = self.k;
        let label = label(dev, variant);
        let fresh = self.fresh_session();
        let live_before: Vec<ModelLease> = self.live().cloned().collect();
        let live_before_ids: BTreeSet<SessionId> =
            live_before.iter().map(|l| l.session.clone()).collect();
        let held = live_before
            .iter()
            .find(|l| l.device == dev)
            .map(|l| l.session.clone());

        // The player presents the secret of the session its device holds (a reload keeps it).
        let presented = held.as_ref().map(|s| hash(&self.held_secret(s)));
        let secret = self.fresh_secret();
        // Step 1 of the admit drops the lapsed leases.
        self.drop_lapsed();
        let decision = t.admit(
            &device(dev),
            &label,
            presented.as_ref(),
            hash(&secret),
            fresh.clone(),
            self.rules,
            UnixMs(now),
        );
        if let AdmitDecision::Admitted { session_id, .. } = &decision {
            self.secrets
                .entry(session_id.clone())
                .or_default()
                .push(secret.clone());
        }

        // 1. at most k leases at all right after an admit, and at most k live ones.
        prop_assert!(
            t.leases.len() <= k,
            "P1: {} leases stored after an admit, k = {k}",
            t.leases.len()
        );
        prop_assert!(
            t.live(UnixMs(now)).count() <= k,
            "P1: more than k = {k} live leases after an admit"
        );
        let live_after: BTreeSet<SessionId> =
            t.live(UnixMs(now)).map(|l| l.session_id.clone()).collect();

        match decision {
            AdmitDecision::Admitted {
                session_id,
                expires_at,
                reattached,
                first_play,
                superseded,
            } => {
                // 7. the ticket's first play is its first session, and only that one
                prop_assert_eq!(
                    first_play,
                    !reattached && self.new_sessions == 0,
                    "P7: first_play"
                );
                prop_assert_eq!(
                    expires_at,
                    UnixMs(now + self.rules.ttl_ms),
                    "an admitted lease lasts ttl"
                );
                prop_assert!(
                    live_after.contains(&session_id),
                    "P4: the admitted session holds no live lease"
                );
                if let Some(held) = held {
                    // 2. a device holding a live lease re-attaches to the same session.
                    prop_assert!(
                        reattached,
                        "P2: a device holding a live lease was not re-attached"
                    );
                    prop_assert_eq!(
                        &session_id,
                        &held,
                        "P2: a re-attach returned another session"
                    );
                    prop_assert!(
                        superseded.is_empty(),
                        "P2: a re-attach superseded {:?}",
                        superseded
                    );
                    prop_assert_eq!(
                        &live_after,
                        &live_before_ids,
                        "P2: a re-attach changed the live sessions"
                    );
                    let lease = self
                        .leases
                        .iter_mut()
                        .find(|l| l.session == held)
                        .expect("held lease in model");
                    lease.renewed_at = now;
                    lease.expires_at = now + self.rules.ttl_ms;
                } else {
                    prop_assert!(
                        !reattached,
                        "a device without a live lease was reported as re-attached"
                    );
                    prop_assert_eq!(
                        &session_id,
                        &fresh,
                        "a new lease must take the offered session id"
                    );
                    let full = live_before.len() >= k;
                    let survivors: BTreeSet<SessionId> = live_before_ids
                        .difference(&superseded.iter().cloned().collect())
                        .cloned()
                        .collect();
                    prop_assert!(
                        survivors.is_subset(&live_after),
                        "a live lease vanished without being superseded"
                    );
                    match self.rules.policy {
                        SharingPolicy::OldestWins => {
                            // 3. no live lease loses its seat.
                            prop_assert!(
                                !full,
                                "P3: oldest_wins admitted a new device over {} live leases",
                                live_before.len()
                            );
                            prop_assert!(
                                superseded.is_empty(),
                                "P3: oldest_wins superseded {:?}",
                                superseded
                            );
                            prop_assert!(
                                live_before_ids.is_subset(&live_after),
                                "P3: oldest_wins lost a live lease"
                            );
                        }
                        SharingPolicy::NewestWins => {
                            // 4. the least recently renewed lease goes, only when the seats are full.
                            let expected = if full { live_before.len() + 1 - k } else { 0 };
                            prop_assert_eq!(
                                superseded.len(),
                                expected,
                                "P4: wrong number of sessions superseded"
                            );
                            let mut remaining = live_before.clone();
                            for s in &superseded {
                                let oldest = remaining.iter().map(|l| l.renewed_at).min();
                                let victim = remaining.iter().position(|l| &l.session == s);
                                prop_assert!(
                                    victim.is_some(),
                                    "P4: superseded {s:?}, which held no live lease"
                                );
                                let victim = remaining.remove(victim.unwrap_or_default());
                                prop_assert_eq!(
                                    Some(victim.renewed_at),
                                    oldest,
                                    "P4: superseded a lease renewed more recently than another"
                                );
                                prop_assert!(
                                    !t.leases.iter().any(|l| &l.session_id == s),
                                    "P4: a superseded lease is still stored"
                                );
                            }
                            self.leases.retain(|l| !superseded.contains(&l.session));
                            for s in &superseded {
                                let reason = EndReason::Superseded {
                                    by_device: label.clone(),
                                    at: UnixMs(now),
                                };
                                self.end_batch(vec![(s.clone(), reason.clone())]);
                                // Asking is read-only for a session without a lease: check at once, while the
                                // successor holds its live lease.
                                let held = hash(&self.held_secret(s));
                                let check = Presented {
                                    secret: &held,
                                    fresh: None,
                                    revive_since: None,
                                };
                                prop_assert_eq!(
                                    t.heartbeat(s, check, UnixMs(now)),
                                    HeartbeatDecision::Ended(reason),
                                    "P4: superseded session"
                                );
                            }
                        }
                    }
                    self.leases.push(ModelLease {
                        session: fresh.clone(),
                        device: dev,
                        created_at: now,
                        renewed_at: now,
                        expires_at: now + self.rules.ttl_ms,
                    });
                    self.new_sessions += 1;
                    self.issued.push(fresh);
                }
                self.devices_seen.insert(dev);
            }
            // the ticket's status is the store's to read: these rules never refuse as revoked
            AdmitDecision::Revoked => prop_assert!(false, "the rules answered Revoked"),
            AdmitDecision::InUse { retry_after_s } => {
                prop_assert!(
                    held.is_none(),
                    "P2: a device holding a live lease was refused"
                );
                prop_assert_eq!(
                    self.rules.policy,
                    SharingPolicy::OldestWins,
                    "P4: newest_wins refused a new device"
                );
                prop_assert!(
                    live_before.len() >= k,
                    "P3: refused with only {} live leases, k = {k}",
                    live_before.len()
                );
                prop_assert_eq!(
                    &live_after,
                    &live_before_ids,
                    "P3: a refusal changed the live sessions"
                );
                let earliest = live_before
                    .iter()
                    .map(|l| l.expires_at)
                    .min()
                    .unwrap_or(now);
                let expected = ((earliest - now).max(0) as u64).div_ceil(1000).max(1);
                prop_assert_eq!(
                    retry_after_s,
                    expected,
                    "P3: retry_after_s, earliest lapse in {} ms",
                    earliest - now
                );
            }
        }
        Ok(())
    }

    /// 9 and 10: a heartbeat with `secret`, which is not the one the player holds: a live lease answers
    /// `expect` and stays as it is; otherwise it answers as any heartbeat would.
    fn refused(
        &mut self,
        t: &mut TicketLeases,
        s: &SessionId,
        secret: &str,
        expect: HeartbeatDecision,
    ) -> Result<(), TestCaseError> {
        let now = self.now;
        let live = self
            .leases
            .iter()
            .any(|l| &l.session == s && l.expires_at > now);
        if !live {
            return self.heartbeat_with(t, s, secret);
        }
        let before = t.leases.clone();
        let presented = hash(secret);
        let fresh = hash(&self.fresh_secret());
        let got = t.heartbeat(
            s,
            Presented {
                secret: &presented,
                fresh: Some(fresh),
                revive_since: None,
            },
            UnixMs(now),
        );
        prop_assert_eq!(&got, &expect, "P9/P10: heartbeat with another secret");
        prop_assert_eq!(
            &t.leases,
            &before,
            "P9/P10: a refused heartbeat changed the leases"
        );
        if expect == HeartbeatDecision::Cloned {
            self.clones += 1;
        }
        Ok(())
    }

    fn heartbeat(&mut self, t: &mut TicketLeases, s: &SessionId) -> Result<(), TestCaseError> {
        let secret = self.held_secret(s);
        self.heartbeat_with(t, s, &secret)
    }

    fn heartbeat_with(
        &mut self,
        t: &mut TicketLeases,
        s: &SessionId,
        secret: &str,
    ) -> Result<(), TestCaseError> {
        let now = self.now;
        let presented = hash(secret);
        let next = self.fresh_secret();
        let got = t.heartbeat(
            s,
            Presented {
                secret: &presented,
                fresh: Some(hash(&next)),
                revive_since: None,
            },
            UnixMs(now),
        );
        if let Some(pos) = self.leases.iter().position(|l| &l.session == s) {
            if self.leases[pos].expires_at > now {
                // 5. a live lease is renewed to now + ttl.
                let expires_at = now + self.rules.ttl_ms;
                prop_assert_eq!(
                    got,
                    HeartbeatDecision::Renewed {
                        expires_at: UnixMs(expires_at)
                    },
                    "P5: heartbeat on a live lease"
                );
                let lease = &mut self.leases[pos];
                lease.renewed_at = now;
                lease.expires_at = expires_at;
                self.secrets.entry(s.clone()).or_default().push(next);
            } else {
                // 5. a lapsed lease answers Expired at its lapse instant.
                let lease = self.leases.remove(pos);
                let reason = EndReason::Expired {
                    at: UnixMs(lease.expires_at),
                };
                prop_assert_eq!(
                    got,
                    HeartbeatDecision::Ended(reason.clone()),
                    "P5: heartbeat on a lapsed lease"
                );
                self.end_batch(vec![(s.clone(), reason)]);
            }
        } else if let Some(e) = self.ended.get(s) {
            prop_assert!(
                !matches!(got, HeartbeatDecision::Renewed { .. }),
                "P5: ended session {s:?} was renewed"
            );
            let remembered = HeartbeatDecision::Ended(e.reason.clone());
            if self.must_remember(e) {
                prop_assert_eq!(got, remembered, "P5: heartbeat on an ended session");
            } else if !self.may_remember(e) {
                prop_assert_eq!(
                    got,
                    HeartbeatDecision::Unknown,
                    "a forgotten session must be unknown"
                );
            } else {
                prop_assert!(
                    got == remembered || got == HeartbeatDecision::Unknown,
                    "P5: heartbeat on an ended session: {got:?}"
                );
            }
        } else {
            prop_assert_eq!(
                got,
                HeartbeatDecision::Unknown,
                "a session never issued must be unknown"
            );
        }
        Ok(())
    }

    fn leave(&mut self, t: &mut TicketLeases, s: &SessionId) -> Result<(), TestCaseError> {
        let now = self.now;
        let held = t.end_session(s, EndReason::Left { at: UnixMs(now) });
        // 5. the leave first ends every lapsed lease as expired, the named one included.
        self.drop_lapsed();
        match self.leases.iter().position(|l| &l.session == s) {
            Some(pos) => {
                prop_assert!(
                    held,
                    "end_session did not end {s:?}, which holds a live lease"
                );
                self.leases.remove(pos);
                self.end_batch(vec![(s.clone(), EndReason::Left { at: UnixMs(now) })]);
            }
            None => prop_assert!(
                !held,
                "P5: end_session ended {s:?}, which holds no live lease"
            ),
        }
        Ok(())
    }

    fn revoke_all(&mut self, t: &mut TicketLeases) -> Result<(), TestCaseError> {
        let now = self.now;
        let ended: BTreeSet<SessionId> = t
            .end_all(EndReason::Revoked { at: UnixMs(now) })
            .into_iter()
            .collect();
        // 5. the revocation first ends every lapsed lease as expired, then revokes the live ones.
        self.drop_lapsed();
        let leases = std::mem::take(&mut self.leases);
        let expected: BTreeSet<SessionId> = leases.iter().map(|l| l.session.clone()).collect();
        prop_assert_eq!(ended, expected, "P5: end_all's sessions (the live leases)");
        let batch = leases
            .into_iter()
            .map(|l| (l.session, EndReason::Revoked { at: UnixMs(now) }))
            .collect();
        self.end_batch(batch);
        Ok(())
    }

    /// Checks after every step.
    fn check_always(&self, t: &TicketLeases) -> Result<(), TestCaseError> {
        let now = UnixMs(self.now);
        // 10.
        prop_assert_eq!(t.usage.clones, self.clones, "P10: usage.clones");
        // 1.
        prop_assert!(
            t.live(now).count() <= self.k,
            "P1: {} live leases, k = {}",
            t.live(now).count(),
            self.k
        );
        // The ticket stores what the model believes.
        let mut stored: Vec<(SessionId, i64, i64)> = t
            .leases
            .iter()
            .map(|l| (l.session_id.clone(), l.expires_at.0, l.renewed_at.0))
            .collect();
        let mut believed: Vec<(SessionId, i64, i64)> = self
            .leases
            .iter()
            .map(|l| (l.session.clone(), l.expires_at, l.renewed_at))
            .collect();
        stored.sort();
        believed.sort();
        prop_assert_eq!(
            stored,
            believed,
            "the stored leases (session, expires_at, renewed_at)"
        );
        let live: BTreeSet<&SessionId> = t.live(now).map(|l| &l.session_id).collect();
        let believed_live: BTreeSet<&SessionId> = self.live().map(|l| &l.session).collect();
        prop_assert_eq!(live, believed_live, "the live leases");
        for l in &t.leases {
            let m = self
                .leases
                .iter()
                .find(|m| m.session == l.session_id)
                .expect("compared above");
            prop_assert_eq!(&l.device_id, &device(m.device), "a lease's device");
            prop_assert_eq!(
                l.created_at,
                UnixMs(m.created_at),
                "a lease's creation time"
            );
        }
        // 5. an ended session never holds a lease again.
        for l in &t.leases {
            prop_assert!(
                !self.ended.contains_key(&l.session_id),
                "P5: ended session {:?} holds a lease",
                l.session_id
            );
        }
        // The log of ended sessions holds only sessions that ended, for the reason they ended, every one it
        // must still remember, and none it must have forgotten.
        prop_assert!(
            t.ended.len() <= ENDED_MEMORY,
            "{} ended sessions remembered",
            t.ended.len()
        );
        for e in &t.ended {
            let Some(m) = self.ended.get(&e.session_id) else {
                return Err(TestCaseError::fail(format!(
                    "{:?} is remembered as ended but never ended",
                    e.session_id
                )));
            };
            prop_assert_eq!(
                &e.reason,
                &m.reason,
                "the remembered end reason of {:?}",
                e.session_id
            );
        }
        for (s, e) in &self.ended {
            let remembered = t.ended.iter().any(|x| &x.session_id == s);
            if self.must_remember(e) {
                prop_assert!(remembered, "P5: {s:?} ({:?}) was forgotten", e.reason);
            } else if !self.may_remember(e) {
                prop_assert!(
                    !remembered,
                    "{s:?} ({:?}) is remembered after it must have been forgotten",
                    e.reason
                );
            }
        }
        // 6.
        prop_assert_eq!(t.usage.sessions, self.new_sessions, "P6: usage.sessions");
        let listed: Vec<&DeviceId> = t.usage.devices.iter().map(|d| &d.device_id).collect();
        let distinct: BTreeSet<&str> = listed.iter().map(|d| d.as_str()).collect();
        prop_assert_eq!(
            distinct.len(),
            listed.len(),
            "P6: usage.devices lists a device twice: {:?}",
            listed
        );
        let seen: BTreeSet<String> = self
            .devices_seen
            .iter()
            .map(|&i| device(i).as_str().to_owned())
            .collect();
        prop_assert_eq!(
            distinct,
            seen.iter().map(String::as_str).collect::<BTreeSet<_>>(),
            "P6: usage.devices"
        );
        Ok(())
    }
}

fn run(rules: SeatRules, ops: &[Op]) -> Result<(), TestCaseError> {
    let mut model = Model::new(rules);
    let mut t = TicketLeases::default();
    for op in ops {
        model.step(&mut t, op)?;
    }
    Ok(())
}

fn rules() -> impl Strategy<Value = SeatRules> {
    // Half the lifetimes are multiples of 500 ms, like half the clock steps, so that steps land exactly on
    // expiry instants.
    let ttl_ms = prop_oneof![1_000i64..=60_000, (2i64..=120).prop_map(|n| n * 500)];
    let policy = prop_oneof![
        Just(SharingPolicy::NewestWins),
        Just(SharingPolicy::OldestWins)
    ];
    (1u32..=4, policy, ttl_ms).prop_map(|(max_devices, policy, ttl_ms)| SeatRules {
        max_devices,
        policy,
        ttl_ms,
    })
}

fn op() -> impl Strategy<Value = Op> {
    let target =
        prop_oneof![9 => any::<Index>().prop_map(Target::Issued), 1 => Just(Target::Unknown)];
    prop_oneof![
        10 => (0..DEVICES, 0u8..2).prop_map(|(device, variant)| Op::Admit { device, variant }),
        6 => target.clone().prop_map(Op::Heartbeat),
        1 => target.clone().prop_map(Op::WrongSecret),
        2 => target.clone().prop_map(Op::Copy),
        2 => target.prop_map(Op::Leave),
        2 => Just(Op::RevokeAll),
        6 => prop_oneof![0i64..60_000, (0i64..120).prop_map(|n| n * 500)].prop_map(Op::Advance),
        // A rare long pause, so that the rules forget sessions that ended long ago.
        1 => (ENDED_RETENTION_MS / 2..=ENDED_RETENTION_MS * 2).prop_map(Op::Advance),
        2 => any::<Index>().prop_map(Op::ToLapse),
        1 => any::<Index>().prop_map(Op::ToRetentionLimit),
    ]
}

fn config() -> Config {
    // No failure persistence: a failing case is printed, not written next to the sources.
    Config {
        cases: 512,
        failure_persistence: None,
        ..Config::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn lease_rules_hold_under_any_interleaving(rules in rules(), ops in prop::collection::vec(op(), 1..=60)) {
        run(rules, &ops)?;
    }
}

/// A show open from `starts` to `ends`; `variant` changes everything else about it.
fn show(starts: i64, ends: i64, variant: bool) -> Show {
    let t = |ms| UnixMs(ms).to_datetime();
    Show {
        id: ShowId::parse(if variant { "other-show" } else { "s1" }).expect("a valid show id"),
        title: if variant { "Another" } else { "Show" }.into(),
        description: if variant { "text" } else { "" }.into(),
        kind: if variant {
            ShowKind::Live
        } else {
            ShowKind::Vod
        },
        starts_at: t(starts),
        ends_at: t(ends),
        stream_path: if variant { "other/x" } else { "demo" }.into(),
        max_devices: if variant { 7 } else { 1 },
        policy: if variant {
            SharingPolicy::OldestWins
        } else {
            SharingPolicy::NewestWins
        },
        heartbeat_interval_s: if variant { 5 } else { 15 },
        lease_ttl_s: if variant { 11 } else { 45 },
        grant_ttl_s: 120,
        geo: if variant {
            GeoPolicy {
                deny_countries: vec![Country::parse("FR").expect("a country")],
                unknown: UnknownAddresses::Deny,
                ..GeoPolicy::default()
            }
        } else {
            GeoPolicy::default()
        },
        cdns: if variant {
            vec![CdnId::parse("cdn-a").expect("a CDN id")]
        } else {
            Vec::new()
        },
        published: !variant,
        encryption: if variant {
            usher_core::show::Encryption::Aes128
        } else {
            usher_core::show::Encryption::None
        },
        live_dvr_s: None,
        live_recording: variant,
        capacity: None,
        admit_rate_per_s: None,
        translations: Default::default(),
        poster: variant.then(|| "v1".into()),
        created_at: t(START - 86_400_000),
        updated_at: t(if variant { START } else { START - 86_400_000 }),
    }
}

fn geo_check() -> impl Strategy<Value = GeoCheck> {
    let country = prop_oneof![
        Just(None),
        prop::sample::select(vec!["DE", "FR", "US", "XK"])
            .prop_map(|c| Some(Country::parse(c).expect("a country"))),
    ];
    prop_oneof![
        Just(GeoCheck::Allowed),
        Just(GeoCheck::Undecided),
        country.prop_map(|country| GeoCheck::Refused { country }),
    ]
}

/// Milliseconds around [`START`], whole seconds half the time (as the API's RFC 3339 instants are).
fn instant(range: std::ops::RangeInclusive<i64>) -> impl Strategy<Value = i64> {
    let (lo, hi) = (*range.start(), *range.end());
    prop_oneof![
        range.prop_map(|d| START + d),
        (lo / 1000..=hi / 1000).prop_map(|s| START + s * 1000),
    ]
}

/// A renewal: the show's window, the ticket's own bounds, Geo's answer, and an instant that lands
/// anywhere, or within a few milliseconds of the ticket's window end.
fn renewal() -> impl Strategy<Value = (i64, i64, TicketBounds, GeoCheck, i64, i64)> {
    let hour = 3_600_000;
    (
        instant(-2 * hour..=2 * hour),
        1_000..=4 * hour,
        prop::option::of(instant(-3 * hour..=3 * hour)),
        prop::option::of(instant(-3 * hour..=6 * hour)),
        geo_check(),
        prop_oneof![Just(None), (-3i64..=3).prop_map(Some)],
        instant(-3 * hour..=6 * hour),
    )
        .prop_map(|(starts, len, from, until, geo, near_end, anywhere)| {
            let bounds = TicketBounds {
                valid_from: from.map(UnixMs),
                valid_until: until.map(UnixMs),
            };
            let ends = starts + len;
            let until = bounds.window(&show(starts, ends, false)).1.0;
            let now = near_end.map_or(anywhere, |d| until + d);
            (starts, ends, bounds, geo, now, until)
        })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn a_renewed_session_ends_only_by_its_window_or_a_geo_refusal(
        (starts, ends, bounds, geo, now, until) in renewal()
    ) {
        let s = show(starts, ends, false);
        let got = after_renewal(&bounds, &s, geo, UnixMs(now));
        // 7.
        if now >= until {
            prop_assert_eq!(
                &got,
                &AfterRenewal::End(EndReason::WindowEnded { at: UnixMs(now) }),
                "P7: renewed at {} ms after the window closed", now - until
            );
        } else {
            match geo {
                GeoCheck::Refused { country } => prop_assert_eq!(
                    &got,
                    &AfterRenewal::End(EndReason::GeoBlocked { at: UnixMs(now), country }),
                    "P7: a Geo refusal inside the window"
                ),
                GeoCheck::Allowed | GeoCheck::Undecided => prop_assert_eq!(
                    &got,
                    &AfterRenewal::Continue,
                    "P7: {:?} inside the window", geo
                ),
            }
        }
        if let AfterRenewal::End(reason) = &got {
            prop_assert_eq!(reason.at(), UnixMs(now), "P7: a session ends at the renewal's instant");
        }
        if geo == GeoCheck::Undecided {
            prop_assert_eq!(
                &got,
                &after_renewal(&bounds, &s, GeoCheck::Allowed, UnixMs(now)),
                "P7: Undecided answered otherwise than Allowed"
            );
        }
        // 8.
        prop_assert_eq!(&got, &after_renewal(&bounds, &s, geo, UnixMs(now)), "P8: asked twice");
        prop_assert_eq!(
            &got,
            &after_renewal(&bounds, &show(starts, ends, true), geo, UnixMs(now)),
            "P8: the rest of the show changed the answer"
        );
        let (from, until) = bounds.window(&s);
        let spelled_out = TicketBounds { valid_from: Some(from), valid_until: Some(until) };
        prop_assert_eq!(
            &got,
            &after_renewal(&spelled_out, &s, geo, UnixMs(now)),
            "P8: the same window spelled as the ticket's own bounds"
        );
    }
}
