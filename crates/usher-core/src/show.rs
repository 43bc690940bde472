//! Shows: what a ticket admits to, with its window, stream, device limit and lease settings.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::clock::UnixMs;
use crate::geo::{GeoPolicy, GeoPolicySpec};
use crate::ids::{CdnId, ShowId};
use crate::media_path::MediaPath;
use crate::validation::{ValidationError, check_text};

/// Live stream or video on demand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ShowKind {
    /// A live stream.
    Live,
    /// A video on demand.
    #[default]
    Vod,
}

/// What happens when a ticket already plays on all the devices it allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SharingPolicy {
    /// The new device plays; the least recently renewed session is superseded.
    #[default]
    NewestWins,
    /// The new device is refused until a lease frees.
    OldestWins,
}

/// How a show's segments are encrypted (DESIGN.md "Encryption and keys").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, ToSchema)]
pub enum Encryption {
    /// Plain segments: a CDN URL with a valid grant plays until the grant expires.
    #[default]
    #[serde(rename = "none")]
    None,
    /// HLS AES-128 (`METHOD=AES-128`, CBC over whole segments, as `usher package` makes them): the
    /// segments are useless without a content key, which Usher's key endpoint hands only to a session
    /// holding its seat.
    #[serde(rename = "aes-128")]
    Aes128,
}

/// A show as an admin writes it (`PUT /api/v1/shows/{id}`); unknown fields are refused.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShowSpec {
    /// Title shown on the watch page (1–200 characters, no control characters).
    #[schema(min_length = 1, max_length = 200)]
    pub title: String,
    /// Longer text shown on the watch page (at most 5000 characters; newlines and tabs allowed).
    #[serde(default)]
    #[schema(max_length = 5000)]
    pub description: String,
    /// `live` or `vod`.
    #[serde(default)]
    pub kind: ShowKind,
    /// Start of the watch window.
    #[serde(with = "time::serde::rfc3339")]
    pub starts_at: OffsetDateTime,
    /// End of the watch window.
    #[serde(with = "time::serde::rfc3339")]
    pub ends_at: OffsetDateTime,
    /// Folder of the stream under the media root (and under each CDN's base URL), holding `master.m3u8`.
    #[schema(
        pattern = r"^[A-Za-z0-9_-][A-Za-z0-9._-]*(/[A-Za-z0-9_-][A-Za-z0-9._-]*)*$",
        max_length = 256
    )]
    pub stream_path: String,
    /// Devices one ticket may play on at once (1–100, default 1).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 100)]
    pub max_devices: Option<u32>,
    /// `newest_wins` (default) or `oldest_wins`.
    #[serde(default)]
    pub policy: SharingPolicy,
    /// Seconds between heartbeats (1–300, default 15).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 300)]
    pub heartbeat_interval_s: Option<u32>,
    /// Seconds a lease lives without a heartbeat (more than the interval; default 3× the interval).
    #[serde(default)]
    #[schema(minimum = 2, maximum = 3600)]
    pub lease_ttl_s: Option<u32>,
    /// Seconds a media grant lives (more than the interval; default twice the interval): how long a CDN
    /// keeps serving a viewer whose session was superseded, revoked or ended.
    #[serde(default)]
    #[schema(minimum = 2, maximum = 86400)]
    pub grant_ttl_s: Option<u32>,
    /// Who may watch from where (default: everyone).
    #[serde(default)]
    pub geo: GeoPolicySpec,
    /// The CDNs that deliver this show (default, or empty: every enabled CDN of the pool).
    #[serde(default)]
    pub cdns: Vec<CdnId>,
    /// Whether viewers may watch (default true); an unpublished show refuses admits with
    /// `show_unpublished` while its admins prepare it.
    #[serde(default)]
    pub published: Option<bool>,
    /// `none` (default) or `aes-128`: the key endpoint answers only sessions of `aes-128` shows, and
    /// `usher package` encrypts only for them.
    #[serde(default)]
    pub encryption: Encryption,
    /// Live ingest: seconds of media the live playlists keep, the window viewers can seek back in
    /// (6–21600; default the node's `ingest.dvr_s`).
    #[serde(default)]
    #[schema(minimum = 6, maximum = 21600)]
    pub live_dvr_s: Option<u32>,
    /// Live ingest: keep the whole stream (default false): the live playlists grow from the first
    /// segment (an `EVENT` playlist viewers can seek back through) and, once the stream ends, are the
    /// show's recording, played on demand from the same stream folder.
    #[serde(default)]
    pub live_recording: bool,
    /// Doors-open capacity: the most viewers playing at once (1–10,000,000; none: no limit). Beyond it,
    /// newcomers wait in the show's waiting room, let in first come, first served as seats free;
    /// tickets already playing are never pushed out.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 10_000_000)]
    pub capacity: Option<u32>,
    /// Doors-open rate: the most newcomers let in per second (1–100,000; none: no limit), so a crowd at
    /// the doors' opening comes in at a pace the origin and CDNs take. Waiters are let in in arrival
    /// order.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 100_000)]
    pub admit_rate_per_s: Option<u32>,
    /// The title and description in other languages, by language code (`{"de": {"title": …}}`): the
    /// watch page shows the viewer's language's, else `title` and `description` (at most 20
    /// languages; codes like `de` or `pt-BR`).
    #[serde(default)]
    pub translations: BTreeMap<String, ShowText>,
}

