//! The store contract suite: the behaviour every `Store` backend must show, run against each of them.
//!
//! A backend's test file provides a [`Harness`] (a fresh, empty store and a way to move its clock) and
//! calls [`store_contract_tests!`](crate::store_contract_tests), which makes one test per case below.
//! Cases panic with a message on the first broken rule.

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;
use time::OffsetDateTime;

use usher_core::admin::{
    Actor, AdminUser, AuditEntry, AuditFilter, Backoff, ConsoleSession, LoginGate, OutcomeCount,
    Role, UserChange, UserName, minute_of,
};
use usher_core::cdn::{Cdn, CdnHealth, HealthState, SigningConfig};
use usher_core::clock::UnixMs;
use usher_core::content_key::ContentKeyRecord;
use usher_core::geo::Country;
use usher_core::ids::{
    ApiKeyId, CdnId, ContentKeyId, DeliveryId, DeviceId, SessionId, ShowId, TicketId, TicketToken,
    WebhookId,
};
use usher_core::lease::{
    AdmitDecision, EndReason, HeartbeatDecision, LeaveDecision, Presented, SeatRules,
};
use usher_core::privacy::{AddressAging, Erased, Retention};
use usher_core::secret::{SecretHash, SecretHasher};
use usher_core::show::{SharingPolicy, Show, ShowKind};
use usher_core::store::{
    AdmitRequest, ApiKey, DeleteShowOutcome, DoorAnswer, DoorRules, IdempotencyClaim,
    IdempotentRequest, NewTicket, PutOutcome, RegisterOutcome, Scope, Store, StoreError,
    TvApproval, TvApproveOutcome, TvCode, TvPoll,
};
use usher_core::ticket::{Ticket, TicketStatus, TicketTerms};
use usher_core::webhook::{Delivery, DeliveryState, WebhookEndpoint};

/// A fresh store for one case, and control over the time it sees.
#[async_trait]
pub trait Harness: Send + Sync {
    /// The store under test (empty at the start of a case).
    fn store(&self) -> Arc<dyn Store>;
    /// Lets `ms` milliseconds pass on the store's clock (a manual clock moves; a server clock is waited on).
    async fn advance_ms(&self, ms: i64);
    /// Whether the backend takes backups ([`Store::backup`]); one that does not must say
    /// [`StoreError::Unsupported`].
    fn backs_up(&self) -> bool;
    /// Whether [`Store::sweep`] drops lapsed leases itself; one that does not must return 0.
    fn sweeps(&self) -> bool;
    /// How long after a seat frees, or a pass is used by its admit, the store's door may still count it
    /// (a Redis Cluster's door counts the seats from a recent copy and keeps a used pass a little
    /// longer: docs/redis.md); zero where the door counts them in its own step.
    fn door_lag(&self) -> std::time::Duration {
        std::time::Duration::ZERO
    }
}

/// Makes one `#[tokio::test]` per contract case; `$make` is an async expression yielding a [`Harness`].
#[macro_export]
macro_rules! store_contract_tests {
    ($make:expr) => {
        $crate::store_contract_tests!(@cases $make;
            shows_round_trip,
            delete_show_with_tickets_is_refused,
            registration_is_idempotent_on_the_token,
            an_audited_registration_writes_its_entry_only_when_it_creates,
            batch_registration_sees_its_own_items,
            racing_registrations_of_one_token_make_one_ticket,
            token_lookup_compares_the_hash,
            a_token_lookup_sees_the_revoke_before_it,
            tokens_alike_in_their_first_bytes_are_told_apart,
            revocation_ends_sessions_and_is_durable_state,
            newest_wins_supersedes_and_tells_by_whom,
            oldest_wins_refuses_until_a_lease_lapses,
            a_device_reattaches_to_its_session,
            expired_leases_free_the_seat,
            a_lease_lapsed_during_a_ridden_outage_is_held_again,
            ended_sessions_lose_the_seat_at_once,
            sessions_are_listed_by_show,
            usage_is_recorded,
            countries_and_geo_endings_are_recorded,
            api_keys_round_trip,
            cdns_round_trip,
            racing_admits_never_exceed_k,
            unknown_sessions_are_unknown,
            tickets_are_found_by_external_ref,
            posters_round_trip,
            stream_keys_are_replaced_and_removed,
            content_keys_are_written_once,
            idempotency_claims_are_won_once_and_lapse,
            tv_codes_are_approved_once_and_taken_once,
            the_door_lets_in_first_come_first_served,
            webhooks_round_trip_and_deliveries_are_claimed_once,
            admin_users_round_trip,
            console_sessions_lapse_and_end,
            login_attempts_are_counted_before_the_check_and_back_off,
            racing_login_attempts_pass_only_the_free_ones,
            user_changes_apply_to_the_stored_record,
            a_users_other_console_sessions_end,
            audit_is_newest_first_and_filtered,
            audit_is_pruned_by_age_and_count,
            live_session_counts_follow_the_leases,
            outcome_counts_add_up,
            sweeps_drop_only_lapsed_leases,
            backups_are_written_once_or_unsupported,
            a_revoked_ticket_neither_admits_nor_renews,
            revokes_racing_admits_leave_nothing_playing,
            the_session_secret_controls_the_session,
            a_copied_secret_is_told_from_a_retry,
            a_lease_knows_its_newest_retired_secrets_only,
            usage_retention_truncates_then_drops,
            usage_retention_never_loses_a_racing_admit,
            erasure_clears_personal_data_and_keeps_the_seats
        );
    };
    (@cases $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let harness = $make.await;
                $crate::contract::$case(&harness).await;
            }
        )*
    };
}

fn hasher() -> SecretHasher {
    SecretHasher::new(b"contract-suite-key-0123456789abcdef")
}

/// A show open from an hour ago for a day, k = `k`.
pub fn show(id: &str, k: u32, policy: SharingPolicy) -> Show {
    let now = OffsetDateTime::now_utc();
    Show {
        id: ShowId::parse(id).expect("valid show id"),
        title: format!("Show {id}"),
        description: String::new(),
        kind: ShowKind::Vod,
        starts_at: now - time::Duration::hours(1),
        ends_at: now + time::Duration::days(1),
        stream_path: "demo".into(),
        max_devices: k,
        policy,
        heartbeat_interval_s: 15,
        lease_ttl_s: 45,
        grant_ttl_s: 120,
        geo: Default::default(),
        cdns: Vec::new(),
        published: true,
        encryption: Default::default(),
        live_dvr_s: None,
        live_recording: false,
        capacity: None,
        admit_rate_per_s: None,
        translations: Default::default(),
        poster: None,
        created_at: now,
        updated_at: now,
    }
}

/// A new ticket for `show` with `token`.
pub fn ticket(show: &str, token: &str, external_ref: Option<&str>) -> NewTicket {
    let token = TicketToken::parse(token).expect("valid token");
    let token_hash = hasher().ticket_token(&token);
    NewTicket {
        ticket: Ticket {
            id: TicketId::generate_in(&token_hash.shard()),
            token_hash,
            terms: TicketTerms {
                show_id: ShowId::parse(show).expect("valid show id"),
                valid_from: None,
                valid_until: None,
                max_devices: None,
                external_ref: external_ref.map(str::to_owned),
            },
            status: TicketStatus::Active,
            created_at: OffsetDateTime::now_utc(),
            revoked_at: None,
        },
    }
}

fn token_hash(token: &str) -> SecretHash {
    hasher().ticket_token(&TicketToken::parse(token).expect("valid token"))
}

fn device(n: usize) -> DeviceId {
    DeviceId::parse(&format!("device-{n:06}")).expect("valid device id")
}

async fn registered(store: &dyn Store, show_id: &str, token: &str) -> Ticket {
    match store
        .register_tickets(vec![ticket(show_id, token, None)])
        .await
        .expect("register")
        .remove(0)
    {
        RegisterOutcome::Created(t) => t,
        other => panic!("expected a new ticket, got {other:?}"),
    }
}

/// A first admit of `t` by device `dev` (`device-{dev:06}`, labelled `Device {dev}`), `k` seats under
/// `policy`, a lease of `ttl_ms`, presenting no secret and handed [`seat_secret`].
pub fn admit_req(
    t: &Ticket,
    dev: usize,
    k: u32,
    policy: SharingPolicy,
    ttl_ms: i64,
) -> AdmitRequest {
    AdmitRequest {
        ticket_id: t.id.clone(),
        show_id: t.terms.show_id.clone(),
        bounds: t.bounds(),
        device_id: device(dev),
        device_label: format!("Device {dev}"),
        rules: SeatRules {
            max_devices: k,
            policy,
            ttl_ms,
        },
        country: None,
        address: None,
        presented: None,
        fresh: seat_secret(),
    }
}

/// The secret every admit of the suite hands out (one for all, so a test can renew any session).
pub fn seat_secret() -> SecretHash {
    hasher().session_secret("contract-seat-secret")
}

/// A renewal presenting the suite's secret: valid for every session not yet renewed with a later one
/// (the suite never presents the fresh secrets, so it stays the previous one and keeps renewing).
pub fn renewal() -> Presented<'static> {
    static SEAT: std::sync::OnceLock<SecretHash> = std::sync::OnceLock::new();
    Presented {
        secret: SEAT.get_or_init(seat_secret),
        fresh: Some(hasher().session_secret(&SessionId::generate().to_string())),
        revive_since: None,
    }
}

fn session_of(d: &AdmitDecision) -> SessionId {
    match d {
        AdmitDecision::Admitted { session_id, .. } => session_id.clone(),
        other => panic!("expected admitted, got {other:?}"),
    }
}

/// Shows: put creates then replaces, get and list see it, delete removes it.
pub async fn shows_round_trip(h: &impl Harness) {
    let store = h.store();
    let s = show("concert", 1, SharingPolicy::NewestWins);
    assert_eq!(
        store.put_show(s.clone()).await.unwrap(),
        PutOutcome::Created
    );
    let mut s2 = s.clone();
    s2.title = "Renamed".into();
    assert_eq!(
        store.put_show(s2.clone()).await.unwrap(),
        PutOutcome::Replaced
    );
    assert_eq!(store.show(&s.id).await.unwrap(), Some(s2.clone()));
    store
        .put_show(show("another", 2, SharingPolicy::OldestWins))
        .await
        .unwrap();
    let ids: Vec<String> = store
        .shows()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id.to_string())
        .collect();
    assert_eq!(ids, ["another", "concert"]);
    assert_eq!(
        store.delete_show(&s.id).await.unwrap(),
        DeleteShowOutcome::Deleted
    );
    assert_eq!(
        store.delete_show(&s.id).await.unwrap(),
        DeleteShowOutcome::Missing
    );
    assert_eq!(store.show(&s.id).await.unwrap(), None);
}

/// A show that tickets admit to is not deleted.
pub async fn delete_show_with_tickets_is_refused(h: &impl Harness) {
    let store = h.store();
    store
        .put_show(show("kept", 1, SharingPolicy::NewestWins))
        .await
        .unwrap();
    registered(&*store, "kept", "token-for-kept-show-1").await;
    assert_eq!(
        store
            .delete_show(&ShowId::parse("kept").unwrap())
            .await
            .unwrap(),
        DeleteShowOutcome::HasTickets(1)
    );
    assert!(
        store
            .show(&ShowId::parse("kept").unwrap())
            .await
            .unwrap()
            .is_some()
    );
}

