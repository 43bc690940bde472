//! The loader against real MaxMind DB files written by a real writer (`tests/fixtures/make-fixtures.sh`),
//! and against files damaged on purpose.

use std::net::IpAddr;
use std::path::PathBuf;

use usher_core::geo::Country;
use usher_geo::db::{GeoDb, LoadError, Source};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn bytes(name: &str) -> Vec<u8> {
    std::fs::read(fixture(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

fn open(name: &str) -> GeoDb {
    GeoDb::open(&fixture(name)).unwrap_or_else(|e| panic!("{name} refused: {e}"))
}

fn country(db: &GeoDb, ip: &str) -> Option<String> {
    db.country(ip.parse::<IpAddr>().unwrap())
        .map(|c| c.as_str().to_owned())
}

#[test]
fn a_geoip2_country_database_loads_and_answers() {
    let db = open("GeoIP2-Country-Test.mmdb");
    let info = db.info();
    assert_eq!(info.database_type, "GeoIP2-Country");
    assert_eq!(info.build_epoch, 1_767_225_600);
    assert_eq!(info.built_at.to_string(), "2026-01-01 0:00:00.0 +00:00:00");
    assert_eq!(info.ip_version, 6);
    assert!(info.node_count > 0);
    assert_eq!(info.country_count, 4, "{info:?}"); // DE FR US JP
    assert!(info.network_count > info.networks_with_country);
    assert_eq!(info.sha256.len(), 64);
    assert!(matches!(info.source, Source::File { .. }));

    assert_eq!(country(&db, "192.0.2.1").as_deref(), Some("DE"));
    assert_eq!(country(&db, "198.51.100.77").as_deref(), Some("FR"));
    assert_eq!(country(&db, "203.0.113.254").as_deref(), Some("US"));
    assert_eq!(country(&db, "2001:db8:1::42").as_deref(), Some("DE"));
    assert_eq!(country(&db, "2001:db8:2::42").as_deref(), Some("FR"));
    // IPv4-mapped IPv6 is the IPv4 address
    assert_eq!(country(&db, "::ffff:192.0.2.1").as_deref(), Some("DE"));
    // only the registered country is known: it applies
    assert_eq!(country(&db, "198.19.255.1").as_deref(), Some("JP"));
    // a record without any country, and addresses outside every network
    assert_eq!(country(&db, "2001:db8:ff::1"), None);
    assert_eq!(country(&db, "10.0.0.1"), None);
    assert_eq!(country(&db, "2001:db8:9::1"), None);
}

#[test]
fn city_and_dbip_layouts_load() {
    let city = open("GeoLite2-City-Test.mmdb");
    assert_eq!(city.info().database_type, "GeoLite2-City");
    assert_eq!(country(&city, "192.0.2.9").as_deref(), Some("DE"));
    assert_eq!(country(&city, "2001:db8:1::9").as_deref(), Some("DE"));
    assert_eq!(country(&city, "198.51.100.9").as_deref(), Some("FR"));

    let dbip = open("DBIP-Country-Lite-Test.mmdb");
    assert_eq!(dbip.info().database_type, "DBIP-Country-Lite");
    assert_eq!(country(&dbip, "192.0.2.9").as_deref(), Some("NL"));
}

#[test]
fn an_ipv4_only_database_has_no_country_for_ipv6() {
    let db = open("GeoIP2-Country-IPv4-Test.mmdb");
    assert_eq!(db.info().ip_version, 4);
    assert_eq!(country(&db, "192.0.2.9").as_deref(), Some("DE"));
    assert_eq!(country(&db, "::ffff:192.0.2.9").as_deref(), Some("DE"));
    assert_eq!(country(&db, "2001:db8:1::1"), None);
}

fn refused(bytes: Vec<u8>) -> String {
    match GeoDb::from_bytes(bytes, Source::Upload) {
        Err(LoadError::Invalid(m)) => m,
        Err(other) => panic!("expected Invalid, got {other:?}"),
        Ok(db) => panic!("accepted a bad file: {:?}", db.info()),
    }
}

#[test]
fn a_database_without_countries_is_refused() {
    let m = refused(bytes("GeoLite2-ASN-Test.mmdb"));
    assert!(
        m.contains("GeoLite2-ASN") && m.contains("holds no countries"),
        "{m}"
    );
}

#[test]
fn truncated_and_foreign_files_are_refused() {
    let good = bytes("GeoIP2-Country-Test.mmdb");
    for cut in [0, 1, 100, good.len() / 2, good.len() - 1] {
        let m = refused(good[..cut].to_vec());
        assert!(
            m.contains("not a readable MaxMind DB file"),
            "cut at {cut}: {m}"
        );
    }
    refused(b"<html>404 Not Found</html>".to_vec());
    refused(include_bytes!("database.rs").to_vec());
}

#[test]
fn a_damaged_search_tree_or_data_section_is_refused() {
    let good = bytes("GeoIP2-Country-Test.mmdb");
    let db = GeoDb::from_bytes(good.clone(), Source::Upload).unwrap();
    let tree_bytes = db.info().node_count as usize * 24 / 4; // 24-bit records
    // records pointing past the data section: every node's right record set to 0xFFFFFF
    let mut bad_tree = good.clone();
    for node in 0..db.info().node_count as usize {
        let at = node * 6 + 3;
        bad_tree[at..at + 3].copy_from_slice(&[0xff, 0xff, 0xff]);
    }
    refused(bad_tree);
    // the data section overwritten with 0xFF (which is no valid type/size control byte sequence)
    let mut bad_data = good.clone();
    let data_start = tree_bytes + 16;
    let marker = good
        .windows(14)
        .rposition(|w| w == b"\xab\xcd\xefMaxMind.com")
        .expect("metadata marker");
    for b in &mut bad_data[data_start..marker] {
        *b = 0xff;
    }
    let m = refused(bad_data);
    assert!(
        m.contains("cannot be decoded") || m.contains("broken"),
        "{m}"
    );
}

#[test]
fn countries_from_the_database_may_be_reserved_codes() {
    // databases use codes such as EU; a lookup reports them, a policy could never name them
    assert!(Country::from_database("EU").is_some());
    assert!(Country::parse("EU").is_err());
}
