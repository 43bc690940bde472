//! Schemas of answers that handlers build as JSON values (with `serde_json::json!`) rather than from a type
//! of their own: each struct here describes such an answer member for member, for the API document only.
//!
//! Nothing serializes these types; `schemathesis` in CI checks every answer against them, so a handler that
//! drifts from its schema fails there.

use std::collections::BTreeMap;

use usher_core::ids::{ApiKeyId, CdnId, SessionId, ShowId, TicketId};
use usher_core::show::Show;
use usher_core::store::Scope;
use usher_core::ticket::TicketStatus;
use usher_geo::db::DbInfo;
use usher_geo::live::{ReloadEvent, Reloaded};
use utoipa::ToSchema;

/// A ticket: `token` and `watch_url` only in registration answers, `usage` and `sharing` only in
/// `GET /api/v1/tickets/{ticket_id}`.
#[derive(ToSchema)]
pub struct TicketView {
    /// The ticket's non-secret id.
    pub id: TicketId,
    /// The show it admits to.
    pub show_id: ShowId,
    /// `active` or `revoked`.
    pub status: TicketStatus,
    /// Start of the ticket's own window (`null`: the show's).
    #[schema(format = DateTime, required = true)]
    pub valid_from: Option<String>,
    /// End of the ticket's own window (`null`: the show's).
    #[schema(format = DateTime, required = true)]
    pub valid_until: Option<String>,
    /// Devices at once (`null`: the show's).
    #[schema(required = true)]
    pub max_devices: Option<u32>,
    /// The ticket site's reference.
    #[schema(required = true)]
    pub external_ref: Option<String>,
    /// When it was registered.
    #[schema(format = DateTime)]
    pub created_at: String,
    /// When it was revoked.
    #[schema(format = DateTime, required = true)]
    pub revoked_at: Option<String>,
    /// The secret token (registration answers only).
    pub token: Option<String>,
    /// The watch link to hand to the buyer (registration answers only).
    pub watch_url: Option<String>,
    /// How the ticket was used (`GET /api/v1/tickets/{ticket_id}` only).
    pub usage: Option<TicketUsage>,
    /// Whether the ticket looks shared (`GET /api/v1/tickets/{ticket_id}` only).
    pub sharing: Option<SharingSignal>,
}

/// Tickets found by `GET /api/v1/tickets?q=`.
#[derive(ToSchema)]
pub struct TicketList {
    /// The ticket of that id, else those with that external reference (at most 100); never their tokens.
    pub tickets: Vec<TicketView>,
}

/// How many devices and countries took turns on a ticket, and whether that looks like sharing.
#[derive(ToSchema)]
pub struct SharingSignal {
    /// Distinct devices seen.
    pub devices: u64,
    /// Distinct countries seen.
    pub countries: u64,
    /// Sessions started.
    pub sessions: u64,
    /// `none`, `some` (more than one device) or `high` (more than three devices, or more than one
    /// country).
    #[schema(pattern = "^(none|some|high)$")]
    pub level: String,
}

/// How a ticket was used, to settle disputes.
#[derive(ToSchema)]
pub struct TicketUsage {
    /// First admit.
    #[schema(format = DateTime, required = true)]
    pub first_play_at: Option<String>,
    /// Last admit or heartbeat.
    #[schema(format = DateTime, required = true)]
    pub last_seen_at: Option<String>,
    /// Sessions started.
    pub sessions: u64,
    /// Distinct devices seen.
    pub devices: u64,
    /// Sessions holding a seat now.
    pub active_sessions: u64,
    /// Each device seen.
    pub device_history: Vec<DeviceUsage>,
    /// Each country seen.
    pub countries: Vec<CountryUsage>,
    /// Each client address admits came from (most recent last, at most 32).
    pub addresses: Vec<AddressUsage>,
    /// The sessions holding a seat now.
    pub live_sessions: Vec<LiveSession>,
}

