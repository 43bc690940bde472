//! The `Store` trait: everything Usher keeps, behind one contract that every backend passes.
//!
//! The contract suite in `usher-store` checks these rules against each backend. Time for leases comes from
//! the store's own clock (DESIGN.md: one clock per store), which is why lease methods take no `now`.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::admin::{
    AdminUser, AuditEntry, AuditFilter, Backoff, ConsoleSession, LoginGate, OutcomeCount,
    UserChange, UserName,
};
use crate::cdn::{Cdn, CdnHealth};
use crate::clock::UnixMs;
use crate::content_key::ContentKeyRecord;
use crate::geo::Country;
use crate::ids::{
    ApiKeyId, CdnId, ContentKeyId, DeliveryId, DeviceId, SessionId, ShowId, TicketId, WebhookId,
};
use crate::lease::{
    AdmitDecision, EndReason, HeartbeatDecision, LeaveDecision, Presented, SeatRules, Usage,
};
use crate::privacy::{Erased, Retention};
use crate::secret::SecretHash;
use crate::show::Show;
use crate::stream_key::StreamKeyRecord;
use crate::ticket::{Ticket, TicketBounds};
use crate::webhook::{Delivery, WebhookEndpoint};

/// What went wrong inside a store. Backend error types never leave the backend: they become one of these.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store cannot be reached or cannot write now; the caller may retry later (HTTP 503).
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The store holds data it cannot read; an operator must look (HTTP 500).
    #[error("store data corrupt: {0}")]
    Corrupt(String),
    /// The store holds data of a schema this build cannot read (written by a newer release), or was
    /// made for something else; the node must not touch it. Refused at start (`usher serve` exits with
    /// the message).
    #[error("store schema incompatible: {0}")]
    Incompatible(String),
    /// This backend does not offer the operation at all (Redis has no [`Store::backup`]: Redis is
    /// backed up by its own means); retrying cannot help.
    #[error("the store cannot {operation}")]
    Unsupported {
        /// What was asked, as a verb phrase ("take a backup").
        operation: &'static str,
    },
}

/// The most audit entries one [`Store::audit`] query looks at (newest first).
pub const AUDIT_SCAN_LIMIT: usize = 100_000;

/// What [`Store::backup`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackupInfo {
    /// Records copied, all tables together.
    pub records: u64,
    /// Size of the backup file in bytes.
    pub bytes: u64,
}

/// Whether a put created or replaced a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    /// There was no record with this id.
    Created,
    /// A record with this id was replaced.
    Replaced,
}

/// A POST remembered under its `Idempotency-Key`: what the request was, and its answer once it has one.
/// The key it is stored under is a keyed hash of the caller's credential and the key, never either.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotentRequest {
    /// SHA-256 of the request (method, target, content type and body), hex.
    pub fingerprint: String,
    /// The answer, sealed by the server (it may carry a ticket token); `None` while the first request
    /// runs. Base64 in stored JSON.
    #[serde(with = "crate::content_key::b64::option")]
    pub answer: Option<Vec<u8>>,
    /// When the record lapses (a claim whose request never finished lapses soon, an answer after 24 h).
    pub expires_at: UnixMs,
}

/// What [`Store::claim_idempotency`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyClaim {
    /// No record held the key: this caller runs the request and records its answer.
    Claimed,
    /// A record that has not lapsed holds it (running, or answered).
    Held(IdempotentRequest),
}

/// A TV sign-in code (RFC 8628 device authorization) as the store keeps it, under a keyed hash of its
/// user code (the short code the TV shows and the phone types).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TvCode {
    /// Keyed hash of the device code's secret part, which only the TV holds and polls with.
    pub device_secret: SecretHash,
    /// When the code lapses, by the store's clock.
    pub expires_at: UnixMs,
    /// Seconds the TV waits between polls (RFC 8628 `interval`); each `slow_down` adds 5.
    pub interval_s: u32,
}

/// The ticket a TV sign-in code was approved for. Single use: the poll that finds it takes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TvApproval {
    /// The ticket.
    pub ticket_id: TicketId,
    /// The ticket's token, sealed by the server (the TV gets it as its ticket cookie). Base64 in stored
    /// JSON.
    #[serde(with = "crate::content_key::b64")]
    pub sealed_token: Vec<u8>,
}

