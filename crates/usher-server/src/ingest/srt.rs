//! The SRT listener, on `srt-tokio`: its listener hands each connection request over *before* the
//! handshake completes, so the stream key (the request's `streamid`, plain or in the access-control form
//! `#!::r=<key>,m=publish`) is checked first and a refused caller never gets a connection. The payload is
//! MPEG-TS, piped to ffmpeg as it comes.

use std::net::SocketAddr;
use std::sync::Arc;

use futures::StreamExt as _;
use srt_tokio::access::{RejectReason, ServerRejectReason};
use srt_tokio::{ConnectionRequest, SrtIncoming, SrtListener};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::ingest::gate::Refusal;
use crate::ingest::hub::Protocol;
use crate::ingest::transcoder::InputFormat;
use crate::ingest::{admit_publish, next_or_stop};
use crate::state::AppState;

/// Binds the SRT listener's UDP socket (port 0 allowed) and starts the listener on it.
pub(super) async fn bind(
    at: SocketAddr,
) -> std::io::Result<(SrtListener, SrtIncoming, SocketAddr)> {
    let socket = tokio::net::UdpSocket::bind(at).await?;
    let bound = socket.local_addr()?;
    let (listener, incoming) = SrtListener::builder().socket(socket).bind(bound).await?;
    Ok((listener, incoming, bound))
}

/// The key in a `streamid`: the whole id, or the `r` field of the access-control form.
fn key_of(stream_id: &str) -> &str {
    match stream_id.strip_prefix("#!::") {
        Some(fields) => fields
            .split(',')
            .find_map(|f| f.strip_prefix("r="))
            .unwrap_or(""),
        None => stream_id,
    }
}

/// Takes SRT connection requests until `cancel`.
pub(super) async fn serve(
    listener: SrtListener,
    mut incoming: SrtIncoming,
    state: AppState,
    tasks: TaskTracker,
    cancel: CancellationToken,
) {
    let _listener = listener;
    let slots = Arc::new(Semaphore::new(state.config.ingest.max_connections));
    loop {
        let request = tokio::select! {
            () = cancel.cancelled() => return,
            r = incoming.incoming().next() => match r {
                Some(r) => r,
                None => return,
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            metrics::counter!("usher_ingest_publishes_total", "protocol" => "srt", "outcome" => Refusal::Overloaded.label()).increment(1);
            let _ = request
                .reject(RejectReason::Server(ServerRejectReason::Overload))
                .await;
            continue;
        };
        let state = state.clone();
        let cancel = cancel.clone();
        tasks.spawn(async move {
            connection(request, state, cancel).await;
            drop(slot);
        });
    }
}

async fn connection(request: ConnectionRequest, state: AppState, cancel: CancellationToken) {
    let remote = request.remote();
    let key = request
        .stream_id()
        .map(|s| key_of(s.as_str()).to_owned())
        .unwrap_or_default();
    let mut publication =
        match admit_publish(&state, &key, Protocol::Srt, InputFormat::MpegTs, remote).await {
            Ok(p) => p,
            Err(refusal) => {
                let reason = match refusal {
                    Refusal::BadKey => ServerRejectReason::Unauthorized,
                    Refusal::NotLive | Refusal::Early | Refusal::Over => {
                        ServerRejectReason::Forbidden
                    }
                    Refusal::Busy => ServerRejectReason::Conflict,
                    Refusal::Unavailable => ServerRejectReason::Down,
                    Refusal::Overloaded => ServerRejectReason::Overload,
                };
                let _ = request.reject(RejectReason::Server(reason)).await;
                return;
            }
        };
    let mut socket = match request.accept(None).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(remote = %crate::logged::client_address(remote), error = %e, "srt accept failed");
            publication.finish().await;
            return;
        }
    };
    loop {
        let next = next_or_stop(
            async { socket.next().await.and_then(Result::ok) },
            &publication,
            &cancel,
        )
        .await;
        let Some((_, data)) = next else { break };
        if let Err(e) = publication.feed(&data, Vec::new).await {
            tracing::error!(show.id = %publication.show.id, error = %e, "live transcoding stopped");
            break;
        }
    }
    drop(socket);
    publication.finish().await;
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_key_is_the_streamid_or_its_resource_field() {
        assert_eq!(super::key_of("live.abc"), "live.abc");
        assert_eq!(super::key_of("#!::r=live.abc,m=publish"), "live.abc");
        assert_eq!(super::key_of("#!::m=publish,r=live.abc"), "live.abc");
        assert_eq!(super::key_of("#!::m=publish"), "");
    }
}
