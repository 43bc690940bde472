//! Rate limits (`[rate_limits]`), kept in this node's memory with `governor`'s GCRA: each limit is a
//! bucket per key (a client address, a ticket, an API key, a caller) of `burst` attempts that refills by
//! `per_minute` a minute; an empty bucket answers 429 `rate_limited` with the seconds until the next
//! attempt. Several nodes behind one load balancer each keep their own buckets.
//!
//! Two kinds:
//! - [`Budget`]: every attempt counts (admits per ticket, requests per API key, searches, logins).
//! - [`FailureBudget`]: only failures count (ticket lookups, session-secret checks), so a viewer with a
//!   valid ticket or session never spends anything, however many share the address. A ticket lookup
//!   *reserves* a failure before it runs and gives it back when it finds its ticket
//!   ([`FailureBudget::reserve`]): guesses sent all at once cannot run more lookups than the budget holds
//!   (refusing only after the lookup would still tell the guesser which of them hit). A session check,
//!   whose 128-bit secret no budget needs to protect, only waits while the budget is empty
//!   ([`FailureBudget::gate`]) and spends one on a failure ([`FailureBudget::failed`]), so any number of
//!   heartbeats may be under way at once.
//!
//! Client addresses are keyed as [`ClientKey`] (the per-address connection cap's key): an IPv4 address,
//! or an IPv6 address's /64 (one subscriber's network).

use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use governor::clock::{Clock, DefaultClock, Reference};
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::StateStore;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

use crate::server::ClientKey;
use crate::settings::{Limit, RateLimits};

/// A refusal: the bucket is empty; the next attempt fits in `retry_after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    /// How long until the next attempt is allowed.
    pub retry_after: Duration,
}

impl Limited {
    /// Whole seconds to wait (at least 1), for `Retry-After`.
    pub fn retry_after_s(self) -> u64 {
        self.retry_after.as_secs_f64().ceil().max(1.0) as u64
    }
}

fn quota(limit: Limit) -> Option<Quota> {
    if !limit.is_on() {
        return None;
    }
    let period = Duration::from_secs(60) / limit.per_minute;
    Some(Quota::with_period(period)?.allow_burst(NonZeroU32::new(limit.burst)?))
}

/// A limit on which every attempt counts, per key `K`.
pub struct Budget<K: Hash + Eq + Clone> {
    limiter: RateLimiter<K, DefaultKeyedStateStore<K>, DefaultClock>,
}

impl<K: Hash + Eq + Clone> Budget<K> {
    /// The limit, or `None` when it is off.
    pub fn new(limit: Limit) -> Option<Self> {
        Some(Self {
            limiter: RateLimiter::keyed(quota(limit)?),
        })
    }

    /// Counts one attempt of `key`.
    ///
    /// # Errors
    /// [`Limited`] when its bucket is empty.
    pub fn check(&self, key: &K) -> Result<(), Limited> {
        self.limiter.check_key(key).map_err(|not_until| Limited {
            retry_after: not_until.wait_time_from(self.limiter.clock().now()),
        })
    }

    /// Forgets the keys whose bucket is full again.
    fn prune(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }
}

/// Each key's GCRA state (the "theoretical arrival time" of its next attempt, in nanoseconds since the
/// limiter's start), shared between the limiter and the [`FailureBudget`] that gives attempts back.
/// `governor` asks a state store only to measure and replace a value atomically; this one can also take
/// one period off a key's value, which is giving one attempt back.
struct Cells<K: Hash + Eq>(Arc<DashMap<K, u64>>);

impl<K: Hash + Eq> Clone for Cells<K> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<K: Hash + Eq + Clone> StateStore for Cells<K> {
    type Key = K;

    fn measure_and_replace<T, F, E>(&self, key: &K, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        // the entry holds its shard's lock while `f` decides: measure and replace are one step
        match self.0.entry(key.clone()) {
            dashmap::Entry::Occupied(mut held) => {
                let (outcome, next) = f(Some(Nanos::from(*held.get())))?;
                *held.get_mut() = next.as_u64();
                Ok(outcome)
            }
            dashmap::Entry::Vacant(free) => {
                let (outcome, next) = f(None)?;
                free.insert(next.as_u64());
                Ok(outcome)
            }
        }
    }
}

