//! TV sign-in codes (issue 20, RFC 8628): a TV's code, approved by a phone holding the ticket, hands the
//! TV the ticket once; the TV then plays as one more device under the show's seat rules. Codes lapse,
//! work once, and are held to the address's limits; polls follow `interval` and `slow_down`. The flow
//! runs on both stores (on Redis the approval and the taking are one script each).

use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

use crate::support::{Backend, TestApp, assert_problem, spawn_app_on, spawn_app_with};

async fn new_code(app: &TestApp) -> Value {
    let res = app
        .client
        .post(app.url("/api/v1/tv/codes"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["cache-control"], "no-store");
    res.json().await.unwrap()
}

async fn poll(app: &TestApp, device_code: &str) -> Response {
    app.client
        .post(app.url("/api/v1/tv/token"))
        .json(&json!({
            "device_code": device_code,
            "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
        }))
        .send()
        .await
        .unwrap()
}

async fn approve(app: &TestApp, ticket_token: Option<&str>, code: &str) -> Response {
    let mut req = app
        .client
        .post(app.url("/api/v1/tv/activate"))
        .json(&json!({"user_code": code}));
    if let Some(t) = ticket_token {
        req = req.header("cookie", format!("usher_ticket={t}"));
    }
    req.send().await.unwrap()
}

/// The value of the `usher_ticket` cookie a response sets, checking it is HttpOnly.
fn ticket_cookie(res: &Response) -> Option<String> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("usher_ticket="))
        .map(|c| {
            assert!(c.contains("HttpOnly"), "{c}");
            c["usher_ticket=".len()..]
                .split(';')
                .next()
                .unwrap()
                .to_owned()
        })
}

/// The TV admits with the ticket cookie its approved code gave it (as the watch page does).
async fn tv_admits(app: &TestApp, cookie_token: &str) -> Response {
    app.client
        .post(app.url("/api/v1/playback"))
        .header("cookie", format!("usher_ticket={cookie_token}"))
        .header("x-usher-device", "dev_living_room_tv")
        .send()
        .await
        .unwrap()
}

async fn signs_a_tv_in_once(backend: Backend) {
    let app = spawn_app_on(backend).await;
    app.open_show("s1", 1, "newest_wins").await;
    let (_, token) = app.ticket("s1").await;

    let code = new_code(&app).await;
    let user_code = code["user_code"].as_str().unwrap().to_owned();
    let device_code = code["device_code"].as_str().unwrap().to_owned();
    assert!(
        user_code.len() == 9
            && user_code.as_bytes()[4] == b'-'
            && user_code
                .bytes()
                .all(|b| b == b'-' || b"BCDFGHJKLMNPQRSTVWXZ".contains(&b)),
        "{user_code}"
    );
    assert_eq!(
        (code["expires_in"].as_u64(), code["interval"].as_u64()),
        (Some(600), Some(5))
    );
    let activate = code["verification_uri"].as_str().unwrap();
    assert!(activate.ends_with("/activate"), "{activate}");
    assert_eq!(
        code["verification_uri_complete"],
        format!("{activate}?code={user_code}")
    );
    assert!(code["qr_svg"].as_str().unwrap().contains("<svg"));

    // waiting: the first poll is pending, one at once is too early and grows the interval
    let p = assert_problem(
        poll(&app, &device_code).await,
        StatusCode::BAD_REQUEST,
        "authorization_pending",
    )
    .await;
    assert_eq!(
        (p["error"].as_str(), p["interval"].as_u64()),
        (Some("authorization_pending"), Some(5))
    );
    let p = assert_problem(
        poll(&app, &device_code).await,
        StatusCode::BAD_REQUEST,
        "slow_down",
    )
    .await;
    assert_eq!(p["interval"], 10);

    // the phone: it must hold the ticket, and type a code that waits
    assert_problem(
        approve(&app, None, &user_code).await,
        StatusCode::UNAUTHORIZED,
        "no_ticket",
    )
    .await;
    assert_problem(
        approve(&app, Some(&token), "BCDF-BCDF").await,
        StatusCode::NOT_FOUND,
        "tv_code_unknown",
    )
    .await;
    assert_problem(
        approve(&app, Some(&token), "not a code").await,
        StatusCode::NOT_FOUND,
        "tv_code_unknown",
    )
    .await;
    let typed = user_code.to_lowercase().replace('-', " ");
    let res = approve(&app, Some(&token), &typed).await;
    assert_eq!(res.status(), StatusCode::OK);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["show_title"], "Show s1");
    assert_problem(
        approve(&app, Some(&token), &user_code).await,
        StatusCode::NOT_FOUND,
        "tv_code_unknown",
    )
    .await;

    // another device code with the same user code takes nothing
    let forged = format!("{}.{}", user_code.replace('-', ""), "A".repeat(43));
    assert_problem(
        poll(&app, &forged).await,
        StatusCode::BAD_REQUEST,
        "expired_token",
    )
    .await;

    // the phone plays first; the TV's poll takes the ticket once, and the TV takes the seat
    let phone = app.admit(&token, "dev_phone_01").await;
    assert_eq!(phone.status(), StatusCode::CREATED);
    let phone: Value = phone.json().await.unwrap();
    let res = poll(&app, &device_code).await;
    assert_eq!(res.status(), StatusCode::OK);
    let tv_token = ticket_cookie(&res).expect("the TV gets the ticket cookie");
    assert_eq!(tv_token, token, "the TV holds the phone's ticket");
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["watch_url"], "/watch");
    assert_problem(
        poll(&app, &device_code).await,
        StatusCode::BAD_REQUEST,
        "expired_token",
    )
    .await;

    assert_eq!(
        tv_admits(&app, &tv_token).await.status(),
        StatusCode::CREATED
    );
    let hb = app
        .client
        .post(app.url(&format!(
            "/api/v1/playback/{}/heartbeat",
            phone["session_id"].as_str().unwrap()
        )))
        .header(
            "x-usher-session-secret",
            phone["session_secret"].as_str().unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_problem(hb, StatusCode::CONFLICT, "superseded").await;
    app.shutdown().await;
}

