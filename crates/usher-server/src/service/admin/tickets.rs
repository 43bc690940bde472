//! Tickets, as the ticket site and admins handle them: register (one or a batch), status and usage,
//! search, revoke, erase personal data; and the console's preview ticket.

use serde_json::Value;
use usher_core::admin::Permission;
use usher_core::ids::{TicketId, TicketToken};
use usher_core::privacy::Erased;
use usher_core::store::{NewTicket, RegisterOutcome, TicketActivity};
use usher_core::ticket::{Ticket, TicketSpec, TicketStatus, TicketTerms};

use crate::service::audit;
use crate::service::{Caller, Error, Record, Result};
use crate::state::AppState;

/// Most tickets in one batch.
pub const MAX_BATCH: usize = 10_000;

/// A registered ticket with its token (shown to the ticket site, which registered it).
#[derive(Debug)]
pub struct Registered {
    /// The ticket.
    pub ticket: Ticket,
    /// Its secret token.
    pub token: TicketToken,
    /// `false` when it repeats an identical registration.
    pub created: bool,
}

/// A registration checked against everything but the store's token index.
struct Checked {
    new: NewTicket,
    token: TicketToken,
}

async fn check(state: &AppState, spec: TicketSpec) -> Result<Checked> {
    let terms = spec
        .terms()
        .map_err(|e| Error::InvalidRequest(e.to_string()))?;
    let token = match &spec.token {
        Some(t) => {
            TicketToken::parse(t).map_err(|e| Error::InvalidRequest(format!("token: {e}")))?
        }
        None => TicketToken::generate(),
    };
    if state.store.show(&terms.show_id).await?.is_none() {
        return Err(Error::UnknownShow(terms.show_id.to_string()));
    }
    // while token_key is rotated, a token the site registers again may be stored under the previous
    // key: registered under that hash, the store answers it as it would any repeat (the existing ticket,
    // or a conflict), and no second ticket holds the same token
    let mut token_hash = state.hasher.ticket_token(&token);
    if spec.token.is_some()
        && let Some(previous) = state.hasher.previous()
    {
        let earlier = previous.ticket_token(&token);
        if state.store.ticket_by_token(&earlier).await?.is_some() {
            token_hash = earlier;
        }
    }
    let ticket = Ticket {
        id: TicketId::generate_in(&token_hash.shard()),
        token_hash,
        terms,
        status: TicketStatus::Active,
        created_at: state.store.now().to_datetime(),
        revoked_at: None,
    };
    Ok(Checked {
        new: NewTicket { ticket },
        token,
    })
}

fn registered(outcome: RegisterOutcome, token: TicketToken) -> Result<Registered> {
    match outcome {
        RegisterOutcome::Created(ticket) => Ok(Registered {
            ticket,
            token,
            created: true,
        }),
        RegisterOutcome::Existing(ticket) => Ok(Registered {
            ticket,
            token,
            created: false,
        }),
        RegisterOutcome::Conflict(id) => Err(Error::TokenConflict {
            ticket_id: id.to_string(),
        }),
    }
}

/// Registers one ticket; an identical repeat answers the ticket registered before.
///
/// # Errors
/// `invalid_request`, `show_unknown`, `token_conflict`; `forbidden`.
pub async fn register(state: &AppState, caller: &Caller, spec: TicketSpec) -> Result<Registered> {
    caller.require(Permission::RegisterTickets)?;
    let checked = check(state, spec).await?;
    // the ticket and its audit entry are one durable write
    let target = format!("ticket:{}", checked.new.ticket.id);
    let entry = audit::entry(state, caller, "ticket.register", &target, "");
    let outcome = state
        .store
        .register_tickets_audited(vec![checked.new], entry)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| Error::Internal("store answered no outcome".into()))?;
    let reg = registered(outcome, checked.token)?;
    metrics::counter!("usher_tickets_registered_total", "outcome" => if reg.created { "created" } else { "existing" }).increment(1);
    Ok(reg)
}

/// What a batch registration did: counts and one result per item, in order.
#[derive(Debug)]
pub struct Batch {
    /// Tickets created.
    pub created: u64,
    /// Identical repeats of registered tickets.
    pub existing: u64,
    /// Items refused.
    pub failed: u64,
    /// One result per item, in the order of the request.
    pub results: Vec<Result<Registered>>,
}

