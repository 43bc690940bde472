//! Extractors of our own, so every rejection is our problem+json: JSON bodies, queries and path
//! parameters; the client's address; the viewer's device. (Who is calling: [`crate::service::auth`].)

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRef, FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum_extra::extract::CookieJar;
use serde::de::DeserializeOwned;
use usher_core::ids::{DeviceId, SessionId};
use usher_core::session_secret::SessionSecret;

use crate::service::Error;
use crate::service::viewer::Device;
use crate::state::AppState;

/// Name of the long-lived device cookie.
pub const DEVICE_COOKIE: &str = "usher_device";
/// Name of the ticket cookie the watch link sets.
pub const TICKET_COOKIE: &str = "usher_ticket";
/// Header by which apps name their device.
pub const DEVICE_HEADER: &str = "x-usher-device";
/// Header by which apps name their device for humans.
pub const DEVICE_LABEL_HEADER: &str = "x-usher-device-label";

/// A JSON body, deserialized with the path of the first bad field in the error.
pub struct ApiJson<T>(pub T);

/// Whether the request says its body is JSON (`application/json` or `application/…+json`).
fn is_json(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| {
            let m = m.trim().to_ascii_lowercase();
            m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
        })
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Error> {
        if !is_json(req.headers()) {
            return Err(Error::UnsupportedMediaType);
        }
        let bytes = Bytes::from_request(req, state).await.map_err(body_error)?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// A JSON body that may be left out: an empty body (of any type) is `None`; any other must be JSON, and
/// one declared as something else is refused before it is read.
pub struct OptionalJson<T>(pub Option<T>);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for OptionalJson<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Error> {
        let json = is_json(req.headers());
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if !json && declared.is_some_and(|n| n > 0) {
            return Err(Error::UnsupportedMediaType);
        }
        let bytes = Bytes::from_request(req, state).await.map_err(body_error)?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(None));
        }
        if !json {
            return Err(Error::UnsupportedMediaType);
        }
        parse_json(&bytes).map(|v| OptionalJson(Some(v)))
    }
}

/// Maps a body-reading failure to our error.
pub fn body_error(e: BytesRejection) -> Error {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        Error::PayloadTooLarge
    } else {
        Error::InvalidRequest("the request body could not be read".into())
    }
}

/// Parses JSON bytes into `T`, naming the path of the first bad field. Every body of this API is a JSON
/// object: serde would also fill a struct from an array of its fields in order (`[null, null]`), which no
/// client means, so anything but an object is refused.
///
/// # Errors
/// [`Error::InvalidRequest`] with the position and reason.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(Error::InvalidRequest("body: must be a JSON object".into()));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." || path.is_empty() {
            Error::InvalidRequest(format!("body: {inner}"))
        } else {
            Error::InvalidRequest(format!("{path}: {inner}"))
        }
    })?;
    de.end()
        .map_err(|e| Error::InvalidRequest(format!("body: {e}")))?;
    Ok(value)
}

/// A query string, with our error on rejection.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Error> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(q)| ApiQuery(q))
            .map_err(|e| Error::InvalidRequest(format!("query: {}", e.body_text())))
    }
}

/// Path parameters, with our error on rejection (bad percent-encoding, for instance).
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Error> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(p)| ApiPath(p))
            .map_err(|_| Error::InvalidRequest("the path is not valid".into()))
    }
}

/// The client's address: the socket peer, or what trusted proxies in front of it say
/// (`trusted_proxies`, `trusted_proxy_header`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub std::net::IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp
where
    AppState: FromRef<S>,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Error> {
        let peer = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip())
            .ok_or_else(|| Error::Internal("no peer address on the connection".into()))?;
        let state = AppState::from_ref(state);
        let name = match state.proxies.header() {
            usher_geo::proxy::ForwardedHeader::XForwardedFor => "x-forwarded-for",
            usher_geo::proxy::ForwardedHeader::Forwarded => "forwarded",
        };
        // header values that are not text cannot name an address; they end the walk like garbage would
        let values = parts
            .headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap_or("?"));
        Ok(ClientIp(state.proxies.client(peer, values)))
    }
}