/// A limit on failures only, per key `K`: see the module's documentation.
pub struct FailureBudget<K: Hash + Eq + Clone, C: Clock = DefaultClock> {
    limiter: RateLimiter<K, Cells<K>, C, NoOpMiddleware<C::Instant>>,
    cells: Cells<K>,
    /// One attempt's worth of the GCRA state, in nanoseconds.
    period: u64,
    /// How far ahead of now a key's state may run before the bucket is empty (GCRA's τ: a period less
    /// than the burst), in nanoseconds.
    tau: u64,
    /// About the limiter's own start (taken just before it), to tell full buckets when pruning.
    start: C::Instant,
}

impl<K: Hash + Eq + Clone> FailureBudget<K> {
    /// The limit, or `None` when it is off.
    pub fn new(limit: Limit) -> Option<Self> {
        Self::with_clock(limit, DefaultClock::default())
    }
}

impl<K: Hash + Eq + Clone, C: Clock> FailureBudget<K, C> {
    /// The limit on `clock`, or `None` when it is off.
    pub fn with_clock(limit: Limit, clock: C) -> Option<Self> {
        let quota = quota(limit)?;
        let cells = Cells(Arc::default());
        let start = clock.now();
        let period = u64::try_from(quota.replenish_interval().as_nanos()).unwrap_or(u64::MAX);
        Some(Self {
            limiter: RateLimiter::new(quota, cells.clone(), clock),
            cells,
            period,
            tau: period.saturating_mul(u64::from(quota.burst_size().get() - 1)),
            start,
        })
    }

    fn now(&self) -> u64 {
        self.limiter
            .clock()
            .now()
            .duration_since(self.start)
            .as_u64()
    }

    /// Whether `key` has a failure left, without spending one.
    ///
    /// # Errors
    /// [`Limited`] when its bucket is empty.
    pub fn gate(&self, key: &K) -> Result<(), Limited> {
        let Some(tat) = self.cells.0.get(key).map(|t| *t) else {
            return Ok(());
        };
        let earliest = tat.saturating_sub(self.tau);
        let now = self.now();
        if now >= earliest {
            Ok(())
        } else {
            Err(Limited {
                retry_after: Duration::from_nanos(earliest - now),
            })
        }
    }

    /// Spends one failure of `key` (nothing when its bucket is already empty).
    pub fn failed(&self, key: &K) {
        let _ = self.limiter.check_key(key);
    }

    /// Reserves one failure for an attempt of `key`; the attempt keeps it with
    /// [`Reservation::failed`], and gives it back otherwise (also when it is dropped unfinished).
    ///
    /// # Errors
    /// [`Limited`] when `key` has no failure left: the attempt must not run.
    pub fn reserve(&self, key: K) -> Result<Reservation<'_, K, C>, Limited> {
        match self.limiter.check_key(&key) {
            Ok(()) => Ok(Reservation {
                budget: self,
                key: Some(key),
            }),
            Err(not_until) => Err(Limited {
                retry_after: not_until.wait_time_from(self.limiter.clock().now()),
            }),
        }
    }

    fn give_back(&self, key: &K) {
        if let Some(mut tat) = self.cells.0.get_mut(key) {
            *tat = tat.saturating_sub(self.period);
        }
    }

    /// Forgets the keys whose bucket is full again.
    fn prune(&self) {
        let now = self.now();
        self.cells.0.retain(|_, tat| *tat > now);
        self.cells.0.shrink_to_fit();
    }

    /// Keys with a failure on record (for tests and metrics).
    pub fn keys(&self) -> usize {
        self.cells.0.len()
    }
}

/// One failure reserved for an attempt under way (see [`FailureBudget::reserve`]).
pub struct Reservation<'a, K: Hash + Eq + Clone, C: Clock = DefaultClock> {
    budget: &'a FailureBudget<K, C>,
    key: Option<K>,
}

impl<K: Hash + Eq + Clone, C: Clock> Reservation<'_, K, C> {
    /// The attempt failed: the failure stays counted.
    pub fn failed(mut self) {
        self.key = None;
    }
}

