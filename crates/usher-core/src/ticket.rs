//! Tickets: a secret token (stored only hashed) that admits to one show, with its own window and limits.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::clock::UnixMs;
use crate::ids::{ShowId, TicketId};
use crate::secret::SecretHash;
use crate::show::Show;
use crate::validation::{ValidationError, check_text};

/// A registration as the ticket site sends it; unknown fields are refused.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TicketSpec {
    /// The show it admits to.
    pub show_id: ShowId,
    /// The site's own token (16–128 of `A-Z a-z 0-9 - _ . ~`); Usher makes one with 256 random bits when
    /// absent.
    #[serde(default)]
    #[schema(pattern = r"^[A-Za-z0-9._~-]{16,128}$")]
    pub token: Option<String>,
    /// Start of the ticket's own window (default: the show's).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub valid_from: Option<OffsetDateTime>,
    /// End of the ticket's own window (default: the show's).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub valid_until: Option<OffsetDateTime>,
    /// Devices at once (default: the show's).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 100)]
    pub max_devices: Option<u32>,
    /// The site's order or ticket reference (1–200 characters, no control characters but newlines and tabs).
    #[serde(default)]
    #[schema(min_length = 1, max_length = 200)]
    pub external_ref: Option<String>,
}

/// Active or revoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TicketStatus {
    /// Admits its holder.
    Active,
    /// Refunded or voided; admits nobody.
    Revoked,
}

/// The terms of a ticket that decide whether a repeated registration is identical.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketTerms {
    /// The show it admits to.
    pub show_id: ShowId,
    /// Start of its own window.
    #[serde(with = "time::serde::rfc3339::option")]
    pub valid_from: Option<OffsetDateTime>,
    /// End of its own window.
    #[serde(with = "time::serde::rfc3339::option")]
    pub valid_until: Option<OffsetDateTime>,
    /// Devices at once, when it differs from the show's.
    pub max_devices: Option<u32>,
    /// The site's reference.
    pub external_ref: Option<String>,
}

/// A stored ticket.
///
/// Its serde form is flat: the terms' fields beside the others (`id`, `token_hash`, `show_id`, …). It
/// is written through [`TicketRecord`] rather than with `#[serde(flatten)]`, which buffers every field
/// of a record into a map of its own before it decodes one (a tenth of decoding a ticket, read on
/// every admit) and writes a map field by field.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(from = "OwnedRecord")]
pub struct Ticket {
    /// Non-secret id.
    pub id: TicketId,
    /// Keyed hash of the token.
    pub token_hash: SecretHash,
    /// Its terms.
    pub terms: TicketTerms,
    /// Active or revoked.
    pub status: TicketStatus,
    /// When it was registered.
    pub created_at: OffsetDateTime,
    /// When it was revoked.
    pub revoked_at: Option<OffsetDateTime>,
}

/// A [`Ticket`]'s serde form, flat; its parts are owned to read one and borrowed to write one.
#[derive(Serialize, Deserialize)]
struct TicketRecord<I, H, S, R> {
    id: I,
    token_hash: H,
    show_id: S,
    #[serde(with = "time::serde::rfc3339::option")]
    valid_from: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    valid_until: Option<OffsetDateTime>,
    max_devices: Option<u32>,
    external_ref: R,
    status: TicketStatus,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    revoked_at: Option<OffsetDateTime>,
}

/// The form a ticket is read from.
type OwnedRecord = TicketRecord<TicketId, SecretHash, ShowId, Option<String>>;

impl From<OwnedRecord> for Ticket {
    fn from(r: OwnedRecord) -> Self {
        Self {
            id: r.id,
            token_hash: r.token_hash,
            terms: TicketTerms {
                show_id: r.show_id,
                valid_from: r.valid_from,
                valid_until: r.valid_until,
                max_devices: r.max_devices,
                external_ref: r.external_ref,
            },
            status: r.status,
            created_at: r.created_at,
            revoked_at: r.revoked_at,
        }
    }
}

impl Serialize for Ticket {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        TicketRecord {
            id: &self.id,
            token_hash: &self.token_hash,
            show_id: &self.terms.show_id,
            valid_from: self.terms.valid_from,
            valid_until: self.terms.valid_until,
            max_devices: self.terms.max_devices,
            external_ref: self.terms.external_ref.as_deref(),
            status: self.status,
            created_at: self.created_at,
            revoked_at: self.revoked_at,
        }
        .serialize(serializer)
    }
}

impl TicketSpec {
    /// Checks the fields that do not need the store, and returns the ticket's terms.
    ///
    /// # Errors
    /// The first [`ValidationError`] found.
    pub fn terms(&self) -> Result<TicketTerms, ValidationError> {
        if let (Some(from), Some(until)) = (self.valid_from, self.valid_until)
            && until <= from
        {
            return Err(ValidationError::new(
                "valid_until",
                "must be after valid_from",
            ));
        }
        if let Some(k) = self.max_devices
            && !(1..=100).contains(&k)
        {
            return Err(ValidationError::new("max_devices", "must be 1 to 100"));
        }
        if let Some(r) = &self.external_ref {
            check_text("external_ref", r, 1, 200)?;
        }
        Ok(TicketTerms {
            show_id: self.show_id.clone(),
            valid_from: self.valid_from,
            valid_until: self.valid_until,
            max_devices: self.max_devices,
            external_ref: self.external_ref.clone(),
        })
    }
}

