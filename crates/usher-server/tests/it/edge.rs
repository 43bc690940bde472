//! The edge of the server (issue 15): security headers on every kind of answer, and the audit CSV's
//! formula guard.

use reqwest::StatusCode;
use serde_json::Value;
use usher_core::admin::{Actor, AuditEntry};

use crate::support::spawn_app_with;

// ---------------------------------------------------------------------------------------------------------
// Security headers
// ---------------------------------------------------------------------------------------------------------

/// Every kind of answer says `nosniff`, carries HSTS behind an https `public_url`, and every page that
/// forbids framing in its CSP says `X-Frame-Options: DENY` too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_carries_the_security_headers() {
    let app = spawn_app_with(|c| c.public_url = Some("https://watch.example.com".into())).await;
    app.open_show("gig", 1, "newest_wins").await;
    let (_, token) = app.ticket("gig").await;
    let res = app.admit(&token, "device-aaaa0001").await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let admitted: Value = res.json().await.unwrap();
    let session = admitted["session_id"].as_str().unwrap().to_owned();
    let playlist = admitted["playlist_url"]
        .as_str()
        .unwrap()
        .trim_start_matches("https://watch.example.com")
        .to_owned();
    let master = app
        .client
        .get(app.url(&playlist))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let variant = master
        .lines()
        .map(|l| l.trim_start_matches("https://watch.example.com"))
        .find(|l| l.starts_with("/o/"))
        .unwrap_or_else(|| panic!("a variant on the origin in {master}"))
        .to_owned();
    let segment = {
        let media = app
            .client
            .get(app.url(&variant))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let seg = media.lines().find(|l| l.ends_with(".ts")).unwrap();
        format!("{}/{seg}", variant.rsplit_once('/').unwrap().0)
    };
    let ticket_cookie = format!("usher_ticket={token}");
    // (what, method, path, cookie, whether it is a page that must forbid framing)
    let answers: Vec<(&str, &str, String, Option<&str>, bool)> = vec![
        ("JSON", "GET", "/livez".into(), None, false),
        ("problem", "GET", "/no/such/route".into(), None, false),
        (
            "API document",
            "GET",
            "/api/v1/openapi.json".into(),
            None,
            false,
        ),
        ("metrics", "GET", "/metrics".into(), None, false),
        ("script", "GET", "/assets/watch.js".into(), None, false),
        ("master playlist", "GET", playlist.clone(), None, false),
        ("media playlist", "GET", variant.clone(), None, false),
        ("media segment", "GET", segment, None, false),
        (
            "heartbeat",
            "POST",
            format!("/api/v1/playback/{session}/heartbeat"),
            None,
            false,
        ),
        ("watch link", "GET", format!("/watch/{token}"), None, false),
        (
            "watch page",
            "GET",
            "/watch".into(),
            Some(ticket_cookie.as_str()),
            true,
        ),
        ("refusal page", "GET", "/watch".into(), None, true),
        (
            "API reference page",
            "GET",
            "/api/v1/docs".into(),
            None,
            true,
        ),
        (
            "console login page",
            "GET",
            "/admin/login".into(),
            None,
            true,
        ),
    ];
    for (what, method, path, cookie, page) in answers {
        let mut req = app.client.request(method.parse().unwrap(), app.url(&path));
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        let res = req.send().await.unwrap();
        let h = res.headers();
        let status = res.status();
        assert_eq!(
            h.get("x-content-type-options").map(|v| v.to_str().unwrap()),
            Some("nosniff"),
            "{what} ({status}) says nosniff"
        );
        assert_eq!(
            h.get("strict-transport-security")
                .map(|v| v.to_str().unwrap()),
            Some("max-age=31536000"),
            "{what} ({status}) carries HSTS behind https"
        );
        if page {
            let csp = h
                .get("content-security-policy")
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default();
            assert!(
                csp.contains("frame-ancestors 'none'"),
                "{what} ({status}): {csp}"
            );
            assert_eq!(
                h.get("x-frame-options").map(|v| v.to_str().unwrap()),
                Some("DENY"),
                "{what} ({status}) says X-Frame-Options next to its CSP"
            );
        }
    }
    app.shutdown().await;

    // plain http: no HSTS (browsers ignore it there, and it must not pin a site that has no https)
    let app = spawn_app_with(|_| {}).await;
    let res = app.client.get(app.url("/livez")).send().await.unwrap();
    assert!(res.headers().get("strict-transport-security").is_none());
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    app.shutdown().await;
}

// ---------------------------------------------------------------------------------------------------------
// The audit CSV
// ---------------------------------------------------------------------------------------------------------

/// Every field a spreadsheet would read as a formula (OWASP: `=`, `+`, `-`, `@`, tab, carriage return)
/// leaves the CSV export as text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_csv_defuses_every_formula_start() {
    let app = spawn_app_with(|_| {}).await;
    let starts = ['=', '+', '-', '@', '\t', '\r'];
    for (i, start) in starts.iter().enumerate() {
        app.state
            .store
            .append_audit(AuditEntry {
                at: app.state.store.now(),
                actor: Actor::System("test".into()),
                action: format!("test.formula{i}"),
                target: format!("{start}HYPERLINK(\"http://x/\")"),
                address: None,
                detail: format!("{start}cmd|' /C calc'!A0"),
            })
            .await
            .unwrap();
    }
    let res = app
        .get_with("/api/v1/audit?format=csv&action=test.", &app.admin_key)
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let csv = res.text().await.unwrap();
    let mut seen = 0;
    for line in csv.split("\r\n").skip(1).filter(|l| !l.is_empty()) {
        // at,actor_kind,actor,action,target,address,detail: the target is the 5th field
        let fields: Vec<&str> = line.splitn(5, ',').collect();
        let rest = fields[4];
        assert!(rest.starts_with("\"'"), "target not defused: {line:?}");
        assert!(rest.contains(",\"'"), "detail not defused: {line:?}");
        seen += 1;
    }
    assert_eq!(seen, starts.len(), "{csv:?}");
    app.shutdown().await;
}