/// A show's title and description in one language; an empty one falls back to the show's own.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShowText {
    /// Title (at most 200 characters, no control characters).
    #[serde(default)]
    #[schema(max_length = 200)]
    pub title: String,
    /// Description (at most 5000 characters; newlines and tabs allowed).
    #[serde(default)]
    #[schema(max_length = 5000)]
    pub description: String,
}

/// Most languages a show's `translations` may hold.
pub const MAX_SHOW_TRANSLATIONS: usize = 20;

/// Whether `code` looks like a language code: 2–3 lowercase letters, optionally `-` and a 2-letter
/// uppercase region (`de`, `hu`, `pt-BR`).
fn is_language_code(code: &str) -> bool {
    let (language, region) = match code.split_once('-') {
        Some((l, r)) => (l, Some(r)),
        None => (code, None),
    };
    (2..=3).contains(&language.len())
        && language.bytes().all(|b| b.is_ascii_lowercase())
        && region.is_none_or(|r| r.len() == 2 && r.bytes().all(|b| b.is_ascii_uppercase()))
}

/// A stored show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Show {
    /// The show's id.
    pub id: ShowId,
    /// Title shown on the watch page.
    pub title: String,
    /// Longer text shown on the watch page.
    pub description: String,
    /// `live` or `vod`.
    pub kind: ShowKind,
    /// Start of the watch window.
    #[serde(with = "time::serde::rfc3339")]
    pub starts_at: OffsetDateTime,
    /// End of the watch window.
    #[serde(with = "time::serde::rfc3339")]
    pub ends_at: OffsetDateTime,
    /// Folder of the stream, relative, `/`-separated.
    pub stream_path: String,
    /// Devices one ticket may play on at once, unless the ticket says otherwise.
    pub max_devices: u32,
    /// Sharing policy.
    pub policy: SharingPolicy,
    /// Seconds between heartbeats.
    pub heartbeat_interval_s: u32,
    /// Seconds a lease lives without a heartbeat.
    pub lease_ttl_s: u32,
    /// Seconds a media grant lives.
    pub grant_ttl_s: u32,
    /// Who may watch from where (shows stored before Geo existed read as "everyone").
    #[serde(default)]
    pub geo: GeoPolicy,
    /// The CDNs that deliver this show; empty: every enabled CDN of the pool.
    #[serde(default)]
    pub cdns: Vec<CdnId>,
    /// Whether viewers may watch (shows stored before this existed are published).
    #[serde(default = "published_default")]
    pub published: bool,
    /// How its segments are encrypted (shows stored before encryption existed read as `none`).
    #[serde(default)]
    pub encryption: Encryption,
    /// Seconds of media its live playlists keep (`None`: the node's `ingest.dvr_s`).
    #[serde(default)]
    pub live_dvr_s: Option<u32>,
    /// Whether its live stream is kept whole, as its recording.
    #[serde(default)]
    pub live_recording: bool,
    /// The most viewers playing at once; newcomers beyond it wait (`None`: no limit).
    #[serde(default)]
    pub capacity: Option<u32>,
    /// The most newcomers let in per second (`None`: no limit).
    #[serde(default)]
    pub admit_rate_per_s: Option<u32>,
    /// The title and description in other languages, by language code.
    #[serde(default)]
    pub translations: BTreeMap<String, ShowText>,
    /// A version tag of the show's poster image (`GET /api/v1/shows/{id}/poster`), `None` without one.
    #[serde(default)]
    pub poster: Option<String>,
    /// When the show was first written.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When the show was last written.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// Most CDNs a show may name.
pub const MAX_SHOW_CDNS: usize = 32;
fn published_default() -> bool {
    true
}

/// Most bytes of a show's `stream_path`: a stream folder leaves room within [`MediaPath::MAX_LEN`] for
/// the objects under it (renditions, segments).
pub const MAX_STREAM_PATH_LEN: usize = 256;

