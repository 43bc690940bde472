//! The store contract suite against a real `redis-server` (started per test on a unix socket, persistence
//! off), then what only Redis has: several nodes sharing one Redis, each with its own copy of the shows and
//! the CDN pool, and the round trips the viewer's hot paths cost. A missing `redis-server` fails these
//! tests with a clear message; they never skip.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use usher_core::cdn::{CdnHealth, HealthState};
use usher_core::ids::{DeviceId, SessionId, ShowId};
use usher_core::lease::{AdmitDecision, HeartbeatDecision, SeatRules};
use usher_core::secret::SecretHasher;
use usher_core::show::SharingPolicy;
use usher_core::store::{AdmitRequest, DeleteShowOutcome, NewTicket, Store};
use usher_store::contract::{Harness, cdn, presenting, show, ticket};
use usher_store::redis::{RedisConfig, RedisStore};
use usher_testkit::RedisServer;

use crate::support::monitor;

struct Redis {
    _server: RedisServer,
    store: Arc<RedisStore>,
}

#[async_trait]
impl Harness for Redis {
    fn store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }

    async fn advance_ms(&self, ms: i64) {
        // Redis's own clock decides lease expiry; it cannot be moved, so wait.
        tokio::time::sleep(Duration::from_millis(ms.max(0) as u64)).await;
    }

    fn backs_up(&self) -> bool {
        // Redis is backed up by its own means (docs/redis.md)
        false
    }

    fn sweeps(&self) -> bool {
        // the scripts drop lapsed leases and keys carry lifetimes: nothing for a node to sweep
        false
    }
}

/// A node of an Usher deployment on `server`.
async fn node(server: &RedisServer) -> RedisStore {
    connect(server).await.expect("connect to redis")
}

/// Connects a node to `server`, or says why not.
async fn connect(server: &RedisServer) -> Result<RedisStore, usher_core::store::StoreError> {
    connect_url(server.url()).await
}

/// The tests' settings for a node of the Redis at `url`.
pub(crate) fn config(url: String) -> RedisConfig {
    RedisConfig {
        url,
        key_prefix: "usher-test:".into(),
        connect_timeout: Duration::from_secs(2),
        response_timeout: Duration::from_secs(2),
        wait_replicas: 0,
        wait_timeout: Duration::from_millis(100),
        sentinel: None,
    }
}

/// Connects a node to the Redis at `url`, or says why not.
async fn connect_url(url: String) -> Result<RedisStore, usher_core::store::StoreError> {
    RedisStore::connect(config(url)).await
}

async fn redis() -> Redis {
    let server = RedisServer::start().expect("redis-server");
    let store = node(&server).await;
    Redis {
        _server: server,
        store: Arc::new(store),
    }
}

usher_store::store_contract_tests!(redis());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_is_stamped_with_its_schema_and_a_newer_one_is_refused() {
    let server = RedisServer::start().expect("redis-server");
    let client = redis::Client::open(server.url()).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let key = "usher-test:schema";
    // an empty database starts on this build's layout
    let _ = node(&server).await;
    let stamp: Option<u32> = redis::cmd("GET")
        .arg(key)
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(stamp, Some(usher_store::redis::REDIS_SCHEMA));

    let newer = usher_store::redis::REDIS_SCHEMA + 1;
    let _: () = redis::cmd("SET")
        .arg(key)
        .arg(newer)
        .query_async(&mut con)
        .await
        .unwrap();
    let Err(err) = connect(&server).await else {
        panic!("a newer schema is refused")
    };
    assert!(
        matches!(err, usher_core::store::StoreError::Incompatible(_))
            && err.to_string().contains(&format!("schema {newer}")),
        "{err}"
    );
    let _: () = redis::cmd("SET")
        .arg(key)
        .arg("x")
        .query_async(&mut con)
        .await
        .unwrap();
    let Err(err) = connect(&server).await else {
        panic!("a foreign value is refused")
    };
    assert!(err.to_string().contains("not a schema version"), "{err}");
    let stamp: String = redis::cmd("GET")
        .arg(key)
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(stamp, "x", "a refusing node changes nothing");
}

/// A fresh Redis stamped with an older schema `value` before the node connects: the layout a database
/// keeps through a rolling upgrade until `usher redis-schema --upgrade`.
async fn redis_stamped(value: &str) -> Redis {
    let server = RedisServer::start().expect("redis-server");
    stamp(&server, value).await;
    let store = node(&server).await;
    Redis {
        _server: server,
        store: Arc::new(store),
    }
}

/// The same contract on a database stamped schema 1 (seats as JSON strings, 0.2 and before).
mod schema_1 {
    use super::*;
    usher_store::store_contract_tests!(redis_stamped("1"));
}

/// The same contract on a database stamped schema 2 (the seats' hash, every admit writing it whole).
mod schema_2 {
    use super::*;
    usher_store::store_contract_tests!(redis_stamped("2"));
}

async fn stamp(server: &RedisServer, value: &str) {
    let client = redis::Client::open(server.url()).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("SET")
        .arg("usher-test:schema")
        .arg(value)
        .query_async(&mut con)
        .await
        .unwrap();
}

