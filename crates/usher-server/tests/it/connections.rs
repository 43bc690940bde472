//! Connections on the real binary (`usher serve`): a few hundred half-sent requests are closed after the
//! header timeout while `/livez` answers within a second throughout; an address over its connection cap is
//! refused without hurting others; an idle keep-alive connection lives to the idle timeout, not the header
//! timeout; and a flood of connections past the open-files limit leaves the server the descriptors it
//! needs (it waits at its cap instead of running out).
//!
//! Client sockets bind to other loopback addresses (127.0.0.2, …) to be other clients. Run with
//! `--nocapture` to see the figures.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};
use usher_testkit::{ServeProcess, repo_root, wait_until};

use crate::support::process::{BIN, api_key, serve_config};

fn usher_bin() -> &'static Path {
    Path::new(BIN)
}

fn addr_of(base_url: &str) -> SocketAddr {
    base_url.trim_start_matches("http://").parse().unwrap()
}

/// A connection to `server` from the loopback address `from`.
async fn connect_from(from: &str, server: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(from.parse::<IpAddr>().unwrap(), 0))?;
    socket.connect(server).await
}

/// Whether the server closed `tcp` (end of stream or reset) within `wait`.
async fn closed_within(tcp: &mut TcpStream, wait: Duration) -> bool {
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(wait, tcp.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            // an answer (none is expected from a half-sent request): keep reading to the close
            Ok(Ok(_)) => {}
        }
    }
}

