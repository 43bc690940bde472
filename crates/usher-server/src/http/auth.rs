//! Who is calling, as HTTP carries it: `Authorization: Bearer <api key>`, or the console's session cookie
//! with its CSRF token on unsafe methods; [`Authorized`] checks a permission before the body is read.
//! The checks themselves (keys, sessions, passwords) are [`crate::service::auth`]'s.

use std::marker::PhantomData;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{Method, header};
use axum_extra::extract::CookieJar;
use axum_extra::extract::cookie::{Cookie, SameSite};
use usher_core::admin::Permission;

use crate::http::extract::ClientIp;
use crate::service::auth::{api_key, console_user};
use crate::service::{Caller, Error, Principal, Result};
use crate::state::AppState;

/// Name of the console session cookie.
pub const SESSION_COOKIE: &str = "usher_console";
/// Name of the cookie holding the login form's CSRF token (double submit, before a session exists).
pub const LOGIN_CSRF_COOKIE: &str = "usher_login_csrf";
/// Header by which scripts send the CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The session cookie for `secret` (an empty secret and zero age clears it).
pub fn session_cookie(state: &AppState, secret: String, clear: bool) -> Cookie<'static> {
    let mut c = Cookie::build((SESSION_COOKIE, secret))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(state.config.secure_cookies())
        .build();
    if clear {
        c.make_removal();
    }
    c
}

/// What a request carries to authenticate with.
enum Presented {
    Bearer(String),
    Session(String),
    Nothing,
}

fn presented(parts: &Parts) -> Presented {
    if let Some(v) = parts.headers.get(header::AUTHORIZATION) {
        return Presented::Bearer(
            v.to_str()
                .ok()
                .and_then(|v| v.split_once(' '))
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                .map(|(_, key)| key.trim().to_owned())
                .unwrap_or_default(),
        );
    }
    match CookieJar::from_headers(&parts.headers).get(SESSION_COOKIE) {
        Some(c) if !c.value().is_empty() => Presented::Session(c.value().to_owned()),
        _ => Presented::Nothing,
    }
}

/// How a console request proves it was made by Usher's own pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsrfCheck {
    /// Only the `X-CSRF-Token` header counts (JSON API).
    Header,
    /// The caller checks the form's `_csrf` field itself (console forms).
    Deferred,
}

/// Authenticates a request: an API key (within its rate limit, `rate_limits.api_key_requests`), else a
/// console session (with CSRF for unsafe methods).
///
/// # Errors
/// `unauthorized` (nothing valid presented), `rate_limited`, `csrf_invalid`, `password_change_required`.
pub async fn authenticate(parts: &mut Parts, state: &AppState, csrf: CsrfCheck) -> Result<Caller> {
    let ClientIp(address) = ClientIp::from_request_parts(parts, state).await?;
    match presented(parts) {
        Presented::Bearer(b) => {
            let key = api_key(state, &b).await?;
            state.limits.api_key(key.id.as_str())?;
            Ok(Caller {
                principal: Principal::Key(key),
                address,
                csrf: None,
                session: None,
            })
        }
        Presented::Session(secret) => {
            let (user, id) = console_user(state, &secret).await?;
            let unsafe_method =
                !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
            if unsafe_method && csrf == CsrfCheck::Header {
                let sent = parts
                    .headers
                    .get(CSRF_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                if !state.hasher.check_csrf(&secret, sent) {
                    return Err(Error::CsrfInvalid);
                }
            }
            if user.must_change_password {
                return Err(Error::PasswordChangeRequired);
            }
            Ok(Caller {
                principal: Principal::User(user),
                address,
                csrf: Some(state.hasher.csrf_token(&secret)),
                session: Some(id),
            })
        }
        Presented::Nothing => Err(Error::Unauthorized),
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller
where
    AppState: FromRef<S>,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Error> {
        // a middleware that authenticated already (`http/idempotency.rs`) hands its caller on, so the
        // key is looked up and counted against its rate limit once
        if let Some(caller) = parts.extensions.get::<Caller>() {
            return Ok(caller.clone());
        }
        authenticate(parts, &AppState::from_ref(state), CsrfCheck::Header).await
    }
}

/// A permission as a type, for [`Authorized`].
pub trait Needs: Send + Sync + 'static {
    /// The permission.
    const PERMISSION: Permission;
}

macro_rules! needs {
    ($($(#[$doc:meta])* $name:ident => $perm:ident;)*) => {
        $(
            $(#[$doc])*
            #[derive(Debug)]
            pub struct $name;
            impl Needs for $name {
                const PERMISSION: Permission = Permission::$perm;
            }
        )*
    };
}

needs! {
    /// Read the admin records.
    Read => Read;
    /// Read tickets.
    ReadTickets => ReadTickets;
    /// Register tickets.
    RegisterTickets => RegisterTickets;
    /// Revoke tickets.
    RevokeTickets => RevokeTickets;
    /// Erase a ticket's personal data.
    ErasePersonalData => ErasePersonalData;
    /// End sessions.
    EndSessions => EndSessions;
    /// Change anything.
    Manage => Manage;
}

/// A caller holding permission `P`, checked before the body is read.
#[derive(Debug)]
pub struct Authorized<P: Needs>(pub Caller, pub PhantomData<P>);

impl<P: Needs, S: Send + Sync> FromRequestParts<S> for Authorized<P>
where
    AppState: FromRef<S>,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Error> {
        let caller = Caller::from_request_parts(parts, state).await?;
        caller.require(P::PERMISSION)?;
        Ok(Authorized(caller, PhantomData))
    }
}
