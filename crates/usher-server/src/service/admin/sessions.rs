//! Who is watching: the sessions holding a seat, and ending one.

use usher_core::admin::Permission;
use usher_core::ids::{SessionId, ShowId};
use usher_core::lease::EndReason;
use usher_core::store::SessionInfo;

use crate::service::audit;
use crate::service::{Caller, Error, Result};
use crate::state::AppState;

/// The sessions holding a seat, of one show or of all.
///
/// # Errors
/// `forbidden`; the store's error.
pub async fn list_sessions(
    state: &AppState,
    caller: &Caller,
    show: Option<&ShowId>,
) -> Result<Vec<SessionInfo>> {
    caller.require(Permission::Read)?;
    Ok(state.store.sessions(show).await?)
}

/// Ends a live session: the player stops at its next heartbeat; this node's origin refuses at once,
/// other nodes' within `http.media_lease_check_ms` ([`crate::lease_checks`]).
///
/// # Errors
/// `session_unknown`; `forbidden`.
pub async fn end_session(state: &AppState, caller: &Caller, id: &str) -> Result<()> {
    caller.require(Permission::EndSessions)?;
    let id = SessionId::parse(id).map_err(|_| Error::SessionUnknown)?;
    let now = state.store.now();
    let ended = state
        .store
        .end_session(&id, EndReason::EndedByAdmin { at: now })
        .await?;
    state.lease_checks.changed();
    if ended {
        tracing::info!(session.tag = %state.hasher.session_tag(id.as_str()), "session ended by admin");
        audit::record(state, caller, "session.end", &format!("session:{id}"), "").await;
        Ok(())
    } else {
        Err(Error::SessionUnknown)
    }
}
