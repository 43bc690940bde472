//! The RTMP listener, on `rml_rtmp`'s handshake and server session (the protocol parts; the sockets,
//! limits and the publish check are Usher's).
//!
//! Before a publish is accepted a connection gets [`HELLO_DEADLINE`] and [`HELLO_BYTES`] to complete the
//! handshake, `connect` and `publish` (so a client that never publishes cannot hold memory or a slot);
//! the publish's stream name is the stream key, checked before any media is taken. A wrong key, a show
//! outside its window and a second publisher get `NetStream.Publish.BadName` and the connection closes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use rml_rtmp::sessions::{
    ServerSession, ServerSessionConfig, ServerSessionEvent, ServerSessionResult,
};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::ingest::flv::{AUDIO, FlvWriter, VIDEO};
use crate::ingest::hub::{InputInfo, Protocol};
use crate::ingest::transcoder::InputFormat;
use crate::ingest::{Publication, admit_publish, next_or_stop};
use crate::state::AppState;

/// Time from accept to an accepted publish.
const HELLO_DEADLINE: Duration = Duration::from_secs(10);
/// Bytes a connection may send before its publish is accepted (the handshake is 1537 bytes, `connect`
/// and `publish` a few hundred).
const HELLO_BYTES: usize = 64 * 1024;
/// Read buffer.
const READ_BUF: usize = 64 * 1024;

/// Accepts RTMP connections until `cancel`.
pub(super) async fn serve(
    listener: TcpListener,
    state: AppState,
    tasks: TaskTracker,
    cancel: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(state.config.ingest.max_connections));
    loop {
        let (stream, remote) = tokio::select! {
            () = cancel.cancelled() => return,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "rtmp accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            metrics::counter!("usher_ingest_publishes_total", "protocol" => "rtmp", "outcome" => "overloaded").increment(1);
            drop(stream);
            continue;
        };
        let state = state.clone();
        let cancel = cancel.clone();
        tasks.spawn(async move {
            let _ = stream.set_nodelay(true);
            connection(stream, remote, state, cancel).await;
            drop(slot);
        });
    }
}

async fn connection(
    mut stream: TcpStream,
    remote: SocketAddr,
    state: AppState,
    cancel: CancellationToken,
) {
    let hello = tokio::time::timeout(HELLO_DEADLINE, hello(&mut stream, remote, &state)).await;
    let (mut session, mut publication) = match hello {
        Ok(Ok(Some(x))) => x,
        Ok(Ok(None)) => return,
        Ok(Err(e)) => {
            tracing::debug!(remote = %crate::logged::client_address(remote), error = %e, "rtmp connection dropped before publishing");
            return;
        }
        Err(_) => {
            tracing::debug!(remote = %crate::logged::client_address(remote), "rtmp connection timed out before publishing");
            return;
        }
    };
    let mut flv = FlvWriter::default();
    let mut buf = vec![0u8; READ_BUF];
    loop {
        let read = next_or_stop(
            async { stream.read(&mut buf).await.ok().filter(|n| *n > 0) },
            &publication,
            &cancel,
        )
        .await;
        let Some(n) = read else { break };
        let results = match session.handle_input(&buf[..n]) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(remote = %crate::logged::client_address(remote), error = ?e, "rtmp session error");
                break;
            }
        };
        match media(&mut stream, results, &mut flv, &mut publication).await {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                tracing::error!(show.id = %publication.show.id, error = %e, "live transcoding stopped");
                break;
            }
        }
    }
    publication.finish().await;
}

type Hello = Option<(ServerSession, Publication)>;