async fn seats_type(server: &RedisServer, ticket: &str) -> String {
    let client = redis::Client::open(server.url()).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    redis::cmd("TYPE")
        .arg(format!("usher-test:seats:{ticket}"))
        .query_async(&mut con)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_with_records_but_no_stamp_is_schema_1_until_upgraded() {
    let server = RedisServer::start().expect("redis-server");
    let client = redis::Client::open(server.url()).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    // 0.1.0 stamped nothing: its records alone say the database is in use
    let _: () = redis::cmd("SADD")
        .arg("usher-test:shows")
        .arg("old-show")
        .query_async(&mut con)
        .await
        .unwrap();
    let old = node(&server).await;
    assert_eq!(old.upgrade_schema(false).await.unwrap(), (1, 1));

    // seats written on schema 1 are JSON strings, and read back alike after the upgrade
    let s = show("show-u", 1, SharingPolicy::NewestWins);
    old.put_show(s.clone()).await.unwrap();
    let mut sessions = Vec::new();
    let mut tickets = Vec::new();
    for i in 0..3 {
        let t = ticket("show-u", &format!("upgrade-token-{i:05}"), None);
        old.register_tickets(vec![t.clone()]).await.unwrap();
        sessions.push(admitted(&old, admit_request(&t, &format!("dev-up-{i}"))).await);
        tickets.push(t);
    }
    renewed(&old, &sessions[0]).await;
    assert_eq!(
        seats_type(&server, tickets[0].ticket.id.as_str()).await,
        "string"
    );
    let before: Vec<_> = futures_activity(&old, &tickets).await;

    // the upgrade moves the stamp; every seat reads the same, and moves to the hash at its next write
    assert_eq!(
        old.upgrade_schema(true).await.unwrap(),
        (1, usher_store::redis::REDIS_SCHEMA)
    );
    assert_eq!(
        old.upgrade_schema(true).await.unwrap(),
        (
            usher_store::redis::REDIS_SCHEMA,
            usher_store::redis::REDIS_SCHEMA
        )
    );
    let new = node(&server).await;
    assert_eq!(futures_activity(&new, &tickets).await, before);
    renewed(&new, &sessions[0]).await;
    renewed(&new, &sessions[1]).await;
    assert_eq!(
        seats_type(&server, tickets[0].ticket.id.as_str()).await,
        "hash"
    );
    assert_eq!(
        seats_type(&server, tickets[2].ticket.id.as_str()).await,
        "string"
    );
    // renewals on the hash are kept as fields; the next whole read replays them into the usage
    for _ in 0..3 {
        renewed(&new, &sessions[0]).await;
    }
    let after = futures_activity(&new, &tickets).await;
    assert_eq!(after[2], before[2], "an untouched ticket reads as before");
    for (a, b) in after.iter().zip(&before).take(2) {
        assert_eq!(a.live.len(), 1);
        assert_eq!(a.live[0].session_id, b.live[0].session_id);
        assert!(a.live[0].expires_at >= b.live[0].expires_at);
        assert_eq!(a.usage.sessions, b.usage.sessions);
        assert_eq!(a.usage.devices.len(), 1);
        assert_eq!(a.usage.devices[0].device_id, b.usage.devices[0].device_id);
        assert!(a.usage.devices[0].last_seen >= b.usage.devices[0].last_seen);
        assert_eq!(a.usage.last_seen_at, Some(a.usage.devices[0].last_seen));
    }
    // the seat is held on either layout: another device is turned away by oldest-wins or takes it over
    let taken = new
        .admit(admit_request(&tickets[0], "dev-thief"))
        .await
        .unwrap();
    let AdmitDecision::Admitted { superseded, .. } = taken else {
        panic!("newest wins: {taken:?}")
    };
    assert_eq!(superseded, vec![sessions[0].clone()]);
    stamp(&server, "4").await;
    let Err(err) = connect(&server).await else {
        panic!("a newer schema is refused")
    };
    assert!(err.to_string().contains("schema 4"), "{err}");
}

async fn futures_activity(
    store: &RedisStore,
    tickets: &[NewTicket],
) -> Vec<usher_core::store::TicketActivity> {
    let mut out = Vec::new();
    for t in tickets {
        out.push(store.ticket_activity(&t.ticket.id).await.unwrap());
    }
    out
}

/// A node that trusts its copies for an hour unless a heartbeat, admit or token lookup tells it of a
/// change: what it sees below is what those steps alone bring.
async fn lazy_node(server: &RedisServer) -> RedisStore {
    node(server)
        .await
        .with_config_freshness(Duration::from_secs(3600))
}

fn admit_request(t: &NewTicket, device: &str) -> AdmitRequest {
    AdmitRequest {
        ticket_id: t.ticket.id.clone(),
        show_id: t.ticket.terms.show_id.clone(),
        bounds: t.ticket.bounds(),
        device_id: DeviceId::parse(device).unwrap(),
        device_label: device.into(),
        rules: SeatRules {
            max_devices: 1,
            policy: SharingPolicy::NewestWins,
            ttl_ms: 45_000,
        },
        country: None,
        address: None,
        presented: Some(usher_store::contract::seat_secret()),
        fresh: usher_store::contract::seat_secret(),
    }
}

async fn admitted(store: &RedisStore, req: AdmitRequest) -> SessionId {
    match store.admit(req).await.unwrap() {
        AdmitDecision::Admitted { session_id, .. } => session_id,
        other => panic!("not admitted: {other:?}"),
    }
}

async fn renewed(store: &RedisStore, session: &SessionId) {
    let answer = store
        .heartbeat(session, usher_store::contract::renewal())
        .await
        .unwrap();
    assert!(
        matches!(answer.decision, HeartbeatDecision::Renewed { .. }),
        "{answer:?}"
    );
}

/// An admin's change on one node (a show edited, unpublished or deleted; a CDN disabled, its health
/// changed by the prober, deleted) reaches another node on that node's next heartbeat, at no extra cost.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_change_on_one_node_reaches_another_on_its_next_heartbeat() {
    let server = RedisServer::start().expect("redis-server");
    let (admin, viewer) = (lazy_node(&server).await, lazy_node(&server).await);
    let s1 = ShowId::parse("s1").unwrap();
    let s2 = ShowId::parse("s2").unwrap();
    admin
        .put_show(show("s1", 1, SharingPolicy::NewestWins))
        .await
        .unwrap();
    admin
        .put_show(show("s2", 1, SharingPolicy::NewestWins))
        .await
        .unwrap();
    admin.put_cdn(cdn("cdn-a", 10)).await.unwrap();
    let t = ticket("s1", "multinode-token-0001", None);
    admin.register_tickets(vec![t.clone()]).await.unwrap();
    let session = admitted(&viewer, admit_request(&t, "device-1")).await;
    assert_eq!(viewer.show(&s1).await.unwrap().unwrap().title, "Show s1");
    assert!(viewer.show(&s2).await.unwrap().is_some());
    assert!(viewer.cdns().await.unwrap()[0].enabled);

    let mut edited = show("s1", 1, SharingPolicy::NewestWins);
    edited.title = "Renamed".into();
    edited.published = false;
    admin.put_show(edited).await.unwrap();
    let mut disabled = cdn("cdn-a", 10);
    disabled.enabled = false;
    admin.put_cdn(disabled).await.unwrap();
    // the writer reads its own writes at once
    assert_eq!(admin.show(&s1).await.unwrap().unwrap().title, "Renamed");
    assert!(!admin.cdns().await.unwrap()[0].enabled);
    // nothing has told the viewer's node yet: it still serves its copies (what saves the round trips)
    assert_eq!(viewer.show(&s1).await.unwrap().unwrap().title, "Show s1");
    assert!(viewer.cdns().await.unwrap()[0].enabled);

    let answer = viewer
        .heartbeat(&session, usher_store::contract::renewal())
        .await
        .unwrap();
    assert_eq!(
        answer.ticket,
        Some(t.ticket.bounds()),
        "the heartbeat brings the ticket's bounds"
    );
    let s = viewer.show(&s1).await.unwrap().unwrap();
    assert_eq!((s.title.as_str(), s.published), ("Renamed", false));
    assert!(!viewer.cdns().await.unwrap()[0].enabled);

    let unhealthy = CdnHealth {
        state: HealthState::Unhealthy,
        ..CdnHealth::default()
    };
    assert!(
        admin
            .set_cdn_health(&cdn("cdn-a", 10).id, unhealthy)
            .await
            .unwrap()
    );
    assert_eq!(
        admin.delete_show(&s2).await.unwrap(),
        DeleteShowOutcome::Deleted
    );
    renewed(&viewer, &session).await;
    assert_eq!(
        viewer.cdns().await.unwrap()[0].health.state,
        HealthState::Unhealthy
    );
    assert_eq!(viewer.show(&s2).await.unwrap(), None);

    // what the server derives from the pool (parsed signers) it keeps while `cdns_generation` holds
    let kept = viewer.cdns_generation();
    assert!(kept.is_some(), "a heartbeat just confirmed the generation");
    assert!(admin.delete_cdn(&cdn("cdn-a", 10).id).await.unwrap());
    assert_eq!(viewer.cdns_generation(), kept, "not told yet");
    renewed(&viewer, &session).await;
    assert_ne!(viewer.cdns_generation(), kept);
    assert!(viewer.cdns().await.unwrap().is_empty());
}