/// The viewer's device: from the `X-Usher-Device` header (apps), else the device cookie, else new.
impl<S: Send + Sync> FromRequestParts<S> for Device {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Error> {
        let label = parts
            .headers
            .get(DEVICE_LABEL_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(|s| {
                s.chars()
                    .filter(|c| !c.is_control())
                    .take(60)
                    .collect::<String>()
            })
            .filter(|s| !s.trim().is_empty())
            .unwrap_or_else(|| {
                device_label(
                    parts
                        .headers
                        .get(header::USER_AGENT)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or(""),
                )
            });
        if let Some(h) = parts.headers.get(DEVICE_HEADER) {
            let id = h
                .to_str()
                .ok()
                .and_then(|s| DeviceId::parse(s).ok())
                .ok_or_else(|| {
                    Error::InvalidRequest(
                        "X-Usher-Device must be 8 to 64 of A-Z, a-z, 0-9, '-' and '_'".into(),
                    )
                })?;
            return Ok(Device {
                id,
                fresh: false,
                label,
            });
        }
        let jar = CookieJar::from_headers(&parts.headers);
        match jar
            .get(DEVICE_COOKIE)
            .and_then(|c| DeviceId::parse(c.value()).ok())
        {
            Some(id) => Ok(Device {
                id,
                fresh: false,
                label,
            }),
            None => Ok(Device {
                id: DeviceId::generate(),
                fresh: true,
                label,
            }),
        }
    }
}

/// A short human label of a device from its User-Agent ("Firefox on Android").
pub fn device_label(ua: &str) -> String {
    let browser = if ua.contains("Edg/") {
        "Edge"
    } else if ua.contains("OPR/") {
        "Opera"
    } else if ua.contains("Firefox/") || ua.contains("FxiOS/") {
        "Firefox"
    } else if ua.contains("Chrome/") || ua.contains("CriOS/") || ua.contains("Chromium/") {
        "Chrome"
    } else if ua.contains("Safari/") {
        "Safari"
    } else if ua.contains("Lavf/") {
        "ffmpeg"
    } else {
        ""
    };
    let os = if ua.contains("SMART-TV")
        || ua.contains("Tizen")
        || ua.contains("Web0S")
        || ua.contains("AppleTV")
    {
        "a TV"
    } else if ua.contains("iPhone") {
        "iPhone"
    } else if ua.contains("iPad") {
        "iPad"
    } else if ua.contains("Android") {
        "Android"
    } else if ua.contains("Windows") {
        "Windows"
    } else if ua.contains("Mac OS X") || ua.contains("Macintosh") {
        "macOS"
    } else if ua.contains("CrOS") {
        "ChromeOS"
    } else if ua.contains("Linux") {
        "Linux"
    } else {
        ""
    };
    match (browser, os) {
        ("", "") => "another device".into(),
        (b, "") => b.into(),
        ("", o) => format!("a browser on {o}"),
        (b, o) => format!("{b} on {o}"),
    }
}

#[cfg(test)]
mod tests {
    use super::device_label;

    #[test]
    fn labels_name_browser_and_system() {
        let chrome = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36";
        assert_eq!(device_label(chrome), "Chrome on Linux");
        let iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1";
        assert_eq!(device_label(iphone), "Safari on iPhone");
        assert_eq!(device_label(""), "another device");
    }

