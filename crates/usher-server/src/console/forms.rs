//! The console's extractors (a page's caller, a form with its CSRF check), its error page, and the form
//! handlers, each a thin call of the action the JSON API calls too.

use std::net::IpAddr;

use axum::extract::{FromRef, FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum_extra::extract::CookieJar;
use axum_extra::extract::cookie::{Cookie, SameSite};
use minijinja::context;
use serde_json::{Map, Value, json};
use subtle::ConstantTimeEq as _;
use usher_core::admin::Role;
use usher_core::show::ShowSpec;
use usher_core::store::Scope;

use super::Access;
use crate::http::auth::{CsrfCheck, LOGIN_CSRF_COOKIE};
use crate::http::extract::{ApiPath, ClientIp};
use crate::http::{admin_users, api_keys, cdns, sessions, shows, tickets};
use crate::service::Error;
use crate::service::auth::{self, Caller, LoginRefused};
use crate::state::AppState;

/// The console's Content-Security-Policy: nothing inline, nothing from elsewhere.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; \
                       media-src 'self' blob:; connect-src 'self'; worker-src 'self' blob:; frame-ancestors 'none'; \
                       base-uri 'none'; form-action 'self'";

/// Adds the console's security headers to an answer.
pub fn secure(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    res
}

/// A console failure, answered as an HTML page with the problem's status (or a redirect to log in).
pub struct ConsoleError {
    error: Error,
    state: Option<Box<AppState>>,
    redirect: bool,
}

impl std::fmt::Debug for ConsoleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleError")
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

impl ConsoleError {
    fn page(state: &AppState, error: Error) -> Self {
        Self {
            error,
            state: Some(Box::new(state.clone())),
            redirect: false,
        }
    }
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        if self.redirect {
            match self.error {
                Error::Unauthorized => {
                    return secure(Redirect::to("/admin/login").into_response());
                }
                Error::PasswordChangeRequired => {
                    return secure(Redirect::to("/admin/password").into_response());
                }
                _ => {}
            }
        }
        let status = self.error.status();
        let api = self.error.into_response();
        let Some(state) = self.state else { return api };
        // the problem's own title and detail, rendered; 5xx keep their opaque body
        let (parts, body) = api.into_parts();
        let problem = futures_body(body);
        let html = state.pages.render(
            "admin/error.html",
            context! {
                status => status.as_u16(),
                title => problem.get("title").cloned().unwrap_or(Value::Null),
                detail => problem.get("detail").cloned().unwrap_or(Value::Null),
                code => problem.get("code").cloned().unwrap_or(Value::Null),
                logged_out => status == StatusCode::UNAUTHORIZED,
            },
        );
        let mut res = match html {
            Ok(h) => (status, Html(h)).into_response(),
            Err(e) => return e.into_response(),
        };
        // keep what the problem carried for the logging middleware and clients (Retry-After)
        for (k, v) in &parts.headers {
            if k != header::CONTENT_TYPE && k != header::CONTENT_LENGTH {
                res.headers_mut().insert(k, v.clone());
            }
        }
        if let Some(cause) = parts.extensions.get::<crate::http::error::ErrorCause>() {
            res.extensions_mut().insert(cause.clone());
        }
        secure(res)
    }
}

/// An error page for `error`.
pub fn error_page(state: &AppState, error: Error) -> ConsoleError {
    ConsoleError::page(state, error)
}

/// The JSON object of a problem body already in memory.
fn futures_body(body: axum::body::Body) -> Map<String, Value> {
    use http_body_util::BodyExt as _;
    // problem bodies are one in-memory chunk: poll it once without a runtime
    let fut = body.collect();
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    let mut fut = std::pin::pin!(fut);
    match fut.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(Ok(c)) => serde_json::from_slice(&c.to_bytes()).unwrap_or_default(),
        _ => Map::new(),
    }
}

/// The caller of a console page; without a session the answer is a redirect to the login page.
pub struct ConsolePage(pub Caller);

impl<S: Send + Sync> FromRequestParts<S> for ConsolePage
where
    AppState: FromRef<S>,
{
    type Rejection = ConsoleError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ConsoleError> {
        let state = AppState::from_ref(state);
        crate::http::auth::authenticate(parts, &state, CsrfCheck::Deferred)
            .await
            .map(ConsolePage)
            .map_err(|error| ConsoleError {
                error,
                state: Some(Box::new(state)),
                redirect: true,
            })
    }
}

/// A posted console form (`application/x-www-form-urlencoded`) from a logged-in caller, its `_csrf`
/// field (or `X-CSRF-Token` header) checked against the session in constant time.
pub struct ConsoleForm {
    /// Who posts.
    pub caller: Caller,
    /// The fields in order.
    pub fields: Fields,
}

/// Form fields, repeated names kept (multi-selects).
#[derive(Debug, Default)]
pub struct Fields(Vec<(String, String)>);

impl Fields {
    /// Parses an urlencoded body.
    pub fn parse(bytes: &[u8]) -> Self {
        Self(form_urlencoded::parse(bytes).into_owned().collect())
    }