/// An admit learns of a change as a heartbeat does: the token lookup it starts with, before it reads the
/// show, and the admit step, before it reads the pool, each bring the generation.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_change_on_one_node_reaches_another_on_its_next_admit() {
    let server = RedisServer::start().expect("redis-server");
    let (admin, viewer) = (lazy_node(&server).await, lazy_node(&server).await);
    let s1 = ShowId::parse("s1").unwrap();
    admin
        .put_show(show("s1", 1, SharingPolicy::NewestWins))
        .await
        .unwrap();
    admin.put_cdn(cdn("cdn-a", 10)).await.unwrap();
    let t = ticket("s1", "multinode-token-0002", None);
    admin.register_tickets(vec![t.clone()]).await.unwrap();
    admitted(&viewer, admit_request(&t, "device-1")).await;
    assert_eq!(viewer.show(&s1).await.unwrap().unwrap().lease_ttl_s, 45);
    assert!(viewer.cdns().await.unwrap()[0].enabled);

    let mut edited = show("s1", 1, SharingPolicy::NewestWins);
    edited.lease_ttl_s = 90;
    admin.put_show(edited).await.unwrap();
    let found = viewer
        .ticket_by_token(&t.ticket.token_hash)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, t.ticket.id);
    assert_eq!(viewer.show(&s1).await.unwrap().unwrap().lease_ttl_s, 90);

    let mut disabled = cdn("cdn-a", 10);
    disabled.enabled = false;
    admin.put_cdn(disabled).await.unwrap();
    admitted(&viewer, admit_request(&t, "device-2")).await;
    assert!(!viewer.cdns().await.unwrap()[0].enabled);
}

/// A fail-over that loses the last writes (or a restored backup) moves the generation back; the next write
/// must still move it past every value a node has seen, or a node would take its copy of the lost write
/// for the new contents.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_generation_lost_with_its_write_is_not_handed_out_again() {
    let server = RedisServer::start().expect("redis-server");
    let (admin, viewer) = (lazy_node(&server).await, lazy_node(&server).await);
    let s1 = ShowId::parse("s1").unwrap();
    let titled = |title: &str| {
        let mut s = show("s1", 1, SharingPolicy::NewestWins);
        s.title = title.into();
        s
    };
    admin.put_show(titled("one")).await.unwrap();
    let t = ticket("s1", "rollback-token-00001", None);
    admin.register_tickets(vec![t.clone()]).await.unwrap();
    let session = admitted(&viewer, admit_request(&t, "device-1")).await;
    let mut raw = redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let (show_one, gen_one): (String, String) = redis::pipe()
        .get("usher-test:show:s1")
        .get("usher-test:config_gen")
        .query_async(&mut raw)
        .await
        .unwrap();
    admin.put_show(titled("two")).await.unwrap();
    renewed(&viewer, &session).await;
    assert_eq!(viewer.show(&s1).await.unwrap().unwrap().title, "two");
    // the write of "two" is lost: Redis is back to the state before it
    let _: () = redis::pipe()
        .set("usher-test:show:s1", show_one)
        .set("usher-test:config_gen", gen_one)
        .query_async(&mut raw)
        .await
        .unwrap();
    admin.put_show(titled("three")).await.unwrap();
    renewed(&viewer, &session).await;
    assert_eq!(viewer.show(&s1).await.unwrap().unwrap().title, "three");
}

/// Without a recent heartbeat or admit to vouch for its copies, a node asks Redis on the next read.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unconfirmed_copy_is_checked_with_redis() {
    let server = RedisServer::start().expect("redis-server");
    let admin = node(&server).await;
    let other = node(&server).await.with_config_freshness(Duration::ZERO);
    let s1 = ShowId::parse("s1").unwrap();
    admin
        .put_show(show("s1", 1, SharingPolicy::NewestWins))
        .await
        .unwrap();
    admin.put_cdn(cdn("cdn-a", 10)).await.unwrap();
    assert_eq!(other.show(&s1).await.unwrap().unwrap().title, "Show s1");
    assert!(other.cdns().await.unwrap()[0].enabled);
    let mut edited = show("s1", 1, SharingPolicy::NewestWins);
    edited.title = "Renamed".into();
    admin.put_show(edited).await.unwrap();
    let mut disabled = cdn("cdn-a", 10);
    disabled.enabled = false;
    admin.put_cdn(disabled).await.unwrap();
    assert_eq!(other.show(&s1).await.unwrap().unwrap().title, "Renamed");
    assert!(!other.cdns().await.unwrap()[0].enabled);
    assert_eq!(
        other.cdns_generation(),
        None,
        "nothing it derived from the pool may be kept either"
    );
}

/// The viewer's hot paths as the server drives the store (`usher-server/src/viewer.rs`): a heartbeat, as
/// a player makes them (each presenting the secret the one before handed out), is a renewal without a
/// script (`redis/renewal.rs`: two round trips, WATCH and the reads, then MULTI, the writes, EXEC; the
/// ticket's bounds, the show and the pool from this node's copies), and so is an admit, re-attaching or
/// taking the seat over (`redis/admission.rs`: WATCH and the seats' head, the leases' fields, then MULTI,
/// the writes, EXEC; the token lookup before it is plain `GET`s: one round trip for a token this node
/// looked up before, two otherwise).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_heartbeat_and_an_admit_are_transactions_without_a_script() {
    const FLOWS: usize = 50;
    let (server, store) = node_with_show(1).await;
    store.put_cdn(cdn("cdn-a", 10)).await.unwrap();
    store.put_cdn(cdn("cdn-b", 20)).await.unwrap();
    let t = ticket("s1", "round-trip-token-0001", None);
    store.register_tickets(vec![t.clone()]).await.unwrap();
    let session = admitted(&store, admit_request(&t, "device-1")).await;
    let hasher = SecretHasher::new(b"round-trip-key-0123456789abcdef!");
    let current = std::sync::Mutex::new(usher_store::contract::seat_secret());
    let heartbeat = async || {
        let fresh = hasher.session_secret(&SessionId::generate().to_string());
        let presented = *current.lock().unwrap();
        let answer = store
            .heartbeat(&session, presenting(&presented, fresh))
            .await
            .unwrap();
        assert!(
            matches!(answer.decision, HeartbeatDecision::Renewed { .. }),
            "{answer:?}"
        );
        *current.lock().unwrap() = fresh;
        let (ticket_id, show_id) = answer.owner.unwrap();
        store.show(&show_id).await.unwrap().unwrap();
        if answer.ticket.is_none() {
            store.ticket(&ticket_id).await.unwrap().unwrap();
        }
        store.cdns().await.unwrap();
    };
    let admit = async |device: &str| {
        let found = store
            .ticket_by_token(&t.ticket.token_hash)
            .await
            .unwrap()
            .unwrap();
        store.show(&found.terms.show_id).await.unwrap().unwrap();
        let decision = store.admit(admit_request(&t, device)).await.unwrap();
        store.cdns().await.unwrap();
        decision
    };
    // scripts loaded, copies read (the admit first: it re-attaches with the contract's secret, which the
    // heartbeats below then retire)
    admit("device-1").await;
    heartbeat().await;
    let mut monitor = monitor::Monitor::attach(&server.url()).await.unwrap();
    let ((), seen) = monitor
        .count(async {
            for _ in 0..FLOWS {
                heartbeat().await;
            }
        })
        .await
        .unwrap();
    let each = |c: &str| seen.top.get(c).copied();
    assert_eq!(
        (
            seen.in_scripts,
            [
                "WATCH", "HMGET", "TIME", "GET", "PTTL", "MULTI", "HSET", "ZADD", "EXEC"
            ]
            .map(each),
            seen.top_level(),
        ),
        (0, [Some(FLOWS); 9], 9 * FLOWS),
        "no script, no UNWATCH (no fall back to the script): {seen:?}"
    );
    // each admit of another device takes the one seat over; each of the same device, presenting the
    // secret its admit was handed, re-attaches
    let ((), seen) = monitor
        .count(async {
            for i in 0..FLOWS {
                let device = format!("device-{}", 2 + i / 2);
                let AdmitDecision::Admitted {
                    reattached,
                    superseded,
                    ..
                } = admit(&device).await
                else {
                    panic!("admitted")
                };
                assert_eq!((reattached, superseded.len()), (i % 2 == 1, 1 - i % 2));
            }
        })
        .await
        .unwrap();
    // the token lookup without a script: the generation and the ticket this node found for the token
    // before, in one MGET; then the admit: the seats' head, the ticket, the list of ended sessions'
    // length, the layout, clock and generation; the lease's fields; the transaction
    let each = |c: &str| seen.top.get(c).copied();
    let takeovers = FLOWS / 2;
    assert_eq!(
        (
            seen.in_scripts,
            [
                "MGET", "WATCH", "LLEN", "TIME", "MULTI", "ZADD", "HSET", "EXEC"
            ]
            .map(each),
            [
                each("GET"),
                each("HMGET"),
                each("RPUSH"),
                each("HDEL"),
                each("ZREM"),
            ],
            seen.top_level(),
        ),
        (
            0,
            [Some(FLOWS); 8],
            [
                Some(3 * FLOWS),
                Some(2 * FLOWS),
                Some(takeovers),
                Some(takeovers),
                Some(takeovers),
            ],
            // per admit 14 commands; per takeover the seat's end (SET, RPUSH, PEXPIRE, ZREM) and the
            // superseded lease's fields (HDEL); no door pass to use up (the show has no capacity)
            14 * FLOWS + 5 * takeovers,
        ),
        "no script, no UNWATCH (no fall back to the script): {seen:?}"
    );
    // a node that never looked the token up reads the token's index first
    let other = node(&server).await;
    let ((), seen) = monitor
        .count(async {
            let found = other.ticket_by_token(&t.ticket.token_hash).await.unwrap();
            assert_eq!(found.map(|f| f.id), Some(t.ticket.id.clone()));
            let stranger = SecretHasher::new(b"round-trip-key-0123456789abcdef!")
                .api_key_secret("no-such-token-00001");
            assert_eq!(other.ticket_by_token(&stranger).await.unwrap(), None);
        })
        .await
        .unwrap();
    assert_eq!(
        (
            seen.top_level(),
            seen.top.get("MGET").copied(),
            seen.top.get("GET").copied(),
            seen.in_scripts
        ),
        (3, Some(2), Some(1), 0),
        "{seen:?}"
    );
}

