//! Tickets' personal data over time: the `[privacy]` retention rules, as cut-off instants of the store's
//! clock, applied to every ticket's usage by a node's background task (`tasks.rs`). Erasing one ticket's
//! data on request is a ticket action: [`crate::service::admin::tickets::erase_personal_data`].

use usher_core::clock::UnixMs;
use usher_core::privacy::{AddressAging, Retention};

use crate::settings::{AddressesAfter, PrivacySettings};
use crate::state::AppState;

const DAY_MS: i64 = 86_400_000;

/// Most [`usher_core::store::Store::retain_usage`] batches one run makes: a pass over a large Redis
/// goes on at the next run instead of keeping the store busy.
const BATCHES_PER_RUN: usize = 100;

/// The rules of `settings` at `now`.
pub fn retention(settings: &PrivacySettings, now: UnixMs) -> Retention {
    let before = |days: u32| UnixMs(now.0.saturating_sub(i64::from(days) * DAY_MS));
    Retention {
        addresses_before: before(settings.addresses_keep_days),
        addresses: match settings.addresses_after {
            AddressesAfter::Truncate => AddressAging::Truncate,
            AddressesAfter::Drop => AddressAging::Drop,
        },
        usage_before: (settings.usage_keep_days > 0).then(|| before(settings.usage_keep_days)),
    }
}

/// Applies the retention rules to the next batches of tickets, until a pass over every ticket ends or
/// [`BATCHES_PER_RUN`] batches are done. A store that fails is logged and tried again at the next run.
pub async fn apply_retention(state: &AppState) {
    let rules = retention(&state.config.privacy, state.store.now());
    let mut changed = 0;
    for _ in 0..BATCHES_PER_RUN {
        match state.store.retain_usage(&rules).await {
            Ok(batch) => {
                changed += batch.tickets;
                if batch.done {
                    break;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "privacy retention not applied; will retry");
                break;
            }
        }
    }
    if changed > 0 {
        tracing::info!(
            tickets = changed,
            "tickets' usage past its retention truncated or dropped"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_become_cut_offs_and_zero_keeps_usage() {
        let now = UnixMs(100 * DAY_MS);
        let mut s = PrivacySettings::default();
        let r = retention(&s, now);
        assert_eq!(r.addresses_before, UnixMs(70 * DAY_MS));
        assert_eq!(r.addresses, AddressAging::Truncate);
        assert_eq!(r.usage_before, Some(UnixMs(-265 * DAY_MS)));
        s.usage_keep_days = 0;
        s.addresses_after = AddressesAfter::Drop;
        let r = retention(&s, now);
        assert_eq!(r.usage_before, None);
        assert_eq!(r.addresses, AddressAging::Drop);
    }
}