impl<K: Hash + Eq + Clone, C: Clock> Drop for Reservation<'_, K, C> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.budget.give_back(&key);
        }
    }
}

/// A failure reserved under a limit that may be off.
pub type Held<'a> = Option<Reservation<'a, ClientKey>>;

/// Every rate limit of the node (`None`: that limit is off).
pub struct Limits {
    /// Failed ticket lookups per client address.
    pub ticket_lookups: Option<FailureBudget<ClientKey>>,
    /// Failed session-secret checks per client address.
    pub session_checks: Option<FailureBudget<ClientKey>>,
    /// Admits per ticket (by its id).
    pub admits: Option<Budget<String>>,
    /// Requests per API key (by its id).
    pub api_keys: Option<Budget<String>>,
    /// Ticket searches per caller (an API key's id or a user's name).
    pub searches: Option<Budget<String>>,
    /// Console logins per client address.
    pub logins: Option<Budget<ClientKey>>,
    /// TV sign-in codes made per client address.
    pub tv_codes: Option<Budget<ClientKey>>,
}

impl Limits {
    /// The limits of `config`.
    pub fn new(config: &RateLimits) -> Self {
        Self {
            ticket_lookups: FailureBudget::new(config.ticket_lookup_failures),
            session_checks: FailureBudget::new(config.session_failures),
            admits: Budget::new(config.admits_per_ticket),
            api_keys: Budget::new(config.api_key_requests),
            searches: Budget::new(config.searches),
            logins: Budget::new(config.logins),
            tv_codes: Budget::new(config.tv_codes),
        }
    }

    /// Reserves a failed ticket lookup for `client` (see [`FailureBudget::reserve`]).
    ///
    /// # Errors
    /// [`Limited`] when the address has no failure left.
    pub fn ticket_lookup(&self, client: IpAddr) -> Result<Held<'_>, Limited> {
        reserve(self.ticket_lookups.as_ref(), client)
    }

    /// Whether `client` may have its session secret checked: it has a failed check left.
    ///
    /// # Errors
    /// [`Limited`] when the address has no failure left.
    pub fn session_check(&self, client: IpAddr) -> Result<(), Limited> {
        match &self.session_checks {
            Some(b) => b.gate(&ClientKey::from(client)),
            None => Ok(()),
        }
    }

    /// Spends one of `client`'s failed session checks.
    pub fn session_failed(&self, client: IpAddr) {
        if let Some(b) = &self.session_checks {
            b.failed(&ClientKey::from(client));
        }
    }

    /// Counts an admit of the ticket `ticket_id`.
    ///
    /// # Errors
    /// [`Limited`] when its bucket is empty.
    pub fn admit(&self, ticket_id: &str) -> Result<(), Limited> {
        check(self.admits.as_ref(), ticket_id)
    }

    /// Counts a request made with the API key `key_id`.
    ///
    /// # Errors
    /// [`Limited`] when its bucket is empty.
    pub fn api_key(&self, key_id: &str) -> Result<(), Limited> {
        check(self.api_keys.as_ref(), key_id)
    }

    /// Counts a ticket search by `caller` (an API key's id or a user's name).
    ///
    /// # Errors
    /// [`Limited`] when its bucket is empty.
    pub fn search(&self, caller: &str) -> Result<(), Limited> {
        check(self.searches.as_ref(), caller)
    }

    /// Counts a console login attempt from `client`.
    ///
    /// # Errors
    /// [`Limited`] when its bucket is empty.
    pub fn login(&self, client: IpAddr) -> Result<(), Limited> {
        match &self.logins {
            Some(b) => b.check(&ClientKey::from(client)),
            None => Ok(()),
        }
    }

    /// Counts a TV sign-in code made for `client`.
    ///
    /// # Errors
    /// [`Limited`] when its bucket is empty.
    pub fn tv_code(&self, client: IpAddr) -> Result<(), Limited> {
        match &self.tv_codes {
            Some(b) => b.check(&ClientKey::from(client)),
            None => Ok(()),
        }
    }

    /// Forgets every key whose bucket is full again, so the maps hold only recent attempts.
    pub fn prune(&self) {
        for b in [&self.ticket_lookups, &self.session_checks]
            .into_iter()
            .flatten()
        {
            b.prune();
        }
        for b in [&self.admits, &self.api_keys, &self.searches]
            .into_iter()
            .flatten()
        {
            b.prune();
        }
        for b in [&self.logins, &self.tv_codes].into_iter().flatten() {
            b.prune();
        }
    }
}

