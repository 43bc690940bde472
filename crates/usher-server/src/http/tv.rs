//! TV sign-in codes (`service::tv` says what they are): the TV's page and calls, the phone's page and
//! call. The calls answer JSON in RFC 8628's shape — `device_code`, `user_code`, `verification_uri`,
//! `verification_uri_complete`, `expires_in`, `interval`, and errors named `authorization_pending`,
//! `slow_down`, `expired_token` (in `code`, and in `error` for OAuth clients) — with the ticket handed
//! over as the TV's HttpOnly ticket cookie rather than as an access token.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum_extra::extract::CookieJar;
use minijinja::context;
use qrcode::QrCode;
use qrcode::render::svg;
use serde::{Deserialize, Serialize};

use crate::http::extract::{ApiJson, ClientIp, PageLanguage, TICKET_COOKIE};
use crate::http::watch::{self, ticket_cookie};
use crate::service::tv;
use crate::service::{Error, Result};
use crate::state::AppState;

/// The grant type RFC 8628 names; a poll may send it.
const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// A new code for the TV to show.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TvCodeView {
    /// What the TV polls with; keep it secret (it takes the ticket once approved).
    device_code: String,
    /// The code to show, `BCDF-GHJK` (8 letters of `BCDFGHJKLMNPQRSTVWXZ`; typed case-blind, the dash
    /// optional).
    user_code: String,
    /// Where the phone approves: `<public URL>/activate`.
    verification_uri: String,
    /// The same with the code filled in, for the QR code.
    verification_uri_complete: String,
    /// Seconds until the code lapses.
    expires_in: u32,
    /// Seconds between polls.
    interval: u32,
    /// A QR code of `verification_uri_complete`, as an SVG document.
    qr_svg: String,
}

/// `POST /api/v1/tv/codes`: a code for a TV (RFC 8628 device authorization request).
#[utoipa::path(
    post,
    path = "/api/v1/tv/codes",
    tag = "tv",
    responses(
        (status = 200, description = "A code: show `user_code` and `qr_svg`, poll `POST /api/v1/tv/token` every `interval` seconds with `device_code`.", body = TvCodeView),
        (status = 429, description = "`rate_limited`: this address made too many codes (`rate_limits.tv_codes`); retry after `Retry-After` seconds.", headers(
            ("Retry-After" = u64, description = "Seconds until this address may make another code."),
        )),
        (status = 503, description = "`store_unavailable`: retry after `Retry-After` seconds."),
    ),
)]
pub async fn create_tv_code(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
) -> Result<Response> {
    let code = tv::start(&state, client).await?;
    let user_code = code.device_code.user_code.display();
    let verification_uri = format!("{}/activate", state.base_url.trim_end_matches('/'));
    let verification_uri_complete = format!("{verification_uri}?code={user_code}");
    let qr_svg = QrCode::new(verification_uri_complete.as_bytes())
        .map_err(|e| Error::Internal(format!("a QR code of the activation URL: {e}")))?
        .render::<svg::Color<'_>>()
        .min_dimensions(240, 240)
        .quiet_zone(true)
        .build();
    let view = TvCodeView {
        device_code: code.device_code.expose(),
        user_code,
        verification_uri,
        verification_uri_complete,
        expires_in: code.expires_in,
        interval: code.interval,
        qr_svg,
    };
    let mut res = Json(view).into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

/// A TV's poll.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TvPollBody {
    /// The `device_code` of `POST /api/v1/tv/codes`.
    device_code: String,
    /// Optional; when sent, `urn:ietf:params:oauth:grant-type:device_code`.
    grant_type: Option<String>,
    /// Optional and ignored (RFC 8628 clients send one).
    client_id: Option<String>,
}

/// The TV's answer once approved.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TvApproved {
    /// Where the TV goes now: the watch page, with the ticket in its cookie.
    watch_url: String,
}

