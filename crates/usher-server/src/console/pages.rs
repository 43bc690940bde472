//! The console's pages: each reads through the same functions as the JSON API and renders a template
//! under `templates/admin/`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum_extra::extract::CookieJar;
use minijinja::{Value as Tpl, context};
use serde::Deserialize;
use serde_json::{Value, json};
use usher_core::admin::{AdminUser, Permission};
use usher_core::ids::{ShowId, random_b64};

use super::frame::{ConsoleError, ConsolePage, error_page, login_csrf_cookie, secure};
use crate::http::audit::csv_response;
use crate::http::extract::{ApiPath, ApiQuery};
use crate::http::views;
use crate::service::admin::audit::{AuditQuery, MAX_LIMIT, read_audit};
use crate::service::admin::{
    api_keys, cdns, dashboard as dash, geoip, sessions, shows, tickets, users,
};
use crate::service::auth::{self, Caller};
use crate::service::webhooks;
use crate::service::{Error, Result};
use crate::state::AppState;

type PageResult = Result<Response, ConsoleError>;

/// ISO 3166-1 alpha-2 codes offered by the country picker (the page's script names them).
const COUNTRIES: &str = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS XK YE YT ZA ZM ZW";

/// Renders a console template with the caller's frame (user, role, CSRF token, what they may do).
pub fn render(
    state: &AppState,
    caller: &Caller,
    name: &str,
    nav: &str,
    page: Tpl,
) -> Result<Response> {
    let user = caller
        .user()
        .map(|u| json!({"name": u.name, "role": u.role}));
    let frame = context! {
        user => user,
        csrf => caller.csrf.clone().unwrap_or_default(),
        nav => nav,
        can => context! {
            manage => caller.allows(Permission::Manage),
            revoke => caller.allows(Permission::RevokeTickets),
            erase => caller.allows(Permission::ErasePersonalData),
            end_sessions => caller.allows(Permission::EndSessions),
        },
    };
    let html = state
        .pages
        .render(&format!("admin/{name}"), context! { ..page, ..frame })?;
    Ok(secure(Html(html).into_response()))
}

fn page(state: &AppState, r: Result<Response>) -> PageResult {
    r.map_err(|error| error_page(state, error))
}

/// The login form, with a fresh double-submit CSRF cookie.
pub fn login_form(
    state: &AppState,
    jar: CookieJar,
    status: StatusCode,
    message: Option<&str>,
    name: &str,
) -> Result<Response, Error> {
    let token = random_b64(32);
    let html = state.pages.render(
        "admin/login.html",
        context! { csrf => token.clone(), message => message, name => name },
    )?;
    let jar = jar.add(login_csrf_cookie(state, token));
    Ok(secure((status, jar, Html(html)).into_response()))
}

/// `GET /admin/login`.
pub async fn login_page(State(state): State<AppState>, jar: CookieJar) -> PageResult {
    page(&state, login_form(&state, jar, StatusCode::OK, None, ""))
}

/// The password form for `user`.
pub fn password_form(
    state: &AppState,
    user: &AdminUser,
    secret: &str,
    message: Option<&str>,
) -> Result<Response, Error> {
    let html = state.pages.render(
        "admin/password.html",
        context! {
            user => json!({"name": user.name, "role": user.role}),
            must_change => user.must_change_password,
            csrf => state.hasher.csrf_token(secret),
            message => message,
            min => auth::MIN_PASSWORD_CHARS,
        },
    )?;
    let status = if message.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    Ok(secure((status, Html(html)).into_response()))
}

/// `GET /admin/password`: change one's password (required first when Usher made it).
pub async fn password_page(State(state): State<AppState>, jar: CookieJar) -> PageResult {
    let secret = jar
        .get(crate::http::auth::SESSION_COOKIE)
        .map(|c| c.value().to_owned())
        .unwrap_or_default();
    match auth::console_user(&state, &secret).await {
        Ok((user, _)) => page(&state, password_form(&state, &user, &secret, None)),
        Err(_) => Ok(secure(
            axum::response::Redirect::to("/admin/login").into_response(),
        )),
    }
}

