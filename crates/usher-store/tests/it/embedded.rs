//! The store contract suite against the embedded backend, plus what only the embedded backend promises:
//! acknowledged writes and flushed leases survive reopening the database.

use std::sync::Arc;

use async_trait::async_trait;
use redb::ReadableTable as _;
use usher_core::clock::{Clock, ManualClock, SystemClock};
use usher_core::show::SharingPolicy;
use usher_core::store::{RegisterOutcome, Store};
use usher_store::EmbeddedStore;
use usher_store::contract::{self, Harness};

struct Embedded {
    _dir: tempfile::TempDir,
    clock: ManualClock,
    store: Arc<EmbeddedStore>,
}

#[async_trait]
impl Harness for Embedded {
    fn store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }

    async fn advance_ms(&self, ms: i64) {
        self.clock.advance_ms(ms);
    }

    fn backs_up(&self) -> bool {
        true
    }

    fn sweeps(&self) -> bool {
        true
    }
}

async fn embedded() -> Embedded {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = ManualClock::new(SystemClock.now());
    let store =
        Arc::new(EmbeddedStore::open(dir.path(), Arc::new(clock.clone())).expect("open store"));
    Embedded {
        _dir: dir,
        clock,
        store,
    }
}

usher_store::store_contract_tests!(embedded());

/// Show `s1`, a ticket of it with `token`, and a device seated on it (a minute's lease): the ticket and
/// the session.
async fn seated_ticket(
    store: &EmbeddedStore,
    token: &str,
) -> (usher_core::ticket::Ticket, usher_core::ids::SessionId) {
    store
        .put_show(contract::show("s1", 1, SharingPolicy::NewestWins))
        .await
        .unwrap();
    let RegisterOutcome::Created(t) = store
        .register_tickets(vec![contract::ticket("s1", token, None)])
        .await
        .unwrap()
        .remove(0)
    else {
        panic!("not created")
    };
    let decision = store
        .admit(contract::admit_req(
            &t,
            1,
            1,
            SharingPolicy::NewestWins,
            60_000,
        ))
        .await
        .unwrap();
    let usher_core::lease::AdmitDecision::Admitted { session_id, .. } = decision else {
        panic!("{decision:?}")
    };
    (t, session_id)
}

#[tokio::test]
async fn writes_and_flushed_leases_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let clock: Arc<SystemClock> = Arc::new(SystemClock);
    let (ticket, session) = {
        let store = EmbeddedStore::open(dir.path(), clock.clone()).unwrap();
        let (t, session_id) = seated_ticket(&store, "survivor-token-00001").await;
        store.put_cdn(contract::cdn("edge-a", 10)).await.unwrap();
        store.flush().await.unwrap();
        (t, session_id)
    };
    let store = EmbeddedStore::open(dir.path(), clock).unwrap();
    assert_eq!(store.ticket(&ticket.id).await.unwrap(), Some(ticket));
    assert!(
        store
            .show(&usher_core::ids::ShowId::parse("s1").unwrap())
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store.live_session(&session).await.unwrap().is_some(),
        "flushed lease survives"
    );
    assert_eq!(
        store.cdns().await.unwrap(),
        vec![contract::cdn("edge-a", 10)],
        "the CDN pool survives"
    );
}

#[tokio::test]
async fn a_store_made_before_the_reference_index_gets_it_at_its_next_open() {
    let dir = tempfile::tempdir().unwrap();
    let clock: Arc<SystemClock> = Arc::new(SystemClock);
    {
        let store = EmbeddedStore::open(dir.path(), clock.clone()).unwrap();
        store
            .put_show(contract::show("s1", 1, SharingPolicy::NewestWins))
            .await
            .unwrap();
        store
            .register_tickets(vec![
                contract::ticket("s1", "old-store-token-0001", Some("order-1")),
                contract::ticket("s1", "old-store-token-0002", Some("order-1")),
                contract::ticket("s1", "old-store-token-0003", None),
            ])
            .await
            .unwrap();
    }
    // make the file look like one written before the index: no index rows, no marker
    {
        let db = redb::Database::open(dir.path().join(usher_store::embedded::DB_FILE)).unwrap();
        let txn = db.begin_write().unwrap();
        txn.delete_table(redb::TableDefinition::<&str, &str>::new("extref_index"))
            .unwrap();
        txn.delete_table(redb::TableDefinition::<&str, &str>::new("meta"))
            .unwrap();
        txn.commit().unwrap();
    }
    let store = EmbeddedStore::open(dir.path(), clock).unwrap();
    let found = store.tickets_by_external_ref("order-1", 10).await.unwrap();
    assert_eq!(found.len(), 2, "{found:?}");
    drop(store);
    assert_eq!(
        meta(dir.path(), "schema").as_deref(),
        Some(usher_store::embedded::EMBEDDED_SCHEMA.to_string().as_str()),
        "migrated stores are stamped"
    );
}

