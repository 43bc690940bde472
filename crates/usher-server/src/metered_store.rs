//! `MeteredStore`: the configured store wrapped so every operation is timed and every failure counted,
//! per operation (`usher_store_operation_duration_seconds{op}`, `usher_store_errors_total{op,kind}`).
//! The dashboard's store panels and the `UsherStoreErrors` alert read these; `/readyz` and the
//! `usher_ready` gauge say whether the store answers at all.
//!
//! Each operation's histogram is registered the first time it is used, so `/metrics` lists only the
//! operations this node performs; error counters appear with the first error.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use async_trait::async_trait;
use metrics::Histogram;
use usher_core::admin::{
    AdminUser, AuditEntry, AuditFilter, Backoff, ConsoleSession, LoginGate, OutcomeCount,
    UserChange, UserName,
};
use usher_core::cdn::{Cdn, CdnHealth};
use usher_core::clock::UnixMs;
use usher_core::content_key::ContentKeyRecord;
use usher_core::ids::{
    ApiKeyId, CdnId, ContentKeyId, DeliveryId, SessionId, ShowId, TicketId, WebhookId,
};
use usher_core::lease::{AdmitDecision, EndReason, LeaveDecision, Presented};
use usher_core::privacy::{Erased, Retention};
use usher_core::secret::SecretHash;
use usher_core::show::Show;
use usher_core::store::{
    AdmitRequest, ApiKey, BackupInfo, DeleteShowOutcome, DoorAnswer, DoorRules, HeartbeatAnswer,
    IdempotencyClaim, IdempotentRequest, NewTicket, PutOutcome, RegisterOutcome, RetentionBatch,
    SessionInfo, Store, StoreError, TicketActivity, TvApproval, TvApproveOutcome, TvCode, TvPoll,
};
use usher_core::stream_key::StreamKeyRecord;
use usher_core::ticket::Ticket;
use usher_core::webhook::{Delivery, WebhookEndpoint};

/// The duration histogram of one operation, registered on first use.
struct Op {
    name: &'static str,
    duration: OnceLock<Histogram>,
}

impl Op {
    const fn new(name: &'static str) -> Self {
        Self {
            name,
            duration: OnceLock::new(),
        }
    }

    fn observe<T>(&self, started: Instant, result: &Result<T, StoreError>) {
        self.duration
            .get_or_init(
                || metrics::histogram!("usher_store_operation_duration_seconds", "op" => self.name),
            )
            .record(started.elapsed().as_secs_f64());
        if let Err(e) = result {
            let kind = match e {
                StoreError::Unavailable(_) => "unavailable",
                StoreError::Corrupt(_) => "corrupt",
                StoreError::Incompatible(_) => "incompatible",
                StoreError::Unsupported { .. } => "unsupported",
            };
            metrics::counter!("usher_store_errors_total", "op" => self.name, "kind" => kind)
                .increment(1);
        }
    }
}

/// Writes the wrapper: one [`Op`] per operation and a `Store` impl that times each call to `inner`.
macro_rules! metered {
    ($( fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty; )*) => {
        /// One [`Op`] per store operation.
        struct Ops {
            $( $name: Op, )*
        }

        impl Ops {
            const fn new() -> Self {
                Self { $( $name: Op::new(stringify!($name)), )* }
            }
        }

        #[async_trait]
        impl Store for MeteredStore {
            fn now(&self) -> UnixMs {
                self.inner.now()
            }
            // not timed (a read of memory), but forwarded: the trait's default (`None`) made the CDN
            // pool's cache prepare the pool again on every admit, heartbeat and playlist
            fn cdns_generation(&self) -> Option<u64> {
                self.inner.cdns_generation()
            }
            $(
                async fn $name(&self, $($arg: $ty),*) -> Result<$ret, StoreError> {
                    let started = Instant::now();
                    let result = self.inner.$name($($arg),*).await;
                    self.ops.$name.observe(started, &result);
                    result
                }
            )*
        }
    };
}

/// The store every service uses: the configured backend, timed.
pub struct MeteredStore {
    inner: Arc<dyn Store>,
    ops: Ops,
}

impl MeteredStore {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Store>) -> Self {
        Self {
            inner,
            ops: Ops::new(),
        }
    }
}

