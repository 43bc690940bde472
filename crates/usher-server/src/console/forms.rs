//! The console's extractors (a page's caller, a form with its CSRF check), its error page, and the form
//! handlers, each a thin call of the action the JSON API calls too.

use std::net::IpAddr;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::CookieJar;
use axum_extra::extract::cookie::Cookie;
use serde_json::{Value, json};
use subtle::ConstantTimeEq as _;
use usher_core::admin::Role;
use usher_core::show::ShowSpec;
use usher_core::store::Scope;

use super::frame::{ConsoleError, ConsoleForm, Fields, error_page, read_form, secure};
use super::pages;
use crate::http::auth::LOGIN_CSRF_COOKIE;
use crate::http::extract::{ApiPath, ClientIp};
use crate::http::{admin_users, api_keys, cdns, sessions, shows, tickets};
use crate::service::Error;
use crate::service::auth::{self, LoginRefused};
use crate::state::AppState;

type FormResult = Result<Response, ConsoleError>;

fn see_other(to: &str) -> FormResult {
    Ok(secure(Redirect::to(to).into_response()))
}

fn at<T>(state: &AppState, r: Result<T, Error>) -> Result<T, ConsoleError> {
    r.map_err(|e| error_page(state, e))
}

fn path_text(state: &AppState, p: Result<ApiPath<String>, Error>) -> Result<String, ConsoleError> {
    at(state, p.map(|ApiPath(s)| s))
}

/// `POST /admin/login`: name, password and the login form's CSRF token (double-submit cookie).
pub async fn login(
    State(state): State<AppState>,
    ClientIp(address): ClientIp,
    jar: CookieJar,
    req: Request,
) -> FormResult {
    let (_, fields) = at(&state, read_form(req, &state).await)?;
    let cookie = jar.get(LOGIN_CSRF_COOKIE).map(|c| c.value().to_owned());
    let sent = fields.raw("_csrf");
    let csrf_ok = cookie.as_deref().is_some_and(|c| {
        !c.is_empty() && c.len() == sent.len() && bool::from(c.as_bytes().ct_eq(sent.as_bytes()))
    });
    if !csrf_ok {
        return Err(error_page(&state, Error::CsrfInvalid));
    }
    let name = fields.get("name").unwrap_or("");
    match auth::login(&state, name, fields.raw("password"), address).await {
        Ok(logged) => {
            let to = if logged.user.must_change_password {
                "/admin/password"
            } else {
                "/admin"
            };
            let jar = jar
                .add(crate::http::auth::session_cookie(
                    &state,
                    logged.secret,
                    false,
                ))
                .remove(Cookie::from(LOGIN_CSRF_COOKIE));
            Ok(secure((jar, Redirect::to(to)).into_response()))
        }
        Err(refused) => {
            let (status, message) = match refused {
                LoginRefused::Wrong => (StatusCode::UNAUTHORIZED, "Wrong user name or password."),
                LoginRefused::Throttled => (
                    StatusCode::TOO_MANY_REQUESTS,
                    "Too many failed logins. Wait 15 minutes, or ask an admin.",
                ),
                LoginRefused::Store(e) => return Err(error_page(&state, e.into())),
                LoginRefused::Internal(e) => return Err(error_page(&state, e)),
            };
            pages::login_form(&state, jar, status, Some(message), name)
                .map_err(|e| error_page(&state, e))
        }
    }
}

/// `POST /admin/logout`: ends the session in the store and clears the cookie.
pub async fn logout(
    State(state): State<AppState>,
    jar: CookieJar,
    form: ConsoleForm,
) -> FormResult {
    if let Some(id) = form.caller.session {
        at(
            &state,
            state
                .store
                .delete_console_session(&id)
                .await
                .map_err(Error::from),
        )?;
        crate::service::audit::record(&state, &form.caller, "logout", "", "").await;
    }
    let jar = jar.add(crate::http::auth::session_cookie(
        &state,
        String::new(),
        true,
    ));
    Ok(secure((jar, Redirect::to("/admin/login")).into_response()))
}