/// Opens a store in `dir`, registers a ticket of show `s1` for each of `tokens` and closes it: the
/// tickets, each created.
async fn registered(dir: &std::path::Path, tokens: &[&str]) -> Vec<usher_core::ticket::Ticket> {
    let store = EmbeddedStore::open(dir, Arc::new(SystemClock)).unwrap();
    store
        .put_show(contract::show("s1", 1, SharingPolicy::NewestWins))
        .await
        .unwrap();
    let out = store
        .register_tickets(
            tokens
                .iter()
                .map(|t| contract::ticket("s1", t, None))
                .collect(),
        )
        .await
        .unwrap();
    out.into_iter()
        .map(|o| match o {
            RegisterOutcome::Created(t) => t,
            other => panic!("{other:?}"),
        })
        .collect()
}

#[tokio::test]
async fn a_store_of_schema_2_gets_its_tickets_keyed_by_time_at_its_next_open() {
    use usher_core::ticket::Ticket;
    // schema 2 keyed each ticket by its id; schema 3 by the id with its shard moved to the end, so
    // that tickets made one after the other sort together: a ticket not moved is found by no read
    let dir = tempfile::tempdir().unwrap();
    let clock: Arc<SystemClock> = Arc::new(SystemClock);
    let made = registered(
        dir.path(),
        &["schema2-token-000001", "schema2-token-000002"],
    )
    .await;
    // make the file look like one of schema 2: every ticket under its id, the stamp 2
    {
        let db = redb::Database::open(dir.path().join(usher_store::embedded::DB_FILE)).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let def = redb::TableDefinition::<&str, &[u8]>::new("tickets");
            let mut table = txn.open_table(def).unwrap();
            let rows: Vec<(String, Vec<u8>)> = table
                .iter()
                .unwrap()
                .map(|r| {
                    let (k, v) = r.unwrap();
                    (k.value().to_owned(), v.value().to_vec())
                })
                .collect();
            assert_eq!(rows.len(), 2);
            for (key, bytes) in rows {
                let t: Ticket = serde_json::from_slice(&bytes).unwrap();
                assert_ne!(
                    key,
                    t.id.as_str(),
                    "schema 3 keys a ticket by more than its id"
                );
                table.remove(key.as_str()).unwrap();
                table.insert(t.id.as_str(), bytes.as_slice()).unwrap();
            }
        }
        txn.commit().unwrap();
    }
    set_meta(dir.path(), "schema", "2");
    let store = EmbeddedStore::open(dir.path(), clock).unwrap();
    for t in &made {
        assert_eq!(store.ticket(&t.id).await.unwrap().as_ref(), Some(t));
        let by_token = store.ticket_by_token(&t.token_hash).await.unwrap();
        assert_eq!(by_token.as_ref(), Some(t), "found by its token");
    }
    drop(store);
    assert_eq!(
        meta(dir.path(), "schema").as_deref(),
        Some(usher_store::embedded::EMBEDDED_SCHEMA.to_string().as_str())
    );
    let keys: Vec<String> = rows(dir.path(), "tickets")
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert!(keys.iter().all(|k| !k.starts_with("t_")), "{keys:?}");
}

