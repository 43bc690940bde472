//! The viewer's answers: an admit's session and grants, a heartbeat's renewal.

use serde::Serialize;
use usher_core::ids::{CdnId, SessionId, ShowId, TicketId};
use utoipa::ToSchema;

use crate::service::delivery::PathwayGrant;
use crate::service::viewer;

/// A permission to fetch one show's media from one CDN: the origin's carries a `token` for `/o/{token}/…`,
/// a CDN's a signed `url` with the `cookies` and `headers` its scheme needs.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum Grant {
    /// Usher's origin.
    Origin(OriginGrant),
    /// A CDN of the pool.
    Cdn(CdnGrant),
}

/// A grant of Usher's origin: the token goes in the path after `base_url`.
#[derive(Debug, Serialize, ToSchema)]
pub struct OriginGrant {
    /// `origin`.
    pub cdn: CdnId,
    /// `/o/`.
    pub base_url: &'static str,
    /// The origin grant.
    pub token: String,
    /// When the grant lapses.
    #[schema(format = DateTime)]
    pub expires_at: String,
}

/// A grant of a CDN, signed with its own scheme.
#[derive(Debug, Serialize, ToSchema)]
pub struct CdnGrant {
    /// The CDN.
    pub cdn: CdnId,
    /// Its base URL, with a trailing `/`.
    pub base_url: String,
    /// Its signing scheme.
    #[schema(required = true)]
    pub scheme: Option<String>,
    /// The signed master playlist URL.
    pub url: String,
    /// Cookies to hold.
    pub cookies: Vec<GrantCookie>,
    /// Headers to send.
    pub headers: Vec<GrantHeader>,
    /// A folder-wide signature that rides in the path right after `base_url`, when the scheme signs so
    /// (players put it into every URI under `base_url`).
    #[schema(required = true)]
    pub token: Option<String>,
    /// A folder-wide signature that rides in the query string, when the scheme signs so (players add it
    /// to every URI under `base_url`).
    #[schema(required = true)]
    pub query: Option<String>,
    /// When the grant lapses.
    #[schema(format = DateTime)]
    pub expires_at: String,
}

/// A cookie a CDN needs.
#[derive(Debug, Serialize, ToSchema)]
pub struct GrantCookie {
    /// Its name.
    pub name: String,
    /// Its value.
    pub value: String,
    /// The `Set-Cookie` header value that sets it.
    pub set_cookie: String,
}

/// A request header a CDN needs.
#[derive(Debug, Serialize, ToSchema)]
pub struct GrantHeader {
    /// Its name.
    pub name: String,
    /// Its value.
    pub value: String,
}

impl From<PathwayGrant> for Grant {
    fn from(g: PathwayGrant) -> Self {
        match g {
            PathwayGrant::Origin {
                cdn,
                token,
                expires_at,
            } => Self::Origin(OriginGrant {
                cdn,
                base_url: "/o/",
                token,
                expires_at: expires_at.to_rfc3339(),
            }),
            PathwayGrant::Cdn {
                cdn,
                base_url,
                scheme,
                signed,
                token,
                query,
                expires_at,
            } => Self::Cdn(CdnGrant {
                cdn,
                base_url: format!("{base_url}/"),
                scheme,
                cookies: signed
                    .cookies
                    .into_iter()
                    .map(|c| GrantCookie {
                        set_cookie: c.set_cookie(),
                        name: c.name,
                        value: c.value,
                    })
                    .collect(),
                headers: signed
                    .headers
                    .into_iter()
                    .map(|h| GrantHeader {
                        name: h.name,
                        value: h.value,
                    })
                    .collect(),
                url: signed.url,
                token,
                query,
                expires_at: expires_at.to_rfc3339(),
            }),
        }
    }
}

fn grants(g: Vec<PathwayGrant>) -> Vec<Grant> {
    g.into_iter().map(Grant::from).collect()
}

/// A place in a show's waiting room (doors-open capacity).
#[derive(Debug, Serialize, ToSchema)]
pub struct WaitingView {
    /// Always `true`: no session yet.
    pub waiting: bool,
    /// Place in line (1: next).
    pub position: u64,
    /// Seconds until this place is likely let in, from the recent pace (`null`: unknown yet).
    #[schema(required = true)]
    pub estimated_wait_s: Option<u64>,
    /// Seconds until the player asks again (the same `POST /api/v1/playback`).
    pub retry_after_s: u32,
}

