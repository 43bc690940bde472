//! Tickets: a ticket (with its token and watch link in registration answers, its usage in the status),
//! a search's list, a batch's results.

use serde::Serialize;
use usher_core::geo::Country;
use usher_core::ids::{SessionId, ShowId, TicketId};
use usher_core::store::TicketActivity;
use usher_core::ticket::{Ticket, TicketStatus};
use utoipa::ToSchema;

use super::rfc3339;
use crate::service::admin::tickets::{Batch, Erasure, Registered, Sharing, TicketReport};
use crate::service::{Code, Error};

/// A ticket: `token` and `watch_url` only in registration answers, `usage` and `sharing` only in
/// `GET /api/v1/tickets/{ticket_id}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct TicketView {
    /// The ticket's non-secret id.
    pub id: TicketId,
    /// The show it admits to.
    pub show_id: ShowId,
    /// `active` or `revoked`.
    pub status: TicketStatus,
    /// Start of the ticket's own window (`null`: the show's).
    #[schema(format = DateTime, required = true)]
    pub valid_from: Option<String>,
    /// End of the ticket's own window (`null`: the show's).
    #[schema(format = DateTime, required = true)]
    pub valid_until: Option<String>,
    /// Devices at once (`null`: the show's).
    #[schema(required = true)]
    pub max_devices: Option<u32>,
    /// The ticket site's reference.
    #[schema(required = true)]
    pub external_ref: Option<String>,
    /// When it was registered.
    #[schema(format = DateTime, required = true)]
    pub created_at: Option<String>,
    /// When it was revoked.
    #[schema(format = DateTime, required = true)]
    pub revoked_at: Option<String>,
    /// The secret token (registration answers only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// The watch link to hand to the buyer (registration answers only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub watch_url: Option<String>,
    /// How the ticket was used (`GET /api/v1/tickets/{ticket_id}` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<TicketUsage>,
    /// Whether that use looks like sharing (`GET /api/v1/tickets/{ticket_id}` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sharing: Option<SharingSignal>,
}

impl TicketView {
    /// A ticket without its token.
    pub fn new(t: &Ticket) -> Self {
        Self {
            id: t.id.clone(),
            show_id: t.terms.show_id.clone(),
            status: t.status,
            valid_from: t.terms.valid_from.and_then(rfc3339),
            valid_until: t.terms.valid_until.and_then(rfc3339),
            max_devices: t.terms.max_devices,
            external_ref: t.terms.external_ref.clone(),
            created_at: rfc3339(t.created_at),
            revoked_at: t.revoked_at.and_then(rfc3339),
            token: None,
            watch_url: None,
            usage: None,
            sharing: None,
        }
    }

    /// A registered ticket with its token and the watch link under `base_url`.
    pub fn registered(r: &Registered, base_url: &str) -> Self {
        let token = r.token.expose();
        Self {
            token: Some(token.to_owned()),
            watch_url: Some(format!("{base_url}/watch/{token}")),
            ..Self::new(&r.ticket)
        }
    }

    /// A ticket with its usage and sharing signal.
    pub fn report(r: &TicketReport) -> Self {
        Self {
            usage: Some(TicketUsage::new(&r.activity)),
            sharing: Some(SharingSignal::new(&r.sharing)),
            ..Self::new(&r.ticket)
        }
    }
}

/// How a ticket was used, to settle disputes.
#[derive(Debug, Serialize, ToSchema)]
pub struct TicketUsage {
    /// First admit.
    #[schema(format = DateTime, required = true)]
    pub first_play_at: Option<String>,
    /// Last admit or heartbeat.
    #[schema(format = DateTime, required = true)]
    pub last_seen_at: Option<String>,
    /// Sessions started.
    pub sessions: u64,
    /// Distinct devices seen.
    pub devices: usize,
    /// Sessions holding a seat now.
    pub active_sessions: usize,
    /// Times a copy of a session's credentials was refused (`session_cloned`).
    pub clones: u64,
    /// The last such time.
    #[schema(format = DateTime, required = true)]
    pub last_clone_at: Option<String>,
    /// Each device seen.
    pub device_history: Vec<DeviceUsage>,
    /// Each country seen.
    pub countries: Vec<CountryUsage>,
    /// Each client address admits came from (most recent last, at most 32); older ones as their network
    /// (see `[privacy]`).
    pub addresses: Vec<AddressUsage>,
    /// The sessions holding a seat now.
    pub live_sessions: Vec<LiveSession>,
}