/// One device that played a ticket.
#[derive(ToSchema)]
pub struct DeviceUsage {
    /// A label for humans ("Chrome on Linux").
    pub label: String,
    /// First seen.
    #[schema(format = DateTime)]
    pub first_seen_at: String,
    /// Last seen.
    #[schema(format = DateTime)]
    pub last_seen_at: String,
}

/// One country a ticket played from.
#[derive(ToSchema)]
pub struct CountryUsage {
    /// ISO 3166-1 alpha-2 code.
    pub country: String,
    /// First seen.
    #[schema(format = DateTime)]
    pub first_seen_at: String,
    /// Last seen.
    #[schema(format = DateTime)]
    pub last_seen_at: String,
}

/// One client address a ticket played from.
#[derive(ToSchema)]
pub struct AddressUsage {
    /// IPv4 or IPv6 address, as the server saw the client (after trusted proxies).
    pub address: String,
    /// First seen.
    #[schema(format = DateTime)]
    pub first_seen_at: String,
    /// Last seen.
    #[schema(format = DateTime)]
    pub last_seen_at: String,
}

/// A session holding a seat on a ticket.
#[derive(ToSchema)]
pub struct LiveSession {
    /// The session.
    pub session_id: SessionId,
    /// Its device's label.
    pub device_label: String,
    /// When it was admitted.
    #[schema(format = DateTime)]
    pub started_at: String,
    /// Its last heartbeat.
    #[schema(format = DateTime)]
    pub last_heartbeat_at: String,
    /// When its lease lapses without a heartbeat.
    #[schema(format = DateTime)]
    pub expires_at: String,
}

/// The answer to a batch registration: counts and one result per item, in order.
#[derive(ToSchema)]
pub struct BatchAnswer {
    /// Tickets created.
    pub created: u64,
    /// Identical repeats of registered tickets.
    pub existing: u64,
    /// Items refused.
    pub failed: u64,
    /// One result per item, in the order of the request.
    pub results: Vec<BatchItem>,
}

/// The result of one batch item: `ticket` when it was registered (`status` 201 or 200), `error` when refused.
#[derive(ToSchema)]
pub struct BatchItem {
    /// The item's position in the request, from 0.
    pub index: u64,
    /// The HTTP status the item would have had alone (201, 200, 400, 409 or 422).
    pub status: u16,
    /// The ticket, when registered.
    pub ticket: Option<TicketView>,
    /// Why it was refused.
    pub error: Option<BatchItemError>,
}

/// Why a batch item was refused.
#[derive(ToSchema)]
pub struct BatchItemError {
    /// `invalid_request`, `show_unknown` or `token_conflict`.
    #[schema(pattern = "^(invalid_request|show_unknown|token_conflict)$")]
    pub code: String,
    /// What is wrong (`invalid_request`, `show_unknown`).
    pub detail: Option<String>,
    /// The ticket already registered with this token (`token_conflict`).
    pub ticket_id: Option<TicketId>,
}

/// Every show.
#[derive(ToSchema)]
pub struct ShowList {
    /// The shows, by id.
    pub shows: Vec<Show>,
}

/// A session holding a seat.
#[derive(ToSchema)]
pub struct SessionView {
    /// The session.
    pub session_id: SessionId,
    /// Its ticket.
    pub ticket_id: TicketId,
    /// Its show.
    pub show_id: ShowId,
    /// Its device's label.
    pub device_label: String,
    /// When it was admitted.
    #[schema(format = DateTime)]
    pub started_at: String,
    /// Its last heartbeat.
    #[schema(format = DateTime)]
    pub last_heartbeat_at: String,
    /// When its lease lapses without a heartbeat.
    #[schema(format = DateTime)]
    pub expires_at: String,
}

/// The live sessions.
#[derive(ToSchema)]
pub struct SessionList {
    /// The sessions.
    pub sessions: Vec<SessionView>,
}