/// `GET /admin`: the dashboard (its script refreshes the figures every few seconds).
pub async fn dashboard(
    State(state): State<AppState>,
    ConsolePage(caller): ConsolePage,
) -> PageResult {
    let r = async {
        let d = views::dashboard::Dashboard::from(&dash::dashboard(&state, &caller).await?);
        let inputs: Vec<Value> = crate::service::admin::ingest::live_inputs(&state, &caller)?
            .into_iter()
            .map(|(id, snap)| {
                json!({
                    "show_id": id, "state": snap.state, "protocol": snap.protocol,
                    "bitrate_kbps": snap.bitrate_kbps, "input": snap.input,
                    "since": snap.since.to_rfc3339(),
                })
            })
            .collect();
        render(
            &state,
            &caller,
            "dashboard.html",
            "dashboard",
            context! { d => d, inputs => inputs },
        )
    }
    .await;
    page(&state, r)
}

/// `GET /admin/shows`.
pub async fn shows(State(state): State<AppState>, ConsolePage(caller): ConsolePage) -> PageResult {
    let r = async {
        let list = shows::list_shows(&state, &caller).await?;
        let live = sessions::list_sessions(&state, &caller, None).await?;
        let rows: Vec<Value> = list
            .iter()
            .map(|s| {
                let viewers = live.iter().filter(|l| l.show_id == s.id).count();
                let mut v = json!(s);
                v["viewers"] = json!(viewers);
                v["starts_at"] = json!(fmt_time(s.starts_at));
                v["ends_at"] = json!(fmt_time(s.ends_at));
                v
            })
            .collect();
        render(
            &state,
            &caller,
            "shows.html",
            "shows",
            context! { shows => rows },
        )
    }
    .await;
    page(&state, r)
}

fn fmt_time(t: time::OffsetDateTime) -> String {
    t.format(&time::macros::format_description!(
        "[year]-[month]-[day] [hour]:[minute] UTC"
    ))
    .unwrap_or_default()
}

fn local_input(t: time::OffsetDateTime) -> String {
    t.format(&time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]"
    ))
    .unwrap_or_default()
}

async fn show_form(
    state: &AppState,
    caller: &Caller,
    show: Option<Value>,
    is_new: bool,
) -> Result<Response> {
    let countries: Vec<&str> = COUNTRIES.split(' ').collect();
    let pool: Vec<Value> = crate::service::delivery::pool(state)
        .await?
        .iter()
        .map(|c| json!({"id": c.id, "name": c.name, "enabled": c.enabled}))
        .collect();
    // the viewer pages' other languages, and any other the show was given through the API (kept on save)
    let given = show
        .as_ref()
        .and_then(|s| s.get("translations"))
        .and_then(Value::as_object);
    let mut codes: Vec<String> = crate::i18n::LANGUAGES[1..]
        .iter()
        .map(|l| l.code.to_owned())
        .collect();
    for code in given.into_iter().flat_map(|g| g.keys()) {
        if !codes.contains(code) {
            codes.push(code.clone());
        }
    }
    let translations: Vec<Value> = codes
        .iter()
        .map(|code| {
            let text = given.and_then(|g| g.get(code));
            json!({
                "code": code,
                "name": crate::i18n::language(code).map_or(code.as_str(), |l| l.name),
                "title": text.and_then(|t| t.get("title")).cloned().unwrap_or_default(),
                "description": text.and_then(|t| t.get("description")).cloned().unwrap_or_default(),
            })
        })
        .collect();
    render(
        state,
        caller,
        "show.html",
        "shows",
        context! { show => show, is_new => is_new, countries => countries, pool => pool, translations => translations },
    )
}

