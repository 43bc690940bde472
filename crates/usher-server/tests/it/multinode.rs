//! Several real `usher serve` processes sharing one real `redis-server`, or a real 3-master Redis Cluster:
//! a session admitted on one node heartbeats on another, and racing admits spread over the nodes never
//! leave more than k leases nor tell a session `superseded` without a successor holding the lease.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use usher_testkit::{RedisCluster, RedisServer, ServeProcess, repo_root};

use crate::support::process::{BIN, api_key};

fn write_config(dir: &Path, redis_url: &str) -> PathBuf {
    let path = dir.join("usher.toml");
    let media = repo_root().join("media");
    std::fs::write(
        &path,
        format!(
            r#"listen = "127.0.0.1:0"
data_dir = "{data}"
media_dir = "{media}"

[store]
kind = "redis"
url = "{redis_url}"
key_prefix = "multi:"
response_timeout_ms = 15000

[secrets]
token_key = "multinode-token-key-0123456789abcdef0123"
grant_key = "multinode-grant-key-0123456789abcdef0123"

[log]
format = "json"
level = "warn,usher=info"

# the races below send 500 admits of one ticket at once from one address: more than a ticket's admits
# and an address's lookups under way are allowed by default (README "Rate limits"), which is not what
# they test
[rate_limits]
admits_per_ticket = {{ per_minute = 0 }}
ticket_lookup_failures = {{ per_minute = 0 }}
"#,
            data = dir.join("data").display(),
            media = media.display(),
        ),
    )
    .unwrap();
    path
}

struct Cluster {
    /// The Redis the nodes share: a `RedisServer` or a `RedisCluster`, stopped on drop.
    _redis: Box<dyn std::any::Any + Send + Sync>,
    _dir: tempfile::TempDir,
    nodes: Vec<ServeProcess>,
    admin: String,
    tickets: String,
    client: Client,
    /// Each session's latest secret, kept as an app keeps it (admit and heartbeat answers).
    secrets: std::sync::Mutex<std::collections::HashMap<String, String>>,
}

async fn cluster(n: usize) -> Cluster {
    let redis = RedisServer::start().expect("redis-server");
    let url = redis.url();
    nodes_on(n, Box::new(redis), &url).await
}

/// `n` nodes on a 3-master Redis Cluster, each given the URL of another master (it learns the rest).
async fn cluster_on_redis_cluster(n: usize) -> Cluster {
    let redis = RedisCluster::start(3).expect("a 3-master Redis Cluster");
    let url = redis.url(0);
    nodes_on(n, Box::new(redis), &url).await
}

async fn nodes_on(n: usize, redis: Box<dyn std::any::Any + Send + Sync>, url: &str) -> Cluster {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), url);
    let admin = api_key(&config, "admin");
    let tickets = api_key(&config, "tickets");
    let mut nodes = Vec::new();
    for _ in 0..n {
        nodes.push(
            ServeProcess::start(Path::new(BIN), &config)
                .await
                .expect("node starts"),
        );
    }
    let client = Client::builder()
        .pool_max_idle_per_host(600)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    Cluster {
        _redis: redis,
        _dir: dir,
        nodes,
        admin,
        tickets,
        client,
        secrets: Default::default(),
    }
}

impl Cluster {
    fn url(&self, node: usize, path: &str) -> String {
        format!("{}{}", self.nodes[node % self.nodes.len()].base_url, path)
    }