/// Registers up to [`MAX_BATCH`] tickets in one durable write; each item is checked alone, so a bad item
/// fails alone (`invalid_request`, `show_unknown` or `token_conflict` in its result).
///
/// # Errors
/// `invalid_request` for an empty or oversized batch; `forbidden`; the store's error.
pub async fn register_batch(state: &AppState, caller: &Caller, items: Vec<Value>) -> Result<Batch> {
    caller.require(Permission::RegisterTickets)?;
    if items.is_empty() || items.len() > MAX_BATCH {
        return Err(Error::InvalidRequest(format!(
            "tickets: must hold 1 to {MAX_BATCH} items"
        )));
    }
    let mut results: Vec<Option<Result<Registered>>> = Vec::with_capacity(items.len());
    let mut pending = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        // serde would also fill a registration from an array of its fields in order
        let spec = if item.is_object() {
            serde_path_to_error::deserialize::<_, TicketSpec>(item).map_err(|e| {
                Error::InvalidRequest(format!("tickets[{i}].{}: {}", e.path(), e.inner()))
            })
        } else {
            Err(Error::InvalidRequest(format!(
                "tickets[{i}]: must be an object"
            )))
        };
        let result = match spec {
            Ok(spec) => match check(state, spec).await {
                Ok(c) => {
                    pending.push((i, c));
                    None
                }
                Err(e @ (Error::InvalidRequest(_) | Error::UnknownShow(_))) => Some(Err(e)),
                Err(e) => return Err(e),
            },
            Err(e) => Some(Err(e)),
        };
        results.push(result);
    }
    let (indices, checked): (Vec<usize>, Vec<Checked>) = pending.into_iter().unzip();
    let tokens: Vec<TicketToken> = checked.iter().map(|c| c.token.clone()).collect();
    let outcomes = state
        .store
        .register_tickets(checked.into_iter().map(|c| c.new).collect())
        .await?;
    if outcomes.len() != indices.len() {
        return Err(Error::Internal(format!(
            "store answered {} outcomes for {} tickets",
            outcomes.len(),
            indices.len()
        )));
    }
    let (mut created, mut existing) = (0u64, 0u64);
    for ((i, outcome), token) in indices.into_iter().zip(outcomes).zip(tokens) {
        let result = registered(outcome, token);
        match &result {
            Ok(r) if r.created => created += 1,
            Ok(_) => existing += 1,
            Err(_) => {}
        }
        results[i] = Some(result);
    }
    metrics::counter!("usher_tickets_registered_total", "outcome" => "created").increment(created);
    metrics::counter!("usher_tickets_registered_total", "outcome" => "existing")
        .increment(existing);
    let results: Vec<Result<Registered>> = results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(Error::Internal("batch item without a result".into()))))
        .collect();
    let failed = results.len() as u64 - created - existing;
    if created > 0 {
        audit::record(
            state,
            caller,
            "ticket.register_batch",
            "",
            &format!("created={created} existing={existing} failed={failed}"),
        )
        .await;
    }
    Ok(Batch {
        created,
        existing,
        failed,
        results,
    })
}

async fn find(state: &AppState, id: &str) -> Result<Ticket> {
    let id = TicketId::parse(id).map_err(|_| Error::NotFound(Record::Ticket))?;
    state
        .store
        .ticket(&id)
        .await?
        .ok_or(Error::NotFound(Record::Ticket))
}

/// How many devices and countries took turns on a ticket, and whether that looks like sharing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sharing {
    /// Distinct devices seen.
    pub devices: usize,
    /// Distinct countries seen.
    pub countries: usize,
    /// Sessions started.
    pub sessions: u64,
    /// Times a copy of a session's credentials was refused (`session_cloned`).
    pub clones: u64,
    /// The verdict.
    pub level: SharingLevel,
}

/// Whether a ticket's use looks like sharing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SharingLevel {
    /// One device.
    None,
    /// A few devices in one country.
    Some,
    /// More than three devices, more than one country, or a session's credentials copied.
    High,
}

impl SharingLevel {
    /// `none`, `some` or `high`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Some => "some",
            Self::High => "high",
        }
    }
}

impl Sharing {
    /// The signal of a ticket's activity.
    pub fn of(a: &TicketActivity) -> Self {
        let devices = a.usage.devices.len();
        let countries = a.usage.countries.len();
        let clones = a.usage.clones;
        let level = if devices > 3 || countries > 1 || clones > 0 {
            SharingLevel::High
        } else if devices > 1 {
            SharingLevel::Some
        } else {
            SharingLevel::None
        };
        Self {
            devices,
            countries,
            sessions: a.usage.sessions,
            clones,
            level,
        }
    }
}

/// A ticket with how it was used.
pub struct TicketReport {
    /// The ticket.
    pub ticket: Ticket,
    /// Its usage and live sessions.
    pub activity: TicketActivity,
    /// The sharing signal of that usage.
    pub sharing: Sharing,
}

/// A ticket's status and usage, to settle disputes.
///
/// # Errors
/// `ticket_unknown`; `forbidden`.
pub async fn status(state: &AppState, caller: &Caller, id: &str) -> Result<TicketReport> {
    caller.require(Permission::ReadTickets)?;
    let ticket = find(state, id).await?;
    let activity = state.store.ticket_activity(&ticket.id).await?;
    let sharing = Sharing::of(&activity);
    Ok(TicketReport {
        ticket,
        activity,
        sharing,
    })
}

