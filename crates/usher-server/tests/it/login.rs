//! Console logins and password changes under attack, on the real server: attempts are counted before the
//! password is checked and back off exponentially per user (never locked for long), an admin lifts a
//! user's wait through the API or the console, a password change is throttled and audited like a login,
//! ends the user's other sessions, and writes only the password (a role change made meanwhile stays).
//! The real binary under a flood of logins: `login_flood.rs`.

use std::time::{Duration, Instant};

use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use usher_core::admin::{AuditFilter, Role};

use crate::admin_console::{PASSWORD, Session, add_user, cookie_value, login, login_attempt};
use crate::support::{TestApp, assert_problem, spawn_app_with};

const NEW_PASSWORD: &str = "a brand new passphrase, long enough";

fn retry_after(res: &Response) -> Option<u64> {
    res.headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

async fn audit(app: &TestApp, action: &str) -> Vec<usher_core::admin::AuditEntry> {
    app.state
        .store
        .audit(&AuditFilter {
            action: Some(action.into()),
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
}

async fn change_password(app: &TestApp, s: &Session, current: &str, new: &str) -> Response {
    app.client
        .post(app.url("/admin/password"))
        .header("cookie", &s.cookie)
        .form(&[
            ("_csrf", s.csrf.as_str()),
            ("current_password", current),
            ("new_password", new),
            ("confirm_password", new),
        ])
        .send()
        .await
        .unwrap()
}

/// Whether the session still opens the console.
async fn session_works(app: &TestApp, s: &Session) -> bool {
    let res = app
        .client
        .get(app.url("/admin"))
        .header("cookie", &s.cookie)
        .send()
        .await
        .unwrap();
    res.status() == StatusCode::OK
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_back_off_and_an_admin_lifts_the_wait() {
    let app = spawn_app_with(|c| {
        c.login.user_attempts = 3;
        c.login.backoff_initial_ms = 1000;
    })
    .await;
    add_user(&app, "ada", Role::Admin).await;
    add_user(&app, "bob", Role::Admin).await;
    for _ in 0..3 {
        let res = login_attempt(&app, "ada", "wrong password, again").await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert!(cookie_value(&res, "usher_console").is_none());
    }
    // now even the right password waits, and the answer says how long
    let res = login_attempt(&app, "ada", PASSWORD).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(retry_after(&res), Some(1));
    assert!(cookie_value(&res, "usher_console").is_none());
    // after the wait one more attempt is checked, and the next wait is twice as long: no hard lock
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let res = login_attempt(&app, "ada", "wrong password, again").await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = login_attempt(&app, "ada", PASSWORD).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(retry_after(&res), Some(2));
    // failures are audited without the password; waiting attempts were never checked
    let failed = audit(&app, "login.failed").await;
    assert_eq!(failed.len(), 4);
    assert!(!format!("{failed:?}").contains("wrong password"));

    // an admin lifts the wait through the API (audited), and the right password works at once
    let res = app
        .client
        .post(app.url("/api/v1/admin-users/ada/unlock"))
        .bearer_auth(&app.admin_key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["name"], "ada");
    let res = login_attempt(&app, "ada", PASSWORD).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "unlocked");
    let res = app
        .client
        .post(app.url("/api/v1/admin-users/nobody/unlock"))
        .bearer_auth(&app.admin_key)
        .send()
        .await
        .unwrap();
    assert_problem(res, StatusCode::NOT_FOUND, "user_unknown").await;

    // the console's Unlock button does the same
    for _ in 0..3 {
        login_attempt(&app, "ada", "wrong password, again").await;
    }
    assert_eq!(
        login_attempt(&app, "ada", PASSWORD).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    let bob = login(&app, "bob").await;
    let res = app
        .client
        .post(app.url("/admin/users/ada/unlock"))
        .header("cookie", &bob.cookie)
        .form(&[("_csrf", bob.csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        login_attempt(&app, "ada", PASSWORD).await.status(),
        StatusCode::SEE_OTHER
    );
    let unlocks = audit(&app, "user.unlock").await;
    assert_eq!(unlocks.len(), 2, "{unlocks:?}");
    assert!(unlocks.iter().all(|e| e.target == "user:ada"));
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_change_ends_the_users_other_sessions_and_is_throttled_like_a_login() {
    let app = spawn_app_with(|c| c.login.user_attempts = 3).await;
    add_user(&app, "ada", Role::Support).await;
    let here = login(&app, "ada").await;
    let elsewhere = login(&app, "ada").await;

    // a wrong current password is refused and audited as a failed login
    let res = change_password(&app, &here, "not the password at all", NEW_PASSWORD).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("current password is wrong")
    );
    let failed = audit(&app, "login.failed").await;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].detail, "password change");
    assert_eq!(failed[0].target, "user:ada");

    // the right one: this session stays, the user's other session ends
    let res = change_password(&app, &here, PASSWORD, NEW_PASSWORD).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()["location"], "/admin");
    assert!(
        session_works(&app, &here).await,
        "the session that changed it"
    );
    assert!(!session_works(&app, &elsewhere).await, "the other session");
    let res = app
        .client
        .get(app.url("/api/v1/dashboard"))
        .header("cookie", &elsewhere.cookie)
        .send()
        .await
        .unwrap();
    assert_problem(res, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let changed = audit(&app, "user.password").await;
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0].detail, "other sessions ended=1");
    assert_eq!(
        login_attempt(&app, "ada", PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED,
        "the old password"
    );

    // guessing the current password from a stolen session backs off like guessing a login (the login
    // with the old password above was the user's first failure)
    for _ in 0..2 {
        let res =
            change_password(&app, &here, "another wrong guess!!", "yet another new one").await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    let res = change_password(&app, &here, NEW_PASSWORD, "yet another new one").await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(retry_after(&res).is_some());
    assert_eq!(audit(&app, "login.failed").await.len(), 1 + 1 + 2);
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_role_change_made_during_a_password_change_stays() {
    // one password check at a time, so a queue of logins holds the password change back for a while
    let app = spawn_app_with(|c| {
        c.login.concurrent_checks = 1;
        c.login.check_wait_ms = 30_000;
    })
    .await;
    add_user(&app, "ada", Role::Support).await;
    let ada = login(&app, "ada").await;
    let mut logins = tokio::task::JoinSet::new();
    for i in 0..8 {
        let app_url = app.url("/admin/login");
        let client = app.client.clone();
        let page = client.get(&app_url).send().await.unwrap();
        let cookie = cookie_value(&page, "usher_login_csrf").unwrap();
        let html = page.text().await.unwrap();
        let csrf = crate::admin_console::between(&html, "name=\"_csrf\" value=\"", "\"")
            .unwrap()
            .to_owned();
        logins.spawn(async move {
            client
                .post(app_url)
                .header("cookie", format!("usher_login_csrf={cookie}"))
                .form(&[
                    ("_csrf", csrf.as_str()),
                    ("name", format!("nobody-{i}").as_str()),
                    ("password", "some guess or other"),
                ])
                .send()
                .await
                .unwrap()
                .status()
        });
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let change = {
        let (app_client, url, s) = (app.client.clone(), app.url("/admin/password"), ada.clone());
        tokio::spawn(async move {
            let res = app_client
                .post(url)
                .header("cookie", &s.cookie)
                .form(&[
                    ("_csrf", s.csrf.as_str()),
                    ("current_password", PASSWORD),
                    ("new_password", NEW_PASSWORD),
                    ("confirm_password", NEW_PASSWORD),
                ])
                .send()
                .await
                .unwrap();
            (res.status(), Instant::now())
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    // meanwhile an admin changes the user's role
    let res = app
        .client
        .patch(app.url("/api/v1/admin-users/ada"))
        .bearer_auth(&app.admin_key)
        .json(&json!({"role": "observer"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let role_changed = Instant::now();
    let (status, password_changed) = change.await.unwrap();
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(
        role_changed < password_changed,
        "the role change did not land while the password change was under way; the race was not run"
    );
    while let Some(s) = logins.join_next().await {
        assert_eq!(s.unwrap(), StatusCode::UNAUTHORIZED);
    }
    let user = app
        .state
        .store
        .admin_user(&usher_core::admin::UserName::parse("ada").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.role, Role::Observer, "the role change stayed");
    assert_eq!(
        login_attempt(&app, "ada", NEW_PASSWORD).await.status(),
        StatusCode::SEE_OTHER,
        "the password change stayed"
    );
    app.shutdown().await;
}