/// A takeover without a script uses up the ticket's pass through the show's door (`ZREM` in its
/// transaction) while the show has a capacity, as the admit script does; for a show without one, as this
/// node knows the show, it sends no `ZREM` for the door, and a pass left from a capacity taken away lapses
/// by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_takeover_uses_up_the_doors_pass_while_the_show_has_a_capacity() {
    let (server, store, t) = one_ticket("door-pass-token-0001").await;
    let s1 = t.ticket.terms.show_id.clone();
    let client = redis::Client::open(server.url()).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let passes = "usher-test:door:s1:passes";
    let ticket_id = t.ticket.id.as_str().to_owned();
    // the first play is the script's; the takeovers below are transactions
    admitted(&store, admit_request(&t, "device-1")).await;
    let mut monitor = monitor::Monitor::attach(&server.url()).await.unwrap();
    for (device, capacity, pass_left) in [("device-2", Some(10), false), ("device-3", None, true)] {
        let mut s = show("s1", 1, SharingPolicy::NewestWins);
        s.capacity = capacity;
        store.put_show(s).await.unwrap();
        assert_eq!(store.show(&s1).await.unwrap().unwrap().capacity, capacity);
        let _: i64 = redis::cmd("ZADD")
            .arg(passes)
            .arg(i64::MAX / 2)
            .arg(&ticket_id)
            .query_async(&mut con)
            .await
            .unwrap();
        let (decision, seen) = monitor
            .count(store.admit(admit_request(&t, device)))
            .await
            .unwrap();
        let AdmitDecision::Admitted { superseded, .. } = decision.unwrap() else {
            panic!("admitted")
        };
        assert_eq!(superseded.len(), 1);
        let score: Option<f64> = redis::cmd("ZSCORE")
            .arg(passes)
            .arg(&ticket_id)
            .query_async(&mut con)
            .await
            .unwrap();
        // the live set's ZREM of the superseded session, and the door's while it counts passes
        assert_eq!(
            (
                seen.in_scripts,
                seen.top.get("EXEC").copied(),
                seen.top.get("ZREM").copied(),
                score.is_some()
            ),
            (0, Some(1), Some(if pass_left { 1 } else { 2 }), pass_left),
            "capacity {capacity:?}: {seen:?}"
        );
    }
}

/// A renewal by fields, as a player makes it (each presenting the secret the one before handed out), reads
/// the generation and no ticket: the ticket's bounds come from the node's copy (`redis/cache.rs`
/// `BoundsCache`). A node that never read the ticket reads it once, then keeps it; its first renewal of
/// the session is the script's, which tells it the session's ticket, and the others are transactions
/// without a script (`redis/renewal.rs`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewal_by_fields_reads_no_ticket_and_a_node_reads_it_once() {
    const RENEWALS: usize = 20;
    let (server, admin, t) = one_ticket("bounds-token-0001").await;
    let session = admitted(&admin, admit_request(&t, "device-1")).await;
    let hasher = SecretHasher::new(b"bounds-test-key-0123456789abcdef");
    let mut current = usher_store::contract::seat_secret();
    let mut renew = async |store: &RedisStore| {
        let fresh = hasher.session_secret(&SessionId::generate().to_string());
        let answer = store
            .heartbeat(&session, presenting(&current, fresh))
            .await
            .unwrap();
        assert!(
            matches!(answer.decision, HeartbeatDecision::Renewed { .. }),
            "{answer:?}"
        );
        current = fresh;
        answer.ticket
    };
    // a node that has not read the ticket: its first renewal brings the bounds with one more read
    let viewer = node(&server).await;
    let mut monitor = monitor::Monitor::attach(&server.url()).await.unwrap();
    let (bounds, seen) = monitor.count(renew(&viewer)).await.unwrap();
    assert_eq!(bounds, Some(t.ticket.bounds()));
    assert_eq!(
        (seen.top.get("GET").copied(), seen.scripted.get("HGETALL")),
        (Some(1), None),
        "the step by fields (its script loaded first), then the ticket: {seen:?}"
    );
    let (all, seen) = monitor
        .count(async {
            let mut all = Vec::new();
            for _ in 0..RENEWALS {
                all.push(renew(&viewer).await);
            }
            all
        })
        .await
        .unwrap();
    assert!(all.iter().all(|b| *b == Some(t.ticket.bounds())), "{all:?}");
    assert_eq!(
        (
            seen.in_scripts,
            seen.top.get("GET").copied(),
            seen.top.get("HGETALL").copied(),
            seen.top.get("HSET").copied(),
            seen.top.get("EXEC").copied(),
        ),
        (0, Some(RENEWALS), None, Some(RENEWALS), Some(RENEWALS)),
        "each a transaction without a script (the node knows the session's ticket now), reading the \
         generation, writing by fields: {seen:?}"
    );
}

/// A Redis, a node on it, show `s1` (one device, newest wins) and one ticket of it registered.
async fn one_ticket(token: &str) -> (RedisServer, RedisStore, NewTicket) {
    one_ticket_of(token, 1).await
}

