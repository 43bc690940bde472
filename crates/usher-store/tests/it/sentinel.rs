//! Fail-over under Redis Sentinel, all on loopback: one master, one replica, three sentinels. The master is
//! killed; the store follows the new master without a restart, admits resume within a bounded time (printed),
//! and every ticket acknowledged with `wait_replicas = 1` before the kill is still there. While Sentinel has
//! no master to name, a server answering at the old master's address as a replica (the old master back
//! with stale data) is never read from. And `wait_replicas` on one master without Sentinel: a write is
//! acknowledged only once the replica has it, and while one waits for a hanging replica, admits and
//! heartbeats of the same node are answered at once.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use usher_core::lease::{AdmitDecision, HeartbeatDecision, SeatRules};
use usher_core::show::SharingPolicy;
use usher_core::store::{AdmitRequest, RegisterOutcome, Store};
use usher_store::contract;
use usher_store::redis::{RedisConfig, RedisStore, SentinelConfig};

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn spawn(program: &str, args: &[String]) -> Proc {
    Proc(
        Command::new(program)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{program} is required for this test (apt-get install -y redis-server redis-sentinel): {e}")),
    )
}

/// `redis-server`'s arguments for a node on loopback at `port`, persistence off, files in `dir`.
fn server_args(port: u16, dir: &std::path::Path) -> Vec<String> {
    vec![
        "--bind".into(),
        "127.0.0.1".into(),
        "--port".into(),
        port.to_string(),
        "--save".into(),
        String::new(),
        "--appendonly".into(),
        "no".into(),
        "--dir".into(),
        dir.display().to_string(),
    ]
}

