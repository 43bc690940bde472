//! The API document: an OpenAPI 3.1 description of every route, generated from the code.
//!
//! Each handler carries a `#[utoipa::path]` attribute, and the HTTP router registers handlers only through
//! `utoipa_axum::routes!`, which takes the path and method from that attribute: a route exists only if it
//! is documented. The router hands the generated document to [`finish`], which adds what is the same for every route instead of repeating it
//! on each handler: the bearer scheme, the answers every extractor can give (400 for a bad body, path or
//! query, 401/403 for a missing key or scope, 413, 415, 500, 503) and the RFC 9457 problem schema of every
//! error answer, narrowed to the `code` values that the answer's description names.
//!
//! Served as JSON at `GET /api/v1/openapi.json`; [`reference`] renders it as the page at `GET /api/v1/docs`.

pub mod reference;

use std::sync::Arc;

use serde_json::{Map, Value, json};
use utoipa::OpenApi;

use crate::http::error::{CODES, retry_after_codes};

/// The document's fixed parts; paths and their schemas come from the handlers.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Usher API",
        description = "Usher's pay-per-view API: the ticket site registers and revokes tickets, admins manage \
shows, sessions, the CDN pool, the GeoIP database and API keys, and the viewer's player is admitted, \
heartbeats and leaves. JSON over HTTP; errors are RFC 9457 `application/problem+json` with a stable `code`. \
The ticket site and admins send `Authorization: Bearer <api key>`; keys carry the scopes `tickets` and \
`admin` (which allows everything).",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    tags(
        (name = "tickets", description = "The ticket site: register, read and revoke tickets, erase a ticket's personal data (scope `tickets`)."),
        (name = "shows", description = "Content and schedule (scope `admin`)."),
        (name = "sessions", description = "Who is watching (scope `admin`)."),
        (name = "api-keys", description = "API keys (scope `admin`); a new key is shown once."),
        (name = "cdns", description = "The CDN pool (scope `admin`); signing keys are write-only."),
        (name = "geoip", description = "The GeoIP database (scope `admin`)."),
        (name = "uploads", description = "Resumable uploads of on-demand video (tus 1.0: core, creation, termination) and the packaging jobs they start (scope `admin`)."),
        (name = "admin-users", description = "Console users and their roles (scope `admin`); a password Usher makes is shown once."),
        (name = "audit", description = "The audit log of every change (scope `admin`), as JSON or CSV."),
        (name = "webhooks", description = "Endpoints the ticket site receives signed events at, and their delivery log (scope `admin`); a signing secret is shown once."),
        (name = "playback", description = "The viewer's player: admit, heartbeat, leave."),
        (name = "watch", description = "The watch link and the player page."),
        (name = "tv", description = "TV sign-in codes (RFC 8628 device authorization): the TV page's code and poll, the phone's approval."),
        (name = "media", description = "Playlists, steering manifests and media files of a session."),
        (name = "ops", description = "Operations: liveness, readiness, metrics, backups."),
        (name = "docs", description = "This document and its reference page."),
    ),
    components(schemas(crate::http::views::playback::Grant, usher_core::ids::DeviceId))
)]
pub struct ApiDoc;

/// The finished document, as the router serves it (an extension of every request).
#[derive(Debug, Clone)]
pub struct Document(pub Arc<Value>);

/// The HTTP methods an OpenAPI path item may hold.
pub const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Answers every operation of a kind can give, by status: the codes and a description.
struct Generic {
    status: &'static str,
    codes: &'static [&'static str],
    text: &'static str,
}

const BODY_ANSWERS: &[Generic] = &[
    Generic {
        status: "400",
        codes: &["invalid_request"],
        text: "`invalid_request`: the body is not valid (the detail names the first bad field).",
    },
    Generic {
        status: "413",
        codes: &["payload_too_large"],
        text: "`payload_too_large`: the body is larger than `http.max_body_bytes`.",
    },
    Generic {
        status: "415",
        codes: &["unsupported_media_type"],
        text: "`unsupported_media_type`: the body must be `application/json`.",
    },
];

