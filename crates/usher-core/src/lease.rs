//! The lease protocol of DESIGN.md as pure rules over one ticket's leases.
//!
//! A backend keeps one [`TicketLeases`] per ticket and applies these rules atomically (the embedded store
//! under a lock, Redis in a Lua script that mirrors them). Nothing here reads a clock: every step takes
//! `now`, so the rules are tested under any interleaving with an injected time.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::clock::UnixMs;
use crate::geo::Country;
use crate::ids::{DeviceId, SessionId};
use crate::secret::SecretHash;
use crate::session_secret::{Check, SecretChain};
use crate::show::{SharingPolicy, Show};
use crate::ticket::TicketBounds;

/// How many ended sessions a ticket remembers, so their players learn why they stopped (enough for a
/// storm of 200 devices racing for one seat).
pub const ENDED_MEMORY: usize = 256;
/// How long an ended session is remembered, in milliseconds.
pub const ENDED_RETENTION_MS: i64 = 3_600_000;
/// How many distinct devices a ticket's usage lists.
pub const DEVICE_MEMORY: usize = 64;
/// How many distinct countries a ticket's usage lists.
pub const COUNTRY_MEMORY: usize = 32;
/// How many distinct client addresses a ticket's usage lists.
pub const ADDRESS_MEMORY: usize = 32;

/// Keeps `list` as "distinct entries, most recent last, at most `memory`": an entry that `is_it` finds is
/// updated by `touch` and moved to the end; otherwise `make`'s goes at the end, dropping the oldest when
/// the list is full. (The Lua `remember` in usher-store's seats.lua is the same rule.)
fn remember<S>(
    list: &mut Vec<S>,
    memory: usize,
    is_it: impl Fn(&S) -> bool,
    touch: impl FnOnce(&mut S),
    make: impl FnOnce() -> S,
) {
    if let Some(pos) = list.iter().position(is_it) {
        let mut seen = list.remove(pos);
        touch(&mut seen);
        list.push(seen);
    } else {
        if list.len() >= memory {
            list.remove(0);
        }
        // grow one at a time: most tickets see one device, one country, one address, and `push`'s
        // doubling would reserve four of each (~400 bytes per live ticket in the memory benchmark)
        list.reserve_exact(1);
        list.push(make());
    }
}

/// One device's claim on one of a ticket's seats.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The session holding the lease.
    pub session_id: SessionId,
    /// The device playing.
    pub device_id: DeviceId,
    /// A human label of the device ("Chrome on Linux").
    pub device_label: String,
    /// When the session was admitted.
    pub created_at: UnixMs,
    /// When the lease was last renewed.
    pub renewed_at: UnixMs,
    /// When the lease lapses without a heartbeat.
    pub expires_at: UnixMs,
    /// The lease's lifetime in milliseconds, applied at each renewal.
    pub ttl_ms: i64,
    /// The session's secrets (keyed hashes): only their holder controls the session. A lease stored
    /// before sessions had secrets has none, and no presented secret matches it: its player admits again.
    #[serde(default)]
    pub secret: SecretChain,
}

/// Why a session no longer holds its lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum EndReason {
    /// Another device took the seat.
    Superseded {
        /// The label of the device that took it.
        by_device: String,
        /// When.
        at: UnixMs,
    },
    /// The ticket was revoked.
    Revoked {
        /// When.
        at: UnixMs,
    },
    /// The player left (page closed).
    Left {
        /// When.
        at: UnixMs,
    },
    /// An admin ended the session.
    EndedByAdmin {
        /// When.
        at: UnixMs,
    },
    /// The ticket's window closed.
    WindowEnded {
        /// When.
        at: UnixMs,
    },
    /// No heartbeat came within the lease's lifetime.
    Expired {
        /// When the lease lapsed.
        at: UnixMs,
    },
    /// A heartbeat came from where the show's Geo policy refuses.
    GeoBlocked {
        /// When.
        at: UnixMs,
        /// The country detected, when the database knew it.
        country: Option<Country>,
    },
}

impl EndReason {
    /// When the session ended.
    pub fn at(&self) -> UnixMs {
        match self {
            Self::Superseded { at, .. }
            | Self::Revoked { at }
            | Self::Left { at }
            | Self::EndedByAdmin { at }
            | Self::WindowEnded { at }
            | Self::Expired { at }
            | Self::GeoBlocked { at, .. } => *at,
        }
    }
}

/// A session that ended, remembered for its player's next heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndedSession {
    /// The session.
    pub session_id: SessionId,
    /// Why it ended.
    pub reason: EndReason,
}

/// A device that played on the ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceSeen {
    /// The device.
    pub device_id: DeviceId,
    /// Its label at the last visit.
    pub label: String,
    /// First admit.
    pub first_seen: UnixMs,
    /// Last admit or heartbeat.
    pub last_seen: UnixMs,
}

