//! The README's client examples for the ticket site (docs/examples/), run as written against a real
//! server (issue 20): curl, Python and JavaScript register, batch-register, look up and revoke; the Python
//! and JavaScript webhook receivers verify the signed events Usher sends them and drop repeats.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};

use crate::support::{TestApp, spawn_app_with};

fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/examples")
}

async fn app() -> TestApp {
    let app = spawn_app_with(|c| {
        c.webhooks.poll_ms = 100;
        c.webhooks.allow_private_targets = true;
    })
    .await;
    app.open_show("concert", 1, "newest_wins").await;
    app
}

/// Runs an example client to its end; its output.
async fn run(app: &TestApp, program: &str, script: &str) -> String {
    let out = Command::new(program)
        .arg(examples().join(script))
        .env("USHER_URL", app.url(""))
        .env("USHER_KEY", &app.tickets_key)
        .env("SHOW_ID", "concert")
        .output()
        .await
        .unwrap_or_else(|e| panic!("{program} {script}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{script} failed: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[tokio::test]
async fn the_ticket_site_examples_run_as_written() {
    let app = app().await;
    for (program, script) in [
        ("bash", "ticket-site.sh"),
        ("python3", "ticket_site.py"),
        ("node", "ticket-site.mjs"),
    ] {
        let out = run(&app, program, script).await;
        for line in [
            "registered t_",
            "batch created ",
            "found 1",
            "status revoked",
        ] {
            assert!(out.contains(line), "{script}: no {line:?} in\n{out}");
        }
    }
    app.shutdown().await;
}

/// Starts a receiver example on a free port; the child and its stdout lines.
async fn receiver(
    program: &str,
    script: &str,
    secret: &str,
) -> (
    Child,
    tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    u16,
) {
    let mut child = Command::new(program)
        .arg(examples().join(script))
        .arg("0")
        .env("WEBHOOK_SECRET", secret)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("{program} {script}: {e}"));
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .expect("the receiver says where it listens")
        .unwrap()
        .unwrap_or_default();
    let port = first
        .strip_prefix("listening ")
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("{script} printed {first:?}"));
    (child, lines, port)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_webhook_receiver_examples_verify_what_usher_sends() {
    let app = app().await;
    for (program, script) in [
        ("python3", "receive_webhook.py"),
        ("node", "receive-webhook.mjs"),
    ] {
        // the endpoint first (its secret is shown once), then the receiver with it, then its URL
        let res = app
            .client
            .post(app.url("/api/v1/webhooks"))
            .bearer_auth(&app.admin_key)
            .json(&json!({"url": "http://127.0.0.1:9/", "events": ["ticket.revoked"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
        let endpoint: Value = res.json().await.unwrap();
        let (secret, id) = (
            endpoint["secret"].as_str().unwrap(),
            endpoint["id"].as_str().unwrap(),
        );
        let (_child, mut lines, port) = receiver(program, script, secret).await;
        let res = app
            .client
            .patch(app.url(&format!("/api/v1/webhooks/{id}")))
            .bearer_auth(&app.admin_key)
            .json(&json!({"url": format!("http://127.0.0.1:{port}/")}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);

        let (ticket, _) = app.ticket("concert").await;
        let res = app
            .client
            .post(app.url(&format!("/api/v1/tickets/{ticket}/revoke")))
            .bearer_auth(&app.tickets_key)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let line = tokio::time::timeout(Duration::from_secs(15), lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("{script} verified nothing in 15 s"))
            .unwrap()
            .unwrap_or_default();
        assert!(
            line.starts_with("verified ticket.revoked evt_") && line.contains(&ticket),
            "{script}: {line}"
        );
        // a re-send repeats the event id: the receiver answers 2xx and drops it
        let log: Value = app
            .get_with(&format!("/api/v1/webhooks/{id}/deliveries"), &app.admin_key)
            .await
            .json()
            .await
            .unwrap();
        let delivery = log["deliveries"][0]["id"].as_str().unwrap().to_owned();
        let res = app
            .client
            .post(app.url(&format!(
                "/api/v1/webhooks/{id}/deliveries/{delivery}/resend"
            )))
            .bearer_auth(&app.admin_key)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::ACCEPTED);
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        let log: Value = app
            .get_with(&format!("/api/v1/webhooks/{id}/deliveries"), &app.admin_key)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(log["deliveries"][0]["last_status"], 204, "{log}");
        assert!(
            tokio::time::timeout(Duration::from_millis(300), lines.next_line())
                .await
                .is_err(),
            "{script} printed the repeat"
        );
        // and a forged delivery is refused
        let res = app
            .client
            .post(format!("http://127.0.0.1:{port}/"))
            .header(
                "usher-signature",
                format!(
                    "t={},v1={}",
                    time::OffsetDateTime::now_utc().unix_timestamp(),
                    "0".repeat(64)
                ),
            )
            .body(r#"{"id":"evt_forged","type":"ticket.revoked","data":{}}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
        let res = app
            .client
            .delete(app.url(&format!("/api/v1/webhooks/{id}")))
            .bearer_auth(&app.admin_key)
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success());
    }
    app.shutdown().await;
}