/// What [`Store::approve_tv_code`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TvApproveOutcome {
    /// The code now carries the approval.
    Approved,
    /// No code that has not lapsed (or one whose TV already took its approval).
    Unknown,
    /// The code was approved already (by this phone or another): it stays with the first approval.
    AlreadyApproved,
}

/// What a TV's poll found ([`Store::poll_tv_code`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TvPoll {
    /// No such code, lapsed, taken, or not this TV's secret.
    Unknown,
    /// Not approved yet; poll again after `interval_s`.
    Pending {
        /// Seconds until the next poll.
        interval_s: u32,
    },
    /// Polled before `interval_s` had passed since the last poll: the interval grew by 5 s.
    SlowDown {
        /// The new interval.
        interval_s: u32,
    },
    /// Approved: the code is gone, and this is its approval.
    Approved(TvApproval),
}

/// How much earlier than its interval a TV's poll may arrive without a `slow_down` (timers and clocks of
/// several nodes are not exact).
pub const TV_POLL_SLACK_MS: i64 = 1_000;

/// What a show's door lets in (doors-open capacity), as a newcomer asks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DoorRules {
    /// The most viewers playing at once (leases held), with the passes not yet used.
    pub capacity: Option<u32>,
    /// The most newcomers let in per second.
    pub rate_per_s: Option<u32>,
    /// How long a pass to a seat holds a place in the capacity before its admit uses it.
    pub pass_ms: i64,
    /// A waiter not seen (polling) for this long has left the line.
    pub abandon_ms: i64,
}

/// The door's answer to a newcomer ([`Store::door`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DoorAnswer {
    /// Come in: a pass is held for this ticket until its admit takes a seat (or `pass_ms`).
    Enter,
    /// Wait: this ticket's place in the line (1: next).
    Wait {
        /// Place in line, 1-based.
        position: u64,
        /// Newcomers let in over the last full window of [`DOOR_WINDOW_MS`] (for an estimated wait).
        entered_recently: u64,
    },
}

/// The window over which the door counts the newcomers it lets in.
pub const DOOR_WINDOW_MS: i64 = 10_000;

/// A registration that passed validation, ready for the store.
#[derive(Debug, Clone)]
pub struct NewTicket {
    /// The ticket to create (with a fresh id) if its token is new.
    pub ticket: Ticket,
}

/// The outcome of one registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegisterOutcome {
    /// A new ticket.
    Created(Ticket),
    /// The token was registered before with identical terms: the existing ticket.
    Existing(Ticket),
    /// The token was registered before with other terms: the existing ticket's id.
    Conflict(TicketId),
}

impl RegisterOutcome {
    /// Whether a registration that answered `outcomes` created a ticket: then, and only then, its audit
    /// entry is written ([`Store::register_tickets_audited`]).
    pub fn any_created(outcomes: &[Self]) -> bool {
        outcomes.iter().any(|o| matches!(o, Self::Created(_)))
    }
}

/// Why deleting a show was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteShowOutcome {
    /// Deleted.
    Deleted,
    /// There is no such show.
    Missing,
    /// Tickets still admit to it; revoke or keep them.
    HasTickets(u64),
}

/// What an admit asks of the store.
#[derive(Debug, Clone)]
pub struct AdmitRequest {
    /// The ticket.
    pub ticket_id: TicketId,
    /// Its show (kept with the session for listings and the origin's checks).
    pub show_id: ShowId,
    /// The ticket's own bounds ([`Ticket::bounds`]; its terms never change). A store may keep them with
    /// the seats for the heartbeats, which re-check the window, instead of reading the ticket again.
    pub bounds: TicketBounds,
    /// The device asking.
    pub device_id: DeviceId,
    /// Its human label.
    pub device_label: String,
    /// k, policy and lease lifetime.
    pub rules: SeatRules,
    /// The country the admit came from, when known; an admitted device's country goes into the ticket's
    /// usage (`Usage::countries`). The lease rules never look at it.
    pub country: Option<Country>,
    /// The client's address, when known; an admitted device's address goes into the ticket's usage
    /// (`Usage::addresses`).
    pub address: Option<std::net::IpAddr>,
    /// The session secret the player holds, if any (a reload keeps it): with the device's lease it
    /// re-attaches to that session.
    pub presented: Option<SecretHash>,
    /// The keyed hash of the secret this admit hands out.
    pub fresh: SecretHash,
}