/// What a ticket has been used for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// First admit.
    pub first_play_at: Option<UnixMs>,
    /// Last admit or heartbeat.
    pub last_seen_at: Option<UnixMs>,
    /// Sessions created (a re-attach of the same device is not a new session).
    pub sessions: u64,
    /// Distinct devices, most recent last (at most [`DEVICE_MEMORY`]).
    pub devices: Vec<DeviceSeen>,
    /// Countries admits came from, most recent last (at most [`COUNTRY_MEMORY`]); usage recorded before
    /// Geo existed reads as none.
    #[serde(default)]
    pub countries: Vec<CountrySeen>,
    /// Client addresses admits came from, most recent last (at most [`ADDRESS_MEMORY`]); usage recorded
    /// before addresses were kept reads as none.
    #[serde(default)]
    pub addresses: Vec<AddressSeen>,
    /// Times a session's superseded credentials were presented again (a copied cookie jar, session
    /// secret or player URL): each is a second player on one seat, stopped with `session_cloned`.
    #[serde(default)]
    pub clones: u64,
    /// The last such time.
    #[serde(default)]
    pub last_clone_at: Option<UnixMs>,
}

/// A client address an admit came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressSeen {
    /// The address, as the server saw the client (after trusted proxies).
    pub address: std::net::IpAddr,
    /// First admit from it.
    pub first_seen: UnixMs,
    /// Last admit from it.
    pub last_seen: UnixMs,
    /// Set once the retention rules truncated the address to its network (`crate::privacy`): the
    /// network's prefix length (24 or 48), `address` then being the network's first address. `None`:
    /// the exact address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<u8>,
}

/// A country an admit came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountrySeen {
    /// The country, as the GeoIP database named it.
    pub country: Country,
    /// First admit from it.
    pub first_seen: UnixMs,
    /// Last admit from it.
    pub last_seen: UnixMs,
}

/// The terms an admit runs under, from the ticket and its show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeatRules {
    /// Devices at once (k ≥ 1).
    pub max_devices: u32,
    /// Who wins when all seats are taken.
    pub policy: SharingPolicy,
    /// Lease lifetime in milliseconds.
    pub ttl_ms: i64,
}

/// The outcome of an admit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdmitDecision {
    /// The device holds a lease.
    Admitted {
        /// Its session (an existing one when the device re-attached).
        session_id: SessionId,
        /// When the lease lapses.
        expires_at: UnixMs,
        /// The device already held a lease and renewed it.
        reattached: bool,
        /// This admit is the ticket's first play (its first session; `ticket.first_play`).
        first_play: bool,
        /// Sessions that lost their seat to this admit.
        superseded: Vec<SessionId>,
    },
    /// All seats are taken under `oldest_wins`.
    InUse {
        /// Seconds until the earliest lease lapses.
        retry_after_s: u64,
    },
    /// The ticket was revoked (the store reads its status inside the same atomic step).
    Revoked,
}

/// The outcome of a heartbeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeartbeatDecision {
    /// The lease was renewed.
    Renewed {
        /// The new expiry.
        expires_at: UnixMs,
    },
    /// The session no longer holds a lease.
    Ended(EndReason),
    /// The ticket does not know the session (never existed, or forgotten).
    Unknown,
    /// The secret presented was the session's once and has been superseded: a second player holds a
    /// copy of the session's credentials. It is refused; the session plays on for the player holding
    /// the current secret.
    Cloned,
    /// The secret presented was never the session's (or none was).
    WrongSecret,
}

/// What a renewal presents: the secret the player holds and, when the step renews, the fresh secret it
/// hands out (its keyed hash). Without `fresh` the step only checks (a master playlist, a web player's
/// steering reload): it neither renews the lease nor moves the secret.
#[derive(Debug, Clone, Copy)]
pub struct Presented<'a> {
    /// The secret presented.
    pub secret: &'a SecretHash,
    /// The secret handed out when the step renews.
    pub fresh: Option<SecretHash>,
    /// The store was unreachable from this instant on, and has been answering again for a short while
    /// only (a store outage the caller rode: its players kept playing on `degraded` heartbeats, and no
    /// lease could be renewed meanwhile). A lease past its expiry that was still running at this instant
    /// and that no step has dropped since is held for this step as if it had not lapsed: a renewal
    /// renews it, a check passes. `None` for every step outside such a while.
    pub revive_since: Option<UnixMs>,
}

impl Presented<'_> {
    /// Whether a lease that expired at `expires_at` lapsed during the outage this step rides out.
    fn revives(&self, expires_at: UnixMs) -> bool {
        self.revive_since.is_some_and(|since| expires_at > since)
    }
}

/// The outcome of a player's leave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaveDecision {
    /// The seat is free.
    Left,
    /// The session holds no lease (ended, expired or unknown).
    NotLive,
    /// A superseded secret: a second player may not end the first one's session.
    Cloned,
    /// Not the session's secret.
    WrongSecret,
}

/// What the show's Geo policy says of the client's address at a renewal, as the caller found it (the
/// domain keeps no GeoIP database: `usher-geo` decides and the server maps its verdict into this).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GeoCheck {
    /// The policy admits the address.
    Allowed,
    /// The policy refuses the address; `country` is the one detected, when the database knew it.
    Refused {
        /// The country detected.
        country: Option<Country>,
    },
    /// The policy names countries but no GeoIP database is loaded, so nothing can be decided.
    Undecided,
}

/// What becomes of a session whose lease a heartbeat (or a steering reload) has just renewed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterRenewal {
    /// It keeps playing.
    Continue,
    /// It must end for this reason (the caller ends it in the store and answers with the reason).
    End(EndReason),
}