/// The same token twice with the same terms is one ticket; with other terms it is a conflict.
pub async fn registration_is_idempotent_on_the_token(h: &impl Harness) {
    let store = h.store();
    store
        .put_show(show("s1", 1, SharingPolicy::NewestWins))
        .await
        .unwrap();
    let first = registered(&*store, "s1", "idempotent-token-0001").await;
    let again = store
        .register_tickets(vec![ticket("s1", "idempotent-token-0001", None)])
        .await
        .unwrap();
    assert_eq!(again, vec![RegisterOutcome::Existing(first.clone())]);
    let other = store
        .register_tickets(vec![ticket("s1", "idempotent-token-0001", Some("order-9"))])
        .await
        .unwrap();
    assert_eq!(other, vec![RegisterOutcome::Conflict(first.id.clone())]);
    // the token still leads to the first ticket: neither the repeat nor the conflict took it over
    assert_eq!(
        store.ticket_by_token(&first.token_hash).await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(store.ticket(&first.id).await.unwrap(), Some(first));
}

/// A registration with its audit entry: the entry is in the log once the ticket is created; a repeat
/// and a conflict create nothing and write none.
pub async fn an_audited_registration_writes_its_entry_only_when_it_creates(h: &impl Harness) {
    let store = h.store();
    store
        .put_show(show("s1", 1, SharingPolicy::NewestWins))
        .await
        .unwrap();
    let entry = |n: i64| AuditEntry {
        at: UnixMs(store.now().0 + n),
        actor: Actor::ApiKey("k_0011223344556677".into()),
        action: "ticket.register".into(),
        target: format!("ticket:n{n}"),
        address: Some("192.0.2.7".into()),
        detail: String::new(),
    };
    let created = store
        .register_tickets_audited(vec![ticket("s1", "audited-token-0001", None)], entry(1))
        .await
        .unwrap();
    let [RegisterOutcome::Created(first)] = &created[..] else {
        panic!("{created:?}")
    };
    assert_eq!(audit_targets(&*store).await, ["ticket:n1"]);
    let again = store
        .register_tickets_audited(vec![ticket("s1", "audited-token-0001", None)], entry(2))
        .await
        .unwrap();
    assert_eq!(again, vec![RegisterOutcome::Existing(first.clone())]);
    let other = store
        .register_tickets_audited(
            vec![ticket("s1", "audited-token-0001", Some("order-9"))],
            entry(3),
        )
        .await
        .unwrap();
    assert_eq!(other, vec![RegisterOutcome::Conflict(first.id.clone())]);
    assert_eq!(
        audit_targets(&*store).await,
        ["ticket:n1"],
        "a repeat and a conflict wrote an entry"
    );
    assert_eq!(store.ticket(&first.id).await.unwrap().as_ref(), Some(first));
}

/// The targets of the newest 100 audit entries, newest first.
async fn audit_targets(store: &dyn Store) -> Vec<String> {
    let all = AuditFilter {
        limit: 100,
        ..Default::default()
    };
    let entries = store.audit(&all).await.unwrap();
    entries.into_iter().map(|e| e.target).collect()
}

/// Within one batch, a repeated token sees the item registered before it.
pub async fn batch_registration_sees_its_own_items(h: &impl Harness) {
    let store = h.store();
    store
        .put_show(show("s1", 1, SharingPolicy::NewestWins))
        .await
        .unwrap();
    let batch: Vec<NewTicket> = (0..500)
        .map(|i| ticket("s1", &format!("batch-token-{i:08}"), None))
        .collect();
    let mut with_repeats = batch.clone();
    with_repeats.push(ticket("s1", "batch-token-00000007", None));
    with_repeats.push(ticket("s1", "batch-token-00000008", Some("different")));
    let out = store.register_tickets(with_repeats).await.unwrap();
    assert_eq!(out.len(), 502);
    assert!(
        out[..500]
            .iter()
            .all(|o| matches!(o, RegisterOutcome::Created(_)))
    );
    assert!(matches!(&out[500], RegisterOutcome::Existing(t) if t.id == batch[7].ticket.id));
    assert!(matches!(&out[501], RegisterOutcome::Conflict(id) if *id == batch[8].ticket.id));
    for i in [0usize, 250, 499] {
        let found = store
            .ticket_by_token(&token_hash(&format!("batch-token-{i:08}")))
            .await
            .unwrap();
        assert_eq!(found.map(|t| t.id), Some(batch[i].ticket.id.clone()));
    }
}

/// Registrations of one token racing from many tasks (some with other terms) make one ticket: every
/// other answer names it, as a repeat or a conflict, and the token leads to it.
pub async fn racing_registrations_of_one_token_make_one_ticket(h: &impl Harness) {
    let store = h.store();
    store
        .put_show(show("s1", 1, SharingPolicy::NewestWins))
        .await
        .unwrap();
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let store = Arc::clone(&store);
            let reference = (i % 4 == 3).then_some("order-other");
            tokio::spawn(async move {
                let out = store
                    .register_tickets(vec![ticket("s1", "racing-token-000001", reference)])
                    .await
                    .unwrap();
                (reference.is_some(), out.into_iter().next().unwrap())
            })
        })
        .collect();
    let mut created = Vec::new();
    let mut others = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            (_, RegisterOutcome::Created(t)) => created.push(t),
            other => others.push(other),
        }
    }
    assert_eq!(created.len(), 1, "{created:?}");
    let first = &created[0];
    for (other_terms, outcome) in others {
        match &outcome {
            RegisterOutcome::Existing(t) => assert_eq!(t, first),
            RegisterOutcome::Conflict(id) => assert_eq!(id, &first.id),
            RegisterOutcome::Created(_) => unreachable!(),
        }
        // a conflict is a repeat with other terms than the first's, and only that
        let same_terms = other_terms == first.terms.external_ref.is_some();
        assert_eq!(
            matches!(outcome, RegisterOutcome::Existing(_)),
            same_terms,
            "{outcome:?}"
        );
    }
    assert_eq!(
        store
            .ticket_by_token(&first.token_hash)
            .await
            .unwrap()
            .as_ref(),
        Some(first)
    );
}

/// A token hash of 64 hex digits (`digits` padded with zeros).
fn raw_hash(digits: &str) -> SecretHash {
    SecretHash::try_from(format!("{digits:0<64}")).expect("64 hex digits")
}

/// Tokens whose hashes share their first eight bytes are still two tickets, each found by its own
/// hash, and a third hash with the same beginning finds neither (a store may index a prefix of the
/// hash, as long as it compares the whole).
pub async fn tokens_alike_in_their_first_bytes_are_told_apart(h: &impl Harness) {
    let store = h.store();
    store
        .put_show(show("s1", 1, SharingPolicy::NewestWins))
        .await
        .unwrap();
    let with_hash = |hash: SecretHash| {
        let mut t = ticket("s1", "alike-token-0000001", None);
        t.ticket.id = TicketId::generate_in(&hash.shard());
        t.ticket.token_hash = hash;
        t
    };
    let (a, b) = (
        with_hash(raw_hash("5a5a5a5a5a5a5a5a01")),
        with_hash(raw_hash("5a5a5a5a5a5a5a5a02")),
    );
    let out = store.register_tickets(vec![a.clone()]).await.unwrap();
    assert_eq!(out, vec![RegisterOutcome::Created(a.ticket.clone())]);
    let out = store.register_tickets(vec![b.clone()]).await.unwrap();
    assert_eq!(out, vec![RegisterOutcome::Created(b.ticket.clone())]);
    for t in [&a, &b] {
        assert_eq!(
            store
                .ticket_by_token(&t.ticket.token_hash)
                .await
                .unwrap()
                .as_ref(),
            Some(&t.ticket)
        );
        // the same token again, under a new id as the ticket API makes one
        let again = store
            .register_tickets(vec![with_hash(t.ticket.token_hash)])
            .await
            .unwrap();
        assert_eq!(again, vec![RegisterOutcome::Existing(t.ticket.clone())]);
    }
    assert_eq!(
        store
            .ticket_by_token(&raw_hash("5a5a5a5a5a5a5a5a03"))
            .await
            .unwrap(),
        None
    );
}

/// Lookup by token hash finds only the exact hash.
pub async fn token_lookup_compares_the_hash(h: &impl Harness) {
    let store = h.store();
    store
        .put_show(show("s1", 1, SharingPolicy::NewestWins))
        .await
        .unwrap();
    let t = registered(&*store, "s1", "lookup-token-000001").await;
    assert_eq!(
        store
            .ticket_by_token(&token_hash("lookup-token-000001"))
            .await
            .unwrap(),
        Some(t)
    );
    assert_eq!(
        store
            .ticket_by_token(&token_hash("lookup-token-000002"))
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.ticket(&TicketId::generate()).await.unwrap(), None);
}