#[tokio::test]
async fn a_phone_holding_the_ticket_signs_a_tv_in_once() {
    signs_a_tv_in_once(Backend::Embedded).await;
}

#[tokio::test]
async fn a_phone_holding_the_ticket_signs_a_tv_in_once_on_redis() {
    signs_a_tv_in_once(Backend::Redis).await;
}

/// Under `oldest_wins` with one device, the TV is told the ticket is in use while the phone plays.
#[tokio::test]
async fn under_oldest_wins_the_tv_waits_for_the_seat() {
    let app = spawn_app_with(|c| c.tv.poll_interval_s = 2).await;
    app.open_show("s1", 1, "oldest_wins").await;
    let (_, token) = app.ticket("s1").await;
    let code = new_code(&app).await;
    let ok = approve(&app, Some(&token), code["user_code"].as_str().unwrap()).await;
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(
        app.admit(&token, "dev_phone_01").await.status(),
        StatusCode::CREATED
    );
    let res = poll(&app, code["device_code"].as_str().unwrap()).await;
    let tv_token = ticket_cookie(&res).unwrap();
    assert_problem(
        tv_admits(&app, &tv_token).await,
        StatusCode::CONFLICT,
        "ticket_in_use",
    )
    .await;
    app.shutdown().await;
}

/// A code lapses after `tv.code_ttl_s`: the phone can no longer approve it, the TV's poll is told
/// `expired_token`.
#[tokio::test]
async fn a_lapsed_code_is_refused() {
    let app = spawn_app_with(|c| {
        c.tv.code_ttl_s = 5;
        c.tv.poll_interval_s = 2;
    })
    .await;
    app.open_show("s1", 1, "newest_wins").await;
    let (_, token) = app.ticket("s1").await;
    let code = new_code(&app).await;
    assert_eq!(code["expires_in"], 5);
    tokio::time::sleep(std::time::Duration::from_millis(5_300)).await;
    assert_problem(
        approve(&app, Some(&token), code["user_code"].as_str().unwrap()).await,
        StatusCode::NOT_FOUND,
        "tv_code_unknown",
    )
    .await;
    assert_problem(
        poll(&app, code["device_code"].as_str().unwrap()).await,
        StatusCode::BAD_REQUEST,
        "expired_token",
    )
    .await;
    app.shutdown().await;
}