const PATH_ANSWERS: &[Generic] = &[Generic {
    status: "400",
    codes: &["invalid_request"],
    text: "`invalid_request`: the path is not valid (bad percent-encoding).",
}];

const QUERY_ANSWERS: &[Generic] = &[Generic {
    status: "400",
    codes: &["invalid_request"],
    text: "`invalid_request`: the query string is not valid.",
}];

const KEY_ANSWERS: &[Generic] = &[
    Generic {
        status: "401",
        codes: &["unauthorized"],
        text: "`unauthorized`: no valid API key.",
    },
    Generic {
        status: "403",
        codes: &["forbidden", "password_change_required"],
        text: "`forbidden`: the API key lacks the scope. `password_change_required`: a console session whose \
user must change the one-time password first.",
    },
    Generic {
        status: "429",
        codes: &["rate_limited"],
        text: "`rate_limited`: this API key made more requests than `rate_limits.api_key_requests` allows; retry \
after `Retry-After` seconds.",
    },
    Generic {
        status: "503",
        codes: &["store_unavailable"],
        text: "`store_unavailable`: the store cannot be reached; retry after `Retry-After` seconds.",
    },
];

/// What a console session gets on a method that changes something (the JSON API checks `X-CSRF-Token`).
const UNSAFE_KEY_ANSWERS: &[Generic] = &[Generic {
    status: "403",
    codes: &["csrf_invalid"],
    text: "`csrf_invalid`: a console session's request without that session's `X-CSRF-Token`.",
}];

/// What the `Idempotency-Key` of a POST of the ticket or admin API adds (`http/idempotency.rs`).
const IDEMPOTENT_ANSWERS: &[Generic] = &[
    Generic {
        status: "400",
        codes: &["invalid_request"],
        text: "`invalid_request`: `Idempotency-Key` is not 1 to 255 visible ASCII characters.",
    },
    Generic {
        status: "409",
        codes: &["idempotency_in_progress"],
        text: "`idempotency_in_progress`: the first request with this `Idempotency-Key` has not answered \
within 10 seconds; retry after `Retry-After` seconds.",
    },
    Generic {
        status: "422",
        codes: &["idempotency_key_reused"],
        text: "`idempotency_key_reused`: this `Idempotency-Key` was used by this caller for another request \
(method, path, query, content type or body).",
    },
];

/// The optional `Idempotency-Key` header of a POST of the ticket or admin API.
fn idempotency_key_parameter() -> Value {
    json!({
        "name": "Idempotency-Key",
        "in": "header",
        "required": false,
        "description": "Makes the POST safe to retry: the first request with this key runs, and for 24 hours a \
    request of the same caller with the same key and the same method, path, query, content type and body gets \
    its answer again (with `Idempotent-Replayed: true`) instead of running twice; twins sent while it runs wait \
    for its answer. Answers a retry may cure (5xx, 401, 403, 429) are not kept. 1 to 255 visible ASCII \
    characters; a UUID per logical operation is a good choice.",
        "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"},
    })
}

const ANY_ANSWERS: &[Generic] = &[
    Generic {
        status: "500",
        codes: &["internal"],
        text: "`internal`: a bug on our side; the body carries no detail.",
    },
    Generic {
        status: "503",
        codes: &["timeout"],
        text: "`timeout`: the request took longer than `http.request_timeout_s`.",
    },
];

