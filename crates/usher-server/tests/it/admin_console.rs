//! Authorization of every admin route, driven by one table: each console route (from
//! `console::route_table()`, the table the router is built from) and each admin API route refuses a
//! missing session, a role (or key scope) without its permission, and a state-changing call without the
//! session's CSRF token or with another session's; and nothing they refused changed anything. Also: the
//! first-run bootstrap, the audit log as CSV, and that no admin API route is missing from the table (login
//! throttling and password changes: `login.rs`).

use crate::support::{TestApp, assert_problem, spawn_app};
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};
use usher_core::admin::{AuditFilter, Permission, Role, UserName};
use usher_server::console::{Access, route_table};

pub(crate) const PASSWORD: &str = "correct horse battery staple";

/// A logged-in console session: its cookie and CSRF token.
#[derive(Clone)]
pub(crate) struct Session {
    pub(crate) cookie: String,
    pub(crate) csrf: String,
}

pub(crate) fn cookie_value(res: &Response, name: &str) -> Option<String> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| {
            let (kv, _) = c.split_once(';').unwrap_or((c, ""));
            let (k, v) = kv.split_once('=')?;
            (k.trim() == name).then(|| v.trim().to_owned())
        })
}

pub(crate) fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let i = text.find(start)? + start.len();
    let j = text[i..].find(end)? + i;
    Some(&text[i..j])
}

pub(crate) async fn add_user(app: &TestApp, name: &str, role: Role) {
    let store = &*app.state.store;
    let user = usher_server::service::auth::new_user(
        store,
        UserName::parse(name).unwrap(),
        role,
        PASSWORD.into(),
        false,
    )
    .await
    .unwrap();
    assert!(store.create_admin_user(user).await.unwrap());
}

pub(crate) async fn login_attempt(app: &TestApp, name: &str, password: &str) -> Response {
    let page = app
        .client
        .get(app.url("/admin/login"))
        .send()
        .await
        .unwrap();
    let csrf_cookie = cookie_value(&page, "usher_login_csrf").expect("login CSRF cookie");
    let html = page.text().await.unwrap();
    let csrf = between(&html, "name=\"_csrf\" value=\"", "\"").expect("login CSRF field");
    app.client
        .post(app.url("/admin/login"))
        .header("cookie", format!("usher_login_csrf={csrf_cookie}"))
        .form(&[("_csrf", csrf), ("name", name), ("password", password)])
        .send()
        .await
        .unwrap()
}

