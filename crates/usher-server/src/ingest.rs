//! Live ingest (issue 19): encoders publish to this node over RTMP ([`rtmp`], on `rml_rtmp`) or SRT
//! ([`srt`], on `srt-tokio`); the publish is checked *before* any media is taken ([`gate`]: the show's
//! stream key, a live show, inside its window, no other encoder publishing), then the input is piped into
//! a supervised ffmpeg ([`transcoder`]) that writes the show's ladder as live HLS into its stream folder,
//! where the origin serves it like any other stream.
//!
//! An encoder that drops out does not end the show: its input goes "reconnecting", and a publish with
//! the key within `ingest.reconnect_window_s` goes on with the same playlists (same media sequence, an
//! `#EXT-X-DISCONTINUITY`); only when the window passes (or the show's publish window closes) do the
//! playlists get `#EXT-X-ENDLIST`. ffmpeg failing while the encoder publishes is started again (appending)
//! up to [`MAX_RESTARTS`] times per publish.

pub mod hub;

mod flv;
mod gate;
mod keys;
mod rtmp;
mod srt;
mod transcoder;

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use tokio::io::AsyncWriteExt as _;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use usher_core::clock::UnixMs;
use usher_core::show::{Encryption, Show};

use crate::ingest::gate::Refusal;
use crate::ingest::hub::{Claim, Protocol};
use crate::ingest::transcoder::{InputFormat, Run};
use crate::settings::IngestSettings;
use crate::state::AppState;

/// ffmpeg runs started again within one publish before the publish is ended.
pub const MAX_RESTARTS: u32 = 3;
/// A publisher that sends nothing for this long has dropped out.
const IDLE: Duration = Duration::from_secs(5);
/// How long ffmpeg may take to finish its last segment once its input closed.
const FINISH: Duration = Duration::from_secs(10);

/// The bound ingest listeners (bound at build, so a taken port fails the start).
pub struct Listeners {
    rtmp: Option<tokio::net::TcpListener>,
    srt: Option<(
        ::srt_tokio::SrtListener,
        ::srt_tokio::SrtIncoming,
        SocketAddr,
    )>,
}