/// `GET /admin/shows/new`.
pub async fn new_show(
    State(state): State<AppState>,
    ConsolePage(caller): ConsolePage,
) -> PageResult {
    let now = time::OffsetDateTime::now_utc();
    let draft = json!({
        "kind": "live",
        "starts_at_input": local_input(now + time::Duration::hours(1)),
        "ends_at_input": local_input(now + time::Duration::hours(4)),
        "max_devices": 1,
        "policy": "newest_wins",
        "published": true,
        "cdns": [],
        "geo": {"allow_countries": [], "deny_countries": [], "allow_ranges": [], "deny_ranges": [], "unknown": "allow"},
    });
    page(&state, show_form(&state, &caller, Some(draft), true).await)
}

/// `GET /admin/shows/{id}`: the show's form (read-only without the manage permission), and for a live
/// show its ingest: status, URLs, the stream key's age.
pub async fn show(
    State(state): State<AppState>,
    ConsolePage(caller): ConsolePage,
    id: Result<ApiPath<String>, Error>,
) -> PageResult {
    let r = async {
        let ApiPath(id) = id?;
        show_page(&state, &caller, &id, None).await
    }
    .await;
    page(&state, r)
}

/// The show page, with `new_stream_key` shown this once after a rotation.
pub(crate) async fn show_page(
    state: &AppState,
    caller: &Caller,
    id: &str,
    new_stream_key: Option<String>,
) -> Result<Response> {
    let s = shows::find_show(state, caller, id).await?;
    let mut v = json!(s);
    v["starts_at_input"] = json!(local_input(s.starts_at));
    v["ends_at_input"] = json!(local_input(s.ends_at));
    let viewers = state.store.sessions(Some(&s.id)).await?.len();
    v["viewers"] = json!(viewers);
    let i = crate::service::admin::ingest::ingest_status(state, caller, id).await?;
    v["ingest"] = json!(views::ingest::IngestView::from(&i));
    if let Some(key) = new_stream_key {
        v["ingest"]["stream_key"] = json!(key);
    }
    // the show's uploads and their packaging jobs, when this node takes uploads
    if state.uploads.settings().enabled {
        let expiry = state.uploads.settings().expiry_s;
        let ups: Vec<Value> = crate::service::admin::uploads::list_uploads(state, caller)
            .await?
            .iter()
            .filter(|u| u.show_id == s.id.as_str())
            .map(|u| json!(crate::http::views::uploads::UploadView::new(u, expiry)))
            .collect();
        v["uploads"] = json!(ups);
        v["uploads_enabled"] = json!(true);
        v["upload_max_bytes"] = json!(state.uploads.settings().max_bytes);
    }
    show_form(state, caller, Some(v), false).await
}

/// Query of the ticket search page.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TicketSearch {
    #[serde(default)]
    q: Option<String>,
}

/// `GET /admin/tickets[?q=…]`: search by id or external reference.
pub async fn tickets(
    State(state): State<AppState>,
    ConsolePage(caller): ConsolePage,
    q: Result<ApiQuery<TicketSearch>, Error>,
) -> PageResult {
    let r = async {
        let ApiQuery(q) = q?;
        let q = q.q.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
        let (results, message) = match &q {
            Some(q) => match tickets::search(&state, &caller, q).await {
                Ok(found) if found.len() == 1 && found[0].id.as_str() == q => {
                    return Ok(secure(
                        axum::response::Redirect::to(&format!("/admin/tickets/{}", found[0].id))
                            .into_response(),
                    ));
                }
                Ok(found) => (
                    found
                        .iter()
                        .map(views::tickets::TicketView::new)
                        .collect::<Vec<_>>(),
                    None,
                ),
                Err(Error::InvalidRequest(m)) => (Vec::new(), Some(m)),
                Err(e) => return Err(e),
            },
            None => (Vec::new(), None),
        };
        render(
            &state,
            &caller,
            "tickets.html",
            "tickets",
            context! { q => q, results => results, message => message },
        )
    }
    .await;
    page(&state, r)
}

