//! The node's live inputs: per show, who publishes (at most one encoder), the input's state as the
//! console and the API show it, and the lock that keeps one ffmpeg at a time writing a show's stream.
//!
//! Kept in memory on the node the encoder publishes to (ingest runs on one node per show: README
//! "Several nodes"); a `std::sync::Mutex` guards it, never held across an `.await`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio_util::sync::CancellationToken;
use usher_core::clock::UnixMs;
use usher_core::ids::ShowId;

/// A publisher that sent nothing for this long may be replaced by a new one with the show's key (an
/// encoder that lost its network reconnects before the old connection times out); one that is sending
/// is never replaced: the newcomer is refused.
pub const STALE_PUBLISHER: Duration = Duration::from_secs(2);

/// The protocol an encoder publishes over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// RTMP (OBS, ffmpeg, most hardware encoders).
    Rtmp,
    /// SRT in caller mode, the key as its `streamid`.
    Srt,
}

impl Protocol {
    /// Its label in metrics and logs.
    pub fn label(self) -> &'static str {
        match self {
            Protocol::Rtmp => "rtmp",
            Protocol::Srt => "srt",
        }
    }
}

/// Where a show's live input stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum IngestState {
    /// No encoder has published yet (on this node).
    Waiting,
    /// An encoder publishes and ffmpeg writes the live stream.
    Live,
    /// The encoder dropped out; the stream goes on where it stopped if it comes back in time.
    Reconnecting,
    /// The stream is over (`#EXT-X-ENDLIST`): the reconnect window or the show's window passed.
    Ended,
}

/// What the input looks like, as ffmpeg and the encoder's metadata say.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct InputInfo {
    /// Picture width, when known.
    #[schema(required = true)]
    pub width: Option<u32>,
    /// Picture height, when known.
    #[schema(required = true)]
    pub height: Option<u32>,
    /// Frames per second, when known.
    #[schema(required = true)]
    pub fps: Option<f32>,
}

/// A show's input at one moment.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Its state.
    pub state: IngestState,
    /// Since when (Unix ms).
    pub since: UnixMs,
    /// The protocol of the current or last publisher.
    pub protocol: Option<Protocol>,
    /// The current or last publisher's address.
    pub remote: Option<SocketAddr>,
    /// Input bit rate over the last seconds, kbit/s, while live.
    pub bitrate_kbps: Option<u64>,
    /// The input's picture.
    pub input: InputInfo,
    /// Publishes accepted since the node started.
    pub publishes: u64,
    /// ffmpeg runs that failed while an encoder published.
    pub transcoder_failures: u64,
}

struct Channel {
    snap: Snapshot,
    /// The connection holding the show's input, its last data, and how to tell it to stop.
    holder: Option<(u64, Instant, CancellationToken)>,
    /// Bumped by every claim: a reconnect timer ends the stream only if no claim came since.
    generation: u64,
    /// ffmpeg runs so far: the first starts the playlists afresh, later ones append to them.
    runs: u64,
    window_bytes: u64,
    window_start: Instant,
    /// One ffmpeg at a time writes the show's folder.
    output: Arc<tokio::sync::Mutex<()>>,
}

impl Channel {
    fn snapshot(&self) -> Snapshot {
        let mut snap = self.snap.clone();
        if let Some((_, last, _)) = &self.holder
            && last.elapsed() >= STALE_PUBLISHER
        {
            snap.state = IngestState::Reconnecting;
            snap.bitrate_kbps = None;
        }
        snap
    }
}

/// A claim on a show's input.
#[derive(Debug)]
pub struct Claim {
    /// The connection's id in the hub.
    pub conn: u64,
    /// The claim's generation.
    pub generation: u64,
    /// Cancelled when a newer publisher takes over.
    pub evicted: CancellationToken,
    /// Held by the connection's ffmpeg while it writes.
    pub output: Arc<tokio::sync::Mutex<()>>,
}

