//! One loaded GeoIP database: a MaxMind DB file held in memory, checked through before anyone uses it.
//!
//! [`GeoDb::from_bytes`] refuses what would fail later: a file that is not a MaxMind DB (or was cut short, so
//! its metadata section is missing), a database without countries (an ASN or ISP database), a search tree
//! that does not hold together, and any record that cannot be decoded. It walks every network once to prove
//! it, and counts them; a lookup afterwards never meets a broken record.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use maxminddb::{Reader, WithinOptions};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use usher_core::geo::Country;

/// Where a database came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Source {
    /// Read from a file on disk.
    File {
        /// The file.
        path: String,
    },
    /// Uploaded by an admin through the API.
    Upload,
    /// Downloaded on the schedule (or on demand) from the configured URL.
    Download {
        /// The URL without its query string (which may hold a licence key).
        url: String,
    },
}

impl Source {
    /// A short label for metrics and logs: `file`, `upload` or `download`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::File { .. } => "file",
            Self::Upload => "upload",
            Self::Download { .. } => "download",
        }
    }
}

/// What is known about a loaded database.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DbInfo {
    /// The metadata's `database_type` (`GeoLite2-Country`, `GeoIP2-City`, `DBIP-Country-Lite`, …).
    pub database_type: String,
    /// When the vendor built it (metadata `build_epoch`).
    #[serde(with = "time::serde::rfc3339")]
    pub built_at: OffsetDateTime,
    /// The same, in Unix seconds.
    pub build_epoch: u64,
    /// 4 or 6.
    pub ip_version: u16,
    /// Nodes of the search tree (metadata `node_count`).
    pub node_count: u32,
    /// Networks that carry a record, counted by walking the whole tree at load.
    pub network_count: u64,
    /// Networks whose record names a country.
    pub networks_with_country: u64,
    /// Distinct countries named.
    pub country_count: usize,
    /// File size.
    pub size_bytes: u64,
    /// SHA-256 of the file, hex.
    pub sha256: String,
    /// Where it came from.
    pub source: Source,
    /// When it was loaded and checked.
    #[serde(with = "time::serde::rfc3339")]
    pub loaded_at: OffsetDateTime,
}

/// Why a file was not taken as a database. The message names what is wrong, for an admin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read or fetched.
    #[error("{0}")]
    Io(String),
    /// The bytes are not a usable MaxMind DB file.
    #[error("{0}")]
    Invalid(String),
    /// The operation needs a setting that is not configured (`geoip.path`, `geoip.download_url`).
    #[error("{0} is not configured")]
    Unconfigured(&'static str),
}

/// The part of a record a lookup reads: GeoIP2/GeoLite2 and DB-IP put the country under
/// `country.iso_code` (and the owner's under `registered_country.iso_code`); the ip-location-db builds
/// use a flat `country_code`.
#[derive(Deserialize)]
struct Record<'a> {
    #[serde(borrow, default)]
    country: Option<IsoCode<'a>>,
    #[serde(borrow, default)]
    registered_country: Option<IsoCode<'a>>,
    #[serde(borrow, default)]
    country_code: Option<&'a str>,
}

#[derive(Deserialize)]
struct IsoCode<'a> {
    #[serde(borrow, default)]
    iso_code: Option<&'a str>,
}

impl Record<'_> {
    /// The located country, else the registered one, else the flat code.
    fn country(&self) -> Option<Country> {
        self.country
            .as_ref()
            .and_then(|c| c.iso_code)
            .or_else(|| self.registered_country.as_ref().and_then(|c| c.iso_code))
            .or(self.country_code)
            .and_then(Country::from_database)
    }
}

/// Addresses looked up once more after the walk, as a last check that lookups work on this file.
const PROBES: [IpAddr; 4] = [
    IpAddr::V4(Ipv4Addr::new(1, 1, 1, 1)),
    IpAddr::V4(Ipv4Addr::new(8, 8, 8, 8)),
    IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
    IpAddr::V6(Ipv6Addr::new(0x2001, 0x4860, 0x4860, 0, 0, 0, 0, 0x8888)),
];

/// A checked database, ready for lookups from any thread.
pub struct GeoDb {
    reader: Reader<Vec<u8>>,
    info: DbInfo,
}

impl std::fmt::Debug for GeoDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeoDb").field("info", &self.info).finish()
    }
}

fn invalid(m: impl Into<String>) -> LoadError {
    LoadError::Invalid(m.into())
}

