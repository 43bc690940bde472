//! Malformed and hostile input against every route (DESIGN.md "Errors": "Malformed input is a 4xx that
//! changes nothing").
//!
//! The catalogue is data: one [`Row`] per request — method, request target, headers and body bytes, all
//! sent verbatim over a raw HTTP/1.1 connection (so `..`, percent-escapes and invalid UTF-8 reach the
//! server exactly as written) — with the exact answer it must get: `application/problem+json` with a status
//! and a `code`, or, for the watch link, the HTML refusal page. No row may get a 5xx, and the store must be
//! the same after the whole catalogue as before it. To add a case, add a row to one of the tables below.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// The server's body limit in the test configuration (support::config): 4 MiB.
const BODY_LIMIT: usize = 4 * 1024 * 1024;
/// The body limit of the routes anyone may call (`http.max_public_body_bytes`, by default 4 KiB).
const PUBLIC_BODY_LIMIT: usize = 4096;

/// What a row must get back.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Expect {
    /// Not set yet: a row without an expectation is a mistake in the catalogue.
    Unset,
    /// `application/problem+json` with this status and `code` (and `WWW-Authenticate: Bearer` on
    /// `unauthorized`).
    Problem(u16, &'static str),
    /// The watch page's HTML refusal with this status and refusal code, no cookie, nothing reflected.
    Page(u16, &'static str),
}

const BAD: Expect = Expect::Problem(400, "invalid_request");
const UNAUTHORIZED: Expect = Expect::Problem(401, "unauthorized");
const FORBIDDEN: Expect = Expect::Problem(403, "forbidden");
const NOT_FOUND: Expect = Expect::Problem(404, "not_found");
const METHOD: Expect = Expect::Problem(405, "method_not_allowed");
const TOO_LARGE: Expect = Expect::Problem(413, "payload_too_large");
const MEDIA_TYPE: Expect = Expect::Problem(415, "unsupported_media_type");
const TICKET_UNKNOWN: Expect = Expect::Problem(404, "ticket_unknown");
const SHOW_UNKNOWN: Expect = Expect::Problem(404, "show_unknown");
const SESSION_UNKNOWN: Expect = Expect::Problem(404, "session_unknown");
/// A call that controls a session, without its secret: refused before anything is looked up.
const SECRET_REQUIRED: Expect = Expect::Problem(401, "session_secret_required");
const API_KEY_UNKNOWN: Expect = Expect::Problem(404, "api_key_unknown");
const GRANT_REFUSED: Expect = Expect::Problem(403, "grant_refused");
const MEDIA_UNKNOWN: Expect = Expect::Problem(404, "media_unknown");
const NO_TICKET: Expect = Expect::Problem(401, "no_ticket");
const REFUSED_PAGE: Expect = Expect::Page(404, "ticket_unknown");

/// One catalogue row: a request sent byte for byte, and the answer it must get.
struct Row {
    name: String,
    method: &'static str,
    target: String,
    headers: Vec<(&'static str, Vec<u8>)>,
    body: Option<Vec<u8>>,
    expect: Expect,
}

impl Row {
    fn new(name: impl Into<String>, method: &'static str, target: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            method,
            target: target.into(),
            headers: Vec::new(),
            body: None,
            expect: Expect::Unset,
        }
    }

    fn header(mut self, name: &'static str, value: impl Into<Vec<u8>>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// `Authorization: Bearer <key>` when a key is given.
    fn key(self, key: Option<impl AsRef<str>>) -> Self {
        match key {
            Some(k) => self.header("authorization", format!("Bearer {}", k.as_ref())),
            None => self,
        }
    }

    fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// A body sent as `application/json` (whatever its bytes).
    fn json(self, body: impl Into<Vec<u8>>) -> Self {
        self.header("content-type", "application/json").body(body)
    }

    fn expect(mut self, expect: Expect) -> Self {
        self.expect = expect;
        self
    }
}

/// The records the catalogue aims at, registered before it runs.
struct Ctx {
    show: String,
    ticket: String,
    token: String,
    admin: String,
    tickets: String,
    admin_key_id: String,
}

fn bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).expect("serializable")
}

fn with(mut v: Value, field: &str, value: Value) -> Value {
    v[field] = value;
    v
}

fn without(mut v: Value, field: &str) -> Value {
    v.as_object_mut().expect("object").remove(field);
    v
}