/// Why a claim was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy;

/// The live inputs of this node.
#[derive(Default)]
pub struct Hub {
    channels: Mutex<HashMap<ShowId, Channel>>,
    next_conn: std::sync::atomic::AtomicU64,
}

impl Hub {
    fn with<T>(&self, f: impl FnOnce(&mut HashMap<ShowId, Channel>) -> T) -> T {
        f(&mut self.channels.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Claims `show`'s input for a new publisher: refused while another publisher holds it and sent
    /// data within [`STALE_PUBLISHER`]; a stale holder is evicted.
    ///
    /// # Errors
    /// [`Busy`] when another encoder publishes.
    pub fn claim(
        &self,
        show: &ShowId,
        protocol: Protocol,
        remote: SocketAddr,
        now: UnixMs,
    ) -> Result<Claim, Busy> {
        let conn = self
            .next_conn
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.with(|map| {
            let ch = map.entry(show.clone()).or_insert_with(|| Channel {
                snap: Snapshot {
                    state: IngestState::Waiting,
                    since: now,
                    protocol: None,
                    remote: None,
                    bitrate_kbps: None,
                    input: InputInfo::default(),
                    publishes: 0,
                    transcoder_failures: 0,
                },
                holder: None,
                generation: 0,
                runs: 0,
                window_bytes: 0,
                window_start: Instant::now(),
                output: Arc::default(),
            });
            if let Some((_, last, token)) = &ch.holder {
                if last.elapsed() < STALE_PUBLISHER {
                    return Err(Busy);
                }
                token.cancel();
            }
            let evicted = CancellationToken::new();
            ch.holder = Some((conn, Instant::now(), evicted.clone()));
            ch.generation += 1;
            ch.snap.state = IngestState::Live;
            ch.snap.since = now;
            ch.snap.protocol = Some(protocol);
            ch.snap.remote = Some(remote);
            ch.snap.bitrate_kbps = None;
            ch.snap.input = InputInfo::default();
            ch.snap.publishes += 1;
            ch.window_bytes = 0;
            ch.window_start = Instant::now();
            Ok(Claim {
                conn,
                generation: ch.generation,
                evicted,
                output: ch.output.clone(),
            })
        })
    }

    /// Notes `n` bytes of media from the holder `conn` (which keeps its claim fresh).
    pub fn note_bytes(&self, show: &ShowId, conn: u64, n: usize) {
        self.with(|map| {
            let Some(ch) = map.get_mut(show) else { return };
            let Some((holder, last, _)) = &mut ch.holder else {
                return;
            };
            if *holder != conn {
                return;
            }
            *last = Instant::now();
            ch.window_bytes += n as u64;
            let elapsed = ch.window_start.elapsed();
            if elapsed >= Duration::from_secs(2) {
                ch.snap.bitrate_kbps =
                    Some(ch.window_bytes * 8 / elapsed.as_millis().max(1) as u64);
                ch.window_bytes = 0;
                ch.window_start = Instant::now();
            }
        });
    }

    /// Notes what the input looks like (fields left `None` keep what was known).
    pub fn note_input(&self, show: &ShowId, info: InputInfo) {
        self.with(|map| {
            if let Some(ch) = map.get_mut(show) {
                let i = &mut ch.snap.input;
                i.width = info.width.or(i.width);
                i.height = info.height.or(i.height);
                i.fps = info.fps.or(i.fps);
            }
        });
    }

    /// Counts a failed ffmpeg run of `show`.
    pub fn note_transcoder_failure(&self, show: &ShowId) {
        self.with(|map| {
            if let Some(ch) = map.get_mut(show) {
                ch.snap.transcoder_failures += 1;
            }
        });
    }

    /// Counts an ffmpeg run about to start; returns whether it is the first (which starts the playlists
    /// afresh; later ones append).
    pub fn start_run(&self, show: &ShowId) -> bool {
        self.with(|map| {
            map.get_mut(show).is_some_and(|ch| {
                ch.runs += 1;
                ch.runs == 1
            })
        })
    }

    /// The holder `conn` stopped publishing: the show's input is reconnecting (unless a newer publisher
    /// took over already). Returns the generation a reconnect timer checks.
    pub fn release(&self, show: &ShowId, conn: u64, now: UnixMs) -> Option<u64> {
        self.with(|map| {
            let ch = map.get_mut(show)?;
            match &ch.holder {
                Some((holder, _, _)) if *holder == conn => {
                    ch.holder = None;
                    ch.snap.state = IngestState::Reconnecting;
                    ch.snap.since = now;
                    ch.snap.bitrate_kbps = None;
                    Some(ch.generation)
                }
                _ => None,
            }
        })
    }

    /// Ends `show`'s stream if no publisher claimed it since `generation`; returns whether it did (the
    /// caller then closes the playlists).
    pub fn end_if_unclaimed(&self, show: &ShowId, generation: u64, now: UnixMs) -> bool {
        self.with(|map| {
            let Some(ch) = map.get_mut(show) else {
                return false;
            };
            if ch.generation != generation || ch.holder.is_some() {
                return false;
            }
            ch.snap.state = IngestState::Ended;
            ch.snap.since = now;
            // the next publish (inside the show's window) starts a new run of playlists
            ch.runs = 0;
            true
        })
    }

    /// The output lock of `show`, when it has a channel.
    pub fn output(&self, show: &ShowId) -> Option<Arc<tokio::sync::Mutex<()>>> {
        self.with(|map| map.get(show).map(|ch| ch.output.clone()))
    }

    /// `show`'s input now (`None`: nothing published on this node since it started). A publisher that
    /// has sent nothing for [`STALE_PUBLISHER`] shows as reconnecting before its connection times out.
    pub fn status(&self, show: &ShowId) -> Option<Snapshot> {
        self.with(|map| map.get(show).map(Channel::snapshot))
    }

    /// Shows whose input is live or reconnecting, by id.
    pub fn active(&self) -> Vec<(ShowId, Snapshot)> {
        let mut out: Vec<_> = self.with(|map| {
            map.iter()
                .filter(|(_, ch)| {
                    matches!(ch.snap.state, IngestState::Live | IngestState::Reconnecting)
                })
                .map(|(id, ch)| (id.clone(), ch.snapshot()))
                .collect()
        });
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr() -> SocketAddr {
        "127.0.0.1:5000".parse().unwrap()
    }

    #[test]
    fn a_second_publisher_is_refused_while_the_first_sends() {
        let hub = Hub::default();
        let show = ShowId::parse("s1").unwrap();
        let first = hub.claim(&show, Protocol::Rtmp, addr(), UnixMs(1)).unwrap();
        hub.note_bytes(&show, first.conn, 100);
        assert_eq!(
            hub.claim(&show, Protocol::Srt, addr(), UnixMs(2))
                .unwrap_err(),
            Busy
        );
        assert!(hub.start_run(&show));
        assert!(!hub.start_run(&show));
        let generation = hub.release(&show, first.conn, UnixMs(3)).unwrap();
        assert_eq!(hub.status(&show).unwrap().state, IngestState::Reconnecting);
        let second = hub.claim(&show, Protocol::Srt, addr(), UnixMs(4)).unwrap();
        // a reconnect came in time: the old timer does not end the stream
        assert!(!hub.end_if_unclaimed(&show, generation, UnixMs(5)));
        let generation = hub.release(&show, second.conn, UnixMs(6)).unwrap();
        assert!(hub.end_if_unclaimed(&show, generation, UnixMs(7)));
        assert_eq!(hub.status(&show).unwrap().state, IngestState::Ended);
        assert!(
            hub.start_run(&show),
            "a new run after the end starts afresh"
        );
    }
}
