//! The HLS content-steering manifest (RFC 8216bis, section 7) of a session.

use std::collections::BTreeMap;

use serde::Serialize;
use usher_core::ids::CdnId;
use utoipa::ToSchema;

/// An HLS content-steering manifest.
#[derive(Debug, Serialize, ToSchema)]
pub struct SteeringManifest {
    /// Always 1.
    #[serde(rename = "VERSION")]
    pub version: u32,
    /// Seconds until the player reloads it (the heartbeat interval).
    #[serde(rename = "TTL")]
    pub ttl: u32,
    /// Where to reload it.
    #[serde(rename = "RELOAD-URI")]
    pub reload_uri: String,
    /// The pathways, best first: CDN ids, each preceded by its grant clone (`<id>.g<n>`) when it has one.
    #[serde(rename = "PATHWAY-PRIORITY")]
    pub pathway_priority: Vec<String>,
    /// For players that cannot swap grants (absent for the watch page's player, which says
    /// `usher_player=web`): a clone of each pathway whose grant can ride in the query, with the fresh grant
    /// in `URI-REPLACEMENT.PARAMS`.
    #[serde(rename = "PATHWAY-CLONES", skip_serializing_if = "Vec::is_empty")]
    pub pathway_clones: Vec<PathwayClone>,
}

/// A content-steering pathway clone that carries a fresh grant.
#[derive(Debug, Serialize, ToSchema)]
pub struct PathwayClone {
    /// The pathway it copies.
    #[serde(rename = "BASE-ID")]
    #[schema(value_type = CdnId)]
    pub base_id: String,
    /// Its own id, `<base>.g<n>`.
    #[serde(rename = "ID")]
    pub id: String,
    /// Query parameters added to every URI of the base pathway.
    #[serde(rename = "URI-REPLACEMENT")]
    pub uri_replacement: UriReplacement,
}

/// What a pathway clone changes in its base pathway's URIs.
#[derive(Debug, Serialize, ToSchema)]
pub struct UriReplacement {
    /// Query parameters (name → value) added to every URI.
    #[serde(rename = "PARAMS")]
    pub params: BTreeMap<String, String>,
}
