//! A show's live ingest: its input's status and the URLs encoders publish to; the stream key only in the
//! answer that made it.

use serde::Serialize;
use usher_core::ids::ShowId;
use utoipa::ToSchema;

use crate::ingest::hub::{IngestState, InputInfo, Protocol};
use crate::service::admin::ingest::Ingest;

/// A show's ingest.
#[derive(Debug, Serialize, ToSchema)]
pub struct IngestView {
    /// The show.
    pub show_id: ShowId,
    /// `waiting`, `live`, `reconnecting` or `ended` (as this node saw it: ingest runs on the node the
    /// encoder publishes to).
    pub state: IngestState,
    /// Since when the input is in this state (`null` while waiting).
    #[schema(format = DateTime, required = true)]
    pub since: Option<String>,
    /// The protocol of the current or last publisher.
    #[schema(required = true)]
    pub protocol: Option<Protocol>,
    /// Input bit rate over the last seconds, kbit/s, while live.
    #[schema(required = true)]
    pub bitrate_kbps: Option<u64>,
    /// The input's picture, as far as known.
    pub input: InputInfo,
    /// Whether the show has a stream key.
    pub has_stream_key: bool,
    /// When its stream key was made.
    #[schema(format = DateTime, required = true)]
    pub stream_key_created_at: Option<String>,
    /// From when an encoder may publish (`starts_at` less `ingest.lead_s`).
    #[schema(format = DateTime)]
    pub publish_opens_at: String,
    /// Until when (`ends_at` plus `ingest.margin_s`).
    #[schema(format = DateTime)]
    pub publish_closes_at: String,
    /// OBS's "Server" (`rtmp://host:port/live`; the stream key is OBS's "Stream Key"), `null` when RTMP
    /// ingest is off.
    #[schema(required = true)]
    pub rtmp_url: Option<String>,
    /// `srt://host:port` (publish to `srt://host:port?streamid=<stream key>`), `null` when SRT ingest is off.
    #[schema(required = true)]
    pub srt_url: Option<String>,
    /// Publishes accepted on this node since it started.
    pub publishes: u64,
    /// The stream key, in the answer that made it only, never again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_key: Option<String>,
}

impl From<&Ingest> for IngestView {
    fn from(i: &Ingest) -> Self {
        let snap = i.input.as_ref();
        Self {
            show_id: i.show.id.clone(),
            state: i.state,
            since: snap.map(|s| s.since.to_rfc3339()),
            protocol: snap.and_then(|s| s.protocol),
            bitrate_kbps: snap.and_then(|s| s.bitrate_kbps),
            input: snap.map(|s| s.input).unwrap_or_default(),
            has_stream_key: i.key_created_at.is_some(),
            stream_key_created_at: i.key_created_at.map(|t| t.to_rfc3339()),
            publish_opens_at: i.window.0.to_rfc3339(),
            publish_closes_at: i.window.1.to_rfc3339(),
            rtmp_url: i.rtmp_url.clone(),
            srt_url: i.srt_url.clone(),
            publishes: snap.map_or(0, |s| s.publishes),
            stream_key: None,
        }
    }
}