pub(crate) async fn login(app: &TestApp, name: &str) -> Session {
    let res = login_attempt(app, name, PASSWORD).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "login of {name}");
    let cookie = format!(
        "usher_console={}",
        cookie_value(&res, "usher_console").expect("session cookie")
    );
    let set = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("usher_console="))
        .unwrap();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    let page = app
        .client
        .get(app.url("/admin"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    let csrf = between(&html, "name=\"csrf-token\" content=\"", "\"")
        .expect("csrf meta")
        .to_owned();
    Session { cookie, csrf }
}

/// One admin API route: method, example path, permission.
fn api_routes() -> Vec<(Method, &'static str, Permission)> {
    use Permission::*;
    vec![
        (Method::GET, "/api/v1/tickets?q=order-1", ReadTickets),
        (Method::POST, "/api/v1/tickets", RegisterTickets),
        (Method::POST, "/api/v1/tickets/batch", RegisterTickets),
        (
            Method::GET,
            "/api/v1/tickets/t_000000000000000000000000",
            ReadTickets,
        ),
        (
            Method::POST,
            "/api/v1/tickets/t_000000000000000000000000/revoke",
            RevokeTickets,
        ),
        (
            Method::DELETE,
            "/api/v1/tickets/t_000000000000000000000000/personal-data",
            ErasePersonalData,
        ),
        (Method::GET, "/api/v1/shows", Read),
        (Method::PUT, "/api/v1/shows/demo", Manage),
        (Method::GET, "/api/v1/shows/demo", Read),
        (Method::DELETE, "/api/v1/shows/demo", Manage),
        (Method::PUT, "/api/v1/shows/demo/published", Manage),
        (Method::PUT, "/api/v1/shows/demo/poster", Manage),
        (Method::GET, "/api/v1/shows/demo/ingest", Read),
        (Method::POST, "/api/v1/shows/demo/stream-key", Manage),
        (
            Method::PUT,
            "/api/v1/content-keys/ck_00000000000000000000000000000000",
            Manage,
        ),
        (Method::GET, "/api/v1/sessions", Read),
        (
            Method::DELETE,
            "/api/v1/sessions/s_00000000000000000000000000000000",
            EndSessions,
        ),
        (Method::GET, "/api/v1/api-keys", Read),
        (Method::POST, "/api/v1/api-keys", Manage),
        (
            Method::DELETE,
            "/api/v1/api-keys/k_0000000000000000",
            Manage,
        ),
        (Method::GET, "/api/v1/admin-users", Read),
        (Method::POST, "/api/v1/admin-users", Manage),
        (Method::PATCH, "/api/v1/admin-users/someone", Manage),
        (Method::DELETE, "/api/v1/admin-users/someone", Manage),
        (Method::POST, "/api/v1/admin-users/someone/unlock", Manage),
        (Method::GET, "/api/v1/audit", Read),
        (Method::GET, "/api/v1/dashboard", Read),
        (Method::GET, "/api/v1/cdns", Read),
        (Method::PUT, "/api/v1/cdns/edge", Manage),
        (Method::PATCH, "/api/v1/cdns/edge", Manage),
        (Method::GET, "/api/v1/cdns/edge", Read),
        (Method::DELETE, "/api/v1/cdns/edge", Manage),
        (Method::POST, "/api/v1/cdns/edge/sign", Manage),
        (Method::GET, "/api/v1/geoip", Read),
        (Method::PUT, "/api/v1/geoip", Manage),
        (Method::POST, "/api/v1/geoip/reload", Manage),
        (Method::POST, "/api/v1/backup", Manage),
        (Method::GET, "/api/v1/webhooks", Read),
        (Method::POST, "/api/v1/webhooks", Manage),
        (Method::GET, "/api/v1/webhooks/wh_0000000000000000", Read),
        (
            Method::PATCH,
            "/api/v1/webhooks/wh_0000000000000000",
            Manage,
        ),
        (
            Method::DELETE,
            "/api/v1/webhooks/wh_0000000000000000",
            Manage,
        ),
        (
            Method::POST,
            "/api/v1/webhooks/wh_0000000000000000/secret",
            Manage,
        ),
        (
            Method::GET,
            "/api/v1/webhooks/wh_0000000000000000/deliveries",
            Read,
        ),
        (
            Method::POST,
            "/api/v1/webhooks/wh_0000000000000000/deliveries/dl_000000000000000000000000/resend",
            Manage,
        ),
        (Method::POST, "/api/v1/uploads", Manage),
        (Method::GET, "/api/v1/uploads", Read),
        (
            Method::GET,
            "/api/v1/uploads/up_00000000000000000000000000000000",
            Read,
        ),
        (
            Method::HEAD,
            "/api/v1/uploads/up_00000000000000000000000000000000",
            Read,
        ),
        (
            Method::PATCH,
            "/api/v1/uploads/up_00000000000000000000000000000000",
            Manage,
        ),
        (
            Method::DELETE,
            "/api/v1/uploads/up_00000000000000000000000000000000",
            Manage,
        ),
    ]
}

/// Routes under /api/v1 that need no admin credentials.
const PUBLIC_API: &[&str] = &[
    "/api/v1/playback",
    "/api/v1/playback/{session_id}/heartbeat",
    "/api/v1/playback/{session_id}",
    "/api/v1/playback/{session_id}/leave",
];

/// A role that lacks `perm`, if any does.
fn role_without(perm: Permission) -> Option<&'static str> {
    [("observer", Role::Observer), ("support", Role::Support)]
        .into_iter()
        .find(|(_, r)| !r.allows(perm))
        .map(|(n, _)| n)
}

fn unsafe_method(m: &Method) -> bool {
    !matches!(*m, Method::GET | Method::HEAD)
}