/// Percent-encodes everything but unreserved characters, for a path segment.
fn pct(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A valid show for an id that does not exist yet: accepting any row that carries it would add a show.
fn ghost_show() -> Value {
    json!({
        "title": "Ghost",
        "starts_at": "2030-01-01T20:00:00Z",
        "ends_at": "2030-01-01T22:00:00Z",
        "stream_path": "demo",
    })
}

const GHOST: &str = "ghost";

/// Ticket tokens no ticket site may choose: 16–128 of `A-Z a-z 0-9 - _ . ~` only.
fn hostile_tokens() -> Vec<(&'static str, String)> {
    vec![
        ("empty token", String::new()),
        ("5-character token", "short".into()),
        ("15-character token", "abcdefghijklmno".into()),
        ("129-character token", "a".repeat(129)),
        ("10 kB token", "a".repeat(10_000)),
        (
            "non-ASCII token",
            "ticket-\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}".into(),
        ),
        (
            "emoji token",
            "ticket-\u{1f3ac}\u{1f3ac}\u{1f3ac}\u{1f3ac}\u{1f3ac}".into(),
        ),
        ("token with NUL", "abcdefghijklmnop\u{0}".into()),
        ("token with a newline", "abcdefgh\nijklmnop".into()),
        (
            "token with an escape sequence",
            "\u{1b}[31mabcdefghijklmnop".into(),
        ),
        (
            "token with CRLF header injection",
            "abcdefghijklmnop\r\nSet-Cookie: x=y".into(),
        ),
        ("token with spaces", "abcdefgh ijklmnop".into()),
        ("token with a slash", "abcdefgh/ijklmnop".into()),
        ("token with ../", "../../../../etc/passwd".into()),
        (
            "token with backslashes",
            "..\\..\\..\\windows\\win.ini".into(),
        ),
        (
            "percent-encoded token",
            "%2e%2e%2f%2e%2e%2fetc%2fpasswd".into(),
        ),
        ("HTML token", "<script>alert(1)</script>".into()),
        ("token with a quote", "abcdefgh\"ijklmnop".into()),
        (
            "token with cookie attributes",
            "abcdefghijklmnop; Path=/; Domain=evil.example".into(),
        ),
    ]
}

/// Path segments that name nothing; `true` when the segment is not UTF-8 once decoded.
fn hostile_ids() -> Vec<(&'static str, String, bool)> {
    vec![
        ("garbage id", "nope".into(), false),
        ("10 kB id", "x".repeat(10_000), false),
        (
            "non-ASCII id",
            "%C3%A9t%C3%A9-%E2%9C%93-%F0%9F%8E%AC".into(),
            false,
        ),
        (
            "percent-encoded control characters",
            "%00%01%07%0A%0D%1B%7F".into(),
            false,
        ),
        (
            "percent-encoded ../ sequences",
            "..%2F..%2F..%2Fetc%2Fpasswd".into(),
            false,
        ),
        (
            "percent-encoded ..\\ sequences",
            "..%5C..%5Cwindows%5Cwin.ini".into(),
            false,
        ),
        ("literal ..", "..".into(), false),
        ("percent-encoded ..", "%2E%2E".into(), false),
        ("space and quotes", "a%20b%22c%27d".into(), false),
        ("malformed percent-escapes", "%ZZ%".into(), false),
        (
            "HTML id",
            "%3Cscript%3Ealert(1)%3C%2Fscript%3E".into(),
            false,
        ),
        ("invalid UTF-8 id", "%FF%FE%FD".into(), true),
    ]
}

/// Every route behind an API key, with a request that would succeed — and change the store, for the
/// writes — with the right key; `true` when it needs the admin scope.
fn keyed_routes(c: &Ctx) -> Vec<(&'static str, String, Option<Value>, bool)> {
    vec![
        (
            "POST",
            "/api/v1/tickets".into(),
            Some(json!({"show_id": c.show, "external_ref": "by-an-intruder"})),
            false,
        ),
        (
            "POST",
            "/api/v1/tickets/batch".into(),
            Some(json!({"tickets": [{"show_id": c.show}]})),
            false,
        ),
        ("GET", format!("/api/v1/tickets/{}", c.ticket), None, false),
        (
            "POST",
            format!("/api/v1/tickets/{}/revoke", c.ticket),
            None,
            false,
        ),
        (
            "DELETE",
            format!("/api/v1/tickets/{}/personal-data", c.ticket),
            None,
            false,
        ),
        ("GET", "/api/v1/shows".into(), None, true),
        (
            "PUT",
            format!("/api/v1/shows/{GHOST}"),
            Some(ghost_show()),
            true,
        ),
        ("GET", format!("/api/v1/shows/{}", c.show), None, true),
        ("DELETE", format!("/api/v1/shows/{}", c.show), None, true),
        ("GET", "/api/v1/sessions".into(), None, true),
        (
            "DELETE",
            format!("/api/v1/sessions/s_{}", "0".repeat(32)),
            None,
            true,
        ),
        ("GET", "/api/v1/api-keys".into(), None, true),
        (
            "POST",
            "/api/v1/api-keys".into(),
            Some(json!({"name": "intruder", "scopes": ["admin"]})),
            true,
        ),
        (
            "DELETE",
            format!("/api/v1/api-keys/{}", c.admin_key_id),
            None,
            true,
        ),
    ]
}

/// Missing, foreign, garbage and unknown credentials on every keyed route (401), and the tickets key on
/// every admin route (403).
fn auth_rows(c: &Ctx, rows: &mut Vec<Row>) {
    let mut admin_bad_byte = b"Bearer ".to_vec();
    admin_bad_byte.extend_from_slice(c.admin.as_bytes());
    admin_bad_byte.push(0xff);
    let creds: Vec<(&str, Option<Vec<u8>>)> = vec![
        ("no Authorization", None),
        ("empty Authorization", Some(Vec::new())),
        ("Basic scheme", Some(b"Basic YWRtaW46YWRtaW4=".to_vec())),
        (
            "admin key under the Token scheme",
            Some(format!("Token {}", c.admin).into_bytes()),
        ),
        (
            "admin key without a scheme",
            Some(c.admin.clone().into_bytes()),
        ),
        ("Bearer without a key", Some(b"Bearer".to_vec())),
        ("garbage bearer", Some(b"Bearer garbage".to_vec())),
        (
            "10 kB bearer",
            Some(format!("Bearer {}", "A".repeat(10_000)).into_bytes()),
        ),
        (
            "well-formed unknown key",
            Some(format!("Bearer usher_k_{}_{}", "0".repeat(16), "A".repeat(43)).into_bytes()),
        ),
        (
            "admin key id with a wrong secret",
            Some(format!("Bearer usher_{}_{}", c.admin_key_id, "A".repeat(43)).into_bytes()),
        ),
        (
            "admin key with a character more",
            Some(format!("Bearer {}x", c.admin).into_bytes()),
        ),
        (
            "admin key with a character less",
            Some(format!("Bearer {}", &c.admin[..c.admin.len() - 1]).into_bytes()),
        ),
        (
            "admin key upper-cased",
            Some(format!("Bearer {}", c.admin.to_ascii_uppercase()).into_bytes()),
        ),
        (
            "admin key twice",
            Some(format!("Bearer {} {}", c.admin, c.admin).into_bytes()),
        ),
        ("admin key with a non-ASCII byte", Some(admin_bad_byte)),
    ];
    for (method, target, body, admin_only) in keyed_routes(c) {
        for (label, cred) in &creds {
            let mut row = Row::new(*label, method, target.clone());
            if let Some(cred) = cred {
                row = row.header("authorization", cred.clone());
            }
            if let Some(body) = &body {
                row = row.json(bytes(body));
            }
            rows.push(row.expect(UNAUTHORIZED));
        }
        if admin_only {
            let mut row = Row::new("tickets key on an admin route", method, target.clone())
                .key(Some(&c.tickets));
            if let Some(body) = &body {
                row = row.json(bytes(body));
            }
            rows.push(row.expect(FORBIDDEN));
        }
    }
    // authentication comes before the body: a bad body without a key is still a 401
    rows.push(
        Row::new("no key and malformed JSON", "POST", "/api/v1/tickets")
            .json("{")
            .expect(UNAUTHORIZED),
    );
    rows.push(
        Row::new("no key and an oversized body", "POST", "/api/v1/tickets")
            .json(vec![b'['; BODY_LIMIT + 1])
            .expect(UNAUTHORIZED),
    );
}

/// A route that reads a JSON body, with a body it would accept and one of a wrong member type.
struct JsonRoute {
    method: &'static str,
    target: String,
    key: Option<String>,
    valid: Value,
    wrong_type: Value,
    /// The admit call: it reads any content type and an empty body means "the ticket is in the cookie".
    admit: bool,
    /// A route anyone may call: its body limit is `http.max_public_body_bytes` (admit's too).
    public: bool,
}

/// The `{id}` routes of console users, CDNs, posters, publication, content keys, steering, the key
/// endpoint, the origin pull and the assets: a well-formed unknown id, ids that are not UTF-8 (400 from
/// the path extractor) and the other hostile ids, each with its exact answer.
fn more_id_rows(c: &Ctx, rows: &mut Vec<Row>) {
    let admin = Some(c.admin.as_str());
    let unknown_session = format!("s_{}", "0".repeat(32));
    let user_unknown = Expect::Problem(404, "user_unknown");
    let cdn_unknown = Expect::Problem(404, "cdn_unknown");
    let webhook_unknown = Expect::Problem(404, "webhook_unknown");
    // (method, target with `{}`, key, a well-formed unknown id and its answer, the answer for the other
    // hostile ids)
    type IdRoute<'a> = (
        &'static str,
        &'a str,
        Option<&'a str>,
        String,
        Expect,
        Expect,
    );
    let routes: Vec<IdRoute> = vec![
        (
            "DELETE",
            "/api/v1/admin-users/{}",
            admin,
            "no-such-user".into(),
            user_unknown,
            user_unknown,
        ),
        (
            "POST",
            "/api/v1/admin-users/{}/unlock",
            admin,
            "no-such-user".into(),
            user_unknown,
            user_unknown,
        ),
        (
            "GET",
            "/api/v1/cdns/{}",
            admin,
            "no-such-cdn".into(),
            cdn_unknown,
            cdn_unknown,
        ),
        (
            "DELETE",
            "/api/v1/cdns/{}",
            admin,
            "no-such-cdn".into(),
            cdn_unknown,
            cdn_unknown,
        ),
        (
            "GET",
            "/api/v1/webhooks/{}",
            admin,
            "wh_0000000000000000".into(),
            webhook_unknown,
            webhook_unknown,
        ),
        (
            "DELETE",
            "/api/v1/webhooks/{}",
            admin,
            "wh_0000000000000000".into(),
            webhook_unknown,
            webhook_unknown,
        ),
        (
            "POST",
            "/api/v1/webhooks/{}/secret",
            admin,
            "wh_0000000000000000".into(),
            webhook_unknown,
            webhook_unknown,
        ),
        (
            "GET",
            "/api/v1/webhooks/{}/deliveries",
            admin,
            "wh_0000000000000000".into(),
            webhook_unknown,
            webhook_unknown,
        ),
        (
            "POST",
            "/api/v1/webhooks/wh_0000000000000000/deliveries/{}/resend",
            admin,
            "dl_000000000000000000000000".into(),
            webhook_unknown,
            webhook_unknown,
        ),
        (
            "GET",
            "/api/v1/shows/{}/poster",
            admin,
            "no-such-show".into(),
            Expect::Problem(404, "poster_unknown"),
            SHOW_UNKNOWN,
        ),
        (
            "GET",
            "/hls/{}/steering.json",
            None,
            unknown_session,
            SECRET_REQUIRED,
            SECRET_REQUIRED,
        ),
        (
            "GET",
            "/keys/{}",
            None,
            "no-such-key".into(),
            Expect::Problem(403, "session_secret_required"),
            Expect::Problem(403, "session_secret_required"),
        ),
        (
            "GET",
            "/pull/demo/{}",
            None,
            "master.m3u8".into(),
            Expect::Problem(403, "origin_pull_refused"),
            MEDIA_UNKNOWN,
        ),
        (
            "GET",
            "/assets/{}",
            None,
            "no-such-asset.js".into(),
            NOT_FOUND,
            NOT_FOUND,
        ),
    ];
    for (method, template, key, unknown, unknown_expect, hostile_expect) in routes {
        rows.push(
            Row::new(
                "well-formed unknown id",
                method,
                template.replace("{}", &unknown),
            )
            .key(key)
            .expect(unknown_expect),
        );
        for (name, id, bad_utf8) in hostile_ids() {
            // "nope" is a well-formed id too
            let expect = match (bad_utf8, name) {
                (true, _) => BAD,
                (false, "garbage id") => unknown_expect,
                (false, _) => hostile_expect,
            };
            rows.push(
                Row::new(name, method, template.replace("{}", &id))
                    .key(key)
                    .expect(expect),
            );
        }
    }
    // the routes that read a body, with an id that is not UTF-8 and a body they would accept
    let bodies: Vec<(&'static str, &str, &'static str, Vec<u8>)> = vec![
        (
            "PUT",
            "/api/v1/shows/%FF/published",
            "application/json",
            bytes(&json!({"published": false})),
        ),
        (
            "PUT",
            "/api/v1/shows/%FF/poster",
            "image/png",
            b"\x89PNG\r\n\x1a\n".to_vec(),
        ),
        (
            "PATCH",
            "/api/v1/admin-users/%FF",
            "application/json",
            bytes(&json!({"role": "observer"})),
        ),
    ];
    for (method, target, ctype, body) in bodies {
        rows.push(
            Row::new("id that is not UTF-8", method, target)
                .key(admin)
                .header("content-type", ctype)
                .body(body)
                .expect(BAD),
        );
    }
    // well-formed unknown ids with bodies they would accept
    rows.push(
        Row::new(
            "unknown show",
            "PUT",
            "/api/v1/shows/no-such-show/published",
        )
        .key(admin)
        .json(bytes(&json!({"published": false})))
        .expect(SHOW_UNKNOWN),
    );
    rows.push(
        Row::new("unknown user", "PATCH", "/api/v1/admin-users/no-such-user")
            .key(admin)
            .json(bytes(&json!({"role": "observer"})))
            .expect(user_unknown),
    );
    rows.push(
        Row::new(
            "unknown webhook",
            "PATCH",
            "/api/v1/webhooks/wh_0000000000000000",
        )
        .key(admin)
        .json(bytes(&json!({"enabled": false})))
        .expect(Expect::Problem(404, "webhook_unknown")),
    );
    rows.push(
        Row::new("unknown CDN", "PATCH", "/api/v1/cdns/no-such-cdn")
            .key(admin)
            .json(bytes(&json!({"weight": 2})))
            .expect(cdn_unknown),
    );
}

