//! Live encryption (DESIGN.md "Encryption and keys"): the rotating content keys of an `aes-128` live
//! show.
//!
//! While an encoder publishes, a new content key is made every `ingest.key_rotation_s`: stored (wrapped)
//! first, so a player asking for it finds it, then written where ffmpeg reads it: a key file and the
//! key-info file (`-hls_key_info_file`: the key URI Usher answers at `/keys/{id}`, the key file, no IV
//! line: the media sequence number is the IV). With `-hls_flags periodic_rekey` ffmpeg reads the key-info
//! file at every segment and starts the next segment on the new key. A session that loses its seat gets
//! no key of a later period from the key endpoint, so it stops within one rotation (plus what its player
//! has buffered), whatever a CDN caches.
//!
//! The clear key files live in a private temporary folder (0700, files 0600, never under the media
//! folder the origin serves) for the publish's length; a period's file is removed two periods later
//! (ffmpeg may be reading the key-info file that names it as the next one is put in place).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;
use usher_core::content_key::ContentKey;
use usher_core::ids::ContentKeyId;
use usher_core::show::Show;

use crate::service::content_keys;
use crate::state::AppState;

/// The keys of one publish: the key-info file ffmpeg reads, and the task that rotates it.
pub(crate) struct Rotation {
    dir: tempfile::TempDir,
    stop: CancellationToken,
}

impl Drop for Rotation {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Rotation {
    /// Makes `show`'s first key and starts rotating every `ingest.key_rotation_s`.
    ///
    /// # Errors
    /// When the first key cannot be stored or written (the publish is then refused: no plain segments
    /// are made of an encrypted show).
    pub(crate) async fn start(state: &AppState, show: &Show) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("usher-live-keys-")
            .tempdir()
            .context("making the live keys folder")?;
        let first = next_key(state, show, dir.path(), None).await?;
        let stop = CancellationToken::new();
        let period = Duration::from_secs(u64::from(state.config.ingest.key_rotation_s));
        let (state, show, folder, token) = (
            state.clone(),
            show.clone(),
            dir.path().to_owned(),
            stop.clone(),
        );
        tokio::spawn(async move {
            // the key in use and the one before it
            let (mut current, mut previous) = (first, None::<ContentKeyId>);
            loop {
                tokio::select! {
                    () = token.cancelled() => return,
                    () = tokio::time::sleep(period) => {}
                }
                match next_key(&state, &show, &folder, previous.as_ref()).await {
                    Ok(id) => previous = Some(std::mem::replace(&mut current, id)),
                    // the current key stays in use; the next period tries again
                    Err(e) => {
                        metrics::counter!("usher_ingest_key_rotation_failures_total").increment(1);
                        tracing::error!(show.id = %show.id, error = %e, "live key rotation failed");
                    }
                }
            }
        });
        Ok(Self { dir, stop })
    }

    /// The key-info file for ffmpeg's `-hls_key_info_file`.
    pub(crate) fn key_info(&self) -> PathBuf {
        key_info_path(self.dir.path())
    }
}

fn key_info_path(dir: &Path) -> PathBuf {
    dir.join("current.keyinfo")
}

/// Makes, stores and puts in place the next key of `show`; removes the key file of `retired`.
async fn next_key(
    state: &AppState,
    show: &Show,
    dir: &Path,
    retired: Option<&ContentKeyId>,
) -> anyhow::Result<ContentKeyId> {
    let id = ContentKeyId::generate();
    let key = ContentKey::generate();
    content_keys::store_generated(state, &id, &show.stream_path, &key)
        .await
        .map_err(|e| anyhow::anyhow!("storing live content key {id}: {e}"))?;
    let key_file = dir.join(format!("{id}.key"));
    write_private(&key_file, key.expose())?;
    let base = state.base_url.trim_end_matches('/');
    let tmp = dir.join("next.keyinfo");
    write_private(
        &tmp,
        format!("{base}/keys/{id}\n{}\n", key_file.display()).as_bytes(),
    )?;
    // renamed into place: ffmpeg never reads half a key-info file
    std::fs::rename(&tmp, key_info_path(dir)).context("putting the key-info file in place")?;
    if let Some(retired) = retired {
        // ffmpeg read that key when its period began; the segments it made keep their key in the store
        let _ = std::fs::remove_file(dir.join(format!("{retired}.key")));
    }
    metrics::counter!("usher_ingest_key_rotations_total").increment(1);
    tracing::debug!(show.id = %show.id, content_key.id = %id, "live content key in use");
    Ok(id)
}

/// Writes `bytes` to a new file readable by this user only.
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(bytes)?;
    Ok(())
}
