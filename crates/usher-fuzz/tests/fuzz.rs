//! Every parser of hostile input, fed random bytes and the committed corpus: none may panic, and what a
//! parser accepts must round-trip or keep its invariant.

use std::net::IpAddr;
use std::time::Duration;

use usher_cdn::playlist::{Pathway, personalize};
use usher_core::clock::UnixMs;
use usher_core::grant::{Grant, GrantSigner};
use usher_core::ids::{DeviceId, SessionId, TicketToken};
use usher_core::media_path::MediaPath;
use usher_core::session_secret::SessionSecret;
use usher_geo::proxy::{ForwardedHeader, TrustedProxies};

/// How long each target draws random inputs (`USHER_FUZZ_SECONDS`, default 2).
fn budget() -> Duration {
    Duration::from_secs(
        std::env::var("USHER_FUZZ_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(2),
    )
}

/// Runs `target` on every file of the committed corpus (`tests/corpus/<name>/`), then on random inputs
/// for the time budget.
fn fuzz(name: &str, max_len: usize, target: impl Fn(&[u8]) + std::panic::RefUnwindSafe) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(name);
    let mut seeds = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        // a failure names its file in the test's output
        eprintln!("corpus: {}", path.display());
        target(&bytes);
        seeds += 1;
    }
    assert!(seeds > 0, "no corpus in {}", dir.display());
    bolero::check!()
        .with_test_time(budget())
        .with_max_len(max_len)
        .for_each(|bytes: &[u8]| target(bytes));
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Ticket tokens, device ids, session ids and session secrets: parsed or refused, and what is accepted
/// prints back as given.
#[test]
fn ids() {
    fuzz("ids", 4096, |bytes: &[u8]| {
        let s = text(bytes);
        if let Ok(t) = TicketToken::parse(&s) {
            assert_eq!(t.expose(), s);
        }
        if let Ok(d) = DeviceId::parse(&s) {
            assert_eq!(d.to_string(), s);
        }
        if let Ok(id) = SessionId::parse(&s) {
            assert_eq!(id.to_string(), s);
        }
        if let Some(secret) = SessionSecret::parse(&s) {
            assert_eq!(secret.expose(), s);
        }
    });
}

/// Grant texts from anywhere: refused or verified, never a panic; and a grant signed from any fields
/// verifies to the same grant.
#[test]
fn grants() {
    let signer = GrantSigner::new(b"fuzz-grant-key-0123456789abcdef!");
    fuzz("grants", 4096, |bytes: &[u8]| {
        let s = text(bytes);
        let _ = signer.verify(&s, UnixMs(0));
        if let Ok(g) = signer.verify(&s, UnixMs(0)) {
            let _ = g.covers("demo/360p/seg_001.ts");
        }
        // the prefix as the sign side would take it: a relative folder
        if let (Ok(path), Some(first)) = (MediaPath::parse(&s), s.split('/').next()) {
            let _ = path;
            let grant = Grant {
                session: SessionId::generate(),
                expires_at: UnixMs(4_000_000_000_000),
                prefix: format!("{first}/"),
                client: None,
            };
            let again = signer
                .verify(&signer.sign(&grant), UnixMs(0))
                .expect("a signed grant verifies");
            assert_eq!(again, grant);
        }
    });
}

/// Media paths: what is accepted stays inside the media folder.
#[test]
fn media_paths() {
    fuzz("media_paths", 4096, |bytes: &[u8]| {
        let s = text(bytes);
        if MediaPath::parse(&s).is_ok() {
            assert!(!s.starts_with('/') && !s.contains('\\'), "{s:?}");
            assert!(
                s.split('/')
                    .all(|seg| !seg.is_empty() && seg != "." && seg != ".."),
                "{s:?}"
            );
        }
    });
}

/// `Forwarded` and `X-Forwarded-For` chains from a trusted proxy: any header yields an address without a
/// panic, and a request without the header is the peer's.
#[test]
fn forwarded_chains() {
    let proxies = |header| {
        TrustedProxies::new(
            vec![
                "127.0.0.0/8".parse().unwrap(),
                "10.0.0.0/8".parse().unwrap(),
            ],
            header,
        )
    };
    let (fwd, xff) = (
        proxies(ForwardedHeader::Forwarded),
        proxies(ForwardedHeader::XForwardedFor),
    );
    let peer: IpAddr = "127.0.0.1".parse().unwrap();
    fuzz("forwarded_chains", 4096, |bytes: &[u8]| {
        let s = text(bytes);
        let values: Vec<&str> = s.split('\n').collect();
        for p in [&fwd, &xff] {
            let _ = p.client(peer, values.iter().copied());
            assert_eq!(p.client(peer, std::iter::empty()), peer);
        }
    });
}

struct Edge;

impl Pathway for Edge {
    fn id(&self) -> &str {
        "a"
    }

    fn sign(&self, uri: &str) -> Option<String> {
        (!uri.contains("nosign")).then(|| format!("https://edge.example/x/{uri}?sig=1"))
    }
}

/// Master playlists of any shape: personalized without a panic, and the answer is a playlist.
#[test]
fn playlists() {
    fuzz("playlists", 64 * 1024, |bytes: &[u8]| {
        let master = text(bytes);
        let out = personalize(&master, &[Edge, Edge], "a", "/hls/s/steering.json");
        if master.starts_with("#EXTM3U") {
            assert!(out.starts_with("#EXTM3U"), "{out:?}");
        }
    });
}

/// Configuration files of any content: read and checked into a clear error or a configuration, never a
/// panic.
#[test]
fn config_files() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("usher.toml");
    fuzz("config_files", 4096, |bytes: &[u8]| {
        std::fs::write(&file, bytes).unwrap();
        if let Ok(settings) = usher_server::settings::Settings::load(Some(&file)) {
            let _ = settings.validate();
        }
    });
}
