//! Property tests of the lease rules in `usher_core::lease` (DESIGN.md, "Sharing protection: the lease
//! protocol").
//!
//! Each case draws random [`SeatRules`] (1–4 devices, `newest_wins` or `oldest_wins`, a lease lifetime of
//! 1–60 s) and up to 60 operations on ONE [`TicketLeases`]: admits from up to 6 devices, heartbeats of issued
//! (or unknown) sessions, leaves, revocations and clock steps of 0–60 s. A small model kept alongside (the
//! leases the ticket should hold, and why each ended session ended) checks after every step that:
//!
//! 1. the ticket never holds more than `k` unexpired leases, nor more than `k` leases at all after an admit;
//! 2. a device that holds an unexpired lease is never refused: it re-attaches to the same session;
//! 3. under `oldest_wins` an admit never takes a live lease's seat, and a refusal's `retry_after_s` is the
//!    whole seconds (rounded up, at least 1) until the earliest lease lapses;
//! 4. under `newest_wins` a new device is always admitted, supersedes exactly the least recently renewed
//!    lease when (and only when) all seats are taken, holds a live lease itself, and the superseded session's
//!    heartbeat answers `Superseded` by the new device's label at the admit time;
//! 5. a heartbeat renews a live lease to `now + ttl`; one on a lapsed lease answers `Expired` at the lapse
//!    instant; an ended session never holds a lease again, and answers its end reason while the ticket
//!    remembers it ([`ENDED_MEMORY`]);
//! 6. `usage.sessions` counts the admits that created a session, and `usage.devices` lists each admitted
//!    device exactly once.

use std::collections::{BTreeSet, HashMap};

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, TestCaseError};
use usher_core::clock::UnixMs;
use usher_core::ids::{DeviceId, SessionId};
use usher_core::lease::{AdmitDecision, ENDED_MEMORY, EndReason, HeartbeatDecision, SeatRules, TicketLeases};
use usher_core::show::SharingPolicy;

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
    /// `heartbeat`.
    Heartbeat(Target),
    /// `end_session` with `EndReason::Left`.
    Leave(Target),
    /// `end_all` with `EndReason::Revoked`.
    RevokeAll,
    /// The clock moves forward by this many milliseconds.
    Advance(i64),
}

/// How the model treats a lease that lapsed but is still stored (leases are only dropped by the next admit or
/// by their own heartbeat) when `end_session` or `end_all` reaches it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lapsed {
    /// As `lease.rs` does: the stored lease is ended for the given reason and counts as held.
    AsStored,
    /// As property 5 reads: a lapsed lease already ended (`Expired`) and is no longer held.
    Expired,
}

fn device(i: usize) -> DeviceId {
    DeviceId::parse(&format!("device-{i:02}")).expect("a valid device id")
}

fn label(i: usize, variant: u8) -> String {
    format!("Device {i} ({variant})")
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
    lapsed: Lapsed,
    now: i64,
    /// The leases the ticket stores, lapsed ones included until the rules drop them.
    leases: Vec<ModelLease>,
    /// Every session that ended, with the reason its heartbeat should answer.
    ended: HashMap<SessionId, Ended>,
    /// How many entries the rules have appended to the ticket's log of ended sessions.
    pushes: usize,
    /// Every session an admit returned, in order.
    issued: Vec<SessionId>,
    /// Admits that created a session.
    new_sessions: u64,
    /// Devices admitted at least once.
    devices_seen: BTreeSet<usize>,
    next_id: u64,
}

impl Model {
    fn new(rules: SeatRules, lapsed: Lapsed) -> Self {
        Self {
            rules,
            k: rules.max_devices as usize,
            lapsed,
            now: START,
            leases: Vec::new(),
            ended: HashMap::new(),
            pushes: 0,
            issued: Vec::new(),
            new_sessions: 0,
            devices_seen: BTreeSet::new(),
            next_id: 1,
        }
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
        for (s, reason) in batch {
            let previous = self.ended.insert(s, Ended { reason, first, last });
            assert!(previous.is_none(), "the model ended a session twice");
        }
    }

    /// The reason a session ended by `reason` now should answer, given the lapsed-lease reading.
    fn end_reason(&self, lease: &ModelLease, reason: EndReason) -> EndReason {
        if self.lapsed == Lapsed::Expired && lease.expires_at <= self.now {
            EndReason::Expired { at: UnixMs(lease.expires_at) }
        } else {
            reason
        }
    }