/// Polls `/livez` on a new connection every 50 ms until `stop`, and keeps the slowest answer; a failure
/// or an answer slower than a second is kept as a failure.
fn probe_livez(
    base: String,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<(usize, Duration, Vec<String>)> {
    tokio::spawn(async move {
        let http = Client::builder()
            .timeout(Duration::from_secs(1))
            .pool_max_idle_per_host(0)
            .build()
            .unwrap();
        let (mut n, mut slowest, mut failures) = (0, Duration::ZERO, Vec::new());
        while !stop.load(Ordering::SeqCst) {
            let t = Instant::now();
            match http.get(format!("{base}/livez")).send().await {
                Ok(r) if r.status() == StatusCode::OK => {}
                Ok(r) => failures.push(format!("status {}", r.status())),
                Err(e) => failures.push(format!("{e}")),
            }
            let took = t.elapsed();
            slowest = slowest.max(took);
            n += 1;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        (n, slowest, failures)
    })
}

async fn metric(http: &Client, base: &str, name_and_labels: &str) -> f64 {
    let text = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find(|l| l.starts_with(name_and_labels))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// Slowloris: 300 half-sent requests from three addresses (their cap, 100 each, full), 20 more from one of
/// them refused at once; `/livez` (from 127.0.0.1, a new connection every 50 ms) and another address
/// answer within a second throughout; the half-sent requests are closed once the header timeout has
/// passed, and their address may connect again. An idle keep-alive connection outlives the header timeout
/// and is closed at the idle timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn half_sent_requests_are_closed_and_never_starve_the_others() {
    const HEADER_S: u64 = 2;
    const IDLE_S: u64 = 5;
    const PER_ADDRESS: usize = 100;
    const SLOW: [&str; 3] = ["127.0.0.2", "127.0.0.3", "127.0.0.4"];
    let dir = tempfile::tempdir().unwrap();
    let file = serve_config(
        dir.path(),
        &format!(
            "[http]\nheader_read_timeout_s = {HEADER_S}\nidle_timeout_s = {IDLE_S}\n\
             max_connections_per_address = {PER_ADDRESS}\nuncapped_peers = []\n"
        ),
    );
    let usher = ServeProcess::start(usher_bin(), &file)
        .await
        .expect("usher serve starts");
    let base = usher.base_url.clone();
    let server = addr_of(&base);
    let stop = Arc::new(AtomicBool::new(false));
    let probe = probe_livez(base.clone(), stop.clone());

    // an idle keep-alive connection, from its own address: one request answered, then nothing
    let mut idle = connect_from("127.0.0.6", server).await.unwrap();
    idle.write_all(b"GET /livez HTTP/1.1\r\nHost: usher\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    let n = idle.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    let idle_since = Instant::now();

    // the slowloris: each sends part of a request head and stalls
    let mut held = Vec::new();
    for from in SLOW {
        for _ in 0..PER_ADDRESS {
            let mut tcp = connect_from(from, server).await.unwrap();
            tcp.write_all(b"GET /livez HTTP/1.1\r\nHost: usher\r\nX-Slow: a")
                .await
                .unwrap();
            held.push((tcp, Instant::now()));
        }
    }
    // over the cap: closed at once
    let mut refused = 0;
    for _ in 0..20 {
        let mut tcp = connect_from(SLOW[0], server).await.unwrap();
        let _ = tcp
            .write_all(b"GET /livez HTTP/1.1\r\nHost: usher\r\nX-Slow: a")
            .await;
        if closed_within(&mut tcp, Duration::from_millis(500)).await {
            refused += 1;
        }
    }
    assert_eq!(
        refused, 20,
        "connections over the address's cap are closed at once"
    );
    // others are not hurt meanwhile: another address gets its answer
    let other = Client::builder()
        .timeout(Duration::from_secs(1))
        .local_address("127.0.0.5".parse::<IpAddr>().unwrap())
        .build()
        .unwrap();
    let t = Instant::now();
    let res = other.get(format!("{base}/livez")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let other_took = t.elapsed();

    // each is closed once the header timeout has passed since its first byte, none before
    let closed: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let waits: Vec<_> = held
        .into_iter()
        .map(|(mut tcp, sent)| {
            let closed = closed.clone();
            tokio::spawn(async move {
                if closed_within(&mut tcp, Duration::from_secs(HEADER_S + 10)).await {
                    closed.lock().unwrap().push(sent.elapsed());
                }
            })
        })
        .collect();
    for w in waits {
        w.await.unwrap();
    }
    let closed = std::mem::take(&mut *closed.lock().unwrap());
    let last = closed.iter().max().copied().unwrap_or_default();
    let first = closed.iter().min().copied().unwrap_or_default();
    assert_eq!(
        closed.len(),
        3 * PER_ADDRESS,
        "every half-sent request is closed"
    );
    assert!(
        first >= Duration::from_secs(HEADER_S) - Duration::from_millis(300),
        "closed {first:?} after sending, before the header timeout"
    );
    assert!(
        last <= Duration::from_secs(HEADER_S) + Duration::from_millis(2500),
        "the last closed {last:?} after sending"
    );
    // their address may connect again
    let again = Client::builder()
        .timeout(Duration::from_secs(1))
        .local_address(SLOW[0].parse::<IpAddr>().unwrap())
        .build()
        .unwrap();
    assert_eq!(
        again
            .get(format!("{base}/livez"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );

    // the idle keep-alive connection outlives the header timeout, and goes at the idle timeout
    tokio::time::sleep_until((idle_since + Duration::from_secs(HEADER_S + 1)).into()).await;
    assert!(
        !closed_within(&mut idle, Duration::from_millis(10)).await,
        "an idle keep-alive connection closed at the header timeout"
    );
    assert!(
        closed_within(&mut idle, Duration::from_secs(IDLE_S + 3)).await,
        "the idle connection is closed at the idle timeout"
    );
    let idle_for = idle_since.elapsed();
    assert!(
        idle_for >= Duration::from_secs(IDLE_S) - Duration::from_millis(300)
            && idle_for <= Duration::from_secs(IDLE_S) + Duration::from_millis(2500),
        "idle connection closed after {idle_for:?}"
    );

    stop.store(true, Ordering::SeqCst);
    let (probes, slowest, failures) = probe.await.unwrap();
    let http = Client::new();
    let timeouts = metric(
        &http,
        &base,
        "usher_connections_closed_total{reason=\"header_timeout\"}",
    )
    .await;
    let refusals = metric(
        &http,
        &base,
        "usher_connections_refused_total{reason=\"per_address\"}",
    )
    .await;
    println!(
        "slowloris: {} half-sent requests held, closed {first:?} to {last:?} after sending (header timeout {HEADER_S} s); \
         20 over the cap refused; /livez {probes} probes, slowest {slowest:?}, {} failed; another address answered in \
         {other_took:?}; an idle keep-alive connection closed after {idle_for:?} (idle timeout {IDLE_S} s); metrics: \
         {timeouts} header timeouts, {refusals} refusals",
        3 * PER_ADDRESS,
        failures.len()
    );
    assert!(failures.is_empty(), "/livez failed: {failures:?}");
    assert!(slowest < Duration::from_secs(1), "/livez took {slowest:?}");
    assert!(probes >= 20, "only {probes} probes");
    assert!(
        timeouts >= (3 * PER_ADDRESS) as f64,
        "{timeouts} header timeouts counted"
    );
    assert!(refusals >= 20.0, "{refusals} refusals counted");
}

/// Descriptor exhaustion: under an open-files limit of 256, 400 connections that send nothing fill the
/// server's connection cap (what the limit leaves room for) and the rest wait in the listen queue; the
/// server keeps the descriptors it needs (a viewer's media, read from disk on each request, still
/// plays on its connection), does not spin, and serves new connections again once the flood ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_connection_flood_leaves_the_server_its_descriptors() {
    const OPEN_FILES: u64 = 256;
    const FLOOD: usize = 400;
    let dir = tempfile::tempdir().unwrap();
    // every media request reads the disk; the flood's connections are not closed by a timeout meanwhile
    let file = serve_config(
        dir.path(),
        "[media_cache]\nmax_mb = 0\n\n[http]\nheader_read_timeout_s = 60\nidle_timeout_s = 120\n",
    );
    let key = api_key(&file, "admin");
    let usher = ServeProcess::start_with_open_files(usher_bin(), &file, OPEN_FILES)
        .await
        .expect("usher serve starts");
    let base = usher.base_url.clone();
    let pid = usher.pid().unwrap();
    let http = Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();

    // a viewer playing before the flood, on a keep-alive connection
    let now = time::OffsetDateTime::now_utc();
    let fmt = crate::support::rfc3339;
    let res = http
        .put(format!("{base}/api/v1/shows/gig"))
        .bearer_auth(&key)
        .json(
            &json!({"title": "Gig", "starts_at": fmt(now - time::Duration::hours(1)),
            "ends_at": fmt(now + time::Duration::hours(1)), "stream_path": "demo"}),
        )
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    let res = http
        .post(format!("{base}/api/v1/tickets"))
        .bearer_auth(&key)
        .json(&json!({"show_id": "gig"}))
        .send()
        .await
        .unwrap();
    let token = res.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = http
        .post(format!("{base}/api/v1/playback"))
        .header("x-usher-device", "device-aaaa0001")
        .json(&json!({"token": token}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let grant = res.json::<Value>().await.unwrap()["grants"][0]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let segments: Vec<String> = std::fs::read_dir(repo_root().join("media/demo/360p"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".ts"))
        .collect();
    assert!(segments.len() >= 2);
    let fetch = |seg: &str| http.get(format!("{base}/o/{grant}/demo/360p/{seg}")).send();
    assert_eq!(fetch(&segments[0]).await.unwrap().status(), StatusCode::OK);
    let cap = metric(&http, &base, "usher_connections_max").await;

    // the flood: connections that send nothing, from another address
    let server = addr_of(&base);
    let mut flood = Vec::new();
    for _ in 0..FLOOD {
        match tokio::time::timeout(Duration::from_secs(2), connect_from("127.0.0.2", server)).await
        {
            Ok(Ok(tcp)) => flood.push(tcp),
            _ => break,
        }
    }
    let connected = flood.len();
    // the server took what its cap allows (the viewer's connection holds one place)
    wait_until(
        Duration::from_secs(5),
        "the server to reach its connection cap",
        || {
            let http = http.clone();
            let base = base.clone();
            async move {
                let open = metric(&http, &base, "usher_connections_open").await;
                (open >= cap).then_some(())
            }
        },
    )
    .await
    .unwrap();
    let cpu = |pid: u32| {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let fields: Vec<&str> = stat
            .rsplit(')')
            .next()
            .unwrap()
            .split_whitespace()
            .collect();
        // utime and stime, fields 14 and 15 of stat(5), in clock ticks
        fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
    };
    let before = cpu(pid);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let ticks = cpu(pid) - before;

    // the viewer plays on: each segment is a file the server must open now
    let mut played = 0;
    for seg in segments.iter().skip(1).take(5) {
        let res = fetch(seg).await.unwrap();
        assert_eq!(
            res.status(),
            StatusCode::OK,
            "segment {seg} during the flood"
        );
        assert!(!res.bytes().await.unwrap().is_empty());
        played += 1;
    }
    let open = metric(&http, &base, "usher_connections_open").await;

    // the flood ends: new connections are served again
    drop(flood);
    let fresh = Client::builder()
        .timeout(Duration::from_secs(2))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let t = Instant::now();
    wait_until(
        Duration::from_secs(10),
        "/livez on a new connection",
        || {
            let fresh = fresh.clone();
            let url = format!("{base}/livez");
            async move {
                fresh
                    .get(url)
                    .send()
                    .await
                    .ok()
                    .filter(|r| r.status() == StatusCode::OK)
                    .map(|_| ())
            }
        },
    )
    .await
    .unwrap();
    println!(
        "descriptor flood: open-files limit {OPEN_FILES}, connection cap {cap}; {connected} of {FLOOD} flood connections \
         made, {open} open at the server; {played} segments read from disk during the flood; {ticks} CPU ticks in 2 s \
         of flood; new connections served {:?} after it ended",
        t.elapsed()
    );
    assert!(cap > 0.0 && cap < OPEN_FILES as f64, "cap {cap}");
    assert!(open <= cap, "{open} open connections over the cap {cap}");
    assert!(ticks < 50, "{ticks} CPU ticks in 2 s: spinning");
}