/// Codes made are limited per address, and each code typed or polled that is not waiting spends a
/// failed lookup of the address's budget, as an unknown ticket does: a guesser is cut off.
#[tokio::test]
async fn code_guessers_and_code_floods_are_cut_off() {
    let app = spawn_app_with(|c| {
        c.rate_limits.tv_codes = usher_server::settings::Limit::new(2, 1);
        c.rate_limits.ticket_lookup_failures = usher_server::settings::Limit::new(3, 1);
    })
    .await;
    app.open_show("s1", 1, "newest_wins").await;
    let (_, token) = app.ticket("s1").await;
    new_code(&app).await;
    new_code(&app).await;
    let res = app
        .client
        .post(app.url("/api/v1/tv/codes"))
        .send()
        .await
        .unwrap();
    assert!(res.headers().contains_key("retry-after"));
    assert_problem(res, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;

    for guess in ["BCDF-GHJK", "ZXWV-TSRQ"] {
        assert_problem(
            approve(&app, Some(&token), guess).await,
            StatusCode::NOT_FOUND,
            "tv_code_unknown",
        )
        .await;
    }
    let forged = format!("BCDFGHJK.{}", "A".repeat(43));
    assert_problem(
        poll(&app, &forged).await,
        StatusCode::BAD_REQUEST,
        "expired_token",
    )
    .await;
    assert_problem(
        approve(&app, Some(&token), "BCDF-GHJL").await,
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
    )
    .await;
    assert_problem(
        poll(&app, &forged).await,
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
    )
    .await;
    app.shutdown().await;
}

/// The phone's page names the show of the ticket it holds and fills in the code from the QR code's
/// link; without a ticket it says to open the watch link first. The TV's page loads its script.
#[tokio::test]
async fn the_pages_say_what_to_do() {
    let app = spawn_app_on(Backend::Embedded).await;
    app.open_show("s1", 1, "newest_wins").await;
    let (_, token) = app.ticket("s1").await;

    let res = app.client.get(app.url("/tv")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let csp = res.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("connect-src 'self'"), "{csp}");
    let html = res.text().await.unwrap();
    assert!(
        html.contains("tv.js\" defer") && html.contains("activate</strong>"),
        "{html}"
    );
    let js = app
        .client
        .get(app.url("/assets/tv.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(js.status(), StatusCode::OK);

    let res = app
        .client
        .get(app.url("/activate?code=BCDF-GHJK\"><script>"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let html = res.text().await.unwrap();
    assert!(
        html.contains("Open the watch link from your ticket on this phone first"),
        "{html}"
    );

    let res = app
        .client
        .get(app.url("/activate?code=BCDF-GHJK\"><script>"))
        .header("cookie", format!("usher_ticket={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let html = res.text().await.unwrap();
    assert!(html.contains("Show s1"), "{html}");
    assert!(
        html.contains(r#"value="BCDF-GHJKscript""#),
        "only the code's letters are kept: {html}"
    );
    assert!(!html.contains("<script>"));
    app.shutdown().await;
}

/// The phone's page for a ticket cookie, and its approval of a waiting code.
async fn page_and_approval(app: &TestApp, token: &str) -> (Response, Response) {
    let code = new_code(app).await;
    let page = app
        .client
        .get(app.url("/activate"))
        .header("cookie", format!("usher_ticket={token}"))
        .send()
        .await
        .unwrap();
    let approval = approve(app, Some(token), code["user_code"].as_str().unwrap()).await;
    (page, approval)
}

/// A ticket that cannot play — revoked, its show taken off, its window closed, or unknown — lends no TV
/// a seat: the phone's page and its approval both say why. A ticket whose show has not started may
/// (the TV counts down). An address out of failed lookups gets the page that says to wait.
#[tokio::test]
async fn a_ticket_that_cannot_play_lends_no_tv_a_seat() {
    let app = spawn_app_with(|c| {
        c.rate_limits.ticket_lookup_failures = usher_server::settings::Limit::new(2, 1);
    })
    .await;
    let now = time::OffsetDateTime::now_utc();
    let show = |from: time::OffsetDateTime, to: time::OffsetDateTime| {
        json!({
            "title": "A show",
            "starts_at": crate::support::rfc3339(from),
            "ends_at": crate::support::rfc3339(to),
            "stream_path": "demo",
        })
    };
    let hour = time::Duration::hours(1);
    for (id, from, to) in [
        ("open", now - hour, now + hour),
        ("later", now + hour, now + 2 * hour),
        ("over", now - 2 * hour, now - hour),
    ] {
        assert!(app.put_show(id, show(from, to)).await.status().is_success());
    }

    let (_, later) = app.ticket("later").await;
    let (page, approval) = page_and_approval(&app, &later).await;
    assert_eq!(
        (page.status(), approval.status()),
        (StatusCode::OK, StatusCode::OK)
    );

    let (_, over) = app.ticket("over").await;
    let (page, approval) = page_and_approval(&app, &over).await;
    assert_eq!(page.status(), StatusCode::GONE);
    assert_problem(approval, StatusCode::GONE, "ended").await;

    let (revoked_id, revoked) = app.ticket("open").await;
    let res = app
        .client
        .post(app.url(&format!("/api/v1/tickets/{revoked_id}/revoke")))
        .bearer_auth(&app.tickets_key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let (page, approval) = page_and_approval(&app, &revoked).await;
    assert_eq!(page.status(), StatusCode::FORBIDDEN);
    assert_problem(approval, StatusCode::FORBIDDEN, "ticket_revoked").await;

    let (_, open) = app.ticket("open").await;
    let res = app
        .client
        .put(app.url("/api/v1/shows/open/published"))
        .bearer_auth(&app.admin_key)
        .json(&json!({"published": false}))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success());
    let (page, approval) = page_and_approval(&app, &open).await;
    assert_eq!(page.status(), StatusCode::FORBIDDEN);
    assert_problem(approval, StatusCode::FORBIDDEN, "show_unpublished").await;

    // an unknown ticket: the page and the call say so, and each spends a failed lookup
    let unknown = "Z".repeat(43);
    let (page, approval) = page_and_approval(&app, &unknown).await;
    assert_eq!(page.status(), StatusCode::NOT_FOUND);
    assert_problem(approval, StatusCode::NOT_FOUND, "ticket_unknown").await;
    let (page, approval) = page_and_approval(&app, &unknown).await;
    assert_eq!(page.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(page.headers().contains_key("retry-after"));
    assert_problem(approval, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;

    // a poll naming another grant type is refused before anything is looked up
    let res = app
        .client
        .post(app.url("/api/v1/tv/token"))
        .json(&json!({"device_code": "x", "grant_type": "password"}))
        .send()
        .await
        .unwrap();
    assert_problem(res, StatusCode::BAD_REQUEST, "invalid_request").await;
    app.shutdown().await;
}
