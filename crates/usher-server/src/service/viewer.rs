//! The viewer's flow (DESIGN.md "Viewer → Usher"): find the ticket, check status, window and Geo, claim a
//! seat, and hand out grants; renew on heartbeat. The HTTP handlers in `http/playback.rs` only translate.
//!
//! Geo is checked on every heartbeat, not only when the client's address changed: a lookup and the policy
//! take well under a microsecond (see `usher-geo`'s benchmark), and checking each time also applies a
//! newly loaded database or an admin's change of the show's policy to sessions already playing.

use std::net::IpAddr;

use usher_core::clock::UnixMs;
use usher_core::geo::Country;
use usher_core::ids::{DeviceId, SessionId, ShowId, TicketId, TicketToken};
use usher_core::lease::{
    AdmitDecision, AfterRenewal, EndReason, GeoCheck, HeartbeatDecision, LeaveDecision, Presented,
    SeatRules, after_renewal,
};
use usher_core::secret::SecretHash;
use usher_core::session_secret::SessionSecret;
use usher_core::show::Show;
use usher_core::store::{AdmitRequest, DoorAnswer, DoorRules, HeartbeatAnswer, StoreError};
use usher_core::ticket::{Ticket, TicketStatus, WindowState};
use usher_geo::policy::{Refusal, Verdict, decide};

use crate::service::delivery::{self, PathwayGrant};
use crate::service::{Error, Result};
use crate::state::AppState;

/// The viewer's device, as the player names it (HTTP reads it from a header or a cookie).
#[derive(Debug, Clone)]
pub struct Device {
    /// The device id.
    pub id: DeviceId,
    /// True when the id was made for this request and must be set as a cookie.
    pub fresh: bool,
    /// A label for humans ("Chrome on Linux").
    pub label: String,
}

/// A ticket with its show, found by token.
pub struct TicketAndShow {
    /// The ticket.
    pub ticket: Ticket,
    /// Its show.
    pub show: Show,
}

/// Finds a ticket by its token text (from a cookie, a watch link or an app's body) for `client`, under
/// the client's budget of failed lookups (`rate_limits.ticket_lookup_failures`: a lookup reserves a
/// failure while it runs; one that finds its ticket gives it back).
///
/// # Errors
/// `rate_limited` when the client has no failed lookup left (nothing is looked up); `ticket_unknown`
/// for malformed or unregistered tokens (or a ticket whose show is gone).
pub async fn find_ticket(state: &AppState, token: &str, client: IpAddr) -> Result<TicketAndShow> {
    let held = state.limits.ticket_lookup(client)?;
    let found = lookup_ticket(state, token).await;
    if let (Err(Error::TicketUnknown), Some(held)) = (&found, held) {
        held.failed();
    }
    found
}

async fn lookup_ticket(state: &AppState, token: &str) -> Result<TicketAndShow> {
    let token = TicketToken::parse(token).map_err(|_| Error::TicketUnknown)?;
    // under the current token key, or (while it is rotated) the key it replaces
    let mut found = None;
    for hash in state.hasher.candidates(|h| h.ticket_token(&token)) {
        found = state.store.ticket_by_token(&hash).await?;
        if found.is_some() {
            break;
        }
    }
    let ticket = found.ok_or(Error::TicketUnknown)?;
    let show = state
        .store
        .show(&ticket.terms.show_id)
        .await?
        .ok_or(Error::TicketUnknown)?;
    Ok(TicketAndShow { ticket, show })
}

/// Checks that the ticket admits now: active and inside its window.
///
/// # Errors
/// `ticket_revoked`, `show_unpublished`, `not_started` or `ended`.
pub fn check_admits(ts: &TicketAndShow, now: UnixMs) -> Result<UnixMs> {
    if ts.ticket.status == TicketStatus::Revoked {
        return Err(Error::TicketRevoked);
    }
    if !ts.show.published {
        return Err(Error::ShowUnpublished);
    }
    match ts.ticket.window_state(&ts.show, now) {
        WindowState::NotStarted(starts_at) => Err(Error::NotStarted { starts_at, now }),
        WindowState::Ended(ended_at) => Err(Error::Ended { ended_at }),
        WindowState::Open(until) => Ok(until),
    }
}