/// Whether the store's file still has the token index table of schemas 1 to 3.
fn has_token_table(dir: &std::path::Path) -> bool {
    let db = redb::Database::open(dir.join(usher_store::embedded::DB_FILE)).unwrap();
    let txn = db.begin_read().unwrap();
    match txn.open_table(redb::TableDefinition::<&str, &str>::new("token_index")) {
        Ok(_) => true,
        Err(redb::TableError::TableDoesNotExist(_)) => false,
        Err(e) => panic!("{e}"),
    }
}

#[tokio::test]
async fn a_store_of_schema_3_drops_its_token_table_and_finds_tickets_by_token_from_memory() {
    // schema 3 kept the token index as a table (token hash hex → ticket id); schema 4 builds it in
    // memory from the tickets at open, so the table goes and every ticket is still found by token
    let dir = tempfile::tempdir().unwrap();
    let clock: Arc<SystemClock> = Arc::new(SystemClock);
    let made = registered(
        dir.path(),
        &[
            "schema3-token-000000",
            "schema3-token-000001",
            "schema3-token-000002",
        ],
    )
    .await;
    assert!(
        !has_token_table(dir.path()),
        "schema 4 writes no token table"
    );
    {
        let db = redb::Database::open(dir.path().join(usher_store::embedded::DB_FILE)).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut index = txn
                .open_table(redb::TableDefinition::<&str, &str>::new("token_index"))
                .unwrap();
            for t in &made {
                index
                    .insert(t.token_hash.to_hex().as_str(), t.id.as_str())
                    .unwrap();
            }
        }
        txn.commit().unwrap();
    }
    set_meta(dir.path(), "schema", "3");
    let store = EmbeddedStore::open(dir.path(), clock).unwrap();
    for t in &made {
        let by_token = store.ticket_by_token(&t.token_hash).await.unwrap();
        assert_eq!(by_token.as_ref(), Some(t), "found by its token");
    }
    drop(store);
    assert_eq!(
        meta(dir.path(), "schema").as_deref(),
        Some(usher_store::embedded::EMBEDDED_SCHEMA.to_string().as_str())
    );
    assert!(!has_token_table(dir.path()), "the migration dropped it");
}

#[tokio::test]
async fn the_token_index_is_built_again_at_open_and_stops_a_second_ticket_for_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let clock: Arc<SystemClock> = Arc::new(SystemClock);
    let batch: Vec<_> = (0..1_000)
        .map(|i| contract::ticket("s1", &format!("reopen-token-{i:08}"), None))
        .collect();
    {
        let store = EmbeddedStore::open(dir.path(), clock.clone()).unwrap();
        store
            .put_show(contract::show("s1", 1, SharingPolicy::NewestWins))
            .await
            .unwrap();
        store.register_tickets(batch.clone()).await.unwrap();
        store
            .register_tickets(vec![contract::ticket("s1", "reopen-token-single", None)])
            .await
            .unwrap();
    }
    let store = EmbeddedStore::open(dir.path(), clock).unwrap();
    for i in [0, 499, 999] {
        let t = &batch[i].ticket;
        assert_eq!(
            store.ticket_by_token(&t.token_hash).await.unwrap().as_ref(),
            Some(t)
        );
    }
    // the same token again is the ticket registered before the restart, not a second one
    let again = store
        .register_tickets(vec![
            contract::ticket("s1", "reopen-token-00000007", None),
            contract::ticket("s1", "reopen-token-single", Some("other-terms")),
        ])
        .await
        .unwrap();
    assert_eq!(again[0], RegisterOutcome::Existing(batch[7].ticket.clone()));
    assert!(
        matches!(&again[1], RegisterOutcome::Conflict(_)),
        "{again:?}"
    );
}