/// An API key, without its secret (the creation answer alone carries `key`).
#[derive(ToSchema)]
pub struct ApiKeyView {
    /// The key's public id.
    pub id: ApiKeyId,
    /// A name for humans.
    pub name: String,
    /// What it may do (`admin` is everything).
    pub scopes: Vec<Scope>,
    /// When it was made.
    #[schema(format = DateTime, required = true)]
    pub created_at: Option<String>,
    /// Its last successful use (kept loosely).
    #[schema(format = DateTime, required = true)]
    pub last_used_at: Option<String>,
    /// The key to send as `Authorization: Bearer <key>`: in the creation answer only, never again.
    pub key: Option<String>,
}

/// Every API key.
#[derive(ToSchema)]
pub struct ApiKeyList {
    /// The keys.
    pub api_keys: Vec<ApiKeyView>,
}

/// A member of the CDN pool as the API shows it: never its keys.
#[derive(ToSchema)]
pub struct CdnView {
    /// Its id, also the HLS pathway id.
    pub id: CdnId,
    /// A name for humans.
    pub name: String,
    /// Where viewers reach it (`/o` for the origin).
    pub base_url: String,
    /// Its signing scheme (`akamai`, `cloudfront`, `google`, `bunny`, `nginx`; `usher` for the origin).
    #[schema(required = true)]
    pub scheme: Option<String>,
    /// Whether signing keys are configured (they are never shown).
    pub key_set: bool,
    /// Lower comes first.
    pub priority: u32,
    /// Higher comes first among equal priorities.
    pub weight: u32,
    /// Whether it delivers.
    pub enabled: bool,
    /// Whether it is Usher's own origin.
    pub builtin: bool,
    /// The object the health prober fetches through it.
    #[schema(required = true)]
    pub canary: Option<String>,
    /// Whether an origin-pull secret is set (it is never shown).
    pub origin_secret_set: bool,
    /// Its health.
    pub health: CdnHealthView,
    /// When it was added.
    #[schema(format = DateTime)]
    pub created_at: String,
    /// When it was last changed.
    #[schema(format = DateTime)]
    pub updated_at: String,
}

/// A CDN's health.
#[derive(ToSchema)]
pub struct CdnHealthView {
    /// `unknown`, `healthy` or `unhealthy`.
    pub state: String,
    /// The last failure.
    #[schema(required = true)]
    pub last_error: Option<String>,
    /// When it was last checked.
    #[schema(format = DateTime, required = true)]
    pub checked_at: Option<String>,
    /// The last probe's time to answer, in milliseconds.
    #[schema(required = true)]
    pub latency_ms: Option<u64>,
    /// Since when it has been in this state.
    #[schema(format = DateTime, required = true)]
    pub since: Option<String>,
}

/// What a viewer would get from a CDN for one object (`POST /api/v1/cdns/{cdn_id}/sign`).
#[derive(ToSchema)]
pub struct SignedObject {
    /// The CDN.
    pub cdn: CdnId,
    /// Its signing scheme.
    #[schema(required = true)]
    pub scheme: Option<String>,
    /// The URL to fetch (signed itself when the scheme signs URLs).
    pub url: String,
    /// Cookies to hold.
    pub cookies: Option<Vec<SignedCookie>>,
    /// Headers to send (`name`, `value`).
    pub headers: Option<Vec<GrantHeader>>,
    /// When the signature lapses.
    #[schema(format = DateTime)]
    pub expires_at: String,
}

/// A cookie a CDN needs, with the attributes to set it with.
#[derive(ToSchema)]
pub struct SignedCookie {
    /// Its name.
    pub name: String,
    /// Its value, exactly as the CDN expects it.
    pub value: String,
    /// `Domain=`, when the CDN's host is known.
    pub domain: Option<String>,
    /// `Path=`.
    pub path: Option<String>,
    /// `Secure` (set for `https` URLs).
    pub secure: bool,
    /// `HttpOnly`.
    pub http_only: bool,
    /// The `Set-Cookie` header value that sets it.
    pub set_cookie: String,
}

