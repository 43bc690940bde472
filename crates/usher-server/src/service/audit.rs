//! The audit log: every change made through the API or the console, with who (API key id or user name),
//! what, the target, when and from which address; read filtered, as JSON or CSV.

use std::net::IpAddr;

use usher_core::admin::{Actor, AuditEntry};
use usher_core::store::{Store, StoreError};

use crate::service::auth::Caller;
use crate::state::AppState;

/// Records a change made by `caller`. A failure to write is logged (the change itself already happened
/// and is answered); it never carries a secret: callers pass ids and short notes only.
pub async fn record(state: &AppState, caller: &Caller, action: &str, target: &str, detail: &str) {
    record_system(
        state,
        caller.actor(),
        action,
        target,
        Some(caller.address),
        detail,
    )
    .await;
}

/// The entry [`record`] would append, for a store step that writes it together with its change
/// ([`Store::register_tickets_audited`]).
pub fn entry(
    state: &AppState,
    caller: &Caller,
    action: &str,
    target: &str,
    detail: &str,
) -> AuditEntry {
    entry_at(
        &*state.store,
        caller.actor(),
        action,
        target,
        Some(caller.address),
        detail,
    )
}

fn entry_at(
    store: &dyn Store,
    actor: Actor,
    action: &str,
    target: &str,
    address: Option<IpAddr>,
    detail: &str,
) -> AuditEntry {
    AuditEntry {
        at: store.now(),
        actor,
        action: action.to_owned(),
        target: target.to_owned(),
        address: address.map(|a| a.to_string()),
        detail: detail.to_owned(),
    }
}

/// Records an entry for an actor that is not a [`Caller`] (logins, bootstrap).
pub async fn record_system(
    state: &AppState,
    actor: Actor,
    action: &str,
    target: &str,
    address: Option<IpAddr>,
    detail: &str,
) {
    if let Err(e) = append(&*state.store, actor, action, target, address, detail).await {
        tracing::error!(error = %e, audit.action = action, audit.target = target, "audit entry not written");
    }
}

/// Appends an entry to the store's audit log, timed by the store's clock (for the CLI, which has a store
/// and no server state).
///
/// # Errors
/// The store's error.
pub async fn append(
    store: &dyn Store,
    actor: Actor,
    action: &str,
    target: &str,
    address: Option<IpAddr>,
    detail: &str,
) -> Result<(), StoreError> {
    store
        .append_audit(entry_at(store, actor, action, target, address, detail))
        .await
}

/// What a spreadsheet may read as the start of a formula (OWASP, "CSV Injection"): `=`, `+`, `-`, `@`,
/// a tab and a carriage return.
const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

fn csv_field(s: &str) -> String {
    // a field that a spreadsheet would run as a formula is kept as text behind an apostrophe
    let s = if s.starts_with(FORMULA_STARTS) {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    if s.contains([',', '"', '\n', '\r']) || s.starts_with('\'') {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// The entries as CSV (RFC 4180), with a header line.
pub fn to_csv(entries: &[AuditEntry]) -> String {
    let mut out = String::from("at,actor_kind,actor,action,target,address,detail\r\n");
    for e in entries {
        let fields = [
            e.at.to_rfc3339(),
            e.actor.kind().to_owned(),
            e.actor.id().to_owned(),
            e.action.clone(),
            e.target.clone(),
            e.address.clone().unwrap_or_default(),
            e.detail.clone(),
        ];
        let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        out.push_str(&line.join(","));
        out.push_str("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use usher_core::clock::UnixMs;

    #[test]
    fn csv_quotes_and_defuses_formulas() {
        let e = AuditEntry {
            at: UnixMs(0),
            actor: Actor::User("ann".into()),
            action: "show.put".into(),
            target: "show:a".into(),
            address: Some("192.0.2.1".into()),
            detail: "title=\"A, B\"".into(),
        };
        let mut f = e.clone();
        f.detail = "=HYPERLINK(1)".into();
        let csv = to_csv(&[e, f]);
        let lines: Vec<&str> = csv.split("\r\n").collect();
        assert_eq!(lines[0], "at,actor_kind,actor,action,target,address,detail");
        assert!(
            lines[1].ends_with(",\"title=\"\"A, B\"\"\""),
            "{}",
            lines[1]
        );
        assert!(lines[2].ends_with(",\"'=HYPERLINK(1)\""), "{}", lines[2]);
    }

    #[test]
    fn every_formula_start_of_owasp_is_defused() {
        for start in ['=', '+', '-', '@', '\t', '\r'] {
            let field = format!("{start}cmd|' /C calc'!A0");
            let out = csv_field(&field);
            assert!(out.starts_with("\"'"), "{field:?} → {out:?}");
        }
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a=b"), "a=b");
    }
}
