//! The watch link and the watch page.
//!
//! `GET /watch/{token}` checks the ticket, keeps the token in an HttpOnly cookie and redirects (303) to
//! `/watch`, so the token never stays in history, logs or `Referer`. `GET /watch` renders the page for the
//! ticket in the cookie: ready to play, a countdown, "ended", or a refusal in plain words.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::CookieJar;
use axum_extra::extract::cookie::{Cookie, SameSite};
use minijinja::context;
use serde_json::{Value, json};

use crate::http::extract::{ApiPath, ClientIp, PageLanguage, TICKET_COOKIE};
use crate::service::viewer::{self, TicketAndShow};
use crate::service::{Error, Result};
use crate::state::AppState;

/// The watch page's Content Security Policy; the player may fetch media from Usher and from the origins
/// (`scheme://host[:port]`) of the CDNs in the pool (a CDN added later needs a page reload).
fn csp(cdn_origins: &[String]) -> String {
    let mut media = String::from("'self'");
    for o in cdn_origins {
        media.push(' ');
        media.push_str(o);
    }
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; \
         media-src {media} blob:; connect-src {media}; worker-src 'self' blob:; frame-ancestors 'none'; \
         base-uri 'none'; form-action 'none'"
    )
}

/// The origins of the pool's CDNs, as `scheme://host[:port]` (checked URLs, so no CSP syntax inside).
async fn cdn_origins(state: &AppState) -> Vec<String> {
    let pool = state.store.cdns().await.unwrap_or_default();
    let mut origins: Vec<String> = pool
        .iter()
        .filter(|c| c.enabled)
        .filter_map(|c| {
            let (scheme, rest) = c.base_url.split_once("://")?;
            let host = rest.split('/').next()?;
            let ok = !host.is_empty()
                && host.bytes().all(|b| {
                    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']')
                });
            ok.then(|| format!("{scheme}://{host}"))
        })
        .collect();
    origins.sort();
    origins.dedup();
    origins
}

/// A time as the page shows it before its script formats it in the viewer's language and zone.
fn utc_text(t: time::OffsetDateTime) -> String {
    let f = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    t.to_offset(time::UtcOffset::UTC)
        .format(&f)
        .unwrap_or_default()
}

fn show_view(ts: &TicketAndShow, lang: &str) -> Value {
    let (from, until) = ts.ticket.window(&ts.show);
    let (title, description) = ts.show.text_in(lang);
    // every language's, for the page's language picker
    let texts: serde_json::Map<String, Value> = crate::i18n::LANGUAGES
        .iter()
        .map(|l| {
            let (title, description) = ts.show.text_in(l.code);
            (
                l.code.to_owned(),
                json!({"title": title, "description": description}),
            )
        })
        .collect();
    json!({
        "texts": texts,
        "id": ts.show.id,
        "title": title,
        "description": description,
        "kind": ts.show.kind,
        "starts_at": from.to_rfc3339(),
        "ends_at": until.to_rfc3339(),
        "starts_at_text": utc_text(from.to_datetime()),
        "ends_at_text": utc_text(until.to_datetime()),
    })
}

/// The message of a refusal a viewer page shows (`web/locales`): one per problem code.
pub(crate) fn refusal_message(e: &Error) -> &'static str {
    match e {
        Error::NoTicket => "no-ticket",
        Error::Ended { .. } => "ended",
        Error::TicketUnknown => "ticket-unknown",
        Error::TicketRevoked => "ticket-revoked",
        Error::ShowUnpublished => "show-unpublished",
        Error::RateLimited { .. } => "rate-limited",
        _ => "refused",
    }
}

fn refusal(state: &AppState, lang: &str, e: &Error) -> Value {
    let id = refusal_message(e);
    let catalog = state.pages.catalog();
    json!({
        "code": e.code(),
        "message": id,
        "title": catalog.text(lang, id, None),
        "detail": catalog.text(lang, &format!("{id}.hint"), None),
    })
}

async fn page(
    state: &AppState,
    lang: PageLanguage,
    status: StatusCode,
    ts: Option<&TicketAndShow>,
    page_state: &str,
    refused: Option<&Error>,
) -> Result<Response> {
    let now = state.store.now();
    let show = ts.map(|ts| show_view(ts, lang.0));
    let refusal = refused.map(|e| refusal(state, lang.0, e));
    let window = ts.map(|ts| ts.ticket.window(&ts.show));
    let config = json!({
        "state": page_state,
        "show": show,
        "starts_at_ms": window.map(|w| w.0.0),
        "ends_at_ms": window.map(|w| w.1.0),
        "server_now_ms": now.0,
        "refusal": refusal,
        "admit_url": "/api/v1/playback",
    });
    // safe inside <script type="application/json">: no "<" can close the element
    let config_json = serde_json::to_string(&config)
        .unwrap_or_default()
        .replace('<', "\\u003c");
    let html = state.pages.render(
        "watch.html",
        context! {
            show => show,
            state => page_state,
            refusal => refusal,
            config_json => config_json,
            assets => context! { js => "/assets/watch.js", css => "/assets/watch.css" },
            ..lang.context()
        },
    )?;
    let mut res = (status, axum::response::Html(html)).into_response();
    let h = res.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_str(&csp(&cdn_origins(state).await))
            .unwrap_or_else(|_| HeaderValue::from_static("default-src 'self'")),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::VARY,
        HeaderValue::from_static("Accept-Language, Cookie"),
    );
    Ok(res)
}