metered! {
    fn ping() -> ();
    fn put_show(show: Show) -> PutOutcome;
    fn show(id: &ShowId) -> Option<Show>;
    fn shows() -> Vec<Show>;
    fn delete_show(id: &ShowId) -> DeleteShowOutcome;
    fn register_tickets(batch: Vec<NewTicket>) -> Vec<RegisterOutcome>;
    fn register_tickets_audited(batch: Vec<NewTicket>, audit: AuditEntry) -> Vec<RegisterOutcome>;
    fn ticket(id: &TicketId) -> Option<Ticket>;
    fn ticket_by_token(hash: &SecretHash) -> Option<Ticket>;
    fn revoke_ticket(id: &TicketId) -> Option<Ticket>;
    fn ticket_activity(id: &TicketId) -> TicketActivity;
    fn erase_personal_data(id: &TicketId) -> Erased;
    fn retain_usage(rules: &Retention) -> RetentionBatch;
    fn claim_retention_pass(rest: std::time::Duration) -> bool;
    fn admit(req: AdmitRequest) -> AdmitDecision;
    fn heartbeat(session: &SessionId, presented: Presented<'_>) -> HeartbeatAnswer;
    fn leave(session: &SessionId, secret: &SecretHash) -> LeaveDecision;
    fn end_session(session: &SessionId, reason: EndReason) -> bool;
    fn live_session(session: &SessionId) -> Option<SessionInfo>;
    fn sessions(show: Option<&ShowId>) -> Vec<SessionInfo>;
    fn put_api_key(key: ApiKey) -> ();
    fn api_key(id: &ApiKeyId) -> Option<ApiKey>;
    fn api_keys() -> Vec<ApiKey>;
    fn delete_api_key(id: &ApiKeyId) -> bool;
    fn touch_api_key(id: &ApiKeyId) -> ();
    fn put_cdn(cdn: Cdn) -> PutOutcome;
    fn cdn(id: &CdnId) -> Option<Cdn>;
    fn cdns() -> Vec<Cdn>;
    fn delete_cdn(id: &CdnId) -> bool;
    fn set_cdn_health(id: &CdnId, health: CdnHealth) -> bool;
    fn tickets_by_external_ref(external_ref: &str, limit: usize) -> Vec<Ticket>;
    fn poster(show: &ShowId) -> Option<(String, Vec<u8>)>;
    fn put_poster(show: &ShowId, poster: Option<(String, Vec<u8>)>) -> ();
    fn stream_key(show: &ShowId) -> Option<StreamKeyRecord>;
    fn put_stream_key(show: &ShowId, record: Option<StreamKeyRecord>) -> ();
    fn put_content_key(id: &ContentKeyId, record: ContentKeyRecord) -> bool;
    fn content_key(id: &ContentKeyId) -> Option<ContentKeyRecord>;
    fn create_admin_user(user: AdminUser) -> bool;
    fn change_admin_user(name: &UserName, change: UserChange) -> Option<AdminUser>;
    fn admin_user(name: &UserName) -> Option<AdminUser>;
    fn admin_users() -> Vec<AdminUser>;
    fn delete_admin_user(name: &UserName) -> bool;
    fn put_console_session(session: ConsoleSession) -> ();
    fn console_session(id: &SecretHash) -> Option<ConsoleSession>;
    fn touch_console_session(id: &SecretHash, expires_at: UnixMs) -> ();
    fn delete_console_session(id: &SecretHash) -> bool;
    fn end_console_sessions(user: &UserName, keep: Option<&SecretHash>) -> u64;
    fn login_attempt(key: &str, rule: &Backoff) -> LoginGate;
    fn undo_login_attempt(key: &str, rule: &Backoff) -> ();
    fn clear_login_failures(key: &str) -> ();
    fn append_audit(entry: AuditEntry) -> ();
    fn audit(filter: &AuditFilter) -> Vec<AuditEntry>;
    fn prune_audit(before: UnixMs, max_rows: u64) -> u64;
    fn live_session_counts() -> Vec<(ShowId, u64)>;
    fn add_outcome_counts(counts: Vec<OutcomeCount>) -> ();
    fn outcome_counts(since: UnixMs) -> Vec<OutcomeCount>;
    fn claim_idempotency(key: &str, fingerprint: &str, until: UnixMs) -> IdempotencyClaim;
    fn finish_idempotency(key: &str, record: IdempotentRequest) -> ();
    fn release_idempotency(key: &str) -> ();
    fn door(show: &ShowId, ticket: &TicketId, rules: DoorRules) -> DoorAnswer;
    fn create_tv_code(user_code: &SecretHash, code: TvCode) -> bool;
    fn approve_tv_code(user_code: &SecretHash, approval: TvApproval) -> TvApproveOutcome;
    fn poll_tv_code(user_code: &SecretHash, device_secret: &SecretHash) -> TvPoll;
    fn put_webhook(endpoint: WebhookEndpoint) -> PutOutcome;
    fn webhook(id: &WebhookId) -> Option<WebhookEndpoint>;
    fn webhooks() -> Vec<WebhookEndpoint>;
    fn delete_webhook(id: &WebhookId) -> bool;
    fn enqueue_deliveries(deliveries: Vec<Delivery>) -> ();
    fn claim_deliveries(until: UnixMs, limit: usize) -> Vec<Delivery>;
    fn save_delivery(delivery: Delivery) -> ();
    fn delivery(id: &DeliveryId) -> Option<Delivery>;
    fn deliveries(endpoint: &WebhookId, limit: usize) -> Vec<Delivery>;
    fn flush() -> ();
    fn close() -> ();
    fn sweep() -> u64;
    fn backup(dest: &std::path::Path) -> BackupInfo;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::delivery::cdn_pool::PoolCache;

    #[tokio::test]
    async fn the_wrapper_keeps_the_pools_generation_so_the_pool_is_prepared_once() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(usher_core::clock::SystemClock);
        let inner: Arc<dyn Store> =
            Arc::new(usher_store::EmbeddedStore::open(dir.path(), clock).unwrap());
        let store = MeteredStore::new(Arc::clone(&inner));
        assert!(inner.cdns_generation().is_some());
        assert_eq!(store.cdns_generation(), inner.cdns_generation());
        let cache = PoolCache::new("metered-store-test-grant-key".to_owned().into()).unwrap();
        let first = cache.prepared(&store).await.unwrap();
        let again = cache.prepared(&store).await.unwrap();
        assert!(
            Arc::ptr_eq(&first, &again),
            "the pool was prepared again while nothing changed"
        );
        store
            .put_cdn(usher_store::contract::cdn("edge-a", 10))
            .await
            .unwrap();
        let changed = cache.prepared(&store).await.unwrap();
        assert!(!Arc::ptr_eq(&first, &changed));
        assert!(changed.cdns.iter().any(|c| c.id.as_str() == "edge-a"));
    }
}
