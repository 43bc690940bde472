//! Sessions holding a seat.

use serde::Serialize;
use usher_core::ids::{SessionId, ShowId, TicketId};
use usher_core::store::SessionInfo;
use utoipa::ToSchema;

/// A session holding a seat.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    /// The session.
    pub session_id: SessionId,
    /// Its ticket.
    pub ticket_id: TicketId,
    /// Its show.
    pub show_id: ShowId,
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

impl From<&SessionInfo> for SessionView {
    fn from(s: &SessionInfo) -> Self {
        Self {
            session_id: s.session_id.clone(),
            ticket_id: s.ticket_id.clone(),
            show_id: s.show_id.clone(),
            device_label: s.device_label.clone(),
            started_at: s.created_at.to_rfc3339(),
            last_heartbeat_at: s.renewed_at.to_rfc3339(),
            expires_at: s.expires_at.to_rfc3339(),
        }
    }
}

/// The live sessions.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionList {
    /// The sessions.
    pub sessions: Vec<SessionView>,
}