/// Revokes a ticket; its sessions end at their next heartbeat (at once on this node's origin, within
/// `http.media_lease_check_ms` on the others').
///
/// # Errors
/// `ticket_unknown`; `forbidden`.
pub async fn revoke(state: &AppState, caller: &Caller, id: &str) -> Result<Ticket> {
    caller.require(Permission::RevokeTickets)?;
    let ticket = find(state, id).await?;
    let revoked = state
        .store
        .revoke_ticket(&ticket.id)
        .await?
        .ok_or(Error::NotFound(Record::Ticket))?;
    state.lease_checks.changed();
    tracing::info!(ticket.id = %revoked.id, "ticket revoked");
    audit::record(
        state,
        caller,
        "ticket.revoke",
        &format!("ticket:{}", revoked.id),
        "",
    )
    .await;
    // a repeated revoke is no new event
    if ticket.status != TicketStatus::Revoked {
        crate::service::webhooks::emit(
            state,
            "ticket.revoked",
            serde_json::json!({
                "ticket_id": revoked.id,
                "show_id": revoked.terms.show_id,
                "external_ref": revoked.terms.external_ref,
            }),
        )
        .await;
    }
    Ok(revoked)
}

/// What an erasure did to a ticket.
#[derive(Debug)]
pub struct Erasure {
    /// The ticket, as it stays (status, terms and times are the seller's accounting).
    pub ticket: Ticket,
    /// What was erased.
    pub erased: Erased,
    /// When, by the store's clock.
    pub at: usher_core::clock::UnixMs,
}

/// Erases the ticket's personal data (a buyer's request under the GDPR's right to erasure, which the
/// ticket site relays): the client addresses, countries and devices (ids and labels) of its usage, its
/// sessions' device labels and the countries that ended them. Its status, terms, times and counts stay,
/// for the seller's accounting; so does the audit entry that records who erased it (its detail holds
/// counts only).
///
/// A revoked ticket is erased like any other, and a second call succeeds and erases nothing more. Live
/// sessions keep their seat and play on: the buyer paid for the show, and ending it would punish the
/// request; their device labels are blanked, and what they do from now on is recorded afresh under the
/// `[privacy]` retention rules (see `TicketLeases::erase_personal_data`).
///
/// # Errors
/// `ticket_unknown`; `forbidden`.
pub async fn erase_personal_data(state: &AppState, caller: &Caller, id: &str) -> Result<Erasure> {
    caller.require(Permission::ErasePersonalData)?;
    let ticket = find(state, id).await?;
    let erased = state.store.erase_personal_data(&ticket.id).await?;
    let at = state.store.now();
    tracing::info!(ticket.id = %ticket.id, "ticket's personal data erased");
    audit::record(
        state,
        caller,
        "ticket.erase_personal_data",
        &format!("ticket:{}", ticket.id),
        &format!(
            "addresses={} countries={} devices={} sessions={}",
            erased.addresses, erased.countries, erased.devices, erased.sessions
        ),
    )
    .await;
    Ok(Erasure { ticket, erased, at })
}

/// Tickets matching `q`: the ticket of that id, else those with that exact external reference (at most
/// 100); each caller within `rate_limits.searches`.
///
/// # Errors
/// `invalid_request` for an empty or overlong query; `forbidden`; `rate_limited`.
pub async fn search(state: &AppState, caller: &Caller, q: &str) -> Result<Vec<Ticket>> {
    caller.require(Permission::ReadTickets)?;
    state.limits.search(caller.actor().id())?;
    let q = q.trim();
    if q.is_empty() || q.chars().count() > 200 {
        return Err(Error::InvalidRequest(
            "q: a ticket id or an external reference of 1 to 200 characters".into(),
        ));
    }
    if let Ok(id) = TicketId::parse(q)
        && let Some(t) = state.store.ticket(&id).await?
    {
        return Ok(vec![t]);
    }
    Ok(state.store.tickets_by_external_ref(q, 100).await?)
}

/// Registers a one-device preview ticket of the show `id` for the caller (external reference
/// `preview:<who>`, audited like any registration); returns its token, for the watch link.
///
/// # Errors
/// `show_unknown`; `forbidden`.
pub async fn register_preview(state: &AppState, caller: &Caller, id: &str) -> Result<TicketToken> {
    caller.require(Permission::Manage)?;
    let show = crate::service::admin::shows::find_show(state, caller, id).await?;
    let who = caller.actor().id().to_owned();
    let token = TicketToken::generate();
    let token_hash = state.hasher.ticket_token(&token);
    let ticket = Ticket {
        id: TicketId::generate_in(&token_hash.shard()),
        token_hash,
        terms: TicketTerms {
            show_id: show.id.clone(),
            valid_from: None,
            valid_until: None,
            max_devices: Some(1),
            external_ref: Some(format!("preview:{who}")),
        },
        status: TicketStatus::Active,
        created_at: state.store.now().to_datetime(),
        revoked_at: None,
    };
    let entry = audit::entry(
        state,
        caller,
        "ticket.register",
        &format!("ticket:{}", ticket.id),
        "admin preview",
    );
    state
        .store
        .register_tickets_audited(vec![NewTicket { ticket }], entry)
        .await?;
    Ok(token)
}