/// Applies the show's Geo policy to the client's address; returns the country detected (for usage).
///
/// # Errors
/// `geo_blocked` naming the country; `geo_unavailable` when the policy names countries and no database
/// is loaded yet.
pub fn check_geo(state: &AppState, show: &Show, client: IpAddr) -> Result<Option<Country>> {
    let (verdict, country) = geo_verdict(state, show, client);
    match verdict {
        Verdict::Allowed => Ok(country),
        Verdict::Refused(why) => {
            note_geo_refusal(show, country, &why);
            Err(Error::GeoBlocked { country })
        }
        Verdict::Undecided => Err(Error::GeoUnavailable),
    }
}

/// What the show's Geo policy says of `client`, and the country detected (no side effect).
fn geo_verdict(state: &AppState, show: &Show, client: IpAddr) -> (Verdict, Option<Country>) {
    let lookup = state.geoip.lookup(client);
    let country = lookup.country();
    (decide(&show.geo, client, lookup), country)
}

/// Counts and logs a Geo refusal, once, where it is decided.
fn note_geo_refusal(show: &Show, country: Option<Country>, why: &Refusal) {
    let label = country.map_or_else(|| "unknown".to_owned(), |c| c.to_string());
    metrics::counter!("usher_geo_refusals_total", "country" => label.clone()).increment(1);
    let rule = match why {
        Refusal::DeniedRange(_) => "denied_range",
        Refusal::Country(_) => "country",
        Refusal::Unknown => "unknown_address",
    };
    tracing::info!(show.id = %show.id, geo.country = %label, geo.rule = rule, "Geo refused");
}

/// A successful admit: the session, its lease and its grants.
#[derive(Debug)]
pub struct Admission {
    /// The session.
    pub session_id: SessionId,
    /// The ticket.
    pub ticket_id: TicketId,
    /// The show.
    pub show_id: ShowId,
    /// The device already held the seat and presented its secret (a reload).
    pub reattached: bool,
    /// The session's secret, handed to this player only (it rotates on every renewal).
    pub secret: SessionSecret,
    /// Seconds between heartbeats.
    pub heartbeat_interval_s: u32,
    /// Seconds the seat is kept without a heartbeat.
    pub lease_ttl_s: u32,
    /// When the lease lapses without a heartbeat.
    pub lease_expires_at: UnixMs,
    /// One grant per pathway, best first.
    pub grants: Vec<PathwayGrant>,
    /// The CDN ids to use, best first.
    pub cdn_order: Vec<String>,
}

/// A newcomer told to wait at a show's door (doors-open capacity).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Waiting {
    /// Place in line (1: next).
    pub position: u64,
    /// Seconds until this place is likely let in, from the pace newcomers came in lately (or the
    /// show's admit rate); `None` while nobody has been let in for a while.
    pub estimated_wait_s: Option<u64>,
    /// Seconds until the player asks again.
    pub retry_after_s: u32,
}

/// What an admit came to: a seat, or a place in the show's waiting room.
#[derive(Debug)]
pub enum AdmitOutcome {
    /// Admitted.
    Admitted(Admission),
    /// Waiting at the show's door; ask again after `retry_after_s`.
    Waiting(Waiting),
}

/// How long a pass through a show's door holds its place before its admit uses it.
const DOOR_PASS_MS: i64 = 30_000;

/// How long a waiter may go without asking before it has left the line: its polls come at most every
/// [`MAX_WAIT_POLL_S`], so three missed polls.
const DOOR_ABANDON_MS: i64 = 3 * MAX_WAIT_POLL_S as i64 * 1000;

/// The longest wait between a waiter's asks.
const MAX_WAIT_POLL_S: u32 = 10;