/// DESIGN.md heartbeat, after the store renewed the lease: the one rule that decides whether a renewed
/// session must end.
///
/// - The ticket's window (its own bounds narrowed to the show's) closed at or before `now`: it ends with
///   [`EndReason::WindowEnded`] at `now`, whatever Geo says.
/// - Otherwise, Geo refuses the address: it ends with [`EndReason::GeoBlocked`] at `now`, naming the
///   country detected.
/// - Otherwise it continues, including when Geo is [`GeoCheck::Undecided`]: a database is never unloaded
///   once loaded, so that is a session admitted by ranges alone before any database arrived, and it keeps
///   playing rather than being cut for our lack of data.
///
/// A window that has not opened yet (a show moved later after the admit) does not end a session; nor
/// does revocation, which the store decides atomically with the lease step (the renewal then never
/// happens: the heartbeat answers [`EndReason::Revoked`]).
pub fn after_renewal(
    bounds: &TicketBounds,
    show: &Show,
    geo: GeoCheck,
    now: UnixMs,
) -> AfterRenewal {
    // the end alone decides, not `window_state`: a window an admin's edit turned inside out (opening
    // after it closes) must still end a session past its end
    let (_, until) = bounds.window(show);
    if now >= until {
        return AfterRenewal::End(EndReason::WindowEnded { at: now });
    }
    match geo {
        GeoCheck::Refused { country } => {
            AfterRenewal::End(EndReason::GeoBlocked { at: now, country })
        }
        GeoCheck::Allowed | GeoCheck::Undecided => AfterRenewal::Continue,
    }
}

/// One ticket's leases, its recently ended sessions and its usage.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketLeases {
    /// Live leases (some may be past expiry until the next step drops them).
    pub leases: Vec<Lease>,
    /// Recently ended sessions, oldest first.
    pub ended: VecDeque<EndedSession>,
    /// Usage record.
    pub usage: Usage,
}

impl TicketLeases {
    fn end(&mut self, session_id: SessionId, reason: EndReason) {
        if self.ended.len() >= ENDED_MEMORY {
            self.ended.pop_front();
        }
        self.ended.reserve_exact(1);
        self.ended.push_back(EndedSession { session_id, reason });
    }

    /// Drops leases whose expiry is past, remembering them as expired; returns the dropped sessions.
    pub fn drop_expired(&mut self, now: UnixMs) -> Vec<SessionId> {
        let horizon = UnixMs(now.0.saturating_sub(ENDED_RETENTION_MS));
        while self.ended.front().is_some_and(|e| e.reason.at() < horizon) {
            self.ended.pop_front();
        }
        // most steps find nothing expired: leave the list (and its one-slot allocation) untouched; the
        // sweep calls this for every ticket, and rebuilding each list there made it allocate two vectors
        // per ticket (seconds under the store's lock at a million sessions)
        if !self.leases.iter().any(|l| l.expires_at <= now) {
            return Vec::new();
        }
        let mut gone = Vec::new();
        let mut i = 0;
        while i < self.leases.len() {
            if self.leases[i].expires_at <= now {
                gone.push(self.leases.remove(i));
            } else {
                i += 1;
            }
        }
        self.leases.shrink_to_fit();
        gone.into_iter()
            .map(|l| {
                self.end(
                    l.session_id.clone(),
                    EndReason::Expired { at: l.expires_at },
                );
                l.session_id
            })
            .collect()
    }

    /// Leases alive at `now`.
    pub fn live(&self, now: UnixMs) -> impl Iterator<Item = &Lease> {
        self.leases.iter().filter(move |l| l.expires_at > now)
    }

    fn saw_device(&mut self, device: &DeviceId, label: &str, now: UnixMs) {
        let u = &mut self.usage;
        u.first_play_at.get_or_insert(now);
        u.last_seen_at = Some(now);
        remember(
            &mut u.devices,
            DEVICE_MEMORY,
            |d| &d.device_id == device,
            |d| {
                d.last_seen = now;
                label.clone_into(&mut d.label);
            },
            || DeviceSeen {
                device_id: device.clone(),
                label: label.to_owned(),
                first_seen: now,
                last_seen: now,
            },
        );
    }

    /// Notes that an admit came from `country` (usage only; the lease rules never look at it).
    pub fn saw_country(&mut self, country: Country, now: UnixMs) {
        remember(
            &mut self.usage.countries,
            COUNTRY_MEMORY,
            |c| c.country == country,
            |c| c.last_seen = now,
            || CountrySeen {
                country,
                first_seen: now,
                last_seen: now,
            },
        );
    }

    /// Notes that an admit came from `address` (usage only, for disputes; the lease rules never look at it).
    pub fn saw_address(&mut self, address: std::net::IpAddr, now: UnixMs) {
        remember(
            &mut self.usage.addresses,
            ADDRESS_MEMORY,
            // a network the retention rules left is no exact address, even where they print alike
            |a| a.address == address && a.prefix.is_none(),
            |a| a.last_seen = now,
            || AddressSeen {
                address,
                first_seen: now,
                last_seen: now,
                prefix: None,
            },
        );
    }