/// A Redis and a node, with show `s1` of `seats` seats.
async fn node_with_show(seats: u32) -> (RedisServer, RedisStore) {
    let server = RedisServer::start().expect("redis-server");
    let store = node(&server).await;
    store
        .put_show(show("s1", seats, SharingPolicy::NewestWins))
        .await
        .unwrap();
    (server, store)
}

/// A Redis, a node, and one ticket of a show of `seats` seats.
async fn one_ticket_of(token: &str, seats: u32) -> (RedisServer, RedisStore, NewTicket) {
    let (server, store) = node_with_show(seats).await;
    let t = ticket("s1", token, None);
    store.register_tickets(vec![t.clone()]).await.unwrap();
    (server, store, t)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_survives_an_emptied_script_cache() {
    // a restarted Redis (or SCRIPT FLUSH) has no scripts: the pipelined registration loads its script
    // and sends the batch again, and every ticket is registered once
    let (server, store, _first) = one_ticket("flushed-token-000001").await;
    let client = redis::Client::open(server.url()).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut con)
        .await
        .unwrap();
    // the first token again, from another registration (another id): a repeat
    let batch = vec![
        ticket("s1", "flushed-token-000001", None),
        ticket("s1", "flushed-token-000002", None),
        ticket("s1", "flushed-token-000003", None),
    ];
    let outcomes = store.register_tickets(batch).await.unwrap();
    assert!(
        matches!(
            outcomes[..],
            [
                usher_core::store::RegisterOutcome::Existing(_),
                usher_core::store::RegisterOutcome::Created(_),
                usher_core::store::RegisterOutcome::Created(_)
            ]
        ),
        "{outcomes:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forgotten_device_is_remembered_from_its_first_renewal() {
    // renewals by fields are replayed into the usage at the next whole read: a device the usage had
    // forgotten (here by an erasure) is remembered from the first of them, as one write per renewal would
    let (_server, store, t) = one_ticket("forgotten-token-00001").await;
    let session = admitted(&store, admit_request(&t, "dev-forgotten")).await;
    store.erase_personal_data(&t.ticket.id).await.unwrap();
    let mut renewals = Vec::new();
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_millis(5)).await;
        let answer = store
            .heartbeat(&session, usher_store::contract::renewal())
            .await
            .unwrap();
        let HeartbeatDecision::Renewed { expires_at } = answer.decision else {
            panic!("{answer:?}")
        };
        // admit_request's lease lasts 45 s: the renewal's time on Redis's clock
        renewals.push(expires_at.0 - 45_000);
    }
    let usage = store.ticket_activity(&t.ticket.id).await.unwrap().usage;
    let device = usage
        .devices
        .iter()
        .find(|d| d.device_id.as_str() == "dev-forgotten")
        .expect("the renewing device is remembered again");
    assert_eq!(device.first_seen.0, renewals[0], "{usage:?}");
    assert_eq!(device.last_seen.0, renewals[1], "{usage:?}");
    assert_eq!(usage.last_seen_at.map(|t| t.0), Some(renewals[1]));
}

/// Two players of one ticket (two seats) renew at once through two nodes: every renewal without a script
/// watches the same seats, so one node's write makes the other's `EXEC` fail, and that renewal is tried
/// once more, then goes to the script (`redis/renewal.rs`). Every renewal is answered as the player
/// expects, and each lease ends with the secret its player was last handed, the one before it as the
/// previous.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn renewals_racing_on_one_tickets_seats_each_renew_once() {
    const RENEWALS: usize = 300;
    let (server, _admin, t) = one_ticket_of("racing-renewals-token-01", 2).await;
    let seat = |device: &str| {
        let mut req = admit_request(&t, device);
        req.rules.max_devices = 2;
        req
    };
    let nodes = [Arc::new(node(&server).await), Arc::new(node(&server).await)];
    let sessions = [
        admitted(&nodes[0], seat("device-1")).await,
        admitted(&nodes[1], seat("device-2")).await,
    ];
    let mut monitor = monitor::Monitor::attach(&server.url()).await.unwrap();
    let (lasts, seen) = monitor
        .count(futures::future::join_all(
            nodes
                .iter()
                .zip(&sessions)
                .enumerate()
                .map(|(n, (store, session))| async move {
                    let hasher = SecretHasher::new(
                        format!("racing-renewals-key-{n}-0123456789abcdef").as_bytes(),
                    );
                    let (mut previous, mut current) = (None, usher_store::contract::seat_secret());
                    for _ in 0..RENEWALS {
                        let fresh = hasher.session_secret(&SessionId::generate().to_string());
                        let answer = store
                            .heartbeat(session, presenting(&current, fresh))
                            .await
                            .unwrap();
                        assert!(
                            matches!(answer.decision, HeartbeatDecision::Renewed { .. }),
                            "{answer:?}"
                        );
                        (previous, current) = (Some(current), fresh);
                    }
                    (previous.unwrap(), current)
                }),
        ))
        .await
        .unwrap();
    for (session, (previous, last)) in sessions.iter().zip(lasts) {
        let hot = seat_field(&server, t.ticket.id.as_str(), &format!("h:{session}"))
            .await
            .unwrap();
        let parts: Vec<&str> = hot.split(',').collect();
        assert_eq!(
            (parts[3], parts[4]),
            (previous.to_hex().as_str(), last.to_hex().as_str()),
            "{hot}"
        );
    }
    let count = |c: &str| seen.top.get(c).copied().unwrap_or(0);
    let (exec, scripts) = (count("EXEC"), count("EVALSHA"));
    assert!(
        exec >= 2 * RENEWALS,
        "every renewal tried its transaction: {seen:?}"
    );
    // a transaction that met the other node's write is tried once more, then the script decides (how
    // often is up to the race)
    eprintln!(
        "{} transactions tried again, {scripts} renewals decided by the script",
        exec - 2 * RENEWALS
    );
}

/// Many players renewing through one node at once share transactions (`redis/renewal.rs`: a worker takes
/// every renewal waiting, one per ticket): fewer `EXEC`s than renewals, and no script while nobody else
/// writes those tickets. Two seats of one ticket renewed at once both renew: the second waits for the
/// worker's next transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn renewals_waiting_together_share_a_transaction() {
    const ROUNDS: usize = 10;
    let (server, store) = node_with_show(2).await;
    let mut sessions = Vec::new();
    // 40 tickets played on one seat each, 4 on both their seats
    for (n, seats) in std::iter::repeat_n(1, 40)
        .chain(std::iter::repeat_n(2, 4))
        .enumerate()
    {
        let t = ticket("s1", &format!("batched-renewals-token-{n:04}"), None);
        store.register_tickets(vec![t.clone()]).await.unwrap();
        for device in ["device-1", "device-2"].into_iter().take(seats) {
            let mut req = admit_request(&t, device);
            req.rules.max_devices = 2;
            sessions.push(admitted(&store, req).await);
        }
    }
    let players = sessions.len();
    let hasher = SecretHasher::new(b"batched-renewals-key-0123456789ab");
    let mut current = vec![usher_store::contract::seat_secret(); players];
    let mut monitor = monitor::Monitor::attach(&server.url()).await.unwrap();
    let ((), seen) = monitor
        .count(async {
            for _ in 0..ROUNDS {
                let fresh: Vec<_> = (0..players)
                    .map(|_| hasher.session_secret(&SessionId::generate().to_string()))
                    .collect();
                let answers = futures::future::join_all(
                    sessions
                        .iter()
                        .zip(current.iter().zip(&fresh))
                        .map(|(session, (c, f))| store.heartbeat(session, presenting(c, *f))),
                )
                .await;
                for answer in answers {
                    let answer = answer.unwrap();
                    assert!(
                        matches!(answer.decision, HeartbeatDecision::Renewed { .. }),
                        "{answer:?}"
                    );
                }
                current = fresh;
            }
        })
        .await
        .unwrap();
    let count = |c: &str| seen.top.get(c).copied().unwrap_or(0);
    let renewals = players * ROUNDS;
    assert_eq!(
        (count("EVALSHA"), seen.in_scripts),
        (0, 0),
        "nobody else wrote: no script: {seen:?}"
    );
    assert!(
        count("EXEC") < renewals / 2,
        "renewals waiting together share a transaction: {seen:?}"
    );
    eprintln!("{renewals} renewals in {} transactions", count("EXEC"));
}