fn problem_schema() -> Value {
    json!({
        "type": "object",
        "description": "An RFC 9457 problem: every error answer, as `application/problem+json`. `code` is the \
    stable reason to act on; some codes add members (`ticket_id`, `starts_at`, `ended_at`, `retry_after_s`, \
    `superseded_by`, `superseded_at`, `country`, `error`, `interval`, `field`). 5xx answers carry no internal detail.",
        "required": ["type", "title", "status", "code"],
        "properties": {
            "type": {"type": "string", "description": "`urn:usher:problem:<code>`.", "pattern": "^urn:usher:problem:[a-z_]+$"},
            "title": {"type": "string", "description": "What happened, for humans."},
            "status": {"type": "integer", "description": "The HTTP status.", "minimum": 400, "maximum": 599},
            "code": {"type": "string", "enum": CODES, "description": "The stable reason."},
            "detail": {"type": "string", "description": "Which field or value is wrong, when known."},
            "ticket_id": {"type": "string", "description": "`token_conflict`: the ticket registered with this token."},
            "starts_at": {"type": "string", "format": "date-time", "description": "`not_started`: when the window opens."},
            "ended_at": {"type": "string", "format": "date-time", "description": "`ended`: when the window closed."},
            "retry_after_s": {"type": "integer", "minimum": 0, "description": "`ticket_in_use`: seconds until a seat may free; `rate_limited`: seconds until the next attempt is allowed."},
            "superseded_by": {"type": "string", "description": "`superseded`: the device that took the seat."},
            "superseded_at": {"type": "string", "format": "date-time", "description": "`superseded`: when."},
            "country": {"type": ["string", "null"], "description": "`geo_blocked`: the country detected, if known."},
            "offset": {"type": "integer", "minimum": 0, "description": "`upload_offset_mismatch`: the offset the upload is at."},
            "error": {"type": "string", "enum": ["authorization_pending", "slow_down", "expired_token"], "description": "TV sign-in polls: the RFC 8628 error name (the same as `code`), for OAuth clients."},
            "interval": {"type": "integer", "minimum": 1, "description": "`authorization_pending`, `slow_down`: seconds to wait before the next poll."},
            "field": {"type": "string", "description": "`signing_option_invalid`, `signing_unmatchable`: the CDN `signing` option at fault."},
        },
    })
}

/// The codes named (in backquotes) by a description, in order, without repeats.
fn codes_in(text: &str) -> Vec<&'static str> {
    let mut out = Vec::new();
    for (i, part) in text.split('`').enumerate() {
        if i % 2 == 1
            && let Some(code) = CODES.iter().find(|c| **c == part)
            && !out.contains(code)
        {
            out.push(*code);
        }
    }
    out
}

fn header(description: &str, schema: Value) -> Value {
    json!({"description": description, "schema": schema})
}

/// Adds a generic answer to `responses`, or merges its codes into the answer already there.
fn add_answer(responses: &mut Map<String, Value>, g: &Generic) {
    let entry = responses
        .entry(g.status)
        .or_insert_with(|| json!({"description": ""}));
    let desc = entry["description"].as_str().unwrap_or_default().to_owned();
    let have = codes_in(&desc);
    if g.codes.iter().all(|c| have.contains(c)) {
        return;
    }
    let desc = if desc.is_empty() {
        g.text.to_owned()
    } else {
        format!("{desc}\n\n{}", g.text)
    };
    entry["description"] = Value::String(desc);
}