/// `POST /admin/password`: the logged-in user's own password (also while a change is required).
pub async fn change_password(
    State(state): State<AppState>,
    ClientIp(address): ClientIp,
    jar: CookieJar,
    req: Request,
) -> FormResult {
    let secret = jar
        .get(crate::http::auth::SESSION_COOKIE)
        .map(|c| c.value().to_owned())
        .unwrap_or_default();
    let (user, _) = match auth::console_user(&state, &secret).await {
        Ok(u) => u,
        Err(_) => return see_other("/admin/login"),
    };
    let (_, fields) = at(&state, read_form(req, &state).await)?;
    if !state.hasher.check_csrf(&secret, fields.raw("_csrf")) {
        return Err(error_page(&state, Error::CsrfInvalid));
    }
    let new = fields.raw("new_password");
    if new != fields.raw("confirm_password") {
        return pages::password_form(
            &state,
            &user,
            &secret,
            Some("The two new passwords differ."),
        )
        .map_err(|e| error_page(&state, e));
    }
    match admin_users::change_own_password(
        &state,
        &user,
        fields.raw("current_password"),
        new,
        address,
    )
    .await
    {
        Ok(()) => see_other("/admin"),
        Err(Error::LoginFailed) => pages::password_form(
            &state,
            &user,
            &secret,
            Some("The current password is wrong."),
        )
        .map_err(|e| error_page(&state, e)),
        Err(Error::InvalidRequest(m)) => pages::password_form(&state, &user, &secret, Some(&m))
            .map_err(|e| error_page(&state, e)),
        Err(e) => Err(error_page(&state, e)),
    }
}

/// Reads a `datetime-local` (taken as UTC) or RFC 3339 field into RFC 3339.
fn form_time(v: Option<&str>) -> Value {
    match v {
        Some(s) if s.len() == 16 => json!(format!("{s}:00Z")),
        Some(s) if s.len() == 19 && !s.ends_with('Z') => json!(format!("{s}Z")),
        Some(s) => json!(s),
        None => Value::Null,
    }
}

fn form_number(fields: &Fields, name: &str) -> Result<Option<u32>, Error> {
    fields
        .get(name)
        .map(|v| {
            v.parse::<u32>()
                .map_err(|_| Error::InvalidRequest(format!("{name}: must be a whole number")))
        })
        .transpose()
}