/// A crowd presenting one session's id with guessed secrets, all at once through one node, does not hold up
/// the other sessions' renewals: one guess per transaction, a few carried to the next, the rest left to
/// the script (`redis/renewal.rs`). Every guess is refused, and every other session renews.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crowd_guessing_one_sessions_secret_holds_up_no_other_renewal() {
    const COPIES: usize = 300;
    const OTHERS: usize = 24;
    let (server, store) = node_with_show(1).await;
    let mut sessions = Vec::new();
    for n in 0..=OTHERS {
        let t = ticket("s1", &format!("crowded-renewals-token-{n:04}"), None);
        store.register_tickets(vec![t.clone()]).await.unwrap();
        sessions.push(admitted(&store, admit_request(&t, "device-1")).await);
    }
    let shared = sessions.pop().unwrap();
    let hasher = SecretHasher::new(b"crowded-renewals-key-0123456789ab");
    let seat = usher_store::contract::seat_secret();
    let mut monitor = monitor::Monitor::attach(&server.url()).await.unwrap();
    let ((copies, others), seen) = monitor
        .count(async {
            let copies = futures::future::join_all((0..COPIES).map(|_| {
                let guess = hasher.session_secret(&SessionId::generate().to_string());
                let fresh = hasher.session_secret(&SessionId::generate().to_string());
                let store = &store;
                let shared = &shared;
                async move {
                    store
                        .heartbeat(shared, presenting(&guess, fresh))
                        .await
                        .unwrap()
                        .decision
                }
            }));
            let others = futures::future::join_all(sessions.iter().map(|session| {
                let fresh = hasher.session_secret(&SessionId::generate().to_string());
                let store = &store;
                async move {
                    store
                        .heartbeat(session, presenting(&seat, fresh))
                        .await
                        .unwrap()
                        .decision
                }
            }));
            futures::future::join(copies, others).await
        })
        .await
        .unwrap();
    assert!(
        others
            .iter()
            .all(|d| matches!(d, HeartbeatDecision::Renewed { .. })),
        "{others:?}"
    );
    assert!(
        copies
            .iter()
            .all(|d| matches!(d, HeartbeatDecision::WrongSecret)),
        "{copies:?}"
    );
    // carried without a bound, each guess would wait for a transaction of its own, one after another
    let (watched, scripts) = (
        seen.top.get("WATCH").copied().unwrap_or(0),
        seen.top.get("EVALSHA").copied().unwrap_or(0),
    );
    assert!(
        watched < COPIES / 2 && scripts > COPIES / 2,
        "guesses past the carried ones went to the script: {seen:?}"
    );
    eprintln!("{watched} transactions, {scripts} scripts");
}

/// A renewal by fields writes two commands (in its transaction, `redis/renewal.rs`): the lease's fields
/// with the ticket's version in one HSET, and the live set. The session's index (which must outlive the lease by the hour its end is
/// remembered) is only read, and rewritten once its time to live runs short of that.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewal_writes_the_session_index_only_when_it_runs_short() {
    const KEEP_MS: i64 = 45_000 + 3_600_000;
    let (server, store, t) = one_ticket("renewal-writes-token-0001").await;
    let id = t.ticket.id.as_str().to_string();
    let session = admitted(&store, admit_request(&t, "dev-renewing")).await;
    let client = redis::Client::open(server.url()).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let index = format!("usher-test:session:{session}");
    let hasher = SecretHasher::new(b"renewal-writes-key-0123456789abcdef");
    // as a player does: each heartbeat presents the secret the last one handed out
    let mut current = usher_store::contract::seat_secret();
    let mut monitor = monitor::Monitor::attach(&server.url()).await.unwrap();
    let mut writes = Vec::new();
    for short in [false, true, false] {
        if short {
            let _: i64 = redis::cmd("PEXPIRE")
                .arg(&index)
                .arg(KEEP_MS - 1_000)
                .query_async(&mut con)
                .await
                .unwrap();
        }
        let v_before: i64 = seat_field(&server, &id, "v")
            .await
            .unwrap()
            .parse()
            .unwrap();
        let fresh = hasher.session_secret(&SessionId::generate().to_string());
        let (answer, seen) = monitor
            .count(store.heartbeat(&session, presenting(&current, fresh)))
            .await
            .unwrap();
        let answer = answer.unwrap();
        assert!(
            matches!(answer.decision, HeartbeatDecision::Renewed { .. }),
            "{answer:?}"
        );
        current = fresh;
        let v_after: i64 = seat_field(&server, &id, "v")
            .await
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(v_after, v_before + 1, "every renewal moves the version");
        let pttl: i64 = redis::cmd("PTTL")
            .arg(&index)
            .query_async(&mut con)
            .await
            .unwrap();
        assert!(
            pttl > KEEP_MS - 2_000,
            "the index outlives the lease by an hour: {pttl}"
        );
        let wrote: Vec<(String, usize)> = seen
            .top
            .into_iter()
            .filter(|(c, _)| {
                ["HSET", "HINCRBY", "ZADD", "SET", "DEL", "HDEL"].contains(&c.as_str())
            })
            .collect();
        if short {
            assert!(
                pttl > KEEP_MS + 250_000,
                "rewritten with room to spare: {pttl}"
            );
        }
        writes.push(wrote);
    }
    let two = vec![("HSET".to_string(), 1), ("ZADD".to_string(), 1)];
    let three = vec![
        ("HSET".to_string(), 1),
        ("SET".to_string(), 1),
        ("ZADD".to_string(), 1),
    ];
    assert_eq!(writes, vec![two.clone(), three, two]);
}

/// The fields of a ticket's seats hash whose names start with `tag`.
async fn seat_fields(server: &RedisServer, ticket: &str, tag: &str) -> Vec<String> {
    let client = redis::Client::open(server.url()).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("HKEYS")
        .arg(format!("usher-test:seats:{ticket}"))
        .query_async(&mut con)
        .await
        .unwrap();
    keys.into_iter().filter(|k| k.starts_with(tag)).collect()
}

