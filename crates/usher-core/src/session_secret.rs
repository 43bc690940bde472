//! The session secret (DESIGN.md "Session integrity"): what controls a session, and the rule that tells a
//! player retrying a lost answer from a second player holding a copy of its credentials.
//!
//! Every renewal (heartbeat, steering reload, a reload's re-admit) presents the secret the player holds and
//! gets a fresh one; the lease keeps only keyed hashes of them, in a [`SecretChain`]:
//!
//! - `issued`: secrets handed out since the chain last moved, newest last. Presenting one of them moves
//!   the chain: it becomes `previous`, everything else handed out before retires, and the fresh secret is
//!   the only one issued.
//! - `previous`: the secret whose presentation last moved the chain. A player whose answer was lost
//!   presents it again; it gets one more fresh secret (issued beside the one it never received), and the
//!   chain does not move, so a retry, a duplicate or a late copy of the same request costs nothing.
//! - `retired`: secrets that were valid once and are no longer. Only a second player can present one: it
//!   kept an answer the first player's later renewal superseded. That is a clone.
//!
//! Two players sharing one session's credentials fall out of step: both present the same secret, each
//! gets a different fresh one (the second as a "retry"), and the first of them to renew again moves the
//! chain and retires the other's. So within two renewals of each, one of them presents a retired secret
//! and is stopped ([`Check::Cloned`]), while the other keeps playing. A single player never holds a
//! retired secret as long as it adopts the answer of its latest request (see the property tests).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::random_b64;
use crate::secret::SecretHash;

/// How many secrets one `previous` may have issued at once (the oldest retires to make room). A player
/// must make fewer renewals than this with one secret before it adopts an answer (the watch page gives
/// up after [`RENEWALS_PER_SECRET`] and admits again), so no answer it still awaits is ever retired.
pub const ISSUED_MEMORY: usize = 8;
/// The most renewals a player makes with one secret (the first and its retries) before it admits again.
pub const RENEWALS_PER_SECRET: usize = ISSUED_MEMORY - 1;
/// How many retired secrets a chain remembers to recognise a clone (a clone presents one retired by the
/// last move or the one before).
pub const RETIRED_MEMORY: usize = 6;

/// A session secret in clear: 128 random bits, base64url (22 characters). Handed to its player in an
/// answer and never kept: the lease holds its keyed hash.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionSecret(String);

impl fmt::Debug for SessionSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionSecret(<redacted>)")
    }
}

impl SessionSecret {
    /// A fresh random secret.
    pub fn generate() -> Self {
        Self(random_b64(16))
    }

    /// A secret as a player presents it (header, cookie, URL); `None` when it cannot be one (so nothing
    /// longer than a secret is ever hashed).
    pub fn parse(text: &str) -> Option<Self> {
        (text.len() == 22
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
        .then(|| Self(text.to_owned()))
    }

    /// The clear text, for the answer that hands it to its player.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// What a presented secret is to a chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Issued and valid (renewing with it moves the chain).
    Current,
    /// The one that last moved the chain: the player's answer was lost, or this is a late copy.
    Previous,
    /// Valid once, superseded since: a second player holds a copy of the credentials.
    Cloned,
    /// Never this session's secret.
    Wrong,
}

impl Check {
    /// Whether the secret may control the session now.
    pub fn is_valid(self) -> bool {
        matches!(self, Self::Current | Self::Previous)
    }
}

/// A session's secrets, as keyed hashes (see the module documentation).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretChain {
    /// The secret whose presentation last moved the chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<SecretHash>,
    /// Secrets handed out since the chain last moved, newest last (at most [`ISSUED_MEMORY`]).
    #[serde(default)]
    pub issued: Vec<SecretHash>,
    /// Secrets valid once, most recent last (at most [`RETIRED_MEMORY`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retired: Vec<SecretHash>,
}

fn contains(list: &[SecretHash], h: &SecretHash) -> bool {
    // every entry is compared, in constant time, whatever matches first
    list.iter().fold(false, |found, e| found | e.ct_eq(h))
}

impl SecretChain {
    /// A chain that has issued `first` (the admit's secret).
    pub fn new(first: SecretHash) -> Self {
        Self {
            previous: None,
            issued: vec![first],
            retired: Vec::new(),
        }
    }