/// Checks a show's stream folder: a [`MediaPath`] of at most [`MAX_STREAM_PATH_LEN`] bytes.
///
/// # Errors
/// A [`ValidationError`] about `stream_path` saying what the rule is.
pub fn check_stream_path(s: &str) -> Result<MediaPath, ValidationError> {
    MediaPath::parse_within(s, MAX_STREAM_PATH_LEN).map_err(|e| {
        ValidationError::new(
            "stream_path",
            format!(
                "must be a relative path of at most {MAX_STREAM_PATH_LEN} bytes: segments made of A-Z, a-z, 0-9, '.', '_' and '-', none starting with '.' ({e})"
            ),
        )
    })
}

/// Whether two shows' stream folders nest: one is a strict ancestor folder of the other (`demo` and
/// `demo/180p`), so a grant for the outer folder would open the inner show's media. Equal folders are one
/// folder (shows may share a stream), and folders are compared by whole segments: `demo` and `demoX` are
/// siblings.
pub fn stream_folders_nest(a: &str, b: &str) -> bool {
    fn holds(outer: &str, inner: &str) -> bool {
        inner
            .strip_prefix(outer)
            .is_some_and(|rest| rest.starts_with('/'))
    }
    holds(a, b) || holds(b, a)
}

impl ShowSpec {
    /// Validates the spec into a show named `id`, written at `now` (keeping `created_at` of a replaced show;
    /// the poster, which is uploaded on its own, is set by the caller).
    ///
    /// # Errors
    /// The first [`ValidationError`] found.
    pub fn into_show(
        self,
        id: ShowId,
        now: UnixMs,
        created_at: Option<OffsetDateTime>,
    ) -> Result<Show, ValidationError> {
        check_text("title", &self.title, 1, 200)?;
        check_text("description", &self.description, 0, 5000)?;
        check_stream_path(&self.stream_path)?;
        if self.ends_at <= self.starts_at {
            return Err(ValidationError::new("ends_at", "must be after starts_at"));
        }
        let max_devices = self.max_devices.unwrap_or(1);
        if !(1..=100).contains(&max_devices) {
            return Err(ValidationError::new("max_devices", "must be 1 to 100"));
        }
        let heartbeat = self.heartbeat_interval_s.unwrap_or(15);
        if !(1..=300).contains(&heartbeat) {
            return Err(ValidationError::new(
                "heartbeat_interval_s",
                "must be 1 to 300",
            ));
        }
        let lease = self.lease_ttl_s.unwrap_or(heartbeat * 3);
        if lease <= heartbeat || lease > 3600 {
            return Err(ValidationError::new(
                "lease_ttl_s",
                "must be more than heartbeat_interval_s and at most 3600",
            ));
        }
        // a grant outlives one missed heartbeat and no more: a CDN honours it to its expiry whatever
        // happened to the session since (the origin checks the lease on every request)
        let grant = self.grant_ttl_s.unwrap_or(heartbeat * 2);
        if grant <= heartbeat || grant > 86_400 {
            return Err(ValidationError::new(
                "grant_ttl_s",
                "must be more than heartbeat_interval_s and at most 86400",
            ));
        }
        let geo = self.geo.validate()?;
        let mut cdns = self.cdns;
        cdns.sort();
        cdns.dedup();
        if cdns.len() > MAX_SHOW_CDNS {
            return Err(ValidationError::new(
                "cdns",
                format!("at most {MAX_SHOW_CDNS} CDNs"),
            ));
        }
        if let Some(d) = self.live_dvr_s
            && !(6..=21_600).contains(&d)
        {
            return Err(ValidationError::new("live_dvr_s", "must be 6 to 21600"));
        }
        if let Some(c) = self.capacity
            && !(1..=10_000_000).contains(&c)
        {
            return Err(ValidationError::new("capacity", "must be 1 to 10000000"));
        }
        if let Some(r) = self.admit_rate_per_s
            && !(1..=100_000).contains(&r)
        {
            return Err(ValidationError::new(
                "admit_rate_per_s",
                "must be 1 to 100000",
            ));
        }
        if self.translations.len() > MAX_SHOW_TRANSLATIONS {
            return Err(ValidationError::new(
                "translations",
                format!("at most {MAX_SHOW_TRANSLATIONS} languages"),
            ));
        }
        for (code, text) in &self.translations {
            if !is_language_code(code) {
                return Err(ValidationError::new(
                    "translations",
                    "keys must be language codes like \"de\" or \"pt-BR\"",
                ));
            }
            check_text("translations.title", &text.title, 0, 200)?;
            check_text("translations.description", &text.description, 0, 5000)?;
        }
        let now = now.to_datetime();
        Ok(Show {
            id,
            title: self.title,
            description: self.description,
            kind: self.kind,
            starts_at: self.starts_at,
            ends_at: self.ends_at,
            stream_path: self.stream_path,
            max_devices,
            policy: self.policy,
            heartbeat_interval_s: heartbeat,
            lease_ttl_s: lease,
            grant_ttl_s: grant,
            geo,
            cdns,
            published: self.published.unwrap_or(true),
            encryption: self.encryption,
            live_dvr_s: self.live_dvr_s,
            live_recording: self.live_recording,
            capacity: self.capacity,
            admit_rate_per_s: self.admit_rate_per_s,
            translations: self.translations,
            poster: None,
            created_at: created_at.unwrap_or(now),
            updated_at: now,
        })
    }
}