/// A session as listings and the origin see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    /// The session.
    pub session_id: SessionId,
    /// Its ticket.
    pub ticket_id: TicketId,
    /// Its show.
    pub show_id: ShowId,
    /// Its device.
    pub device_id: DeviceId,
    /// The device's label.
    pub device_label: String,
    /// When it was admitted.
    pub created_at: UnixMs,
    /// Last renewal.
    pub renewed_at: UnixMs,
    /// When its lease lapses.
    pub expires_at: UnixMs,
}

/// A heartbeat's answer with what the caller needs to go on without another store call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatAnswer {
    /// Renewed, ended (and why) or unknown.
    pub decision: HeartbeatDecision,
    /// The session's ticket and show, when the store knows the session.
    pub owner: Option<(TicketId, ShowId)>,
    /// The owner ticket's bounds, when the store had them at hand in the same step (the embedded store
    /// keeps them beside the leases; Redis reads the ticket inside the heartbeat script), so a heartbeat
    /// costs one store call. `None`: the caller reads the ticket with [`Store::ticket`].
    pub ticket: Option<TicketBounds>,
}

/// A ticket's usage with its live sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketActivity {
    /// Usage record.
    pub usage: Usage,
    /// Sessions holding a live lease.
    pub live: Vec<SessionInfo>,
}

/// What one call of [`Store::retain_usage`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionBatch {
    /// Tickets whose usage changed.
    pub tickets: u64,
    /// The pass over every ticket is complete: the next call starts a new one.
    pub done: bool,
}

/// What an API key may do.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    PartialOrd,
    Ord,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Register, read and revoke tickets.
    Tickets,
    /// Everything.
    Admin,
}

/// A stored API key (its secret only as a keyed hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    /// Public id.
    pub id: ApiKeyId,
    /// A name for humans.
    pub name: String,
    /// What it may do.
    pub scopes: Vec<Scope>,
    /// Keyed hash of the secret part.
    pub secret_hash: SecretHash,
    /// When it was made.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Last successful use (kept loosely: not durable on every use).
    pub last_used_at: Option<UnixMs>,
}

impl ApiKey {
    /// Whether the key carries `scope` (`admin` carries every scope).
    pub fn allows(&self, scope: Scope) -> bool {
        self.scopes
            .iter()
            .any(|s| *s == scope || *s == Scope::Admin)
    }
}