/// A token looked up (as every admit does) and then revoked is found revoked by the next lookup, and
/// still after lookups that raced the revoke have ended: a store that keeps what it looked up must not
/// serve, or keep, a copy from before the revoke.
pub async fn a_token_lookup_sees_the_revoke_before_it(h: &impl Harness) {
    let store = h.store();
    store
        .put_show(show("s1", 1, SharingPolicy::NewestWins))
        .await
        .unwrap();
    let t = registered(&*store, "s1", "revoked-lookup-token-01").await;
    for _ in 0..2 {
        let found = store.ticket_by_token(&t.token_hash).await.unwrap().unwrap();
        assert_eq!(found.status, TicketStatus::Active);
    }
    let lookups: Vec<_> = (0..8)
        .map(|_| {
            let store = h.store();
            let hash = t.token_hash;
            tokio::spawn(async move {
                for _ in 0..50 {
                    store.ticket_by_token(&hash).await.unwrap().unwrap();
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    store.revoke_ticket(&t.id).await.unwrap().unwrap();
    let after = store.ticket_by_token(&t.token_hash).await.unwrap().unwrap();
    assert_eq!(after.status, TicketStatus::Revoked);
    for l in lookups {
        l.await.unwrap();
    }
    // the racing lookups kept nothing from before the revoke
    let after = store.ticket_by_token(&t.token_hash).await.unwrap().unwrap();
    assert_eq!(after.status, TicketStatus::Revoked);
}

/// Revoking marks the ticket, keeps the first revocation time, and ends its sessions with reason revoked.
pub async fn revocation_ends_sessions_and_is_durable_state(h: &impl Harness) {
    let store = h.store();
    store
        .put_show(show("s1", 2, SharingPolicy::NewestWins))
        .await
        .unwrap();
    let t = registered(&*store, "s1", "revoke-token-0000001").await;
    let a = session_of(
        &store
            .admit(admit_req(&t, 1, 2, SharingPolicy::NewestWins, 45_000))
            .await
            .unwrap(),
    );
    let b = session_of(
        &store
            .admit(admit_req(&t, 2, 2, SharingPolicy::NewestWins, 45_000))
            .await
            .unwrap(),
    );
    let revoked = store
        .revoke_ticket(&t.id)
        .await
        .unwrap()
        .expect("ticket exists");
    assert_eq!(revoked.status, TicketStatus::Revoked);
    let at = revoked.revoked_at.expect("revocation time");
    for s in [&a, &b] {
        let hb = store.heartbeat(s, renewal()).await.unwrap();
        assert!(
            matches!(
                hb.decision,
                HeartbeatDecision::Ended(EndReason::Revoked { .. })
            ),
            "{hb:?}"
        );
        assert!(store.live_session(s).await.unwrap().is_none());
    }
    let again = store.revoke_ticket(&t.id).await.unwrap().unwrap();
    assert_eq!(again.revoked_at, Some(at));
    assert_eq!(
        store.ticket(&t.id).await.unwrap().unwrap().status,
        TicketStatus::Revoked
    );
    assert_eq!(
        store.revoke_ticket(&TicketId::generate()).await.unwrap(),
        None
    );
}

/// newest_wins: the new device plays, the old session learns by which device and when.
pub async fn newest_wins_supersedes_and_tells_by_whom(h: &impl Harness) {
    let store = h.store();
    store
        .put_show(show("s1", 1, SharingPolicy::NewestWins))
        .await
        .unwrap();
    let t = registered(&*store, "s1", "newest-wins-token-01").await;
    let a = session_of(
        &store
            .admit(admit_req(&t, 1, 1, SharingPolicy::NewestWins, 45_000))
            .await
            .unwrap(),
    );
    h.advance_ms(10).await;
    let second = store
        .admit(admit_req(&t, 2, 1, SharingPolicy::NewestWins, 45_000))
        .await
        .unwrap();
    let AdmitDecision::Admitted {
        session_id: b,
        superseded,
        reattached: false,
        ..
    } = second
    else {
        panic!("second device must be admitted, got {second:?}")
    };
    assert_eq!(superseded, vec![a.clone()]);
    let hb = store.heartbeat(&a, renewal()).await.unwrap();
    match hb.decision {
        HeartbeatDecision::Ended(EndReason::Superseded { by_device, at }) => {
            assert_eq!(by_device, "Device 2");
            assert!(at.0 > 0);
        }
        other => panic!("expected superseded, got {other:?}"),
    }
    assert!(matches!(
        store.heartbeat(&b, renewal()).await.unwrap().decision,
        HeartbeatDecision::Renewed { .. }
    ));
    assert!(store.live_session(&a).await.unwrap().is_none());
    assert_eq!(
        store.live_session(&b).await.unwrap().map(|s| s.device_id),
        Some(device(2))
    );
}

/// oldest_wins: a second device is refused with the seconds until the lease lapses.
pub async fn oldest_wins_refuses_until_a_lease_lapses(h: &impl Harness) {
    let store = h.store();
    store
        .put_show(show("s1", 1, SharingPolicy::OldestWins))
        .await
        .unwrap();
    let t = registered(&*store, "s1", "oldest-wins-token-01").await;
    session_of(
        &store
            .admit(admit_req(&t, 1, 1, SharingPolicy::OldestWins, 2_000))
            .await
            .unwrap(),
    );
    match store
        .admit(admit_req(&t, 2, 1, SharingPolicy::OldestWins, 2_000))
        .await
        .unwrap()
    {
        AdmitDecision::InUse { retry_after_s } => {
            assert!((1..=2).contains(&retry_after_s), "{retry_after_s}")
        }
        other => panic!("expected in use, got {other:?}"),
    }
    h.advance_ms(2_100).await;
    session_of(
        &store
            .admit(admit_req(&t, 2, 1, SharingPolicy::OldestWins, 2_000))
            .await
            .unwrap(),
    );
}

/// A device that holds a lease re-attaches to its session (a reload is not a second device).
pub async fn a_device_reattaches_to_its_session(h: &impl Harness) {
    let store = h.store();
    store
        .put_show(show("s1", 1, SharingPolicy::OldestWins))
        .await
        .unwrap();
    let t = registered(&*store, "s1", "reattach-token-00001").await;
    let a = session_of(
        &store
            .admit(admit_req(&t, 1, 1, SharingPolicy::OldestWins, 45_000))
            .await
            .unwrap(),
    );
    let mut reload = admit_req(&t, 1, 1, SharingPolicy::OldestWins, 45_000);
    reload.presented = Some(seat_secret());
    let again = store.admit(reload).await.unwrap();
    assert!(
        matches!(&again, AdmitDecision::Admitted { session_id, reattached: true, .. } if *session_id == a),
        "{again:?}"
    );
    let activity = store.ticket_activity(&t.id).await.unwrap();
    assert_eq!(activity.usage.sessions, 1);
    assert_eq!(activity.usage.devices.len(), 1);
    assert_eq!(activity.live.len(), 1);
    // a renewal names the session's owner, and carries the ticket as stored when the store has it at hand
    let hb = store.heartbeat(&a, renewal()).await.unwrap();
    assert!(
        matches!(hb.decision, HeartbeatDecision::Renewed { .. }),
        "{hb:?}"
    );
    assert_eq!(hb.owner, Some((t.id.clone(), t.terms.show_id.clone())));
    if let Some(bounds) = hb.ticket {
        let stored = store.ticket(&t.id).await.unwrap().unwrap();
        assert_eq!(bounds, stored.bounds());
    }
}

/// An expired lease frees the seat and its session learns it expired.
pub async fn expired_leases_free_the_seat(h: &impl Harness) {
    let store = h.store();
    store
        .put_show(show("s1", 1, SharingPolicy::OldestWins))
        .await
        .unwrap();
    let t = registered(&*store, "s1", "expiry-token-0000001").await;
    let a = session_of(
        &store
            .admit(admit_req(&t, 1, 1, SharingPolicy::OldestWins, 1_000))
            .await
            .unwrap(),
    );
    assert!(store.live_session(&a).await.unwrap().is_some());
    h.advance_ms(1_100).await;
    assert!(store.live_session(&a).await.unwrap().is_none());
    assert!(store.sessions(None).await.unwrap().is_empty());
    let hb = store.heartbeat(&a, renewal()).await.unwrap();
    assert!(
        matches!(
            hb.decision,
            HeartbeatDecision::Ended(EndReason::Expired { .. })
        ),
        "{hb:?}"
    );
    session_of(
        &store
            .admit(admit_req(&t, 2, 1, SharingPolicy::OldestWins, 1_000))
            .await
            .unwrap(),
    );
}

/// A lease that lapsed while the caller rode a store outage (`Presented::revive_since` before its
/// expiry) is held again by the renewal after it, and a check passes meanwhile; one that lapsed before
/// the outage began, or whose seat an admit gave away since, stays lapsed.
pub async fn a_lease_lapsed_during_a_ridden_outage_is_held_again(h: &impl Harness) {
    let store = h.store();
    store
        .put_show(show("s1", 1, SharingPolicy::NewestWins))
        .await
        .unwrap();
    let admit = |t: &Ticket, dev: usize| admit_req(t, dev, 1, SharingPolicy::NewestWins, 1_000);
    let expiry = |d: &AdmitDecision| match d {
        AdmitDecision::Admitted { expires_at, .. } => *expires_at,
        other => panic!("expected admitted, got {other:?}"),
    };
    let riding = |since: UnixMs, fresh: bool| {
        let mut p = renewal();
        if !fresh {
            p.fresh = None;
        }
        p.revive_since = Some(since);
        p
    };
    let t1 = registered(&*store, "s1", "revive-token-0000001").await;
    let t2 = registered(&*store, "s1", "revive-token-0000002").await;
    let t3 = registered(&*store, "s1", "revive-token-0000003").await;
    let d1 = store.admit(admit(&t1, 1)).await.unwrap();
    let d2 = store.admit(admit(&t2, 1)).await.unwrap();
    let d3 = store.admit(admit(&t3, 1)).await.unwrap();
    let (a1, a2, a3) = (session_of(&d1), session_of(&d2), session_of(&d3));
    // every lease lapses; the outage began while they ran (t1, t3), or after (t2)
    h.advance_ms(1_200).await;
    assert!(store.live_session(&a1).await.unwrap().is_none());
    let during = UnixMs(expiry(&d1).0 - 500);
    // another device takes t3's seat: the admit drops the lapsed lease first
    session_of(&store.admit(admit(&t3, 2)).await.unwrap());

    let check = store.heartbeat(&a1, riding(during, false)).await.unwrap();
    assert!(
        matches!(check.decision, HeartbeatDecision::Renewed { .. }),
        "a check of a lease lapsed during the outage passes: {check:?}"
    );
    let hb = store.heartbeat(&a1, riding(during, true)).await.unwrap();
    let HeartbeatDecision::Renewed { expires_at } = hb.decision else {
        panic!("the renewal after the outage holds the lease again: {hb:?}");
    };
    assert!(expires_at > expiry(&d1), "{hb:?}");
    assert!(store.live_session(&a1).await.unwrap().is_some());

    let after = UnixMs(expiry(&d2).0 + 100);
    let hb = store.heartbeat(&a2, riding(after, true)).await.unwrap();
    assert!(
        matches!(
            hb.decision,
            HeartbeatDecision::Ended(EndReason::Expired { .. })
        ),
        "lapsed before the outage: {hb:?}"
    );
    let hb = store
        .heartbeat(&a3, riding(UnixMs(expiry(&d3).0 - 500), true))
        .await
        .unwrap();
    assert!(
        matches!(
            hb.decision,
            HeartbeatDecision::Ended(EndReason::Expired { .. })
        ),
        "its seat was given away: {hb:?}"
    );
    assert_eq!(store.sessions(None).await.unwrap().len(), 2);
}

/// Leaving or an admin's end frees the seat at once.
pub async fn ended_sessions_lose_the_seat_at_once(h: &impl Harness) {
    let store = h.store();
    store
        .put_show(show("s1", 1, SharingPolicy::OldestWins))
        .await
        .unwrap();
    let t = registered(&*store, "s1", "leave-token-00000001").await;
    let a = session_of(
        &store
            .admit(admit_req(&t, 1, 1, SharingPolicy::OldestWins, 45_000))
            .await
            .unwrap(),
    );
    assert!(
        store
            .end_session(&a, EndReason::Left { at: UnixMs(1) })
            .await
            .unwrap()
    );
    assert!(
        !store
            .end_session(&a, EndReason::Left { at: UnixMs(2) })
            .await
            .unwrap()
    );
    let b = session_of(
        &store
            .admit(admit_req(&t, 2, 1, SharingPolicy::OldestWins, 45_000))
            .await
            .unwrap(),
    );
    assert!(
        store
            .end_session(&b, EndReason::EndedByAdmin { at: UnixMs(3) })
            .await
            .unwrap()
    );
    let hb = store.heartbeat(&b, renewal()).await.unwrap();
    assert_eq!(
        hb.decision,
        HeartbeatDecision::Ended(EndReason::EndedByAdmin { at: UnixMs(3) })
    );
    assert_eq!(hb.owner, Some((t.id.clone(), t.terms.show_id.clone())));
    assert!(
        !store
            .end_session(&SessionId::generate(), EndReason::Left { at: UnixMs(4) })
            .await
            .unwrap()
    );
}

/// Live sessions are listed, all or by show.
pub async fn sessions_are_listed_by_show(h: &impl Harness) {
    let store = h.store();
    store
        .put_show(show("s1", 3, SharingPolicy::NewestWins))
        .await
        .unwrap();
    store
        .put_show(show("s2", 3, SharingPolicy::NewestWins))
        .await
        .unwrap();
    let t1 = registered(&*store, "s1", "listing-token-s1-0001").await;
    let t2 = registered(&*store, "s2", "listing-token-s2-0001").await;
    for d in 0..3 {
        session_of(
            &store
                .admit(admit_req(&t1, d, 3, SharingPolicy::NewestWins, 45_000))
                .await
                .unwrap(),
        );
    }
    session_of(
        &store
            .admit(admit_req(&t2, 9, 3, SharingPolicy::NewestWins, 45_000))
            .await
            .unwrap(),
    );
    assert_eq!(store.sessions(None).await.unwrap().len(), 4);
    let s1 = store
        .sessions(Some(&ShowId::parse("s1").unwrap()))
        .await
        .unwrap();
    assert_eq!(s1.len(), 3);
    assert!(s1.iter().all(|s| s.ticket_id == t1.id));
}

/// Usage: first play, last seen, sessions and distinct devices.
pub async fn usage_is_recorded(h: &impl Harness) {
    let store = h.store();
    store
        .put_show(show("s1", 1, SharingPolicy::NewestWins))
        .await
        .unwrap();
    let t = registered(&*store, "s1", "usage-token-00000001").await;
    let fresh = store.ticket_activity(&t.id).await.unwrap();
    assert_eq!(fresh.usage.sessions, 0);
    assert!(fresh.usage.first_play_at.is_none());
    for d in [1, 2, 1] {
        session_of(
            &store
                .admit(admit_req(&t, d, 1, SharingPolicy::NewestWins, 45_000))
                .await
                .unwrap(),
        );
        h.advance_ms(5).await;
    }
    let a = store.ticket_activity(&t.id).await.unwrap();
    assert_eq!(a.usage.sessions, 3);
    assert_eq!(a.usage.devices.len(), 2);
    assert!(a.usage.first_play_at.is_some() && a.usage.last_seen_at >= a.usage.first_play_at);
    assert_eq!(a.live.len(), 1);
    assert_eq!(a.live[0].device_id, device(1));
    // a device label is kept as given, even one that looks like the record it is stored in
    let label = r#"x"ended":{},"countries":{}"#;
    let mut req = admit_req(&t, 3, 1, SharingPolicy::NewestWins, 45_000);
    req.device_label = label.into();
    let s = session_of(&store.admit(req).await.unwrap());
    store.heartbeat(&s, renewal()).await.unwrap();
    let a = store.ticket_activity(&t.id).await.unwrap();
    assert_eq!(a.live[0].device_label, label);
    assert_eq!(
        a.usage.devices.last().map(|d| d.label.as_str()),
        Some(label)
    );
}

/// An admitted device's country goes into the ticket's usage (distinct, most recent last); a refused admit
/// records nothing; a session ended for Geo tells its player so, with the country.
pub async fn countries_and_geo_endings_are_recorded(h: &impl Harness) {
    let store = h.store();
    store
        .put_show(show("s1", 1, SharingPolicy::OldestWins))
        .await
        .unwrap();
    let t = registered(&*store, "s1", "country-token-000001").await;
    let de = Country::parse("DE").unwrap();
    let fr = Country::parse("FR").unwrap();
    let from = |dev: usize, country: Option<Country>| {
        let mut r = admit_req(&t, dev, 1, SharingPolicy::OldestWins, 45_000);
        r.country = country;
        // the same device comes back with its session's secret (a reload)
        r.presented = Some(seat_secret());
        // the address follows the country in this case: 192.0.2.<dev> for DE/none, 2001:db8::<dev> for FR
        r.address = Some(match country.map(|c| c.as_str().to_owned()).as_deref() {
            Some("FR") => format!("2001:db8::{dev}").parse().unwrap(),
            _ => format!("192.0.2.{dev}").parse().unwrap(),
        });
        r
    };
    let a = session_of(&store.admit(from(1, Some(de))).await.unwrap());
    h.advance_ms(5).await;
    session_of(&store.admit(from(1, None)).await.unwrap());
    h.advance_ms(5).await;
    session_of(&store.admit(from(1, Some(fr))).await.unwrap());
    h.advance_ms(5).await;
    session_of(&store.admit(from(1, Some(de))).await.unwrap());
    // device 2 is refused (oldest_wins): its country is not recorded
    assert!(matches!(
        store
            .admit(from(2, Some(Country::parse("US").unwrap())))
            .await
            .unwrap(),
        AdmitDecision::InUse { .. }
    ));
    let usage = store.ticket_activity(&t.id).await.unwrap().usage;
    let seen: Vec<&str> = usage.countries.iter().map(|c| c.country.as_str()).collect();
    assert_eq!(seen, ["FR", "DE"], "{usage:?}");
    assert!(usage.countries[1].first_seen < usage.countries[1].last_seen);
    // addresses likewise: most recent last, the refused device's not recorded
    let addrs: Vec<String> = usage
        .addresses
        .iter()
        .map(|a| a.address.to_string())
        .collect();
    assert_eq!(addrs, ["2001:db8::1", "192.0.2.1"], "{usage:?}");
    assert!(usage.addresses[1].first_seen < usage.addresses[1].last_seen);

    let at = store.now();
    assert!(
        store
            .end_session(
                &a,
                EndReason::GeoBlocked {
                    at,
                    country: Some(fr)
                }
            )
            .await
            .unwrap()
    );
    match store.heartbeat(&a, renewal()).await.unwrap().decision {
        HeartbeatDecision::Ended(EndReason::GeoBlocked { country, .. }) => {
            assert_eq!(country, Some(fr));
        }
        other => panic!("expected geo_blocked, got {other:?}"),
    }
}

/// API keys: put, get, list, touch, delete.
pub async fn api_keys_round_trip(h: &impl Harness) {
    let store = h.store();
    let key = ApiKey {
        id: ApiKeyId::generate(),
        name: "site".into(),
        scopes: vec![Scope::Tickets],
        secret_hash: hasher().api_key_secret("secret"),
        created_at: OffsetDateTime::now_utc(),
        last_used_at: None,
    };
    store.put_api_key(key.clone()).await.unwrap();
    assert_eq!(store.api_key(&key.id).await.unwrap(), Some(key.clone()));
    store.touch_api_key(&key.id).await.unwrap();
    assert!(
        store
            .api_key(&key.id)
            .await
            .unwrap()
            .unwrap()
            .last_used_at
            .is_some()
    );
    assert_eq!(store.api_keys().await.unwrap().len(), 1);
    assert!(store.delete_api_key(&key.id).await.unwrap());
    assert!(!store.delete_api_key(&key.id).await.unwrap());
    store.flush().await.unwrap();
    assert_eq!(store.api_key(&key.id).await.unwrap(), None);
}

/// A CDN pool member with its signing keys.
pub fn cdn(id: &str, priority: u32) -> Cdn {
    Cdn {
        id: CdnId::parse(id).expect("valid CDN id"),
        name: format!("CDN {id}"),
        base_url: format!("https://{id}.cdn.example"),
        signing: SigningConfig(serde_json::json!({"scheme": "nginx", "secret": "contract-secret"})),
        priority,
        weight: 1,
        enabled: true,
        health: CdnHealth::default(),
        canary: Some("canary/ok.txt".into()),
        origin_secret_hash: None,
        created_at: UnixMs(1_700_000_000_000),
        updated_at: UnixMs(1_700_000_000_000),
    }
}

/// A store that gives [`Store::cdns_generation`] before and after a CDN write gives two different numbers
/// (callers keep what they derived from the pool while it holds).
fn generation_moved(before: Option<u64>, after: Option<u64>, what: &str) {
    if let (Some(b), Some(a)) = (before, after) {
        assert_ne!(b, a, "{what}: the CDN generation did not move");
    }
}

/// CDNs are created, replaced (keys as given, health only by the prober), listed by id and deleted, durably.
pub async fn cdns_round_trip(h: &impl Harness) {
    let store = h.store();
    assert!(store.cdns().await.unwrap().is_empty());
    let b = cdn("b-cdn", 20);
    let a = cdn("a-cdn", 10);
    assert_eq!(store.put_cdn(b.clone()).await.unwrap(), PutOutcome::Created);
    assert_eq!(store.put_cdn(a.clone()).await.unwrap(), PutOutcome::Created);
    assert_eq!(store.cdn(&a.id).await.unwrap(), Some(a.clone()));
    let mut a2 = a.clone();
    a2.enabled = false;
    a2.weight = 7;
    a2.health = CdnHealth {
        state: HealthState::Unhealthy,
        last_error: Some("timeout".into()),
        checked_at: Some(UnixMs(1_700_000_001_000)),
        latency_ms: None,
        since: Some(UnixMs(1_700_000_000_500)),
    };
    let before = store.cdns_generation();
    assert_eq!(
        store.put_cdn(a2.clone()).await.unwrap(),
        PutOutcome::Replaced
    );
    generation_moved(before, store.cdns_generation(), "a CDN replaced");
    // a replacement keeps the stored health: only the prober's write changes it
    a2.health = a.health.clone();
    store.flush().await.unwrap();
    let all = store.cdns().await.unwrap();
    assert_eq!(
        all,
        vec![a2.clone(), b.clone()],
        "listed by id, replaced in place"
    );
    assert_eq!(
        all[0].signing.0["secret"], "contract-secret",
        "keys are kept as given"
    );
    // the prober's write changes the health and nothing else
    let healthy = CdnHealth {
        state: HealthState::Healthy,
        last_error: None,
        checked_at: Some(UnixMs(1_700_000_002_000)),
        latency_ms: Some(12),
        since: Some(UnixMs(1_700_000_002_000)),
    };
    let before = store.cdns_generation();
    assert!(store.set_cdn_health(&a.id, healthy.clone()).await.unwrap());
    generation_moved(before, store.cdns_generation(), "a CDN's health set");
    let mut a3 = a2.clone();
    a3.health = healthy.clone();
    assert_eq!(store.cdn(&a.id).await.unwrap(), Some(a3.clone()));
    assert_eq!(store.cdns().await.unwrap(), vec![a3.clone(), b.clone()]);
    let mut a5 = a3.clone();
    a5.weight = 9;
    a5.health = CdnHealth::default();
    store.put_cdn(a5.clone()).await.unwrap();
    a5.health = a3.health.clone();
    assert_eq!(
        store.cdn(&a.id).await.unwrap(),
        Some(a5),
        "an admin's write keeps the probe's health"
    );
    assert!(
        !store
            .set_cdn_health(&CdnId::parse("never").unwrap(), healthy)
            .await
            .unwrap(),
        "no health for a CDN that does not exist"
    );
    assert_eq!(
        store.cdn(&CdnId::parse("never").unwrap()).await.unwrap(),
        None
    );
    let before = store.cdns_generation();
    assert!(store.delete_cdn(&a.id).await.unwrap());
    generation_moved(before, store.cdns_generation(), "a CDN deleted");
    assert!(!store.delete_cdn(&a.id).await.unwrap());
    assert_eq!(store.cdn(&a.id).await.unwrap(), None);
    assert_eq!(store.cdns().await.unwrap(), vec![b.clone()]);
    // a CDN made again under a deleted id starts with the health it is given
    let a4 = cdn("a-cdn", 10);
    store.put_cdn(a4.clone()).await.unwrap();
    assert_eq!(store.cdn(&a.id).await.unwrap(), Some(a4));
    assert!(store.delete_cdn(&a.id).await.unwrap());
    assert_eq!(store.cdns().await.unwrap(), vec![b]);
    assert_eq!(
        store.cdn(&CdnId::parse("never").unwrap()).await.unwrap(),
        None
    );
}

/// 200 devices race for one k=1 ticket: at most one lease, and under oldest_wins exactly one winner.
pub async fn racing_admits_never_exceed_k(h: &impl Harness) {
    let store = h.store();
    for (id, policy) in [
        ("race-old", SharingPolicy::OldestWins),
        ("race-new", SharingPolicy::NewestWins),
    ] {
        store.put_show(show(id, 1, policy)).await.unwrap();
        let t = registered(&*store, id, &format!("race-token-{id}-0001")).await;
        let tasks: Vec<_> = (0..200)
            .map(|d| {
                let store = Arc::clone(&store);
                let req = admit_req(&t, d, 1, policy, 45_000);
                tokio::spawn(async move { store.admit(req).await.unwrap() })
            })
            .collect();
        let mut admitted = Vec::new();
        let mut in_use = 0;
        for task in tasks {
            match task.await.unwrap() {
                AdmitDecision::Admitted { session_id, .. } => admitted.push(session_id),
                AdmitDecision::InUse { .. } => in_use += 1,
                AdmitDecision::Revoked => panic!("{id}: the ticket is not revoked"),
            }
        }
        let live = store.sessions(Some(&t.terms.show_id)).await.unwrap();
        assert_eq!(live.len(), 1, "{id}: exactly one live lease");
        match policy {
            SharingPolicy::OldestWins => assert_eq!((admitted.len(), in_use), (1, 199), "{id}"),
            SharingPolicy::NewestWins => {
                assert_eq!(admitted.len(), 200, "{id}");
                let mut renewed = 0;
                for s in &admitted {
                    match store.heartbeat(s, renewal()).await.unwrap().decision {
                        HeartbeatDecision::Renewed { .. } => renewed += 1,
                        HeartbeatDecision::Ended(EndReason::Superseded { .. }) => {}
                        other => panic!("{id}: unexpected {other:?}"),
                    }
                }
                assert_eq!(renewed, 1, "{id}: exactly one session renews");
            }
        }
    }
}

/// A show's door with room for one: the first comes in (a pass, then its seat); later arrivals — 16 of
/// them racing — get distinct places in arrival order; when the seat frees, only the head of the line
/// comes in (a pass holds its place until it takes its seat); waiters who stop asking leave the line.
pub async fn the_door_lets_in_first_come_first_served(h: &impl Harness) {
    let store = h.store();
    store
        .put_show(show("door", 1, SharingPolicy::NewestWins))
        .await
        .unwrap();
    let show_id = ShowId::parse("door").unwrap();
    let rules = DoorRules {
        capacity: Some(1),
        rate_per_s: None,
        pass_ms: 30_000,
        abandon_ms: 3_000,
    };
    let first = registered(&*store, "door", "door-token-first-0001").await;
    assert_eq!(
        store.door(&show_id, &first.id, rules).await.unwrap(),
        DoorAnswer::Enter
    );
    let seat = match store
        .admit(admit_req(&first, 1, 1, SharingPolicy::NewestWins, 45_000))
        .await
        .unwrap()
    {
        AdmitDecision::Admitted { session_id, .. } => session_id,
        other => panic!("{other:?}"),
    };
    // the seat used the pass up in the same step (else the pass would hold a second place for 30 s,
    // and the head of the line would not come in below when the seat frees)

    let mut waiters = Vec::new();
    for i in 0..3 {
        let t = registered(&*store, "door", &format!("door-token-wait-{i:04}")).await;
        assert_eq!(
            store.door(&show_id, &t.id, rules).await.unwrap(),
            DoorAnswer::Wait {
                position: i + 1,
                entered_recently: 0
            }
        );
        waiters.push(t);
    }
    let mut racers = Vec::new();
    for i in 0..16 {
        racers.push(registered(&*store, "door", &format!("door-token-race-{i:04}")).await);
    }
    let tasks: Vec<_> = racers
        .iter()
        .map(|t| {
            let (store, show_id, id) = (Arc::clone(&store), show_id.clone(), t.id.clone());
            tokio::spawn(async move { store.door(&show_id, &id, rules).await.unwrap() })
        })
        .collect();
    let mut places = BTreeSet::new();
    for task in tasks {
        match task.await.unwrap() {
            DoorAnswer::Wait { position, .. } => assert!(places.insert(position)),
            DoorAnswer::Enter => panic!("no room"),
        }
    }
    assert_eq!(
        places,
        (4..=19).collect(),
        "distinct places after the first three"
    );

    // the seat frees: the third asks first and still waits; the head comes in; its pass holds the place
    store
        .end_session(&seat, EndReason::EndedByAdmin { at: store.now() })
        .await
        .unwrap();
    tokio::time::sleep(h.door_lag()).await;
    assert!(matches!(
        store.door(&show_id, &waiters[2].id, rules).await.unwrap(),
        DoorAnswer::Wait { position: 3, .. }
    ));
    assert_eq!(
        store.door(&show_id, &waiters[0].id, rules).await.unwrap(),
        DoorAnswer::Enter
    );
    assert!(matches!(
        store.door(&show_id, &waiters[1].id, rules).await.unwrap(),
        DoorAnswer::Wait { position: 1, .. }
    ));

    // everyone but the third stops asking; after the abandon time the third is next
    h.advance_ms(2_000).await;
    assert!(matches!(
        store.door(&show_id, &waiters[2].id, rules).await.unwrap(),
        DoorAnswer::Wait { position: 2, .. }
    ));
    h.advance_ms(2_000).await;
    assert!(matches!(
        store.door(&show_id, &waiters[2].id, rules).await.unwrap(),
        DoorAnswer::Wait {
            position: 1,
            entered_recently: _
        }
    ));
}

/// A session id never admitted is unknown everywhere.
pub async fn unknown_sessions_are_unknown(h: &impl Harness) {
    let store = h.store();
    let s = SessionId::generate();
    let hb = store.heartbeat(&s, renewal()).await.unwrap();
    assert_eq!(hb.decision, HeartbeatDecision::Unknown);
    assert_eq!(hb.owner, None);
    assert!(store.live_session(&s).await.unwrap().is_none());
    store.ping().await.unwrap();
}

/// Tickets are found by their exact external reference, oldest first, within the limit.
pub async fn tickets_are_found_by_external_ref(h: &impl Harness) {
    let store = h.store();
    store
        .put_show(show("s1", 1, SharingPolicy::NewestWins))
        .await
        .unwrap();
    store
        .register_tickets(vec![
            ticket("s1", "extref-token-000001", Some("order-7")),
            ticket("s1", "extref-token-000002", Some("order-7")),
            ticket("s1", "extref-token-000003", Some("order-70")),
            ticket("s1", "extref-token-000004", None),
        ])
        .await
        .unwrap();
    let found = store.tickets_by_external_ref("order-7", 10).await.unwrap();
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(
        found
            .iter()
            .all(|t| t.terms.external_ref.as_deref() == Some("order-7"))
    );
    assert_eq!(
        store
            .tickets_by_external_ref("order-7", 1)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        store
            .tickets_by_external_ref("order", 10)
            .await
            .unwrap()
            .is_empty()
    );
}

/// A show's poster is stored with its content type, replaced and removed.
pub async fn posters_round_trip(h: &impl Harness) {
    let store = h.store();
    let id = ShowId::parse("s1").unwrap();
    assert_eq!(store.poster(&id).await.unwrap(), None);
    let png = (
        String::from("image/png"),
        vec![0x89, b'P', b'N', b'G', 0, 1, 2],
    );
    store.put_poster(&id, Some(png.clone())).await.unwrap();
    assert_eq!(store.poster(&id).await.unwrap(), Some(png));
    store.put_poster(&id, None).await.unwrap();
    assert_eq!(store.poster(&id).await.unwrap(), None);
}

/// A show's stream key record is stored, replaced by a rotation, kept apart per show and removed.
pub async fn stream_keys_are_replaced_and_removed(h: &impl Harness) {
    use usher_core::secret::SecretHasher;
    use usher_core::stream_key::StreamKeyRecord;
    let store = h.store();
    let hasher = SecretHasher::new(&[7u8; 32]);
    let (a, b) = (ShowId::parse("s1").unwrap(), ShowId::parse("s2").unwrap());
    assert_eq!(store.stream_key(&a).await.unwrap(), None);
    let first = StreamKeyRecord {
        hash: hasher.stream_key("s1.first-key-secret-0123456789"),
        created_at: UnixMs(1_000),
    };
    store.put_stream_key(&a, Some(first)).await.unwrap();
    assert_eq!(store.stream_key(&a).await.unwrap(), Some(first));
    assert_eq!(store.stream_key(&b).await.unwrap(), None);
    let rotated = StreamKeyRecord {
        hash: hasher.stream_key("s1.second-key-secret-012345678"),
        created_at: UnixMs(2_000),
    };
    store.put_stream_key(&a, Some(rotated)).await.unwrap();
    let read = store.stream_key(&a).await.unwrap().unwrap();
    assert_eq!(read, rotated);
    assert!(!read.hash.ct_eq(&first.hash));
    store.put_stream_key(&a, None).await.unwrap();
    assert_eq!(store.stream_key(&a).await.unwrap(), None);
}

/// A content key's record is stored once: a second write under the same id keeps the first.
pub async fn content_keys_are_written_once(h: &impl Harness) {
    let store = h.store();
    let id = ContentKeyId::generate();
    assert_eq!(store.content_key(&id).await.unwrap(), None);
    let first = ContentKeyRecord {
        stream_path: "demo-aes".into(),
        wrapped: vec![1, 0, 255, 7],
        created_at: UnixMs(1_700_000_000_000),
    };
    assert!(store.put_content_key(&id, first.clone()).await.unwrap());
    let other = ContentKeyRecord {
        wrapped: vec![9, 9],
        ..first.clone()
    };
    assert!(!store.put_content_key(&id, other).await.unwrap());
    assert_eq!(store.content_key(&id).await.unwrap(), Some(first));
    assert_eq!(
        store.content_key(&ContentKeyId::generate()).await.unwrap(),
        None
    );
}

/// `Idempotency-Key` records: of racing claims exactly one wins and the others see its record; a
/// finished record answers with its answer until it lapses; a released key and a lapsed claim are
/// claimed anew.
pub async fn idempotency_claims_are_won_once_and_lapse(h: &impl Harness) {
    let store = h.store();
    let key = format!("idem-{}", ContentKeyId::generate());
    let until = UnixMs(store.now().0 + 60_000);
    let tasks: Vec<_> = (0..32)
        .map(|i| {
            let (store, key) = (Arc::clone(&store), key.clone());
            tokio::spawn(async move {
                store
                    .claim_idempotency(&key, &format!("fingerprint-{i}"), until)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut won = Vec::new();
    let mut held = Vec::new();
    for (i, task) in tasks.into_iter().enumerate() {
        match task.await.unwrap() {
            IdempotencyClaim::Claimed => won.push(format!("fingerprint-{i}")),
            IdempotencyClaim::Held(r) => held.push(r),
        }
    }
    assert_eq!(won.len(), 1, "exactly one claim wins");
    assert_eq!(held.len(), 31);
    for r in &held {
        assert_eq!((&r.fingerprint, &r.answer), (&won[0], &None), "{r:?}");
    }
    let answered = IdempotentRequest {
        fingerprint: won[0].clone(),
        answer: Some(vec![0, 1, 2, 255]),
        expires_at: UnixMs(store.now().0 + 86_400_000),
    };
    store
        .finish_idempotency(&key, answered.clone())
        .await
        .unwrap();
    assert_eq!(
        store.claim_idempotency(&key, "other", until).await.unwrap(),
        IdempotencyClaim::Held(answered)
    );
    store.release_idempotency(&key).await.unwrap();
    assert_eq!(
        store.claim_idempotency(&key, "again", until).await.unwrap(),
        IdempotencyClaim::Claimed
    );
    // a claim whose request never finished lapses at its time, by the store's clock
    let lapsing = format!("idem-{}", ContentKeyId::generate());
    let soon = UnixMs(store.now().0 + 1_000);
    assert_eq!(
        store
            .claim_idempotency(&lapsing, "first", soon)
            .await
            .unwrap(),
        IdempotencyClaim::Claimed
    );
    assert!(matches!(
        store
            .claim_idempotency(&lapsing, "second", soon)
            .await
            .unwrap(),
        IdempotencyClaim::Held(_)
    ));
    h.advance_ms(1_500).await;
    let later = UnixMs(store.now().0 + 60_000);
    assert_eq!(
        store
            .claim_idempotency(&lapsing, "second", later)
            .await
            .unwrap(),
        IdempotencyClaim::Claimed
    );
    store.sweep().await.unwrap();
}

/// A TV code: made once per user code, polled pending then `slow_down` when too early (the interval
/// grows by 5 s and stays grown), approved once by one of many racing phones, taken by exactly one of
/// many racing polls with the right device secret (never by a wrong one), and gone at its lapse.
pub async fn tv_codes_are_approved_once_and_taken_once(h: &impl Harness) {
    let store = h.store();
    let hasher = SecretHasher::new(b"contract-tv-key-0123456789abcdef0123");
    let hash = |s: &str| hasher.api_key_secret(s);
    let (user, secret, wrong) = (hash("user"), hash("secret"), hash("wrong"));
    let code = TvCode {
        device_secret: secret,
        expires_at: UnixMs(store.now().0 + 60_000),
        interval_s: 2,
    };
    assert!(store.create_tv_code(&user, code.clone()).await.unwrap());
    assert!(
        !store.create_tv_code(&user, code.clone()).await.unwrap(),
        "a live user code is not made twice"
    );
    assert_eq!(
        store.poll_tv_code(&user, &secret).await.unwrap(),
        TvPoll::Pending { interval_s: 2 }
    );
    h.advance_ms(1_100).await;
    assert_eq!(
        store.poll_tv_code(&user, &secret).await.unwrap(),
        TvPoll::Pending { interval_s: 2 },
        "a poll after the interval (less the slack) is on time"
    );
    assert_eq!(
        store.poll_tv_code(&user, &secret).await.unwrap(),
        TvPoll::SlowDown { interval_s: 7 },
        "a poll at once is too early"
    );
    h.advance_ms(1_100).await;
    assert_eq!(
        store.poll_tv_code(&user, &secret).await.unwrap(),
        TvPoll::SlowDown { interval_s: 12 },
        "the grown interval stays grown"
    );
    assert_eq!(
        store.poll_tv_code(&user, &wrong).await.unwrap(),
        TvPoll::Unknown,
        "another device secret learns nothing"
    );

    let approvals: Vec<_> = (0..8)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let approval = TvApproval {
                    ticket_id: TicketId::generate(),
                    sealed_token: vec![i, 1, 2, 255],
                };
                let outcome = store
                    .approve_tv_code(&user, approval.clone())
                    .await
                    .unwrap();
                (outcome, approval)
            })
        })
        .collect();
    let mut approved = Vec::new();
    for task in approvals {
        let (outcome, approval) = task.await.unwrap();
        match outcome {
            TvApproveOutcome::Approved => approved.push(approval),
            other => assert_eq!(other, TvApproveOutcome::AlreadyApproved),
        }
    }
    assert_eq!(approved.len(), 1, "one phone's approval wins");
    assert_eq!(
        store.poll_tv_code(&user, &wrong).await.unwrap(),
        TvPoll::Unknown,
        "a wrong secret does not take the approval"
    );
    let polls: Vec<_> = (0..8)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.poll_tv_code(&user, &secret).await.unwrap() })
        })
        .collect();
    let mut taken = Vec::new();
    for task in polls {
        match task.await.unwrap() {
            TvPoll::Approved(a) => taken.push(a),
            other => assert_eq!(other, TvPoll::Unknown),
        }
    }
    assert_eq!(taken, approved, "exactly one poll takes the approval");
    assert_eq!(
        store
            .approve_tv_code(&user, approved[0].clone())
            .await
            .unwrap(),
        TvApproveOutcome::Unknown,
        "a taken code cannot be approved again"
    );

    // lapse by the store's clock; the user code is free again after it
    let lapsing = hash("lapsing");
    let soon = TvCode {
        expires_at: UnixMs(store.now().0 + 1_000),
        ..code
    };
    assert!(store.create_tv_code(&lapsing, soon.clone()).await.unwrap());
    h.advance_ms(1_500).await;
    assert_eq!(
        store.poll_tv_code(&lapsing, &secret).await.unwrap(),
        TvPoll::Unknown
    );
    assert_eq!(
        store
            .approve_tv_code(&lapsing, approved[0].clone())
            .await
            .unwrap(),
        TvApproveOutcome::Unknown
    );
    let again = TvCode {
        expires_at: UnixMs(store.now().0 + 60_000),
        ..soon
    };
    assert!(store.create_tv_code(&lapsing, again).await.unwrap());
    store.sweep().await.unwrap();
}

fn delivery(endpoint: &WebhookId, n: u32, due: UnixMs) -> Delivery {
    Delivery {
        id: DeliveryId::generate(),
        endpoint: endpoint.clone(),
        event_id: format!("evt_{n:04}"),
        event_type: "ticket.revoked".into(),
        payload: format!(r#"{{"id":"evt_{n:04}"}}"#),
        created_at: UnixMs(due.0 + i64::from(n)),
        state: DeliveryState::Pending,
        attempts: 0,
        next_attempt_at: due,
        last_status: None,
        last_error: None,
        delivered_at: None,
    }
}

/// Webhook endpoints round-trip; queued deliveries are claimed by one of any number of racing claimers,
/// come due again when a claim lapses unrecorded, leave the queue once delivered, and are listed per
/// endpoint newest first.
pub async fn webhooks_round_trip_and_deliveries_are_claimed_once(h: &impl Harness) {
    let store = h.store();
    let now = store.now();
    let endpoint = WebhookEndpoint {
        id: WebhookId::generate(),
        url: "https://tickets.example/hooks".into(),
        events: vec!["ticket.revoked".into()],
        enabled: true,
        description: "refunds".into(),
        secret: "whsec_contract".into(),
        created_at: now,
        updated_at: now,
    };
    assert_eq!(
        store.put_webhook(endpoint.clone()).await.unwrap(),
        PutOutcome::Created
    );
    let mut changed = endpoint.clone();
    changed.enabled = false;
    assert_eq!(
        store.put_webhook(changed.clone()).await.unwrap(),
        PutOutcome::Replaced
    );
    assert_eq!(
        store.webhook(&endpoint.id).await.unwrap(),
        Some(changed.clone())
    );
    assert!(store.webhooks().await.unwrap().contains(&changed));

    // 40 due deliveries, 8 claimers racing for 10 each: every delivery claimed exactly once
    let queued: Vec<Delivery> = (0..40).map(|n| delivery(&endpoint.id, n, now)).collect();
    store.enqueue_deliveries(queued.clone()).await.unwrap();
    let later = delivery(&endpoint.id, 99, UnixMs(now.0 + 3_600_000));
    store.enqueue_deliveries(vec![later.clone()]).await.unwrap();
    let until = UnixMs(now.0 + 2_000);
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.claim_deliveries(until, 10).await.unwrap() })
        })
        .collect();
    let mut claimed = Vec::new();
    for t in tasks {
        claimed.extend(t.await.unwrap());
    }
    let mut ids: Vec<_> = claimed.iter().map(|d| d.id.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), claimed.len(), "no delivery claimed twice");
    assert_eq!(
        claimed.len(),
        40,
        "every due delivery claimed, the later one not"
    );
    assert!(claimed.iter().all(|d| d.next_attempt_at == until));
    assert!(store.claim_deliveries(until, 100).await.unwrap().is_empty());

    // one delivered, one failed for now (due again later), the rest never recorded: due at the claim's end
    let mut done = claimed[0].clone();
    done.state = DeliveryState::Delivered;
    done.attempts = 1;
    done.last_status = Some(204);
    done.delivered_at = Some(now);
    store.save_delivery(done.clone()).await.unwrap();
    let mut retry = claimed[1].clone();
    retry.attempts = 1;
    retry.last_error = Some("connection refused".into());
    retry.next_attempt_at = UnixMs(now.0 + 1_000_000);
    store.save_delivery(retry.clone()).await.unwrap();
    assert_eq!(store.delivery(&done.id).await.unwrap(), Some(done.clone()));
    h.advance_ms(2_500).await;
    let again = store
        .claim_deliveries(UnixMs(store.now().0 + 60_000), 100)
        .await
        .unwrap();
    let again: BTreeSet<_> = again.into_iter().map(|d| d.id).collect();
    assert_eq!(again.len(), 38, "the unrecorded claims came due again");
    assert!(!again.contains(&done.id) && !again.contains(&retry.id) && !again.contains(&later.id));

    // the endpoint's log, newest first
    let log = store.deliveries(&endpoint.id, 5).await.unwrap();
    assert_eq!(log.len(), 5);
    assert_eq!(log[0].id, later.id);
    assert!(log.windows(2).all(|w| w[0].created_at >= w[1].created_at));
    assert!(
        store
            .deliveries(&WebhookId::generate(), 5)
            .await
            .unwrap()
            .is_empty()
    );

    assert!(store.delete_webhook(&endpoint.id).await.unwrap());
    assert!(!store.delete_webhook(&endpoint.id).await.unwrap());
    assert_eq!(store.webhook(&endpoint.id).await.unwrap(), None);
    store.sweep().await.unwrap();
}

