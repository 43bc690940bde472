//! Admit outcomes per minute for the dashboard ("admits and refusals in the last hour, by reason"):
//! counted in memory on the admit path (no store call there) and added to the store's per-minute
//! counts every second, so every node's admits appear on every node's dashboard.

use std::collections::HashMap;
use std::sync::Mutex;

use usher_core::admin::{OutcomeCount, minute_of};
use usher_core::clock::UnixMs;
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
