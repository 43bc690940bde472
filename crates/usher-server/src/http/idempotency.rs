//! `Idempotency-Key` on the POSTs of the ticket and admin API (`service::idempotency` says what it
//! means): this middleware authenticates the caller (a request that fails passes through to be refused
//! by its handler, so nobody without a valid key or session writes a record), reads the whole body
//! (within `http.max_body_bytes`), asks the service whether to run the request or replay an answer, and
//! hands the answer it ran to the service to keep. The caller travels on in the request's extensions, so
//! the handler neither looks the key up again nor counts it twice against its rate limit. Requests
//! without the header, the viewers' public routes and the console's forms pass through untouched.

use crate::http::auth::{CsrfCheck, authenticate};
use crate::service::idempotency::{self, Answer, Begin};
use crate::service::{Error, Principal};
use crate::state::AppState;
use axum::body::{Body, HttpBody as _, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The request header.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// The header a replayed answer carries (`true`).
pub const REPLAYED: &str = "idempotent-replayed";
/// The answer headers a replay repeats (with tus's, for the upload creation).
const KEPT_HEADERS: [&str; 7] = [
    "content-type",
    "location",
    "retry-after",
    "tus-resumable",
    "upload-offset",
    "upload-length",
    "upload-expires",
];

/// Whether `method path` is a POST of the ticket or admin API (not a viewer's playback or TV call).
fn applies(method: &Method, path: &str) -> bool {
    method == Method::POST
        && path.starts_with("/api/v1/")
        && !path.starts_with("/api/v1/playback")
        && !path.starts_with("/api/v1/tv/")
}

/// The middleware (see the module).
pub async fn remember(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if !applies(req.method(), req.uri().path()) {
        return next.run(req).await;
    }
    let Some(key) = req.headers().get(IDEMPOTENCY_KEY) else {
        return next.run(req).await;
    };
    let key = match key.to_str() {
        Ok(k) => k.to_owned(),
        Err(_) => {
            return Error::InvalidRequest(
                "Idempotency-Key: 1 to 255 visible ASCII characters".into(),
            )
            .into_response();
        }
    };
    if let Err(e) = idempotency::check_key(&key) {
        return e.into_response();
    }
    let (mut parts, body) = req.into_parts();
    // a caller the route would refuse gets its refusal from the route, with nothing remembered
    let Ok(caller) = authenticate(&mut parts, &state, CsrfCheck::Header).await else {
        return next.run(Request::from_parts(parts, body)).await;
    };
    let scope = match &caller.principal {
        Principal::Key(k) => format!("key:{}", k.id),
        Principal::User(u) => format!("user:{}", u.name),
    };
    parts.extensions.insert(caller);
    let bytes = match to_bytes(body, state.config.http.max_body_bytes).await {
        Ok(b) => b,
        Err(_) => return Error::PayloadTooLarge.into_response(),
    };
    let target = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path().to_owned(), |p| p.as_str().to_owned());
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let fingerprint =
        idempotency::fingerprint(parts.method.as_str(), &target, content_type, &bytes);
    let claim = match idempotency::begin(&state, &scope, &key, fingerprint).await {
        Ok(Begin::Run(claim)) => claim,
        Ok(Begin::Replay(answer)) => return replay(answer),
        Err(e) => return e.into_response(),
    };
    let res = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    let (parts, body) = res.into_parts();
    if body
        .size_hint()
        .upper()
        .is_none_or(|n| n > idempotency::MAX_ANSWER_BYTES as u64)
    {
        // a streamed or very large answer (no answer of the API is): sent as it is, not remembered
        idempotency::forget(&state, claim).await;
        return Response::from_parts(parts, body);
    }
    let body = match to_bytes(body, idempotency::MAX_ANSWER_BYTES).await {
        Ok(b) => b,
        Err(e) => {
            idempotency::forget(&state, claim).await;
            return Error::Internal(format!("reading an answer to remember: {e}")).into_response();
        }
    };
    let answer = Answer {
        status: parts.status.as_u16(),
        headers: KEPT_HEADERS
            .iter()
            .filter_map(|name| {
                parts
                    .headers
                    .get(*name)
                    .and_then(|v| v.to_str().ok())
                    .map(|v| ((*name).to_owned(), v.to_owned()))
            })
            .collect(),
        body: body.to_vec(),
    };
    idempotency::finish(&state, claim, &answer).await;
    Response::from_parts(parts, Body::from(body))
}

/// The first request's answer again.
fn replay(answer: Answer) -> Response {
    let status = axum::http::StatusCode::from_u16(answer.status)
        .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR);
    let mut res = (status, answer.body).into_response();
    for (name, value) in answer.headers {
        if let (Ok(n), Ok(v)) = (
            HeaderName::try_from(name.as_str()),
            HeaderValue::from_str(&value),
        ) {
            res.headers_mut().insert(n, v);
        }
    }
    res.headers_mut()
        .insert(REPLAYED, HeaderValue::from_static("true"));
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_ticket_and_admin_apis_posts_are_remembered() {
        assert!(applies(&Method::POST, "/api/v1/tickets"));
        assert!(applies(&Method::POST, "/api/v1/tickets/batch"));
        assert!(applies(&Method::POST, "/api/v1/api-keys"));
        assert!(!applies(&Method::PUT, "/api/v1/shows/demo"));
        assert!(!applies(&Method::POST, "/api/v1/playback"));
        assert!(!applies(&Method::POST, "/api/v1/playback/s_1/heartbeat"));
        assert!(!applies(&Method::POST, "/admin/shows/demo/published"));
    }
}