    /// The seat cookie as read in place is the one a `CookieJar` of the same head holds: across
    /// several `Cookie` headers, the last of several `usher_seat`s, percent-decoded, other cookies
    /// and malformed pairs passed over; the header is taken as sent.
    #[test]
    fn the_seat_head_reads_the_cookie_a_jar_would() {
        use axum::http::{HeaderMap, HeaderValue, header};
        use axum_extra::extract::CookieJar;

        let heads: &[&[&str]] = &[
            &[],
            &["usher_lang=fr"],
            &["usher_seat=s_1.aaaa"],
            &["a=1; usher_seat=s_1.aaaa; b=2", "usher_seat=s_2.bbbb"],
            &["usher_seat=s_1.aaaa; ; =x; junk; usher_seat=s_3.%63cc"],
            &["usher_seat = s_4.dddd ", "usher_seatx=s_5.eeee"],
        ];
        for cookies in heads {
            let mut headers = HeaderMap::new();
            for c in *cookies {
                headers.append(header::COOKIE, HeaderValue::from_str(c).unwrap());
            }
            let jar = CookieJar::from_headers(&headers);
            let head = super::SeatHead::of(&headers);
            assert_eq!(
                head.cookie.as_deref(),
                jar.get(super::SEAT_COOKIE).map(|c| c.value()),
                "{cookies:?}"
            );
            assert!(head.header.is_none());
        }
        let mut headers = HeaderMap::new();
        headers.insert(
            super::SESSION_SECRET_HEADER,
            HeaderValue::from_static("ffff"),
        );
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("usher_seat=s_1.eeee"),
        );
        let head = super::SeatHead::of(&headers);
        assert_eq!(
            head.header.as_ref().map(HeaderValue::as_bytes),
            Some(&b"ffff"[..])
        );
        // its debug form names no credential
        let shown = format!("{head:?}");
        assert!(
            !shown.contains("ffff") && !shown.contains("eeee"),
            "{shown}"
        );
    }
}

/// The watch page's session cookie: `{session id}.{secret}`, HttpOnly, rewritten by every renewal.
pub const SEAT_COOKIE: &str = "usher_seat";
/// The header in which apps send their session's secret.
pub const SESSION_SECRET_HEADER: &str = "x-usher-session-secret";
/// The query parameter that carries the session's secret in a native player's master playlist and
/// steering URLs (players cannot send headers).
pub const SESSION_SECRET_PARAM: &str = "secret";

/// Where a request carried its session secret (and so where its answer hands out the next one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretVia {
    /// `X-Usher-Session-Secret` (apps): the next one goes in the JSON answer.
    Header,
    /// The player URL's `secret` parameter (native players): the next one goes in the next URL.
    Url,
    /// The `usher_seat` cookie (the watch page): the next one goes in the cookie.
    Cookie,
}

/// The value of the query parameter `name` in `query` (the first one), as sent: the parameters Usher reads
/// from queries (session secrets, grants) are URL-safe and need no decoding.
pub fn query_param<'a>(query: Option<&'a str>, name: &str) -> Option<&'a str> {
    query?
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A session's secret as a request presents it.
#[derive(Debug, Clone)]
pub struct SeatSecret {
    /// The secret.
    pub secret: SessionSecret,
    /// Where it came from.
    pub via: SecretVia,
}

/// What a request's head presents towards a seat: the `X-Usher-Session-Secret` header and the value of
/// the `usher_seat` cookie, read in place. A `HeaderMap` extractor would copy every header and a
/// `CookieJar` every cookie into a set of its own, on every heartbeat and media playlist.
#[derive(Clone, Default)]
pub struct SeatHead {
    header: Option<axum::http::HeaderValue>,
    cookie: Option<String>,
}

impl std::fmt::Debug for SeatHead {
    /// Says which credentials are present, never their values (secrets stay out of logs).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeatHead")
            .field("header", &self.header.as_ref().map(|_| "<secret>"))
            .field(
                "cookie",
                &self.cookie.as_ref().map(|_| "<session>.<secret>"),
            )
            .finish()
    }
}

impl SeatHead {
    /// The seat's header and cookie among `headers`. Of several `usher_seat` cookies the last counts,
    /// as in a `CookieJar`; cookies are split and percent-decoded as it does.
    pub fn of(headers: &axum::http::HeaderMap) -> Self {
        let cookie = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|c| axum_extra::extract::cookie::Cookie::parse_encoded(c).ok())
            .rev()
            .find(|c| c.name() == SEAT_COOKIE)
            .map(|c| c.value().to_owned());
        Self {
            header: headers.get(SESSION_SECRET_HEADER).cloned(),
            cookie,
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for SeatHead {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self::of(&parts.headers))
    }
}