impl GeoDb {
    /// Opens and checks a database from its bytes. CPU-bound (a walk of the whole tree: about a second for
    /// a country database of 8 MB): call it off the async runtime.
    ///
    /// # Errors
    /// [`LoadError::Invalid`] naming what is wrong.
    pub fn from_bytes(bytes: Vec<u8>, source: Source) -> Result<Self, LoadError> {
        let size_bytes = bytes.len() as u64;
        let sha256 = hex::encode(Sha256::digest(&bytes));
        let reader = Reader::from_source(bytes).map_err(|e| {
            invalid(format!(
                "not a readable MaxMind DB file (cut short, or another format): {e}"
            ))
        })?;
        let meta = reader.metadata();
        let kind = meta.database_type.to_ascii_lowercase();
        if !["country", "city", "enterprise"]
            .iter()
            .any(|k| kind.contains(k))
        {
            return Err(invalid(format!(
                "database type `{}` holds no countries; use a Country or City database (GeoLite2, GeoIP2, DB-IP)",
                meta.database_type
            )));
        }
        if meta.ip_version != 4 && meta.ip_version != 6 {
            return Err(invalid(format!(
                "ip_version {} is neither 4 nor 6",
                meta.ip_version
            )));
        }
        let built_at = i64::try_from(meta.build_epoch)
            .ok()
            .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
            .ok_or_else(|| invalid(format!("build_epoch {} is not a date", meta.build_epoch)))?;

        // Walk every network: proves the tree holds together and every record decodes.
        let limit = u64::from(meta.node_count).saturating_mul(3).max(16);
        let mut network_count = 0u64;
        let mut networks_with_country = 0u64;
        let mut countries = HashSet::new();
        let walk = reader
            .networks(WithinOptions::default())
            .map_err(|e| invalid(format!("the search tree cannot be walked: {e}")))?;
        for item in walk {
            let found = item.map_err(|e| invalid(format!("the search tree is broken: {e}")))?;
            network_count += 1;
            if network_count > limit {
                return Err(invalid("the search tree has a cycle"));
            }
            let record: Option<Record<'_>> = found.decode().map_err(|e| {
                let net = found
                    .network()
                    .map(|n| n.to_string())
                    .unwrap_or_else(|_| "?".into());
                invalid(format!("the record of {net} cannot be decoded: {e}"))
            })?;
            if let Some(c) = record.as_ref().and_then(Record::country) {
                networks_with_country += 1;
                countries.insert(c);
            }
        }
        if networks_with_country == 0 {
            return Err(invalid("no network in this database names a country"));
        }
        let db = Self {
            info: DbInfo {
                database_type: meta.database_type.clone(),
                built_at,
                build_epoch: meta.build_epoch,
                ip_version: meta.ip_version,
                node_count: meta.node_count,
                network_count,
                networks_with_country,
                country_count: countries.len(),
                size_bytes,
                sha256,
                source,
                loaded_at: OffsetDateTime::now_utc(),
            },
            reader,
        };
        for ip in PROBES {
            if ip.is_ipv6() && db.info.ip_version == 4 {
                continue;
            }
            let found = db
                .reader
                .lookup(ip)
                .map_err(|e| invalid(format!("a test lookup of {ip} failed: {e}")))?;
            found
                .decode::<Record<'_>>()
                .map_err(|e| invalid(format!("a test lookup of {ip} failed: {e}")))?;
        }
        Ok(db)
    }

    /// Reads and checks a database file.
    ///
    /// # Errors
    /// [`LoadError::Io`] when it cannot be read, [`LoadError::Invalid`] as [`GeoDb::from_bytes`].
    pub fn open(path: &std::path::Path) -> Result<Self, LoadError> {
        let bytes = std::fs::read(path)
            .map_err(|e| LoadError::Io(format!("cannot read {}: {e}", path.display())))?;
        Self::from_bytes(
            bytes,
            Source::File {
                path: path.display().to_string(),
            },
        )
    }

    /// The country of `ip`, when the database names one. IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`)
    /// are looked up as IPv4; an IPv6 address in an IPv4-only database has no country.
    pub fn country(&self, ip: IpAddr) -> Option<Country> {
        let ip = ip.to_canonical();
        if ip.is_ipv6() && self.info.ip_version == 4 {
            return None;
        }
        // every record decoded at load, so an error here cannot happen; it would read as "unknown"
        let found = self.reader.lookup(ip).ok()?;
        let record: Record<'_> = found.decode().ok()??;
        record.country()
    }

    /// What is known about this database.
    pub fn info(&self) -> &DbInfo {
        &self.info
    }
}