    /// DESIGN.md `admit(T, device, now)`: one atomic step.
    ///
    /// `new_session` is the id a new lease gets; it is unused when the device re-attaches or is refused.
    /// `presented` is the session secret the player holds, if any (a reload keeps it); `fresh` is the
    /// keyed hash of the secret this admit hands out, whether to a new session or a re-attached one.
    #[allow(clippy::too_many_arguments)]
    pub fn admit(
        &mut self,
        device: &DeviceId,
        label: &str,
        presented: Option<&SecretHash>,
        fresh: SecretHash,
        new_session: SessionId,
        rules: SeatRules,
        now: UnixMs,
    ) -> AdmitDecision {
        // 1. drop leases whose expiry is past
        self.drop_expired(now);
        let expires_at = UnixMs(now.0.saturating_add(rules.ttl_ms));
        // 2. this device already holds a lease and presents its session's secret: renew it, same
        // session, and move the secret. A device id alone (copied, or sent by two apps) never
        // re-attaches: without the secret the admit claims a seat like any new device.
        let mine = self.leases.iter().position(|l| &l.device_id == device);
        let check = match (mine, presented) {
            (Some(i), Some(secret)) => self.leases[i].secret.renew(secret, fresh),
            _ => Check::Wrong,
        };
        if check == Check::Cloned {
            self.saw_clone(now);
        }
        if let (Some(i), true) = (mine, check.is_valid()) {
            let lease = &mut self.leases[i];
            lease.renewed_at = now;
            lease.expires_at = expires_at;
            lease.ttl_ms = rules.ttl_ms;
            label.clone_into(&mut lease.device_label);
            let session_id = lease.session_id.clone();
            self.saw_device(device, label, now);
            return AdmitDecision::Admitted {
                session_id,
                expires_at,
                reattached: true,
                first_play: false,
                superseded: Vec::new(),
            };
        }
        let k = rules.max_devices.max(1) as usize;
        let mut superseded = Vec::new();
        if self.leases.len() >= k {
            match rules.policy {
                SharingPolicy::OldestWins => {
                    let earliest = self
                        .leases
                        .iter()
                        .map(|l| l.expires_at)
                        .min()
                        .unwrap_or(now);
                    return AdmitDecision::InUse {
                        retry_after_s: now.secs_until(earliest).max(1),
                    };
                }
                SharingPolicy::NewestWins => {
                    // 4. supersede the least recently renewed leases until one seat is free
                    while self.leases.len() >= k {
                        let idx = self
                            .leases
                            .iter()
                            .enumerate()
                            .min_by_key(|(_, l)| (l.renewed_at, l.created_at))
                            .map(|(i, _)| i)
                            .unwrap_or(0);
                        let old = self.leases.remove(idx);
                        self.end(
                            old.session_id.clone(),
                            EndReason::Superseded {
                                by_device: label.to_owned(),
                                at: now,
                            },
                        );
                        superseded.push(old.session_id);
                    }
                }
            }
        }
        // 3. a seat is free: create the lease (one slot at a time, as in `remember`)
        self.leases.reserve_exact(1);
        self.leases.push(Lease {
            session_id: new_session.clone(),
            device_id: device.clone(),
            device_label: label.to_owned(),
            created_at: now,
            renewed_at: now,
            expires_at,
            ttl_ms: rules.ttl_ms,
            secret: SecretChain::new(fresh),
        });
        self.usage.sessions += 1;
        let first_play = self.usage.first_play_at.is_none();
        self.saw_device(device, label, now);
        AdmitDecision::Admitted {
            session_id: new_session,
            expires_at,
            reattached: false,
            first_play,
            superseded,
        }
    }

    /// DESIGN.md `heartbeat(session, now)`: renews the lease if the session still holds it and the
    /// player presents its secret, moving the secret (see [`crate::session_secret`]). Without
    /// `presented.fresh` it only checks: the lease and the secret stay as they are, and `Renewed` names
    /// the lease's current expiry.
    ///
    /// A lease that lapsed during a store outage the caller rode (`presented.revive_since`) is still
    /// held: it is still in the list, so no step has dropped it, and every admit drops expired leases
    /// before it counts seats — so no seat was given away since it lapsed, and holding it again keeps
    /// the ticket within its devices.
    pub fn heartbeat(
        &mut self,
        session: &SessionId,
        presented: Presented<'_>,
        now: UnixMs,
    ) -> HeartbeatDecision {
        if let Some(idx) = self.leases.iter().position(|l| &l.session_id == session) {
            let expires_at = self.leases[idx].expires_at;
            if expires_at <= now && !presented.revives(expires_at) {
                let lease = self.leases.remove(idx);
                self.end(
                    lease.session_id,
                    EndReason::Expired {
                        at: lease.expires_at,
                    },
                );
            } else {
                let lease = &mut self.leases[idx];
                let check = match presented.fresh {
                    Some(fresh) => lease.secret.renew(presented.secret, fresh),
                    None => lease.secret.check(presented.secret),
                };
                match check {
                    Check::Cloned => {
                        self.saw_clone(now);
                        return HeartbeatDecision::Cloned;
                    }
                    Check::Wrong => return HeartbeatDecision::WrongSecret,
                    Check::Current | Check::Previous => {}
                }
                if presented.fresh.is_none() {
                    return HeartbeatDecision::Renewed {
                        expires_at: lease.expires_at,
                    };
                }
                lease.renewed_at = now;
                lease.expires_at = UnixMs(now.0.saturating_add(lease.ttl_ms));
                let (expires_at, device, label) = (
                    lease.expires_at,
                    lease.device_id.clone(),
                    lease.device_label.clone(),
                );
                self.saw_device(&device, &label, now);
                return HeartbeatDecision::Renewed { expires_at };
            }
        }
        match self.ended.iter().rev().find(|e| &e.session_id == session) {
            Some(e) => HeartbeatDecision::Ended(e.reason.clone()),
            None => HeartbeatDecision::Unknown,
        }
    }

