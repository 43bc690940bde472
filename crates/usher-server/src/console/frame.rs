//! The console's frame, shared by its pages and forms: security headers, the error page, who is calling
//! (a page's caller, a form with its CSRF check), the access rule of a route and its guard.

use axum::body::Body;
use axum::extract::{FromRef, FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, SameSite};
use minijinja::context;
use subtle::ConstantTimeEq as _;
use usher_core::admin::Permission;

use crate::http::auth::{CsrfCheck, LOGIN_CSRF_COOKIE};
use crate::pages::Pages;
use crate::service::{Caller, Error};
use crate::state::AppState;

/// Who may use a console route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone (the login page).
    Public,
    /// A logged-in user, whatever the role (logout, own password).
    AnyUser,
    /// A user whose role grants the permission.
    Needs(Permission),
}

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

/// A console failure, answered as an HTML page with the problem's status and headers (or a redirect to
/// log in). The page is rendered when the error is made, so the error carries text, not the state.
pub struct ConsoleError {
    error: Error,
    page: Option<String>,
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
    /// An error page for `error`: the problem's own title and detail (5xx keep their opaque text).
    pub fn page(pages: &Pages, error: Error) -> Self {
        let problem = error.problem();
        let page = pages
            .render(
                "admin/error.html",
                context! {
                    status => problem.status.as_u16(),
                    title => problem.title,
                    detail => problem.detail,
                    code => problem.code,
                    logged_out => problem.status == StatusCode::UNAUTHORIZED,
                },
            )
            .ok();
        Self {
            error,
            page,
            redirect: false,
        }
    }

    /// A refused page request: a missing or lapsed session, or a password to change, redirects; any
    /// other refusal is an error page.
    pub fn refused(pages: &Pages, error: Error) -> Self {
        Self {
            redirect: true,
            ..Self::page(pages, error)
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
        // the problem's answer, for its status, headers (Retry-After) and the logging middleware's cause
        let mut res = self.error.into_response();
        let Some(page) = self.page else { return res };
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        res.headers_mut().remove(header::CONTENT_LENGTH);
        *res.body_mut() = Body::from(page);
        secure(res)
    }
}

/// An error page for `error`.
pub fn error_page(state: &AppState, error: Error) -> ConsoleError {
    ConsoleError::page(&state.pages, error)
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
            .map_err(|error| ConsoleError::refused(&state.pages, error))
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

    /// The fields named `{prefix}{rest}` with a non-empty value, as `(rest, value)` (trimmed).
    pub fn prefixed<'a>(
        &'a self,
        prefix: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.0.iter().filter_map(move |(k, v)| {
            let rest = k.strip_prefix(prefix)?;
            Some((rest, v.trim())).filter(|(_, v)| !v.is_empty())
        })
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

/// Reads an urlencoded form body within the body limit.
pub async fn read_form(req: Request, state: &AppState) -> Result<(Parts, Fields), Error> {
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
        let fail = |e| error_page(state, e);
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
        Err(error) if is_page => ConsoleError::refused(&state.pages, error).into_response(),
        Err(error) => error_page(&state, error).into_response(),
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