    /// The first value of `name`, trimmed; `None` when absent or empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// The first value of `name` as given (passwords), `""` when absent.
    pub fn raw(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }

    /// Every non-empty value of `name`.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
            .collect()
    }
}

async fn read_form(req: Request, state: &AppState) -> Result<(Parts, Fields), Error> {
    let (parts, body) = req.into_parts();
    let is_form = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let bytes = axum::body::to_bytes(body, state.config.http.max_body_bytes)
        .await
        .map_err(|_| Error::PayloadTooLarge)?;
    if !is_form && !bytes.is_empty() {
        return Err(Error::InvalidRequest(
            "a console form is application/x-www-form-urlencoded".into(),
        ));
    }
    Ok((parts, Fields::parse(&bytes)))
}

impl FromRequest<AppState> for ConsoleForm {
    type Rejection = ConsoleError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ConsoleError> {
        let fail = |e| ConsoleError::page(state, e);
        let (mut parts, body) = req.into_parts();
        let caller = crate::http::auth::authenticate(&mut parts, state, CsrfCheck::Deferred)
            .await
            .map_err(fail)?;
        let (parts, fields) = read_form(Request::from_parts(parts, body), state)
            .await
            .map_err(fail)?;
        if let Some(expected) = &caller.csrf {
            let sent = fields.raw("_csrf").to_owned();
            let sent = if sent.is_empty() {
                parts
                    .headers
                    .get(crate::http::auth::CSRF_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned()
            } else {
                sent
            };
            let ok = sent.len() == expected.len()
                && bool::from(sent.as_bytes().ct_eq(expected.as_bytes()));
            if !ok {
                return Err(fail(Error::CsrfInvalid));
            }
        }
        Ok(ConsoleForm { caller, fields })
    }
}

/// Checks a console route's access rule before its handler runs (the rule comes from the route table).
pub async fn guard(
    State((state, access)): State<(AppState, Access)>,
    req: Request,
    next: Next,
) -> Response {
    let Access::Needs(perm) = access else {
        return next.run(req).await;
    };
    let is_page = req.method() == axum::http::Method::GET;
    let (mut parts, body) = req.into_parts();
    let checked =
        match crate::http::auth::authenticate(&mut parts, &state, CsrfCheck::Deferred).await {
            Ok(caller) => caller.require(perm),
            Err(e) => Err(e),
        };
    match checked {
        Ok(()) => next.run(Request::from_parts(parts, body)).await,
        Err(error) => ConsoleError {
            error,
            state: Some(Box::new(state)),
            redirect: is_page,
        }
        .into_response(),
    }
}

type FormResult = Result<Response, ConsoleError>;

fn see_other(to: &str) -> FormResult {
    Ok(secure(Redirect::to(to).into_response()))
}

fn at<T>(state: &AppState, r: Result<T, Error>) -> Result<T, ConsoleError> {
    r.map_err(|e| ConsoleError::page(state, e))
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
        return Err(ConsoleError::page(&state, Error::CsrfInvalid));
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
                LoginRefused::Store(e) => return Err(ConsoleError::page(&state, e.into())),
                LoginRefused::Internal(e) => return Err(ConsoleError::page(&state, e)),
            };
            super::pages::login_form(&state, jar, status, Some(message), name)
                .map_err(|e| ConsoleError::page(&state, e))
        }
    }
}

/// The login form's CSRF cookie.
pub fn login_csrf_cookie(state: &AppState, value: String) -> Cookie<'static> {
    Cookie::build((LOGIN_CSRF_COOKIE, value))
        .path("/admin")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(state.config.secure_cookies())
        .build()
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
        return Err(ConsoleError::page(&state, Error::CsrfInvalid));
    }
    let new = fields.raw("new_password");
    if new != fields.raw("confirm_password") {
        return super::pages::password_form(
            &state,
            &user,
            &secret,
            Some("The two new passwords differ."),
        )
        .map_err(|e| ConsoleError::page(&state, e));
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
        Err(Error::LoginFailed) => super::pages::password_form(
            &state,
            &user,
            &secret,
            Some("The current password is wrong."),
        )
        .map_err(|e| ConsoleError::page(&state, e)),
        Err(Error::InvalidRequest(m)) => {
            super::pages::password_form(&state, &user, &secret, Some(&m))
                .map_err(|e| ConsoleError::page(&state, e))
        }
        Err(e) => Err(ConsoleError::page(&state, e)),
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
    super::pages::cdn_page(&state, &form.caller, &id, Some(result))
        .await
        .map_err(|e| ConsoleError::page(&state, e))
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
            &state,
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
    super::pages::api_keys_page(&state, &form.caller, Some((key.id.to_string(), secret)))
        .await
        .map_err(|e| ConsoleError::page(&state, e))
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
    super::pages::users_page(
        &state,
        &form.caller,
        password.map(|p| (user.name.to_string(), p)),
    )
    .await
    .map_err(|e| ConsoleError::page(&state, e))
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
    super::pages::users_page(
        &state,
        &form.caller,
        password.map(|p| (user.name.to_string(), p)),
    )
    .await
    .map_err(|e| ConsoleError::page(&state, e))
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