fn admin_user(name: &str, role: Role) -> AdminUser {
    AdminUser {
        name: UserName::parse(name).unwrap(),
        role,
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        must_change_password: true,
        created_at: UnixMs(1_700_000_000_000),
        updated_at: UnixMs(1_700_000_000_000),
    }
}

/// Admin users: created once (a second create of the name is refused), updated, listed by name, and
/// deleted together with their console sessions.
pub async fn admin_users_round_trip(h: &impl Harness) {
    let store = h.store();
    assert!(store.admin_users().await.unwrap().is_empty());
    let zed = admin_user("zed", Role::Observer);
    let ann = admin_user("ann", Role::Admin);
    assert!(store.create_admin_user(zed.clone()).await.unwrap());
    assert!(store.create_admin_user(ann.clone()).await.unwrap());
    let mut other = ann.clone();
    other.role = Role::Observer;
    assert!(
        !store.create_admin_user(other).await.unwrap(),
        "names are unique"
    );
    assert_eq!(
        store.admin_user(&ann.name).await.unwrap(),
        Some(ann.clone())
    );
    let mut ann2 = ann.clone();
    ann2.role = Role::Support;
    ann2.must_change_password = false;
    ann2.password_hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$bmV3".into();
    ann2.updated_at = UnixMs(1_700_000_000_123);
    assert_eq!(
        store
            .change_admin_user(
                &ann.name,
                UserChange {
                    role: Some(Role::Support),
                    password: Some((ann2.password_hash.clone(), false)),
                    ..UserChange::at(ann2.updated_at)
                }
            )
            .await
            .unwrap(),
        Some(ann2.clone())
    );
    assert_eq!(
        store
            .change_admin_user(
                &UserName::parse("nobody").unwrap(),
                UserChange {
                    role: Some(Role::Admin),
                    ..UserChange::at(UnixMs(1))
                }
            )
            .await
            .unwrap(),
        None
    );
    let names: Vec<String> = store
        .admin_users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.name.to_string())
        .collect();
    assert_eq!(names, ["ann", "zed"]);
    assert_eq!(store.admin_user(&ann.name).await.unwrap(), Some(ann2));

    let now = store.now();
    let sid = hasher().console_session("a-console-session-secret");
    store
        .put_console_session(ConsoleSession {
            id: sid,
            user: ann.name.clone(),
            created_at: now,
            last_seen: now,
            expires_at: UnixMs(now.0 + 60_000),
        })
        .await
        .unwrap();
    assert!(store.console_session(&sid).await.unwrap().is_some());
    assert!(store.delete_admin_user(&ann.name).await.unwrap());
    assert!(!store.delete_admin_user(&ann.name).await.unwrap());
    assert_eq!(store.admin_user(&ann.name).await.unwrap(), None);
    assert_eq!(
        store.console_session(&sid).await.unwrap(),
        None,
        "a deleted user's sessions end"
    );
    assert!(store.admin_user(&zed.name).await.unwrap().is_some());
}