/// The wait between asks for a place: 2 s near the door, longer further back (a line of thousands asks
/// a few hundred times a second, not thousands).
fn wait_poll_s(position: u64) -> u32 {
    let extra = u32::try_from(position / 500).unwrap_or(u32::MAX);
    2u32.saturating_add(extra).min(MAX_WAIT_POLL_S)
}

/// The estimated wait of `position`: at the pace of the last window, or at the show's rate.
fn estimated_wait_s(position: u64, entered_recently: u64, rate_per_s: Option<u32>) -> Option<u64> {
    let window_s = (usher_core::store::DOOR_WINDOW_MS / 1000) as u64;
    if entered_recently > 0 {
        return Some((position * window_s).div_ceil(entered_recently));
    }
    rate_per_s.map(|r| position.div_ceil(u64::from(r)))
}

/// DESIGN.md admit: valid ticket, in window, Geo allowed, seat claimed.
///
/// # Errors
/// Every refusal of the viewer API, each with its code.
pub async fn admit(
    state: &AppState,
    token: &str,
    device: &Device,
    presented: Option<&SessionSecret>,
    client: IpAddr,
) -> Result<AdmitOutcome> {
    let ts = find_ticket(state, token, client).await?;
    let result = admit_ticket(state, &ts, device, presented, client).await;
    if let Err(e) = &result {
        // the ticket site hears of refusals in aggregate (`session.refused`), never one per request
        state.refusals.note(&ts.show.id, e.code());
    }
    result
}

async fn admit_ticket(
    state: &AppState,
    ts: &TicketAndShow,
    device: &Device,
    presented: Option<&SessionSecret>,
    client: IpAddr,
) -> Result<AdmitOutcome> {
    state.limits.admit(ts.ticket.id.as_str())?;
    let now = state.store.now();
    check_admits(ts, now)?;
    let show = &ts.show;
    let country = check_geo(state, show, client)?;
    // doors-open capacity: a newcomer (no seat of this ticket plays) passes the show's door; a ticket
    // already playing is never made to wait. Whether a secret was presented does not count: anyone can
    // send one, and a reload's ticket holds a live seat anyway
    if show.has_door()
        && state
            .store
            .ticket_activity(&ts.ticket.id)
            .await?
            .live
            .is_empty()
    {
        let rules = DoorRules {
            capacity: show.capacity,
            rate_per_s: show.admit_rate_per_s,
            pass_ms: DOOR_PASS_MS,
            abandon_ms: DOOR_ABANDON_MS,
        };
        match state.store.door(&show.id, &ts.ticket.id, rules).await? {
            // the admit below takes the seat and uses the pass up (in one store step; on a Redis Cluster
            // the pass counts 2 s more: docs/redis.md)
            DoorAnswer::Enter => {}
            DoorAnswer::Wait {
                position,
                entered_recently,
            } => {
                return Ok(AdmitOutcome::Waiting(Waiting {
                    position,
                    estimated_wait_s: estimated_wait_s(
                        position,
                        entered_recently,
                        show.admit_rate_per_s,
                    ),
                    retry_after_s: wait_poll_s(position),
                }));
            }
        }
    }
    let secret = SessionSecret::generate();
    let decision = state
        .store
        .admit(AdmitRequest {
            ticket_id: ts.ticket.id.clone(),
            show_id: show.id.clone(),
            bounds: ts.ticket.bounds(),
            device_id: device.id.clone(),
            device_label: device.label.clone(),
            country,
            address: Some(client),
            presented: presented.map(|p| state.hasher.session_secret(p.expose())),
            fresh: state.hasher.session_secret(secret.expose()),
            rules: SeatRules {
                max_devices: ts.ticket.max_devices(show),
                policy: show.policy,
                ttl_ms: i64::from(show.lease_ttl_s) * 1000,
            },
        })
        .await?;
    // a seat taken over: the session that lost it gets no more media from this node's origin (other
    // admits leave every kept answer true, and the cache of a doors-open crowd in place)
    if let AdmitDecision::Admitted { superseded, .. } = &decision
        && !superseded.is_empty()
    {
        state.lease_checks.changed();
    }
    match decision {
        AdmitDecision::InUse { retry_after_s } => Err(Error::TicketInUse { retry_after_s }),
        AdmitDecision::Revoked => Err(Error::TicketRevoked),
        AdmitDecision::Admitted {
            session_id,
            expires_at,
            reattached,
            first_play,
            superseded,
        } => {
            if first_play {
                crate::service::webhooks::emit(
                    state,
                    "ticket.first_play",
                    serde_json::json!({
                        "ticket_id": ts.ticket.id,
                        "show_id": show.id,
                        "external_ref": ts.ticket.terms.external_ref,
                        "device_label": device.label,
                        "country": country,
                    }),
                )
                .await;
            }
            if !superseded.is_empty() {
                tracing::info!(ticket.id = %ts.ticket.id, session.tag = %state.hasher.session_tag(session_id.as_str()), superseded = superseded.len(), "seat taken over");
            }
            let delivery = delivery::delivery(state, &session_id, show, now, client).await?;
            Ok(AdmitOutcome::Admitted(Admission {
                session_id,
                ticket_id: ts.ticket.id.clone(),
                show_id: show.id.clone(),
                reattached,
                secret,
                heartbeat_interval_s: show.heartbeat_interval_s,
                lease_ttl_s: show.lease_ttl_s,
                lease_expires_at: expires_at,
                grants: delivery.grants,
                cdn_order: delivery.cdn_order,
            }))
        }
    }
}