#[tokio::test]
async fn a_ticket_id_made_twice_is_refused_and_leaves_the_first_ticket_as_it_was() {
    // ids carry 48 random bits per shard and millisecond: a second ticket under an id already taken
    // must fail its step (the caller retries with a new id), not replace the first ticket
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path(), Arc::new(SystemClock)).unwrap();
    store
        .put_show(contract::show("s1", 1, SharingPolicy::NewestWins))
        .await
        .unwrap();
    let RegisterOutcome::Created(first) = store
        .register_tickets(vec![contract::ticket("s1", "twice-token-00000001", None)])
        .await
        .unwrap()
        .remove(0)
    else {
        panic!("not created")
    };
    let mut twin = contract::ticket("s1", "twice-token-00000002", None);
    twin.ticket.id = first.id.clone();
    let refused = store.register_tickets(vec![twin.clone()]).await;
    assert!(
        matches!(refused, Err(usher_core::store::StoreError::Unavailable(_))),
        "{refused:?}"
    );
    assert_eq!(
        store.ticket(&first.id).await.unwrap().as_ref(),
        Some(&first)
    );
    assert_eq!(
        store
            .ticket_by_token(&twin.ticket.token_hash)
            .await
            .unwrap(),
        None,
        "the refused step left its token in the index"
    );
}

/// The rows of one of the store's byte tables, as another reader of the file sees them.
fn rows(dir: &std::path::Path, table: &str) -> Vec<(String, String)> {
    raw_rows(dir, table)
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
        .collect()
}

/// The rows of one of the store's byte tables as bytes (the binary renewal log).
fn raw_rows(dir: &std::path::Path, table: &str) -> Vec<(String, Vec<u8>)> {
    let db = redb::Database::open(dir.join(usher_store::embedded::DB_FILE)).unwrap();
    let txn = db.begin_read().unwrap();
    let table = txn
        .open_table(redb::TableDefinition::<&str, &[u8]>::new(table))
        .unwrap();
    table
        .iter()
        .unwrap()
        .map(|row| {
            let (k, v) = row.unwrap();
            (k.value().to_owned(), v.value().to_vec())
        })
        .collect()
}

/// Whether `bytes` hold the 32 bytes of `hash`.
fn holds(bytes: &[u8], hash: &usher_core::secret::SecretHash) -> bool {
    let raw = hex::decode(hash.to_hex()).unwrap();
    bytes.windows(raw.len()).any(|w| w == raw.as_slice())
}

/// Renews `session` presenting `secret`, handing out `fresh`: it must renew.
async fn renew(
    store: &EmbeddedStore,
    session: &usher_core::ids::SessionId,
    secret: &usher_core::secret::SecretHash,
    fresh: usher_core::secret::SecretHash,
) {
    let answer = store
        .heartbeat(
            session,
            usher_core::lease::Presented {
                secret,
                fresh: Some(fresh),
                revive_since: None,
            },
        )
        .await
        .unwrap();
    assert!(
        matches!(
            answer.decision,
            usher_core::lease::HeartbeatDecision::Renewed { .. }
        ),
        "{answer:?}"
    );
}

#[tokio::test]
async fn renewals_are_logged_apart_survive_a_crash_and_are_written_whole_at_close() {
    // a renewal changes the leases only: the flush logs them apart from the ticket's whole record (usage,
    // ended sessions), a reopened store replays the log over it, a whole write makes the entry
    // obsolete and the next flush removes it, and a clean close writes everything whole, which is all a
    // release that knows only the whole records reads
    const LOG: &str = "lease_renewal_log";
    let dir = tempfile::tempdir().unwrap();
    let clock: Arc<SystemClock> = Arc::new(SystemClock);
    let hasher = usher_core::secret::SecretHasher::new(b"renewals-test-key-0123456789abcdef");
    let secret = |n: u32| hasher.session_secret(&n.to_string());
    let session = {
        let store = EmbeddedStore::open(dir.path(), clock.clone()).unwrap();
        let (_, session_id) = seated_ticket(&store, "renewals-token-00001").await;
        // the admit is written whole
        store.flush().await.unwrap();
        renew(&store, &session_id, &contract::seat_secret(), secret(1)).await;
        store.flush().await.unwrap();
        // dropped without a close: a crash after the flush
        session_id
    };
    let logged = raw_rows(dir.path(), LOG);
    assert_eq!(logged.len(), 1, "the renewal is logged apart");
    assert!(holds(&logged[0].1, &secret(1)), "{logged:?}");
    assert!(
        !logged[0]
            .1
            .windows(8)
            .any(|w| w == &secret(1).to_hex().as_bytes()[..8]),
        "the log holds hashes as bytes, not hex"
    );
    assert!(
        !rows(dir.path(), "leases")[0]
            .1
            .contains(&secret(1).to_hex()),
        "the whole record is the admit's"
    );

    {
        let store = EmbeddedStore::open(dir.path(), clock.clone()).unwrap();
        // the reopened store knows the logged secret: the player's next heartbeat renews
        renew(&store, &session, &secret(1), secret(2)).await;
        // a reopened store writes a ticket whole first; the entry it replaces goes at the next flush
        store.flush().await.unwrap();
        store.flush().await.unwrap();
    }
    assert!(
        raw_rows(dir.path(), LOG).is_empty(),
        "the obsolete entry is removed"
    );
    assert!(
        rows(dir.path(), "leases")[0]
            .1
            .contains(&secret(2).to_hex())
    );

    let store = EmbeddedStore::open(dir.path(), clock).unwrap();
    renew(&store, &session, &secret(2), secret(3)).await;
    // written whole (a reopened store's first flush), then renewed and closed without another flush:
    // the close writes it whole too, not into the log
    store.flush().await.unwrap();
    renew(&store, &session, &secret(3), secret(4)).await;
    store.close().await.unwrap();
    drop(store);
    assert!(raw_rows(dir.path(), LOG).is_empty(), "a close writes whole");
    assert!(
        rows(dir.path(), "leases")[0]
            .1
            .contains(&secret(4).to_hex())
    );
}

