//! Live ingest of a show: its stream key (made, shown once, rotated, audited) and its input's status with
//! the URLs encoders publish to.

use std::net::SocketAddr;

use usher_core::admin::Permission;
use usher_core::clock::UnixMs;
use usher_core::show::Show;
use usher_core::stream_key::{StreamKey, StreamKeyRecord, publish_window};

use crate::ingest::hub::{IngestState, Snapshot};
use crate::service::admin::shows::find_show;
use crate::service::audit;
use crate::service::{Caller, Result};
use crate::state::AppState;

/// A show's ingest as the admin sees it.
#[derive(Debug, Clone)]
pub struct Ingest {
    /// The show.
    pub show: Show,
    /// Whether the show has a stream key, and since when.
    pub key_created_at: Option<UnixMs>,
    /// The input's state on this node, `None` when nothing was published here since the node started.
    pub input: Option<Snapshot>,
    /// The state to show: the input's, else `waiting`.
    pub state: IngestState,
    /// From when to when an encoder may publish.
    pub window: (UnixMs, UnixMs),
    /// `rtmp://host:port/live` (OBS's "Server"), when RTMP ingest is on.
    pub rtmp_url: Option<String>,
    /// `srt://host:port`, when SRT ingest is on (the key goes in `streamid`).
    pub srt_url: Option<String>,
}

/// The host encoders reach this node at.
fn ingest_host(state: &AppState, bound: SocketAddr) -> String {
    if let Some(h) = &state.config.ingest.public_host {
        return h.clone();
    }
    // the host of the public URL: `https://watch.example.com:8443/` → `watch.example.com`
    let authority = state
        .base_url
        .split_once("://")
        .map_or("", |(_, rest)| rest.split(['/', '?']).next().unwrap_or(""));
    let from_url = if authority.starts_with('[') {
        authority.split_inclusive(']').next().map(str::to_owned)
    } else {
        authority.split(':').next().map(str::to_owned)
    }
    .filter(|h| !h.is_empty());
    match from_url {
        Some(h) => h,
        None => bound.ip().to_string(),
    }
}

/// The RTMP server URL and the SRT URL of this node (without the key).
pub fn ingest_urls(state: &AppState) -> (Option<String>, Option<String>) {
    let (rtmp, srt) = state.ingest_addrs;
    (
        rtmp.map(|a| format!("rtmp://{}:{}/live", ingest_host(state, a), a.port())),
        srt.map(|a| format!("srt://{}:{}", ingest_host(state, a), a.port())),
    )
}

async fn describe(state: &AppState, show: Show) -> Result<Ingest> {
    let key = state.store.stream_key(&show.id).await?;
    let input = state.ingest.status(&show.id);
    let cfg = &state.config.ingest;
    let opens = UnixMs::from_datetime(show.starts_at);
    let closes = UnixMs::from_datetime(show.ends_at);
    // the window's edges as the gate computes them
    let window = (
        match publish_window(opens, closes, cfg.lead_s, cfg.margin_s, UnixMs(i64::MIN)) {
            usher_core::stream_key::PublishWindow::Early(at) => at,
            _ => opens,
        },
        match publish_window(opens, closes, cfg.lead_s, cfg.margin_s, opens) {
            usher_core::stream_key::PublishWindow::Open(at) => at,
            _ => closes,
        },
    );
    let (rtmp_url, srt_url) = ingest_urls(state);
    Ok(Ingest {
        key_created_at: key.map(|k| k.created_at),
        state: input.as_ref().map_or(IngestState::Waiting, |s| s.state),
        input,
        window,
        rtmp_url,
        srt_url,
        show,
    })
}

/// A show's ingest: key, input status, URLs.
///
/// # Errors
/// `show_unknown`; `forbidden`.
pub async fn ingest_status(state: &AppState, caller: &Caller, id: &str) -> Result<Ingest> {
    let show = find_show(state, caller, id).await?;
    describe(state, show).await
}

/// Makes a new stream key for a show, replacing the old one (an encoder using it can no longer publish;
/// one publishing now goes on until it stops). The key is returned this once; only its keyed hash is kept.
///
/// # Errors
/// `show_unknown`; `forbidden`; the store's error.
pub async fn rotate_stream_key(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<(StreamKey, Ingest)> {
    caller.require(Permission::Manage)?;
    let show = find_show(state, caller, id).await?;
    let key = StreamKey::generate(&show.id);
    let record = StreamKeyRecord {
        hash: state.hasher.stream_key(key.expose()),
        created_at: state.store.now(),
    };
    let replaced = state.store.stream_key(&show.id).await?.is_some();
    state.store.put_stream_key(&show.id, Some(record)).await?;
    tracing::info!(show.id = %show.id, replaced, "stream key made");
    audit::record(
        state,
        caller,
        "show.stream_key",
        &format!("show:{}", show.id),
        if replaced { "rotated" } else { "created" },
    )
    .await;
    let ingest = describe(state, show).await?;
    Ok((key, ingest))
}

/// The shows whose input is live or reconnecting on this node.
///
/// # Errors
/// `forbidden`.
pub fn live_inputs(
    state: &AppState,
    caller: &Caller,
) -> Result<Vec<(usher_core::ids::ShowId, Snapshot)>> {
    caller.require(Permission::Read)?;
    Ok(state.ingest.active())
}
