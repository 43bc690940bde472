//! Content keys (DESIGN.md "Encryption and keys"): registering a key for a stream folder, and handing it
//! to a player whose session holds its seat right now.
//!
//! **At rest** every key is wrapped with AES-256-GCM under the key-encryption key (KEK): HKDF-SHA256 of
//! `secrets.key_encryption_key` when set, else of `secrets.token_key` under another label (so encrypted
//! shows need no new secret, and the wrapping key is never the token key itself). The associated data
//! binds the key's id and stream folder, so a wrapped key moved to another record does not open. The
//! store, its backups and Redis hold only wrapped keys; a clear key exists in this node's memory (a
//! bounded cache of unwrapped keys: they never change once registered) and in the key endpoint's body.
//!
//! **Who gets a key**: a session that holds its seat now, checked without renewing anything (a key
//! request must not move the session's secret): by its secret (the watch page's `usher_seat` cookie, an
//! app's header) through [`viewer::check_session`] — superseded, cloned, revoked, ended and expired
//! sessions are refused — or, for native players that can send neither, by the origin grant that Usher's
//! origin writes into the key URIs of the playlists it serves (its signature and network, and the
//! store's live-session check as for a segment; not its expiry: a native player keeps a VOD playlist's
//! key URIs for the whole show, and the seat is what the check is about). Then the show's Geo policy for the request's
//! address, the show's `encryption`, and the key's folder against the show's. Every refusal of the
//! session is [`Error::KeyRefused`] (one status for players) with the session's reason as its code.

use std::net::IpAddr;

use usher_core::admin::Permission;
use usher_core::content_key::{ContentKey, ContentKeyRecord};
use usher_core::ids::{ContentKeyId, SessionId};
use usher_core::session_secret::SessionSecret;
use usher_core::show::{Encryption, Show, check_stream_path};

use crate::service::{Caller, Code, Error, Record, Result, audit, viewer};
use crate::state::AppState;

pub mod wrap;

/// A registered content key, without the key.
#[derive(Debug, Clone)]
pub struct KeyRegistration {
    /// The key's id.
    pub id: ContentKeyId,
    /// The stream folder it encrypts.
    pub stream_path: String,
    /// When it was first registered.
    pub created_at: usher_core::clock::UnixMs,
    /// Whether this call registered it (else the same key was registered already).
    pub created: bool,
}

/// Registers `key` (32 hex digits) as content key `id` of the stream folder `stream_path` (the packager's
/// call, before the key encrypts anything). Registering the same key again is answered as before; the
/// key itself is never answered.
///
/// # Errors
/// `forbidden`; `invalid_request` for a bad id, folder or key; `key_conflict` when `id` holds another key
/// or folder; the store's error.
pub async fn register_key(
    state: &AppState,
    caller: &Caller,
    id: &str,
    stream_path: &str,
    key_hex: &str,
) -> Result<KeyRegistration> {
    caller.require(Permission::Manage)?;
    let id = ContentKeyId::parse(id)
        .map_err(|e| Error::InvalidRequest(format!("content key id: {e}")))?;
    check_stream_path(stream_path).map_err(|e| Error::InvalidRequest(e.to_string()))?;
    let key = ContentKey::from_hex(key_hex)
        .ok_or_else(|| Error::InvalidRequest("key: must be 32 hex digits (16 bytes)".into()))?;
    let record = ContentKeyRecord {
        stream_path: stream_path.to_owned(),
        wrapped: state.content_keys.wrap(&id, stream_path, &key)?,
        created_at: state.store.now(),
    };
    let created = state.store.put_content_key(&id, record.clone()).await?;
    let stored = if created {
        record
    } else {
        let stored = state
            .store
            .content_key(&id)
            .await?
            .ok_or_else(|| Error::Internal("a content key vanished".into()))?;
        let same = stored.stream_path == stream_path
            && state.content_keys.unwrap(&id, &stored)?.ct_eq(&key);
        if !same {
            return Err(Error::KeyConflict);
        }
        stored
    };
    if created {
        tracing::info!(content_key.id = %id, stream.path = stream_path, "content key registered");
        audit::record(
            state,
            caller,
            "content_key.put",
            &format!("content_key:{id}"),
            &format!("stream_path={stream_path}"),
        )
        .await;
    }
    Ok(KeyRegistration {
        id,
        stream_path: stored.stream_path,
        created_at: stored.created_at,
        created,
    })
}

/// Stores `key`, made by Usher itself (a packaging job, a live show's rotation), as content key `id` of
/// the stream folder `stream_path`: wrapped under the key-encryption key, before anything is encrypted
/// with it, so a player asking for it finds it.
///
/// # Errors
/// `internal` when `id` is taken (ids are random: a defect) or the key cannot be wrapped; the store's
/// error.
pub async fn store_generated(
    state: &AppState,
    id: &ContentKeyId,
    stream_path: &str,
    key: &ContentKey,
) -> Result<()> {
    let record = ContentKeyRecord {
        stream_path: stream_path.to_owned(),
        wrapped: state.content_keys.wrap(id, stream_path, key)?,
        created_at: state.store.now(),
    };
    if !state.store.put_content_key(id, record).await? {
        return Err(Error::Internal(format!("content key {id} exists")));
    }
    Ok(())
}

