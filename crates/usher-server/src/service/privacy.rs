//! Tickets' personal data over time: the `[privacy]` retention rules, as cut-off instants of the store's
//! clock, applied to every ticket's usage by a node's background task (`tasks.rs`). Erasing one ticket's
//! data on request is a ticket action: [`crate::service::admin::tickets::erase_personal_data`].

use std::sync::Mutex;
use std::time::{Duration, Instant};

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

/// How long a node waits after a pass over every ticket before it starts the next. The rules count in
/// days, so an hour's rest applies each within an hour of when it falls due. Every pass reads every
/// ticket: on Redis each read is a script of ~60 µs of redis-server's time, and a pass a minute over
/// 100,000 tickets took ~5 s of it a minute, beside the hot paths (BENCHMARKS.md, issue 16's sixteenth
/// step).
pub const PASS_REST: Duration = Duration::from_secs(3_600);

/// Where a node's retention passes stand: its next may start at once, then [`PASS_REST`] after each
/// ended (or after another node claimed one: [`usher_core::store::Store::claim_retention_pass`]).
#[derive(Debug, Default)]
pub struct RetentionPace {
    state: Mutex<Pace>,
}

#[derive(Debug, Default)]
struct Pace {
    rest_until: Option<Instant>,
    under_way: bool,
}

/// What a run does next.
#[derive(Debug, PartialEq, Eq)]
enum Next {
    Rest,
    /// A new pass, to be claimed first.
    Start,
    GoOn,
}

impl RetentionPace {
    fn pace(&self) -> std::sync::MutexGuard<'_, Pace> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// What a run at `now` does.
    fn next(&self, now: Instant) -> Next {
        let pace = self.pace();
        if pace.under_way {
            Next::GoOn
        } else if pace.rest_until.is_none_or(|until| now >= until) {
            Next::Start
        } else {
            Next::Rest
        }
    }

    /// This node's pass began (it claimed it).
    fn started(&self) {
        self.pace().under_way = true;
    }

    /// This node's pass ended at `now`, or another node's claim of the pass left none to this one.
    fn pass_ended(&self, now: Instant) {
        *self.pace() = Pace {
            rest_until: Some(now + PASS_REST),
            under_way: false,
        };
    }
}

/// Applies the retention rules to the next batches of tickets, until a pass over every ticket ends or
/// [`BATCHES_PER_RUN`] batches are done; after a pass, nothing until `pace` says the next is due. A store
/// that fails is logged and tried again at the next run.
pub async fn apply_retention(state: &AppState, pace: &RetentionPace) {
    match pace.next(Instant::now()) {
        Next::Rest => return,
        Next::GoOn => {}
        // on Redis one pass for every node: the node that claims it makes it
        Next::Start => match state.store.claim_retention_pass(PASS_REST).await {
            Ok(true) => pace.started(),
            Ok(false) => return pace.pass_ended(Instant::now()),
            Err(e) => {
                tracing::warn!(error = %e, "privacy retention not applied; will retry");
                return;
            }
        },
    }
    let rules = retention(&state.config.privacy, state.store.now());
    let mut changed = 0;
    for _ in 0..BATCHES_PER_RUN {
        match state.store.retain_usage(&rules).await {
            Ok(batch) => {
                changed += batch.tickets;
                if batch.done {
                    pace.pass_ended(Instant::now());
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
    fn a_pass_starts_at_once_goes_on_and_the_next_starts_an_hour_after_the_last_ended() {
        let pace = RetentionPace::default();
        let t0 = Instant::now();
        assert_eq!(pace.next(t0), Next::Start);
        pace.started();
        assert_eq!(pace.next(t0 + Duration::from_secs(60)), Next::GoOn);
        assert_eq!(pace.next(t0 + 2 * PASS_REST), Next::GoOn, "until it ends");
        pace.pass_ended(t0);
        assert_eq!(pace.next(t0 + Duration::from_secs(60)), Next::Rest);
        assert_eq!(
            pace.next(t0 + PASS_REST - Duration::from_secs(1)),
            Next::Rest
        );
        assert_eq!(pace.next(t0 + PASS_REST), Next::Start);
    }

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