async fn seat_field(server: &RedisServer, ticket: &str, field: &str) -> Option<String> {
    let client = redis::Client::open(server.url()).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    redis::cmd("HGET")
        .arg(format!("usher-test:seats:{ticket}"))
        .arg(field)
        .query_async(&mut con)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admit_writes_no_usage_document_and_the_next_read_replays_what_it_saw() {
    // schema 3: once a ticket has been played, an admit writes only the leases it adds or ends and one
    // j: field (what it saw for the usage), never the usage document; a renewal before it keeps its
    // place as a j: field too; the next whole read replays them in order
    let (server, store, t) = one_ticket("by-fields-token-00001").await;
    let id = t.ticket.id.as_str().to_string();
    let first = admitted(&store, admit_request(&t, "dev-first")).await;
    assert_eq!(
        seat_field(&server, &id, "played").await.as_deref(),
        Some("1")
    );
    renewed(&store, &first).await;
    assert_eq!(seat_fields(&server, &id, "t:").await.len(), 1);
    let doc = seat_field(&server, &id, "doc").await;

    let mut req = admit_request(&t, "dev-second");
    req.country = Some(usher_core::geo::Country::parse("DE").unwrap());
    req.address = Some("192.0.2.7".parse().unwrap());
    let AdmitDecision::Admitted {
        session_id: second,
        superseded,
        first_play,
        ..
    } = store.admit(req).await.unwrap()
    else {
        panic!("newest wins")
    };
    assert_eq!(superseded, vec![first.clone()]);
    assert!(!first_play);
    assert_eq!(
        seat_field(&server, &id, "doc").await,
        doc,
        "the usage document is not written"
    );
    assert_eq!(
        seat_fields(&server, &id, "j:").await.len(),
        2,
        "a renewal and an admit"
    );
    assert_eq!(seat_field(&server, &id, "jn").await.as_deref(), Some("2"));
    assert_eq!(
        seat_field(&server, &id, "ls").await,
        Some(second.to_string())
    );
    assert!(seat_fields(&server, &id, "t:").await.is_empty());
    assert_eq!(
        seat_fields(&server, &id, "l:").await,
        vec![format!("l:{second}")]
    );

    let activity = store.ticket_activity(&t.ticket.id).await.unwrap();
    let usage = &activity.usage;
    assert_eq!(usage.sessions, 2);
    let devices: Vec<_> = usage.devices.iter().map(|d| d.device_id.as_str()).collect();
    assert_eq!(devices, ["dev-first", "dev-second"]);
    assert_eq!(usage.countries.len(), 1);
    assert_eq!(usage.countries[0].country.as_str(), "DE");
    assert_eq!(usage.addresses.len(), 1);
    assert_eq!(usage.last_seen_at, Some(usage.devices[1].last_seen));
    assert_eq!(activity.live.len(), 1);
    assert_eq!(activity.live[0].session_id, second);
    // the superseded session says so, as the whole step would have recorded it
    let gone = store
        .heartbeat(&first, usher_store::contract::renewal())
        .await
        .unwrap();
    assert!(
        matches!(gone.decision, HeartbeatDecision::Ended(_)),
        "{gone:?}"
    );

    // the journal is bounded: past 64 fields an admit writes the whole hash, which replays them
    for i in 0..80 {
        admitted(&store, admit_request(&t, &format!("dev-many-{i:02}"))).await;
        assert!(seat_fields(&server, &id, "j:").await.len() <= 64);
    }
    let usage = store.ticket_activity(&t.ticket.id).await.unwrap().usage;
    assert_eq!(usage.sessions, 82);
    assert_eq!(usage.devices.len(), usher_core::lease::DEVICE_MEMORY);
    assert_eq!(
        usage.devices.last().unwrap().device_id.as_str(),
        "dev-many-79"
    );
    assert_eq!(usage.devices[0].device_id.as_str(), "dev-many-16");
}

/// A retention pass is one for every node: of two nodes asking within the rest, one gets it; once the
/// rest lapses (or its node was lost mid-pass), the next node to ask does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_node_of_many_claims_each_retention_pass() {
    let server = RedisServer::start().expect("redis-server");
    let (a, b) = (node(&server).await, node(&server).await);
    let rest = Duration::from_millis(300);
    let (x, y) = tokio::join!(a.claim_retention_pass(rest), b.claim_retention_pass(rest));
    let mut claims = [x.unwrap(), y.unwrap()];
    claims.sort();
    assert_eq!(claims, [false, true], "one of the two nodes");
    assert!(!a.claim_retention_pass(rest).await.unwrap());
    tokio::time::sleep(rest + Duration::from_millis(100)).await;
    assert!(
        b.claim_retention_pass(rest).await.unwrap(),
        "the rest lapsed"
    );
    assert!(!a.claim_retention_pass(rest).await.unwrap());
}

/// The origin's lease check (`live_session`) on a session whose ticket the node knows (it admitted,
/// renewed or already checked it) is one `HMGET` of the seats' fields, no script; a node that does not
/// know it runs the script once. Both answer as the lease stands; the node that ends it sees the end at
/// once, the other as Redis's invalidation reaches it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_known_sessions_lease_check_is_one_hmget_and_sees_the_end_at_once() {
    let (server, a, t) = one_ticket("lease-check-token-00001").await;
    let b = node(&server).await;
    let session = admitted(&a, admit_request(&t, "dev-checked")).await;
    // a session no node has seen: the script (loaded into Redis here, so that the count below is of
    // the checks alone), and no answer
    assert!(
        b.live_session(&SessionId::generate())
            .await
            .unwrap()
            .is_none()
    );
    let mut monitor = monitor::Monitor::attach(&server.url()).await.unwrap();
    let ((on_a, first_on_b, then_on_b), seen) = monitor
        .count(async {
            (
                a.live_session(&session).await.unwrap(),
                b.live_session(&session).await.unwrap(),
                b.live_session(&session).await.unwrap(),
            )
        })
        .await
        .unwrap();
    let live = on_a.expect("the admitting node sees the lease");
    assert_eq!(
        (live.session_id.as_str(), live.ticket_id.as_str()),
        (session.as_str(), t.ticket.id.as_str())
    );
    assert_eq!(live.show_id.as_str(), "s1");
    assert_eq!(live.device_id.as_str(), "dev-checked");
    for other in [first_on_b, then_on_b] {
        let other = other.expect("the other node sees the lease");
        assert_eq!(
            (other.ticket_id, other.expires_at, other.created_at),
            (live.ticket_id.clone(), live.expires_at, live.created_at)
        );
    }
    let count = |c: &str| seen.top.get(c).copied().unwrap_or(0);
    assert_eq!(
        (count("HMGET"), count("EVALSHA"), seen.top_level()),
        (2, 1, 3),
        "the admitting node and the other's second check read fields; the other's first ran the \
         script: {seen:?}"
    );

    // ended on the admitting node: it refuses at its next check, the other as Redis's invalidation
    // reaches it (what it kept of the seats is dropped then), neither by the script
    tracking(&server, 2).await;
    assert!(kept_check(&mut monitor, &b, &session).await.is_some());
    assert!(kept_check(&mut monitor, &a, &session).await.is_some());
    ended_by_admin(&a, &session).await;
    let ((on_a, on_b), seen) = monitor
        .count(async {
            (
                a.live_session(&session).await.unwrap(),
                checked_until(&b, &session, false).await,
            )
        })
        .await
        .unwrap();
    assert!(on_a.is_none(), "{on_a:?}");
    assert!(on_b < Duration::from_secs(1), "{on_b:?}");
    assert_eq!(seen.top.get("EVALSHA"), None, "{seen:?}");

    // a revoked ticket's session: refused by the revoking node at once, by the other as above
    let t2 = ticket("s1", "lease-check-token-00002", None);
    a.register_tickets(vec![t2.clone()]).await.unwrap();
    let s2 = admitted(&a, admit_request(&t2, "dev-revoked")).await;
    assert!(kept_check(&mut monitor, &b, &s2).await.is_some());
    assert!(kept_check(&mut monitor, &a, &s2).await.is_some());
    assert!(a.revoke_ticket(&t2.ticket.id).await.unwrap().is_some());
    assert!(a.live_session(&s2).await.unwrap().is_none());
    assert!(checked_until(&b, &s2, false).await < Duration::from_secs(1));
}