#[tokio::test]
async fn a_json_renewal_log_entry_of_the_release_before_is_replayed_and_removed_once_obsolete() {
    // the releases before the binary log wrote its entries as JSON: a store that crashed under one of
    // them and is opened by this one replays them
    const JSON_LOG: &str = "lease_renewal_log";
    let dir = tempfile::tempdir().unwrap();
    let clock: Arc<SystemClock> = Arc::new(SystemClock);
    let hasher = usher_core::secret::SecretHasher::new(b"renewals-test-key-0123456789abcdef");
    let secret = |n: u32| hasher.session_secret(&n.to_string());
    let (ticket_id, session) = {
        let store = EmbeddedStore::open(dir.path(), clock.clone()).unwrap();
        let (ticket, session_id) = seated_ticket(&store, "renewals-token-00002").await;
        store.close().await.unwrap();
        (ticket.id, session_id)
    };
    // the entry the release before would have written for a renewal from the seat's secret to
    // secret(1): the whole record's leases with the moved chain, under a newer sequence number
    let (_, whole) = rows(dir.path(), "leases").remove(0);
    let whole: serde_json::Value = serde_json::from_str(&whole).unwrap();
    let mut leases = whole["leases"]["leases"].clone();
    leases[0]["secret"] = serde_json::json!({
        "previous": contract::seat_secret(),
        "issued": [secret(1)],
    });
    let seq = whole["seq"].as_u64().unwrap() + 1;
    let entry = serde_json::json!([[ticket_id, {"leases": leases, "last_seen_at": null}]]);
    {
        let db = redb::Database::open(dir.path().join(usher_store::embedded::DB_FILE)).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(redb::TableDefinition::<&str, &[u8]>::new(JSON_LOG))
            .unwrap()
            .insert(
                format!("{seq:016x}").as_str(),
                serde_json::to_vec(&entry).unwrap().as_slice(),
            )
            .unwrap();
        txn.commit().unwrap();
    }

    let store = EmbeddedStore::open(dir.path(), clock).unwrap();
    // the replayed entry moved the chain: secret(1) renews, the seat's secret is the previous one
    renew(&store, &session, &secret(1), secret(2)).await;
    // the first flush writes the ticket whole, the next removes the entry it made obsolete
    store.flush().await.unwrap();
    store.flush().await.unwrap();
    drop(store);
    assert!(
        rows(dir.path(), JSON_LOG).is_empty(),
        "the JSON entry is gone"
    );
    assert!(
        rows(dir.path(), "leases")[0]
            .1
            .contains(&secret(2).to_hex())
    );
}

