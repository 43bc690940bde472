//! The edge of the server (issue 15): the audit CSV's formula guard.

use reqwest::StatusCode;
use usher_core::admin::{Actor, AuditEntry};

use crate::support::spawn_app_with;

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