/// What a heartbeat did: the seat renewed with fresh grants, or nothing while the store is unreachable.
#[derive(Debug)]
pub enum Heartbeat {
    /// The lease is renewed.
    Renewed {
        /// The session's next secret (the one presented is now the previous one).
        secret: SessionSecret,
        /// Its new expiry.
        lease_expires_at: UnixMs,
        /// Seconds until the next heartbeat.
        heartbeat_interval_s: u32,
        /// Fresh grants, one per pathway, best first.
        grants: Vec<PathwayGrant>,
        /// The CDN ids to use, best first.
        cdn_order: Vec<String>,
    },
    /// The store is unreachable and the outage grace holds: keep playing with the grants held and
    /// heartbeat again after `heartbeat_interval_s`.
    Degraded {
        /// Seconds until the next heartbeat.
        heartbeat_interval_s: u32,
    },
}

/// The store's answer to a step, and the fresh secret it was offered.
type Step = (
    std::result::Result<usher_core::store::HeartbeatAnswer, StoreError>,
    Option<SessionSecret>,
);

/// A store step presenting `presented` for `client`: with a fresh secret (returned) when the step
/// renews; under the client's budget of failed session checks (`rate_limits.session_failures`: a
/// secret that was never the session's spends one; while none is left, the store is not asked).
///
/// # Errors
/// `rate_limited` when the client has no failed check left (the store is not asked).
async fn step(
    state: &AppState,
    session: &SessionId,
    presented: &SessionSecret,
    renew: bool,
    client: IpAddr,
) -> Result<Step> {
    state.limits.session_check(client)?;
    let fresh = renew.then(SessionSecret::generate);
    let fresh_hash = fresh
        .as_ref()
        .map(|f| state.hasher.session_secret(f.expose()));
    // a lease that lapsed while the store was unreachable and its player rode the outage
    let revive_since = state
        .outage
        .revive_since(state.store.now().0, state.config.http.store_outage_grace_s)
        .map(UnixMs);
    // the secret's hash under the current token key, then (while it is rotated) under the key it
    // replaces: a session admitted before the rotation holds its hashes under that one until this
    // step renews it (the fresh secret is always hashed under the current key)
    let beat = async |held: &SecretHash| {
        state
            .store
            .heartbeat(
                session,
                Presented {
                    secret: held,
                    fresh: fresh_hash,
                    revive_since,
                },
            )
            .await
    };
    let held = state
        .hasher
        .candidates(|h| h.session_secret(presented.expose()));
    let mut answer = beat(&held[0]).await;
    for earlier in &held[1..] {
        if let Ok(HeartbeatAnswer {
            decision: HeartbeatDecision::WrongSecret,
            ..
        }) = &answer
        {
            answer = beat(earlier).await;
        }
    }
    // a guess at a live session's secret; an unknown session (a player back from a long sleep) and a
    // copy of the secrets (`Cloned`) are no guess
    if let Ok(HeartbeatAnswer {
        decision: HeartbeatDecision::WrongSecret,
        ..
    }) = &answer
    {
        state.limits.session_failed(client);
    }
    Ok((answer, fresh))
}