/// Broken JSON bodies on every route that reads one.
fn body_rows(c: &Ctx, rows: &mut Vec<Row>) {
    let routes = vec![
        JsonRoute {
            method: "POST",
            target: "/api/v1/tickets".into(),
            key: Some(c.tickets.clone()),
            valid: json!({"show_id": c.show, "external_ref": "via-malformed"}),
            wrong_type: json!({"show_id": 42}),
            admit: false,
            public: false,
        },
        JsonRoute {
            method: "POST",
            target: "/api/v1/tickets/batch".into(),
            key: Some(c.tickets.clone()),
            valid: json!({"tickets": [{"show_id": c.show}]}),
            wrong_type: json!({"tickets": "all of them"}),
            admit: false,
            public: false,
        },
        JsonRoute {
            method: "PUT",
            target: format!("/api/v1/shows/{GHOST}"),
            key: Some(c.admin.clone()),
            valid: ghost_show(),
            wrong_type: with(ghost_show(), "max_devices", json!("3")),
            admit: false,
            public: false,
        },
        JsonRoute {
            method: "POST",
            target: "/api/v1/api-keys".into(),
            key: Some(c.admin.clone()),
            valid: json!({"name": "intruder", "scopes": ["admin"]}),
            wrong_type: json!({"name": 7, "scopes": ["admin"]}),
            admit: false,
            public: false,
        },
        JsonRoute {
            method: "PUT",
            target: format!("/api/v1/shows/{GHOST}/published"),
            key: Some(c.admin.clone()),
            valid: json!({"published": false}),
            wrong_type: json!({"published": "no"}),
            admit: false,
            public: false,
        },
        JsonRoute {
            method: "POST",
            target: "/api/v1/admin-users".into(),
            key: Some(c.admin.clone()),
            valid: json!({"name": "intruder", "role": "admin", "password": "a-long-enough-password"}),
            wrong_type: json!({"name": "intruder", "role": 1}),
            admit: false,
            public: false,
        },
        JsonRoute {
            method: "PATCH",
            target: format!("/api/v1/admin-users/{GHOST}"),
            key: Some(c.admin.clone()),
            valid: json!({"role": "observer"}),
            wrong_type: json!({"reset_password": "yes"}),
            admit: false,
            public: false,
        },
        JsonRoute {
            method: "PUT",
            target: format!("/api/v1/cdns/{GHOST}"),
            key: Some(c.admin.clone()),
            valid: json!({
                "name": "Ghost CDN",
                "base_url": "https://ghost.example",
                "signing": {"scheme": "nginx", "secret": "a-secret-of-some-length"},
            }),
            wrong_type: json!({"name": "Ghost CDN", "base_url": 7, "signing": {}}),
            admit: false,
            public: false,
        },
        JsonRoute {
            method: "PATCH",
            target: format!("/api/v1/cdns/{GHOST}"),
            key: Some(c.admin.clone()),
            valid: json!({"weight": 2}),
            wrong_type: json!({"weight": "heavy"}),
            admit: false,
            public: false,
        },
        JsonRoute {
            method: "POST",
            target: "/api/v1/cdns/origin/sign".into(),
            key: Some(c.admin.clone()),
            valid: json!({"path": "demo/master.m3u8"}),
            wrong_type: json!({"path": ["demo"]}),
            admit: false,
            public: false,
        },
        JsonRoute {
            method: "PUT",
            target: format!("/api/v1/content-keys/{GHOST}"),
            key: Some(c.admin.clone()),
            valid: json!({"stream_path": "demo", "key": "00112233445566778899aabbccddeeff"}),
            wrong_type: json!({"stream_path": "demo", "key": 16}),
            admit: false,
            public: false,
        },
        JsonRoute {
            method: "POST",
            target: "/api/v1/webhooks".into(),
            key: Some(c.admin.clone()),
            valid: json!({"url": "https://tickets.example/hooks", "events": ["ticket.revoked"]}),
            wrong_type: json!({"url": 7}),
            admit: false,
            public: false,
        },
        JsonRoute {
            method: "PATCH",
            target: "/api/v1/webhooks/wh_0000000000000000".into(),
            key: Some(c.admin.clone()),
            valid: json!({"enabled": false}),
            wrong_type: json!({"enabled": "no"}),
            admit: false,
            public: false,
        },
        JsonRoute {
            method: "POST",
            target: "/api/v1/playback".into(),
            key: None,
            // the real token: a body wrongly accepted would open a session
            valid: json!({"token": c.token}),
            wrong_type: json!({"token": 42}),
            admit: true,
            public: true,
        },
        // the TV sign-in calls: public, JSON only (a code that parsed would spend a failed lookup)
        JsonRoute {
            method: "POST",
            target: "/api/v1/tv/token".into(),
            key: None,
            valid: json!({"device_code": format!("BCDFGHJK.{}", "A".repeat(43))}),
            wrong_type: json!({"device_code": 42}),
            admit: false,
            public: true,
        },
        JsonRoute {
            method: "POST",
            target: "/api/v1/tv/activate".into(),
            key: None,
            valid: json!({"user_code": "BCDF-GHJK"}),
            wrong_type: json!({"user_code": ["BCDF-GHJK"]}),
            admit: false,
            public: true,
        },
    ];
    for r in routes {
        let valid = bytes(&r.valid);
        let (first_key, first_value) = r
            .valid
            .as_object()
            .and_then(|o| o.iter().next())
            .map(|(k, v)| (k.clone(), v.clone()))
            .expect("object body");
        let mut unknown = r.valid.clone();
        unknown["evil"] = json!(true);
        let mut duplicate = format!("{{{}:{},", json!(first_key), first_value).into_bytes();
        duplicate.extend_from_slice(&valid[1..]);
        let mut trailing_comma = valid[..valid.len() - 1].to_vec();
        trailing_comma.extend_from_slice(b",}");
        let mut trailing = valid.clone();
        trailing.extend_from_slice(b" garbage");
        let mut twice = valid.clone();
        twice.extend_from_slice(&valid);
        let mut bad_utf8_string = format!("{{{}:\"", json!(first_key)).into_bytes();
        bad_utf8_string.extend_from_slice(b"\xff\xfe\xfd\"}");
        let mut bad_utf8_outside = b"\xff".to_vec();
        bad_utf8_outside.extend_from_slice(&valid);
        let mut nul_in_string = format!("{{{}:\"abc", json!(first_key)).into_bytes();
        nul_in_string.extend_from_slice(b"\0def\"}");
        let utf16: Vec<u8> = String::from_utf8(valid.clone())
            .expect("utf-8")
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        let mut oversized = b"{\"pad\":\"".to_vec();
        oversized.resize(BODY_LIMIT + 8, b'a');
        oversized.extend_from_slice(b"\"}");
        let broken: Vec<(&str, Vec<u8>)> = vec![
            ("malformed JSON", b"{\"a\" \"b\"}".to_vec()),
            ("not JSON at all", b"hello".to_vec()),
            ("truncated JSON", valid[..valid.len() / 2].to_vec()),
            ("single-quoted JSON", b"{'a': 'b'}".to_vec()),
            ("trailing comma", trailing_comma),
            (
                "array instead of object",
                format!("[{}]", r.valid).into_bytes(),
            ),
            ("empty array", b"[]".to_vec()),
            // serde fills a struct from an array of its fields in order; schemathesis found
            // `PATCH /api/v1/cdns/origin` taking `[null, null]` as an empty change
            ("array of nulls", b"[null, null]".to_vec()),
            ("string instead of object", b"\"a string\"".to_vec()),
            ("number instead of object", b"42".to_vec()),
            ("null instead of object", b"null".to_vec()),
            ("member of the wrong type", bytes(&r.wrong_type)),
            ("unknown field", bytes(&unknown)),
            ("duplicate field", duplicate),
            ("trailing garbage", trailing),
            ("two JSON documents", twice),
            ("10,000 nested arrays", vec![b'['; 10_000]),
            ("10,000 nested objects", b"{\"a\":".repeat(10_000)),
            (
                "number out of range",
                format!("{{{}:1e400}}", json!(first_key)).into_bytes(),
            ),
            (
                "lone surrogate escape",
                format!("{{{}:\"\\ud800\"}}", json!(first_key)).into_bytes(),
            ),
            ("invalid UTF-8 in a string", bad_utf8_string),
            ("invalid UTF-8 before the JSON", bad_utf8_outside),
            ("raw NUL in a string", nul_in_string),
            ("UTF-16 body", utf16),
        ];
        let base = |name: &str| {
            Row::new(
                format!("{name} (on {} {})", r.method, r.target),
                r.method,
                r.target.clone(),
            )
            .key(r.key.as_deref())
        };
        let limit = if r.public {
            PUBLIC_BODY_LIMIT
        } else {
            BODY_LIMIT
        };
        for (name, body) in broken {
            // a public route refuses a body over its few KiB before reading it
            let expect = if body.len() > limit { TOO_LARGE } else { BAD };
            rows.push(base(name).json(body).expect(expect));
        }
        rows.push(base("oversized body").json(oversized).expect(TOO_LARGE));
        let empty = if r.admit { NO_TICKET } else { BAD };
        rows.push(base("empty JSON body").json(Vec::new()).expect(empty));
        rows.push(
            base("whitespace-only JSON body")
                .json(" \n\t ")
                .expect(empty),
        );
        let empty_untyped = if r.admit { NO_TICKET } else { MEDIA_TYPE };
        rows.push(
            base("empty body without content type")
                .body(Vec::new())
                .expect(empty_untyped),
        );
        {
            // with the real token a body wrongly read would admit: admit takes only JSON bodies too
            let typed: Vec<(&str, Vec<u8>)> = vec![
                ("text/plain", b"text/plain".to_vec()),
                (
                    "form content type",
                    b"application/x-www-form-urlencoded".to_vec(),
                ),
                (
                    "multipart content type",
                    b"multipart/form-data; boundary=x".to_vec(),
                ),
                ("application/jsonp", b"application/jsonp".to_vec()),
                ("application/json-seq", b"application/json-seq".to_vec()),
                ("text/json", b"text/json".to_vec()),
                (
                    "content type with a non-ASCII byte",
                    b"application/json\xff".to_vec(),
                ),
                ("empty content type", Vec::new()),
            ];
            for (name, ctype) in typed {
                rows.push(
                    base(name)
                        .header("content-type", ctype)
                        .body(valid.clone())
                        .expect(MEDIA_TYPE),
                );
            }
            rows.push(
                base("valid JSON without content type")
                    .body(valid.clone())
                    .expect(MEDIA_TYPE),
            );
        }
    }
}