async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    session: Option<&Session>,
    csrf: Option<&str>,
    bearer: Option<&str>,
    form: bool,
) -> Response {
    let mut req = app.client.request(method.clone(), app.url(path));
    if let Some(s) = session {
        req = req.header("cookie", &s.cookie);
    }
    if let Some(b) = bearer {
        req = req.bearer_auth(b);
    }
    if form {
        let mut fields: Vec<(&str, &str)> = vec![("published", "false"), ("enabled", "false")];
        if let Some(c) = csrf {
            fields.push(("_csrf", c));
        }
        req = req.form(&fields);
    } else {
        if let Some(c) = csrf {
            req = req.header("x-csrf-token", c);
        }
        if unsafe_method(&method) {
            req = req.json(&json!({}));
        }
    }
    req.send().await.unwrap()
}

/// What the store holds that a call of the admin API or the console could change, read through the store
/// itself (not through the audit log, which a route that forgot its entry would leave alone): shows with
/// their sessions and posters, the given tickets with their activity, API keys, CDNs, console users, and
/// the audit entries that are not logins. Refused calls must leave it as it was.
async fn store_snapshot(app: &TestApp, tickets: &[&str]) -> Vec<String> {
    let store = &*app.state.store;
    let mut out = Vec::new();
    for show in store.shows().await.unwrap() {
        out.push(format!("show {show:?}"));
        out.push(format!(
            "sessions of {}: {:?}",
            show.id,
            store.sessions(Some(&show.id)).await.unwrap()
        ));
        out.push(format!(
            "poster of {}: {:?}",
            show.id,
            store
                .poster(&show.id)
                .await
                .unwrap()
                .map(|(tag, bytes)| (tag, bytes.len()))
        ));
    }
    for id in tickets {
        let id = usher_core::ids::TicketId::parse(id).unwrap();
        out.push(format!("ticket {:?}", store.ticket(&id).await.unwrap()));
        out.push(format!(
            "activity {:?}",
            store.ticket_activity(&id).await.unwrap()
        ));
    }
    // a key's last use is bookkeeping, moved by any call the key authenticates (refused by scope too)
    let keys: Vec<_> = store
        .api_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|mut k| {
            k.last_used_at = None;
            k
        })
        .collect();
    out.push(format!("api keys {keys:?}"));
    out.push(format!("cdns {:?}", store.cdns().await.unwrap()));
    out.push(format!("users {:?}", store.admin_users().await.unwrap()));
    out.extend(changes(app).await);
    out
}