/// Console sessions: found by hash, touched forward, lapsed after their expiry, ended by logout.
pub async fn console_sessions_lapse_and_end(h: &impl Harness) {
    let store = h.store();
    let now = store.now();
    let user = UserName::parse("ann").unwrap();
    let a = hasher().console_session("session-secret-a");
    let b = hasher().console_session("session-secret-b");
    for id in [a, b] {
        store
            .put_console_session(ConsoleSession {
                id,
                user: user.clone(),
                created_at: now,
                last_seen: now,
                expires_at: UnixMs(now.0 + 600),
            })
            .await
            .unwrap();
    }
    assert_eq!(store.console_session(&a).await.unwrap().unwrap().user, user);
    assert_eq!(
        store
            .console_session(&hasher().console_session("other"))
            .await
            .unwrap(),
        None
    );
    store
        .touch_console_session(&a, UnixMs(store.now().0 + 60_000))
        .await
        .unwrap();
    h.advance_ms(900).await;
    assert!(
        store.console_session(&a).await.unwrap().is_some(),
        "a touched session lives on"
    );
    assert_eq!(
        store.console_session(&b).await.unwrap(),
        None,
        "an idle session lapses"
    );
    assert!(store.delete_console_session(&a).await.unwrap());
    assert_eq!(store.console_session(&a).await.unwrap(), None);
}