/// Unknown and hostile ids on every `{id}` route.
fn id_rows(c: &Ctx, rows: &mut Vec<Row>) {
    let admin = Some(c.admin.as_str());
    let tickets = Some(c.tickets.as_str());
    let unknown_session = format!("s_{}", "0".repeat(32));
    let unknown_ticket = format!("t_{}", "0".repeat(24));
    let unknown_key = format!("k_{}", "0".repeat(16));
    // (method, target with `{}` for the id, key, well-formed unknown id, answer for an unknown id)
    let routes: Vec<(&'static str, &str, Option<&str>, String, Expect)> = vec![
        (
            "GET",
            "/api/v1/tickets/{}",
            tickets,
            unknown_ticket.clone(),
            TICKET_UNKNOWN,
        ),
        (
            "POST",
            "/api/v1/tickets/{}/revoke",
            tickets,
            unknown_ticket.clone(),
            TICKET_UNKNOWN,
        ),
        (
            "DELETE",
            "/api/v1/tickets/{}/personal-data",
            tickets,
            unknown_ticket,
            TICKET_UNKNOWN,
        ),
        (
            "GET",
            "/api/v1/shows/{}",
            admin,
            "no-such-show".into(),
            SHOW_UNKNOWN,
        ),
        (
            "DELETE",
            "/api/v1/shows/{}",
            admin,
            "no-such-show".into(),
            SHOW_UNKNOWN,
        ),
        (
            "DELETE",
            "/api/v1/sessions/{}",
            admin,
            unknown_session.clone(),
            SESSION_UNKNOWN,
        ),
        (
            "DELETE",
            "/api/v1/api-keys/{}",
            admin,
            unknown_key,
            API_KEY_UNKNOWN,
        ),
        (
            "POST",
            "/api/v1/playback/{}/heartbeat",
            None,
            unknown_session.clone(),
            SECRET_REQUIRED,
        ),
        (
            "DELETE",
            "/api/v1/playback/{}",
            None,
            unknown_session.clone(),
            SECRET_REQUIRED,
        ),
        (
            "POST",
            "/api/v1/playback/{}/leave",
            None,
            unknown_session.clone(),
            SECRET_REQUIRED,
        ),
        // the calls that control a session ask for its secret before anything else, so a caller without
        // one learns nothing of the session (whether it exists, ended, or why)
        (
            "GET",
            "/hls/{}/master.m3u8",
            None,
            unknown_session,
            SECRET_REQUIRED,
        ),
        (
            "GET",
            "/o/{}/demo/master.m3u8",
            None,
            "AAAA.BBBB.CCCC".into(),
            GRANT_REFUSED,
        ),
        ("GET", "/watch/{}", None, "a".repeat(43), REFUSED_PAGE),
    ];
    for (method, template, key, unknown, expect) in routes {
        rows.push(
            Row::new(
                "well-formed unknown id",
                method,
                template.replace("{}", &unknown),
            )
            .key(key)
            .expect(expect),
        );
        for (name, id, bad_utf8) in hostile_ids() {
            // a path parameter that is not UTF-8 cannot be read: 400 from the path extractor, except
            // for a watch link, where it is an unknown ticket (the HTML refusal page)
            let expect = if bad_utf8 && expect != REFUSED_PAGE {
                BAD
            } else {
                expect
            };
            rows.push(
                Row::new(name, method, template.replace("{}", &id))
                    .key(key)
                    .expect(expect),
            );
        }
    }
    // an invalid show id in the path of a write, with a valid body: 400, never a new show
    let put_ids: Vec<(&str, String)> = vec![
        ("upper-case show id", "Ghost".into()),
        ("100-character show id", "a".repeat(100)),
        ("65-character show id", "a".repeat(65)),
        ("show id with a dot", "ghost.show".into()),
        ("show id with a space", "ghost%20show".into()),
    ]
    .into_iter()
    .chain(
        hostile_ids()
            .into_iter()
            .filter(|(n, ..)| *n != "garbage id")
            .map(|(n, id, _)| (n, id)),
    )
    .collect();
    for (name, id) in put_ids {
        rows.push(
            Row::new(
                format!("{name} in a show write"),
                "PUT",
                format!("/api/v1/shows/{id}"),
            )
            .key(admin)
            .json(bytes(&ghost_show()))
            .expect(BAD),
        );
    }
    rows.push(
        Row::new(
            "invalid show id and invalid body",
            "PUT",
            "/api/v1/shows/NOPE",
        )
        .key(admin)
        .json("{")
        .expect(BAD),
    );
}

/// Hostile tokens: registration refuses them (400), admit and the watch link do not know them.
fn token_rows(c: &Ctx, rows: &mut Vec<Row>) {
    for (name, token) in hostile_tokens() {
        rows.push(
            Row::new(format!("register {name}"), "POST", "/api/v1/tickets")
                .key(Some(&c.tickets))
                .json(bytes(&json!({"show_id": c.show, "token": token})))
                .expect(BAD),
        );
        let body = bytes(&json!({"token": token}));
        // a public route refuses a body over its few KiB before reading it
        let expect = if body.len() > PUBLIC_BODY_LIMIT {
            TOO_LARGE
        } else {
            TICKET_UNKNOWN
        };
        rows.push(
            Row::new(format!("admit {name}"), "POST", "/api/v1/playback")
                .json(body)
                .expect(expect),
        );
        if !token.is_empty() {
            rows.push(
                Row::new(
                    format!("watch link {name}"),
                    "GET",
                    format!("/watch/{}", pct(&token)),
                )
                .expect(REFUSED_PAGE),
            );
        }
    }
    for (name, token) in [
        ("number token", json!(42)),
        ("array token", json!(["abcdefghijklmnop"])),
        ("object token", json!({"token": "abcdefghijklmnop"})),
        ("boolean token", json!(true)),
    ] {
        rows.push(
            Row::new(format!("register {name}"), "POST", "/api/v1/tickets")
                .key(Some(&c.tickets))
                .json(bytes(&json!({"show_id": c.show, "token": token})))
                .expect(BAD),
        );
        rows.push(
            Row::new(format!("admit {name}"), "POST", "/api/v1/playback")
                .json(bytes(&json!({"token": token})))
                .expect(BAD),
        );
    }
    rows.push(
        Row::new(
            "admit with a 4 MiB text/plain body",
            "POST",
            "/api/v1/playback",
        )
        .header("content-type", "text/plain")
        .body(vec![b'a'; BODY_LIMIT])
        .expect(TOO_LARGE),
    );
    rows.push(
        Row::new(
            "admit a well-formed unknown token",
            "POST",
            "/api/v1/playback",
        )
        .json(bytes(&json!({"token": "a".repeat(43)})))
        .expect(TICKET_UNKNOWN),
    );
    rows.push(
        Row::new(
            "admit a null token without cookie",
            "POST",
            "/api/v1/playback",
        )
        .json("{\"token\": null}")
        .expect(NO_TICKET),
    );
    // a token that is not even UTF-8 is an unknown ticket: the HTML refusal page
    rows.push(
        Row::new("watch link with invalid UTF-8", "GET", "/watch/%FF%FE%FD").expect(REFUSED_PAGE),
    );
}