/// Audit entries that are not logins.
async fn changes(app: &TestApp) -> Vec<String> {
    app.state
        .store
        .audit(&AuditFilter {
            limit: 10_000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_iter()
        .filter(|e| !e.action.starts_with("login"))
        .map(|e| format!("{} {}", e.action, e.target))
        .collect()
}

#[tokio::test]
async fn every_admin_route_refuses_missing_session_wrong_role_and_missing_csrf() {
    let app = spawn_app().await;
    add_user(&app, "ada", Role::Admin).await;
    add_user(&app, "sam", Role::Support).await;
    add_user(&app, "olga", Role::Observer).await;
    // what the routes' examples name exists, so a refused call has something it could have changed
    add_user(&app, "someone", Role::Support).await;
    app.open_show("demo", 1, "newest_wins").await;
    let res = app
        .client
        .put(app.url("/api/v1/cdns/edge"))
        .bearer_auth(&app.admin_key)
        .json(&json!({
            "name": "Edge",
            "base_url": "https://edge.example",
            "signing": {"scheme": "nginx", "secret": "a-secret-of-some-length"},
            "enabled": false,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let (ticket, token) = app.ticket("demo").await;
    assert_eq!(
        app.admit(&token, "device-console-01").await.status(),
        StatusCode::CREATED
    );
    let admin = login(&app, "ada").await;
    let other_admin = login(&app, "ada").await;
    let mut sessions = std::collections::HashMap::new();
    sessions.insert("support", login(&app, "sam").await);
    sessions.insert("observer", login(&app, "olga").await);
    let before = store_snapshot(&app, &[&ticket]).await;

    // The console: every route of the table the router is built from.
    let table = route_table();
    assert!(table.len() >= 30, "the console has its routes");
    for route in &table {
        let Access::Needs(perm) = route.access else {
            continue;
        };
        let m = route.method.clone();
        let form = m == Method::POST;
        let what = format!("{m} {}", route.example);
        // no session
        let res = call(&app, m.clone(), route.example, None, None, None, form).await;
        if form {
            assert_eq!(
                res.status(),
                StatusCode::UNAUTHORIZED,
                "{what} without a session"
            );
        } else {
            assert_eq!(
                res.status(),
                StatusCode::SEE_OTHER,
                "{what} without a session"
            );
            assert_eq!(res.headers()["location"], "/admin/login", "{what}");
        }
        // a stale or forged session cookie is no session
        let forged = Session {
            cookie: "usher_console=forged-session-secret".into(),
            csrf: admin.csrf.clone(),
        };
        let res = call(
            &app,
            m.clone(),
            route.example,
            Some(&forged),
            Some(&forged.csrf),
            None,
            form,
        )
        .await;
        assert!(
            matches!(
                res.status(),
                StatusCode::UNAUTHORIZED | StatusCode::SEE_OTHER
            ),
            "{what} with a forged session: {}",
            res.status()
        );
        // wrong role, with its own valid CSRF token
        if let Some(role) = role_without(perm) {
            let s = &sessions[role];
            let res = call(
                &app,
                m.clone(),
                route.example,
                Some(s),
                Some(&s.csrf),
                None,
                form,
            )
            .await;
            assert_eq!(res.status(), StatusCode::FORBIDDEN, "{what} as {role}");
        }
        if form {
            // missing CSRF token, and another session's token
            let res = call(
                &app,
                m.clone(),
                route.example,
                Some(&admin),
                None,
                None,
                true,
            )
            .await;
            assert_eq!(res.status(), StatusCode::FORBIDDEN, "{what} without CSRF");
            assert!(res.text().await.unwrap().contains("csrf_invalid"), "{what}");
            let res = call(
                &app,
                m.clone(),
                route.example,
                Some(&admin),
                Some(&other_admin.csrf),
                None,
                true,
            )
            .await;
            assert_eq!(
                res.status(),
                StatusCode::FORBIDDEN,
                "{what} with another session's CSRF"
            );
        }
    }
    // the routes open to any logged-in user still need a session and their CSRF token
    for path in ["/admin/logout", "/admin/password"] {
        let res = call(&app, Method::POST, path, None, None, None, true).await;
        assert!(
            matches!(
                res.status(),
                StatusCode::UNAUTHORIZED | StatusCode::SEE_OTHER
            ),
            "{path} without a session"
        );
        let res = call(&app, Method::POST, path, Some(&admin), None, None, true).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{path} without CSRF");
    }

    // The admin API: the same for console sessions, and key scopes for API keys.
    for (m, path, perm) in api_routes() {
        let what = format!("{m} {path}");
        if m == Method::HEAD {
            // a HEAD answer has no body: its statuses only
            let res = call(&app, m.clone(), path, None, None, None, false).await;
            assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{what}");
            let res = call(
                &app,
                m.clone(),
                path,
                None,
                None,
                Some(&app.tickets_key),
                false,
            )
            .await;
            assert_eq!(res.status(), StatusCode::FORBIDDEN, "{what}");
            continue;
        }
        let res = call(&app, m.clone(), path, None, None, None, false).await;
        assert_problem(res, StatusCode::UNAUTHORIZED, "unauthorized").await;
        if let Some(role) = role_without(perm) {
            let s = &sessions[role];
            let res = call(&app, m.clone(), path, Some(s), Some(&s.csrf), None, false).await;
            let body = assert_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
            assert!(
                body["detail"].as_str().unwrap().contains(role),
                "{what}: {body}"
            );
        }
        if perm.scope_name() == "admin" {
            let res = call(
                &app,
                m.clone(),
                path,
                None,
                None,
                Some(&app.tickets_key),
                false,
            )
            .await;
            assert_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
        }
        if unsafe_method(&m) {
            let res = call(&app, m.clone(), path, Some(&admin), None, None, false).await;
            assert_problem(res, StatusCode::FORBIDDEN, "csrf_invalid").await;
            let res = call(
                &app,
                m.clone(),
                path,
                Some(&admin),
                Some(&other_admin.csrf),
                None,
                false,
            )
            .await;
            assert_problem(res, StatusCode::FORBIDDEN, "csrf_invalid").await;
        }
    }
    let after = store_snapshot(&app, &[&ticket]).await;
    let changed: Vec<_> = after.iter().filter(|a| !before.contains(a)).collect();
    let gone: Vec<_> = before.iter().filter(|b| !after.contains(b)).collect();
    assert!(
        changed.is_empty() && gone.is_empty(),
        "refused calls changed the store: now {changed:#?}, before {gone:#?}"
    );

    // And the same session with its token does get through (a read, and a change that is audited).
    let res = call(
        &app,
        Method::GET,
        "/api/v1/dashboard",
        Some(&admin),
        None,
        None,
        false,
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = app
        .client
        .patch(app.url("/api/v1/cdns/origin"))
        .header("cookie", &admin.cookie)
        .header("x-csrf-token", &admin.csrf)
        .json(&json!({"priority": 7}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let seeded = ["ticket.register", "show.put", "cdn.put"];
    let new: Vec<String> = changes(&app)
        .await
        .into_iter()
        .filter(|c| !seeded.iter().any(|s| c.starts_with(s)))
        .collect();
    assert_eq!(new, vec!["cdn.patch cdn:origin".to_owned()]);
    app.shutdown().await;
}

#[tokio::test]
async fn no_admin_api_route_is_missing_from_the_table() {
    // every operation of the API document (which the router is built from) that needs a key
    let doc = usher_server::http::api_document();
    let doc = &*doc.0;
    let table: Vec<(String, String)> = api_routes()
        .iter()
        .map(|(m, p, _)| (m.to_string(), p.split('?').next().unwrap().to_owned()))
        .collect();
    let matches = |method: &str, route: &str| {
        table.iter().any(|(m, p)| {
            let a: Vec<&str> = p.split('/').collect();
            let b: Vec<&str> = route.split('/').collect();
            m == method
                && a.len() == b.len()
                && a.iter().zip(&b).all(|(x, y)| x == y || y.starts_with('{'))
        })
    };
    let mut missing = Vec::new();
    let mut keyed = 0;
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in usher_server::openapi::METHODS {
            let Some(op) = item.get(method) else { continue };
            let needs_key = op["security"]
                .as_array()
                .is_some_and(|s| s.iter().any(|r| r.get("bearer").is_some()));
            if !needs_key || PUBLIC_API.contains(&path.as_str()) {
                continue;
            }
            keyed += 1;
            let method = method.to_ascii_uppercase();
            if !matches(&method, path) {
                missing.push(format!("{method} {path}"));
            }
        }
    }
    assert!(keyed >= 30, "found the keyed operations ({keyed})");
    assert!(
        missing.is_empty(),
        "admin routes missing from the authorization table: {missing:?}"
    );
}

#[tokio::test]
async fn bootstrap_admin_must_change_the_one_time_password() {
    let app = spawn_app().await;
    let password = usher_server::service::auth::bootstrap_admin(&*app.state.store)
        .await
        .unwrap()
        .expect("a first-run password");
    assert!(
        usher_server::service::auth::bootstrap_admin(&*app.state.store)
            .await
            .unwrap()
            .is_none(),
        "only once"
    );
    let page = app
        .client
        .get(app.url("/admin/login"))
        .send()
        .await
        .unwrap();
    let csrf_cookie = cookie_value(&page, "usher_login_csrf").unwrap();
    let html = page.text().await.unwrap();
    let csrf = between(&html, "name=\"_csrf\" value=\"", "\"")
        .unwrap()
        .to_owned();
    let res = app
        .client
        .post(app.url("/admin/login"))
        .header("cookie", format!("usher_login_csrf={csrf_cookie}"))
        .form(&[
            ("_csrf", csrf.as_str()),
            ("name", "admin"),
            ("password", password.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()["location"], "/admin/password");
    let cookie = format!(
        "usher_console={}",
        cookie_value(&res, "usher_console").unwrap()
    );
    // everything else waits for the new password
    let res = app
        .client
        .get(app.url("/admin"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["location"], "/admin/password");
    let res = app
        .client
        .get(app.url("/api/v1/dashboard"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_problem(res, StatusCode::FORBIDDEN, "password_change_required").await;
    let html = app
        .client
        .get(app.url("/admin/password"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = between(&html, "name=\"_csrf\" value=\"", "\"")
        .unwrap()
        .to_owned();
    let res = app
        .client
        .post(app.url("/admin/password"))
        .header("cookie", &cookie)
        .form(&[
            ("_csrf", csrf.as_str()),
            ("current_password", password.as_str()),
            ("new_password", PASSWORD),
            ("confirm_password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()["location"], "/admin");
    let res = app
        .client
        .get(app.url("/admin"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    // the one-time password no longer works
    assert_eq!(
        login_attempt(&app, "admin", &password).await.status(),
        StatusCode::UNAUTHORIZED
    );
    app.shutdown().await;
}

#[tokio::test]
async fn the_api_manages_users_and_exports_the_audit_log_as_csv() {
    let app = spawn_app().await;
    let key = app.admin_key.clone();
    let res = app
        .client
        .post(app.url("/api/v1/admin-users"))
        .bearer_auth(&key)
        .json(&json!({"name": "sam", "role": "support"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["must_change_password"], true);
    assert_eq!(v["password"].as_str().unwrap().len(), 24);
    assert!(v.get("password_hash").is_none());
    let res = app
        .client
        .post(app.url("/api/v1/admin-users"))
        .bearer_auth(&key)
        .json(&json!({"name": "sam", "role": "observer"}))
        .send()
        .await
        .unwrap();
    assert_problem(res, StatusCode::CONFLICT, "user_exists").await;
    let res = app
        .client
        .post(app.url("/api/v1/admin-users"))
        .bearer_auth(&key)
        .json(&json!({"name": "Bad Name", "role": "observer"}))
        .send()
        .await
        .unwrap();
    assert_problem(res, StatusCode::BAD_REQUEST, "invalid_request").await;
    let res = app
        .client
        .post(app.url("/api/v1/admin-users"))
        .bearer_auth(&key)
        .json(&json!({"name": "pat", "role": "observer", "password": "short"}))
        .send()
        .await
        .unwrap();
    assert_problem(res, StatusCode::BAD_REQUEST, "invalid_request").await;

    let res = app.get_with("/api/v1/audit?action=user.", &key).await;
    assert_eq!(res.status(), StatusCode::OK);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["entries"].as_array().unwrap().len(), 1);
    assert_eq!(v["entries"][0]["actor"]["kind"], "api_key");
    assert_eq!(v["entries"][0]["target"], "user:sam");
    assert_eq!(v["entries"][0]["address"], "127.0.0.1");

    for res in [
        app.get_with("/api/v1/audit?format=csv", &key).await,
        app.client
            .get(app.url("/api/v1/audit"))
            .bearer_auth(&key)
            .header("accept", "text/csv")
            .send()
            .await
            .unwrap(),
    ] {
        assert_eq!(res.status(), StatusCode::OK);
        assert!(
            res.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/csv")
        );
        let csv = res.text().await.unwrap();
        assert!(csv.starts_with("at,actor_kind,actor,action,target,address,detail\r\n"));
        assert!(
            csv.contains(",user.create,user:sam,127.0.0.1,role=support"),
            "{csv}"
        );
    }
    let res = app.get_with("/api/v1/audit?since=yesterday", &key).await;
    assert_problem(res, StatusCode::BAD_REQUEST, "invalid_request").await;
    let res = app.get_with("/api/v1/audit?limit=0", &key).await;
    assert_problem(res, StatusCode::BAD_REQUEST, "invalid_request").await;

    // the last admin user cannot be removed or demoted
    let res = app
        .client
        .post(app.url("/api/v1/admin-users"))
        .bearer_auth(&key)
        .json(&json!({"name": "ada", "role": "admin", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let v: Value = res.json().await.unwrap();
    assert!(
        v.get("password").is_none(),
        "a given password is not echoed"
    );
    let res = app.delete_with("/api/v1/admin-users/ada", &key).await;
    assert_problem(res, StatusCode::CONFLICT, "last_admin").await;
    let res = app.delete_with("/api/v1/admin-users/sam", &key).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    app.shutdown().await;
}