impl TicketUsage {
    /// The usage of a ticket's activity.
    pub fn new(a: &TicketActivity) -> Self {
        let u = &a.usage;
        Self {
            first_play_at: u.first_play_at.map(|t| t.to_rfc3339()),
            last_seen_at: u.last_seen_at.map(|t| t.to_rfc3339()),
            sessions: u.sessions,
            devices: u.devices.len(),
            active_sessions: a.live.len(),
            clones: u.clones,
            last_clone_at: u.last_clone_at.map(|t| t.to_rfc3339()),
            device_history: u
                .devices
                .iter()
                .map(|d| DeviceUsage {
                    label: d.label.clone(),
                    first_seen_at: d.first_seen.to_rfc3339(),
                    last_seen_at: d.last_seen.to_rfc3339(),
                })
                .collect(),
            countries: u
                .countries
                .iter()
                .map(|c| CountryUsage {
                    country: c.country,
                    first_seen_at: c.first_seen.to_rfc3339(),
                    last_seen_at: c.last_seen.to_rfc3339(),
                })
                .collect(),
            addresses: u
                .addresses
                .iter()
                .map(|a| AddressUsage {
                    address: a.text(),
                    first_seen_at: a.first_seen.to_rfc3339(),
                    last_seen_at: a.last_seen.to_rfc3339(),
                })
                .collect(),
            live_sessions: a
                .live
                .iter()
                .map(|s| LiveSession {
                    session_id: s.session_id.clone(),
                    device_label: s.device_label.clone(),
                    started_at: s.created_at.to_rfc3339(),
                    last_heartbeat_at: s.renewed_at.to_rfc3339(),
                    expires_at: s.expires_at.to_rfc3339(),
                })
                .collect(),
        }
    }
}

/// The answer to an erasure of a ticket's personal data.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErasureView {
    /// The ticket.
    pub ticket_id: TicketId,
    /// Its status, which an erasure does not change (`active` or `revoked`).
    pub status: TicketStatus,
    /// When the data was erased.
    #[schema(format = DateTime)]
    pub erased_at: String,
    /// What was erased (all 0 when nothing was left: a second erasure, a ticket never played).
    pub erased: ErasedCounts,
    /// Sessions still holding a seat: they play on, their device labels blanked.
    pub live_sessions: u64,
}

/// What an erasure removed.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErasedCounts {
    /// Client addresses (and networks) of the usage.
    pub addresses: u64,
    /// Countries of the usage.
    pub countries: u64,
    /// Devices (ids and labels) of the usage.
    pub devices: u64,
    /// Sessions, live or recently ended, whose device label (or the country that ended them) was
    /// blanked.
    pub sessions: u64,
}

impl ErasureView {
    /// The view of an erasure.
    pub fn new(e: &Erasure) -> Self {
        Self {
            ticket_id: e.ticket.id.clone(),
            status: e.ticket.status,
            erased_at: e.at.to_rfc3339(),
            erased: ErasedCounts {
                addresses: e.erased.addresses,
                countries: e.erased.countries,
                devices: e.erased.devices,
                sessions: e.erased.sessions,
            },
            live_sessions: e.erased.live_sessions,
        }
    }
}

/// One device that played a ticket.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceUsage {
    /// A label for humans ("Chrome on Linux").
    pub label: String,
    /// First seen.
    #[schema(format = DateTime)]
    pub first_seen_at: String,
    /// Last seen.
    #[schema(format = DateTime)]
    pub last_seen_at: String,
}

/// One country a ticket played from.
#[derive(Debug, Serialize, ToSchema)]
pub struct CountryUsage {
    /// ISO 3166-1 alpha-2 code.
    pub country: Country,
    /// First seen.
    #[schema(format = DateTime)]
    pub first_seen_at: String,
    /// Last seen.
    #[schema(format = DateTime)]
    pub last_seen_at: String,
}

/// One client address a ticket played from.
#[derive(Debug, Serialize, ToSchema)]
pub struct AddressUsage {
    /// IPv4 or IPv6 address, as the server saw the client (after trusted proxies); once older than
    /// `privacy.addresses_keep_days` (with `privacy.addresses_after = "truncate"`), its network in CIDR
    /// notation (`198.51.100.0/24`, `2001:db8:1::/48`).
    pub address: String,
    /// First seen.
    #[schema(format = DateTime)]
    pub first_seen_at: String,
    /// Last seen.
    #[schema(format = DateTime)]
    pub last_seen_at: String,
}