/// Gives every error answer its problem schema (narrowed to the codes its description names) and the
/// headers it carries.
fn describe_errors(responses: &mut Map<String, Value>) {
    for (status, answer) in responses.iter_mut() {
        let Ok(code) = status.parse::<u16>() else {
            continue;
        };
        let desc = answer["description"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let codes = codes_in(&desc);
        if code >= 400 && answer.get("content").is_none() {
            let mut narrowed = json!({
                "properties": {"status": {"const": code}},
            });
            if !codes.is_empty() {
                narrowed["properties"]["code"] = json!({"enum": codes});
            }
            answer["content"] = json!({
                "application/problem+json": {
                    "schema": {"allOf": [{"$ref": "#/components/schemas/Problem"}, narrowed]}
                }
            });
        }
        let headers = answer
            .as_object_mut()
            .map(|a| a.entry("headers").or_insert_with(|| json!({})));
        let Some(headers) = headers.and_then(Value::as_object_mut) else {
            continue;
        };
        let retry = retry_after_codes();
        if codes.iter().any(|c| retry.iter().any(|r| r.as_str() == *c)) {
            let named: Vec<String> = retry.iter().map(|c| format!("`{c}`")).collect();
            headers.insert(
                "Retry-After".into(),
                header(
                    &format!(
                        "Seconds to wait before trying again ({}).",
                        named.join(", ")
                    ),
                    json!({"type": "integer", "minimum": 0}),
                ),
            );
        }
        if codes.contains(&"unauthorized") {
            headers.insert(
                "WWW-Authenticate".into(),
                json!({"description": "`Bearer`.", "required": true, "schema": {"type": "string", "const": "Bearer"}}),
            );
        }
        if headers.is_empty()
            && let Some(a) = answer.as_object_mut()
        {
            a.remove("headers");
        }
    }
}

/// Completes the document the router's routes generated (see the module's documentation).
pub fn finish(api: utoipa::openapi::OpenApi) -> Document {
    Document(Arc::new(complete(
        serde_json::to_value(api).unwrap_or_default(),
    )))
}

fn complete(mut doc: Value) -> Value {
    doc["openapi"] = json!("3.1.0");
    doc["info"]["version"] = json!(env!("CARGO_PKG_VERSION"));
    let components = doc["components"].as_object_mut().map(std::mem::take);
    let mut components = components.unwrap_or_default();
    components
        .entry("schemas")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .map(|s| s.insert("Problem".into(), problem_schema()));
    components.insert(
        "securitySchemes".into(),
        json!({"bearer": {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key (`usher api-key create`, or `POST /api/v1/api-keys`). The scopes an operation \
names are the key scopes it needs: `tickets` (register, read, revoke tickets) or `admin` (everything; it also \
passes where `tickets` is named).",
        }}),
    );
    doc["components"] = Value::Object(components);
    let paths = doc["paths"].as_object_mut().map(std::mem::take);
    let mut fixed = Map::new();
    for (path, mut item) in paths.unwrap_or_default() {
        // axum writes a wildcard as `{*name}`; OpenAPI knows only `{name}`
        let path = path.replace("{*", "{");
        for method in METHODS {
            if let Some(op) = item.get_mut(method) {
                complete_operation(op, method);
            }
        }
        fixed.insert(path, item);
    }
    doc["paths"] = Value::Object(fixed);
    doc
}

fn complete_operation(op: &mut Value, method: &str) {
    let params = op["parameters"].as_array().cloned().unwrap_or_default();
    let in_path = params.iter().any(|p| p["in"] == "path");
    let in_query = params.iter().any(|p| p["in"] == "query");
    let json_body = op["requestBody"]["content"]
        .as_object()
        .is_some_and(|c| c.contains_key("application/json"));
    let keyed = op["security"]
        .as_array()
        .is_some_and(|s| s.iter().any(|r| r.get("bearer").is_some()));
    let mut responses = op["responses"].as_object().cloned().unwrap_or_default();
    let mut generic: Vec<&Generic> = Vec::new();
    if json_body {
        generic.extend(BODY_ANSWERS);
    }
    if in_path {
        generic.extend(PATH_ANSWERS);
    }
    if in_query {
        generic.extend(QUERY_ANSWERS);
    }
    if keyed {
        generic.extend(KEY_ANSWERS);
        if !matches!(method, "get" | "head" | "options") {
            generic.extend(UNSAFE_KEY_ANSWERS);
        }
        if method == "post" {
            generic.extend(IDEMPOTENT_ANSWERS);
            let mut params = params;
            params.push(idempotency_key_parameter());
            op["parameters"] = Value::Array(params);
        }
    }
    generic.extend(ANY_ANSWERS);
    for g in generic {
        add_answer(&mut responses, g);
    }
    describe_errors(&mut responses);
    op["responses"] = Value::Object(responses);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_found_in_descriptions() {
        assert_eq!(
            codes_in(
                "`show_unknown`: no show; `x` is not a code; `show_unknown` again, `forbidden`"
            ),
            vec!["show_unknown", "forbidden"]
        );
    }
}