/// Ends `session` as an admin does, through `store`.
async fn ended_by_admin(store: &RedisStore, session: &SessionId) {
    let at = store.now();
    assert!(
        store
            .end_session(session, usher_core::lease::EndReason::EndedByAdmin { at })
            .await
            .unwrap()
    );
}

/// Asks `store`'s lease check of `session` until it answers `live` (a lease or none), for up to 2 s:
/// how long that took (2 s when it never did). Another node's change reaches a node's kept answers as
/// Redis's invalidation arrives.
async fn checked_until(store: &RedisStore, session: &SessionId, live: bool) -> Duration {
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_secs(2) {
        if store.live_session(session).await.unwrap().is_some() == live {
            return start.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Duration::from_secs(2)
}

/// Checks `session` on `store` until a check sends nothing to Redis (its answer was kept), for up to
/// 5 s: that answer.
async fn kept_check(
    monitor: &mut monitor::Monitor,
    store: &RedisStore,
    session: &SessionId,
) -> Option<usher_core::store::SessionInfo> {
    for _ in 0..100 {
        let (answer, seen) = monitor.count(store.live_session(session)).await.unwrap();
        if seen.top_level() == 0 {
            return answer.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no check of {session:?} was answered from what the node kept");
}

/// The ids of the connections to `server` with tracking on (`CLIENT LIST`'s flag `t`).
async fn tracking_clients(server: &RedisServer) -> Vec<String> {
    let client = redis::Client::open(server.url()).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(&mut con)
        .await
        .unwrap();
    list.lines()
        .filter(|line| {
            line.split(' ')
                .any(|f| f.strip_prefix("flags=").is_some_and(|f| f.contains('t')))
        })
        .filter_map(|line| line.split(' ').find_map(|f| f.strip_prefix("id=")))
        .map(str::to_owned)
        .collect()
}

/// Waits (up to 5 s) until `n` connections to `server` track their reads.
async fn tracking(server: &RedisServer, n: usize) -> Vec<String> {
    for _ in 0..500 {
        let ids = tracking_clients(server).await;
        if ids.len() >= n {
            return ids;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{n} tracking connections never came");
}

/// On one Redis, a node keeps its lease checks' answers (`redis/tracked.rs`): a check the node has
/// answered since the seats last changed sends nothing to Redis. Any write of the seats, by any node,
/// drops what was kept: a renewal (the next check reads the later expiry), an end (refused), a takeover
/// by an admit on another node. A tracked connection that is lost takes what it kept with it: a change
/// made while no connection tracked the seats is seen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_check_is_kept_until_redis_says_the_seats_changed() {
    let (server, a, t) = one_ticket("tracked-check-token-0001").await;
    let b = node(&server).await;
    let session = admitted(&a, admit_request(&t, "dev-tracked")).await;
    tracking(&server, 2).await;
    // b learns the session's ticket (the script), then reads its fields (tracked) and keeps them; a
    // likewise
    let first = b.live_session(&session).await.unwrap().expect("live");
    let mut monitor = monitor::Monitor::attach(&server.url()).await.unwrap();
    assert_eq!(
        kept_check(&mut monitor, &b, &session).await,
        Some(first.clone())
    );
    assert_eq!(
        kept_check(&mut monitor, &a, &session).await,
        Some(first.clone())
    );
    let ((), seen) = monitor
        .count(async {
            for _ in 0..3 {
                assert_eq!(b.live_session(&session).await.unwrap(), Some(first.clone()));
                assert_eq!(a.live_session(&session).await.unwrap(), Some(first.clone()));
            }
        })
        .await
        .unwrap();
    assert_eq!(seen.top_level(), 0, "every check kept: {seen:?}");

    // a renewal on a: both see the later expiry, a (which wrote) at once, b by Redis's invalidation
    tokio::time::sleep(Duration::from_millis(5)).await;
    renewed(&a, &session).await;
    let renewed_until = async {
        let start = std::time::Instant::now();
        loop {
            let now = b.live_session(&session).await.unwrap().expect("live");
            if now.expires_at > first.expires_at || start.elapsed() > Duration::from_secs(2) {
                return (now, start.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    };
    let (later, took) = renewed_until.await;
    assert!(
        later.expires_at > first.expires_at,
        "{later:?} after {took:?}"
    );
    assert!(took < Duration::from_secs(1), "{took:?}");
    assert_eq!(a.live_session(&session).await.unwrap(), Some(later));

    // a takeover by an admit on b: b (which wrote) refuses the old session at once, a as Redis says so
    let taker = admitted(&b, admit_request(&t, "dev-taker")).await;
    assert!(b.live_session(&session).await.unwrap().is_none());
    assert!(checked_until(&a, &session, false).await < Duration::from_secs(1));
    assert!(checked_until(&a, &taker, true).await < Duration::from_secs(1));

    // b's tracked connection killed: what it kept goes with it; a change made before b tracks the seats
    // again is seen by b's next check
    assert!(b.live_session(&taker).await.unwrap().is_some());
    let before = tracking(&server, 2).await;
    let client = redis::Client::open(server.url()).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    for id in &before {
        let _: redis::Value = redis::cmd("CLIENT")
            .arg("KILL")
            .arg("ID")
            .arg(id)
            .query_async(&mut con)
            .await
            .unwrap();
    }
    ended_by_admin(&a, &taker).await;
    assert!(checked_until(&b, &taker, false).await < Duration::from_secs(1));
    let after = tracking(&server, 2).await;
    assert!(
        after.iter().all(|id| !before.contains(id)),
        "{before:?} {after:?}"
    );
    assert!(b.live_session(&taker).await.unwrap().is_none());
}

/// On a database stamped schema 1 (every seats one JSON string), a known session's lease check meets
/// `WRONGTYPE` once and takes the script; the node's next checks go to the script at once. Both answer
/// the lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_check_on_seats_kept_as_one_document_takes_the_script() {
    let server = RedisServer::start().expect("redis-server");
    stamp(&server, "1").await;
    let store = node(&server).await;
    store
        .put_show(show("s1", 1, SharingPolicy::NewestWins))
        .await
        .unwrap();
    let t = ticket("s1", "document-seats-token-0001", None);
    store.register_tickets(vec![t.clone()]).await.unwrap();
    let session = admitted(&store, admit_request(&t, "dev-document")).await;
    assert_eq!(seats_type(&server, t.ticket.id.as_str()).await, "string");
    // the script loaded into Redis, so that the count below is of the checks alone
    assert!(
        store
            .live_session(&SessionId::generate())
            .await
            .unwrap()
            .is_none()
    );
    let mut monitor = monitor::Monitor::attach(&server.url()).await.unwrap();
    let (answers, seen) = monitor
        .count(async {
            [
                store.live_session(&session).await.unwrap(),
                store.live_session(&session).await.unwrap(),
            ]
        })
        .await
        .unwrap();
    for answer in answers {
        let live = answer.expect("the lease is live");
        assert_eq!(
            (live.session_id.as_str(), live.ticket_id.as_str()),
            (session.as_str(), t.ticket.id.as_str())
        );
    }
    let count = |c: &str| seen.top.get(c).copied().unwrap_or(0);
    assert_eq!(
        (count("HMGET"), count("EVALSHA")),
        (1, 2),
        "one HMGET met the document, then the script: {seen:?}"
    );
}