async fn refused_page(
    state: &AppState,
    lang: PageLanguage,
    ts: Option<&TicketAndShow>,
    e: &Error,
) -> Result<Response> {
    let mut res = page(state, lang, e.status(), ts, "refused", Some(e)).await?;
    if let Some(s) = e.problem().retry_after {
        res.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(s));
    }
    Ok(res)
}

/// The HttpOnly cookie that holds a ticket's token for the watch page (set by the watch link, and on a
/// TV by its approved sign-in code).
pub fn ticket_cookie(state: &AppState, token: String) -> Cookie<'static> {
    Cookie::build((TICKET_COOKIE, token))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(state.config.secure_cookies())
        .max_age(time::Duration::days(30))
        .build()
}

/// `GET /watch/{token}`: 303 to `/watch` with the token in an HttpOnly cookie; an unknown ticket gets the
/// refusal page at once (and no cookie).
#[utoipa::path(
    get,
    path = "/watch/{token}",
    tag = "watch",
    params(("token" = String, Path, description = "The ticket's secret token, from its watch link.")),
    responses(
        (status = 303, description = "To `/watch`, with the token in the HttpOnly `usher_ticket` cookie.", headers(
            ("Location" = String, description = "`/watch`."),
            ("Set-Cookie" = String, description = "The `usher_ticket` cookie."),
        )),
        (status = 404, description = "`ticket_unknown`: the refusal page.", body = String, content_type = "text/html"),
        (status = 429, description = "`rate_limited`: this address looked up too many unknown tickets; the refusal page, with `Retry-After`.", body = String, content_type = "text/html", headers(
            ("Retry-After" = u64, description = "Seconds until this address may try again."),
        )),
        (status = 503, description = "`store_unavailable`: retry after `Retry-After` seconds."),
    ),
)]
pub async fn open_watch_link(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    lang: PageLanguage,
    jar: CookieJar,
    token: Result<ApiPath<String>, Error>,
) -> Result<Response> {
    // a token that is not even UTF-8 is just an unknown ticket to the viewer
    let Ok(ApiPath(token)) = token else {
        return refused_page(&state, lang, None, &Error::TicketUnknown).await;
    };
    match viewer::find_ticket(&state, &token, client).await {
        Ok(_) => {
            let cookie = ticket_cookie(&state, token);
            let mut res = (jar.add(cookie), Redirect::to("/watch")).into_response();
            res.headers_mut().insert(
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            );
            res.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            Ok(res)
        }
        Err(e @ (Error::TicketUnknown | Error::RateLimited { .. })) => {
            refused_page(&state, lang, None, &e).await
        }
        Err(e) => Err(e),
    }
}

/// `GET /watch`: the player page for the ticket in the cookie.
#[utoipa::path(
    get,
    path = "/watch",
    tag = "watch",
    responses(
        (status = 200, description = "The player page: ready to play, a countdown, or \"ended\".", body = String, content_type = "text/html"),
        (status = 401, description = "`no_ticket`: the page says to open the watch link.", body = String, content_type = "text/html"),
        (status = 403, description = "`ticket_revoked`: the page says the ticket was revoked.", body = String, content_type = "text/html"),
        (status = 404, description = "`ticket_unknown`: the page says the ticket is not known.", body = String, content_type = "text/html"),
        (status = 429, description = "`rate_limited`: this address looked up too many unknown tickets; the page says to wait, with `Retry-After`.", body = String, content_type = "text/html", headers(
            ("Retry-After" = u64, description = "Seconds until this address may try again."),
        )),
        (status = 503, description = "`store_unavailable`: retry after `Retry-After` seconds."),
    ),
)]
pub async fn watch_page(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    lang: PageLanguage,
    jar: CookieJar,
) -> Result<Response> {
    let Some(token) = jar.get(TICKET_COOKIE).map(|c| c.value().to_owned()) else {
        return refused_page(&state, lang, None, &Error::NoTicket).await;
    };
    let ts = match viewer::find_ticket(&state, &token, client).await {
        Ok(ts) => ts,
        Err(e @ (Error::TicketUnknown | Error::RateLimited { .. })) => {
            return refused_page(&state, lang, None, &e).await;
        }
        Err(e) => return Err(e),
    };
    match viewer::check_admits(&ts, state.store.now()) {
        Ok(_) => page(&state, lang, StatusCode::OK, Some(&ts), "ready", None).await,
        Err(Error::NotStarted { .. }) => {
            page(&state, lang, StatusCode::OK, Some(&ts), "not_started", None).await
        }
        Err(Error::Ended { .. }) => {
            page(&state, lang, StatusCode::OK, Some(&ts), "ended", None).await
        }
        Err(e @ (Error::TicketRevoked | Error::ShowUnpublished)) => {
            refused_page(&state, lang, Some(&ts), &e).await
        }
        Err(e) => Err(e),
    }
}