/// The CDN pool.
#[derive(ToSchema)]
pub struct CdnList {
    /// Every member by id, the origin included.
    pub cdns: Vec<CdnView>,
}

/// The GeoIP database serving, its history and the update settings.
#[derive(ToSchema)]
pub struct GeoIpStatus {
    /// Whether a database serves lookups.
    pub loaded: bool,
    /// The database serving.
    #[schema(required = true)]
    pub database: Option<DbInfo>,
    /// The last reload attempt, whatever its outcome.
    #[schema(required = true)]
    pub last_reload: Option<ReloadEvent>,
    /// The last failed or refused attempt.
    #[schema(required = true)]
    pub last_error: Option<ReloadEvent>,
    /// The update settings.
    pub config: GeoIpConfig,
    /// What the upload or reload did (its answers only).
    pub outcome: Option<Reloaded>,
}

/// How the GeoIP database is kept up to date (`geoip.*` settings).
#[derive(ToSchema)]
pub struct GeoIpConfig {
    /// `geoip.path`.
    #[schema(required = true)]
    pub path: Option<String>,
    /// Seconds between checks of the file.
    #[schema(required = true)]
    pub reload_interval_s: Option<u64>,
    /// The download URL without its query.
    #[schema(required = true)]
    pub download_url: Option<String>,
    /// Seconds between downloads.
    #[schema(required = true)]
    pub download_interval_s: Option<u64>,
    /// `pinned`, `published` or `none`.
    #[schema(required = true, pattern = "^(pinned|published|none)$")]
    pub download_sha256_check: Option<String>,
}

/// A permission to fetch one show's media from one CDN: the origin's carries a `token` for `/o/{token}/…`,
/// a CDN's a signed `url` with the `cookies` and `headers` its scheme needs.
#[derive(ToSchema)]
pub struct Grant {
    /// The CDN.
    pub cdn: CdnId,
    /// Where the media lies (`/o/` for the origin).
    pub base_url: String,
    /// The CDN's signing scheme (CDN grants).
    pub scheme: Option<String>,
    /// The origin grant (origin grants); for a CDN grant, a folder-wide signature riding in the path right
    /// after `base_url` (`null` when the scheme signs otherwise).
    pub token: Option<String>,
    /// A folder-wide signature riding in the query string (CDN grants; `null` when the scheme signs
    /// otherwise): players add it to every URI under `base_url`.
    pub query: Option<String>,
    /// The signed master playlist URL (CDN grants).
    pub url: Option<String>,
    /// Cookies to hold (CDN grants).
    pub cookies: Option<Vec<GrantCookie>>,
    /// Headers to send (CDN grants).
    pub headers: Option<Vec<GrantHeader>>,
    /// When the grant lapses.
    #[schema(format = DateTime)]
    pub expires_at: String,
}

/// A cookie a CDN needs.
#[derive(ToSchema)]
pub struct GrantCookie {
    /// Its name.
    pub name: String,
    /// Its value.
    pub value: String,
    /// The `Set-Cookie` header value that sets it.
    pub set_cookie: String,
}

/// A request header a CDN needs.
#[derive(ToSchema)]
pub struct GrantHeader {
    /// Its name.
    pub name: String,
    /// Its value.
    pub value: String,
}

/// An admitted viewer's session.
#[derive(ToSchema)]
pub struct Admission {
    /// The session, for heartbeats and leaving.
    pub session_id: SessionId,
    /// The ticket.
    pub ticket_id: TicketId,
    /// The show.
    pub show_id: ShowId,
    /// The device already held this seat (a reload).
    pub reattached: bool,
    /// Seconds between heartbeats.
    pub heartbeat_interval_s: u32,
    /// Seconds the seat is kept without a heartbeat.
    pub lease_ttl_s: u32,
    /// When the seat lapses without a heartbeat.
    #[schema(format = DateTime)]
    pub lease_expires_at: String,
    /// The session's master playlist (`/hls/{session_id}/master.m3u8`).
    pub playlist_url: String,
    /// One grant per enabled CDN, in pool order.
    pub grants: Vec<Grant>,
    /// The enabled, healthy CDN ids, best first.
    pub cdn_order: Vec<CdnId>,
}

