//! Packaging jobs: a complete upload is probed (ffprobe), encoded into an ABR ladder (ffmpeg, one run for
//! every rung; [`crate::packager::ladder`]) and, for an `aes-128` show, encrypted with fresh content keys
//! ([`crate::packager::package_vod`]); the result is built in a hidden folder (`.usher-upload-<id>`, which
//! the origin never serves: no media path starts with a dot) and renamed into the media folder when
//! complete, then the show's `stream_path` names it. A failure removes what was built and leaves the
//! show as it was.
//!
//! At most `uploads.concurrency` jobs run at once. On start, a job a stop or crash interrupted is queued
//! again from its upload (packaging starts over; after three interrupted runs it is marked failed), and
//! hidden folders left by interrupted runs are removed.

use std::path::Path;
use std::sync::Arc;

use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;
use usher_core::admin::Actor;
use usher_core::content_key::ContentKey;
use usher_core::ids::{ContentKeyId, ShowId};
use usher_core::show::{Encryption, stream_folders_nest};

use super::{JobState, Upload};
use crate::packager::{self, KeyRegistry, VodJob, ladder};
use crate::service::audit;
use crate::state::AppState;

/// Runs interrupted at most this many times before the job is marked failed.
const MAX_ATTEMPTS: u32 = 3;
/// Segments per content key of an encrypted upload (a minute of 2-second segments).
const SEGMENTS_PER_KEY: usize = 30;
/// Prefix of the folders jobs build in, inside the media folder.
const STAGING_PREFIX: &str = ".usher-upload-";

/// Whether `ffmpeg` and `ffprobe` run; the error names the one missing and how to install it.
///
/// # Errors
/// When either cannot be run.
pub fn check_tools() -> anyhow::Result<()> {
    for tool in ["ffmpeg", "ffprobe"] {
        let ok = std::process::Command::new(tool)
            .arg("-version")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        anyhow::ensure!(
            ok,
            "uploads.enabled is on but `{tool}` cannot be run: install ffmpeg (Debian/Ubuntu: apt-get install -y ffmpeg), or set uploads.enabled = false"
        );
    }
    Ok(())
}