/// `GET /admin/tickets/{id}`: status, usage timeline and sharing signal.
pub async fn ticket(
    State(state): State<AppState>,
    ConsolePage(caller): ConsolePage,
    id: Result<ApiPath<String>, Error>,
) -> PageResult {
    let r = async {
        let ApiPath(id) = id?;
        let report = tickets::status(&state, &caller, &id).await?;
        let v = views::tickets::TicketView::report(&report);
        let (t, activity) = (&report.ticket, &report.activity);
        // one timeline: devices, countries and addresses as first (and devices last) seen, newest first
        let mut timeline: Vec<Value> = Vec::new();
        for d in &activity.usage.devices {
            timeline.push(json!({"at": d.first_seen.to_rfc3339(), "what": "device first seen", "who": d.label}));
            if d.last_seen != d.first_seen {
                timeline.push(json!({"at": d.last_seen.to_rfc3339(), "what": "device last seen", "who": d.label}));
            }
        }
        for c in &activity.usage.countries {
            timeline.push(json!({"at": c.first_seen.to_rfc3339(), "what": "country first seen", "who": c.country}));
        }
        for a in &activity.usage.addresses {
            timeline.push(json!({"at": a.first_seen.to_rfc3339(), "what": "address first seen", "who": a.text()}));
        }
        for s in &activity.live {
            timeline.push(json!({"at": s.created_at.to_rfc3339(), "what": "live session started", "who": s.device_label}));
        }
        timeline.sort_by(|a, b| b["at"].as_str().cmp(&a["at"].as_str()));
        let show = state.store.show(&t.terms.show_id).await?;
        render(
            &state,
            &caller,
            "ticket.html",
            "tickets",
            context! { t => v, timeline => timeline, show_title => show.map(|s| s.title) },
        )
    }
    .await;
    page(&state, r)
}

/// Query of the sessions page.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SessionsFilter {
    #[serde(default)]
    show: Option<String>,
}

/// `GET /admin/sessions[?show=…]`: live sessions per show (refreshes by itself).
pub async fn sessions(
    State(state): State<AppState>,
    ConsolePage(caller): ConsolePage,
    q: Result<ApiQuery<SessionsFilter>, Error>,
) -> PageResult {
    let r = async {
        let ApiQuery(q) = q?;
        let filter = q.show.filter(|s| !s.is_empty());
        let show = filter
            .as_deref()
            .map(|s| ShowId::parse(s).map_err(|e| Error::InvalidRequest(format!("show: {e}"))))
            .transpose()?;
        let all_shows = state.store.shows().await?;
        let list = sessions::list_sessions(&state, &caller, show.as_ref()).await?;
        let mut groups: Vec<Value> = Vec::new();
        for s in &all_shows {
            let rows: Vec<views::sessions::SessionView> = list
                .iter()
                .filter(|l| l.show_id == s.id)
                .map(views::sessions::SessionView::from)
                .collect();
            if !rows.is_empty() || show.as_ref() == Some(&s.id) {
                groups.push(json!({"id": s.id, "title": s.title, "sessions": rows}));
            }
        }
        render(
            &state,
            &caller,
            "sessions.html",
            "sessions",
            context! {
                groups => groups,
                total => list.len(),
                shows => all_shows.iter().map(|s| json!({"id": s.id, "title": s.title})).collect::<Vec<_>>(),
                filter => filter,
            },
        )
    }
    .await;
    page(&state, r)
}

/// `GET /admin/cdns`: the pool with health.
pub async fn cdns(State(state): State<AppState>, ConsolePage(caller): ConsolePage) -> PageResult {
    let r = async {
        let pool: Vec<views::cdns::CdnView> = cdns::list_cdns(&state, &caller)
            .await?
            .iter()
            .map(views::cdns::CdnView::from)
            .collect();
        render(
            &state,
            &caller,
            "cdns.html",
            "cdns",
            context! { cdns => pool },
        )
    }
    .await;
    page(&state, r)
}

/// Signing options that are not secrets (shown in the form; secrets are write-only).
fn public_options(signing: &Value) -> Value {
    let mut v = signing.clone();
    if let Some(o) = v.as_object_mut() {
        o.retain(|k, _| {
            !matches!(
                k.as_str(),
                "scheme" | "secret" | "key" | "private_key_pem" | "salt"
            )
        });
    }
    v
}

