//! The audit log as JSON (the CSV form is `service::audit::to_csv`).

use serde::Serialize;
use usher_core::admin::AuditEntry;
use utoipa::ToSchema;

/// One change: who, what, the target, when and from where.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEntryView {
    /// When.
    #[schema(format = DateTime)]
    pub at: String,
    /// Who.
    pub actor: AuditActor,
    /// What (`show.put`, `ticket.revoke`, …).
    pub action: String,
    /// What it was done to (`show:demo`, `ticket:t_…`; empty for some).
    pub target: String,
    /// The client address, when known.
    #[schema(required = true)]
    pub address: Option<String>,
    /// A short note (never a secret).
    pub detail: String,
}

/// Who made a change.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditActor {
    /// `api_key`, `user` or `system`.
    pub kind: &'static str,
    /// The API key's id or the user's name.
    pub id: String,
}

impl From<&AuditEntry> for AuditEntryView {
    fn from(e: &AuditEntry) -> Self {
        Self {
            at: e.at.to_rfc3339(),
            actor: AuditActor {
                kind: e.actor.kind(),
                id: e.actor.id().to_owned(),
            },
            action: e.action.clone(),
            target: e.target.clone(),
            address: e.address.clone(),
            detail: e.detail.clone(),
        }
    }
}

/// Audit entries, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditList {
    /// The entries.
    pub entries: Vec<AuditEntryView>,
}