    /// Ends one session for `reason`; returns whether it held a lease.
    /// A lease already past its expiry at the end instant ends as expired, not for `reason`.
    pub fn end_session(&mut self, session: &SessionId, reason: EndReason) -> bool {
        self.drop_expired(reason.at());
        match self.leases.iter().position(|l| &l.session_id == session) {
            Some(idx) => {
                let lease = self.leases.remove(idx);
                self.end(lease.session_id, reason);
                true
            }
            None => false,
        }
    }

    /// Ends every session for `reason` (revocation); returns the sessions ended.
    /// Leases already past their expiry end as expired, not for `reason`.
    pub fn end_all(&mut self, reason: EndReason) -> Vec<SessionId> {
        self.drop_expired(reason.at());
        let leases = std::mem::take(&mut self.leases);
        leases
            .into_iter()
            .map(|l| {
                self.end(l.session_id.clone(), reason.clone());
                l.session_id
            })
            .collect()
    }

    fn saw_clone(&mut self, now: UnixMs) {
        self.usage.clones += 1;
        self.usage.last_clone_at = Some(now);
    }

    /// A player's leave, presenting `secret`: ends the session (reason `left`) when the secret is valid.
    pub fn leave(
        &mut self,
        session: &SessionId,
        secret: &SecretHash,
        now: UnixMs,
    ) -> LeaveDecision {
        self.drop_expired(now);
        let Some(idx) = self.leases.iter().position(|l| &l.session_id == session) else {
            return LeaveDecision::NotLive;
        };
        match self.leases[idx].secret.check(secret) {
            Check::Current | Check::Previous => {
                let lease = self.leases.remove(idx);
                self.end(lease.session_id, EndReason::Left { at: now });
                LeaveDecision::Left
            }
            Check::Cloned => {
                self.saw_clone(now);
                LeaveDecision::Cloned
            }
            Check::Wrong => LeaveDecision::WrongSecret,
        }
    }