/// `POST /api/v1/tv/token`: the TV's poll (RFC 8628 device access token request).
#[utoipa::path(
    post,
    path = "/api/v1/tv/token",
    tag = "tv",
    request_body = TvPollBody,
    responses(
        (status = 200, description = "Approved: the ticket is in the HttpOnly `usher_ticket` cookie now; open `watch_url`. The code is gone.", body = TvApproved, headers(
            ("Set-Cookie" = String, description = "The `usher_ticket` cookie."),
        )),
        (status = 400, description = "`authorization_pending`: not approved yet, poll again after `interval` seconds; `slow_down`: polled too early, `interval` grew by 5; `expired_token`: the code lapsed, was taken or never was — make a new one; `invalid_request`: the body is not `{\"device_code\": …}`."),
        (status = 413, description = "`payload_too_large`: the body is larger than `http.max_public_body_bytes`."),
        (status = 415, description = "`unsupported_media_type`: the body is not JSON."),
        (status = 429, description = "`rate_limited`: this address polled with too many unknown codes; retry after `Retry-After` seconds.", headers(
            ("Retry-After" = u64, description = "Seconds until this address may try again."),
        )),
        (status = 503, description = "`store_unavailable`: retry after `Retry-After` seconds."),
    ),
)]
pub async fn poll_tv_code(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    jar: CookieJar,
    ApiJson(body): ApiJson<TvPollBody>,
) -> Result<Response> {
    if body
        .grant_type
        .as_deref()
        .is_some_and(|g| g != DEVICE_GRANT)
    {
        return Err(Error::InvalidRequest(format!(
            "grant_type: only {DEVICE_GRANT}"
        )));
    }
    let _ = body.client_id;
    let token = tv::poll(&state, &body.device_code, client).await?;
    let jar = jar.add(ticket_cookie(&state, token));
    let mut res = (
        jar,
        Json(TvApproved {
            watch_url: "/watch".into(),
        }),
    )
        .into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

/// A phone's approval.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TvApproveBody {
    /// The code the TV shows (`BCDF-GHJK`; case-blind, dash optional).
    user_code: String,
}

/// What the phone approved.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TvApprovedView {
    /// The show the TV will play.
    show_id: String,
    /// Its title.
    show_title: String,
}

/// `POST /api/v1/tv/activate`: the phone holding the ticket (its `usher_ticket` cookie) approves a TV's
/// code; the TV's next poll takes the ticket.
#[utoipa::path(
    post,
    path = "/api/v1/tv/activate",
    tag = "tv",
    request_body = TvApproveBody,
    responses(
        (status = 200, description = "Approved: the TV starts on its next poll.", body = TvApprovedView),
        (status = 400, description = "`invalid_request`: the body is not `{\"user_code\": …}`."),
        (status = 401, description = "`no_ticket`: this browser holds no ticket; open the watch link on it first."),
        (status = 403, description = "`ticket_revoked`: refunded or voided; `show_unpublished`: the show is taken off."),
        (status = 404, description = "`tv_code_unknown`: no TV waits with this code (mistyped, lapsed, or approved already); `ticket_unknown`: the cookie's ticket is not known."),
        (status = 410, description = "`ended`: the ticket's window closed."),
        (status = 413, description = "`payload_too_large`: the body is larger than `http.max_public_body_bytes`."),
        (status = 415, description = "`unsupported_media_type`: the body is not JSON."),
        (status = 429, description = "`rate_limited`: this address tried too many unknown codes or tickets; retry after `Retry-After` seconds.", headers(
            ("Retry-After" = u64, description = "Seconds until this address may try again."),
        )),
        (status = 503, description = "`store_unavailable`: retry after `Retry-After` seconds."),
    ),
)]
pub async fn approve_tv_code(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    jar: CookieJar,
    ApiJson(body): ApiJson<TvApproveBody>,
) -> Result<Json<TvApprovedView>> {
    let token = jar
        .get(TICKET_COOKIE)
        .map(|c| c.value().to_owned())
        .ok_or(Error::NoTicket)?;
    let ts = tv::approve(&state, &token, &body.user_code, client).await?;
    Ok(Json(TvApprovedView {
        show_id: ts.show.id.to_string(),
        show_title: ts.show.title,
    }))
}

/// The CSP of the TV and activation pages: their script and styles, the QR code as a data URL, calls to
/// this origin only.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