fn cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .arg("-p")
        .arg(port.to_string())
        .args(args)
        .output()
        .expect("redis-cli");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn wait_for(what: &str, deadline: Duration, mut ok: impl FnMut() -> bool) {
    let end = Instant::now() + deadline;
    while !ok() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_store_follows_a_sentinel_failover() {
    let dir = tempfile::tempdir().unwrap();
    let (pm, pr) = (free_port(), free_port());
    let base = |port: u16| server_args(port, dir.path());
    let mut master = Some(spawn("redis-server", &base(pm)));
    let mut replica_args = base(pr);
    replica_args.extend(["--replicaof".into(), "127.0.0.1".into(), pm.to_string()]);
    let _replica = spawn("redis-server", &replica_args);
    wait_for("the replica to sync", Duration::from_secs(15), || {
        cli(pm, &["INFO", "replication"]).contains("state=online")
    });
    let mut sentinels = Vec::new();
    let mut addresses = Vec::new();
    for i in 0..3 {
        let port = free_port();
        let conf = dir.path().join(format!("sentinel-{i}.conf"));
        std::fs::write(
            &conf,
            format!(
                "port {port}\nbind 127.0.0.1\ndir {}\nsentinel monitor usher-master 127.0.0.1 {pm} 2\n\
                 sentinel down-after-milliseconds usher-master 1000\nsentinel failover-timeout usher-master 5000\n\
                 sentinel parallel-syncs usher-master 1\n",
                dir.path().display()
            ),
        )
        .unwrap();
        sentinels.push(spawn("redis-sentinel", &[conf.display().to_string()]));
        addresses.push(format!("127.0.0.1:{port}"));
    }
    let first_sentinel: u16 = addresses[0].rsplit(':').next().unwrap().parse().unwrap();
    wait_for(
        "the sentinels to see the replica",
        Duration::from_secs(15),
        || cli(first_sentinel, &["SENTINEL", "replicas", "usher-master"]).contains(&pr.to_string()),
    );

    let store = RedisStore::connect(RedisConfig {
        url: "redis://127.0.0.1".into(),
        key_prefix: "failover:".into(),
        connect_timeout: Duration::from_millis(500),
        response_timeout: Duration::from_millis(1500),
        wait_replicas: 1,
        wait_timeout: Duration::from_millis(1000),
        sentinel: Some(SentinelConfig {
            master_name: "usher-master".into(),
            addresses,
        }),
    })
    .await
    .expect("connect through sentinel");
    store
        .put_show(contract::show("s1", 1, SharingPolicy::NewestWins))
        .await
        .unwrap();
    let batch: Vec<_> = (0..200)
        .map(|i| contract::ticket("s1", &format!("failover-token-{i:06}"), None))
        .collect();
    let acknowledged: Vec<_> = store
        .register_tickets(batch)
        .await
        .expect("registration acknowledged by the replica")
        .into_iter()
        .map(|o| match o {
            RegisterOutcome::Created(t) => t,
            other => panic!("{other:?}"),
        })
        .collect();

    let req_of = |t: usize, dev: &str| AdmitRequest {
        ticket_id: acknowledged[t].id.clone(),
        show_id: acknowledged[t].terms.show_id.clone(),
        bounds: acknowledged[t].bounds(),
        device_id: usher_core::ids::DeviceId::parse(dev).unwrap(),
        device_label: dev.into(),
        country: None,
        address: None,
        presented: None,
        fresh: usher_store::contract::seat_secret(),
        rules: SeatRules {
            max_devices: 1,
            policy: SharingPolicy::NewestWins,
            ttl_ms: 45_000,
        },
    };
    let req = |dev: &str| req_of(0, dev);
    // a session whose lease checks the node keeps (`redis/tracked.rs`): none may be answered from the
    // impostor below
    let watched = match store.admit(req_of(1, "device-watched")).await.unwrap() {
        AdmitDecision::Admitted { session_id, .. } => session_id,
        other => panic!("{other:?}"),
    };
    for _ in 0..3 {
        assert!(store.live_session(&watched).await.unwrap().is_some());
    }

    drop(master.take()); // SIGKILL the master
    let killed = Instant::now();
    // the old master's address answers again at once, as a replica with none of the data (of a master
    // that does not exist): the store must not read from it, though its connection would reconnect there
    let mut impostor_args = base(pm);
    impostor_args.extend(["--replicaof".into(), "127.0.0.1".into(), "1".into()]);
    let impostor = spawn("redis-server", &impostor_args);
    let (mut stale, mut unavailable) = (0, 0);
    while killed.elapsed() < Duration::from_secs(2) {
        match store.ticket(&acknowledged[0].id).await {
            Ok(Some(_)) => panic!("read a ticket while Sentinel names no master"),
            Ok(None) => stale += 1,
            Err(_) => unavailable += 1,
        }
        // the impostor has no lease: a check that reads it says "none"
        if let Ok(None) = store.live_session(&watched).await {
            stale += 1;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        stale, 0,
        "an acknowledged ticket read as missing {stale} times from a replica at the old master's address \
         ({unavailable} reads were refused as unavailable)"
    );
    // now the old master's address is dead: Sentinel fails over to the replica
    drop(impostor);
    let mut failures = 0;
    loop {
        match store.admit(req("device-after-failover")).await {
            Ok(AdmitDecision::Admitted { .. }) => break,
            Ok(other) => panic!("{other:?}"),
            Err(_) => failures += 1,
        }
        assert!(
            killed.elapsed() < Duration::from_secs(60),
            "admits did not resume within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let window = killed.elapsed();
    eprintln!(
        "fail-over: admits resumed {window:?} after the master was killed ({failures} refused meanwhile)"
    );
    for t in &acknowledged {
        assert_eq!(
            store.ticket(&t.id).await.unwrap().as_ref(),
            Some(t),
            "an acknowledged ticket was lost"
        );
    }
    drop(sentinels);
}

/// `wait_replicas = 1` on one master with one replica (no Sentinel): a registration is acknowledged once
/// the replica has it, refused (503's `Unavailable`) while the replica hangs, and acknowledged again once
/// it resumes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_replicas_refuses_a_write_while_the_replica_hangs_and_stalls_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let (pm, pr) = (free_port(), free_port());
    let base = |port: u16| server_args(port, dir.path());
    let _master = spawn("redis-server", &base(pm));
    let mut replica_args = base(pr);
    replica_args.extend(["--replicaof".into(), "127.0.0.1".into(), pm.to_string()]);
    let replica = spawn("redis-server", &replica_args);
    wait_for("the replica to sync", Duration::from_secs(15), || {
        cli(pm, &["INFO", "replication"]).contains("state=online")
    });
    let store = RedisStore::connect(RedisConfig {
        url: format!("redis://127.0.0.1:{pm}"),
        key_prefix: "wait:".into(),
        connect_timeout: Duration::from_millis(500),
        response_timeout: Duration::from_secs(3),
        wait_replicas: 1,
        wait_timeout: Duration::from_millis(1000),
        sentinel: None,
    })
    .await
    .expect("connect");
    store
        .put_show(contract::show("s1", 1, SharingPolicy::NewestWins))
        .await
        .unwrap();
    let keys = |port: u16| -> u64 { cli(port, &["DBSIZE"]).trim().parse().unwrap() };
    let first = match &store
        .register_tickets(vec![contract::ticket("s1", "wait-token-first-one", None)])
        .await
        .expect("acknowledged by the replica")[..]
    {
        [RegisterOutcome::Created(t)] => t.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        keys(pr),
        keys(pm),
        "the acknowledged write is on the replica"
    );

    let freeze = |signal: &str| {
        let status = Command::new("kill")
            .arg(signal)
            .arg(replica.0.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    };
    freeze("-STOP");
    let held = keys(pm);
    // while the registration's WAIT hangs, the node's lease steps go on: WAIT blocks the connection it
    // is sent on, and the writes that wait have their own
    let start = Instant::now();
    let (refused, others_done) = tokio::join!(
        async {
            let r = store
                .register_tickets(vec![contract::ticket("s1", "wait-token-frozen", None)])
                .await;
            (r, start.elapsed())
        },
        async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let admitted = store
                .admit(AdmitRequest {
                    ticket_id: first.id.clone(),
                    show_id: first.terms.show_id.clone(),
                    bounds: first.bounds(),
                    device_id: usher_core::ids::DeviceId::parse("device-while-frozen").unwrap(),
                    device_label: "device-while-frozen".into(),
                    country: None,
                    address: None,
                    presented: None,
                    fresh: contract::seat_secret(),
                    rules: SeatRules {
                        max_devices: 1,
                        policy: SharingPolicy::NewestWins,
                        ttl_ms: 45_000,
                    },
                })
                .await
                .expect("admit while the replica hangs");
            let AdmitDecision::Admitted { session_id, .. } = admitted else {
                panic!("{admitted:?}")
            };
            let renewed = store
                .heartbeat(&session_id, contract::renewal())
                .await
                .expect("heartbeat while the replica hangs");
            assert!(
                matches!(renewed.decision, HeartbeatDecision::Renewed { .. }),
                "{renewed:?}"
            );
            start.elapsed()
        }
    );
    let (refused, waited) = refused;
    freeze("-CONT");
    assert!(
        others_done < Duration::from_millis(600) && waited >= Duration::from_millis(900),
        "the admit and heartbeat sent 100 ms into a registration's WAIT were answered {others_done:?} \
         after it began; the WAIT (timeout 1 s) took {waited:?}: they queued behind it"
    );
    let err = refused.expect_err("a registration was acknowledged while the replica hung");
    assert!(
        matches!(err, usher_core::store::StoreError::Unavailable(_))
            && err.to_string().contains("replicas"),
        "{err}"
    );
    assert!(
        keys(pm) > held,
        "the refused write still reached the master"
    );

    store
        .register_tickets(vec![contract::ticket("s1", "wait-token-resumed", None)])
        .await
        .expect("acknowledged once the replica resumed");
    assert_eq!(keys(pr), keys(pm));
}