    /// Every session id this ticket still knows (live or ended), for a backend's session index.
    pub fn known_sessions(&self) -> impl Iterator<Item = &SessionId> {
        self.leases
            .iter()
            .map(|l| &l.session_id)
            .chain(self.ended.iter().map(|e| &e.session_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev(n: u32) -> DeviceId {
        DeviceId::parse(&format!("device-{n:04}")).unwrap()
    }

    fn rules(k: u32, policy: SharingPolicy) -> SeatRules {
        SeatRules {
            max_devices: k,
            policy,
            ttl_ms: 45_000,
        }
    }

    /// The keyed hash of a test secret.
    fn h(secret: &str) -> SecretHash {
        crate::secret::SecretHasher::new(&[9u8; 32]).session_secret(secret)
    }

    /// A renewal presenting `held` and handing out `fresh`.
    fn renewal(held: &str, fresh: &str) -> Presented<'static> {
        Presented {
            secret: Box::leak(Box::new(h(held))),
            fresh: Some(h(fresh)),
            revive_since: None,
        }
    }

    /// An admit of device `d` presenting no secret (a new claim on a seat), handing out `secret`.
    fn claim(
        t: &mut TicketLeases,
        d: u32,
        label: &str,
        secret: &str,
        r: SeatRules,
        now: i64,
    ) -> AdmitDecision {
        t.admit(
            &dev(d),
            label,
            None,
            h(secret),
            SessionId::generate(),
            r,
            UnixMs(now),
        )
    }

    fn admitted(d: AdmitDecision) -> SessionId {
        match d {
            AdmitDecision::Admitted { session_id, .. } => session_id,
            other => panic!("expected admitted, got {other:?}"),
        }
    }

    #[test]
    fn newest_wins_supersedes_the_least_recently_renewed() {
        let mut t = TicketLeases::default();
        let r = rules(1, SharingPolicy::NewestWins);
        let a = admitted(claim(&mut t, 1, "A", "A0", r, 0));
        let b = admitted(claim(&mut t, 2, "B", "B1000", r, 1000));
        assert_ne!(a, b);
        assert_eq!(
            t.heartbeat(&a, renewal("A0", "A2000"), UnixMs(2000)),
            HeartbeatDecision::Ended(EndReason::Superseded {
                by_device: "B".into(),
                at: UnixMs(1000)
            })
        );
        assert!(matches!(
            t.heartbeat(&b, renewal("B1000", "B2000"), UnixMs(2000)),
            HeartbeatDecision::Renewed { .. }
        ));
    }

    #[test]
    fn oldest_wins_refuses_until_the_lease_lapses() {
        let mut t = TicketLeases::default();
        let r = rules(1, SharingPolicy::OldestWins);
        admitted(claim(&mut t, 1, "A", "A0", r, 0));
        assert_eq!(
            claim(&mut t, 2, "B", "B5000", r, 5000),
            AdmitDecision::InUse { retry_after_s: 40 }
        );
        admitted(claim(&mut t, 2, "B", "B45_000", r, 45_000));
    }

    #[test]
    fn a_reload_reattaches_to_the_same_session() {
        let mut t = TicketLeases::default();
        let r = rules(1, SharingPolicy::OldestWins);
        let a = admitted(claim(&mut t, 1, "A", "A0", r, 0));
        let again = t.admit(
            &dev(1),
            "A",
            Some(&h("A0")),
            h("A10"),
            SessionId::generate(),
            r,
            UnixMs(10),
        );
        assert!(
            matches!(again, AdmitDecision::Admitted { ref session_id, reattached: true, .. } if *session_id == a)
        );
        assert_eq!(t.usage.sessions, 1);
        assert_eq!(t.usage.devices.len(), 1);
        // the secret moved: the reloaded page holds A10, and whoever still presents A0 holds a copy
        assert!(matches!(
            t.heartbeat(&a, renewal("A10", "A20"), UnixMs(20)),
            HeartbeatDecision::Renewed { .. }
        ));
        assert_eq!(
            t.heartbeat(&a, renewal("A0", "A30"), UnixMs(30)),
            HeartbeatDecision::Cloned
        );
        assert_eq!(t.usage.clones, 1);
        assert_eq!(
            t.heartbeat(&a, renewal("guess", "A40"), UnixMs(40)),
            HeartbeatDecision::WrongSecret
        );
        assert_eq!(t.usage.clones, 1, "a wrong guess is not a clone");
    }

    #[test]
    fn a_device_id_alone_never_reattaches() {
        // newest wins: the second player with the same device id and no secret takes the seat
        let mut t = TicketLeases::default();
        let r = rules(1, SharingPolicy::NewestWins);
        let a = admitted(claim(&mut t, 1, "A", "A0", r, 0));
        let b = claim(&mut t, 1, "A", "B1", r, 1);
        assert!(
            matches!(b, AdmitDecision::Admitted { reattached: false, ref superseded, .. } if superseded == std::slice::from_ref(&a))
        );
        assert!(matches!(
            t.heartbeat(&a, renewal("A0", "A2"), UnixMs(2)),
            HeartbeatDecision::Ended(EndReason::Superseded { .. })
        ));
        // a wrong secret is no better than none
        let c = t.admit(
            &dev(1),
            "A",
            Some(&h("guess")),
            h("C3"),
            SessionId::generate(),
            r,
            UnixMs(3),
        );
        assert!(matches!(
            c,
            AdmitDecision::Admitted {
                reattached: false,
                ..
            }
        ));
        // oldest wins: the copy is refused while the first plays
        let mut t = TicketLeases::default();
        let r = rules(1, SharingPolicy::OldestWins);
        admitted(claim(&mut t, 1, "A", "A0", r, 0));
        assert!(matches!(
            claim(&mut t, 1, "A", "B1", r, 1),
            AdmitDecision::InUse { .. }
        ));
    }

    #[test]
    fn a_lease_that_lapsed_during_a_ridden_outage_is_held_again_and_no_other() {
        let r = rules(1, SharingPolicy::NewestWins);
        // admitted at 0, lease to 45 s; the store was unreachable from 30 s to 80 s
        let riding = |held: &'static str, fresh: Option<&str>| Presented {
            secret: Box::leak(Box::new(h(held))),
            fresh: fresh.map(h),
            revive_since: Some(UnixMs(30_000)),
        };
        let mut t = TicketLeases::default();
        let a = admitted(claim(&mut t, 1, "A", "A0", r, 0));
        // a check after the outage passes and leaves the lease as it is
        assert_eq!(
            t.heartbeat(&a, riding("A0", None), UnixMs(81_000)),
            HeartbeatDecision::Renewed {
                expires_at: UnixMs(45_000)
            }
        );
        // the renewal holds it again, for a full lease from now
        assert_eq!(
            t.heartbeat(&a, riding("A0", Some("A1")), UnixMs(82_000)),
            HeartbeatDecision::Renewed {
                expires_at: UnixMs(127_000)
            }
        );
        assert_eq!(t.live(UnixMs(82_000)).count(), 1);

        // a lease that had lapsed before the outage began stays lapsed
        let mut t = TicketLeases::default();
        let a = admitted(claim(
            &mut t,
            1,
            "A",
            "A0",
            rules(1, SharingPolicy::NewestWins),
            -20_000,
        ));
        assert_eq!(
            t.heartbeat(&a, riding("A0", Some("A1")), UnixMs(81_000)),
            HeartbeatDecision::Ended(EndReason::Expired { at: UnixMs(25_000) })
        );

        // a lapsed lease that an admit dropped since (its seat given to another device) stays lapsed:
        // the ticket never plays on more devices than it allows
        let mut t = TicketLeases::default();
        let a = admitted(claim(&mut t, 1, "A", "A0", r, 0));
        let b = admitted(claim(&mut t, 2, "B", "B0", r, 80_500));
        assert_eq!(
            t.heartbeat(&a, riding("A0", Some("A1")), UnixMs(81_000)),
            HeartbeatDecision::Ended(EndReason::Expired { at: UnixMs(45_000) })
        );
        assert_eq!(
            t.live(UnixMs(81_000))
                .map(|l| &l.session_id)
                .collect::<Vec<_>>(),
            [&b]
        );

        // and without the outage the lapsed lease ends as before
        let mut t = TicketLeases::default();
        let a = admitted(claim(&mut t, 1, "A", "A0", r, 0));
        assert!(matches!(
            t.heartbeat(&a, renewal("A0", "A1"), UnixMs(81_000)),
            HeartbeatDecision::Ended(EndReason::Expired { .. })
        ));
    }

    #[test]
    fn a_check_neither_renews_nor_moves_the_secret_and_leave_needs_the_secret() {
        let mut t = TicketLeases::default();
        let r = rules(1, SharingPolicy::NewestWins);
        let a = admitted(claim(&mut t, 1, "A", "A0", r, 0));
        let check = Presented {
            secret: &h("A0"),
            fresh: None,
            revive_since: None,
        };
        assert_eq!(
            t.heartbeat(&a, check, UnixMs(10_000)),
            HeartbeatDecision::Renewed {
                expires_at: UnixMs(45_000)
            }
        );
        assert_eq!(
            t.heartbeat(&a, check, UnixMs(11_000)),
            HeartbeatDecision::Renewed {
                expires_at: UnixMs(45_000)
            }
        );
        assert_eq!(
            t.leave(&a, &h("guess"), UnixMs(12_000)),
            LeaveDecision::WrongSecret
        );
        assert_eq!(t.leave(&a, &h("A0"), UnixMs(12_000)), LeaveDecision::Left);
        assert_eq!(
            t.leave(&a, &h("A0"), UnixMs(13_000)),
            LeaveDecision::NotLive
        );
        assert_eq!(
            t.heartbeat(&a, check, UnixMs(14_000)),
            HeartbeatDecision::Ended(EndReason::Left { at: UnixMs(12_000) })
        );
    }

    /// Every memory of a ticket filled past its cap: the oldest entries go, the newest stay in order, and a
    /// renewed entry moves last (the property cases are too short to get there).
    #[test]
    fn each_memory_fills_to_its_cap_and_forgets_the_oldest() {
        let mut t = TicketLeases::default();
        let r = rules(1, SharingPolicy::NewestWins);
        // 300 devices take the seat in turn: 299 sessions end superseded
        let sessions: Vec<SessionId> = (1..=300)
            .map(|d| {
                admitted(claim(
                    &mut t,
                    d,
                    "A",
                    &format!("S{d}"),
                    r,
                    i64::from(d) * 10,
                ))
            })
            .collect();
        assert_eq!(t.usage.sessions, 300);
        assert_eq!(t.usage.devices.len(), DEVICE_MEMORY);
        let kept: Vec<DeviceId> = t
            .usage
            .devices
            .iter()
            .map(|d| d.device_id.clone())
            .collect();
        let newest: Vec<DeviceId> = (300 - DEVICE_MEMORY as u32 + 1..=300).map(dev).collect();
        assert_eq!(kept, newest, "the newest devices, most recent last");
        assert_eq!(t.ended.len(), ENDED_MEMORY);
        let ended: Vec<&SessionId> = t.ended.iter().map(|e| &e.session_id).collect();
        let newest_ended: Vec<&SessionId> = sessions[299 - ENDED_MEMORY..299].iter().collect();
        assert_eq!(
            ended, newest_ended,
            "the newest ended sessions, oldest first"
        );
        // a forgotten session is unknown, a remembered one still says why it ended
        assert_eq!(
            t.heartbeat(&sessions[0], renewal("S1", "x"), UnixMs(3_100)),
            HeartbeatDecision::Unknown
        );
        assert!(matches!(
            t.heartbeat(&sessions[298], renewal("S299", "y"), UnixMs(3_100)),
            HeartbeatDecision::Ended(EndReason::Superseded { .. })
        ));
        // a device seen again moves last; the oldest kept one goes when a new one comes
        admitted(claim(&mut t, 250, "A", "again", r, 3_200));
        admitted(claim(&mut t, 301, "A", "new", r, 3_300));
        let kept: Vec<DeviceId> = t
            .usage
            .devices
            .iter()
            .map(|d| d.device_id.clone())
            .collect();
        assert_eq!(kept.len(), DEVICE_MEMORY);
        assert!(!kept.contains(&dev(237)), "the oldest device went");
        assert_eq!(kept[DEVICE_MEMORY - 2..], [dev(250), dev(301)]);

        // countries and addresses: 40 distinct, then the second-oldest kept seen again
        let countries: Vec<Country> = crate::geo::ASSIGNED
            .iter()
            .take(40)
            .map(|c| Country::parse(c).unwrap())
            .collect();
        for (i, c) in countries.iter().enumerate() {
            t.saw_country(*c, UnixMs(10_000 + i as i64));
            t.saw_address(
                std::net::IpAddr::from([192, 0, 2, u8::try_from(i).unwrap()]),
                UnixMs(10_000 + i as i64),
            );
        }
        t.saw_country(countries[9], UnixMs(20_000));
        t.saw_address(std::net::IpAddr::from([192, 0, 2, 9]), UnixMs(20_000));
        let kept: Vec<Country> = t.usage.countries.iter().map(|c| c.country).collect();
        let mut expect: Vec<Country> = countries[40 - COUNTRY_MEMORY..].to_vec();
        expect.retain(|c| *c != countries[9]);
        expect.push(countries[9]);
        assert_eq!(kept, expect);
        let kept: Vec<u8> = t
            .usage
            .addresses
            .iter()
            .map(|a| match a.address {
                std::net::IpAddr::V4(v4) => v4.octets()[3],
                std::net::IpAddr::V6(_) => unreachable!(),
            })
            .collect();
        let mut expect: Vec<u8> = (u8::try_from(40 - ADDRESS_MEMORY).unwrap()..40).collect();
        expect.retain(|a| *a != 9);
        expect.push(9);
        assert_eq!(kept, expect);
    }

    #[test]
    fn countries_are_remembered_most_recent_last_and_bounded() {
        let mut t = TicketLeases::default();
        let de = Country::parse("DE").unwrap();
        let fr = Country::parse("FR").unwrap();
        t.saw_country(de, UnixMs(1));
        t.saw_country(fr, UnixMs(2));
        t.saw_country(de, UnixMs(3));
        let got: Vec<(&str, i64, i64)> = t
            .usage
            .countries
            .iter()
            .map(|c| (c.country.as_str(), c.first_seen.0, c.last_seen.0))
            .collect();
        assert_eq!(got, [("FR", 2, 2), ("DE", 1, 3)]);
        for (i, code) in [
            "AT", "BE", "CH", "DK", "ES", "FI", "GB", "IE", "IT", "LU", "NL", "NO",
        ]
        .iter()
        .cycle()
        .take(40)
        .enumerate()
        {
            t.saw_country(Country::parse(code).unwrap(), UnixMs(10 + i as i64));
        }
        assert!(t.usage.countries.len() <= COUNTRY_MEMORY);
        let old: Usage = serde_json::from_str(
            r#"{"first_play_at":null,"last_seen_at":null,"sessions":0,"devices":[]}"#,
        )
        .unwrap();
        assert!(old.countries.is_empty());
    }

    #[test]
    fn an_expired_lease_is_reported_and_frees_the_seat() {
        let mut t = TicketLeases::default();
        let r = rules(1, SharingPolicy::OldestWins);
        let a = admitted(claim(&mut t, 1, "A", "A0", r, 0));
        assert_eq!(
            t.heartbeat(&a, renewal("A0", "A45000"), UnixMs(45_000)),
            HeartbeatDecision::Ended(EndReason::Expired { at: UnixMs(45_000) })
        );
        admitted(claim(&mut t, 2, "B", "B45_001", r, 45_001));
    }

    fn show_between(starts: i64, ends: i64) -> Show {
        Show {
            id: crate::ids::ShowId::parse("s1").unwrap(),
            title: "S".into(),
            description: String::new(),
            kind: crate::show::ShowKind::Vod,
            starts_at: UnixMs(starts).to_datetime(),
            ends_at: UnixMs(ends).to_datetime(),
            stream_path: "demo".into(),
            max_devices: 1,
            policy: SharingPolicy::NewestWins,
            heartbeat_interval_s: 15,
            lease_ttl_s: 45,
            grant_ttl_s: 120,
            geo: Default::default(),
            cdns: Vec::new(),
            published: true,
            encryption: Default::default(),
            live_dvr_s: None,
            live_recording: false,
            capacity: None,
            admit_rate_per_s: None,
            translations: Default::default(),
            poster: None,
            created_at: UnixMs(0).to_datetime(),
            updated_at: UnixMs(0).to_datetime(),
        }
    }

    #[test]
    fn a_renewed_session_in_its_window_continues_unless_geo_refuses() {
        let show = show_between(1_000, 100_000);
        let open = TicketBounds {
            valid_from: None,
            valid_until: None,
        };
        let now = UnixMs(50_000);
        assert_eq!(
            after_renewal(&open, &show, GeoCheck::Allowed, now),
            AfterRenewal::Continue
        );
        assert_eq!(
            after_renewal(&open, &show, GeoCheck::Undecided, now),
            AfterRenewal::Continue
        );
        let de = Country::parse("DE").unwrap();
        assert_eq!(
            after_renewal(&open, &show, GeoCheck::Refused { country: Some(de) }, now),
            AfterRenewal::End(EndReason::GeoBlocked {
                at: now,
                country: Some(de)
            })
        );
        assert_eq!(
            after_renewal(&open, &show, GeoCheck::Refused { country: None }, now),
            AfterRenewal::End(EndReason::GeoBlocked {
                at: now,
                country: None
            })
        );
    }

    #[test]
    fn the_window_closes_first_and_at_its_end_instant() {
        let show = show_between(1_000, 100_000);
        // the ticket's own end comes before the show's
        let bounds = TicketBounds {
            valid_from: None,
            valid_until: Some(UnixMs(60_000)),
        };
        assert_eq!(
            after_renewal(&bounds, &show, GeoCheck::Allowed, UnixMs(59_999)),
            AfterRenewal::Continue
        );
        for now in [60_000, 60_001, 200_000] {
            let now = UnixMs(now);
            assert_eq!(
                after_renewal(&bounds, &show, GeoCheck::Refused { country: None }, now),
                AfterRenewal::End(EndReason::WindowEnded { at: now }),
                "the window decides before Geo"
            );
        }
        // the show's end when the ticket has none
        let open = TicketBounds {
            valid_from: None,
            valid_until: None,
        };
        assert_eq!(
            after_renewal(&open, &show, GeoCheck::Undecided, UnixMs(100_000)),
            AfterRenewal::End(EndReason::WindowEnded {
                at: UnixMs(100_000)
            })
        );
        // a window not open yet (the show was moved later) does not end a session
        assert_eq!(
            after_renewal(&open, &show, GeoCheck::Allowed, UnixMs(500)),
            AfterRenewal::Continue
        );
    }
}