/// A value of the store's `meta` table, read with redb directly.
fn meta(dir: &std::path::Path, key: &str) -> Option<String> {
    let db = redb::Database::open(dir.join(usher_store::embedded::DB_FILE)).unwrap();
    let txn = db.begin_read().unwrap();
    let table = txn
        .open_table(redb::TableDefinition::<&str, &str>::new("meta"))
        .unwrap();
    table.get(key).unwrap().map(|v| v.value().to_owned())
}

/// Writes `value` under `key` in the store's `meta` table, as another release would.
fn set_meta(dir: &std::path::Path, key: &str, value: &str) {
    let db = redb::Database::open(dir.join(usher_store::embedded::DB_FILE)).unwrap();
    let txn = db.begin_write().unwrap();
    txn.open_table(redb::TableDefinition::<&str, &str>::new("meta"))
        .unwrap()
        .insert(key, value)
        .unwrap();
    txn.commit().unwrap();
}

#[tokio::test]
async fn a_store_written_by_release_0_1_0_opens_is_stamped_and_keeps_its_tickets() {
    let dir = tempfile::tempdir().unwrap();
    let fixture =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/v0.1.0/usher.redb.gz");
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(std::fs::File::open(&fixture).unwrap()),
        &mut bytes,
    )
    .unwrap();
    std::fs::write(dir.path().join(usher_store::embedded::DB_FILE), bytes).unwrap();
    assert_eq!(meta(dir.path(), "schema"), None, "0.1.0 stamped nothing");

    let store = EmbeddedStore::open(dir.path(), Arc::new(SystemClock)).unwrap();
    for id in [
        "t_bc38fea57a2b85944915c3b2",
        "t_f3e5d04acf2659ff017f2201",
        "t_26c51107f1a3eea2f7968e92",
        "t_6678a5711a424380c72e1f48",
    ] {
        let id = usher_core::ids::TicketId::parse(id).unwrap();
        assert!(store.ticket(&id).await.unwrap().is_some(), "{id}");
    }
    assert_eq!(
        store
            .tickets_by_external_ref("order-v010-1", 10)
            .await
            .unwrap()
            .len(),
        2
    );
    // the token hashes of 0.1.0 are found with its token key
    let hasher =
        usher_core::secret::SecretHasher::new(b"1V5y92YByfvZpt9JL2uYr7aNpTp40_0kE_dUWccHgYU");
    let token =
        usher_core::ids::TicketToken::parse("ljGR_3OEyCQB-2QUKxMnoeTQi__Mjt9erum1K2-QdCc").unwrap();
    let found = store
        .ticket_by_token(&hasher.ticket_token(&token))
        .await
        .unwrap()
        .expect("the demo ticket by its token");
    assert_eq!(found.id.as_str(), "t_6678a5711a424380c72e1f48");
    assert!(
        store
            .shows()
            .await
            .unwrap()
            .iter()
            .any(|s| s.id.as_str() == "demo")
    );
    drop(store);
    assert_eq!(
        meta(dir.path(), "schema").as_deref(),
        Some(usher_store::embedded::EMBEDDED_SCHEMA.to_string().as_str())
    );
    assert!(
        !has_token_table(dir.path()),
        "0.1.0's token table was dropped"
    );
}