/// A session holding a seat on a ticket.
#[derive(Debug, Serialize, ToSchema)]
pub struct LiveSession {
    /// The session.
    pub session_id: SessionId,
    /// Its device's label.
    pub device_label: String,
    /// When it was admitted.
    #[schema(format = DateTime)]
    pub started_at: String,
    /// Its last heartbeat.
    #[schema(format = DateTime)]
    pub last_heartbeat_at: String,
    /// When its lease lapses without a heartbeat.
    #[schema(format = DateTime)]
    pub expires_at: String,
}

/// How many devices and countries took turns on a ticket, and whether that looks like sharing: more
/// than three devices, more than one country or a copied session is `high`, more than one device `some`.
#[derive(Debug, Serialize, ToSchema)]
pub struct SharingSignal {
    /// Distinct devices seen.
    pub devices: usize,
    /// Distinct countries seen.
    pub countries: usize,
    /// Sessions started.
    pub sessions: u64,
    /// Times a copy of a session's credentials (cookies, secret, player URL) was refused with
    /// `session_cloned`: a second player on one seat.
    pub clones: u64,
    /// `none`, `some` or `high`.
    #[schema(pattern = "^(none|some|high)$")]
    pub level: &'static str,
}

impl SharingSignal {
    /// The view of a sharing signal.
    pub fn new(s: &Sharing) -> Self {
        Self {
            devices: s.devices,
            countries: s.countries,
            sessions: s.sessions,
            clones: s.clones,
            level: s.level.as_str(),
        }
    }
}

/// The tickets a search found.
#[derive(Debug, Serialize, ToSchema)]
pub struct TicketList {
    /// The ticket of that id, else those with that external reference (at most 100).
    pub tickets: Vec<TicketView>,
}

/// The answer to a batch registration: counts and one result per item, in order.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchAnswer {
    /// Tickets created.
    pub created: u64,
    /// Identical repeats of registered tickets.
    pub existing: u64,
    /// Items refused.
    pub failed: u64,
    /// One result per item, in the order of the request.
    pub results: Vec<BatchItem>,
}

/// The result of one batch item: `ticket` when it was registered (`status` 201 or 200), `error` when refused.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchItem {
    /// The item's position in the request, from 0.
    pub index: usize,
    /// The HTTP status the item would have had alone (201, 200, 400, 409 or 422).
    pub status: u16,
    /// The ticket, when registered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ticket: Option<TicketView>,
    /// Why it was refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<BatchItemError>,
}

/// Why a batch item was refused.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchItemError {
    /// `invalid_request`, `show_unknown` or `token_conflict`.
    #[schema(value_type = String, pattern = "^(invalid_request|show_unknown|token_conflict)$")]
    pub code: Code,
    /// What is wrong (`invalid_request`, `show_unknown`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The ticket already registered with this token (`token_conflict`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<TicketId>)]
    pub ticket_id: Option<String>,
}

impl BatchItemError {
    fn new(e: &Error) -> Self {
        let (detail, ticket_id) = match e {
            Error::InvalidRequest(m) => (Some(m.clone()), None),
            Error::UnknownShow(id) => (Some(format!("no show `{id}`")), None),
            Error::TokenConflict { ticket_id } => (None, Some(ticket_id.clone())),
            _ => (None, None),
        };
        Self {
            code: e.code(),
            detail,
            ticket_id,
        }
    }
}

impl BatchAnswer {
    /// The answer of a batch, its tickets' watch links under `base_url`.
    pub fn new(batch: &Batch, base_url: &str) -> Self {
        let results = batch
            .results
            .iter()
            .enumerate()
            .map(|(index, r)| match r {
                Ok(reg) => BatchItem {
                    index,
                    status: if reg.created { 201 } else { 200 },
                    ticket: Some(TicketView::registered(reg, base_url)),
                    error: None,
                },
                Err(e) => BatchItem {
                    index,
                    status: e.status().as_u16(),
                    ticket: None,
                    error: Some(BatchItemError::new(e)),
                },
            })
            .collect();
        Self {
            created: batch.created,
            existing: batch.existing,
            failed: batch.failed,
            results,
        }
    }
}
