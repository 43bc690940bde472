//! A show's door for the embedded store (doors-open capacity, `Store::door`): the line of waiting
//! tickets in arrival order, the passes handed out and not yet used, the rate bucket, and the count of
//! newcomers let in per window. One node holds it in memory; Redis keeps the same in keys, one script
//! per ask (`redis/door.lua`).

use std::collections::{BTreeMap, HashMap};

use usher_core::clock::UnixMs;
use usher_core::ids::TicketId;
use usher_core::store::{DOOR_WINDOW_MS, DoorAnswer, DoorRules};

/// How often a door forgets abandoned waiters and lapsed passes (a walk over its line).
const SWEEP_EVERY_MS: i64 = 1_000;

/// One show's door.
#[derive(Debug, Default)]
pub(crate) struct Door {
    /// Arrival number → ticket, in arrival order.
    line: BTreeMap<u64, TicketId>,
    /// Ticket → its arrival number and when it was last seen.
    waiting: HashMap<TicketId, (u64, UnixMs)>,
    /// Tickets let in whose admit has not come yet → when the pass lapses.
    passes: HashMap<TicketId, UnixMs>,
    arrivals: u64,
    tokens: f64,
    refilled_at: Option<UnixMs>,
    window_start: Option<UnixMs>,
    in_window: u64,
    last_window: u64,
    swept_at: i64,
}

impl Door {
    /// `ticket` asks at `now`, with `held` leases of the show playing.
    pub(crate) fn ask(
        &mut self,
        ticket: &TicketId,
        rules: DoorRules,
        held: u64,
        now: UnixMs,
    ) -> DoorAnswer {
        if now.0 - self.swept_at >= SWEEP_EVERY_MS {
            self.sweep(rules, now);
        }
        self.roll_window(now);
        if self.passes.get(ticket).is_some_and(|until| *until > now) {
            return DoorAnswer::Enter;
        }
        if let Some(rate) = rules.rate_per_s {
            let rate = f64::from(rate);
            let since = self.refilled_at.map_or(rate, |at| {
                (now.0 - at.0).max(0) as f64 * rate / 1000.0 + self.tokens
            });
            self.tokens = since.min(rate);
            self.refilled_at = Some(now);
        }
        let occupied = held.saturating_add(self.passes.len() as u64);
        let mut free = rules
            .capacity
            .map_or(u64::MAX, |c| u64::from(c).saturating_sub(occupied));
        if rules.rate_per_s.is_some() {
            free = free.min(self.tokens.floor().max(0.0) as u64);
        }
        let rank = match self.waiting.get_mut(ticket) {
            Some((seq, seen)) => {
                *seen = now;
                let seq = *seq;
                Some((seq, self.line.range(..seq).count() as u64))
            }
            None => None,
        };
        match rank {
            Some((seq, rank)) if rank < free => {
                self.line.remove(&seq);
                self.waiting.remove(ticket);
                self.enter(ticket, rules, now)
            }
            Some((_, rank)) => self.wait(rank + 1),
            None if self.line.is_empty() && free >= 1 => self.enter(ticket, rules, now),
            None => {
                self.arrivals += 1;
                self.line.insert(self.arrivals, ticket.clone());
                self.waiting.insert(ticket.clone(), (self.arrivals, now));
                self.wait(self.line.len() as u64)
            }
        }
    }

    /// The ticket let in took its seat.
    pub(crate) fn entered(&mut self, ticket: &TicketId) {
        self.passes.remove(ticket);
    }

    fn enter(&mut self, ticket: &TicketId, rules: DoorRules, now: UnixMs) -> DoorAnswer {
        self.passes
            .insert(ticket.clone(), UnixMs(now.0 + rules.pass_ms));
        self.in_window += 1;
        if rules.rate_per_s.is_some() {
            self.tokens -= 1.0;
        }
        DoorAnswer::Enter
    }

    fn wait(&self, position: u64) -> DoorAnswer {
        DoorAnswer::Wait {
            position,
            entered_recently: self.last_window,
        }
    }

    fn roll_window(&mut self, now: UnixMs) {
        let start = *self.window_start.get_or_insert(now);
        let elapsed = now.0 - start.0;
        if elapsed >= DOOR_WINDOW_MS {
            self.last_window = if elapsed >= 2 * DOOR_WINDOW_MS {
                0
            } else {
                self.in_window
            };
            self.in_window = 0;
            self.window_start = Some(UnixMs(now.0 - elapsed % DOOR_WINDOW_MS));
        }
    }

    fn sweep(&mut self, rules: DoorRules, now: UnixMs) {
        self.swept_at = now.0;
        let horizon = now.0 - rules.abandon_ms;
        let gone: Vec<(TicketId, u64)> = self
            .waiting
            .iter()
            .filter(|(_, (_, seen))| seen.0 < horizon)
            .map(|(t, (seq, _))| (t.clone(), *seq))
            .collect();
        for (t, seq) in gone {
            self.waiting.remove(&t);
            self.line.remove(&seq);
        }
        self.passes.retain(|_, until| *until > now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(capacity: Option<u32>, rate: Option<u32>) -> DoorRules {
        DoorRules {
            capacity,
            rate_per_s: rate,
            pass_ms: 30_000,
            abandon_ms: 20_000,
        }
    }

    #[test]
    fn the_line_is_first_come_first_served_and_forgets_who_left() {
        let mut d = Door::default();
        let r = rules(Some(1), None);
        let t: Vec<TicketId> = (0..4).map(|_| TicketId::generate()).collect();
        let now = UnixMs(1_000_000);
        assert_eq!(d.ask(&t[0], r, 0, now), DoorAnswer::Enter);
        assert_eq!(
            d.ask(&t[0], r, 0, now),
            DoorAnswer::Enter,
            "a pass is asked again"
        );
        d.entered(&t[0]);
        for (i, ticket) in t[1..].iter().enumerate() {
            assert!(
                matches!(d.ask(ticket, r, 1, now), DoorAnswer::Wait { position, .. } if position == i as u64 + 1)
            );
        }
        // the seat frees: the head goes first, even if the third asks before it
        assert!(matches!(
            d.ask(&t[3], r, 0, now),
            DoorAnswer::Wait { position: 3, .. }
        ));
        assert_eq!(d.ask(&t[1], r, 0, now), DoorAnswer::Enter);
        assert!(
            matches!(
                d.ask(&t[2], r, 0, now),
                DoorAnswer::Wait { position: 1, .. }
            ),
            "the pass holds the place"
        );
        // the second waiter leaves (stops asking); the third moves up past it
        let later = UnixMs(now.0 + 25_000);
        d.entered(&t[1]);
        assert!(matches!(
            d.ask(&t[3], r, 1, later),
            DoorAnswer::Wait { position: 1, .. }
        ));
    }

    #[test]
    fn the_rate_lets_in_so_many_a_second() {
        let mut d = Door::default();
        let r = rules(None, Some(2));
        let now = UnixMs(5_000_000);
        let t: Vec<TicketId> = (0..5).map(|_| TicketId::generate()).collect();
        let answers: Vec<_> = t.iter().map(|x| d.ask(x, r, 0, now)).collect();
        assert_eq!(
            answers.iter().filter(|a| **a == DoorAnswer::Enter).count(),
            2
        );
        let next = UnixMs(now.0 + 1_000);
        let answers: Vec<_> = t[2..].iter().map(|x| d.ask(x, r, 0, next)).collect();
        assert_eq!(answers[..2], [DoorAnswer::Enter, DoorAnswer::Enter]);
        assert!(matches!(answers[2], DoorAnswer::Wait { position: 1, .. }));
    }
}