fn lines(fields: &Fields, name: &str) -> Vec<String> {
    fields
        .get(name)
        .unwrap_or("")
        .split(|c: char| c == '\n' || c == ',' || c.is_whitespace())
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The show form as a [`ShowSpec`], through the API's own deserializer and validation.
fn show_spec(fields: &Fields) -> Result<ShowSpec, Error> {
    let mut v = json!({
        "title": fields.get("title").unwrap_or(""),
        "description": fields.get("description").unwrap_or(""),
        "kind": fields.get("kind").unwrap_or("vod"),
        "starts_at": form_time(fields.get("starts_at")),
        "ends_at": form_time(fields.get("ends_at")),
        "stream_path": fields.get("stream_path").unwrap_or(""),
        "policy": fields.get("policy").unwrap_or("newest_wins"),
        "published": fields.get("published") == Some("true"),
        "cdns": fields.all("cdns"),
        "geo": {
            "allow_countries": fields.all("allow_countries"),
            "deny_countries": fields.all("deny_countries"),
            "allow_ranges": lines(fields, "allow_ranges"),
            "deny_ranges": lines(fields, "deny_ranges"),
            "unknown": fields.get("unknown").unwrap_or("allow"),
        },
    });
    for n in [
        "max_devices",
        "heartbeat_interval_s",
        "lease_ttl_s",
        "grant_ttl_s",
    ] {
        if let Some(x) = form_number(fields, n)? {
            v[n] = json!(x);
        }
    }
    serde_path_to_error::deserialize(v)
        .map_err(|e| Error::InvalidRequest(format!("{}: {}", e.path(), e.inner())))
}

/// `POST /admin/shows`: create or replace the show named by the `id` field.
pub async fn save_show(State(state): State<AppState>, form: ConsoleForm) -> FormResult {
    let id = form.fields.get("id").unwrap_or("").to_owned();
    let spec = at(&state, show_spec(&form.fields))?;
    let (_, show) = at(
        &state,
        shows::write_show(&state, &form.caller, &id, spec).await,
    )?;
    see_other(&format!("/admin/shows/{}?saved=1", show.id))
}

/// `POST /admin/shows/{id}/publish`: `published=true|false`.
pub async fn publish_show(
    State(state): State<AppState>,
    id: Result<ApiPath<String>, Error>,
    form: ConsoleForm,
) -> FormResult {
    let id = path_text(&state, id)?;
    let published = form.fields.get("published") == Some("true");
    let show = at(
        &state,
        shows::publish_show(&state, &form.caller, &id, published).await,
    )?;
    see_other(&format!("/admin/shows/{}", show.id))
}

/// `POST /admin/shows/{id}/delete`.
pub async fn delete_show(
    State(state): State<AppState>,
    id: Result<ApiPath<String>, Error>,
    form: ConsoleForm,
) -> FormResult {
    let id = path_text(&state, id)?;
    at(&state, shows::remove_show(&state, &form.caller, &id).await)?;
    see_other("/admin/shows")
}

/// `POST /admin/shows/{id}/preview`: registers a preview ticket for the admin (external reference
/// `preview:<user>`, audited like any registration) and opens its watch link.
pub async fn preview_show(
    State(state): State<AppState>,
    id: Result<ApiPath<String>, Error>,
    form: ConsoleForm,
) -> FormResult {
    let id = path_text(&state, id)?;
    let show = at(&state, shows::find_show(&state, &id).await)?;
    let who = form.caller.actor().id().to_owned();
    let token = usher_core::ids::TicketToken::generate();
    let ticket = usher_core::ticket::Ticket {
        id: usher_core::ids::TicketId::generate(),
        token_hash: state.hasher.ticket_token(&token),
        terms: usher_core::ticket::TicketTerms {
            show_id: show.id.clone(),
            valid_from: None,
            valid_until: None,
            max_devices: Some(1),
            external_ref: Some(format!("preview:{who}")),
        },
        status: usher_core::ticket::TicketStatus::Active,
        created_at: state.store.now().to_datetime(),
        revoked_at: None,
    };
    let id = ticket.id.clone();
    at(
        &state,
        state
            .store
            .register_tickets(vec![usher_core::store::NewTicket { ticket }])
            .await
            .map_err(Error::from),
    )?;
    crate::service::audit::record(
        &state,
        &form.caller,
        "ticket.register",
        &format!("ticket:{id}"),
        "admin preview",
    )
    .await;
    see_other(&format!("/watch/{}", token.expose()))
}

/// `POST /admin/tickets/{id}/revoke`.
pub async fn revoke_ticket(
    State(state): State<AppState>,
    id: Result<ApiPath<String>, Error>,
    form: ConsoleForm,
) -> FormResult {
    let id = path_text(&state, id)?;
    let t = at(&state, tickets::revoke(&state, &form.caller, &id).await)?;
    see_other(&format!("/admin/tickets/{}", t.id))
}

/// `POST /admin/sessions/{id}/end`.
pub async fn end_session(
    State(state): State<AppState>,
    id: Result<ApiPath<String>, Error>,
    form: ConsoleForm,
) -> FormResult {
    let id = path_text(&state, id)?;
    at(
        &state,
        sessions::stop_session(&state, &form.caller, &id).await,
    )?;
    match form.fields.get("back").filter(|b| b.starts_with("/admin")) {
        Some(b) => see_other(b),
        None => see_other("/admin/sessions"),
    }
}

/// The signing configuration from the CDN form: the scheme and its fields; secrets kept from the stored
/// configuration when their fields are left empty (they are write-only and never shown).
fn signing_from(fields: &Fields, existing: Option<&Value>) -> Result<Value, Error> {
    let scheme = fields
        .get("scheme")
        .ok_or_else(|| Error::InvalidRequest("signing: choose a scheme".into()))?;
    let mut v = match fields.get("signing_json") {
        Some(text) => serde_json::from_str::<Value>(text).map_err(|_| {
            Error::InvalidRequest("signing: the options are not a JSON object".into())
        })?,
        None => json!({}),
    };
    let obj = v.as_object_mut().ok_or_else(|| {
        Error::InvalidRequest("signing: the options are not a JSON object".into())
    })?;
    obj.insert("scheme".into(), json!(scheme));
    if let Some(secret) = fields.get("secret") {
        let key = match scheme {
            "nginx" => "secret",
            "cloudfront" => "private_key_pem",
            _ => "key",
        };
        obj.insert(key.into(), json!(secret));
    }
    if let Some(old) = existing.and_then(Value::as_object)
        && old.get("scheme").and_then(Value::as_str) == Some(scheme)
    {
        for (k, val) in old {
            obj.entry(k.clone()).or_insert_with(|| val.clone());
        }
    }
    Ok(v)
}

/// `POST /admin/cdns`: create or replace the CDN named by the `id` field.
pub async fn save_cdn(State(state): State<AppState>, form: ConsoleForm) -> FormResult {
    let f = &form.fields;
    let id = f.get("id").unwrap_or("").to_owned();
    let existing = match usher_core::ids::CdnId::parse(&id) {
        Ok(cid) => at(&state, state.store.cdn(&cid).await.map_err(Error::from))?,
        Err(_) => None,
    };
    let spec = cdns::CdnSpec {
        name: f.get("name").unwrap_or("").to_owned(),
        base_url: f.get("base_url").unwrap_or("").to_owned(),
        signing: at(
            &state,
            signing_from(f, existing.as_ref().map(|c| &c.signing.0)),
        )?,
        priority: at(&state, form_number(f, "priority"))?.unwrap_or_else(cdns::default_priority),
        weight: at(&state, form_number(f, "weight"))?.unwrap_or(1),
        enabled: f.get("enabled") == Some("true"),
        canary: f.get("canary").map(str::to_owned),
        // write-only: an empty field keeps the stored secret
        origin_secret: f.get("origin_secret").map(|s| Some(s.to_owned())),
    };
    let (_, cdn) = at(
        &state,
        cdns::write_cdn(&state, &form.caller, &id, spec).await,
    )?;
    see_other(&format!("/admin/cdns/{}?saved=1", cdn.id))
}

/// `POST /admin/cdns/{id}/enabled`: `enabled=true|false`.
pub async fn enable_cdn(
    State(state): State<AppState>,
    id: Result<ApiPath<String>, Error>,
    form: ConsoleForm,
) -> FormResult {
    let id = path_text(&state, id)?;
    let patch = cdns::CdnPatch {
        enabled: Some(form.fields.get("enabled") == Some("true")),
        priority: None,
        weight: None,
        canary: None,
        origin_secret: None,
    };
    at(
        &state,
        cdns::change_cdn(&state, &form.caller, &id, patch).await,
    )?;
    see_other("/admin/cdns")
}

/// `POST /admin/cdns/{id}/delete`.
pub async fn delete_cdn(
    State(state): State<AppState>,
    id: Result<ApiPath<String>, Error>,
    form: ConsoleForm,
) -> FormResult {
    let id = path_text(&state, id)?;
    at(&state, cdns::remove_cdn(&state, &form.caller, &id).await)?;
    see_other("/admin/cdns")
}

/// `POST /admin/cdns/{id}/test`: the CDN page with what a viewer would get for the path.
pub async fn test_cdn(
    State(state): State<AppState>,
    id: Result<ApiPath<String>, Error>,
    form: ConsoleForm,
) -> FormResult {
    let id = path_text(&state, id)?;
    let f = &form.fields;
    let client_ip = match f.get("client_ip") {
        Some(ip) => Some(at(
            &state,
            ip.parse::<IpAddr>()
                .map_err(|_| Error::InvalidRequest("client_ip: not an IP address".into())),
        )?),
        None => None,
    };
    let expires_in = at(&state, form_number(f, "expires_in_s"))?.unwrap_or(300);
    let now_s = state.store.now().0.div_euclid(1000);
    let body = cdns::SignBody {
        path: f
            .get("path")
            .unwrap_or("")
            .trim_start_matches('/')
            .to_owned(),
        prefix: f
            .get("prefix")
            .map(|p| p.trim_start_matches('/').to_owned()),
        expires_at: Some(cdns::TimeArg::Unix(now_s + i64::from(expires_in))),
        starts_at: None,
        client_ip,
        session_id: f.get("session_id").map(str::to_owned),
    };
    let result = at(
        &state,
        cdns::sign_test(&state, &form.caller, &id, body).await,
    )?;
    pages::cdn_page(&state, &form.caller, &id, Some(result))
        .await
        .map_err(|e| error_page(&state, e))
}

/// `POST /admin/geoip/reload`: read `geoip.path` again.
pub async fn reload_geoip(State(state): State<AppState>, form: ConsoleForm) -> FormResult {
    use usher_core::admin::Permission;
    at(&state, form.caller.require(Permission::Manage))?;
    let outcome = state.geo_updates.reload_file().await;
    crate::service::audit::record(
        &state,
        &form.caller,
        "geoip.reload",
        "geoip",
        &format!("source=file ok={}", outcome.is_ok()),
    )
    .await;
    match outcome {
        Ok(_) => see_other("/admin/geoip"),
        Err(e) => Err(ConsoleError::page(
            &state.pages,
            Error::GeoIpRefused(e.to_string()),
        )),
    }
}

/// `POST /admin/api-keys`: the page with the new key, shown this once.
pub async fn create_api_key(State(state): State<AppState>, form: ConsoleForm) -> FormResult {
    let scopes = form
        .fields
        .all("scopes")
        .into_iter()
        .filter_map(|s| match s {
            "admin" => Some(Scope::Admin),
            "tickets" => Some(Scope::Tickets),
            _ => None,
        })
        .collect();
    let body = api_keys::NewKey {
        name: form.fields.get("name").unwrap_or("").to_owned(),
        scopes,
    };
    let (key, secret) = at(
        &state,
        api_keys::create_key(&state, &form.caller, body).await,
    )?;
    pages::api_keys_page(&state, &form.caller, Some((key.id.to_string(), secret)))
        .await
        .map_err(|e| error_page(&state, e))
}

/// `POST /admin/api-keys/{id}/delete`.
pub async fn delete_api_key(
    State(state): State<AppState>,
    id: Result<ApiPath<String>, Error>,
    form: ConsoleForm,
) -> FormResult {
    let id = path_text(&state, id)?;
    at(
        &state,
        api_keys::revoke_key(&state, &form.caller, &id).await,
    )?;
    see_other("/admin/api-keys")
}

fn role_field(fields: &Fields) -> Result<Role, Error> {
    fields
        .get("role")
        .and_then(Role::parse)
        .ok_or_else(|| Error::InvalidRequest("role: admin, support or observer".into()))
}

/// `POST /admin/users`: the page with the made password, shown this once.
pub async fn add_user(State(state): State<AppState>, form: ConsoleForm) -> FormResult {
    let body = admin_users::NewUser {
        name: form.fields.get("name").unwrap_or("").to_owned(),
        role: at(&state, role_field(&form.fields))?,
        password: None,
    };
    let (user, password) = at(
        &state,
        admin_users::add_user(&state, &form.caller, body).await,
    )?;
    pages::users_page(
        &state,
        &form.caller,
        password.map(|p| (user.name.to_string(), p)),
    )
    .await
    .map_err(|e| error_page(&state, e))
}

/// `POST /admin/users/{name}/role`.
pub async fn set_role(
    State(state): State<AppState>,
    name: Result<ApiPath<String>, Error>,
    form: ConsoleForm,
) -> FormResult {
    let name = path_text(&state, name)?;
    let patch = admin_users::UserPatch {
        role: Some(at(&state, role_field(&form.fields))?),
        reset_password: false,
    };
    at(
        &state,
        admin_users::change_user(&state, &form.caller, &name, patch).await,
    )?;
    see_other("/admin/users")
}

/// `POST /admin/users/{name}/reset`: a new one-time password, shown once.
pub async fn reset_password(
    State(state): State<AppState>,
    name: Result<ApiPath<String>, Error>,
    form: ConsoleForm,
) -> FormResult {
    let name = path_text(&state, name)?;
    let patch = admin_users::UserPatch {
        role: None,
        reset_password: true,
    };
    let (user, password) = at(
        &state,
        admin_users::change_user(&state, &form.caller, &name, patch).await,
    )?;
    pages::users_page(
        &state,
        &form.caller,
        password.map(|p| (user.name.to_string(), p)),
    )
    .await
    .map_err(|e| error_page(&state, e))
}

/// `POST /admin/users/{name}/delete`.
pub async fn delete_user(
    State(state): State<AppState>,
    name: Result<ApiPath<String>, Error>,
    form: ConsoleForm,
) -> FormResult {
    let name = path_text(&state, name)?;
    at(
        &state,
        admin_users::remove_user(&state, &form.caller, &name).await,
    )?;
    see_other("/admin/users")
}