/// Where `now` stands against a ticket's effective window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowState {
    /// Opens at the given instant.
    NotStarted(UnixMs),
    /// Open until the given instant.
    Open(UnixMs),
    /// Closed at the given instant.
    Ended(UnixMs),
}

/// A ticket's own bounds on its show's window: all a heartbeat needs of the ticket (16 bytes a live
/// ticket can keep in memory, where the whole record is a few hundred).
/// The default is no bound of its own (the show's window alone).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TicketBounds {
    /// Not before (Unix ms).
    pub valid_from: Option<UnixMs>,
    /// Not after (Unix ms).
    pub valid_until: Option<UnixMs>,
}

impl TicketBounds {
    /// The window in which the ticket admits: its own, narrowed to the show's.
    pub fn window(&self, show: &Show) -> (UnixMs, UnixMs) {
        let from = self
            .valid_from
            .map_or(show.starts_ms(), |f| f.max(show.starts_ms()));
        let until = self
            .valid_until
            .map_or(show.ends_ms(), |u| u.min(show.ends_ms()));
        (from, until)
    }

    /// Where `now` stands against the ticket's window for `show`.
    pub fn window_state(&self, show: &Show, now: UnixMs) -> WindowState {
        let (from, until) = self.window(show);
        if now < from {
            WindowState::NotStarted(from)
        } else if now >= until {
            WindowState::Ended(until)
        } else {
            WindowState::Open(until)
        }
    }
}

impl Ticket {
    /// The ticket's own bounds.
    pub fn bounds(&self) -> TicketBounds {
        TicketBounds {
            valid_from: self.terms.valid_from.map(UnixMs::from_datetime),
            valid_until: self.terms.valid_until.map(UnixMs::from_datetime),
        }
    }

    /// The window in which the ticket admits: its own, narrowed to the show's.
    pub fn window(&self, show: &Show) -> (UnixMs, UnixMs) {
        self.bounds().window(show)
    }

    /// Where `now` stands against the ticket's window for `show`.
    pub fn window_state(&self, show: &Show, now: UnixMs) -> WindowState {
        let (from, until) = self.window(show);
        if now < from {
            WindowState::NotStarted(from)
        } else if now >= until {
            WindowState::Ended(until)
        } else {
            WindowState::Open(until)
        }
    }

    /// Devices the ticket may play on at once.
    pub fn max_devices(&self, show: &Show) -> u32 {
        self.terms.max_devices.unwrap_or(show.max_devices)
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;
    use crate::secret::SecretHasher;

    /// The record's JSON is flat, its fields in the order `#[serde(flatten)]` wrote them (so records
    /// written before read the same), and it reads back whole; a field it does not know is passed over.
    #[test]
    fn a_ticket_record_is_flat_and_reads_back_whole() {
        let hash = SecretHasher::new(b"ticket-record-key-0123456789abcdef").api_key_secret("x");
        let ticket = Ticket {
            id: TicketId::parse("t_00000000000000000000002a").unwrap(),
            token_hash: hash,
            terms: TicketTerms {
                show_id: ShowId::parse("show-1").unwrap(),
                valid_from: Some(datetime!(2026-12-01 20:00 UTC)),
                valid_until: None,
                max_devices: Some(2),
                external_ref: Some("order \"7\"".into()),
            },
            status: TicketStatus::Revoked,
            created_at: datetime!(2026-11-30 08:15:00.5 UTC),
            revoked_at: Some(datetime!(2026-12-02 00:00 UTC)),
        };
        let json = serde_json::to_string(&ticket).unwrap();
        assert_eq!(
            json,
            format!(
                r#"{{"id":"t_00000000000000000000002a","token_hash":"{}","show_id":"show-1","valid_from":"2026-12-01T20:00:00Z","valid_until":null,"max_devices":2,"external_ref":"order \"7\"","status":"revoked","created_at":"2026-11-30T08:15:00.5Z","revoked_at":"2026-12-02T00:00:00Z"}}"#,
                hash.to_hex()
            )
        );
        assert_eq!(serde_json::from_str::<Ticket>(&json).unwrap(), ticket);
        let later = json.replacen('{', r#"{"future":[1,{"a":2}],"#, 1);
        assert_eq!(serde_json::from_str::<Ticket>(&later).unwrap(), ticket);
        let no_ref = json.replace(r#""external_ref":"order \"7\"""#, r#""external_ref":null"#);
        assert_eq!(
            serde_json::from_str::<Ticket>(&no_ref)
                .unwrap()
                .terms
                .external_ref,
            None
        );
    }
}