impl From<crate::service::viewer::Waiting> for WaitingView {
    fn from(w: crate::service::viewer::Waiting) -> Self {
        Self {
            waiting: true,
            position: w.position,
            estimated_wait_s: w.estimated_wait_s,
            retry_after_s: w.retry_after_s,
        }
    }
}

/// An admitted viewer's session.
#[derive(Debug, Serialize, ToSchema)]
pub struct Admission {
    /// The session, for heartbeats and leaving.
    pub session_id: SessionId,
    /// The ticket.
    pub ticket_id: TicketId,
    /// The show.
    pub show_id: ShowId,
    /// The device already held this seat (a reload).
    pub reattached: bool,
    /// Seconds between heartbeats.
    pub heartbeat_interval_s: u32,
    /// Seconds the seat is kept without a heartbeat.
    pub lease_ttl_s: u32,
    /// When the seat lapses without a heartbeat.
    #[schema(format = DateTime)]
    pub lease_expires_at: String,
    /// The session's master playlist: `/hls/{session_id}/master.m3u8`, with `?secret=…` for apps (a native
    /// player given this URL renews the seat by its steering reloads, so an app that does so does not
    /// heartbeat as well).
    pub playlist_url: String,
    /// The session's secret, for apps (admitted with `{"token": …}`): send it in
    /// `X-Usher-Session-Secret` with the next heartbeat or leave; each heartbeat answers the next one.
    /// The watch page gets it in the HttpOnly `usher_seat` cookie instead, and `playlist_url` then
    /// carries none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_secret: Option<String>,
    /// One grant per CDN that delivers the show, best first (the order of `cdn_order`, then unhealthy ones).
    pub grants: Vec<Grant>,
    /// The enabled, healthy CDN ids, best first.
    #[schema(value_type = Vec<CdnId>)]
    pub cdn_order: Vec<String>,
}

impl From<viewer::Admission> for Admission {
    fn from(a: viewer::Admission) -> Self {
        Self {
            playlist_url: format!(
                "/hls/{}/master.m3u8?{}={}",
                a.session_id,
                crate::http::extract::SESSION_SECRET_PARAM,
                a.secret.expose()
            ),
            session_secret: Some(a.secret.expose().to_owned()),
            session_id: a.session_id,
            ticket_id: a.ticket_id,
            show_id: a.show_id,
            reattached: a.reattached,
            heartbeat_interval_s: a.heartbeat_interval_s,
            lease_ttl_s: a.lease_ttl_s,
            lease_expires_at: a.lease_expires_at.to_rfc3339(),
            grants: grants(a.grants),
            cdn_order: a.cdn_order,
        }
    }
}

/// A renewed seat (`status` `ok`), or `degraded` while the store is unreachable (keep playing with the
/// grants held, heartbeat again after `heartbeat_interval_s`).
#[derive(Debug, Serialize, ToSchema)]
pub struct HeartbeatAnswer {
    /// `ok` or `degraded`.
    #[schema(pattern = "^(ok|degraded)$")]
    pub status: &'static str,
    /// When the seat lapses without a heartbeat (`ok`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub lease_expires_at: Option<String>,
    /// Seconds until the next heartbeat.
    pub heartbeat_interval_s: u32,
    /// The session's next secret (`ok`, for a heartbeat that sent `X-Usher-Session-Secret`; the watch
    /// page's comes in its `usher_seat` cookie): the one sent is now the previous one, taken once more
    /// only if this answer was lost.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_secret: Option<String>,
    /// Fresh grants (`ok`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grants: Option<Vec<Grant>>,
    /// The enabled, healthy CDN ids, best first (`ok`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<CdnId>>)]
    pub cdn_order: Option<Vec<String>>,
}

impl From<viewer::Heartbeat> for HeartbeatAnswer {
    fn from(h: viewer::Heartbeat) -> Self {
        match h {
            viewer::Heartbeat::Renewed {
                secret,
                lease_expires_at,
                heartbeat_interval_s,
                grants: g,
                cdn_order,
            } => Self {
                status: "ok",
                lease_expires_at: Some(lease_expires_at.to_rfc3339()),
                heartbeat_interval_s,
                session_secret: Some(secret.expose().to_owned()),
                grants: Some(grants(g)),
                cdn_order: Some(cdn_order),
            },
            viewer::Heartbeat::Degraded {
                heartbeat_interval_s,
            } => Self {
                status: "degraded",
                lease_expires_at: None,
                heartbeat_interval_s,
                session_secret: None,
                grants: None,
                cdn_order: None,
            },
        }
    }
}