/// Everything Usher keeps. Durable methods (shows, tickets, keys) return only after the write is durable;
/// lease methods are atomic per ticket and need not be durable per call.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// The store's clock, which lease expiry is measured against.
    fn now(&self) -> UnixMs;

    /// Checks that the store can serve requests.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when it cannot.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Creates or replaces a show.
    async fn put_show(&self, show: Show) -> Result<PutOutcome, StoreError>;
    /// A show, `None` when missing.
    async fn show(&self, id: &ShowId) -> Result<Option<Show>, StoreError>;
    /// Every show, by id.
    async fn shows(&self) -> Result<Vec<Show>, StoreError>;
    /// Deletes a show unless tickets admit to it.
    async fn delete_show(&self, id: &ShowId) -> Result<DeleteShowOutcome, StoreError>;

    /// Registers tickets in order, atomically per item and durably as a whole before returning. A token seen
    /// before (in the store or earlier in the same call) answers `Existing` when the terms match, `Conflict`
    /// otherwise. The caller has checked that each show exists.
    async fn register_tickets(
        &self,
        batch: Vec<NewTicket>,
    ) -> Result<Vec<RegisterOutcome>, StoreError>;
    /// [`Store::register_tickets`], and `audit` appended to the audit log in the same durable step when
    /// the call creates a ticket (a repeat creates none and is not audited). A store overrides it to make
    /// the two one write: the embedded store commits them in one transaction, so a registration waits
    /// for one commit instead of two and no crash keeps the ticket without its entry.
    async fn register_tickets_audited(
        &self,
        batch: Vec<NewTicket>,
        audit: AuditEntry,
    ) -> Result<Vec<RegisterOutcome>, StoreError> {
        let out = self.register_tickets(batch).await?;
        if RegisterOutcome::any_created(&out) {
            self.append_audit(audit).await?;
        }
        Ok(out)
    }
    /// A ticket by id, `None` when missing.
    async fn ticket(&self, id: &TicketId) -> Result<Option<Ticket>, StoreError>;
    /// A ticket by the keyed hash of its token, `None` when missing.
    async fn ticket_by_token(&self, hash: &SecretHash) -> Result<Option<Ticket>, StoreError>;
    /// Revokes a ticket and ends its sessions (reason `revoked`); `None` when missing. Revoking twice keeps
    /// the first revocation time. Once it has answered, no admit or renewal of the ticket succeeds: those
    /// steps read the ticket's status atomically with its leases.
    async fn revoke_ticket(&self, id: &TicketId) -> Result<Option<Ticket>, StoreError>;
    /// A ticket's usage and live sessions (empty for a ticket never played).
    async fn ticket_activity(&self, id: &TicketId) -> Result<TicketActivity, StoreError>;
    /// Erases the personal data of ticket `id` ([`crate::lease::TicketLeases::erase_personal_data`]:
    /// usage's devices, countries and addresses, sessions' device labels, the countries that ended
    /// sessions) in one atomic step with its leases, durably before it returns; its live sessions keep
    /// their seats. A ticket never played (or unknown: the caller checks that) erases nothing; a second
    /// call erases nothing more.
    async fn erase_personal_data(&self, id: &TicketId) -> Result<Erased, StoreError>;
    /// Applies the retention rules `rules` ([`crate::privacy`]) to the usage of the next batch of
    /// tickets (at most a few thousand per call, atomically per ticket: an admit or heartbeat racing the
    /// step is never lost), continuing where the last call stopped; call again until
    /// [`RetentionBatch::done`], which ends one pass over every ticket (the next call starts another).
    async fn retain_usage(&self, rules: &Retention) -> Result<RetentionBatch, StoreError>;
    /// Claims the next pass of [`Store::retain_usage`] for the calling node: `true` when no node claimed
    /// one within the last `rest`, `false` when one did. The claim lapses after `rest`, so a pass that a
    /// lost node left unfinished is taken up by another then. The embedded store is one node: always
    /// `true` (its caller paces its passes).
    async fn claim_retention_pass(&self, rest: std::time::Duration) -> Result<bool, StoreError>;

    /// DESIGN.md admit: one atomic step over the ticket's leases and its status (a revoked ticket
    /// answers [`AdmitDecision::Revoked`]).
    async fn admit(&self, req: AdmitRequest) -> Result<AdmitDecision, StoreError>;
    /// DESIGN.md heartbeat: renews the session's lease if it still holds it and `presented` is its
    /// secret, moving the secret ([`crate::session_secret`]); without `presented.fresh`, only checks. A
    /// revoked ticket's session ends (reason `revoked`) in the same step.
    async fn heartbeat(
        &self,
        session: &SessionId,
        presented: Presented<'_>,
    ) -> Result<HeartbeatAnswer, StoreError>;
    /// A player's leave: ends the session (reason `left`) when `secret` is its current secret.
    async fn leave(
        &self,
        session: &SessionId,
        secret: &SecretHash,
    ) -> Result<LeaveDecision, StoreError>;
    /// Ends a session for `reason`; returns whether it held a lease.
    async fn end_session(&self, session: &SessionId, reason: EndReason)
    -> Result<bool, StoreError>;
    /// A live session (its lease unexpired), `None` otherwise. The origin calls this on every request.
    async fn live_session(&self, session: &SessionId) -> Result<Option<SessionInfo>, StoreError>;
    /// Live sessions, of one show or of all.
    async fn sessions(&self, show: Option<&ShowId>) -> Result<Vec<SessionInfo>, StoreError>;

    /// Stores a new API key.
    async fn put_api_key(&self, key: ApiKey) -> Result<(), StoreError>;
    /// An API key by id, `None` when missing.
    async fn api_key(&self, id: &ApiKeyId) -> Result<Option<ApiKey>, StoreError>;
    /// Every API key.
    async fn api_keys(&self) -> Result<Vec<ApiKey>, StoreError>;
    /// Deletes an API key; returns whether it existed.
    async fn delete_api_key(&self, id: &ApiKeyId) -> Result<bool, StoreError>;
    /// Notes a key's use (best effort, not durable per call).
    async fn touch_api_key(&self, id: &ApiKeyId) -> Result<(), StoreError>;

    /// Creates or replaces a member of the CDN pool (durable, keys included). Its health is taken as
    /// given only when the CDN is new: afterwards only [`Store::set_cdn_health`] changes it, so an admin's
    /// change and a probe's result never undo each other.
    async fn put_cdn(&self, cdn: Cdn) -> Result<PutOutcome, StoreError>;
    /// A CDN, `None` when missing.
    async fn cdn(&self, id: &CdnId) -> Result<Option<Cdn>, StoreError>;
    /// Every CDN in the pool, by id.
    async fn cdns(&self) -> Result<Vec<Cdn>, StoreError>;
    /// A number that changes whenever a CDN record or its health changes, when the backend knows it
    /// without a round trip (the embedded store; Redis while its last `config_gen` is under a second old); callers may keep what they derived from [`Store::cdns`]
    /// while it holds. Read it *before* `cdns`. `None`: no such number, read `cdns` each time. A store
    /// that wraps another must forward it: left to this default, every caller reads and prepares the
    /// pool again on every request (as `MeteredStore` did until issue 16's tenth step).
    fn cdns_generation(&self) -> Option<u64> {
        None
    }
    /// Deletes a CDN; returns whether it existed.
    async fn delete_cdn(&self, id: &CdnId) -> Result<bool, StoreError>;
    /// Replaces only the health record of a CDN (the prober's write, which must not undo an admin's
    /// concurrent change of the rest); returns whether the CDN exists.
    async fn set_cdn_health(&self, id: &CdnId, health: CdnHealth) -> Result<bool, StoreError>;

    /// Tickets whose external reference is exactly `external_ref`, oldest first, at most `limit`, found
    /// through an index of references (never a scan of every ticket: a search must not stall the node).
    async fn tickets_by_external_ref(
        &self,
        external_ref: &str,
        limit: usize,
    ) -> Result<Vec<Ticket>, StoreError>;

    /// A show's poster image (content type, bytes), `None` when it has none.
    async fn poster(&self, show: &ShowId) -> Result<Option<(String, Vec<u8>)>, StoreError>;
    /// Stores (or with `None` removes) a show's poster image, durably.
    async fn put_poster(
        &self,
        show: &ShowId,
        poster: Option<(String, Vec<u8>)>,
    ) -> Result<(), StoreError>;

    /// A show's stream key record, `None` when it has none.
    async fn stream_key(&self, show: &ShowId) -> Result<Option<StreamKeyRecord>, StoreError>;
    /// Stores (replacing any) or with `None` removes a show's stream key record, durably; the show need
    /// not exist (the caller checks it).
    async fn put_stream_key(
        &self,
        show: &ShowId,
        record: Option<StreamKeyRecord>,
    ) -> Result<(), StoreError>;

    /// Stores a content key's record under `id` unless one exists, durably (like a show); returns whether
    /// it was stored. An existing record is kept as it is: the caller compares (two wrappings of one key
    /// differ, as each has its own nonce).
    async fn put_content_key(
        &self,
        id: &ContentKeyId,
        record: ContentKeyRecord,
    ) -> Result<bool, StoreError>;
    /// A content key's record, `None` when missing.
    async fn content_key(&self, id: &ContentKeyId) -> Result<Option<ContentKeyRecord>, StoreError>;

    /// Adds an admin user unless one of that name exists; returns whether it was added.
    async fn create_admin_user(&self, user: AdminUser) -> Result<bool, StoreError>;
    /// Applies `change` to the admin user `name` as the store holds it, in one atomic step (a concurrent
    /// change of another field survives); returns the user as changed, `None` when missing.
    async fn change_admin_user(
        &self,
        name: &UserName,
        change: UserChange,
    ) -> Result<Option<AdminUser>, StoreError>;
    /// An admin user, `None` when missing.
    async fn admin_user(&self, name: &UserName) -> Result<Option<AdminUser>, StoreError>;
    /// Every admin user, by name.
    async fn admin_users(&self) -> Result<Vec<AdminUser>, StoreError>;
    /// Deletes an admin user and ends their console sessions; returns whether it existed.
    async fn delete_admin_user(&self, name: &UserName) -> Result<bool, StoreError>;

    /// Stores a new console session (it lapses at its `expires_at` unless touched).
    async fn put_console_session(&self, session: ConsoleSession) -> Result<(), StoreError>;
    /// A console session by the hash of its cookie, `None` when missing or lapsed.
    async fn console_session(&self, id: &SecretHash) -> Result<Option<ConsoleSession>, StoreError>;
    /// Notes a request on a session: `last_seen` becomes now and it lapses at `expires_at` (best effort).
    async fn touch_console_session(
        &self,
        id: &SecretHash,
        expires_at: UnixMs,
    ) -> Result<(), StoreError>;
    /// Ends a console session (logout); returns whether it existed.
    async fn delete_console_session(&self, id: &SecretHash) -> Result<bool, StoreError>;
    /// Ends every console session of `user` but `keep` (a password change ends the others); returns how
    /// many ended.
    async fn end_console_sessions(
        &self,
        user: &UserName,
        keep: Option<&SecretHash>,
    ) -> Result<u64, StoreError>;

    /// Counts a login attempt under `key` (`user:…`, `addr:…`) *before* its password is checked, in one
    /// atomic step with the check of the key's wait: while a wait runs the attempt is refused
    /// ([`LoginGate::Wait`]) and not counted; otherwise it is counted and allowed, and the wait after it
    /// ([`Backoff::wait_after`] of the new count) starts now, so attempts racing it are refused. The
    /// count is forgotten `rule.keep_ms(wait)` after the last counted attempt.
    async fn login_attempt(&self, key: &str, rule: &Backoff) -> Result<LoginGate, StoreError>;
    /// Takes back one attempt under `key` (it succeeded, so it was no guess): the count drops by one, and
    /// a wait it started ends when the count falls below `rule.free`.
    async fn undo_login_attempt(&self, key: &str, rule: &Backoff) -> Result<(), StoreError>;
    /// Forgets the attempts under `key` and any wait (a successful login of the user; an admin's unlock).
    async fn clear_login_failures(&self, key: &str) -> Result<(), StoreError>;

    /// Appends an entry to the audit log, durably.
    async fn append_audit(&self, entry: AuditEntry) -> Result<(), StoreError>;
    /// Audit entries passing `filter`, newest first, at most `filter.limit`. The newest
    /// [`AUDIT_SCAN_LIMIT`] entries (before `filter.until`) are looked at, no more, so a query's cost is
    /// bounded whatever the log holds; the embedded store reads them off the async runtime.
    async fn audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>, StoreError>;
    /// Drops audit entries older than `before` and, past that, the oldest entries beyond `max_rows`, at
    /// most 100,000 in one call (call again while it drops any); returns how many were dropped.
    async fn prune_audit(&self, before: UnixMs, max_rows: u64) -> Result<u64, StoreError>;

    /// Sessions holding a lease, per show (shows without one may be missing). Cheap, so a metrics task
    /// may call it every second: the embedded store keeps the counts as leases change (a lapsed lease
    /// leaves at the next [`Store::sweep`]); Redis counts each show's `live` set.
    async fn live_session_counts(&self) -> Result<Vec<(ShowId, u64)>, StoreError>;

    /// Adds per-minute admit outcome counts (kept at least two hours; not durable).
    async fn add_outcome_counts(&self, counts: Vec<OutcomeCount>) -> Result<(), StoreError>;
    /// Outcome counts of the minutes starting at or after `since`, summed over every node.
    async fn outcome_counts(&self, since: UnixMs) -> Result<Vec<OutcomeCount>, StoreError>;

    /// Claims `key` for a request with `fingerprint` (an in-progress record lapsing at `until`), unless a
    /// record that has not lapsed by the store's clock holds it; one of any number of racing claims wins.
    async fn claim_idempotency(
        &self,
        key: &str,
        fingerprint: &str,
        until: UnixMs,
    ) -> Result<IdempotencyClaim, StoreError>;
    /// Records the answer of the request that claimed `key` (replacing its claim).
    async fn finish_idempotency(
        &self,
        key: &str,
        record: IdempotentRequest,
    ) -> Result<(), StoreError>;
    /// Forgets `key`: its request failed in a way a retry may cure, so the retry runs it anew.
    async fn release_idempotency(&self, key: &str) -> Result<(), StoreError>;

    /// The show's door, asked for `ticket` (which holds no seat): let in (a pass, counted in the capacity
    /// until the ticket's admit takes a seat — which uses the pass up in the same step — or `pass_ms`) when the line ahead is empty and a place and the rate
    /// allow, else a place in line, first come, first served across every node. Each ask is also a
    /// waiter's sign of life; the line forgets waiters not seen for `abandon_ms`.
    async fn door(
        &self,
        show: &ShowId,
        ticket: &TicketId,
        rules: DoorRules,
    ) -> Result<DoorAnswer, StoreError>;

    /// Keeps a new TV sign-in code under `user_code` (a keyed hash) until it lapses; false when a code
    /// that has not lapsed holds that user code already (the caller draws another).
    async fn create_tv_code(
        &self,
        user_code: &SecretHash,
        code: TvCode,
    ) -> Result<bool, StoreError>;
    /// Approves the code under `user_code` for a ticket, once: a second approval leaves the first.
    async fn approve_tv_code(
        &self,
        user_code: &SecretHash,
        approval: TvApproval,
    ) -> Result<TvApproveOutcome, StoreError>;
    /// A TV's poll with its device secret: pending (or `slow_down` when too early, see
    /// [`TV_POLL_SLACK_MS`]), or the approval, which this poll takes (the code is gone after it).
    async fn poll_tv_code(
        &self,
        user_code: &SecretHash,
        device_secret: &SecretHash,
    ) -> Result<TvPoll, StoreError>;

    /// Adds or replaces a webhook endpoint.
    async fn put_webhook(&self, endpoint: WebhookEndpoint) -> Result<PutOutcome, StoreError>;
    /// One webhook endpoint.
    async fn webhook(&self, id: &WebhookId) -> Result<Option<WebhookEndpoint>, StoreError>;
    /// Every webhook endpoint, by id.
    async fn webhooks(&self) -> Result<Vec<WebhookEndpoint>, StoreError>;
    /// Deletes an endpoint (its pending deliveries are given up when next claimed).
    async fn delete_webhook(&self, id: &WebhookId) -> Result<bool, StoreError>;
    /// Queues deliveries durably (the outbox): once this returns, a crash loses none.
    async fn enqueue_deliveries(&self, deliveries: Vec<Delivery>) -> Result<(), StoreError>;
    /// Claims up to `limit` pending deliveries due by the store's clock, oldest due first, until
    /// `until`: no other claim gets them before then (the claimer records the attempt with
    /// [`Store::save_delivery`]; a claimer that never does leaves them due again at `until`).
    async fn claim_deliveries(
        &self,
        until: UnixMs,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError>;
    /// Records a delivery as it now stands: a pending one is due at its `next_attempt_at`, a delivered
    /// or failed one no longer.
    async fn save_delivery(&self, delivery: Delivery) -> Result<(), StoreError>;
    /// One delivery.
    async fn delivery(&self, id: &DeliveryId) -> Result<Option<Delivery>, StoreError>;
    /// An endpoint's deliveries, newest first, at most `limit` (the last 1,000 are kept per endpoint).
    async fn deliveries(
        &self,
        endpoint: &WebhookId,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError>;

    /// Makes every acknowledged lease change durable (called periodically).
    async fn flush(&self) -> Result<(), StoreError>;

    /// The last flush, at shutdown: every lease change durable, in the layout an older release reads
    /// too (the embedded store writes whole records then). The store stays usable.
    async fn close(&self) -> Result<(), StoreError> {
        self.flush().await
    }

    /// Drops leases past their expiry (each remembered as `expired`, as a lease step would) and forgets
    /// what no ticket remembers any more; returns the leases dropped. The server calls it every 15
    /// seconds. Correctness never depends on it: every lease step drops lapsed leases itself, so a
    /// session's answers are the same with or without a sweep; it only bounds what a backend keeps in
    /// memory for tickets nobody plays any more. A backend whose data expires by itself (Redis: key
    /// lifetimes, and the scripts drop lapsed leases) does nothing and returns 0.
    async fn sweep(&self) -> Result<u64, StoreError>;

    /// Writes a consistent snapshot of everything the store keeps to `dest`, a new file (an existing one
    /// is never overwritten), with the leases made durable first; the snapshot is a state the store
    /// really had, whatever writes go on meanwhile.
    ///
    /// # Errors
    /// [`StoreError::Unsupported`] from a backend that cannot (Redis: back Redis itself up), without
    /// touching `dest`; [`StoreError::Unavailable`] when `dest` exists or cannot be written, or the store
    /// cannot be read.
    async fn backup(&self, dest: &std::path::Path) -> Result<BackupInfo, StoreError>;
}