    fn step(&mut self, t: &mut TicketLeases, op: &Op) -> Result<(), TestCaseError> {
        match op {
            Op::Admit { device, variant } => self.admit(t, *device, *variant)?,
            Op::Heartbeat(target) => {
                let s = self.pick(target);
                self.heartbeat(t, &s)?;
            }
            Op::Leave(target) => {
                let s = self.pick(target);
                self.leave(t, &s)?;
            }
            Op::RevokeAll => self.revoke_all(t)?,
            Op::Advance(ms) => self.now += ms,
        }
        self.check_always(t)
    }

    fn admit(&mut self, t: &mut TicketLeases, dev: usize, variant: u8) -> Result<(), TestCaseError> {
        let now = self.now;
        let k = self.k;
        let label = label(dev, variant);
        let fresh = self.fresh_session();
        let live_before: Vec<ModelLease> = self.live().cloned().collect();
        let live_before_ids: BTreeSet<SessionId> = live_before.iter().map(|l| l.session.clone()).collect();
        let held = live_before.iter().find(|l| l.device == dev).map(|l| l.session.clone());

        // Step 1 of the admit drops the lapsed leases.
        let lapsed: Vec<(SessionId, EndReason)> = self
            .leases
            .iter()
            .filter(|l| l.expires_at <= now)
            .map(|l| (l.session.clone(), EndReason::Expired { at: UnixMs(l.expires_at) }))
            .collect();
        self.leases.retain(|l| l.expires_at > now);
        self.end_batch(lapsed);

        let decision = t.admit(&device(dev), &label, fresh.clone(), self.rules, UnixMs(now));

        // 1. at most k leases at all right after an admit, and at most k live ones.
        prop_assert!(t.leases.len() <= k, "P1: {} leases stored after an admit, k = {k}", t.leases.len());
        prop_assert!(t.live(UnixMs(now)).count() <= k, "P1: more than k = {k} live leases after an admit");
        let live_after: BTreeSet<SessionId> = t.live(UnixMs(now)).map(|l| l.session_id.clone()).collect();

        match decision {
            AdmitDecision::Admitted { session_id, expires_at, reattached, superseded } => {
                prop_assert_eq!(expires_at, UnixMs(now + self.rules.ttl_ms), "an admitted lease lasts ttl");
                prop_assert!(live_after.contains(&session_id), "P4: the admitted session holds no live lease");
                if let Some(held) = held {
                    // 2. a device holding a live lease re-attaches to the same session.
                    prop_assert!(reattached, "P2: a device holding a live lease was not re-attached");
                    prop_assert_eq!(&session_id, &held, "P2: a re-attach returned another session");
                    prop_assert!(superseded.is_empty(), "P2: a re-attach superseded {:?}", superseded);
                    prop_assert_eq!(&live_after, &live_before_ids, "P2: a re-attach changed the live sessions");
                    let lease = self.leases.iter_mut().find(|l| l.session == held).expect("held lease in model");
                    lease.renewed_at = now;
                    lease.expires_at = now + self.rules.ttl_ms;
                } else {
                    prop_assert!(!reattached, "a device without a live lease was reported as re-attached");
                    prop_assert_eq!(&session_id, &fresh, "a new lease must take the offered session id");
                    let full = live_before.len() >= k;
                    let survivors: BTreeSet<SessionId> = live_before_ids.difference(&superseded.iter().cloned().collect()).cloned().collect();
                    prop_assert!(survivors.is_subset(&live_after), "a live lease vanished without being superseded");
                    match self.rules.policy {
                        SharingPolicy::OldestWins => {
                            // 3. no live lease loses its seat.
                            prop_assert!(!full, "P3: oldest_wins admitted a new device over {} live leases", live_before.len());
                            prop_assert!(superseded.is_empty(), "P3: oldest_wins superseded {:?}", superseded);
                            prop_assert!(live_before_ids.is_subset(&live_after), "P3: oldest_wins lost a live lease");
                        }
                        SharingPolicy::NewestWins => {
                            // 4. exactly the least recently renewed lease goes, and only when the seats are full.
                            let expected = if full { live_before.len() + 1 - k } else { 0 };
                            prop_assert_eq!(superseded.len(), expected, "P4: wrong number of sessions superseded");
                            let mut remaining = live_before.clone();
                            for s in &superseded {
                                let oldest = remaining.iter().map(|l| l.renewed_at).min();
                                let victim = remaining.iter().position(|l| &l.session == s);
                                prop_assert!(victim.is_some(), "P4: superseded {s:?}, which held no live lease");
                                let victim = remaining.remove(victim.unwrap_or_default());
                                prop_assert_eq!(Some(victim.renewed_at), oldest, "P4: superseded a lease renewed more recently than another");
                                prop_assert!(!t.leases.iter().any(|l| &l.session_id == s), "P4: a superseded lease is still stored");
                            }
                            self.leases.retain(|l| !superseded.contains(&l.session));
                            for s in &superseded {
                                let reason = EndReason::Superseded { by_device: label.clone(), at: UnixMs(now) };
                                self.end_batch(vec![(s.clone(), reason.clone())]);
                                // Asking is read-only for a session without a lease: check at once, while the
                                // successor holds its live lease.
                                prop_assert_eq!(t.heartbeat(s, UnixMs(now)), HeartbeatDecision::Ended(reason), "P4: superseded session");
                            }
                        }
                    }
                    self.leases.push(ModelLease { session: fresh.clone(), device: dev, created_at: now, renewed_at: now, expires_at: now + self.rules.ttl_ms });
                    self.new_sessions += 1;
                    self.issued.push(fresh);
                }
                self.devices_seen.insert(dev);
            }
            AdmitDecision::InUse { retry_after_s } => {
                prop_assert!(held.is_none(), "P2: a device holding a live lease was refused");
                prop_assert_eq!(self.rules.policy, SharingPolicy::OldestWins, "P4: newest_wins refused a new device");
                prop_assert!(live_before.len() >= k, "P3: refused with only {} live leases, k = {k}", live_before.len());
                prop_assert_eq!(&live_after, &live_before_ids, "P3: a refusal changed the live sessions");
                let earliest = live_before.iter().map(|l| l.expires_at).min().unwrap_or(now);
                let expected = ((earliest - now).max(0) as u64).div_ceil(1000).max(1);
                prop_assert_eq!(retry_after_s, expected, "P3: retry_after_s, earliest lapse in {} ms", earliest - now);
            }
        }
        Ok(())
    }