/// DESIGN.md heartbeat: renew the lease with the session's secret (handing out the next one), re-check
/// the window and Geo, hand out fresh grants.
///
/// # Errors
/// `superseded`, `ticket_revoked`, `ended`, `geo_blocked`, `session_ended`, `session_expired`,
/// `session_unknown`, `session_cloned`, `session_secret_invalid`.
pub async fn heartbeat(
    state: &AppState,
    session: &SessionId,
    presented: &SessionSecret,
    client: IpAddr,
) -> Result<Heartbeat> {
    let now_ms = state.store.now().0;
    let (answer, fresh) = step(state, session, presented, true, client).await?;
    let Some(answer) = ride_outage(state, now_ms, answer)? else {
        // the player keeps its current grant and secret, and retries soon
        tracing::warn!(session.tag = %state.hasher.session_tag(session.as_str()), "heartbeat degraded: store unreachable");
        metrics::counter!("usher_heartbeats_degraded_total").increment(1);
        return Ok(Heartbeat::Degraded {
            heartbeat_interval_s: DEGRADED_INTERVAL_S,
        });
    };
    let Renewed {
        show,
        expires_at,
        now,
        ..
    } = renew(state, session, answer, client).await?;
    let delivery = delivery::delivery(state, session, &show, now, client).await?;
    Ok(Heartbeat::Renewed {
        secret: fresh.ok_or_else(|| Error::Internal("renewal without a fresh secret".into()))?,
        lease_expires_at: expires_at,
        heartbeat_interval_s: show.heartbeat_interval_s,
        grants: delivery.grants,
        cdn_order: delivery.cdn_order,
    })
}

/// Seconds between heartbeats (and steering reloads) while the store is unreachable.
pub const DEGRADED_INTERVAL_S: u32 = 5;