/// Invalid show writes (always for a new id, so wrongly accepting one adds a show).
fn show_rows(c: &Ctx, rows: &mut Vec<Row>) {
    let s = ghost_show;
    let bad: Vec<(&str, Value)> = vec![
        (
            "ends_at before starts_at",
            with(s(), "ends_at", json!("2030-01-01T19:00:00Z")),
        ),
        (
            "ends_at equal to starts_at",
            with(s(), "ends_at", json!("2030-01-01T20:00:00Z")),
        ),
        (
            "month 13",
            with(s(), "starts_at", json!("2030-13-01T20:00:00Z")),
        ),
        (
            "30 February",
            with(s(), "starts_at", json!("2030-02-30T20:00:00Z")),
        ),
        (
            "hour 25",
            with(s(), "starts_at", json!("2030-01-01T25:00:00Z")),
        ),
        (
            "date without time",
            with(s(), "starts_at", json!("2030-01-01")),
        ),
        (
            "time without offset",
            with(s(), "starts_at", json!("2030-01-01T20:00:00")),
        ),
        (
            "date in words",
            with(s(), "starts_at", json!("tomorrow evening")),
        ),
        ("empty date", with(s(), "ends_at", json!(""))),
        (
            "date as a number",
            with(s(), "starts_at", json!(1_893_528_000)),
        ),
        ("null date", with(s(), "ends_at", Value::Null)),
        ("missing starts_at", without(s(), "starts_at")),
        ("max_devices 0", with(s(), "max_devices", json!(0))),
        ("max_devices 101", with(s(), "max_devices", json!(101))),
        ("max_devices 1000", with(s(), "max_devices", json!(1000))),
        ("max_devices -1", with(s(), "max_devices", json!(-1))),
        ("max_devices 1.5", with(s(), "max_devices", json!(1.5))),
        (
            "max_devices 2^32",
            with(s(), "max_devices", json!(4_294_967_296_u64)),
        ),
        (
            "heartbeat_interval_s 0",
            with(s(), "heartbeat_interval_s", json!(0)),
        ),
        (
            "heartbeat_interval_s 301",
            with(s(), "heartbeat_interval_s", json!(301)),
        ),
        (
            "lease_ttl_s equal to the default heartbeat",
            with(s(), "lease_ttl_s", json!(15)),
        ),
        (
            "lease_ttl_s below the default heartbeat",
            with(s(), "lease_ttl_s", json!(10)),
        ),
        (
            "lease_ttl_s below heartbeat_interval_s",
            with(
                with(s(), "heartbeat_interval_s", json!(30)),
                "lease_ttl_s",
                json!(20),
            ),
        ),
        ("lease_ttl_s 3601", with(s(), "lease_ttl_s", json!(3601))),
        (
            "grant_ttl_s equal to the heartbeat",
            with(s(), "grant_ttl_s", json!(15)),
        ),
        ("grant_ttl_s 86401", with(s(), "grant_ttl_s", json!(86_401))),
        (
            "stream_path with ..",
            with(s(), "stream_path", json!("../etc")),
        ),
        (
            "stream_path climbing out",
            with(s(), "stream_path", json!("demo/../../etc")),
        ),
        (
            "stream_path with a leading /",
            with(s(), "stream_path", json!("/demo")),
        ),
        (
            "absolute stream_path",
            with(s(), "stream_path", json!("/etc/passwd")),
        ),
        ("empty stream_path", with(s(), "stream_path", json!(""))),
        (
            "stream_path with a trailing /",
            with(s(), "stream_path", json!("demo/")),
        ),
        (
            "stream_path with //",
            with(s(), "stream_path", json!("demo//360p")),
        ),
        ("stream_path of .", with(s(), "stream_path", json!("."))),
        (
            "stream_path with /./",
            with(s(), "stream_path", json!("demo/./360p")),
        ),
        (
            "stream_path with backslashes",
            with(s(), "stream_path", json!("demo\\..\\..\\etc")),
        ),
        (
            "stream_path with %2e%2e",
            with(s(), "stream_path", json!("demo/%2e%2e")),
        ),
        (
            "stream_path with a space",
            with(s(), "stream_path", json!("demo 360p")),
        ),
        (
            "non-ASCII stream_path",
            with(s(), "stream_path", json!("d\u{e9}mo")),
        ),
        (
            "stream_path with NUL",
            with(s(), "stream_path", json!("demo\u{0}")),
        ),
        (
            "257-character stream_path",
            with(s(), "stream_path", json!("a".repeat(257))),
        ),
        ("empty title", with(s(), "title", json!(""))),
        (
            "201-character title",
            with(s(), "title", json!("x".repeat(201))),
        ),
        (
            "10,000-character title",
            with(s(), "title", json!("x".repeat(10_000))),
        ),
        ("title with NUL", with(s(), "title", json!("Ghost\u{0}"))),
        (
            "title with an escape sequence",
            with(s(), "title", json!("Ghost\u{1b}[2J")),
        ),
        (
            "title with CR LF",
            with(s(), "title", json!("Ghost\r\nX-Injected: 1")),
        ),
        ("title with DEL", with(s(), "title", json!("Ghost\u{7f}"))),
        (
            "title with a C1 control",
            with(s(), "title", json!("Ghost\u{85}")),
        ),
        ("title as a number", with(s(), "title", json!(42))),
        ("null title", with(s(), "title", Value::Null)),
        ("missing title", without(s(), "title")),
        (
            "5001-character description",
            with(s(), "description", json!("x".repeat(5001))),
        ),
        (
            "description with BEL",
            with(s(), "description", json!("ding\u{7}")),
        ),
        ("unknown kind", with(s(), "kind", json!("movie"))),
        ("unknown policy", with(s(), "policy", json!("random"))),
        ("policy as a number", with(s(), "policy", json!(1))),
        ("id in the body", with(s(), "id", json!("other"))),
    ];
    for (name, body) in bad {
        rows.push(
            Row::new(
                format!("show with {name}"),
                "PUT",
                format!("/api/v1/shows/{GHOST}"),
            )
            .key(Some(&c.admin))
            .json(bytes(&body))
            .expect(BAD),
        );
    }
}

/// Invalid ticket registrations (besides tokens) and batches.
fn ticket_rows(c: &Ctx, rows: &mut Vec<Row>) {
    let t = || json!({"show_id": c.show});
    let bad: Vec<(&str, Value, Expect)> = vec![
        (
            "unknown show",
            json!({"show_id": "no-such-show"}),
            Expect::Problem(422, "show_unknown"),
        ),
        (
            "unknown show with the site's token",
            json!({"show_id": "no-such-show", "token": "site-token-for-nothing-0001"}),
            Expect::Problem(422, "show_unknown"),
        ),
        ("upper-case show id", json!({"show_id": "Snap"}), BAD),
        ("show id with ../", json!({"show_id": "../etc"}), BAD),
        ("empty show id", json!({"show_id": ""}), BAD),
        (
            "65-character show id",
            json!({"show_id": "a".repeat(65)}),
            BAD,
        ),
        ("show id as a number", json!({"show_id": 42}), BAD),
        ("null show id", json!({"show_id": null}), BAD),
        ("missing show id", json!({"external_ref": "order-1"}), BAD),
        (
            "valid_until before valid_from",
            with(
                with(t(), "valid_from", json!("2030-01-02T00:00:00Z")),
                "valid_until",
                json!("2030-01-01T00:00:00Z"),
            ),
            BAD,
        ),
        (
            "valid_until equal to valid_from",
            with(
                with(t(), "valid_from", json!("2030-01-01T00:00:00Z")),
                "valid_until",
                json!("2030-01-01T00:00:00Z"),
            ),
            BAD,
        ),
        (
            "valid_from in words",
            with(t(), "valid_from", json!("yesterday")),
            BAD,
        ),
        (
            "valid_until as a number",
            with(t(), "valid_until", json!(123)),
            BAD,
        ),
        ("max_devices 0", with(t(), "max_devices", json!(0)), BAD),
        ("max_devices 101", with(t(), "max_devices", json!(101)), BAD),
        ("max_devices -1", with(t(), "max_devices", json!(-1)), BAD),
        (
            "max_devices as a string",
            with(t(), "max_devices", json!("2")),
            BAD,
        ),
        (
            "empty external_ref",
            with(t(), "external_ref", json!("")),
            BAD,
        ),
        (
            "201-character external_ref",
            with(t(), "external_ref", json!("x".repeat(201))),
            BAD,
        ),
        (
            "external_ref with NUL",
            with(t(), "external_ref", json!("order\u{0}1")),
            BAD,
        ),
        (
            "external_ref as a number",
            with(t(), "external_ref", json!(42)),
            BAD,
        ),
        (
            "the existing token with other terms",
            json!({"show_id": c.show, "token": c.token, "max_devices": 5}),
            Expect::Problem(409, "token_conflict"),
        ),
    ];
    for (name, body, expect) in bad {
        rows.push(
            Row::new(format!("ticket with {name}"), "POST", "/api/v1/tickets")
                .key(Some(&c.tickets))
                .json(bytes(&body))
                .expect(expect),
        );
    }
    let too_many: Vec<Value> = (0..10_001).map(|_| t()).collect();
    let batches: Vec<(&str, Value)> = vec![
        ("batch of 0 items", json!({"tickets": []})),
        ("batch of 10,001 items", json!({"tickets": too_many})),
        ("batch with an object for tickets", json!({"tickets": {}})),
        ("batch with null tickets", json!({"tickets": null})),
        ("batch without tickets", json!({})),
        (
            "batch with an unknown field",
            json!({"tickets": [t()], "dry_run": true}),
        ),
        ("batch as a bare array", json!([t()])),
    ];
    for (name, body) in batches {
        rows.push(
            Row::new(name, "POST", "/api/v1/tickets/batch")
                .key(Some(&c.tickets))
                .json(bytes(&body))
                .expect(BAD),
        );
    }
}