fn gate_allows(g: LoginGate) -> u32 {
    match g {
        LoginGate::Allowed { attempts } => attempts,
        other => panic!("expected an allowed attempt, got {other:?}"),
    }
}

fn gate_waits(g: LoginGate, at_most_ms: i64) -> i64 {
    match g {
        LoginGate::Wait { retry_after_ms } => {
            assert!(
                retry_after_ms > 0 && retry_after_ms <= at_most_ms,
                "a wait of {retry_after_ms} ms, expected at most {at_most_ms}"
            );
            retry_after_ms
        }
        other => panic!("expected a wait, got {other:?}"),
    }
}

/// Login attempts are counted per key before the password is checked: the free ones pass, then each
/// one waits twice as long as the last, up to the cap; a wait refuses without counting; taking an
/// attempt back below the free ones ends the wait; clearing forgets the key; the window forgets it too.
pub async fn login_attempts_are_counted_before_the_check_and_back_off(h: &impl Harness) {
    let store = h.store();
    let rule = Backoff {
        free: 2,
        initial_ms: 400,
        max_ms: 800,
        window_ms: 3_000,
    };
    assert_eq!(
        gate_allows(store.login_attempt("user:ann", &rule).await.unwrap()),
        1
    );
    assert_eq!(
        gate_allows(store.login_attempt("user:ann", &rule).await.unwrap()),
        2
    );
    gate_waits(store.login_attempt("user:ann", &rule).await.unwrap(), 400);
    gate_waits(store.login_attempt("user:ann", &rule).await.unwrap(), 400);
    assert_eq!(
        gate_allows(store.login_attempt("addr:192.0.2.1", &rule).await.unwrap()),
        1,
        "keys count apart"
    );
    h.advance_ms(450).await;
    assert_eq!(
        gate_allows(store.login_attempt("user:ann", &rule).await.unwrap()),
        3,
        "refused attempts were not counted"
    );
    gate_waits(store.login_attempt("user:ann", &rule).await.unwrap(), 800);
    h.advance_ms(850).await;
    assert_eq!(
        gate_allows(store.login_attempt("user:ann", &rule).await.unwrap()),
        4
    );
    gate_waits(store.login_attempt("user:ann", &rule).await.unwrap(), 800);

    // an attempt that succeeded is taken back; below the free attempts the wait ends
    assert_eq!(
        gate_allows(store.login_attempt("addr:192.0.2.1", &rule).await.unwrap()),
        2
    );
    gate_waits(
        store.login_attempt("addr:192.0.2.1", &rule).await.unwrap(),
        400,
    );
    store
        .undo_login_attempt("addr:192.0.2.1", &rule)
        .await
        .unwrap();
    assert_eq!(
        gate_allows(store.login_attempt("addr:192.0.2.1", &rule).await.unwrap()),
        2
    );
    store
        .undo_login_attempt("addr:192.0.2.9", &rule)
        .await
        .unwrap();

    // an unlock forgets the key and its wait
    store.clear_login_failures("user:ann").await.unwrap();
    assert_eq!(
        gate_allows(store.login_attempt("user:ann", &rule).await.unwrap()),
        1
    );
    // the window forgets a key whose last attempt is old enough
    h.advance_ms(3_200).await;
    assert_eq!(
        gate_allows(store.login_attempt("addr:192.0.2.1", &rule).await.unwrap()),
        1,
        "the window passed"
    );
}

/// Attempts racing each other on one key: exactly the free ones are allowed, the rest wait.
pub async fn racing_login_attempts_pass_only_the_free_ones(h: &impl Harness) {
    let store = h.store();
    let rule = Backoff {
        free: 5,
        initial_ms: 10_000,
        max_ms: 60_000,
        window_ms: 60_000,
    };
    let tasks: Vec<_> = (0..40)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.login_attempt("user:raced", &rule).await.unwrap() })
        })
        .collect();
    let mut allowed = Vec::new();
    for t in tasks {
        if let LoginGate::Allowed { attempts } = t.await.unwrap() {
            allowed.push(attempts);
        }
    }
    allowed.sort_unstable();
    assert_eq!(allowed, [1, 2, 3, 4, 5], "only the free attempts pass");
}

/// Changes of a user apply to the record as stored: a role change and a password change made at the
/// same time both survive.
pub async fn user_changes_apply_to_the_stored_record(h: &impl Harness) {
    let store = h.store();
    let ann = admin_user("ann", Role::Admin);
    assert!(store.create_admin_user(ann.clone()).await.unwrap());
    let password = UserChange {
        password: Some(("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$cGFzcw".into(), false)),
        ..UserChange::at(UnixMs(1_700_000_000_500))
    };
    let role = UserChange {
        role: Some(Role::Observer),
        ..UserChange::at(UnixMs(1_700_000_000_600))
    };
    let (a, b) = tokio::join!(
        store.change_admin_user(&ann.name, password.clone()),
        store.change_admin_user(&ann.name, role.clone()),
    );
    assert!(a.unwrap().is_some() && b.unwrap().is_some());
    let now = store.admin_user(&ann.name).await.unwrap().unwrap();
    assert_eq!(now.role, Role::Observer, "the role change survived");
    assert_eq!(
        now.password_hash,
        password.password.as_ref().unwrap().0,
        "the password change survived"
    );
    assert!(!now.must_change_password);
    assert_eq!(now.created_at, ann.created_at);
    assert_eq!(
        store.admin_users().await.unwrap(),
        vec![now],
        "the list sees the change"
    );
}

/// Ending a user's console sessions keeps the one named and leaves other users' alone.
pub async fn a_users_other_console_sessions_end(h: &impl Harness) {
    let store = h.store();
    let now = store.now();
    let ann = UserName::parse("ann").unwrap();
    let bob = UserName::parse("bob").unwrap();
    let ids: Vec<SecretHash> = (0..4)
        .map(|i| hasher().console_session(&format!("console-secret-{i}")))
        .collect();
    for (i, id) in ids.iter().enumerate() {
        store
            .put_console_session(ConsoleSession {
                id: *id,
                user: if i < 3 { ann.clone() } else { bob.clone() },
                created_at: now,
                last_seen: now,
                expires_at: UnixMs(now.0 + 60_000),
            })
            .await
            .unwrap();
    }
    assert_eq!(
        store
            .end_console_sessions(&ann, Some(&ids[0]))
            .await
            .unwrap(),
        2
    );
    assert!(
        store.console_session(&ids[0]).await.unwrap().is_some(),
        "kept"
    );
    assert!(store.console_session(&ids[1]).await.unwrap().is_none());
    assert!(store.console_session(&ids[2]).await.unwrap().is_none());
    assert!(
        store.console_session(&ids[3]).await.unwrap().is_some(),
        "another user's"
    );
    assert_eq!(
        store
            .end_console_sessions(&ann, Some(&ids[0]))
            .await
            .unwrap(),
        0
    );
    assert_eq!(store.end_console_sessions(&ann, None).await.unwrap(), 1);
    assert!(store.console_session(&ids[0]).await.unwrap().is_none());
}