/// What a key request presents.
#[derive(Debug)]
pub enum KeyCredential {
    /// A session's secret (the `usher_seat` cookie, or an app's headers).
    Seat {
        /// The session.
        session: SessionId,
        /// Its secret.
        secret: SessionSecret,
    },
    /// An origin grant from the key URI of a playlist Usher's origin served (native players).
    Grant(String),
    /// A credential that cannot be one (a malformed session id or secret).
    Invalid,
    /// Nothing.
    Missing,
}

/// The content key `id` for a player presenting `credential` from `client`: only while its session holds
/// its seat (checked without renewing), for a show that is `aes-128`, whose stream folder the key
/// encrypts, and whose Geo policy allows `client`.
///
/// # Errors
/// [`Error::KeyRefused`] with the session's reason (`session_secret_required`, `session_secret_invalid`,
/// `session_unknown`, `superseded`, `session_cloned`, `ticket_revoked`, `ended`, `session_ended`,
/// `session_expired`, `geo_blocked`, `grant_refused`); `key_unknown` (no such key for the session's
/// stream, or the show is not encrypted); `rate_limited`, `store_unavailable`, `geo_unavailable`.
pub async fn key_for_player(
    state: &AppState,
    credential: KeyCredential,
    id: &str,
    client: IpAddr,
) -> Result<ContentKey> {
    let show = seat_holder_show(state, credential, client)
        .await
        .map_err(refusal)?;
    let id = ContentKeyId::parse(id).map_err(|_| Error::NotFound(Record::ContentKey))?;
    if show.encryption != Encryption::Aes128 {
        return Err(Error::NotFound(Record::ContentKey));
    }
    let (stream_path, key) = match state.content_keys.cached(&id) {
        Some(hit) => hit,
        None => {
            let record = state
                .store
                .content_key(&id)
                .await?
                .ok_or(Error::NotFound(Record::ContentKey))?;
            let key = state.content_keys.unwrap(&id, &record)?;
            state.content_keys.remember(&id, &record.stream_path, &key);
            (record.stream_path, key)
        }
    };
    // a key opens only its own stream's segments: another show's seat gets nothing
    if stream_path != show.stream_path {
        return Err(Error::NotFound(Record::ContentKey));
    }
    Ok(key)
}

/// The show of the session `credential` proves holds its seat now, after its Geo check for `client`.
async fn seat_holder_show(
    state: &AppState,
    credential: KeyCredential,
    client: IpAddr,
) -> Result<Show> {
    match credential {
        KeyCredential::Missing => Err(Error::SessionSecretRequired),
        KeyCredential::Invalid => Err(Error::SessionSecretInvalid),
        KeyCredential::Seat { session, secret } => {
            let show = viewer::check_session(state, &session, &secret, client).await?;
            viewer::check_geo(state, &show, client)?;
            Ok(show)
        }
        KeyCredential::Grant(text) => {
            // the grant names the session and binds its network; whether the session plays is asked of
            // the store right now, so an expired grant still serves a player that holds its seat
            let grant = state
                .grants
                .verify_issued(&text)
                .map_err(|_| Error::GrantRefused("not a valid grant"))?;
            if !grant.admits_address(client) {
                return Err(Error::GrantRefused("address outside the grant's network"));
            }
            let info = state
                .store
                .live_session(&grant.session)
                .await?
                .ok_or(Error::GrantRefused("the session no longer plays"))?;
            let show = state
                .store
                .show(&info.show_id)
                .await?
                .ok_or(Error::GrantRefused("the session no longer plays"))?;
            if grant.issued_elsewhere(client) {
                viewer::check_geo(state, &show, client)?;
            }
            Ok(show)
        }
    }
}

/// A session's refusal as the key endpoint's; what a retry may cure keeps its own error.
fn refusal(e: Error) -> Error {
    match e {
        Error::RateLimited { .. }
        | Error::StoreUnavailable(_)
        | Error::GeoUnavailable
        | Error::Timeout
        | Error::Internal(_) => e,
        other => Error::KeyRefused(other.code()),
    }
}

/// The refusal codes the key endpoint can answer with (its 403), for the API document and tests.
pub const REFUSAL_CODES: &[Code] = &[
    Code::SessionSecretRequired,
    Code::SessionSecretInvalid,
    Code::SessionUnknown,
    Code::Superseded,
    Code::SessionCloned,
    Code::TicketRevoked,
    Code::Ended,
    Code::SessionEnded,
    Code::SessionExpired,
    Code::GeoBlocked,
    Code::GrantRefused,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_is_a_key_refusal_but_what_a_retry_cures() {
        assert!(matches!(
            refusal(Error::SessionCloned),
            Error::KeyRefused(Code::SessionCloned)
        ));
        assert!(matches!(
            refusal(Error::StoreUnavailable(String::new())),
            Error::StoreUnavailable(_)
        ));
        for code in REFUSAL_CODES {
            assert_eq!(refusal(Error::example(*code)).code(), *code);
            assert!(matches!(
                refusal(Error::example(*code)),
                Error::KeyRefused(_)
            ));
        }
    }
}
