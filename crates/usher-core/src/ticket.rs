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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    /// Non-secret id.
    pub id: TicketId,
    /// Keyed hash of the token.
    pub token_hash: SecretHash,
    /// Its terms.
    #[serde(flatten)]
    pub terms: TicketTerms,
    /// Active or revoked.
    pub status: TicketStatus,
    /// When it was registered.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it was revoked.
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
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