/// Invalid API key creations (wrongly accepting one adds a key).
fn api_key_rows(c: &Ctx, rows: &mut Vec<Row>) {
    let bad: Vec<(&str, Value)> = vec![
        ("empty name", json!({"name": "", "scopes": ["tickets"]})),
        (
            "101-character name",
            json!({"name": "x".repeat(101), "scopes": ["tickets"]}),
        ),
        (
            "name with NUL",
            json!({"name": "site\u{0}", "scopes": ["tickets"]}),
        ),
        (
            "name as a number",
            json!({"name": 7, "scopes": ["tickets"]}),
        ),
        ("missing name", json!({"scopes": ["tickets"]})),
        ("no scopes", json!({"name": "site", "scopes": []})),
        ("unknown scope", json!({"name": "site", "scopes": ["root"]})),
        (
            "capitalized scope",
            json!({"name": "site", "scopes": ["Admin"]}),
        ),
        (
            "scope as a string",
            json!({"name": "site", "scopes": "admin"}),
        ),
        ("null scope", json!({"name": "site", "scopes": [null]})),
        ("missing scopes", json!({"name": "site"})),
        (
            "chosen secret",
            json!({"name": "site", "scopes": ["admin"], "key": format!("usher_k_{}_{}", "0".repeat(16), "A".repeat(43))}),
        ),
    ];
    for (name, body) in bad {
        rows.push(
            Row::new(format!("API key with {name}"), "POST", "/api/v1/api-keys")
                .key(Some(&c.admin))
                .json(bytes(&body))
                .expect(BAD),
        );
    }
}

/// Hostile device headers and cookies on the viewer calls.
fn viewer_rows(c: &Ctx, rows: &mut Vec<Row>) {
    let devices: Vec<(&str, Vec<u8>)> = vec![
        ("empty device id", Vec::new()),
        ("7-character device id", b"abcdefg".to_vec()),
        ("65-character device id", vec![b'a'; 65]),
        ("10 kB device id", vec![b'a'; 10_000]),
        ("device id with ../", b"../../etc/passwd".to_vec()),
        ("device id with spaces", b"abcd efgh ijkl".to_vec()),
        (
            "percent-encoded device id",
            b"%41%41%41%41%41%41%41%41".to_vec(),
        ),
        (
            "device id with non-ASCII bytes",
            b"abcdefgh\xff\xfe".to_vec(),
        ),
    ];
    for (name, device) in devices {
        // with the real token: a device wrongly accepted would open a session
        rows.push(
            Row::new(format!("admit with {name}"), "POST", "/api/v1/playback")
                .header("x-usher-device", device)
                .json(bytes(&json!({"token": c.token})))
                .expect(BAD),
        );
    }
    let unknown = json!({"token": "a".repeat(43)});
    for (name, label) in [
        ("device label with non-ASCII bytes", b"TV\xff\xfe".to_vec()),
        ("10 kB device label", vec![b'x'; 10_000]),
        ("device label with a tab", b"TV\tbox".to_vec()),
    ] {
        rows.push(
            Row::new(format!("admit with {name}"), "POST", "/api/v1/playback")
                .header("x-usher-device", "abcdefgh12345678")
                .header("x-usher-device-label", label)
                .json(bytes(&unknown))
                .expect(TICKET_UNKNOWN),
        );
    }
    rows.push(
        Row::new(
            "admit with a garbage device cookie",
            "POST",
            "/api/v1/playback",
        )
        .header("cookie", "usher_device=../../etc; usher_device=%00")
        .json(bytes(&unknown))
        .expect(TICKET_UNKNOWN),
    );
    let cookies: Vec<(&str, Vec<u8>, Expect)> = vec![
        (
            "short ticket cookie",
            b"usher_ticket=short".to_vec(),
            TICKET_UNKNOWN,
        ),
        (
            "ticket cookie with ../",
            b"usher_ticket=../../etc/passwd".to_vec(),
            TICKET_UNKNOWN,
        ),
        (
            "percent-encoded ticket cookie",
            b"usher_ticket=%00%0A%0D".to_vec(),
            TICKET_UNKNOWN,
        ),
        (
            "quoted ticket cookie",
            b"usher_ticket=\"abcdefghijklmnopq\"".to_vec(),
            TICKET_UNKNOWN,
        ),
        (
            "10 kB ticket cookie",
            format!("usher_ticket={}", "a".repeat(10_000)).into_bytes(),
            TICKET_UNKNOWN,
        ),
        (
            "empty ticket cookie",
            b"usher_ticket=".to_vec(),
            TICKET_UNKNOWN,
        ),
        (
            "cookie header with non-ASCII bytes",
            b"usher_ticket=abc\xff\xfe".to_vec(),
            NO_TICKET,
        ),
        (
            "cookie header without a pair",
            b";;;===;".to_vec(),
            NO_TICKET,
        ),
    ];
    for (name, cookie, expect) in cookies {
        rows.push(
            Row::new(format!("admit with {name}"), "POST", "/api/v1/playback")
                .header("cookie", cookie.clone())
                .expect(expect),
        );
        if let Expect::Problem(404, code) = expect {
            rows.push(
                Row::new(format!("watch page with {name}"), "GET", "/watch")
                    .header("cookie", cookie)
                    .expect(Expect::Page(404, code)),
            );
        }
    }
    rows.push(
        Row::new("watch page with an HTML ticket cookie", "GET", "/watch")
            .header("cookie", "usher_ticket=<script>alert(1)</script>")
            .expect(REFUSED_PAGE),
    );
}

/// Unknown routes (404 `not_found`) and wrong methods (405 `method_not_allowed`).
fn route_rows(c: &Ctx, rows: &mut Vec<Row>) {
    let long = format!("/{}", "a".repeat(10_000));
    let unknown = [
        "/",
        "/api",
        "/api/v1",
        "/api/v1/",
        "/api/v2/tickets",
        "/api/v1/ticket",
        "/API/V1/SHOWS",
        "//api/v1/shows",
        "/api/v1/shows%2F",
        "/api/v1/tickets/",
        "/api/v1/tickets/t_x/revoke/now",
        "/api/v1/shows/",
        "/api/v1/shows/a/b",
        "/api/v1/shows/../../../etc/passwd",
        "/api/v1/sessions/",
        "/api/v1/playback/",
        "/api/v1/playback/s_x/heartbeat/again",
        "/watch/",
        "/watch/a/b",
        "/hls/x",
        "/hls/x/other.m3u8",
        "/o",
        "/o/grant",
        "/assets/",
        "/assets/nope.js",
        "/assets/..%2F..%2FCargo.toml",
        "/assets/..%2F..%2F..%2F..%2Fetc%2Fpasswd",
        "/.env",
        "/.git/config",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/%FF%FE",
        "/livez/now",
        long.as_str(),
    ];
    for target in unknown {
        rows.push(Row::new("unknown route", "GET", target).expect(NOT_FOUND));
    }
    // `/api/v1/tickets/import` would be the `{ticket_id}` route (405 for POST), so a bare unknown path
    rows.push(
        Row::new(
            "unknown route with a key and a body",
            "POST",
            "/api/v1/import",
        )
        .key(Some(&c.admin))
        .json(bytes(&json!({"show_id": c.show})))
        .expect(NOT_FOUND),
    );
    let s0 = format!("s_{}", "0".repeat(32));
    let wrong: Vec<(&'static str, String)> = vec![
        ("PUT", "/api/v1/tickets".into()),
        ("DELETE", "/api/v1/tickets".into()),
        ("PATCH", "/api/v1/tickets".into()),
        ("PURGE", "/api/v1/tickets".into()),
        ("GET", "/api/v1/tickets/batch".into()),
        ("POST", "/api/v1/tickets/import".into()),
        ("PUT", format!("/api/v1/tickets/{}", c.ticket)),
        ("DELETE", format!("/api/v1/tickets/{}", c.ticket)),
        ("GET", format!("/api/v1/tickets/{}/revoke", c.ticket)),
        ("POST", "/api/v1/shows".into()),
        ("DELETE", "/api/v1/shows".into()),
        ("POST", format!("/api/v1/shows/{GHOST}")),
        ("PATCH", format!("/api/v1/shows/{}", c.show)),
        ("POST", "/api/v1/sessions".into()),
        ("DELETE", "/api/v1/sessions".into()),
        ("GET", format!("/api/v1/sessions/{s0}")),
        ("PUT", "/api/v1/api-keys".into()),
        ("DELETE", "/api/v1/api-keys".into()),
        ("GET", format!("/api/v1/api-keys/{}", c.admin_key_id)),
        ("PATCH", format!("/api/v1/api-keys/{}", c.admin_key_id)),
        ("GET", "/api/v1/playback".into()),
        ("PUT", "/api/v1/playback".into()),
        ("DELETE", "/api/v1/playback".into()),
        ("GET", format!("/api/v1/playback/{s0}/heartbeat")),
        ("GET", format!("/api/v1/playback/{s0}")),
        ("POST", format!("/api/v1/playback/{s0}")),
        ("GET", format!("/api/v1/playback/{s0}/leave")),
        ("POST", format!("/watch/{}", c.token)),
        ("POST", "/watch".into()),
        ("DELETE", "/watch".into()),
        ("POST", "/assets/watch.js".into()),
        ("POST", "/livez".into()),
        ("DELETE", "/readyz".into()),
        ("PUT", "/metrics".into()),
        ("POST", format!("/hls/{s0}/master.m3u8")),
        ("DELETE", "/o/grant/demo/master.m3u8".into()),
        ("PUT", "/o/grant/demo/master.m3u8".into()),
    ];
    for (method, target) in wrong {
        rows.push(Row::new("wrong method", method, target).expect(METHOD));
    }
}