    /// What `presented` is to this chain.
    pub fn check(&self, presented: &SecretHash) -> Check {
        if contains(&self.issued, presented) {
            Check::Current
        } else if self.previous.is_some_and(|p| p.ct_eq(presented)) {
            Check::Previous
        } else if contains(&self.retired, presented) {
            Check::Cloned
        } else {
            Check::Wrong
        }
    }

    fn retire(&mut self, h: SecretHash) {
        if self.retired.len() >= RETIRED_MEMORY {
            self.retired.remove(0);
        }
        self.retired.push(h);
    }

    /// A renewal presenting `presented` hands out `fresh`: the chain moves (a current secret), or issues
    /// one more beside the current ones (the previous secret: a retry), or refuses (and then nothing
    /// changes). Returns what `presented` was.
    pub fn renew(&mut self, presented: &SecretHash, fresh: SecretHash) -> Check {
        let check = self.check(presented);
        match check {
            Check::Current => {
                if let Some(p) = self.previous.take() {
                    self.retire(p);
                }
                for h in std::mem::take(&mut self.issued) {
                    if !h.ct_eq(presented) {
                        self.retire(h);
                    }
                }
                self.previous = Some(*presented);
                self.issued.push(fresh);
            }
            Check::Previous => {
                if self.issued.len() >= ISSUED_MEMORY {
                    let oldest = self.issued.remove(0);
                    self.retire(oldest);
                }
                self.issued.push(fresh);
            }
            Check::Cloned | Check::Wrong => {}
        }
        check
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use proptest::prelude::*;

    use super::*;
    use crate::secret::SecretHasher;

    fn hasher() -> SecretHasher {
        SecretHasher::new(&[7u8; 32])
    }

    /// The chain and a counter standing in for fresh random secrets.
    struct Server {
        chain: SecretChain,
        next: u64,
        hasher: SecretHasher,
    }

    impl Server {
        fn new() -> (Self, u64) {
            let hasher = hasher();
            let chain = SecretChain::new(hasher.session_secret(&0u64.to_string()));
            (
                Self {
                    chain,
                    next: 1,
                    hasher,
                },
                0,
            )
        }

        /// A renewal presenting secret number `held`: the fresh secret's number when accepted.
        fn renew(&mut self, held: u64) -> Result<u64, Check> {
            let fresh = self.next;
            self.next += 1;
            let check = self.chain.renew(
                &self.hasher.session_secret(&held.to_string()),
                self.hasher.session_secret(&fresh.to_string()),
            );
            if check.is_valid() {
                Ok(fresh)
            } else {
                Err(check)
            }
        }
    }

    #[test]
    fn a_retry_of_a_lost_answer_is_not_a_clone() {
        let (mut s, s0) = Server::new();
        let s1 = s.renew(s0).unwrap();
        // the answer carrying s1 is lost: the player presents s0 again
        let s2 = s.renew(s0).unwrap();
        let s3 = s.renew(s2).unwrap();
        assert!(s.renew(s3).is_ok());
        // the lost s1 was never used, and now it is retired: whoever presents it holds a copy
        assert_eq!(s.renew(s1), Err(Check::Cloned));
        assert_eq!(s.renew(999), Err(Check::Wrong));
    }

    #[test]
    fn two_players_on_one_secret_fall_out_of_step() {
        let (mut s, s0) = Server::new();
        let a1 = s.renew(s0).unwrap();
        let b1 = s.renew(s0).unwrap(); // looks like a retry
        let a2 = s.renew(a1).unwrap(); // moves the chain: b1 retires
        assert_eq!(s.renew(b1), Err(Check::Cloned));
        assert!(s.renew(a2).is_ok(), "the other player keeps playing");
    }

    /// What one player does in one step of a hostile network.
    #[derive(Debug, Clone)]
    enum Net {
        /// The player sends a renewal with the secret it holds.
        Send,
        /// The server takes the request at this index of those in flight (any order).
        Serve(usize),
        /// The server takes the request at this index twice (a duplicate on the way).
        Duplicate(usize),
        /// The request at this index is lost before the server sees it.
        DropRequest(usize),
        /// The answer at this index of those on the way back is lost.
        DropAnswer(usize),
        /// The answer at this index arrives (any order).
        Deliver(usize),
    }

    fn net() -> impl Strategy<Value = Net> {
        prop_oneof![
            3 => Just(Net::Send),
            4 => (0usize..4).prop_map(Net::Serve),
            1 => (0usize..4).prop_map(Net::Duplicate),
            1 => (0usize..4).prop_map(Net::DropRequest),
            1 => (0usize..4).prop_map(Net::DropAnswer),
            4 => (0usize..4).prop_map(Net::Deliver),
        ]
    }

    /// Requests and answers of one player on the way at once in the model (fewer than [`ISSUED_MEMORY`]).
    const OUTSTANDING: usize = 3;

    proptest! {
        /// One player with at most [`OUTSTANDING`] requests and answers on the way at once and at most
        /// [`RENEWALS_PER_SECRET`] renewals per secret, whose requests and answers are lost, duplicated
        /// and reordered, adopting an answer only when its request presented the secret the player holds
        /// now (an answer to a request made with an older secret is stale news; the watch page renews one
        /// request at a time, so for it every answer is of that kind): it never acts on a refusal, and the
        /// secret it ends with still renews.
        #[test]
        fn one_player_is_never_stopped(steps in proptest::collection::vec(net(), 1..200)) {
            let (mut server, s0) = Server::new();
            let mut held = s0;
            let mut sent_with_held = 0; // renewals made (and duplicated) with the secret held
            let mut requests: VecDeque<u64> = VecDeque::new(); // the secret each presents
            let mut answers: VecDeque<(u64, Result<u64, Check>)> = VecDeque::new();
            for step in steps {
                match step {
                    Net::Send
                        if requests.len() + answers.len() < OUTSTANDING
                            && sent_with_held < RENEWALS_PER_SECRET =>
                    {
                        requests.push_back(held);
                        sent_with_held += 1;
                    }
                    Net::Send => {}
                    // a duplicate is one more renewal with that secret, within the same budget
                    Net::Duplicate(i)
                        if i < requests.len()
                            && requests[i] == held
                            && sent_with_held < RENEWALS_PER_SECRET =>
                    {
                        sent_with_held += 1;
                        answers.push_back((held, server.renew(held)));
                    }
                    Net::Serve(i) if i < requests.len() => {
                        let secret = requests.remove(i).expect("checked");
                        answers.push_back((secret, server.renew(secret)));
                    }
                    Net::DropRequest(i) if i < requests.len() => {
                        requests.remove(i);
                    }
                    Net::DropAnswer(i) if i < answers.len() => {
                        answers.remove(i);
                    }
                    Net::Deliver(i) if i < answers.len() => {
                        let (presented, answer) = answers.remove(i).expect("checked");
                        // the answer to a request made with an older secret is stale news: ignored
                        if presented == held {
                            match answer {
                                Ok(fresh) => {
                                    held = fresh;
                                    sent_with_held = 0;
                                }
                                Err(check) => prop_assert!(false, "the player was refused: {check:?}"),
                            }
                        }
                    }
                    _ => {}
                }
            }
            // whatever happened, the secret it holds still renews
            prop_assert!(server.renew(held).is_ok());
        }

        /// Two players starting from one copied secret, renewing in any interleaving (each adopting its
        /// own answers): once each has renewed twice, one of them has been refused as a clone, and the
        /// other keeps renewing.
        #[test]
        fn two_players_are_always_separated(order in proptest::collection::vec(any::<bool>(), 4..60)) {
            let (mut server, s0) = Server::new();
            let mut held = [Some(s0), Some(s0)];
            let mut renewals = [0u32, 0u32];
            let mut cloned = None;
            for who in order.into_iter().map(usize::from) {
                let Some(secret) = held[who] else { continue };
                match server.renew(secret) {
                    Ok(fresh) => {
                        held[who] = Some(fresh);
                        renewals[who] += 1;
                    }
                    Err(check) => {
                        // a copy taken long before (its secret out of the chain's memory) is refused too,
                        // only not counted as a clone
                        prop_assert!(matches!(check, Check::Cloned | Check::Wrong));
                        prop_assert!(cloned.is_none(), "both players were refused");
                        cloned = Some(who);
                        held[who] = None;
                    }
                }
                prop_assert!(cloned.is_some() || renewals[0] < 2 || renewals[1] < 2,
                    "still in step after {:?} renewals", renewals);
            }
            if let Some(loser) = cloned {
                let winner = held[1 - loser].expect("the other still plays");
                prop_assert!(server.renew(winner).is_ok());
            }
        }
    }
}