/// The CDN page: its form, and a test-signing form with the last result.
pub async fn cdn_page(
    state: &AppState,
    caller: &Caller,
    id: &str,
    test: Option<views::cdns::SignedObject>,
) -> Result<Response> {
    let c = cdns::find_cdn(state, caller, id).await?;
    let mut v = json!(views::cdns::CdnView::from(&c));
    let opts = public_options(&c.signing.0);
    v["options"] = json!(if opts.as_object().is_some_and(|o| o.is_empty()) {
        String::new()
    } else {
        serde_json::to_string_pretty(&opts).unwrap_or_default()
    });
    render(
        state,
        caller,
        "cdn.html",
        "cdns",
        context! { c => v, is_new => false, test => test },
    )
}

/// `GET /admin/cdns/new`.
pub async fn new_cdn(
    State(state): State<AppState>,
    ConsolePage(caller): ConsolePage,
) -> PageResult {
    let draft =
        json!({"priority": 100, "weight": 1, "enabled": true, "scheme": "nginx", "options": ""});
    page(
        &state,
        render(
            &state,
            &caller,
            "cdn.html",
            "cdns",
            context! { c => draft, is_new => true, test => Tpl::from(()) },
        ),
    )
}

/// `GET /admin/cdns/{id}`.
pub async fn cdn(
    State(state): State<AppState>,
    ConsolePage(caller): ConsolePage,
    id: Result<ApiPath<String>, Error>,
) -> PageResult {
    let r = async {
        let ApiPath(id) = id?;
        cdn_page(&state, &caller, &id, None).await
    }
    .await;
    page(&state, r)
}

/// `GET /admin/geoip`: status and upload.
pub async fn geoip(State(state): State<AppState>, ConsolePage(caller): ConsolePage) -> PageResult {
    let r = geoip::status(&state, &caller).and_then(|status| {
        let age_days = status
            .status
            .database
            .as_ref()
            .and_then(|d| i64::try_from(d.build_epoch).ok())
            .map(|b| ((state.store.now().0 / 1000) - b).max(0) / 86_400);
        render(
            &state,
            &caller,
            "geoip.html",
            "geoip",
            context! { g => views::geoip::GeoIpStatus::from(&status), age_days => age_days },
        )
    });
    page(&state, r)
}

/// The API keys page, with a new key shown once when one was just made.
pub async fn api_keys_page(
    state: &AppState,
    caller: &Caller,
    created: Option<(String, String)>,
) -> Result<Response> {
    let keys: Vec<views::api_keys::ApiKeyView> = api_keys::list_keys(state, caller)
        .await?
        .iter()
        .map(views::api_keys::ApiKeyView::from)
        .collect();
    render(
        state,
        caller,
        "api_keys.html",
        "api-keys",
        context! { keys => keys, created => created.map(|(id, key)| json!({"id": id, "key": key})) },
    )
}

/// `GET /admin/api-keys`.
pub async fn api_keys(
    State(state): State<AppState>,
    ConsolePage(caller): ConsolePage,
) -> PageResult {
    let r = api_keys_page(&state, &caller, None).await;
    page(&state, r)
}

/// The webhooks page: the endpoints, and a new one's secret shown this once.
pub async fn webhooks_page(
    state: &AppState,
    caller: &Caller,
    made: Option<views::webhooks::WebhookView>,
) -> Result<Response> {
    let endpoints: Vec<views::webhooks::WebhookView> = webhooks::list(state, caller)
        .await?
        .iter()
        .map(views::webhooks::WebhookView::from)
        .collect();
    render(
        state,
        caller,
        "webhooks.html",
        "webhooks",
        context! { endpoints => endpoints, made => made, event_types => usher_core::webhook::EVENT_TYPES },
    )
}