    fn heartbeat(&mut self, t: &mut TicketLeases, s: &SessionId) -> Result<(), TestCaseError> {
        let now = self.now;
        let got = t.heartbeat(s, UnixMs(now));
        if let Some(pos) = self.leases.iter().position(|l| &l.session == s) {
            if self.leases[pos].expires_at > now {
                // 5. a live lease is renewed to now + ttl.
                let expires_at = now + self.rules.ttl_ms;
                prop_assert_eq!(got, HeartbeatDecision::Renewed { expires_at: UnixMs(expires_at) }, "P5: heartbeat on a live lease");
                let lease = &mut self.leases[pos];
                lease.renewed_at = now;
                lease.expires_at = expires_at;
            } else {
                // 5. a lapsed lease answers Expired at its lapse instant.
                let lease = self.leases.remove(pos);
                let reason = EndReason::Expired { at: UnixMs(lease.expires_at) };
                prop_assert_eq!(got, HeartbeatDecision::Ended(reason.clone()), "P5: heartbeat on a lapsed lease");
                self.end_batch(vec![(s.clone(), reason)]);
            }
        } else if let Some(e) = self.ended.get(s) {
            prop_assert!(!matches!(got, HeartbeatDecision::Renewed { .. }), "P5: ended session {s:?} was renewed");
            let floor = self.pushes.saturating_sub(ENDED_MEMORY);
            let remembered = HeartbeatDecision::Ended(e.reason.clone());
            if e.first >= floor {
                prop_assert_eq!(got, remembered, "P5: heartbeat on an ended session");
            } else if e.last < floor {
                prop_assert_eq!(got, HeartbeatDecision::Unknown, "a forgotten session must be unknown");
            } else {
                prop_assert!(got == remembered || got == HeartbeatDecision::Unknown, "P5: heartbeat on an ended session: {got:?}");
            }
        } else {
            prop_assert_eq!(got, HeartbeatDecision::Unknown, "a session never issued must be unknown");
        }
        Ok(())
    }

    fn leave(&mut self, t: &mut TicketLeases, s: &SessionId) -> Result<(), TestCaseError> {
        let now = self.now;
        let held = t.end_session(s, EndReason::Left { at: UnixMs(now) });
        match self.leases.iter().position(|l| &l.session == s) {
            Some(pos) => {
                let lease = self.leases.remove(pos);
                let live = lease.expires_at > now;
                prop_assert_eq!(held, live || self.lapsed == Lapsed::AsStored, "end_session's answer for a lease lapsing at {}", lease.expires_at - now);
                let reason = self.end_reason(&lease, EndReason::Left { at: UnixMs(now) });
                self.end_batch(vec![(s.clone(), reason)]);
            }
            None => prop_assert!(!held, "end_session ended {s:?}, which held no lease"),
        }
        Ok(())
    }

