//! The publish check, before any media is accepted: the show's stream key (keyed hash, compared in
//! constant time), a live show, inside its publish window.

use usher_core::clock::UnixMs;
use usher_core::show::{Show, ShowKind};
use usher_core::stream_key::{PublishWindow, StreamKey, publish_window};

use crate::state::AppState;

/// Why a publish was refused (a label in metrics and logs; encoders get no more than "refused").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Not a stream key, a show without one, an unknown show, or another key.
    BadKey,
    /// The show is on demand.
    NotLive,
    /// Before the window opens.
    Early,
    /// After the window closed.
    Over,
    /// Another encoder publishes to the show.
    Busy,
    /// The store did not answer.
    Unavailable,
    /// Too many encoder connections at once.
    Overloaded,
}

impl Refusal {
    /// Its label.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Refusal::BadKey => "bad_key",
            Refusal::NotLive => "not_live",
            Refusal::Early => "too_early",
            Refusal::Over => "window_over",
            Refusal::Busy => "busy",
            Refusal::Unavailable => "unavailable",
            Refusal::Overloaded => "overloaded",
        }
    }
}

/// Checks a presented key: the show and when its publish window closes.
pub(crate) async fn check(state: &AppState, presented: &str) -> Result<(Show, UnixMs), Refusal> {
    let key = StreamKey::parse(presented).ok_or(Refusal::BadKey)?;
    let record = state
        .store
        .stream_key(key.show())
        .await
        .map_err(|_| Refusal::Unavailable)?;
    // under the current token key, or (while it is rotated) the key it replaces
    let hashes = state.hasher.candidates(|h| h.stream_key(key.expose()));
    if !record.is_some_and(|r| hashes.iter().any(|h| r.hash.ct_eq(h))) {
        return Err(Refusal::BadKey);
    }
    let show = state
        .store
        .show(key.show())
        .await
        .map_err(|_| Refusal::Unavailable)?
        .ok_or(Refusal::BadKey)?;
    if show.kind != ShowKind::Live {
        return Err(Refusal::NotLive);
    }
    match window(state, &show) {
        PublishWindow::Early(_) => Err(Refusal::Early),
        PublishWindow::Over => Err(Refusal::Over),
        PublishWindow::Open(closes) => Ok((show, closes)),
    }
}

/// Where now lies against `show`'s publish window.
pub(crate) fn window(state: &AppState, show: &Show) -> PublishWindow {
    let cfg = &state.config.ingest;
    publish_window(
        UnixMs::from_datetime(show.starts_at),
        UnixMs::from_datetime(show.ends_at),
        cfg.lead_s,
        cfg.margin_s,
        state.store.now(),
    )
}
