//! The console's extractors (a page's caller, a form with its CSRF check), its error page, and the form
//! handlers, each a thin call of the action the JSON API calls too.

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
use crate::service::Error;
use crate::service::admin::{api_keys, cdns, geoip, sessions, shows, tickets, users};
use crate::service::{auth, webhooks};
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
        Err(e) => {
            let Some((status, message, retry_after)) = refused_attempt(&e) else {
                return Err(error_page(&state, e));
            };
            let mut res = pages::login_form(&state, jar, status, Some(&message), name)
                .map_err(|e| error_page(&state, e))?;
            with_retry_after(&mut res, retry_after);
            Ok(res)
        }
    }
}

/// How the console tells a refused login or password change: status, message and `Retry-After`; `None`
/// for any other error.
fn refused_attempt(e: &Error) -> Option<(StatusCode, String, Option<u64>)> {
    match e {
        Error::LoginFailed => Some((
            StatusCode::UNAUTHORIZED,
            "Wrong user name or password.".into(),
            None,
        )),
        Error::LoginThrottled { retry_after_s } => Some((
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "Too many failed attempts. Try again in {retry_after_s} s, or ask an admin to unlock the user."
            ),
            Some(*retry_after_s),
        )),
        Error::Busy { retry_after_s } => Some((
            StatusCode::TOO_MANY_REQUESTS,
            format!("Too many logins at once. Try again in {retry_after_s} s."),
            Some(*retry_after_s),
        )),
        _ => None,
    }
}