fn reserve(budget: Option<&FailureBudget<ClientKey>>, client: IpAddr) -> Result<Held<'_>, Limited> {
    budget
        .map(|b| b.reserve(ClientKey::from(client)))
        .transpose()
}

fn check(budget: Option<&Budget<String>>, key: &str) -> Result<(), Limited> {
    match budget {
        // the key is copied only into a new entry of the map: `check_key` takes it by reference
        Some(b) => b.check(&key.to_owned()),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use governor::clock::FakeRelativeClock;

    use super::*;

    #[test]
    fn only_failures_spend_a_failure_budget_and_reservations_bound_attempts_at_once() {
        let clock = FakeRelativeClock::default();
        let budget = FailureBudget::with_clock(Limit::new(3, 6), clock.clone()).unwrap();
        // successes give their reservation back: any number of them
        for _ in 0..100 {
            let r = budget.reserve(1u8).unwrap();
            drop(r);
        }
        // three attempts at once hold the whole budget; a fourth must wait, whatever they will turn out
        let held: Vec<_> = (0..3).map(|_| budget.reserve(1u8).unwrap()).collect();
        let refused = budget.reserve(1u8).err().expect("a fourth attempt at once");
        assert_eq!(refused.retry_after, Duration::from_secs(10));
        assert_eq!(refused.retry_after_s(), 10);
        // another key has its own budget
        budget.reserve(2u8).unwrap().failed();
        // two fail, one succeeds: one attempt is free again
        let mut held = held.into_iter();
        held.next().unwrap().failed();
        held.next().unwrap().failed();
        drop(held);
        budget.reserve(1u8).unwrap().failed();
        assert!(budget.reserve(1u8).is_err(), "three failures spent it");
        // one comes back every 10 s
        clock.advance(Duration::from_secs(10));
        budget.reserve(1u8).unwrap().failed();
        assert!(budget.reserve(1u8).is_err());
        // pruning forgets only full buckets
        assert_eq!(budget.keys(), 2);
        clock.advance(Duration::from_secs(60));
        budget.prune();
        assert_eq!(budget.keys(), 0);
    }

    #[test]
    fn a_gate_waits_only_while_the_budget_is_empty() {
        let clock = FakeRelativeClock::default();
        let budget = FailureBudget::with_clock(Limit::new(2, 6), clock.clone()).unwrap();
        assert!(budget.gate(&1u8).is_ok(), "a key never seen");
        budget.failed(&1);
        assert!(budget.gate(&1).is_ok(), "one failure left");
        budget.failed(&1);
        let refused = budget.gate(&1).unwrap_err();
        assert_eq!(refused.retry_after, Duration::from_secs(10));
        clock.advance(Duration::from_secs(4));
        assert_eq!(
            budget.gate(&1).unwrap_err().retry_after,
            Duration::from_secs(6)
        );
        clock.advance(Duration::from_secs(6));
        assert!(budget.gate(&1).is_ok(), "one came back");
        assert!(budget.gate(&2).is_ok(), "another key");
    }

    #[test]
    fn a_budget_counts_every_attempt_and_an_off_limit_is_none() {
        let budget: Budget<String> = Budget::new(Limit::new(2, 60)).unwrap();
        let k = "k".to_owned();
        assert!(budget.check(&k).is_ok());
        assert!(budget.check(&k).is_ok());
        let refused = budget.check(&k).unwrap_err();
        assert!(refused.retry_after <= Duration::from_secs(1));
        assert_eq!(refused.retry_after_s(), 1);
        assert!(Budget::<String>::new(Limit::OFF).is_none());
        assert!(FailureBudget::<u8>::new(Limit::OFF).is_none());
    }
}
