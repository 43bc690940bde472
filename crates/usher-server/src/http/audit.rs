//! The audit log API (`GET /api/v1/audit`): filtered entries, newest first, as JSON, or as CSV with
//! `?format=csv` or `Accept: text/csv`; read through [`crate::service::admin::audit`].

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use usher_core::admin::AuditEntry;

use crate::http::auth::{Authorized, Read};
use crate::http::extract::ApiQuery;
use crate::http::views::audit::{AuditEntryView, AuditList};
use crate::service::admin::audit::{AuditQuery, read_audit};
use crate::service::audit::to_csv;
use crate::service::{Error, Result};
use crate::state::AppState;

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
        (status = 200, description = "The entries, newest first; CSV with `format=csv` or `Accept: text/csv`.", content(
            (AuditList = "application/json"),
            (String = "text/csv"),
        )),
        (status = 429, description = "`rate_limited`: two audit reads are under way on this node; retry after `Retry-After`."),
    ),
    security(("bearer" = ["admin"])),
)]
pub async fn list_audit(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<Read>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Response> {
    let csv = match q.format.as_deref() {
        Some("csv") => true,
        Some("json") => false,
        Some(other) => {
            return Err(Error::InvalidRequest(format!(
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
        Ok(Json(AuditList {
            entries: entries.iter().map(AuditEntryView::from).collect(),
        })
        .into_response())
    }
}