/// A renewed seat (`status` `ok`), or `degraded` while the store is unreachable (keep playing with the
/// grants held, heartbeat again after `heartbeat_interval_s`).
#[derive(ToSchema)]
pub struct HeartbeatAnswer {
    /// `ok` or `degraded`.
    #[schema(pattern = "^(ok|degraded)$")]
    pub status: String,
    /// Seconds until the next heartbeat.
    pub heartbeat_interval_s: u32,
    /// When the seat lapses without a heartbeat (`ok`).
    #[schema(format = DateTime)]
    pub lease_expires_at: Option<String>,
    /// Fresh grants (`ok`).
    pub grants: Option<Vec<Grant>>,
    /// The enabled, healthy CDN ids, best first (`ok`).
    pub cdn_order: Option<Vec<CdnId>>,
}

/// An HLS content-steering manifest (RFC 8216bis, section 7).
#[derive(ToSchema)]
pub struct SteeringManifest {
    /// Always 1.
    #[schema(rename = "VERSION")]
    pub version: u32,
    /// Seconds until the player reloads it (the heartbeat interval).
    #[schema(rename = "TTL")]
    pub ttl: u32,
    /// Where to reload it.
    #[schema(rename = "RELOAD-URI")]
    pub reload_uri: String,
    /// The pathways, best first: CDN ids, each preceded by its grant clone (`<id>.g<n>`) when it has one.
    #[schema(rename = "PATHWAY-PRIORITY")]
    pub pathway_priority: Vec<String>,
    /// For players that cannot swap grants (absent for the watch page's player, which says
    /// `usher_player=web`): a clone of each pathway whose grant can ride in the query, with the fresh grant
    /// in `URI-REPLACEMENT.PARAMS`.
    #[schema(rename = "PATHWAY-CLONES")]
    pub pathway_clones: Option<Vec<PathwayClone>>,
}

/// A content-steering pathway clone that carries a fresh grant.
#[derive(ToSchema)]
pub struct PathwayClone {
    /// The pathway it copies.
    #[schema(rename = "BASE-ID")]
    pub base_id: CdnId,
    /// Its own id, `<base>.g<n>`.
    #[schema(rename = "ID")]
    pub id: String,
    /// `{"PARAMS": {name: value}}`: query parameters added to every URI of the base pathway.
    #[schema(rename = "URI-REPLACEMENT")]
    pub uri_replacement: serde_json::Value,
}

/// The process answers.
#[derive(ToSchema)]
pub struct Liveness {
    /// `ok`.
    pub status: String,
}

/// Whether the node takes work: `ready`, `not_ready` (with what is missing) or `draining`.
#[derive(ToSchema)]
pub struct Readiness {
    /// `ready`, `not_ready` or `draining`.
    #[schema(pattern = "^(ready|not_ready|draining)$")]
    pub status: String,
    /// `ok` or `unavailable`.
    pub store: Option<String>,
    /// `loaded`, `not_needed` or `missing`.
    pub geoip: Option<String>,
}

/// A console user (`password` only in the answer that made or reset it).
#[derive(ToSchema)]
pub struct AdminUserView {
    /// The login name.
    pub name: String,
    /// `admin`, `support` or `observer`.
    #[schema(pattern = "^(admin|support|observer)$")]
    pub role: String,
    /// Whether the next login must choose a new password first.
    pub must_change_password: bool,
    /// When the user was made.
    #[schema(format = DateTime)]
    pub created_at: String,
    /// When the user was last changed.
    #[schema(format = DateTime)]
    pub updated_at: String,
    /// The one-time password Usher made: in the answer that made or reset it only, never again.
    pub password: Option<String>,
}