/// Media routes with forged grants and escaping paths.
fn media_rows(rows: &mut Vec<Row>) {
    let media: Vec<(&str, &str, Expect)> = vec![
        (
            "garbage grant",
            "/o/garbage/demo/master.m3u8",
            GRANT_REFUSED,
        ),
        (
            "garbage grant on a segment",
            "/o/garbage/demo/360p/seg_000.ts",
            GRANT_REFUSED,
        ),
        (
            "garbage grant with a query",
            "/o/garbage/demo/master.m3u8?grant=x&%FF=%00",
            GRANT_REFUSED,
        ),
        (
            "grant-shaped garbage",
            "/o/v1.AAAAAAAA.BBBBBBBB/demo/master.m3u8",
            GRANT_REFUSED,
        ),
        (
            "literal ../ in the media path",
            "/o/garbage/../../etc/passwd",
            MEDIA_UNKNOWN,
        ),
        (
            "encoded ../ in the media path",
            "/o/garbage/demo/..%2F..%2F..%2FCargo.toml",
            MEDIA_UNKNOWN,
        ),
        (
            "encoded .. segment in the media path",
            "/o/garbage/demo/%2E%2E/%2E%2E/Cargo.toml",
            MEDIA_UNKNOWN,
        ),
        (
            "NUL in the media path",
            "/o/garbage/demo/%00",
            MEDIA_UNKNOWN,
        ),
        (
            "hidden file in the media path",
            "/o/garbage/.hidden",
            MEDIA_UNKNOWN,
        ),
        (
            "empty segment in the media path",
            "/o/garbage/demo//master.m3u8",
            MEDIA_UNKNOWN,
        ),
        (
            "backslash in the media path",
            "/o/garbage/demo%5C..%5C..%5CCargo.toml",
            MEDIA_UNKNOWN,
        ),
        (
            "invalid UTF-8 in the media path",
            "/o/garbage/demo/%FF",
            BAD,
        ),
        (
            "garbage session on HLS",
            "/hls/garbage/master.m3u8",
            SECRET_REQUIRED,
        ),
        (
            "upper-case session on HLS",
            "/hls/S_00000000000000000000000000000000/master.m3u8",
            SECRET_REQUIRED,
        ),
    ];
    for (name, target, expect) in media {
        rows.push(Row::new(name, "GET", target).expect(expect));
    }
}

/// Bad queries on the one route that reads one.
fn query_rows(c: &Ctx, rows: &mut Vec<Row>) {
    for (name, query) in [
        ("upper-case show id", "show_id=Snap".to_owned()),
        ("show id with ../", "show_id=..%2F..%2Fetc".to_owned()),
        ("empty show id", "show_id=".to_owned()),
        ("10 kB show id", format!("show_id={}", "a".repeat(10_000))),
        ("show id with invalid UTF-8", "show_id=%FF%FE".to_owned()),
        ("show id with malformed escapes", "show_id=%ZZ".to_owned()),
        ("unknown parameter", "limit=10".to_owned()),
        ("show id twice", format!("show_id={0}&show_id={0}", c.show)),
    ] {
        rows.push(
            Row::new(
                format!("session list with {name}"),
                "GET",
                format!("/api/v1/sessions?{query}"),
            )
            .key(Some(&c.admin))
            .expect(BAD),
        );
    }
}

fn catalogue(c: &Ctx) -> Vec<Row> {
    let mut rows = Vec::new();
    auth_rows(c, &mut rows);
    body_rows(c, &mut rows);
    id_rows(c, &mut rows);
    more_id_rows(c, &mut rows);
    token_rows(c, &mut rows);
    show_rows(c, &mut rows);
    ticket_rows(c, &mut rows);
    api_key_rows(c, &mut rows);
    viewer_rows(c, &mut rows);
    route_rows(c, &mut rows);
    media_rows(&mut rows);
    query_rows(c, &mut rows);
    rows
}

/// An HTTP answer as read off the wire.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn dechunk(mut b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let end = find(b, b"\r\n")?;
        let size = std::str::from_utf8(&b[..end]).ok()?;
        let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        b = &b[end + 2..];
        if size == 0 {
            return Some(out);
        }
        if b.len() < size + 2 {
            return None;
        }
        out.extend_from_slice(&b[..size]);
        b = &b[size + 2..];
    }
}

/// Parses a complete answer; `None` while more bytes are needed (or, at `eof`, never will come).
fn parse(buf: &[u8], eof: bool) -> Option<Reply> {
    let head_end = find(buf, b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&buf[..head_end]);
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let rest = &buf[head_end + 4..];
    let get = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let body = if let Some(len) = get("content-length") {
        let len: usize = len.parse().ok()?;
        rest.get(..len)?.to_vec()
    } else if get("transfer-encoding").is_some_and(|t| t.eq_ignore_ascii_case("chunked")) {
        dechunk(rest)?
    } else if eof {
        rest.to_vec()
    } else {
        return None;
    };
    Some(Reply {
        status,
        headers,
        body,
    })
}

/// Sends `row` byte for byte on a fresh connection and reads the answer. The body is written from its
/// own task while the answer is read, since the server may answer (401, 413) before reading it all.
async fn send(addr: &str, row: &Row) -> Result<Reply, String> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let (mut rd, mut wr) = stream.into_split();
    let mut head = format!(
        "{} {} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n",
        row.method, row.target
    )
    .into_bytes();
    for (name, value) in &row.headers {
        head.extend_from_slice(name.as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value);
        head.extend_from_slice(b"\r\n");
    }
    if let Some(body) = &row.body {
        head.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
    }
    head.extend_from_slice(b"\r\n");
    let body = row.body.clone().unwrap_or_default();
    // the write half stays open until the answer is read: a half-closed request may be dropped
    let writer = tokio::spawn(async move {
        if wr.write_all(&head).await.is_ok() {
            let _ = wr.write_all(&body).await;
        }
        let _ = wr.flush().await;
        std::future::pending::<()>().await;
    });
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let read = async {
        loop {
            match rd.read(&mut chunk).await {
                Ok(0) => return parse(&buf, true).ok_or("incomplete answer before EOF".to_owned()),
                Ok(n) => {
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(reply) = parse(&buf, false) {
                        return Ok(reply);
                    }
                }
                Err(e) => {
                    return parse(&buf, true)
                        .ok_or_else(|| format!("read: {e} after {} bytes", buf.len()));
                }
            }
        }
    };
    let reply = tokio::time::timeout(Duration::from_secs(10), read).await;
    writer.abort();
    reply.map_err(|_| "no answer within 10 s".to_owned())?
}

fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    text.chars().take(300).collect()
}

/// Checks an answer against its row; the error says what is wrong.
fn check(row: &Row, r: &Reply) -> Result<(), String> {
    let ctype = r.header("content-type").unwrap_or("");
    match row.expect {
        Expect::Unset => Err("row has no expectation".into()),
        Expect::Problem(status, code) => {
            if r.status != status {
                return Err(format!(
                    "status {} (want {status} {code}); content-type {ctype:?}; body {}",
                    r.status,
                    excerpt(&r.body)
                ));
            }
            if ctype != "application/problem+json" {
                return Err(format!(
                    "content-type {ctype:?} (want application/problem+json); body {}",
                    excerpt(&r.body)
                ));
            }
            let v: Value = serde_json::from_slice(&r.body)
                .map_err(|e| format!("body is not JSON ({e}): {}", excerpt(&r.body)))?;
            if v["code"].as_str() != Some(code) {
                return Err(format!("code {} (want {code:?}); body {v}", v["code"]));
            }
            if v["status"] != status {
                return Err(format!(
                    "status member {} (want {status}); body {v}",
                    v["status"]
                ));
            }
            if code == "unauthorized" && r.header("www-authenticate") != Some("Bearer") {
                return Err(format!(
                    "WWW-Authenticate {:?} (want \"Bearer\")",
                    r.header("www-authenticate")
                ));
            }
            Ok(())
        }
        Expect::Page(status, code) => {
            if r.status != status {
                return Err(format!(
                    "status {} (want {status} page); content-type {ctype:?}; body {}",
                    r.status,
                    excerpt(&r.body)
                ));
            }
            if !ctype.starts_with("text/html") {
                return Err(format!(
                    "content-type {ctype:?} (want text/html); body {}",
                    excerpt(&r.body)
                ));
            }
            let html = String::from_utf8_lossy(&r.body);
            if !html.contains(&format!("\"code\":\"{code}\"")) {
                return Err(format!("the page does not carry refusal code {code:?}"));
            }
            if html.contains("<script>alert") {
                return Err("the page reflects the hostile token unescaped".into());
            }
            if r.header("set-cookie").is_some() {
                return Err(format!(
                    "a refusal sets a cookie: {:?}",
                    r.header("set-cookie")
                ));
            }
            Ok(())
        }
    }
}