fn html_page(
    state: &AppState,
    status: StatusCode,
    name: &str,
    ctx: minijinja::Value,
) -> Result<Response> {
    let html = state.pages.render(name, ctx)?;
    let mut res = (status, Html(html)).into_response();
    let h = res.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::VARY,
        HeaderValue::from_static("Accept-Language, Cookie"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    Ok(res)
}

/// `GET /tv`: the TV's sign-in page: a code and a QR code to approve from a phone; it polls and opens
/// the watch page once approved.
#[utoipa::path(
    get,
    path = "/tv",
    tag = "tv",
    responses(
        (status = 200, description = "The TV sign-in page (its script asks for a code).", body = String, content_type = "text/html"),
    ),
)]
pub async fn tv_page(State(state): State<AppState>, lang: PageLanguage) -> Result<Response> {
    let activate = format!("{}/activate", state.base_url.trim_end_matches('/'));
    html_page(
        &state,
        StatusCode::OK,
        "tv.html",
        context! { activate_url => activate, assets => assets(), ..lang.context() },
    )
}

fn assets() -> minijinja::Value {
    context! { js => "/assets/tv.js", css => "/assets/watch.css" }
}

/// The activation page's query.
#[derive(Deserialize)]
pub struct ActivateQuery {
    /// The TV's code, from its QR code.
    code: Option<String>,
}

/// `GET /activate`: the phone's page: type (or scan) the TV's code and approve it for the ticket this
/// browser holds.
#[utoipa::path(
    get,
    path = "/activate",
    tag = "tv",
    params(("code" = Option<String>, Query, description = "The TV's code, filled in (from its QR code).")),
    responses(
        (status = 200, description = "The approval form, naming the show of the ticket this browser holds.", body = String, content_type = "text/html"),
        (status = 401, description = "`no_ticket`: the page says to open the watch link on this phone first.", body = String, content_type = "text/html"),
        (status = 403, description = "`ticket_revoked`, `show_unpublished`: the page says why.", body = String, content_type = "text/html"),
        (status = 404, description = "`ticket_unknown`: the page says the ticket is not known.", body = String, content_type = "text/html"),
        (status = 410, description = "`ended`: the page says the show has ended.", body = String, content_type = "text/html"),
        (status = 429, description = "`rate_limited`: the page says to wait.", body = String, content_type = "text/html", headers(
            ("Retry-After" = u64, description = "Seconds until this address may try again."),
        )),
        (status = 503, description = "`store_unavailable`: retry after `Retry-After` seconds."),
    ),
)]
pub async fn activate_page(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    lang: PageLanguage,
    jar: CookieJar,
    query: Result<Query<ActivateQuery>, QueryRejection>,
) -> Result<Response> {
    // only a code's letters go back into the page (the template escapes them anyway); a query that does
    // not parse just fills in nothing
    let code = query
        .ok()
        .and_then(|Query(q)| q.code)
        .map(|c| {
            c.chars()
                .filter(|c| c.is_ascii_alphabetic() || *c == '-')
                .take(16)
                .collect::<String>()
        })
        .unwrap_or_default();
    let refused = |e: Error| {
        let status = e.status();
        let problem = e.problem();
        let mut res = html_page(
            &state,
            status,
            "activate.html",
            context! {
                code => code,
                refusal => context! { code => e.code().as_str(), message => match e {
                    Error::NoTicket => "activate-no-ticket",
                    ref e => watch::refusal_message(e),
                } },
                assets => assets(),
                ..lang.context()
            },
        )?;
        if let Some(s) = problem.retry_after {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        Ok(res)
    };
    let Some(token) = jar.get(TICKET_COOKIE).map(|c| c.value().to_owned()) else {
        return refused(Error::NoTicket);
    };
    let ts = match tv::lending_ticket(&state, &token, client).await {
        Ok(ts) => ts,
        Err(
            e @ (Error::TicketUnknown
            | Error::RateLimited { .. }
            | Error::TicketRevoked
            | Error::ShowUnpublished
            | Error::Ended { .. }),
        ) => return refused(e),
        Err(e) => return Err(e),
    };
    html_page(
        &state,
        StatusCode::OK,
        "activate.html",
        context! {
            code => code,
            show => context! { title => ts.show.text_in(lang.0).0 },
            assets => assets(),
            ..lang.context()
        },
    )
}