/// Every console user.
#[derive(ToSchema)]
pub struct AdminUserList {
    /// The users.
    pub admin_users: Vec<AdminUserView>,
}

/// Audit log entries, newest first.
#[derive(ToSchema)]
pub struct AuditPage {
    /// The entries.
    pub entries: Vec<AuditEntryView>,
}

/// One change in the audit log.
#[derive(ToSchema)]
pub struct AuditEntryView {
    /// When.
    #[schema(format = DateTime)]
    pub at: String,
    /// Who.
    pub actor: AuditActor,
    /// What, dotted (`show.put`, `ticket.revoke`, `cdn.patch`, `login.failed`).
    pub action: String,
    /// The record changed (`show:demo`, `ticket:t_…`), empty when none.
    pub target: String,
    /// The client address the request came from.
    #[schema(required = true)]
    pub address: Option<String>,
    /// A short, secret-free note (`enabled=false`).
    pub detail: String,
}

/// Who made a change.
#[derive(ToSchema)]
pub struct AuditActor {
    /// `api_key`, `user` or `system`.
    #[schema(pattern = "^(api_key|user|system)$")]
    pub kind: String,
    /// The key id, user name or system component.
    pub id: String,
}

/// The dashboard's figures.
#[derive(ToSchema)]
pub struct Dashboard {
    /// When they were taken.
    #[schema(format = DateTime)]
    pub at: String,
    /// Sessions holding a seat now.
    pub live_viewers: u64,
    /// Live viewers per show.
    pub shows: Vec<DashboardShow>,
    /// Admits and refusals in the last hour.
    pub last_hour: DashboardHour,
    /// The CDN pool with its health.
    pub cdns: Vec<CdnView>,
    /// The GeoIP database's age.
    pub geoip: DashboardGeoIp,
}

/// Live viewers of one show.
#[derive(ToSchema)]
pub struct DashboardShow {
    /// The show.
    pub show_id: String,
    /// Its title (empty for a show deleted while watched).
    pub title: String,
    /// Whether it is published.
    pub published: bool,
    /// Sessions holding a seat on it.
    pub viewers: u64,
}

/// Admit outcomes in the last hour.
#[derive(ToSchema)]
pub struct DashboardHour {
    /// Viewers let in (`admitted`, `reattached`).
    pub admits: u64,
    /// Viewers refused, all reasons.
    pub refusals_total: u64,
    /// Viewers refused, by reason.
    pub refusals: Vec<DashboardRefusal>,
    /// Every outcome with its count.
    pub by_outcome: BTreeMap<String, u64>,
}

/// Refusals for one reason.
#[derive(ToSchema)]
pub struct DashboardRefusal {
    /// The outcome (`ticket_in_use`, `geo_blocked`, …).
    pub reason: String,
    /// How many.
    pub count: u64,
}

/// The GeoIP database as the dashboard shows it.
#[derive(ToSchema)]
pub struct DashboardGeoIp {
    /// Whether a database serves lookups.
    pub loaded: bool,
    /// Its type (`GeoLite2-Country`, …).
    #[schema(required = true)]
    pub database_type: Option<String>,
    /// When it was built, in seconds since 1970.
    #[schema(required = true)]
    pub build_epoch: Option<u64>,
    /// Its age in days.
    #[schema(required = true)]
    pub age_days: Option<i64>,
}

/// This document, OpenAPI 3.1: its members are those the OpenAPI Specification defines
/// (<https://spec.openapis.org/oas/v3.1.0>), not described again here.
#[derive(ToSchema)]
pub struct OpenApiDocument {
    /// `3.1.0`.
    pub openapi: String,
    /// Title, description, licence and version.
    pub info: BTreeMap<String, serde_json::Value>,
    /// The operations, by path.
    pub paths: BTreeMap<String, serde_json::Value>,
    /// Schemas and security schemes.
    pub components: BTreeMap<String, serde_json::Value>,
    /// The operations' groups.
    pub tags: Vec<BTreeMap<String, serde_json::Value>>,
}