impl Listeners {
    /// The bound RTMP address.
    pub fn rtmp_addr(&self) -> Option<SocketAddr> {
        self.rtmp.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The bound SRT address.
    pub fn srt_addr(&self) -> Option<SocketAddr> {
        self.srt.as_ref().map(|s| s.2)
    }
}

/// Checks that ffmpeg runs and has what the live ladder needs (libx264, AAC, the HLS muxer).
///
/// # Errors
/// A message saying what is missing and how to install it.
pub async fn check_ffmpeg(cfg: &IngestSettings) -> anyhow::Result<()> {
    let out = tokio::process::Command::new(&cfg.ffmpeg)
        .args(["-hide_banner", "-encoders"])
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .with_context(|| {
            format!(
                "ingest is on (ingest.rtmp_listen or ingest.srt_listen) but ffmpeg (`{}`) cannot be run: install it (apt-get install ffmpeg) or set ingest.ffmpeg",
                cfg.ffmpeg
            )
        })?;
    let text = String::from_utf8_lossy(&out.stdout);
    anyhow::ensure!(
        out.status.success() && text.contains("libx264") && text.contains(" aac "),
        "ffmpeg (`{}`) lacks the libx264 or aac encoder the live ladder needs",
        cfg.ffmpeg
    );
    Ok(())
}

/// Binds the configured listeners.
///
/// # Errors
/// When an address cannot be bound.
pub async fn bind(cfg: &IngestSettings) -> anyhow::Result<Listeners> {
    let rtmp = match cfg.rtmp_addr() {
        Some(at) => Some(
            tokio::net::TcpListener::bind(at)
                .await
                .with_context(|| format!("binding ingest.rtmp_listen {at}"))?,
        ),
        None => None,
    };
    let srt = match cfg.srt_addr() {
        Some(at) => Some(
            srt::bind(at)
                .await
                .with_context(|| format!("binding ingest.srt_listen {at}"))?,
        ),
        None => None,
    };
    Ok(Listeners { rtmp, srt })
}

/// Serves the listeners until `cancel`.
pub fn spawn(
    listeners: Listeners,
    state: &AppState,
    tasks: &TaskTracker,
    cancel: &CancellationToken,
) {
    if let Some(l) = listeners.rtmp {
        tasks.spawn(rtmp::serve(l, state.clone(), tasks.clone(), cancel.clone()));
    }
    if let Some((listener, incoming, _)) = listeners.srt {
        tasks.spawn(srt::serve(
            listener,
            incoming,
            state.clone(),
            tasks.clone(),
            cancel.clone(),
        ));
    }
}

fn count_publish(protocol: Protocol, outcome: &'static str) {
    metrics::counter!("usher_ingest_publishes_total", "protocol" => protocol.label(), "outcome" => outcome)
        .increment(1);
}

/// An accepted publish: the checked show, its claim on the show's input, and the ffmpeg it feeds.
pub(crate) struct Publication {
    state: AppState,
    show: Show,
    closes: UnixMs,
    claim: Claim,
    protocol: Protocol,
    format: InputFormat,
    run: Option<(Run, tokio::sync::OwnedMutexGuard<()>)>,
    /// An `aes-128` show's rotating content keys, from the first ffmpeg run to the end of the publish.
    keys: Option<keys::Rotation>,
    restarts: u32,
}

/// Checks a publish with `key` from `remote` and claims the show's input.
pub(crate) async fn admit_publish(
    state: &AppState,
    key: &str,
    protocol: Protocol,
    format: InputFormat,
    remote: SocketAddr,
) -> Result<Publication, Refusal> {
    let outcome: Result<_, Refusal> = async {
        let (show, closes) = gate::check(state, key).await?;
        let before = state.ingest.status(&show.id).map(|s| s.state);
        let claim = state
            .ingest
            .claim(&show.id, protocol, remote, state.store.now())
            .map_err(|_| Refusal::Busy)?;
        Ok((show, closes, claim, before))
    }
    .await;
    match outcome {
        Ok((show, closes, claim, before)) => {
            count_publish(protocol, "accepted");
            // a new stream, not an encoder coming back within the reconnect window
            if !matches!(
                before,
                Some(hub::IngestState::Live | hub::IngestState::Reconnecting)
            ) {
                crate::service::webhooks::emit(
                    state,
                    "show.live",
                    serde_json::json!({"show_id": show.id, "protocol": protocol.label()}),
                )
                .await;
            }
            tracing::info!(show.id = %show.id, protocol = protocol.label(), remote = %crate::logged::client_address(remote), "publish accepted");
            Ok(Publication {
                state: state.clone(),
                show,
                closes,
                claim,
                protocol,
                format,
                run: None,
                keys: None,
                restarts: 0,
            })
        }
        Err(refusal) => {
            count_publish(protocol, refusal.label());
            // the presented key is never logged
            tracing::warn!(protocol = protocol.label(), remote = %crate::logged::client_address(remote), reason = refusal.label(), "publish refused");
            Err(refusal)
        }
    }
}

impl Publication {
    /// When the show's publish window closes: the publish is cut there.
    pub(crate) fn closes_in(&self) -> Duration {
        Duration::from_millis((self.closes.0 - self.state.store.now().0).max(0) as u64)
    }

    /// Cancelled when a newer publisher took over this one's show.
    pub(crate) fn evicted(&self) -> CancellationToken {
        self.claim.evicted.clone()
    }

    /// Feeds `data` to ffmpeg, starting it first (or again, appending, after it failed: `prelude` is what
    /// a fresh ffmpeg must read before `data`).
    ///
    /// # Errors
    /// When ffmpeg cannot be started, or failed more than [`MAX_RESTARTS`] times.
    pub(crate) async fn feed(
        &mut self,
        data: &[u8],
        prelude: impl Fn() -> Vec<u8>,
    ) -> anyhow::Result<()> {
        self.state
            .ingest
            .note_bytes(&self.show.id, self.claim.conn, data.len());
        metrics::counter!("usher_ingest_bytes_total", "protocol" => self.protocol.label())
            .increment(data.len() as u64);
        loop {
            if self.run.is_none() {
                // the previous ffmpeg of this show (an earlier publish) finishes before this one starts
                let guard = self.claim.output.clone().lock_owned().await;
                let fresh = self.state.ingest.start_run(&self.show.id);
                let dir =
                    transcoder::stream_dir(&self.state.config.media_dir, &self.show.stream_path);
                // a first run still appends to the playlists of a run this node left unended (a restart)
                let append = !fresh || transcoder::resumable(&dir, self.show.live_recording).await;
                // an encrypted show's first key exists before ffmpeg makes a segment, for the whole publish
                if self.show.encryption == Encryption::Aes128 && self.keys.is_none() {
                    self.keys = Some(
                        keys::Rotation::start(&self.state, &self.show)
                            .await
                            .context("starting the live key rotation")?,
                    );
                }
                let key_info = self.keys.as_ref().map(keys::Rotation::key_info);
                let playlists = transcoder::Playlists {
                    dvr_s: self
                        .show
                        .live_dvr_s
                        .unwrap_or(self.state.config.ingest.dvr_s),
                    recording: self.show.live_recording,
                    key_info: key_info.as_deref(),
                };
                let mut run = transcoder::start(
                    &self.state.config.ingest,
                    self.state.ingest.clone(),
                    &self.show.id,
                    self.format,
                    &dir,
                    append,
                    playlists,
                )
                .context("starting ffmpeg")?;
                metrics::counter!("usher_ingest_transcoder_starts_total").increment(1);
                let first = prelude();
                if !first.is_empty() && run.stdin.write_all(&first).await.is_err() {
                    self.failed(run, guard).await?;
                    continue;
                }
                self.run = Some((run, guard));
            }
            let Some((run, _)) = self.run.as_mut() else {
                continue;
            };
            if run.stdin.write_all(data).await.is_ok() {
                return Ok(());
            }
            let (run, guard) = self.run.take().expect("a run is present");
            self.failed(run, guard).await?;
        }
    }