    fn revoke_all(&mut self, t: &mut TicketLeases) -> Result<(), TestCaseError> {
        let now = self.now;
        let ended: BTreeSet<SessionId> = t.end_all(EndReason::Revoked { at: UnixMs(now) }).into_iter().collect();
        let leases = std::mem::take(&mut self.leases);
        let expected: BTreeSet<SessionId> = leases
            .iter()
            .filter(|l| l.expires_at > now || self.lapsed == Lapsed::AsStored)
            .map(|l| l.session.clone())
            .collect();
        prop_assert_eq!(ended, expected, "end_all's sessions");
        let batch = leases.iter().map(|l| (l.session.clone(), self.end_reason(l, EndReason::Revoked { at: UnixMs(now) }))).collect();
        self.end_batch(batch);
        Ok(())
    }

    /// Checks after every step.
    fn check_always(&self, t: &TicketLeases) -> Result<(), TestCaseError> {
        let now = UnixMs(self.now);
        // 1.
        prop_assert!(t.live(now).count() <= self.k, "P1: {} live leases, k = {}", t.live(now).count(), self.k);
        // The ticket stores what the model believes.
        let mut stored: Vec<(SessionId, i64, i64)> = t.leases.iter().map(|l| (l.session_id.clone(), l.expires_at.0, l.renewed_at.0)).collect();
        let mut believed: Vec<(SessionId, i64, i64)> = self.leases.iter().map(|l| (l.session.clone(), l.expires_at, l.renewed_at)).collect();
        stored.sort();
        believed.sort();
        prop_assert_eq!(stored, believed, "the stored leases (session, expires_at, renewed_at)");
        for l in &t.leases {
            let m = self.leases.iter().find(|m| m.session == l.session_id).expect("compared above");
            prop_assert_eq!(&l.device_id, &device(m.device), "a lease's device");
            prop_assert_eq!(l.created_at, UnixMs(m.created_at), "a lease's creation time");
        }
        // 5. an ended session never holds a lease again.
        for l in &t.leases {
            prop_assert!(!self.ended.contains_key(&l.session_id), "P5: ended session {:?} holds a lease", l.session_id);
        }
        prop_assert_eq!(t.ended.len(), self.pushes.min(ENDED_MEMORY), "the log of ended sessions");
        // 6.
        prop_assert_eq!(t.usage.sessions, self.new_sessions, "P6: usage.sessions");
        let listed: Vec<&DeviceId> = t.usage.devices.iter().map(|d| &d.device_id).collect();
        let distinct: BTreeSet<&str> = listed.iter().map(|d| d.as_str()).collect();
        prop_assert_eq!(distinct.len(), listed.len(), "P6: usage.devices lists a device twice: {:?}", listed);
        let seen: BTreeSet<String> = self.devices_seen.iter().map(|&i| device(i).as_str().to_owned()).collect();
        prop_assert_eq!(distinct, seen.iter().map(String::as_str).collect::<BTreeSet<_>>(), "P6: usage.devices");
        Ok(())
    }
}

fn run(rules: SeatRules, ops: &[Op], lapsed: Lapsed) -> Result<(), TestCaseError> {
    let mut model = Model::new(rules, lapsed);
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
    let policy = prop_oneof![Just(SharingPolicy::NewestWins), Just(SharingPolicy::OldestWins)];
    (1u32..=4, policy, ttl_ms).prop_map(|(max_devices, policy, ttl_ms)| SeatRules { max_devices, policy, ttl_ms })
}

fn op() -> impl Strategy<Value = Op> {
    let target = prop_oneof![9 => any::<Index>().prop_map(Target::Issued), 1 => Just(Target::Unknown)];
    prop_oneof![
        5 => (0..DEVICES, 0u8..2).prop_map(|(device, variant)| Op::Admit { device, variant }),
        3 => target.clone().prop_map(Op::Heartbeat),
        1 => target.prop_map(Op::Leave),
        1 => Just(Op::RevokeAll),
        3 => prop_oneof![0i64..60_000, (0i64..120).prop_map(|n| n * 500)].prop_map(Op::Advance),
    ]
}

fn config() -> Config {
    // No failure persistence: a failing case is printed, not written next to the sources.
    Config { cases: 512, failure_persistence: None, ..Config::default() }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn lease_rules_hold_under_any_interleaving(rules in rules(), ops in prop::collection::vec(op(), 1..=60)) {
        run(rules, &ops, Lapsed::AsStored)?;
    }

    #[test]
    fn lapsed_leases_end_as_expired(rules in rules(), ops in prop::collection::vec(op(), 1..=60)) {
        run(rules, &ops, Lapsed::Expired)?;
    }
}