/// `GET /admin/webhooks`.
pub async fn webhooks_list(
    State(state): State<AppState>,
    ConsolePage(caller): ConsolePage,
) -> PageResult {
    let r = webhooks_page(&state, &caller, None).await;
    page(&state, r)
}

/// Deliveries one endpoint page shows.
const DELIVERIES_SHOWN: usize = 100;

/// An endpoint's page: its settings and delivery log (with re-send), and a new secret shown this once.
pub async fn webhook_page(
    state: &AppState,
    caller: &Caller,
    id: &str,
    secret: Option<String>,
) -> Result<Response> {
    let endpoint = webhooks::find(state, caller, id).await?;
    let deliveries: Vec<views::webhooks::DeliveryView> =
        webhooks::deliveries(state, caller, id, DELIVERIES_SHOWN)
            .await?
            .iter()
            .map(views::webhooks::DeliveryView::from)
            .collect();
    render(
        state,
        caller,
        "webhook.html",
        "webhooks",
        context! {
            w => views::webhooks::WebhookView::from(&endpoint),
            deliveries => deliveries,
            secret => secret,
            shown => DELIVERIES_SHOWN,
        },
    )
}

/// `GET /admin/webhooks/{id}`.
pub async fn webhook(
    State(state): State<AppState>,
    ConsolePage(caller): ConsolePage,
    id: Result<ApiPath<String>, Error>,
) -> PageResult {
    let r = async {
        let ApiPath(id) = id?;
        webhook_page(&state, &caller, &id, None).await
    }
    .await;
    page(&state, r)
}

/// The users page, with a password shown once when one was just made.
pub async fn users_page(
    state: &AppState,
    caller: &Caller,
    made: Option<(String, String)>,
) -> Result<Response> {
    let users: Vec<views::users::UserView> = users::list_users(state, caller)
        .await?
        .iter()
        .map(views::users::UserView::from)
        .collect();
    render(
        state,
        caller,
        "users.html",
        "users",
        context! { users => users, made => made.map(|(name, password)| json!({"name": name, "password": password})) },
    )
}

/// `GET /admin/users`.
pub async fn users(State(state): State<AppState>, ConsolePage(caller): ConsolePage) -> PageResult {
    let r = users_page(&state, &caller, None).await;
    page(&state, r)
}

/// `GET /admin/audit`: filter form and entries.
pub async fn audit(
    State(state): State<AppState>,
    ConsolePage(caller): ConsolePage,
    q: Result<ApiQuery<AuditQuery>, Error>,
) -> PageResult {
    let r = async {
        let ApiQuery(q) = q?;
        let entries = read_audit(&state, &caller, &q).await?;
        let rows: Vec<views::audit::AuditEntryView> =
            entries.iter().map(views::audit::AuditEntryView::from).collect();
        let query = serde_urlencoded_query(&q);
        render(
            &state,
            &caller,
            "audit.html",
            "audit",
            context! {
                entries => rows,
                q => json!({"actor": q.actor, "action": q.action, "target": q.target, "since": q.since, "until": q.until}),
                csv_query => query,
            },
        )
    }
    .await;
    page(&state, r)
}

fn serde_urlencoded_query(q: &AuditQuery) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in [
        ("actor", &q.actor),
        ("action", &q.action),
        ("target", &q.target),
        ("since", &q.since),
        ("until", &q.until),
    ] {
        if let Some(v) = v.as_deref().filter(|v| !v.trim().is_empty()) {
            s.append_pair(k, v);
        }
    }
    s.finish()
}

/// `GET /admin/audit.csv`: the filtered entries as CSV.
pub async fn audit_csv(
    State(state): State<AppState>,
    ConsolePage(caller): ConsolePage,
    q: Result<ApiQuery<AuditQuery>, Error>,
) -> PageResult {
    let r = async {
        let ApiQuery(mut q) = q?;
        q.limit = Some(q.limit.unwrap_or(MAX_LIMIT));
        let entries = read_audit(&state, &caller, &q).await?;
        Ok(csv_response(&entries))
    }
    .await;
    page(&state, r)
}