/// The audit log reads newest first, filtered by actor, action prefix, target and time, within a limit.
pub async fn audit_is_newest_first_and_filtered(h: &impl Harness) {
    let store = h.store();
    let base = store.now().0;
    let entry = |i: i64, actor: Actor, action: &str, target: &str| AuditEntry {
        at: UnixMs(base + i),
        actor,
        action: action.into(),
        target: target.into(),
        address: Some("192.0.2.7".into()),
        detail: format!("n={i}"),
    };
    let entries = [
        entry(1, Actor::User("ann".into()), "show.put", "show:a"),
        entry(
            2,
            Actor::ApiKey("k_0011223344556677".into()),
            "ticket.revoke",
            "ticket:t_1",
        ),
        entry(3, Actor::User("ann".into()), "show.delete", "show:b"),
        entry(4, Actor::User("bob".into()), "cdn.patch", "cdn:x"),
    ];
    for e in &entries {
        store.append_audit(e.clone()).await.unwrap();
    }
    let all = store
        .audit(&AuditFilter {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 4);
    assert_eq!(all[0], entries[3], "newest first");
    assert_eq!(all[3], entries[0]);
    let ann_shows = store
        .audit(&AuditFilter {
            actor: Some("ann".into()),
            action: Some("show.".into()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(ann_shows, vec![entries[2].clone(), entries[0].clone()]);
    let by_target = store
        .audit(&AuditFilter {
            target: Some("t_1".into()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(by_target, vec![entries[1].clone()]);
    let window = store
        .audit(&AuditFilter {
            since: Some(UnixMs(base + 2)),
            until: Some(UnixMs(base + 4)),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(window, vec![entries[2].clone(), entries[1].clone()]);
    let limited = store
        .audit(&AuditFilter {
            limit: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(limited, vec![entries[3].clone()]);
}

/// Pruning drops entries older than the cut-off, then the oldest beyond the cap, and keeps the rest in
/// order.
pub async fn audit_is_pruned_by_age_and_count(h: &impl Harness) {
    let store = h.store();
    let base = store.now().0;
    let entry = |i: i64| AuditEntry {
        at: UnixMs(base - 10_000 + i * 1000),
        actor: Actor::System("test".into()),
        action: "login.failed".into(),
        target: format!("n:{i}"),
        address: None,
        detail: String::new(),
    };
    for i in 0..10 {
        store.append_audit(entry(i)).await.unwrap();
    }
    let all = AuditFilter {
        limit: 100,
        ..Default::default()
    };
    // entries 0..=2 are older than the cut-off
    assert_eq!(
        store.prune_audit(UnixMs(base - 7_000), 100).await.unwrap(),
        3
    );
    assert_eq!(store.audit(&all).await.unwrap().len(), 7);
    // then the cap keeps the newest 4
    assert_eq!(store.prune_audit(UnixMs(base - 7_000), 4).await.unwrap(), 3);
    assert_eq!(audit_targets(&*store).await, ["n:9", "n:8", "n:7", "n:6"]);
    assert_eq!(store.prune_audit(UnixMs(base - 7_000), 4).await.unwrap(), 0);
    store.append_audit(entry(10)).await.unwrap();
    assert_eq!(store.audit(&all).await.unwrap()[0].target, "n:10");
}

/// The per-show count of sessions holding a lease follows admits and endings, and drops a lapsed lease
/// by the next sweep.
pub async fn live_session_counts_follow_the_leases(h: &impl Harness) {
    let store = h.store();
    for id in ["s1", "s2"] {
        store
            .put_show(show(id, 2, SharingPolicy::NewestWins))
            .await
            .unwrap();
    }
    let counts = |v: Vec<(ShowId, u64)>| {
        let mut v: Vec<(String, u64)> = v
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .map(|(s, n)| (s.to_string(), n))
            .collect();
        v.sort();
        v
    };
    assert_eq!(counts(store.live_session_counts().await.unwrap()), []);
    let t1 = registered(&*store, "s1", "count-token-00000001").await;
    let t2 = registered(&*store, "s2", "count-token-00000002").await;
    let a = session_of(
        &store
            .admit(admit_req(&t1, 1, 2, SharingPolicy::NewestWins, 60_000))
            .await
            .unwrap(),
    );
    store
        .admit(admit_req(&t1, 2, 2, SharingPolicy::NewestWins, 60_000))
        .await
        .unwrap();
    store
        .admit(admit_req(&t2, 3, 2, SharingPolicy::NewestWins, 1_000))
        .await
        .unwrap();
    assert_eq!(
        counts(store.live_session_counts().await.unwrap()),
        [("s1".to_owned(), 2), ("s2".to_owned(), 1)]
    );
    assert!(
        store
            .end_session(&a, EndReason::EndedByAdmin { at: store.now() })
            .await
            .unwrap()
    );
    h.advance_ms(1_200).await;
    store.sweep().await.unwrap();
    assert_eq!(
        counts(store.live_session_counts().await.unwrap()),
        [("s1".to_owned(), 1)],
        "an ended and a lapsed lease are not counted"
    );
}

/// Outcome counts of one minute add up across calls (and nodes), by outcome.
pub async fn outcome_counts_add_up(h: &impl Harness) {
    let store = h.store();
    let minute = minute_of(store.now());
    let count = |outcome: &str, n: u64| OutcomeCount {
        minute,
        outcome: outcome.into(),
        count: n,
    };
    store
        .add_outcome_counts(vec![count("admitted", 2), count("geo_blocked", 1)])
        .await
        .unwrap();
    store
        .add_outcome_counts(vec![count("admitted", 3)])
        .await
        .unwrap();
    let mut got = store.outcome_counts(minute).await.unwrap();
    got.sort_by(|a, b| a.outcome.cmp(&b.outcome));
    assert_eq!(got, vec![count("admitted", 5), count("geo_blocked", 1)]);
    assert!(
        store
            .outcome_counts(UnixMs(minute.0 + 60_000))
            .await
            .unwrap()
            .is_empty()
    );
}

/// The sweep drops only lapsed leases: a live session stays live and listed, a lapsed one answers
/// `expired` after the sweep as it would without it, and a backend that sweeps counts what it dropped
/// (one that does not returns 0).
pub async fn sweeps_drop_only_lapsed_leases(h: &impl Harness) {
    let store = h.store();
    store
        .put_show(show("s1", 2, SharingPolicy::NewestWins))
        .await
        .unwrap();
    let t = registered(&*store, "s1", "sweep-token-00000001").await;
    let a = session_of(
        &store
            .admit(admit_req(&t, 1, 2, SharingPolicy::NewestWins, 1_000))
            .await
            .unwrap(),
    );
    h.advance_ms(600).await;
    let b = session_of(
        &store
            .admit(admit_req(&t, 2, 2, SharingPolicy::NewestWins, 1_000))
            .await
            .unwrap(),
    );
    h.advance_ms(600).await;
    let dropped = store.sweep().await.expect("sweep");
    assert_eq!(
        dropped,
        u64::from(h.sweeps()),
        "leases dropped by the sweep (one lapsed, one live)"
    );
    assert!(
        store.live_session(&b).await.unwrap().is_some(),
        "the sweep ended a live lease"
    );
    let live: Vec<SessionId> = store
        .sessions(None)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.session_id)
        .collect();
    assert_eq!(live, std::slice::from_ref(&b));
    let hb = store.heartbeat(&a, renewal()).await.unwrap();
    assert!(
        matches!(
            hb.decision,
            HeartbeatDecision::Ended(EndReason::Expired { .. })
        ),
        "a swept session answers expired: {hb:?}"
    );
    assert!(matches!(
        store.heartbeat(&b, renewal()).await.unwrap().decision,
        HeartbeatDecision::Renewed { .. }
    ));
    assert_eq!(
        store.sweep().await.expect("sweep"),
        0,
        "nothing lapsed since"
    );
}

/// Backups: a backend that backs up writes a new file holding what it keeps, and never over an existing
/// file; one that cannot says [`StoreError::Unsupported`] and writes nothing.
pub async fn backups_are_written_once_or_unsupported(h: &impl Harness) {
    let store = h.store();
    store
        .put_show(show("s1", 1, SharingPolicy::NewestWins))
        .await
        .unwrap();
    store.put_cdn(cdn("a-cdn", 10)).await.unwrap();
    let t = registered(&*store, "s1", "backup-token-0000001").await;
    session_of(
        &store
            .admit(admit_req(&t, 1, 1, SharingPolicy::NewestWins, 60_000))
            .await
            .unwrap(),
    );
    /// Removes the scratch directory however the case ends.
    struct Scratch(std::path::PathBuf);
    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let dir = Scratch(std::env::temp_dir().join(format!(
        "usher-contract-backup-{}-{}",
        std::process::id(),
        SessionId::generate()
    )));
    std::fs::create_dir_all(&dir.0).expect("scratch directory");
    let dest = dir.0.join("backup");
    match store.backup(&dest).await {
        Ok(info) => {
            assert!(h.backs_up(), "a backend without backups wrote one");
            let bytes = std::fs::metadata(&dest).expect("the backup file").len();
            assert_eq!(info.bytes, bytes, "the size reported");
            // the show, the ticket, the CDN and the lease at least
            assert!(info.records >= 4, "{info:?}");
            assert!(
                matches!(store.backup(&dest).await, Err(StoreError::Unavailable(_))),
                "a backup overwrote a file"
            );
            assert_eq!(std::fs::metadata(&dest).unwrap().len(), bytes);
        }
        Err(StoreError::Unsupported { .. }) => {
            assert!(!h.backs_up(), "a backend with backups said unsupported");
            assert!(!dest.exists(), "an unsupported backup wrote a file");
        }
        Err(e) => panic!("backup failed: {e}"),
    }
}

/// The ticket's status is read inside the lease step: after a revoke answered, an admit is refused and a
/// renewal ends the session as revoked, whatever the caller read of the ticket before.
pub async fn a_revoked_ticket_neither_admits_nor_renews(h: &impl Harness) {
    let store = h.store();
    store
        .put_show(show("s1", 1, SharingPolicy::NewestWins))
        .await
        .unwrap();
    let t = registered(&*store, "s1", "revoked-in-step-0001").await;
    store.revoke_ticket(&t.id).await.unwrap().expect("exists");
    assert_eq!(
        store
            .admit(admit_req(&t, 1, 1, SharingPolicy::NewestWins, 45_000))
            .await
            .unwrap(),
        AdmitDecision::Revoked
    );
    assert!(store.sessions(None).await.unwrap().is_empty());
}

/// Revokes racing admits and heartbeats of their tickets: once `revoke_ticket` has answered, no session
/// of the ticket is live, none renews and none is admitted (200 trials).
pub async fn revokes_racing_admits_leave_nothing_playing(h: &impl Harness) {
    let store = h.store();
    store
        .put_show(show("s1", 3, SharingPolicy::NewestWins))
        .await
        .unwrap();
    for trial in 0..200 {
        let t = registered(&*store, "s1", &format!("revoke-race-{trial:08}")).await;
        let first = session_of(
            &store
                .admit(admit_req(&t, 0, 3, SharingPolicy::NewestWins, 45_000))
                .await
                .unwrap(),
        );
        let racers: Vec<_> = (1..=6)
            .map(|d| {
                let (store, t, first) = (Arc::clone(&store), t.clone(), first.clone());
                tokio::spawn(async move {
                    for _ in 0..3 {
                        let _ = store
                            .admit(admit_req(&t, d, 3, SharingPolicy::NewestWins, 45_000))
                            .await
                            .unwrap();
                        let _ = store.heartbeat(&first, renewal()).await.unwrap();
                    }
                })
            })
            .collect();
        tokio::task::yield_now().await;
        store.revoke_ticket(&t.id).await.unwrap().expect("exists");
        // what is live now, and what the racers still manage after the answer
        let live_at_answer = store.ticket_activity(&t.id).await.unwrap().live.len();
        for r in racers {
            r.await.unwrap();
        }
        let activity = store.ticket_activity(&t.id).await.unwrap();
        assert_eq!(
            (live_at_answer, activity.live.len()),
            (0, 0),
            "trial {trial}: sessions live after the revoke answered"
        );
        let last = store.heartbeat(&first, renewal()).await.unwrap().decision;
        assert!(
            matches!(
                last,
                HeartbeatDecision::Ended(EndReason::Revoked { .. } | EndReason::Superseded { .. })
            ),
            "trial {trial}: {last:?}"
        );
    }
}

/// Heartbeat, check and leave need the session's secret; a guess is refused and changes nothing.
pub async fn the_session_secret_controls_the_session(h: &impl Harness) {
    let store = h.store();
    store
        .put_show(show("s1", 1, SharingPolicy::NewestWins))
        .await
        .unwrap();
    let t = registered(&*store, "s1", "secret-controls-0001").await;
    let a = session_of(
        &store
            .admit(admit_req(&t, 1, 1, SharingPolicy::NewestWins, 45_000))
            .await
            .unwrap(),
    );
    let guess = hasher().session_secret("a-guess");
    let wrong = Presented {
        secret: &guess,
        fresh: Some(hasher().session_secret("fresh-1")),
        revive_since: None,
    };
    assert_eq!(
        store.heartbeat(&a, wrong).await.unwrap().decision,
        HeartbeatDecision::WrongSecret
    );
    assert_eq!(
        store.leave(&a, &guess).await.unwrap(),
        LeaveDecision::WrongSecret
    );
    // a check does not renew: the expiry stays
    let seat = seat_secret();
    let check = Presented {
        secret: &seat,
        fresh: None,
        revive_since: None,
    };
    let HeartbeatDecision::Renewed { expires_at } =
        store.heartbeat(&a, check).await.unwrap().decision
    else {
        panic!("a check with the secret passes")
    };
    h.advance_ms(20).await;
    assert_eq!(
        store.heartbeat(&a, check).await.unwrap().decision,
        HeartbeatDecision::Renewed { expires_at }
    );
    assert!(store.live_session(&a).await.unwrap().is_some());
    assert_eq!(store.leave(&a, &seat).await.unwrap(), LeaveDecision::Left);
    assert!(store.live_session(&a).await.unwrap().is_none());
    assert_eq!(
        store.leave(&a, &seat).await.unwrap(),
        LeaveDecision::NotLive
    );
    assert!(matches!(
        store.heartbeat(&a, renewal()).await.unwrap().decision,
        HeartbeatDecision::Ended(EndReason::Left { .. })
    ));
}

/// A renewal as a player makes it: the secret the last answer handed out, and a fresh one.
pub fn presenting(current: &SecretHash, fresh: SecretHash) -> Presented<'_> {
    Presented {
        secret: current,
        fresh: Some(fresh),
        revive_since: None,
    }
}

/// What the store decides when session `session`'s player presents `held` and is to get `fresh`.
async fn decided(
    store: &Arc<dyn Store>,
    session: &SessionId,
    held: SecretHash,
    fresh: SecretHash,
) -> HeartbeatDecision {
    store
        .heartbeat(session, presenting(&held, fresh))
        .await
        .unwrap()
        .decision
}

/// Two players renewing with one copied secret fall out of step: the second renewal of the first
/// retires the second's secret, which is then refused as cloned (and counted in the usage), while the
/// first plays on. A retry of the previous secret is not a clone.
pub async fn a_copied_secret_is_told_from_a_retry(h: &impl Harness) {
    let store = h.store();
    store
        .put_show(show("s1", 1, SharingPolicy::NewestWins))
        .await
        .unwrap();
    let t = registered(&*store, "s1", "copied-secret-000001").await;
    let a = session_of(
        &store
            .admit(admit_req(&t, 1, 1, SharingPolicy::NewestWins, 45_000))
            .await
            .unwrap(),
    );
    let s = |n: &str| hasher().session_secret(n);
    let renew = |held: SecretHash, fresh: SecretHash| decided(&store, &a, held, fresh);
    let renewed = |d: &HeartbeatDecision| matches!(d, HeartbeatDecision::Renewed { .. });
    // player 1 renews: the seat secret moves to p1
    assert!(renewed(&renew(seat_secret(), s("p1")).await));
    // player 2 holds a copy of the seat secret: it looks like a retry, and gets p2
    assert!(renewed(&renew(seat_secret(), s("p2")).await));
    // a real retry of player 1 would be the same: still fine
    assert!(renewed(&renew(seat_secret(), s("p1-retry")).await));
    // player 1 renews with p1: the chain moves, p2 retires
    assert!(renewed(&renew(s("p1"), s("p1b")).await));
    assert_eq!(
        renew(s("p2"), s("p2b")).await,
        HeartbeatDecision::Cloned,
        "the copy is refused"
    );
    assert!(
        renewed(&renew(s("p1b"), s("p1c")).await),
        "the first player plays on"
    );
    let usage = store.ticket_activity(&t.id).await.unwrap().usage;
    assert_eq!(usage.clones, 1);
    assert!(usage.last_clone_at.is_some());
    // a copy presented to leave is refused too, and does not end the first player's session
    assert_eq!(
        store.leave(&a, &s("p2")).await.unwrap(),
        LeaveDecision::Cloned
    );
    assert!(store.live_session(&a).await.unwrap().is_some());
    // a device id without the secret does not re-attach: it takes the seat as a new session
    let mut copy = admit_req(&t, 1, 1, SharingPolicy::NewestWins, 45_000);
    copy.fresh = s("copy");
    let AdmitDecision::Admitted {
        session_id,
        reattached,
        ..
    } = store.admit(copy).await.unwrap()
    else {
        panic!("newest wins admits")
    };
    assert!(!reattached && session_id != a);
}

/// A lease knows its newest [`RETIRED_MEMORY`] retired secrets as copies, and older ones as no secret of
/// the session (usher-core `SecretChain`): the Redis renewal by fields keeps the retired list as text and
/// trims it by its length, so each renewal past the limit must drop exactly the oldest.
///
/// [`RETIRED_MEMORY`]: usher_core::session_secret::RETIRED_MEMORY
pub async fn a_lease_knows_its_newest_retired_secrets_only(h: &impl Harness) {
    use usher_core::session_secret::RETIRED_MEMORY;
    let store = h.store();
    store
        .put_show(show("s1", 1, SharingPolicy::NewestWins))
        .await
        .unwrap();
    let t = registered(&*store, "s1", "retired-secrets-00001").await;
    let a = session_of(
        &store
            .admit(admit_req(&t, 1, 1, SharingPolicy::NewestWins, 45_000))
            .await
            .unwrap(),
    );
    let renew = |held: SecretHash, fresh: SecretHash| decided(&store, &a, held, fresh);
    // the admit's secret, then one per renewal, each renewal presenting the one before
    let renewals = RETIRED_MEMORY + 4;
    let chain: Vec<SecretHash> = std::iter::once(seat_secret())
        .chain((1..=renewals).map(|i| hasher().session_secret(&format!("chain-{i}"))))
        .collect();
    for i in 0..renewals {
        assert!(
            matches!(
                renew(chain[i], chain[i + 1]).await,
                HeartbeatDecision::Renewed { .. }
            ),
            "renewal {i} presents the current secret"
        );
    }
    // issued: the last; previous: the one before; retired: the RETIRED_MEMORY before that
    let previous = renewals - 1;
    for (i, secret) in chain.iter().enumerate().take(previous) {
        let expected = if i + RETIRED_MEMORY >= previous {
            HeartbeatDecision::Cloned
        } else {
            HeartbeatDecision::WrongSecret
        };
        let fresh = hasher().session_secret(&format!("never-{i}"));
        assert_eq!(
            renew(*secret, fresh).await,
            expected,
            "secret {i} of {renewals}"
        );
    }
    assert!(
        matches!(
            renew(chain[renewals], hasher().session_secret("last")).await,
            HeartbeatDecision::Renewed { .. }
        ),
        "the current secret still renews"
    );
}

/// Runs one full pass of [`Store::retain_usage`]; returns the tickets changed.
async fn retention_pass(store: &dyn Store, rules: &Retention) -> u64 {
    let mut changed = 0;
    loop {
        let batch = store.retain_usage(rules).await.expect("retain usage");
        changed += batch.tickets;
        if batch.done {
            return changed;
        }
    }
}

/// The usage's addresses as `address/prefix` (exact ones without a prefix), most recent last.
async fn addresses_of(store: &dyn Store, t: &Ticket) -> Vec<String> {
    let usage = store.ticket_activity(&t.id).await.unwrap().usage;
    usage
        .addresses
        .iter()
        .map(|a| match a.prefix {
            Some(p) => format!("{}/{p}", a.address),
            None => a.address.to_string(),
        })
        .collect()
}

/// Retention (usher-core `privacy`): addresses last seen before the address cut-off become their
/// network (IPv4 /24, IPv6 /48; one network's entries merge) or go; devices, countries and addresses
/// last seen before the usage cut-off go; newer entries and the counts stay; a second pass changes
/// nothing.
pub async fn usage_retention_truncates_then_drops(h: &impl Harness) {
    let store = h.store();
    store
        .put_show(show("s1", 3, SharingPolicy::NewestWins))
        .await
        .unwrap();
    let t = registered(&*store, "s1", "retention-token-0001").await;
    let other = registered(&*store, "s1", "retention-token-0002").await;
    let from = |t: &Ticket, dev: usize, address: &str, country: &str| {
        let mut r = admit_req(t, dev, 3, SharingPolicy::NewestWins, 45_000);
        r.address = Some(address.parse().unwrap());
        r.country = Some(Country::parse(country).unwrap());
        r
    };
    session_of(
        &store
            .admit(from(&t, 1, "198.51.100.7", "FR"))
            .await
            .unwrap(),
    );
    h.advance_ms(60).await;
    let usage_before = store.now();
    h.advance_ms(60).await;
    session_of(
        &store
            .admit(from(&t, 2, "2001:db8:1:2::5", "DE"))
            .await
            .unwrap(),
    );
    h.advance_ms(60).await;
    let addresses_before = store.now();
    h.advance_ms(60).await;
    session_of(
        &store
            .admit(from(&t, 3, "198.51.100.9", "DE"))
            .await
            .unwrap(),
    );
    session_of(
        &store
            .admit(from(&other, 1, "192.0.2.1", "FR"))
            .await
            .unwrap(),
    );
    let truncate = Retention {
        addresses_before,
        addresses: AddressAging::Truncate,
        usage_before: None,
    };
    assert_eq!(
        retention_pass(&*store, &truncate).await,
        1,
        "one ticket had old addresses"
    );
    assert_eq!(
        addresses_of(&*store, &t).await,
        ["198.51.100.0/24", "2001:db8:1::/48", "198.51.100.9"]
    );
    assert_eq!(addresses_of(&*store, &other).await, ["192.0.2.1"]);
    assert_eq!(
        retention_pass(&*store, &truncate).await,
        0,
        "nothing more to do"
    );
    // a network is no exact address: an admit from the network's own address is listed apart
    session_of(
        &store
            .admit(from(&t, 3, "198.51.100.0", "DE"))
            .await
            .unwrap(),
    );
    assert_eq!(
        addresses_of(&*store, &t).await,
        [
            "198.51.100.0/24",
            "2001:db8:1::/48",
            "198.51.100.9",
            "198.51.100.0"
        ]
    );
    // the usage cut-off: device 1 (and FR, its country, and its network) were last seen before it
    let a = store.ticket_activity(&t.id).await.unwrap();
    let sessions = a.usage.sessions;
    let dropping = Retention {
        addresses_before,
        addresses: AddressAging::Drop,
        usage_before: Some(usage_before),
    };
    assert_eq!(retention_pass(&*store, &dropping).await, 1);
    let u = store.ticket_activity(&t.id).await.unwrap().usage;
    let devices: Vec<DeviceId> = u.devices.iter().map(|d| d.device_id.clone()).collect();
    assert_eq!(devices, [device(2), device(3)], "{u:?}");
    let countries: Vec<&str> = u.countries.iter().map(|c| c.country.as_str()).collect();
    assert_eq!(countries, ["DE"], "{u:?}");
    assert_eq!(
        addresses_of(&*store, &t).await,
        ["2001:db8:1::/48", "198.51.100.9", "198.51.100.0"]
    );
    assert_eq!(u.sessions, sessions, "the counts stay");
    assert!(u.first_play_at.is_some());
    // the ticket's seats are untouched: its sessions play on
    assert_eq!(store.ticket_activity(&t.id).await.unwrap().live.len(), 3);
    // drop: an old exact address goes instead of becoming a network
    h.advance_ms(60).await;
    let now = store.now();
    let drop_all = Retention {
        addresses_before: now,
        addresses: AddressAging::Drop,
        usage_before: None,
    };
    assert_eq!(retention_pass(&*store, &drop_all).await, 2);
    assert_eq!(addresses_of(&*store, &t).await, ["2001:db8:1::/48"]);
    assert!(addresses_of(&*store, &other).await.is_empty());
}

/// Admits racing retention steps are never lost: every address an admit recorded is still there, exact
/// or as its network, however the steps interleaved.
pub async fn usage_retention_never_loses_a_racing_admit(h: &impl Harness) {
    let store = h.store();
    store
        .put_show(show("s1", 1, SharingPolicy::NewestWins))
        .await
        .unwrap();
    let t = registered(&*store, "s1", "retention-race-00001").await;
    let admits = {
        let store = store.clone();
        let t = t.clone();
        tokio::spawn(async move {
            for i in 0..20u8 {
                let mut r = admit_req(&t, 1, 1, SharingPolicy::NewestWins, 45_000);
                r.presented = Some(seat_secret());
                r.address = Some(std::net::IpAddr::from([10, 0, i, 1]));
                session_of(&store.admit(r).await.unwrap());
            }
        })
    };
    let retention = {
        let store = store.clone();
        tokio::spawn(async move {
            for _ in 0..200 {
                // every step truncates what the admits just recorded
                let rules = Retention {
                    addresses_before: UnixMs(store.now().0 + 60_000),
                    addresses: AddressAging::Truncate,
                    usage_before: None,
                };
                retention_pass(&*store, &rules).await;
            }
        })
    };
    admits.await.unwrap();
    retention.await.unwrap();
    let listed = addresses_of(&*store, &t).await;
    for i in 0..20 {
        assert!(
            listed.contains(&format!("10.0.{i}.1")) || listed.contains(&format!("10.0.{i}.0/24")),
            "10.0.{i}.1 was lost: {listed:?}"
        );
    }
}

/// Erasure: a ticket's devices, countries and addresses go, its sessions' labels (live, and "superseded
/// by …" of an ended one) are blanked, its counts stay; the live session keeps its seat and renews; a
/// second erasure erases nothing; a ticket never played erases nothing.
pub async fn erasure_clears_personal_data_and_keeps_the_seats(h: &impl Harness) {
    let store = h.store();
    store
        .put_show(show("s1", 1, SharingPolicy::NewestWins))
        .await
        .unwrap();
    let t = registered(&*store, "s1", "erasure-token-000001").await;
    let never = registered(&*store, "s1", "erasure-token-000002").await;
    let from = |dev: usize, address: &str, country: &str| {
        let mut r = admit_req(&t, dev, 1, SharingPolicy::NewestWins, 45_000);
        r.address = Some(address.parse().unwrap());
        r.country = Some(Country::parse(country).unwrap());
        r
    };
    let first = session_of(&store.admit(from(1, "192.0.2.1", "FR")).await.unwrap());
    h.advance_ms(5).await;
    let second = session_of(&store.admit(from(2, "2001:db8::2", "DE")).await.unwrap());
    let before = store.ticket_activity(&t.id).await.unwrap().usage;
    let erased = store.erase_personal_data(&t.id).await.unwrap();
    assert_eq!(
        erased,
        Erased {
            addresses: 2,
            countries: 2,
            devices: 2,
            // the live session's label, and the label that superseded the first one
            sessions: 2,
            live_sessions: 1,
        }
    );
    let a = store.ticket_activity(&t.id).await.unwrap();
    assert!(
        a.usage.devices.is_empty() && a.usage.countries.is_empty() && a.usage.addresses.is_empty()
    );
    assert_eq!(a.usage.sessions, before.sessions);
    assert_eq!(a.usage.first_play_at, before.first_play_at);
    assert_eq!(a.usage.last_seen_at, before.last_seen_at);
    assert_eq!(a.live.len(), 1);
    assert_eq!(a.live[0].session_id, second);
    assert_eq!(a.live[0].device_label, "");
    assert_eq!(
        store.erase_personal_data(&t.id).await.unwrap(),
        Erased {
            live_sessions: 1,
            ..Erased::default()
        },
        "a second erasure erases nothing"
    );
    assert_eq!(
        store.erase_personal_data(&never.id).await.unwrap(),
        Erased::default()
    );
    // the ended session still learns why it ended, without the label
    match store.heartbeat(&first, renewal()).await.unwrap().decision {
        HeartbeatDecision::Ended(EndReason::Superseded { by_device, .. }) => {
            assert_eq!(by_device, "");
        }
        other => panic!("expected superseded, got {other:?}"),
    }
    // the live one plays on
    assert!(matches!(
        store.heartbeat(&second, renewal()).await.unwrap().decision,
        HeartbeatDecision::Renewed { .. }
    ));
}