/// The store-outage grace, decided here once for heartbeats, steering reloads and the origin's media
/// (DESIGN.md "Store contract"): a store answer passes through (and ends an outage under way); an
/// unreachable store starts or continues the outage and, while it began less than
/// `http.store_outage_grace_s` ago, yields `None` — the caller keeps the session playing on what it
/// already holds — and past that `store_unavailable`.
///
/// # Errors
/// `store_unavailable` past the grace; any other store failure as it is.
pub fn ride_outage<T>(
    state: &AppState,
    now_ms: i64,
    answer: std::result::Result<T, StoreError>,
) -> Result<Option<T>> {
    match answer {
        Ok(a) => {
            state.outage.recovered(now_ms);
            Ok(Some(a))
        }
        Err(StoreError::Unavailable(cause)) => {
            state.outage.failed(now_ms);
            if state
                .outage
                .within_grace(now_ms, state.config.http.store_outage_grace_s)
            {
                tracing::debug!(error.cause = %cause, "store unreachable: within the outage grace");
                Ok(None)
            } else {
                Err(Error::StoreUnavailable(cause))
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// A steering reload or a master playlist: with `renew` (a native player's steering reload, the secret
/// in its URL) it is the player's heartbeat — the store's renewal with the outage grace, the secret
/// moved, then what every renewal checks; without (the watch page's player, whose page heartbeats; a
/// master playlist) it only checks the secret and the lease, and the window and Geo. `None`: the store
/// is unreachable within the grace, and the player keeps what it has.
///
/// # Errors
/// As [`renew`]; a superseded session gets `SteeringSuperseded` (a player stops reloading on 410).
pub async fn renew_by_steering(
    state: &AppState,
    session: &SessionId,
    presented: &SessionSecret,
    renew_lease: bool,
    client: IpAddr,
) -> Result<Option<Renewed>> {
    let now_ms = state.store.now().0;
    let (answer, fresh) = step(state, session, presented, renew_lease, client).await?;
    let Some(answer) = ride_outage(state, now_ms, answer)? else {
        metrics::counter!("usher_heartbeats_degraded_total").increment(1);
        return Ok(None);
    };
    if let HeartbeatDecision::Ended(EndReason::Superseded { by_device, at }) = answer.decision {
        return Err(Error::SteeringSuperseded { by_device, at });
    }
    let mut renewed = renew(state, session, answer, client).await?;
    renewed.secret = fresh;
    Ok(Some(renewed))
}

/// A player's leave: frees the seat at once when `presented` is the session's secret; under `client`'s
/// budget of failed session checks, like a heartbeat.
///
/// # Errors
/// `rate_limited`; `session_unknown` when no such session holds a seat; `session_cloned`,
/// `session_secret_invalid`.
pub async fn leave(
    state: &AppState,
    session: &SessionId,
    presented: &SessionSecret,
    client: IpAddr,
) -> Result<()> {
    state.limits.session_check(client)?;
    // under the current token key, then (while it is rotated) the key it replaces
    let held = state
        .hasher
        .candidates(|h| h.session_secret(presented.expose()));
    let mut decision = state.store.leave(session, &held[0]).await?;
    for earlier in &held[1..] {
        if decision == LeaveDecision::WrongSecret {
            decision = state.store.leave(session, earlier).await?;
        }
    }
    state.lease_checks.changed();
    // a superseded or ended session's player leaving (a closed tab's beacon) is no guess
    if matches!(decision, LeaveDecision::WrongSecret) {
        state.limits.session_failed(client);
    }
    match decision {
        LeaveDecision::Left => Ok(()),
        LeaveDecision::NotLive => Err(Error::SessionUnknown),
        LeaveDecision::Cloned => {
            metrics::counter!("usher_sessions_cloned_total").increment(1);
            Err(Error::SessionCloned)
        }
        LeaveDecision::WrongSecret => Err(Error::SessionSecretInvalid),
    }
}

/// A lease renewed by a heartbeat, with what its answer needs.
pub struct Renewed {
    /// The session's show.
    pub show: Show,
    /// The lease's new expiry.
    pub expires_at: UnixMs,
    /// The instant of the check.
    pub now: UnixMs,
    /// The session's next secret when the step renewed (a steering reload with the secret in its URL).
    pub secret: Option<SessionSecret>,
}

/// What every heartbeat does after the store step (the API's heartbeat and the steering reload of native
/// players alike): refuse an ended session with its reason, re-check the window and Geo, and end the session
/// when [`after_renewal`] says so.
///
/// # Errors
/// `superseded`, `ticket_revoked`, `ended`, `geo_blocked`, `session_ended`, `session_expired`,
/// `session_unknown`, `session_cloned`, `session_secret_invalid`.
pub async fn renew(
    state: &AppState,
    session: &SessionId,
    answer: HeartbeatAnswer,
    client: IpAddr,
) -> Result<Renewed> {
    if let (HeartbeatDecision::Cloned, Some((ticket, show))) = (&answer.decision, &answer.owner) {
        crate::service::webhooks::sharing_suspected(state, ticket, show, "session_cloned").await;
    }
    let expires_at = still_plays(state, session, answer.decision)?;
    let (ticket_id, show_id) = answer
        .owner
        .ok_or_else(|| Error::Internal("renewed lease without owner".into()))?;
    let show = state
        .store
        .show(&show_id)
        .await?
        .ok_or(Error::SessionEnded)?;
    let bounds = match answer.ticket {
        Some(b) => b,
        None => state
            .store
            .ticket(&ticket_id)
            .await?
            .ok_or(Error::SessionEnded)?
            .bounds(),
    };
    let now = state.store.now();
    let (verdict, country) = geo_verdict(state, &show, client);
    let geo = match &verdict {
        Verdict::Allowed => GeoCheck::Allowed,
        Verdict::Refused(_) => GeoCheck::Refused { country },
        Verdict::Undecided => GeoCheck::Undecided,
    };
    if let AfterRenewal::End(reason) = after_renewal(&bounds, &show, geo, now) {
        if let (EndReason::GeoBlocked { .. }, Verdict::Refused(why)) = (&reason, &verdict) {
            note_geo_refusal(&show, country, why);
        }
        state.store.end_session(session, reason.clone()).await?;
        state.lease_checks.changed();
        return Err(match reason {
            // this answer names when the window closed; the stored reason, when the session ended
            EndReason::WindowEnded { .. } => Error::Ended {
                ended_at: bounds.window(&show).1,
            },
            other => ended_error(other),
        });
    }
    Ok(Renewed {
        show,
        expires_at,
        now,
        secret: None,
    })
}

/// The lease's expiry when the store's step found the session playing and the secret valid; else the
/// refusal, in the viewer's words.
fn still_plays(
    state: &AppState,
    session: &SessionId,
    decision: HeartbeatDecision,
) -> Result<UnixMs> {
    match decision {
        HeartbeatDecision::Renewed { expires_at } => Ok(expires_at),
        HeartbeatDecision::Unknown => Err(Error::SessionUnknown),
        HeartbeatDecision::Ended(reason) => Err(ended_error(reason)),
        HeartbeatDecision::Cloned => {
            metrics::counter!("usher_sessions_cloned_total").increment(1);
            tracing::info!(session.tag = %state.hasher.session_tag(session.as_str()), "a copy of the session's credentials was refused");
            Err(Error::SessionCloned)
        }
        HeartbeatDecision::WrongSecret => Err(Error::SessionSecretInvalid),
    }
}

/// Checks, without renewing anything, that `presented` controls a session that still plays, and
/// returns its show (the master playlist: a player fetches it once, and its steering reloads or its
/// page's heartbeats renew).
///
/// # Errors
/// As [`renew`], but nothing ends here.
pub async fn check_session(
    state: &AppState,
    session: &SessionId,
    presented: &SessionSecret,
    client: IpAddr,
) -> Result<Show> {
    let (answer, _) = step(state, session, presented, false, client).await?;
    let answer = answer?;
    still_plays(state, session, answer.decision)?;
    let (_, show_id) = answer
        .owner
        .ok_or_else(|| Error::Internal("live session without owner".into()))?;
    state.store.show(&show_id).await?.ok_or(Error::SessionEnded)
}

/// The refusal a session gets once it no longer holds its lease.
pub fn ended_error(reason: EndReason) -> Error {
    match reason {
        EndReason::Superseded { by_device, at } => Error::Superseded { by_device, at },
        EndReason::Revoked { .. } => Error::TicketRevoked,
        EndReason::WindowEnded { at } => Error::Ended { ended_at: at },
        EndReason::Left { .. } | EndReason::EndedByAdmin { .. } => Error::SessionEnded,
        EndReason::Expired { .. } => Error::SessionExpired,
        EndReason::GeoBlocked { country, .. } => Error::GeoBlocked { country },
    }
}

#[cfg(test)]
mod door_tests {
    use super::*;

    #[test]
    fn waiters_far_back_ask_less_often_and_get_an_estimate_from_the_pace() {
        assert_eq!(wait_poll_s(1), 2);
        assert_eq!(wait_poll_s(1_500), 5);
        assert_eq!(wait_poll_s(1_000_000), MAX_WAIT_POLL_S);
        // 50 let in over the last 10 s: the 200th waits about 40 s
        assert_eq!(estimated_wait_s(200, 50, None), Some(40));
        assert_eq!(estimated_wait_s(200, 0, Some(20)), Some(10));
        assert_eq!(estimated_wait_s(200, 0, None), None);
    }
}
