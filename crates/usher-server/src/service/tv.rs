//! TV sign-in codes (issue 20; RFC 8628's device authorization grant, with the ticket in the place of an
//! account): the TV page asks for a code ([`start`]) and shows it with a QR code of
//! `/activate?code=…`; the buyer opens that on a phone holding the ticket (the watch link's cookie) and
//! approves ([`approve`]); the TV's next poll ([`poll`]) takes the ticket, as its own ticket cookie, and
//! the TV plays under that ticket as one more device, under the show's seat rules.
//!
//! - A code waits `tv.code_ttl_s` and works once: the poll that takes the approval removes it.
//! - The TV polls at `interval`; a poll sooner gets `slow_down` and the interval grows by 5 s (kept in
//!   the store, so it holds across nodes).
//! - Codes made are limited per address (`rate_limits.tv_codes`); a user code the phone types that is
//!   not waiting, and a device code that is not, each spend a failed lookup of the address's budget
//!   (`rate_limits.ticket_lookup_failures`), like an unknown ticket.
//! - The store keeps keyed hashes of both codes, and the ticket's token only sealed (AES-256-GCM under a
//!   key derived from `token_key`, bound to the code).

use std::net::IpAddr;

use usher_core::store::{TvApproval, TvApproveOutcome, TvCode, TvPoll};
use usher_core::tv::{DeviceCode, UserCode};

use crate::service::viewer::{self, TicketAndShow};
use crate::service::{Error, Result};
use crate::state::AppState;

/// A code for a TV to show.
#[derive(Debug)]
pub struct NewCode {
    /// What the TV polls with (secret: the TV keeps it).
    pub device_code: DeviceCode,
    /// Seconds until the code lapses.
    pub expires_in: u32,
    /// Seconds between polls.
    pub interval: u32,
}

/// Makes a code for a TV at `client`.
///
/// # Errors
/// `rate_limited` past `rate_limits.tv_codes`; `store_unavailable`.
pub async fn start(state: &AppState, client: IpAddr) -> Result<NewCode> {
    state.limits.tv_code(client)?;
    let tv = &state.config.tv;
    // a live code holding the same user code is rare (2^34 codes): draw again
    for _ in 0..8 {
        let device_code = DeviceCode::generate(UserCode::generate());
        let code = TvCode {
            device_secret: state.hasher.tv_device_secret(&device_code),
            expires_at: state.store.now().plus_secs(tv.code_ttl_s),
            interval_s: tv.poll_interval_s,
        };
        let user = state.hasher.tv_user_code(&device_code.user_code);
        if state.store.create_tv_code(&user, code).await? {
            metrics::counter!("usher_tv_codes_total", "step" => "made").increment(1);
            return Ok(NewCode {
                device_code,
                expires_in: tv.code_ttl_s,
                interval: tv.poll_interval_s,
            });
        }
    }
    Err(Error::Internal(
        "eight random TV codes in a row were taken".into(),
    ))
}

/// The ticket `token` of the phone at `client`, when it may lend a TV a seat: one that can play now or
/// later (`not_started` is fine, the TV counts down).
///
/// # Errors
/// `ticket_unknown`, `ticket_revoked`, `show_unpublished`, `ended`; `rate_limited`.
pub async fn lending_ticket(
    state: &AppState,
    token: &str,
    client: IpAddr,
) -> Result<TicketAndShow> {
    let ts = viewer::find_ticket(state, token, client).await?;
    match viewer::check_admits(&ts, state.store.now()) {
        Ok(_) | Err(Error::NotStarted { .. }) => Ok(ts),
        Err(e) => Err(e),
    }
}

/// The phone at `client`, holding the ticket `token`, approves the code `typed`: the TV waiting with it
/// will play under this ticket. Returns the ticket and show (the page names the show).
///
/// # Errors
/// The ticket's refusals (`ticket_unknown`, `ticket_revoked`, `show_unpublished`, `ended`: a ticket
/// that cannot play now or later lends no TV a seat; `not_started` is fine, the TV counts down);
/// `tv_code_unknown` for a code not waiting (or approved already); `rate_limited` when the address has
/// no failed lookup left.
pub async fn approve(
    state: &AppState,
    token: &str,
    typed: &str,
    client: IpAddr,
) -> Result<TicketAndShow> {
    let ts = lending_ticket(state, token, client).await?;
    let held = state.limits.ticket_lookup(client)?;
    let Some(code) = UserCode::parse(typed) else {
        if let Some(h) = held {
            h.failed();
        }
        return Err(Error::TvCodeUnknown);
    };
    let user = state.hasher.tv_user_code(&code);
    let sealed_token = state.tv_sealer.seal(&user.to_hex(), token.as_bytes())?;
    let approval = TvApproval {
        ticket_id: ts.ticket.id.clone(),
        sealed_token,
    };
    match state.store.approve_tv_code(&user, approval).await? {
        TvApproveOutcome::Approved => {
            metrics::counter!("usher_tv_codes_total", "step" => "approved").increment(1);
            tracing::info!(ticket.id = %ts.ticket.id, show.id = %ts.show.id, "TV code approved");
            Ok(ts)
        }
        TvApproveOutcome::AlreadyApproved => Err(Error::TvCodeUnknown),
        TvApproveOutcome::Unknown => {
            if let Some(h) = held {
                h.failed();
            }
            Err(Error::TvCodeUnknown)
        }
    }
}

/// The TV at `client` polls with its device code: the ticket's token once approved (the code is gone
/// after this answer).
///
/// # Errors
/// `authorization_pending` and `slow_down` with the interval; `expired_token` for a code that lapsed,
/// was taken or never was (which spends a failed lookup); `rate_limited`.
pub async fn poll(state: &AppState, device_code: &str, client: IpAddr) -> Result<String> {
    let held = state.limits.ticket_lookup(client)?;
    let unknown = |held: crate::limits::Held<'_>| {
        if let Some(h) = held {
            h.failed();
        }
        Error::ExpiredToken
    };
    let Some(code) = DeviceCode::parse(device_code) else {
        return Err(unknown(held));
    };
    let user = state.hasher.tv_user_code(&code.user_code);
    let secret = state.hasher.tv_device_secret(&code);
    match state.store.poll_tv_code(&user, &secret).await? {
        TvPoll::Pending { interval_s } => Err(Error::AuthorizationPending { interval_s }),
        TvPoll::SlowDown { interval_s } => Err(Error::SlowDown { interval_s }),
        TvPoll::Unknown => Err(unknown(held)),
        TvPoll::Approved(approval) => {
            let token = state
                .tv_sealer
                .open(&user.to_hex(), &approval.sealed_token)?;
            metrics::counter!("usher_tv_codes_total", "step" => "taken").increment(1);
            String::from_utf8(token)
                .map_err(|_| Error::Internal("a TV approval's token is not text".into()))
        }
    }
}