#[tokio::test]
async fn a_store_of_a_newer_schema_or_of_something_else_is_refused_and_left_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let clock: Arc<SystemClock> = Arc::new(SystemClock);
    {
        let store = EmbeddedStore::open(dir.path(), clock.clone()).unwrap();
        store
            .put_show(contract::show("s1", 1, SharingPolicy::NewestWins))
            .await
            .unwrap();
    }
    let newer = usher_store::embedded::EMBEDDED_SCHEMA + 1;
    set_meta(dir.path(), "schema", &newer.to_string());
    let Err(err) = EmbeddedStore::open(dir.path(), clock.clone()) else {
        panic!("a newer schema is refused")
    };
    let message = err.to_string();
    assert!(
        matches!(err, usher_core::store::StoreError::Incompatible(_)),
        "{message}"
    );
    assert!(
        message.contains(&format!("schema {newer}")) && message.contains("newer Usher"),
        "{message}"
    );
    assert_eq!(
        meta(dir.path(), "schema"),
        Some(newer.to_string()),
        "untouched"
    );

    set_meta(dir.path(), "schema", "two");
    let Err(err) = EmbeddedStore::open(dir.path(), clock.clone()) else {
        panic!("a stamp that is no number is refused")
    };
    assert!(err.to_string().contains("not a version number"), "{err}");

    // put back as this release wrote it, the store opens with its show
    set_meta(
        dir.path(),
        "schema",
        &usher_store::embedded::EMBEDDED_SCHEMA.to_string(),
    );
    let store = EmbeddedStore::open(dir.path(), clock).unwrap();
    assert_eq!(store.shows().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_flood_of_fresh_login_keys_neither_grows_the_map_nor_lifts_a_wait() {
    use usher_core::admin::{Backoff, LoginGate};
    let h = embedded().await;
    let rule = Backoff {
        free: 5,
        initial_ms: 60_000,
        max_ms: 60_000,
        window_ms: 900_000,
    };
    for _ in 0..5 {
        h.store.login_attempt("user:admin", &rule).await.unwrap();
    }
    // random user names and addresses: one attempt each, far more than the map keeps
    for i in 0..150_000u32 {
        h.store
            .login_attempt(&format!("addr:2001:db8:{i:x}::"), &rule)
            .await
            .unwrap();
    }
    assert!(
        h.store.login_keys() <= 100_000,
        "the map holds {} keys",
        h.store.login_keys()
    );
    assert!(
        matches!(
            h.store.login_attempt("user:admin", &rule).await.unwrap(),
            LoginGate::Wait { .. }
        ),
        "the user under attack still waits"
    );
}

/// The retention pass walks the tickets in pieces with the lock let go between them (so an admit or a
/// heartbeat waits for one piece): every ticket of several pieces is reached once, and a second pass
/// finds nothing left to do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retention_pass_in_pieces_reaches_every_ticket_once() {
    use usher_core::privacy::{AddressAging, Retention};
    let h = embedded().await;
    let store = &h.store;
    store
        .put_show(contract::show("s1", 1, SharingPolicy::NewestWins))
        .await
        .unwrap();
    // more than two pieces of the walk (1,024 tickets each)
    let tickets: Vec<_> = store
        .register_tickets(
            (0..2_500)
                .map(|i| contract::ticket("s1", &format!("pieces-token-{i:08}"), None))
                .collect(),
        )
        .await
        .unwrap()
        .into_iter()
        .map(|o| match o {
            RegisterOutcome::Created(t) => t,
            other => panic!("{other:?}"),
        })
        .collect();
    for t in &tickets {
        let mut first = contract::admit_req(t, 1, 1, SharingPolicy::NewestWins, 60_000);
        first.address = Some("198.51.100.7".parse().unwrap());
        let decision = store.admit(first).await.unwrap();
        assert!(matches!(
            decision,
            usher_core::lease::AdmitDecision::Admitted { .. }
        ));
    }
    h.clock.advance_ms(10);
    let truncate = Retention {
        addresses_before: store.now(),
        addresses: AddressAging::Truncate,
        usage_before: None,
    };
    let pass = || async {
        let mut changed = 0;
        loop {
            let batch = store.retain_usage(&truncate).await.unwrap();
            changed += batch.tickets;
            if batch.done {
                return changed;
            }
        }
    };
    assert_eq!(pass().await, 2_500, "every ticket's address truncated");
    assert_eq!(pass().await, 0, "nothing left");
    let usage = store
        .ticket_activity(&tickets[2_499].id)
        .await
        .unwrap()
        .usage;
    assert_eq!(usage.addresses[0].prefix, Some(24));
}

/// The embedded store is one node: every retention pass is its own to make (its caller paces them).
#[tokio::test]
async fn the_one_embedded_node_claims_every_retention_pass() {
    let h = embedded().await;
    let rest = std::time::Duration::from_secs(3_600);
    assert!(h.store.claim_retention_pass(rest).await.unwrap());
    assert!(h.store.claim_retention_pass(rest).await.unwrap());
}