    async fn show(&self, id: &str, k: u32, policy: &str) {
        let now = time::OffsetDateTime::now_utc();
        let fmt = crate::support::rfc3339;
        let body = json!({"title": id, "starts_at": fmt(now - time::Duration::hours(1)), "ends_at": fmt(now + time::Duration::hours(1)),
                          "stream_path": "demo", "max_devices": k, "policy": policy});
        let res = self
            .client
            .put(self.url(0, &format!("/api/v1/shows/{id}")))
            .bearer_auth(&self.admin)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success(), "{}", res.status());
    }

    async fn ticket(&self, node: usize, show: &str) -> String {
        let res = self
            .client
            .post(self.url(node, "/api/v1/tickets"))
            .bearer_auth(&self.tickets)
            .json(&json!({"show_id": show}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
        res.json::<Value>().await.unwrap()["token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn admit(&self, node: usize, token: &str, device: &str) -> (StatusCode, Value) {
        let res = self
            .client
            .post(self.url(node, "/api/v1/playback"))
            .header("x-usher-device", device)
            .header("x-usher-device-label", device)
            .json(&json!({"token": token}))
            .send()
            .await
            .unwrap();
        let (status, v): (StatusCode, Value) = (res.status(), res.json().await.unwrap());
        if let (Some(sid), Some(secret)) = (v["session_id"].as_str(), v["session_secret"].as_str())
        {
            self.secrets
                .lock()
                .unwrap()
                .insert(sid.to_owned(), secret.to_owned());
        }
        (status, v)
    }

    async fn heartbeat(&self, node: usize, session: &str) -> (StatusCode, Value) {
        let secret = self.secrets.lock().unwrap().get(session).cloned();
        let res = self
            .client
            .post(self.url(node, &format!("/api/v1/playback/{session}/heartbeat")))
            .header("x-usher-session-secret", secret.unwrap_or_default())
            .send()
            .await
            .unwrap();
        let (status, v): (StatusCode, Value) = (res.status(), res.json().await.unwrap());
        if let Some(secret) = v["session_secret"].as_str() {
            self.secrets
                .lock()
                .unwrap()
                .insert(session.to_owned(), secret.to_owned());
        }
        (status, v)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_session_moves_between_nodes() {
    session_moves(cluster(3).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_session_moves_between_nodes_on_a_redis_cluster() {
    session_moves(cluster_on_redis_cluster(3).await).await;
}

async fn session_moves(c: Cluster) {
    c.show("gig", 1, "newest_wins").await;
    let token = c.ticket(1, "gig").await;
    let (status, admitted) = c.admit(0, &token, "device-aaaa").await;
    assert_eq!(status, StatusCode::CREATED, "{admitted}");
    let sid = admitted["session_id"].as_str().unwrap();
    for node in [1, 2, 0] {
        let (status, hb) = c.heartbeat(node, sid).await;
        assert_eq!(status, StatusCode::OK, "node {node}: {hb}");
    }
    // the grant made on node 0 opens media on node 2 (same grant key, lease checked in the shared store)
    let grant = admitted["grants"][0]["token"].as_str().unwrap();
    let res = c
        .client
        .get(c.url(2, &format!("/o/{grant}/demo/360p/index.m3u8")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    // another node takes the seat over; the first session learns it on a third node
    let (status, _) = c.admit(1, &token, "device-bbbb").await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, hb) = c.heartbeat(2, sid).await;
    assert_eq!(
        (status, hb["code"].as_str()),
        (StatusCode::CONFLICT, Some("superseded")),
        "{hb}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_admits_over_three_nodes_never_exceed_k() {
    race(Arc::new(cluster(3).await), 100).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_admits_over_three_nodes_on_a_redis_cluster_never_exceed_k() {
    // each round's ticket lands on another shard, so the rounds cross the three masters
    race(Arc::new(cluster_on_redis_cluster(3).await), 30).await;
}

/// `rounds` (or `USHER_RACE_ROUNDS`) rounds of 500 admits of one ticket at once over the nodes.
async fn race(c: Arc<Cluster>, rounds: usize) {
    c.show("race-new", 1, "newest_wins").await;
    c.show("race-old", 1, "oldest_wins").await;
    let rounds: usize = std::env::var("USHER_RACE_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(rounds);
    let started = Instant::now();
    for round in 0..rounds {
        let (show, policy) = if round % 2 == 0 {
            ("race-new", "newest_wins")
        } else {
            ("race-old", "oldest_wins")
        };
        let token = c.ticket(round, show).await;
        let tasks: Vec<_> = (0..500)
            .map(|i| {
                let c = Arc::clone(&c);
                let token = token.clone();
                tokio::spawn(async move {
                    c.admit(i, &token, &format!("r{round:03}-device-{i:04}"))
                        .await
                })
            })
            .collect();
        let mut sessions = Vec::new();
        // the device that holds each admitted session
        let mut session_of_device = std::collections::HashMap::new();
        let mut in_use = 0;
        for (i, t) in tasks.into_iter().enumerate() {
            let (status, v) = t.await.unwrap();
            match status {
                StatusCode::CREATED => {
                    let s = v["session_id"].as_str().unwrap().to_owned();
                    session_of_device.insert(format!("r{round:03}-device-{i:04}"), s.clone());
                    sessions.push(s);
                }
                StatusCode::CONFLICT if v["code"] == "ticket_in_use" => in_use += 1,
                other => panic!("round {round}: unexpected admit {other}: {v}"),
            }
        }
        let beats: Vec<_> = sessions
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let c = Arc::clone(&c);
                let s = s.clone();
                tokio::spawn(async move { (s.clone(), c.heartbeat(i + 1, &s).await) })
            })
            .collect();
        let mut holders = Vec::new();
        // each superseded session and the device its heartbeat named as the one that took the seat
        let mut superseded_by = std::collections::HashMap::new();
        // sessions ended so long ago (more than the 256 newest of the ticket) that their end is forgotten
        let mut forgotten = 0;
        for beat in beats {
            let (s, (status, v)) = beat.await.unwrap();
            match status {
                StatusCode::OK => holders.push(s.clone()),
                StatusCode::CONFLICT if v["code"] == "superseded" => {
                    superseded_by.insert(s, v["superseded_by"].as_str().unwrap().to_owned());
                }
                StatusCode::NOT_FOUND if v["code"] == "session_unknown" => forgotten += 1,
                other => panic!("round {round}: unexpected heartbeat {other}: {v}"),
            }
        }
        assert_eq!(
            holders.len(),
            1,
            "round {round} ({policy}): exactly one lease holder, got {}",
            holders.len()
        );
        if policy == "oldest_wins" {
            assert_eq!((sessions.len(), in_use), (1, 499), "round {round}");
        } else {
            assert_eq!(sessions.len(), 500, "round {round}");
            // every `superseded` names a device admitted in this round whose session was in turn
            // superseded or holds the seat: following the chain from any session ends, without a loop,
            // at the one lease holder (a real successor, not just a plausible name)
            // 499 sessions ended, one superseded by each later admit: a ticket remembers the newest 256
            // ends (both stores), the older ones are unknown
            assert_eq!(
                (superseded_by.len(), forgotten),
                (256, 243),
                "round {round}"
            );
            for start in superseded_by.keys() {
                let mut at = start;
                let mut steps = 0;
                while let Some(device) = superseded_by.get(at) {
                    at = session_of_device.get(device).unwrap_or_else(|| {
                        panic!("round {round}: {start} was superseded by {device}, never admitted")
                    });
                    steps += 1;
                    assert!(
                        steps <= 500,
                        "round {round}: a loop of successors from {start}"
                    );
                }
                assert_eq!(
                    at, &holders[0],
                    "round {round}: the successors of {start} end at a session without the seat"
                );
            }
        }
    }
    eprintln!(
        "{rounds} rounds of 500 racing admits over 3 nodes in {:?}",
        started.elapsed()
    );
}