    async fn failed(
        &mut self,
        run: Run,
        guard: tokio::sync::OwnedMutexGuard<()>,
    ) -> anyhow::Result<()> {
        let Run { stdin, mut exit } = run;
        drop(stdin);
        let status = tokio::time::timeout(FINISH, &mut exit).await;
        // an ffmpeg that hangs is killed (its child is killed on drop) before another one starts
        exit.abort();
        drop(guard);
        self.restarts += 1;
        self.state.ingest.note_transcoder_failure(&self.show.id);
        metrics::counter!("usher_ingest_transcoder_failures_total").increment(1);
        tracing::error!(show.id = %self.show.id, ?status, restarts = self.restarts, "ffmpeg stopped while the encoder published");
        anyhow::ensure!(
            self.restarts <= MAX_RESTARTS,
            "ffmpeg failed {} times in one publish",
            self.restarts
        );
        Ok(())
    }

    /// The encoder stopped (or was cut): ffmpeg finishes its last segment, the input goes reconnecting,
    /// and the stream ends unless a publish comes back within the reconnect window (at once when the
    /// show's publish window is over).
    pub(crate) async fn finish(mut self) {
        if let Some((run, guard)) = self.run.take() {
            let Run { stdin, mut exit } = run;
            drop(stdin);
            let status = tokio::time::timeout(FINISH, &mut exit).await;
            exit.abort();
            match status {
                Ok(Ok(Ok(status))) if status.success() => {}
                other => {
                    tracing::warn!(show.id = %self.show.id, ?other, "ffmpeg did not finish cleanly");
                }
            }
            drop(guard);
        }
        // ffmpeg is done with the keys: the rotation stops and its key files go
        self.keys = None;
        let state = self.state.clone();
        let show = self.show.clone();
        let Some(generation) = state
            .ingest
            .release(&show.id, self.claim.conn, state.store.now())
        else {
            return; // a newer publisher took over
        };
        tracing::info!(show.id = %show.id, protocol = self.protocol.label(), "publisher left; reconnect window open");
        let wait = match gate::window(&state, &show) {
            usher_core::stream_key::PublishWindow::Open(_) => {
                Duration::from_secs(state.config.ingest.reconnect_window_s)
            }
            _ => Duration::ZERO,
        };
        tokio::spawn(async move {
            tokio::time::sleep(wait).await;
            end_stream(&state, &show, generation).await;
        });
    }
}

/// Ends `show`'s stream unless a publisher claimed it since `generation`.
async fn end_stream(state: &AppState, show: &Show, generation: u64) {
    let Some(output) = state.ingest.output(&show.id) else {
        return;
    };
    // after any ffmpeg still writing
    let _guard = output.lock().await;
    if !state
        .ingest
        .end_if_unclaimed(&show.id, generation, state.store.now())
    {
        return;
    }
    let dir = transcoder::stream_dir(&state.config.media_dir, &show.stream_path);
    let renditions = state.config.ingest.ladder.len();
    match tokio::task::spawn_blocking(move || transcoder::close_playlists(&dir, renditions)).await {
        Ok(Ok(())) => tracing::info!(show.id = %show.id, "live stream ended"),
        other => tracing::error!(show.id = %show.id, ?other, "could not end the live playlists"),
    }
    crate::service::webhooks::emit(state, "show.ended", serde_json::json!({"show_id": show.id}))
        .await;
}

/// Reads the next chunk of an encoder's input, or `None` when it stopped, went idle for [`IDLE`], was
/// taken over, or its show's window closed.
pub(crate) async fn next_or_stop<T>(
    next: impl Future<Output = Option<T>>,
    publication: &Publication,
    cancel: &CancellationToken,
) -> Option<T> {
    let evicted = publication.evicted();
    tokio::select! {
        r = tokio::time::timeout(IDLE, next) => r.ok().flatten(),
        () = evicted.cancelled() => None,
        () = cancel.cancelled() => None,
        () = tokio::time::sleep(publication.closes_in()) => None,
    }
}