/// Requeues the jobs a stop interrupted and removes their half-built folders, then runs jobs as uploads
/// complete, `uploads.concurrency` at once, until `cancel` (a running ffmpeg is killed then; its job is
/// requeued at the next start).
pub async fn run(state: AppState, cancel: CancellationToken) {
    let ups = &state.uploads;
    if !ups.settings().enabled {
        return;
    }
    let Some(mut inbox) = ups.take_inbox() else {
        return;
    };
    recover(&state).await;
    let slots = Arc::new(tokio::sync::Semaphore::new(ups.settings().concurrency));
    let running = tokio_util::task::TaskTracker::new();
    loop {
        let id = tokio::select! {
            () = cancel.cancelled() => break,
            id = inbox.recv() => match id {
                Some(id) => id,
                None => break,
            },
        };
        let permit = tokio::select! {
            () = cancel.cancelled() => break,
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let state = state.clone();
        let cancel = cancel.clone();
        running.spawn(async move {
            tokio::select! {
                () = cancel.cancelled() => {}
                () = package(&state, &id) => {}
            }
            drop(permit);
        });
    }
    running.close();
    running.wait().await;
}

/// On start: hidden folders of interrupted runs go; interrupted jobs are queued again (or failed after
/// [`MAX_ATTEMPTS`] runs).
async fn recover(state: &AppState) {
    let ups = &state.uploads;
    if let Ok(mut dir) = tokio::fs::read_dir(&state.config.media_dir).await {
        while let Ok(Some(e)) = dir.next_entry().await {
            if e.file_name().to_string_lossy().starts_with(STAGING_PREFIX) {
                let _ = tokio::fs::remove_dir_all(e.path()).await;
            }
        }
    }
    let Ok(all) = ups.all().await else {
        return;
    };
    let mut pending: Vec<Upload> = all
        .into_iter()
        .filter(|u| {
            matches!(
                u.state,
                JobState::Queued | JobState::Probing | JobState::Packaging
            )
        })
        .collect();
    pending.sort_by_key(|u| u.created_at);
    for mut up in pending {
        let _ = tokio::fs::remove_dir_all(ups.folder(&up.id).join("work")).await;
        if up.state.running() && up.attempts >= MAX_ATTEMPTS {
            fail(
                state,
                &mut up,
                "packaging was interrupted by a restart three times; upload the file again",
            )
            .await;
            continue;
        }
        if up.state.running() {
            tracing::warn!(upload.id = %up.id, "packaging was interrupted by a stop: queued again");
        }
        up.state = JobState::Queued;
        up.percent = 0;
        let _ = ups.write(&up).await;
        ups.enqueue(&up.id);
    }
}

/// Marks a job failed with `why`, deletes its bytes (the record stays until it expires) and audits it.
async fn fail(state: &AppState, up: &mut Upload, why: &str) {
    let ups = &state.uploads;
    up.state = JobState::Failed;
    up.error = Some(why.to_owned());
    up.updated_at = OffsetDateTime::now_utc();
    ups.set_progress(&up.id, None);
    if let Err(e) = ups.write(up).await {
        tracing::error!(upload.id = %up.id, error = %e, "job state not written");
    }
    let _ = tokio::fs::remove_file(ups.folder(&up.id).join("data")).await;
    tracing::warn!(upload.id = %up.id, show.id = %up.show_id, reason = why, "packaging failed");
    audit::record_system(
        state,
        up.actor.clone(),
        "upload.failed",
        &format!("upload:{}", up.id),
        None,
        &format!("show={} {why}", up.show_id),
    )
    .await;
}

/// Runs one job, holding its upload's lock throughout.
async fn package(state: &AppState, id: &str) {
    let ups = &state.uploads;
    let lock = ups.lock(id);
    let _guard = lock.lock().await;
    let mut up = match ups.read(id).await {
        Ok(Some(up)) if up.state == JobState::Queued => up,
        _ => return,
    };
    up.state = JobState::Probing;
    up.attempts += 1;
    up.updated_at = OffsetDateTime::now_utc();
    let _ = ups.write(&up).await;
    let started = std::time::Instant::now();
    match build(state, &mut up).await {
        Ok(()) => {
            tracing::info!(
                upload.id = %up.id,
                show.id = %up.show_id,
                stream.path = up.stream_path.as_deref().unwrap_or(""),
                seconds = started.elapsed().as_secs_f64(),
                "packaging done"
            );
        }
        Err(why) => fail(state, &mut up, &why).await,
    }
}

/// Probes, encodes, moves into place and points the show at the result; an error is the job's message.
async fn build(state: &AppState, up: &mut Upload) -> Result<(), String> {
    let ups = &state.uploads;
    let data = ups.folder(&up.id).join("data");
    let probe = ladder::probe(&data).await.map_err(|e| format!("{e:#}"))?;
    let show_id = ShowId::parse(&up.show_id).map_err(|e| e.to_string())?;
    let show = state
        .store
        .show(&show_id)
        .await
        .map_err(|e| format!("reading the show: {e}"))?
        .ok_or("the show was deleted")?;
    let folder = format!("{}-{}", up.show_id, &up.id[3..11]);
    check_folder(state, &show_id, &folder).await?;
    up.state = JobState::Packaging;
    up.percent = 0;
    let _ = ups.write(up).await;
    let media = state.config.media_dir.clone();
    let dest = media.join(&folder);
    if dest.exists() {
        return Err(format!("the media folder already has `{folder}`"));
    }
    let encrypted = show.encryption == Encryption::Aes128;
    let staging = media.join(format!("{STAGING_PREFIX}{}", up.id));
    let work = if encrypted {
        ups.folder(&up.id).join("work")
    } else {
        staging.clone()
    };
    let id = up.id.clone();
    let scale = if encrypted { 90u16 } else { 100 };
    let result = async {
        let _ = tokio::fs::remove_dir_all(&work).await;
        tokio::fs::create_dir_all(&work)
            .await
            .map_err(|e| format!("making the working folder: {e}"))?;
        let rungs = ladder::encode(&data, &work, &probe, &ups.settings().x264_preset, |p| {
            ups.set_progress(&id, Some((u16::from(p) * scale / 100) as u8));
        })
        .await
        .map_err(|e| format!("{e:#}"))?;
        if encrypted {
            package_encrypted(state, up, &work, &folder).await?;
        } else {
            tokio::fs::rename(&staging, &dest)
                .await
                .map_err(|e| format!("moving the ladder into the media folder: {e}"))?;
        }
        Ok::<_, String>(rungs)
    }
    .await;
    let _ = tokio::fs::remove_dir_all(&staging).await;
    if encrypted {
        let _ = tokio::fs::remove_dir_all(&work).await;
    }
    let rungs = result?;
    if let Err(why) = point_show(state, up, &show_id, &folder).await {
        let _ = tokio::fs::remove_dir_all(&dest).await;
        return Err(why);
    }
    up.state = JobState::Done;
    up.percent = 100;
    up.error = None;
    up.stream_path = Some(folder);
    up.renditions = rungs.into_iter().map(|r| r.name).collect();
    up.updated_at = OffsetDateTime::now_utc();
    ups.set_progress(&up.id, None);
    ups.write(up).await.map_err(|e| e.to_string())?;
    let _ = tokio::fs::remove_file(&data).await;
    Ok(())
}

/// The folder must not nest with another show's (a grant covers its show's whole folder).
async fn check_folder(state: &AppState, show: &ShowId, folder: &str) -> Result<(), String> {
    let shows = state
        .store
        .shows()
        .await
        .map_err(|e| format!("reading the shows: {e}"))?;
    if let Some(other) = shows
        .iter()
        .find(|o| &o.id != show && stream_folders_nest(&o.stream_path, folder))
    {
        return Err(format!(
            "the stream folder `{folder}` would nest with show `{}`'s `{}`",
            other.id, other.stream_path
        ));
    }
    Ok(())
}

/// Encrypts the unencrypted ladder in `work` into `media/{folder}` with keys registered first.
async fn package_encrypted(
    state: &AppState,
    up: &Upload,
    work: &Path,
    folder: &str,
) -> Result<(), String> {
    let job = VodJob {
        input: work.join("master.m3u8"),
        media_dir: state.config.media_dir.clone(),
        stream_path: folder.to_owned(),
        key_base: state.base_url.to_string(),
        segments_per_key: SEGMENTS_PER_KEY,
        ladder: Vec::new(),
        replace: false,
    };
    let registry = StoreKeys {
        state,
        actor: up.actor.clone(),
    };
    packager::package_vod(&job, &registry)
        .await
        .map(drop)
        .map_err(|e| format!("encrypting the ladder: {e:#}"))
}

/// Points the show at its new folder (the rest of the show as it is now) and audits it.
async fn point_show(
    state: &AppState,
    up: &Upload,
    show_id: &ShowId,
    folder: &str,
) -> Result<(), String> {
    check_folder(state, show_id, folder).await?;
    let mut show = state
        .store
        .show(show_id)
        .await
        .map_err(|e| format!("reading the show: {e}"))?
        .ok_or("the show was deleted while it was packaged")?;
    let before = std::mem::replace(&mut show.stream_path, folder.to_owned());
    show.updated_at = state.store.now().to_datetime();
    state
        .store
        .put_show(show)
        .await
        .map_err(|e| format!("writing the show: {e}"))?;
    audit::record_system(
        state,
        up.actor.clone(),
        "show.stream",
        &format!("show:{show_id}"),
        None,
        &format!("stream_path {before} -> {folder} (upload {})", up.id),
    )
    .await;
    Ok(())
}

/// Registers an upload's content keys in the store (wrapped), before ffmpeg encrypts with them.
struct StoreKeys<'a> {
    state: &'a AppState,
    actor: Actor,
}

impl KeyRegistry for StoreKeys<'_> {
    async fn register(
        &self,
        id: &ContentKeyId,
        stream_path: &str,
        key: &ContentKey,
    ) -> anyhow::Result<()> {
        crate::service::content_keys::store_generated(self.state, id, stream_path, key)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        audit::record_system(
            self.state,
            self.actor.clone(),
            "content_key.put",
            &format!("content_key:{id}"),
            None,
            &format!("stream_path={stream_path}"),
        )
        .await;
        Ok(())
    }
}
