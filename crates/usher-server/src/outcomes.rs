//! Admit outcomes per minute for the dashboard ("admits and refusals in the last hour, by reason"):
//! counted in memory on the admit path (no store call there) and added to the store's per-minute
//! counts every second, so every node's admits appear on every node's dashboard.
//!
//! And the refusals the ticket site hears of ([`RefusalTally`]): per show and reason, drained every
//! `webhooks.refusals_every_s` into one `session.refused` event per show.

use std::collections::HashMap;
use std::sync::Mutex;

use usher_core::admin::{OutcomeCount, minute_of};
use usher_core::clock::UnixMs;
use usher_core::ids::ShowId;
use usher_core::store::{Store, StoreError};

/// Counts not yet added to the store.
#[derive(Debug, Default)]
pub struct OutcomeTally {
    pending: Mutex<HashMap<(i64, &'static str), u64>>,
}

impl OutcomeTally {
    /// Counts one admit ending with `outcome` (`admitted`, `reattached` or a refusal's code) at `now`.
    pub fn note(&self, now: UnixMs, outcome: &'static str) {
        let mut p = self
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *p.entry((minute_of(now).0, outcome)).or_default() += 1;
    }

    /// Adds the pending counts to the store; on failure they stay pending for the next try.
    ///
    /// # Errors
    /// The store's error.
    pub async fn flush(&self, store: &dyn Store) -> Result<(), StoreError> {
        let drained: Vec<((i64, &'static str), u64)> = {
            let mut p = self
                .pending
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            p.drain().collect()
        };
        if drained.is_empty() {
            return Ok(());
        }
        let counts = drained
            .iter()
            .map(|((minute, outcome), count)| OutcomeCount {
                minute: UnixMs(*minute),
                outcome: (*outcome).to_owned(),
                count: *count,
            })
            .collect();
        if let Err(e) = store.add_outcome_counts(counts).await {
            let mut p = self
                .pending
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for (k, n) in drained {
                *p.entry(k).or_default() += n;
            }
            return Err(e);
        }
        Ok(())
    }
}

/// The refusal codes `session.refused` reports: where the show is not offered, a seat taken, the window
/// not open yet or closed. (A revoked ticket has its own event; unknown tickets name no show.)
pub const REPORTED_REFUSALS: [crate::service::Code; 4] = [
    crate::service::Code::GeoBlocked,
    crate::service::Code::TicketInUse,
    crate::service::Code::NotStarted,
    crate::service::Code::Ended,
];

/// Refusals per show and reason since the last drain.
#[derive(Debug, Default)]
pub struct RefusalTally {
    pending: Mutex<HashMap<ShowId, HashMap<&'static str, u64>>>,
}

/// One show's refusals in a window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShowRefusals {
    /// The show.
    pub show_id: ShowId,
    /// Count per refusal code.
    pub counts: Vec<(&'static str, u64)>,
}

impl RefusalTally {
    /// Counts one refused admit of `show` with `code`, when it is one [`REPORTED_REFUSALS`] names.
    pub fn note(&self, show: &ShowId, code: crate::service::Code) {
        if !REPORTED_REFUSALS.contains(&code) {
            return;
        }
        let mut p = self
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *p.entry(show.clone())
            .or_default()
            .entry(code.as_str())
            .or_default() += 1;
    }

    /// Takes every count so far, per show (codes in [`REPORTED_REFUSALS`]'s order).
    pub fn drain(&self) -> Vec<ShowRefusals> {
        let drained: Vec<_> = {
            let mut p = self
                .pending
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            p.drain().collect()
        };
        let mut out: Vec<ShowRefusals> = drained
            .into_iter()
            .map(|(show_id, by_code)| ShowRefusals {
                show_id,
                counts: REPORTED_REFUSALS
                    .iter()
                    .filter_map(|c| by_code.get(c.as_str()).map(|n| (c.as_str(), *n)))
                    .collect(),
            })
            .collect();
        out.sort_by(|a, b| a.show_id.as_str().cmp(b.show_id.as_str()));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::Code;

    #[test]
    fn refusals_are_counted_per_show_and_reason_and_drained_once() {
        let t = RefusalTally::default();
        let (a, b) = (ShowId::parse("a").unwrap(), ShowId::parse("b").unwrap());
        for _ in 0..3 {
            t.note(&a, Code::GeoBlocked);
        }
        t.note(&a, Code::Ended);
        t.note(&b, Code::TicketInUse);
        t.note(&b, Code::TicketUnknown); // not reported
        t.note(&b, Code::RateLimited); // not reported
        assert_eq!(
            t.drain(),
            vec![
                ShowRefusals {
                    show_id: a,
                    counts: vec![("geo_blocked", 3), ("ended", 1)]
                },
                ShowRefusals {
                    show_id: b,
                    counts: vec![("ticket_in_use", 1)]
                },
            ]
        );
        assert!(t.drain().is_empty());
    }
}