fn with_retry_after(res: &mut Response, seconds: Option<u64>) {
    if let Some(s) = seconds {
        res.headers_mut().insert(
            axum::http::header::RETRY_AFTER,
            axum::http::HeaderValue::from(s),
        );
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
    let (user, session) = match auth::console_user(&state, &secret).await {
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
    match users::change_own_password(
        &state,
        &user,
        &session,
        fields.raw("current_password"),
        new,
        address,
    )
    .await
    {
        Ok(()) => see_other("/admin"),
        Err(Error::InvalidRequest(m)) => pages::password_form(&state, &user, &secret, Some(&m))
            .map_err(|e| error_page(&state, e)),
        Err(e) => {
            let Some((status, message, retry_after)) = refused_attempt(&e) else {
                return Err(error_page(&state, e));
            };
            let message = if matches!(e, Error::LoginFailed) {
                "The current password is wrong.".to_owned()
            } else {
                message
            };
            let mut res = pages::password_form(&state, &user, &secret, Some(&message))
                .map_err(|e| error_page(&state, e))?;
            *res.status_mut() = status;
            with_retry_after(&mut res, retry_after);
            Ok(res)
        }
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
        "encryption": fields.get("encryption").unwrap_or("none"),
        "live_recording": fields.get("live_recording") == Some("true"),
        "cdns": fields.all("cdns"),
        "geo": {
            "allow_countries": fields.all("allow_countries"),
            "deny_countries": fields.all("deny_countries"),
            "allow_ranges": lines(fields, "allow_ranges"),
            "deny_ranges": lines(fields, "deny_ranges"),
            "unknown": fields.get("unknown").unwrap_or("allow"),
        },
    });
    // `tr_title.de`, `tr_description.de`: the title and description in other languages
    let mut translations = serde_json::Map::new();
    for (field, prefix) in [("title", "tr_title."), ("description", "tr_description.")] {
        for (code, text) in fields.prefixed(prefix) {
            let entry = translations
                .entry(code.to_owned())
                .or_insert_with(|| json!({}));
            entry[field] = json!(text);
        }
    }
    v["translations"] = Value::Object(translations);
    for n in [
        "max_devices",
        "heartbeat_interval_s",
        "lease_ttl_s",
        "grant_ttl_s",
        "live_dvr_s",
        "capacity",
        "admit_rate_per_s",
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
    let token = at(
        &state,
        tickets::register_preview(&state, &form.caller, &id).await,
    )?;
    see_other(&format!("/watch/{}", token.expose()))
}

/// `POST /admin/shows/{id}/stream-key`: a new stream key, shown on the page this answer renders (never
/// again: no redirect, so a reload cannot show it).
pub async fn rotate_stream_key(
    State(state): State<AppState>,
    id: Result<ApiPath<String>, Error>,
    form: ConsoleForm,
) -> FormResult {
    let id = path_text(&state, id)?;
    let (key, _) = at(
        &state,
        crate::service::admin::ingest::rotate_stream_key(&state, &form.caller, &id).await,
    )?;
    let page = pages::show_page(&state, &form.caller, &id, Some(key.expose().to_owned())).await;
    let mut res = at(&state, page)?;
    res.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    Ok(res)
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

/// `POST /admin/tickets/{id}/erase-personal-data`: the ticket page's "Erase personal data" (after the
/// page's confirmation), back to the ticket page, which then shows no devices, countries or addresses.
pub async fn erase_personal_data(
    State(state): State<AppState>,
    id: Result<ApiPath<String>, Error>,
    form: ConsoleForm,
) -> FormResult {
    let id = path_text(&state, id)?;
    let e = at(
        &state,
        tickets::erase_personal_data(&state, &form.caller, &id).await,
    )?;
    see_other(&format!("/admin/tickets/{}", e.ticket.id))
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
        sessions::end_session(&state, &form.caller, &id).await,
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
            "nginx" | "cloudflare" => "secret",
            "cloudfront" | "cloudflare_stream" => "private_key_pem",
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
    // an address or a CIDR network, checked by the service
    let client_ip = f.get("client_ip").map(str::to_owned);
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
    let result = crate::http::views::cdns::SignedObject::from(&result);
    pages::cdn_page(&state, &form.caller, &id, Some(result))
        .await
        .map_err(|e| error_page(&state, e))
}

/// `POST /admin/geoip/reload`: read `geoip.path` again.
pub async fn reload_geoip(State(state): State<AppState>, form: ConsoleForm) -> FormResult {
    at(
        &state,
        geoip::reload(&state, &form.caller, geoip::ReloadSource::File).await,
    )?;
    see_other("/admin/geoip")
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

/// `POST /admin/webhooks`: the list with the new endpoint's secret, shown this once.
pub async fn create_webhook(State(state): State<AppState>, form: ConsoleForm) -> FormResult {
    let body = webhooks::NewEndpoint {
        url: form.fields.get("url").unwrap_or("").trim().to_owned(),
        events: form
            .fields
            .all("events")
            .into_iter()
            .map(str::to_owned)
            .collect(),
        description: form.fields.get("description").unwrap_or("").to_owned(),
    };
    let endpoint = at(&state, webhooks::create(&state, &form.caller, body).await)?;
    pages::webhooks_page(
        &state,
        &form.caller,
        Some(crate::http::views::webhooks::WebhookView::with_secret(
            &endpoint,
        )),
    )
    .await
    .map_err(|e| error_page(&state, e))
}

/// `POST /admin/webhooks/{id}/enabled`: pause or resume an endpoint.
pub async fn enable_webhook(
    State(state): State<AppState>,
    id: Result<ApiPath<String>, Error>,
    form: ConsoleForm,
) -> FormResult {
    let id = path_text(&state, id)?;
    let patch = webhooks::EndpointPatch {
        url: None,
        events: None,
        enabled: Some(form.fields.get("enabled") == Some("true")),
        description: None,
    };
    at(
        &state,
        webhooks::change(&state, &form.caller, &id, patch).await,
    )?;
    see_other(&format!("/admin/webhooks/{id}"))
}

/// `POST /admin/webhooks/{id}/secret`: a new signing secret, shown this once on the endpoint's page.
pub async fn rotate_webhook_secret(
    State(state): State<AppState>,
    id: Result<ApiPath<String>, Error>,
    form: ConsoleForm,
) -> FormResult {
    let id = path_text(&state, id)?;
    let endpoint = at(
        &state,
        webhooks::rotate_secret(&state, &form.caller, &id).await,
    )?;
    pages::webhook_page(&state, &form.caller, &id, Some(endpoint.secret))
        .await
        .map_err(|e| error_page(&state, e))
}

/// `POST /admin/webhooks/{id}/delete`.
pub async fn delete_webhook(
    State(state): State<AppState>,
    id: Result<ApiPath<String>, Error>,
    form: ConsoleForm,
) -> FormResult {
    let id = path_text(&state, id)?;
    at(&state, webhooks::remove(&state, &form.caller, &id).await)?;
    see_other("/admin/webhooks")
}

/// `POST /admin/webhooks/{id}/resend`: send the delivery named by the `delivery` field again now.
pub async fn resend_webhook_delivery(
    State(state): State<AppState>,
    id: Result<ApiPath<String>, Error>,
    form: ConsoleForm,
) -> FormResult {
    let id = path_text(&state, id)?;
    let delivery = form.fields.get("delivery").unwrap_or("").to_owned();
    at(
        &state,
        webhooks::resend(&state, &form.caller, &id, &delivery).await,
    )?;
    see_other(&format!("/admin/webhooks/{id}"))
}

fn role_field(fields: &Fields) -> Result<Role, Error> {
    fields
        .get("role")
        .and_then(Role::parse)
        .ok_or_else(|| Error::InvalidRequest("role: admin, support or observer".into()))
}

/// `POST /admin/users`: the page with the made password, shown this once.
pub async fn add_user(State(state): State<AppState>, form: ConsoleForm) -> FormResult {
    let body = users::NewUser {
        name: form.fields.get("name").unwrap_or("").to_owned(),
        role: at(&state, role_field(&form.fields))?,
        password: None,
    };
    let (user, password) = at(&state, users::add_user(&state, &form.caller, body).await)?;
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
    let patch = users::UserPatch {
        role: Some(at(&state, role_field(&form.fields))?),
        reset_password: false,
    };
    at(
        &state,
        users::change_user(&state, &form.caller, &name, patch).await,
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
    let patch = users::UserPatch {
        role: None,
        reset_password: true,
    };
    let (user, password) = at(
        &state,
        users::change_user(&state, &form.caller, &name, patch).await,
    )?;
    pages::users_page(
        &state,
        &form.caller,
        password.map(|p| (user.name.to_string(), p)),
    )
    .await
    .map_err(|e| error_page(&state, e))
}

/// `POST /admin/users/{name}/unlock`: lifts the user's login wait.
pub async fn unlock_user(
    State(state): State<AppState>,
    name: Result<ApiPath<String>, Error>,
    form: ConsoleForm,
) -> FormResult {
    let name = path_text(&state, name)?;
    at(
        &state,
        users::unlock_user(&state, &form.caller, &name).await,
    )?;
    see_other("/admin/users")
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
        users::remove_user(&state, &form.caller, &name).await,
    )?;
    see_other("/admin/users")
}
