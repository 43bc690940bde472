//! `[rate_limits]`: how many attempts of each kind Usher takes before it answers 429 `rate_limited`. Each
//! limit is a bucket of `burst` attempts that refills by `per_minute` each minute; `per_minute = 0`
//! turns it off. The defaults never bother a viewer with a valid ticket (successful lookups cost nothing)
//! and leave a guesser a few hundred guesses an hour (README, "Rate limits").

use serde::Deserialize;

use super::error::{ConfigError, invalid};

/// One limit as written in the file: either member may be left out (it keeps its default).
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitSetting {
    /// Attempts allowed at once.
    pub burst: Option<u32>,
    /// Attempts the bucket regains each minute; 0 turns the limit off.
    pub per_minute: Option<u32>,
}

/// One limit, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// Attempts allowed at once (at least 1).
    pub burst: u32,
    /// Attempts regained each minute; 0: the limit is off.
    pub per_minute: u32,
}

impl Limit {
    /// A limit of `burst` at once and `per_minute` more each minute.
    pub const fn new(burst: u32, per_minute: u32) -> Self {
        Self { burst, per_minute }
    }

    /// No limit.
    pub const OFF: Self = Self::new(1, 0);

    /// Whether the limit applies.
    pub const fn is_on(self) -> bool {
        self.per_minute > 0
    }

    /// The most attempts it lets through in the first hour: the burst and an hour of refills.
    pub const fn first_hour(self) -> u64 {
        self.burst as u64 + 60 * self.per_minute as u64
    }
}

/// The `[rate_limits]` section as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitSettings {
    /// Failed ticket lookups (`ticket_unknown` on the watch link, the watch page and admit) per client
    /// address (IPv6: its /64).
    pub ticket_lookup_failures: LimitSetting,
    /// Failed session-secret checks (`session_secret_invalid`: a secret that was never the session's, on
    /// heartbeat, leave, steering and the master playlist) per client address.
    pub session_failures: LimitSetting,
    /// Admits per ticket.
    pub admits_per_ticket: LimitSetting,
    /// Requests per API key.
    pub api_key_requests: LimitSetting,
    /// Ticket searches per caller (API key or console user).
    pub searches: LimitSetting,
    /// Console login attempts per client address.
    pub logins: LimitSetting,
    /// TV sign-in codes made per client address (`POST /api/v1/tv/codes`).
    pub tv_codes: LimitSetting,
}

/// Every limit, checked, with the defaults filled in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// See [`RateLimitSettings::ticket_lookup_failures`].
    pub ticket_lookup_failures: Limit,
    /// See [`RateLimitSettings::session_failures`].
    pub session_failures: Limit,
    /// See [`RateLimitSettings::admits_per_ticket`].
    pub admits_per_ticket: Limit,
    /// See [`RateLimitSettings::api_key_requests`].
    pub api_key_requests: Limit,
    /// See [`RateLimitSettings::searches`].
    pub searches: Limit,
    /// See [`RateLimitSettings::logins`].
    pub logins: Limit,
    /// See [`RateLimitSettings::tv_codes`].
    pub tv_codes: Limit,
}

impl Default for RateLimits {
    /// The defaults, and why (README, "Rate limits"):
    /// - a lookup reserves one failure while it runs and a found ticket gives it back, so the burst of
    ///   the two failure budgets also bounds the lookups one address may have under way at once (a load
    ///   balancer's address is the proxy's, not its clients', when `trusted_proxies` names it);
    /// - a family reloading five devices a few times stays inside 30 admits of one ticket;
    /// - a ticket site registering one ticket per sale, or polling, stays inside 1,000 requests a second;
    /// - a household's TVs behind one address make a few codes (one per `/tv` page load, and one more
    ///   each time a code lapses unused).
    fn default() -> Self {
        Self {
            ticket_lookup_failures: Limit::new(100, 10),
            session_failures: Limit::new(100, 60),
            admits_per_ticket: Limit::new(30, 60),
            api_key_requests: Limit::new(2_000, 60_000),
            searches: Limit::new(30, 120),
            logins: Limit::new(20, 10),
            tv_codes: Limit::new(20, 10),
        }
    }
}

impl RateLimitSettings {
    /// Fills in the defaults and checks every limit.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the first bad key.
    pub fn check(&self) -> Result<RateLimits, ConfigError> {
        let d = RateLimits::default();
        Ok(RateLimits {
            ticket_lookup_failures: resolve(
                "rate_limits.ticket_lookup_failures",
                self.ticket_lookup_failures,
                d.ticket_lookup_failures,
            )?,
            session_failures: resolve(
                "rate_limits.session_failures",
                self.session_failures,
                d.session_failures,
            )?,
            admits_per_ticket: resolve(
                "rate_limits.admits_per_ticket",
                self.admits_per_ticket,
                d.admits_per_ticket,
            )?,
            api_key_requests: resolve(
                "rate_limits.api_key_requests",
                self.api_key_requests,
                d.api_key_requests,
            )?,
            searches: resolve("rate_limits.searches", self.searches, d.searches)?,
            logins: resolve("rate_limits.logins", self.logins, d.logins)?,
            tv_codes: resolve("rate_limits.tv_codes", self.tv_codes, d.tv_codes)?,
        })
    }
}

/// Most attempts a limit may allow per minute (1,000,000: more than a node answers).
const MAX_PER_MINUTE: u32 = 1_000_000;

fn resolve(key: &'static str, set: LimitSetting, default: Limit) -> Result<Limit, ConfigError> {
    let limit = Limit {
        burst: set.burst.unwrap_or(default.burst),
        per_minute: set.per_minute.unwrap_or(default.per_minute),
    };
    if limit.per_minute > MAX_PER_MINUTE {
        return Err(invalid(
            key,
            format!("per_minute must be 0 (off) to {MAX_PER_MINUTE}"),
        ));
    }
    if limit.is_on() && !(1..=MAX_PER_MINUTE).contains(&limit.burst) {
        return Err(invalid(key, format!("burst must be 1 to {MAX_PER_MINUTE}")));
    }
    Ok(limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_member_left_out_keeps_its_default_and_zero_turns_a_limit_off() {
        let set = RateLimitSettings {
            logins: LimitSetting {
                burst: None,
                per_minute: Some(0),
            },
            searches: LimitSetting {
                burst: Some(5),
                per_minute: None,
            },
            ..Default::default()
        };
        let limits = set.check().unwrap();
        assert!(!limits.logins.is_on());
        assert_eq!(limits.searches, Limit::new(5, 120));
        assert_eq!(
            limits.ticket_lookup_failures,
            RateLimits::default().ticket_lookup_failures
        );
        let bad = RateLimitSettings {
            admits_per_ticket: LimitSetting {
                burst: Some(0),
                per_minute: None,
            },
            ..Default::default()
        };
        let e = bad.check().unwrap_err().to_string();
        assert!(e.contains("rate_limits.admits_per_ticket"), "{e}");
    }
}