/// Handshake, `connect`, `publish` with the key: the session and the accepted publication, or `None`
/// when the publish was refused.
async fn hello(
    stream: &mut TcpStream,
    remote: SocketAddr,
    state: &AppState,
) -> anyhow::Result<Hello> {
    let mut handshake = Handshake::new(PeerType::Server);
    let mut buf = vec![0u8; 8192];
    let mut taken = 0usize;
    let rest = loop {
        let n = stream.read(&mut buf).await?;
        anyhow::ensure!(n > 0, "closed during the handshake");
        taken += n;
        anyhow::ensure!(taken <= HELLO_BYTES, "too many bytes before publishing");
        match handshake.process_bytes(&buf[..n])? {
            HandshakeProcessResult::InProgress { response_bytes } => {
                stream.write_all(&response_bytes).await?;
            }
            HandshakeProcessResult::Completed {
                response_bytes,
                remaining_bytes,
            } => {
                stream.write_all(&response_bytes).await?;
                break remaining_bytes;
            }
        }
    };
    let (mut session, first) = ServerSession::new(ServerSessionConfig::new())
        .map_err(|e| anyhow::anyhow!("rtmp session: {e:?}"))?;
    send(stream, &first).await?;
    let mut pending = rest;
    loop {
        if !pending.is_empty() {
            let results = session
                .handle_input(&pending)
                .map_err(|e| anyhow::anyhow!("rtmp: {e:?}"))?;
            pending.clear();
            send(stream, &results).await?;
            for r in results {
                let ServerSessionResult::RaisedEvent(event) = r else {
                    continue;
                };
                match event {
                    ServerSessionEvent::ConnectionRequested { request_id, .. } => {
                        let out = session
                            .accept_request(request_id)
                            .map_err(|e| anyhow::anyhow!("rtmp: {e:?}"))?;
                        send(stream, &out).await?;
                    }
                    ServerSessionEvent::PublishStreamRequested {
                        request_id,
                        stream_key,
                        ..
                    } => {
                        match admit_publish(
                            state,
                            &stream_key,
                            Protocol::Rtmp,
                            InputFormat::Flv,
                            remote,
                        )
                        .await
                        {
                            Ok(publication) => {
                                let out = session
                                    .accept_request(request_id)
                                    .map_err(|e| anyhow::anyhow!("rtmp: {e:?}"))?;
                                send(stream, &out).await?;
                                return Ok(Some((session, publication)));
                            }
                            Err(refusal) => {
                                let out = session
                                    .reject_request(
                                        request_id,
                                        "NetStream.Publish.BadName",
                                        &format!("publish refused: {}", refusal.label()),
                                    )
                                    .map_err(|e| anyhow::anyhow!("rtmp: {e:?}"))?;
                                send(stream, &out).await?;
                                let _ = stream.shutdown().await;
                                return Ok(None);
                            }
                        }
                    }
                    ServerSessionEvent::PlayStreamRequested { request_id, .. } => {
                        // this is an ingest point, not a player's server
                        let out = session
                            .reject_request(
                                request_id,
                                "NetStream.Play.Failed",
                                "playback is not served here",
                            )
                            .map_err(|e| anyhow::anyhow!("rtmp: {e:?}"))?;
                        send(stream, &out).await?;
                        return Ok(None);
                    }
                    _ => {}
                }
            }
        }
        let n = stream.read(&mut buf).await?;
        anyhow::ensure!(n > 0, "closed before publishing");
        taken += n;
        anyhow::ensure!(taken <= HELLO_BYTES, "too many bytes before publishing");
        pending.extend_from_slice(&buf[..n]);
    }
}

/// Feeds the media of `results` to ffmpeg; `false` when the encoder finished publishing.
async fn media(
    stream: &mut TcpStream,
    results: Vec<ServerSessionResult>,
    flv: &mut FlvWriter,
    publication: &mut Publication,
) -> anyhow::Result<bool> {
    for r in results {
        match r {
            ServerSessionResult::OutboundResponse(packet) => {
                stream.write_all(&packet.bytes).await?;
            }
            ServerSessionResult::RaisedEvent(event) => match event {
                ServerSessionEvent::VideoDataReceived {
                    data, timestamp, ..
                } => {
                    let tag = flv.tag(VIDEO, timestamp.value, &data);
                    publication.feed(&tag, || flv.prelude()).await?;
                }
                ServerSessionEvent::AudioDataReceived {
                    data, timestamp, ..
                } => {
                    let tag = flv.tag(AUDIO, timestamp.value, &data);
                    publication.feed(&tag, || flv.prelude()).await?;
                }
                ServerSessionEvent::StreamMetadataChanged { metadata, .. } => {
                    publication.state.ingest.note_input(
                        &publication.show.id,
                        InputInfo {
                            width: metadata.video_width,
                            height: metadata.video_height,
                            fps: metadata.video_frame_rate,
                        },
                    );
                }
                ServerSessionEvent::PublishStreamFinished { .. } => return Ok(false),
                _ => {}
            },
            ServerSessionResult::UnhandleableMessageReceived(_) => {}
        }
    }
    Ok(true)
}

async fn send(stream: &mut TcpStream, results: &[ServerSessionResult]) -> std::io::Result<()> {
    for r in results {
        if let ServerSessionResult::OutboundResponse(packet) = r {
            stream.write_all(&packet.bytes).await?;
        }
    }
    Ok(())
}