/// The secret a request presents for `session` (the path's session, or at admit the cookie's,
/// `None`), looked for in the header, then the URL's query, then the seat cookie (whose session must be
/// `session`). `Ok(None)`: none presented.
///
/// # Errors
/// `session_secret_invalid` for a header or URL secret that cannot be a secret.
pub fn seat_secret(
    head: &SeatHead,
    query: Option<&str>,
    session: Option<&SessionId>,
) -> Result<Option<SeatSecret>, Error> {
    let parse = |text: &str, via| {
        SessionSecret::parse(text)
            .map(|secret| SeatSecret { secret, via })
            .ok_or(Error::SessionSecretInvalid)
    };
    if let Some(v) = &head.header {
        let text = v.to_str().map_err(|_| Error::SessionSecretInvalid)?;
        return parse(text, SecretVia::Header).map(Some);
    }
    if let Some(text) = query_param(query, SESSION_SECRET_PARAM) {
        return parse(text, SecretVia::Url).map(Some);
    }
    // a cookie of another session (an older one of this browser) is no credential for this one
    Ok(head
        .cookie
        .as_deref()
        .and_then(|c| c.split_once('.'))
        .filter(|(sid, _)| session.is_none_or(|s| s.as_str() == *sid))
        .and_then(|(_, text)| SessionSecret::parse(text))
        .map(|secret| SeatSecret {
            secret,
            via: SecretVia::Cookie,
        }))
}

/// The session named by the path's `id` and the secret the request presents for it. The secret is
/// asked for first, so a caller without one learns nothing of the session (not even whether its id is
/// well-formed).
///
/// # Errors
/// `session_secret_required`, `session_secret_invalid`, then `session_unknown` for an id that cannot be
/// a session's.
pub fn session_and_secret(
    id: &str,
    head: &SeatHead,
    query: Option<&str>,
) -> Result<(SessionId, SeatSecret), Error> {
    let session = SessionId::parse(id).ok();
    let presented =
        seat_secret(head, query, session.as_ref())?.ok_or(Error::SessionSecretRequired)?;
    Ok((session.ok_or(Error::SessionUnknown)?, presented))
}

/// The seat cookie handing the watch page `secret` for `session`.
pub fn seat_cookie(
    state: &AppState,
    session: &SessionId,
    secret: &SessionSecret,
) -> axum_extra::extract::cookie::Cookie<'static> {
    axum_extra::extract::cookie::Cookie::build((
        SEAT_COOKIE,
        format!("{session}.{}", secret.expose()),
    ))
    .path("/")
    .http_only(true)
    .same_site(axum_extra::extract::cookie::SameSite::Strict)
    .secure(state.config.secure_cookies())
    .build()
}

/// The language a viewer page is rendered in: the picker's `usher_lang` cookie, else the best match of
/// `Accept-Language`, else English (`crate::i18n`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageLanguage(pub &'static str);

impl<S: Send + Sync> FromRequestParts<S> for PageLanguage
where
    AppState: FromRef<S>,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Error> {
        let state = AppState::from_ref(state);
        let jar = CookieJar::from_headers(&parts.headers);
        let cookie = jar.get(crate::i18n::LANG_COOKIE).map(|c| c.value());
        let accept = parts
            .headers
            .get(axum::http::header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok());
        Ok(PageLanguage(
            state.pages.catalog().negotiate(cookie, accept),
        ))
    }
}

impl PageLanguage {
    /// What a viewer page's template and script need to speak this language: `lang`, the picker's
    /// `languages`, and `l10n_json` for the script (`#usher-l10n`: the language's messages, after
    /// English's so a missing one falls back).
    pub fn context(self) -> minijinja::Value {
        let languages: Vec<_> = crate::i18n::LANGUAGES
            .iter()
            .map(|l| minijinja::context! { code => l.code, name => l.name, selected => l.code == self.0 })
            .collect();
        let mut sources = vec![crate::i18n::LANGUAGES[0].source];
        if let Some(lang) = crate::i18n::language(self.0).filter(|l| l.code != "en") {
            sources.push(lang.source);
        }
        let l10n = serde_json::json!({
            "lang": self.0,
            "languages": crate::i18n::LANGUAGES.iter().map(|l| l.code).collect::<Vec<_>>(),
            "sources": sources,
        });
        // safe inside <script type="application/json">: no "<" can close the element
        let l10n_json = serde_json::to_string(&l10n)
            .unwrap_or_default()
            .replace('<', "\\u003c");
        minijinja::context! { lang => self.0, languages => languages, l10n_json => l10n_json }
    }
}
