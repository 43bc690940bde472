//! Reading the audit log: entries filtered by actor, action, target and time, newest first. A read scans
//! (at most `AUDIT_SCAN_LIMIT` entries, off the async runtime), so at most two run at once on a node; a
//! third waits [`READ_WAIT`] at most, then is refused 429 `rate_limited`.

use serde::Deserialize;
use usher_core::admin::{AuditEntry, AuditFilter, Permission};
use usher_core::clock::UnixMs;

use crate::service::{Caller, Error, Result};
use crate::state::AppState;

/// Most entries one call answers.
pub const MAX_LIMIT: usize = 10_000;
/// How long a read waits for one of the node's audit-read slots.
pub const READ_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Query of the audit log.
#[derive(Debug, Deserialize, Default, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// An API key id or a user name.
    #[serde(default)]
    pub actor: Option<String>,
    /// An action or its prefix (`show.`, `ticket.revoke`).
    #[serde(default)]
    pub action: Option<String>,
    /// Text the target contains (`show:demo`, a ticket id).
    #[serde(default)]
    pub target: Option<String>,
    /// RFC 3339: entries at or after.
    #[serde(default)]
    pub since: Option<String>,
    /// RFC 3339: entries before.
    #[serde(default)]
    pub until: Option<String>,
    /// At most this many (default 200, at most 10,000).
    #[serde(default)]
    #[param(minimum = 1, maximum = 10000)]
    pub limit: Option<usize>,
    /// `json` (default) or `csv`.
    #[serde(default)]
    #[param(pattern = "^(json|csv)$")]
    pub format: Option<String>,
}

fn time_param(name: &str, v: Option<&str>) -> Result<Option<UnixMs>> {
    v.filter(|s| !s.is_empty())
        .map(|s| {
            time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                .map(UnixMs::from_datetime)
                .map_err(|_| Error::InvalidRequest(format!("{name}: must be an RFC 3339 time")))
        })
        .transpose()
}

fn text_param(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

impl AuditQuery {
    /// The store filter.
    ///
    /// # Errors
    /// `invalid_request` for bad times or limits.
    pub fn filter(&self) -> Result<AuditFilter> {
        let limit = self.limit.unwrap_or(200);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(Error::InvalidRequest(format!(
                "limit: must be 1 to {MAX_LIMIT}"
            )));
        }
        for (name, v) in [
            ("actor", &self.actor),
            ("action", &self.action),
            ("target", &self.target),
        ] {
            if v.as_ref().is_some_and(|s| s.chars().count() > 200) {
                return Err(Error::InvalidRequest(format!(
                    "{name}: at most 200 characters"
                )));
            }
        }
        Ok(AuditFilter {
            actor: text_param(self.actor.clone()),
            action: text_param(self.action.clone()),
            target: text_param(self.target.clone()),
            since: time_param("since", self.since.as_deref())?,
            until: time_param("until", self.until.as_deref())?,
            limit,
        })
    }
}

/// Reads the audit log.
///
/// # Errors
/// `invalid_request`; `forbidden`.
pub async fn read_audit(
    state: &AppState,
    caller: &Caller,
    q: &AuditQuery,
) -> Result<Vec<AuditEntry>> {
    caller.require(Permission::Read)?;
    let filter = q.filter()?;
    let _slot = tokio::time::timeout(READ_WAIT, state.audit_reads.acquire())
        .await
        .map_err(|_| Error::Busy { retry_after_s: 2 })?
        .map_err(|_| Error::Internal("audit read slots closed".into()))?;
    Ok(state.store.audit(&filter).await?)
}