fn describe(i: usize, row: &Row) -> String {
    let target: String = row.target.chars().take(90).collect();
    let more = if row.target.len() > 90 { "…" } else { "" };
    format!("row {i} «{}» ({} {target}{more})", row.name, row.method)
}

async fn get_json(app: &crate::support::TestApp, path: &str, key: &str) -> Value {
    let res = app
        .client
        .get(app.url(path))
        .bearer_auth(key)
        .send()
        .await
        .expect("request");
    let status = res.status().as_u16();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    if status == 200 {
        body
    } else {
        // compared with the snapshot, so a lost key or record shows up as a change, not a panic
        json!({"unexpected_status": status, "body": body, "api_keys": [], "sessions": []})
    }
}

/// What "the store is unchanged" compares: shows, the ticket, API keys (without `last_used_at`), sessions.
async fn snapshot(app: &crate::support::TestApp, ticket: &str) -> Vec<(&'static str, Value)> {
    let mut keys = get_json(app, "/api/v1/api-keys", &app.admin_key).await;
    let mut keys = keys["api_keys"].take();
    let list = keys.as_array_mut().expect("api_keys array");
    for k in list.iter_mut() {
        k.as_object_mut()
            .expect("key object")
            .remove("last_used_at");
    }
    list.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    vec![
        (
            "shows",
            get_json(app, "/api/v1/shows", &app.admin_key).await,
        ),
        (
            "ticket",
            get_json(app, &format!("/api/v1/tickets/{ticket}"), &app.tickets_key).await,
        ),
        ("api keys", keys),
        (
            "sessions",
            get_json(app, "/api/v1/sessions", &app.admin_key).await,
        ),
        (
            "console users",
            get_json(app, "/api/v1/admin-users", &app.admin_key).await,
        ),
        ("cdns", get_json(app, "/api/v1/cdns", &app.admin_key).await),
        (
            "webhooks",
            get_json(app, "/api/v1/webhooks", &app.admin_key).await,
        ),
    ]
}

/// The tickets of a show, read from the refusal to delete it (a show with tickets cannot be deleted):
/// "409 show_has_tickets <n> ticket(s) admit to this show".
async fn ticket_count(app: &crate::support::TestApp, show: &str) -> String {
    let res = app
        .client
        .delete(app.url(&format!("/api/v1/shows/{show}")))
        .bearer_auth(&app.admin_key)
        .send()
        .await
        .expect("request");
    let status = res.status().as_u16();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    format!(
        "{status} {} {}",
        body["code"].as_str().unwrap_or_default(),
        body["detail"].as_str().unwrap_or_default()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_get_exact_4xx_problems_and_change_nothing() {
    let app = crate::support::spawn_app().await;
    app.open_show("snap", 1, "newest_wins").await;
    let (ticket, token) = app.ticket("snap").await;
    let ctx = Ctx {
        show: "snap".into(),
        ticket: ticket.clone(),
        token,
        admin: app.admin_key.clone(),
        tickets: app.tickets_key.clone(),
        // usher_ + k_ and 16 hex digits + _ + secret
        admin_key_id: app.admin_key["usher_".len()..][..18].to_owned(),
    };
    let before = snapshot(&app, &ticket).await;
    assert_eq!(
        before[3].1["sessions"],
        json!([]),
        "no session before the catalogue"
    );

    let rows = catalogue(&ctx);
    // raw bytes go to the app itself (the answer-checking proxy would refuse or normalize them); their
    // answers are checked against the API document all the same
    let addr = app.addr.to_string();
    let mut failures = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        match send(&addr, row).await {
            Ok(reply) => {
                app.check_answer(
                    row.method,
                    &row.target,
                    reply.status,
                    reply.header("content-type"),
                    &reply.body,
                );
                if let Err(e) = check(row, &reply) {
                    failures.push(format!("{}: {e}", describe(i, row)));
                }
            }
            Err(e) => failures.push(format!("{}: {e}", describe(i, row))),
        }
    }

    // the store is as it was: same shows, same ticket, same keys, no session, no extra ticket
    let after = snapshot(&app, &ticket).await;
    for ((what, b), (_, a)) in before.iter().zip(&after) {
        if a != b {
            failures.push(format!("store changed: {what} before {b} after {a}"));
        }
    }
    let ghost = app
        .client
        .get(app.url(&format!("/api/v1/shows/{GHOST}")))
        .bearer_auth(&app.admin_key)
        .send()
        .await
        .expect("request")
        .status();
    if ghost != 404 {
        failures.push(format!(
            "store changed: GET /api/v1/shows/{GHOST} answers {ghost}"
        ));
    }
    let count = ticket_count(&app, "snap").await;
    if count != "409 show_has_tickets 1 ticket(s) admit to this show" {
        failures.push(format!("store changed: tickets of the show: {count}"));
    }
    app.shutdown().await;
    assert!(
        failures.is_empty(),
        "{} of {} catalogue rows failed:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mixed_batch_registers_the_good_items_and_reports_the_bad_ones() {
    let app = crate::support::spawn_app().await;
    app.open_show("mixed", 1, "newest_wins").await;
    // (item, status, code of the error or None for a registered ticket)
    let items: Vec<(Value, u16, Option<&str>)> = vec![
        (json!({"show_id": "mixed"}), 201, None),
        (
            json!({"show_id": "mixed", "token": "site-token-0001-abcdef"}),
            201,
            None,
        ),
        (
            json!({"show_id": "mixed", "token": "short"}),
            400,
            Some("invalid_request"),
        ),
        (
            json!({"show_id": "no-such-show", "token": "site-token-0002-abcdef"}),
            422,
            Some("show_unknown"),
        ),
        (json!("not an object"), 400, Some("invalid_request")),
        // serde would fill a registration from an array of its fields in order
        (json!(["mixed", null]), 400, Some("invalid_request")),
        (
            json!({"show_id": "mixed", "evil": true}),
            400,
            Some("invalid_request"),
        ),
        (
            json!({"show_id": "mixed", "max_devices": 0}),
            400,
            Some("invalid_request"),
        ),
        (
            json!({"show_id": "Mixed", "token": "site-token-0003-abcdef"}),
            400,
            Some("invalid_request"),
        ),
        (
            json!({"show_id": "mixed", "token": "site-token-0004 abcdef"}),
            400,
            Some("invalid_request"),
        ),
        (
            json!({"show_id": "mixed", "external_ref": "order-42"}),
            201,
            None,
        ),
    ];
    let body = json!({"tickets": items.iter().map(|(v, ..)| v.clone()).collect::<Vec<_>>()});
    let res = app
        .client
        .post(app.url("/api/v1/tickets/batch"))
        .bearer_auth(&app.tickets_key)
        .json(&body)
        .send()
        .await
        .expect("request");
    assert_eq!(
        res.status(),
        200,
        "a mixed batch is a 200 with a result per item"
    );
    let v: Value = res.json().await.expect("JSON");
    let good = items.iter().filter(|(_, _, e)| e.is_none()).count();
    assert_eq!(v["created"], good, "created; body {v}");
    assert_eq!(v["existing"], 0, "existing; body {v}");
    assert_eq!(v["failed"], items.len() - good, "failed; body {v}");
    let results = v["results"].as_array().expect("results");
    assert_eq!(results.len(), items.len(), "one result per item");
    for (i, ((item, status, code), r)) in items.iter().zip(results).enumerate() {
        assert_eq!(r["index"], i, "item {i} {item}: index; result {r}");
        assert_eq!(r["status"], *status, "item {i} {item}: status; result {r}");
        match code {
            Some(code) => {
                assert_eq!(
                    r["error"]["code"], *code,
                    "item {i} {item}: code; result {r}"
                );
                assert!(
                    r.get("ticket").is_none(),
                    "item {i} {item}: no ticket; result {r}"
                );
            }
            None => {
                let id = r["ticket"]["id"].as_str().expect("ticket id");
                let status = app.ticket_status(id).await;
                assert_eq!(status["show_id"], "mixed", "item {i} {item}: stored");
                assert_eq!(status["status"], "active", "item {i} {item}: active");
                if let Some(token) = item.get("token") {
                    assert_eq!(
                        r["ticket"]["token"], *token,
                        "item {i} {item}: the site's token"
                    );
                }
                if let Some(reference) = item.get("external_ref") {
                    assert_eq!(
                        status["external_ref"], *reference,
                        "item {i} {item}: external_ref"
                    );
                }
            }
        }
    }
    // the good token opens its watch link; the refused ones were never registered
    let res = app
        .client
        .get(app.url("/watch/site-token-0001-abcdef"))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 303, "a registered token opens its watch link");
    for token in ["site-token-0002-abcdef", "site-token-0003-abcdef"] {
        let res = app.admit(token, "device-mixed-0001").await;
        crate::support::assert_problem(res, reqwest::StatusCode::NOT_FOUND, "ticket_unknown").await;
    }
    assert_eq!(
        ticket_count(&app, "mixed").await,
        format!("409 show_has_tickets {good} ticket(s) admit to this show"),
        "only the good items were registered"
    );
    app.shutdown().await;
}