impl Show {
    /// The title and description to show a viewer reading `lang`: its translation's where given, else
    /// the show's own.
    pub fn text_in(&self, lang: &str) -> (&str, &str) {
        let t = self.translations.get(lang);
        let title = t.map(|t| t.title.as_str()).filter(|s| !s.is_empty());
        let description = t.map(|t| t.description.as_str()).filter(|s| !s.is_empty());
        (
            title.unwrap_or(&self.title),
            description.unwrap_or(&self.description),
        )
    }

    /// Whether newcomers pass the show's door (a capacity or an admit rate is set).
    pub fn has_door(&self) -> bool {
        self.capacity.is_some() || self.admit_rate_per_s.is_some()
    }

    /// Start of the window in milliseconds.
    pub fn starts_ms(&self) -> UnixMs {
        UnixMs::from_datetime(self.starts_at)
    }

    /// End of the window in milliseconds.
    pub fn ends_ms(&self) -> UnixMs {
        UnixMs::from_datetime(self.ends_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(heartbeat: Option<u32>, grant: Option<u32>) -> ShowSpec {
        ShowSpec {
            title: "t".into(),
            description: String::new(),
            kind: ShowKind::default(),
            starts_at: OffsetDateTime::UNIX_EPOCH,
            ends_at: OffsetDateTime::UNIX_EPOCH + time::Duration::hours(1),
            stream_path: "demo".into(),
            max_devices: None,
            policy: SharingPolicy::default(),
            heartbeat_interval_s: heartbeat,
            lease_ttl_s: None,
            grant_ttl_s: grant,
            geo: GeoPolicySpec::default(),
            cdns: Vec::new(),
            published: None,
            encryption: Encryption::None,
            live_dvr_s: None,
            live_recording: false,
            capacity: None,
            admit_rate_per_s: None,
            translations: Default::default(),
        }
    }

    #[test]
    fn a_grant_lives_two_heartbeats_by_default() {
        let id = ShowId::parse("s").unwrap();
        for (heartbeat, want) in [(None, 30), (Some(1), 2), (Some(10), 20), (Some(300), 600)] {
            let show = spec(heartbeat, None)
                .into_show(id.clone(), UnixMs(0), None)
                .unwrap();
            assert_eq!(show.grant_ttl_s, want, "{heartbeat:?}");
            assert!(show.grant_ttl_s <= 2 * show.heartbeat_interval_s);
            assert!(show.grant_ttl_s > show.heartbeat_interval_s);
        }
        // a lifetime given is kept, if it outlives a heartbeat
        let show = spec(Some(15), Some(120))
            .into_show(id.clone(), UnixMs(0), None)
            .unwrap();
        assert_eq!(show.grant_ttl_s, 120);
        assert!(
            spec(Some(15), Some(15))
                .into_show(id, UnixMs(0), None)
                .is_err()
        );
    }

    #[test]
    fn stream_folders_nest_by_whole_segments() {
        for (a, b) in [
            ("demo", "demo/180p"),
            ("demo/180p", "demo"),
            ("a", "a/b/c"),
            ("a/b", "a/b/c"),
        ] {
            assert!(stream_folders_nest(a, b), "{a} {b}");
        }
        for (a, b) in [
            ("demo", "demo"),
            ("demo", "demoX"),
            ("demoX/180p", "demo"),
            ("demo/180p", "demo/360p"),
            ("a/b", "a/bc/d"),
        ] {
            assert!(!stream_folders_nest(a, b), "{a} {b}");
        }
    }

    #[test]
    fn a_stream_path_is_a_media_path_of_at_most_256_bytes() {
        assert_eq!(check_stream_path("demo/hd").unwrap().as_str(), "demo/hd");
        assert!(check_stream_path(&"a".repeat(MAX_STREAM_PATH_LEN)).is_ok());
        for bad in [
            &"a".repeat(MAX_STREAM_PATH_LEN + 1),
            "",
            "../etc",
            "/demo",
            "demo/",
            "demo/.hidden",
            "demo\\x",
        ] {
            let e = check_stream_path(bad).unwrap_err();
            assert_eq!(e.field, "stream_path", "{bad:?}");
        }
    }
}
