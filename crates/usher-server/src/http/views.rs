//! The answers of the API, one `Serialize + ToSchema` type per JSON answer, built from the services'
//! domain values. The handlers answer with these types and name them in their `#[utoipa::path]`, so the
//! API document describes exactly what is sent (crates.io's `crates_io_api_types` does the same); the
//! console renders several of them too. One file per resource.
//!
//! Times are RFC 3339 text. A member that may be unknown is sent as `null` (and is `required` in the
//! schema); a member that only some answers carry is left out of the others.

pub mod api_keys;
pub mod audit;
pub mod cdns;
pub mod content_keys;
pub mod dashboard;
pub mod geoip;
pub mod ingest;
pub mod ops;
pub mod playback;
pub mod sessions;
pub mod shows;
pub mod steering;
pub mod tickets;
pub mod uploads;
pub mod users;
pub mod webhooks;

/// A time of the `time` crate as RFC 3339 (`None` when it cannot be written).
fn rfc3339(t: time::OffsetDateTime) -> Option<String> {
    t.format(&time::format_description::well_known::Rfc3339)
        .ok()
}
