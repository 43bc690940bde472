//! The audit log API (`GET /api/v1/audit`): filtered entries, newest first, as JSON, or as CSV with
//! `?format=csv` or `Accept: text/csv`.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use usher_core::admin::{AuditEntry, AuditFilter, Permission};
use usher_core::clock::UnixMs;

use crate::audit::{entry_view, to_csv};
use crate::auth::{Authorized, Caller, Read};
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiQuery;
use crate::state::AppState;

/// Most entries one call answers.
pub const MAX_LIMIT: usize = 10_000;

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

fn time_param(name: &str, v: Option<&str>) -> ApiResult<Option<UnixMs>> {
    v.filter(|s| !s.is_empty())
        .map(|s| {
            time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                .map(UnixMs::from_datetime)
                .map_err(|_| ApiError::InvalidRequest(format!("{name}: must be an RFC 3339 time")))
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
    pub fn filter(&self) -> ApiResult<AuditFilter> {
        let limit = self.limit.unwrap_or(200);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(ApiError::InvalidRequest(format!(
                "limit: must be 1 to {MAX_LIMIT}"
            )));
        }
        for (name, v) in [
            ("actor", &self.actor),
            ("action", &self.action),
            ("target", &self.target),
        ] {
            if v.as_ref().is_some_and(|s| s.chars().count() > 200) {
                return Err(ApiError::InvalidRequest(format!(
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
) -> ApiResult<Vec<AuditEntry>> {
    caller.require(Permission::Read)?;
    Ok(state.store.audit(&q.filter()?).await?)
}

/// The CSV download answer.
pub fn csv_response(entries: &[AuditEntry]) -> Response {
    let mut res = to_csv(entries).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"usher-audit.csv\""),
    );
    res
}

/// `GET /api/v1/audit`.
#[utoipa::path(
    get,
    path = "/api/v1/audit",
    tag = "audit",
    params(AuditQuery),
    responses(
        (status = 200, description = "`{entries: [{at, actor: {kind, id}, action, target, address, detail}]}`, newest first; CSV with `format=csv` or `Accept: text/csv`.", content(
            (crate::openapi::schemas::AuditPage = "application/json"), (String = "text/csv"),
        )),
    ),
    security(("bearer" = ["admin"])),
)]
pub async fn list_audit(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<Read>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> ApiResult<Response> {
    let csv = match q.format.as_deref() {
        Some("csv") => true,
        Some("json") => false,
        Some(other) => {
            return Err(ApiError::InvalidRequest(format!(
                "format: `{other}` is neither `json` nor `csv`"
            )));
        }
        None => headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("text/csv")),
    };
    let entries = read_audit(&state, &caller, &q).await?;
    if csv {
        Ok(csv_response(&entries))
    } else {
        Ok(
            Json(json!({"entries": entries.iter().map(entry_view).collect::<Vec<_>>()}))
                .into_response(),
        )
    }
}
