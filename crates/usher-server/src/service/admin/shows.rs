//! Shows: create or replace, read, list, publish, delete, and the poster image.

use sha2::Digest as _;
use usher_core::admin::Permission;
use usher_core::ids::ShowId;
use usher_core::show::{Show, ShowSpec, stream_folders_nest};
use usher_core::store::{DeleteShowOutcome, PutOutcome};

use crate::service::audit;
use crate::service::{Caller, Error, Record, Result};
use crate::state::AppState;

/// Largest poster image accepted.
pub const MAX_POSTER_BYTES: usize = 2 * 1024 * 1024;

fn lookup_id(id: &str) -> Result<ShowId> {
    ShowId::parse(id).map_err(|_| Error::NotFound(Record::Show))
}

/// Finds a show.
///
/// # Errors
/// `show_unknown`; `forbidden`.
pub async fn find_show(state: &AppState, caller: &Caller, id: &str) -> Result<Show> {
    caller.require(Permission::Read)?;
    state
        .store
        .show(&lookup_id(id)?)
        .await?
        .ok_or(Error::NotFound(Record::Show))
}

/// Every show, by id.
///
/// # Errors
/// `forbidden`; the store's error.
pub async fn list_shows(state: &AppState, caller: &Caller) -> Result<Vec<Show>> {
    caller.require(Permission::Read)?;
    Ok(state.store.shows().await?)
}

/// Creates or replaces a show (keeping its poster).
///
/// # Errors
/// `invalid_request` for a bad id or spec; `stream_path_nested` when its stream folder lies inside
/// another show's or holds one (equal folders are allowed); `forbidden`.
pub async fn write_show(
    state: &AppState,
    caller: &Caller,
    id: &str,
    spec: ShowSpec,
) -> Result<(PutOutcome, Show)> {
    caller.require(Permission::Manage)?;
    let id = ShowId::parse(id).map_err(|e| Error::InvalidRequest(format!("show id: {e}")))?;
    let existing = state.store.show(&id).await?;
    let mut show = spec
        .into_show(
            id,
            state.store.now(),
            existing.as_ref().map(|s| s.created_at),
        )
        .map_err(|e| Error::InvalidRequest(e.to_string()))?;
    show.poster = existing.and_then(|s| s.poster);
    if !show.cdns.is_empty() {
        let pool = crate::service::delivery::pool(state).await?;
        if let Some(unknown) = show
            .cdns
            .iter()
            .find(|id| !pool.iter().any(|c| &c.id == *id))
        {
            return Err(Error::InvalidRequest(format!(
                "cdns: no CDN `{unknown}` in the pool"
            )));
        }
    }
    // a grant covers its show's whole folder: a show inside another's folder (or around it) would be
    // opened by the other's tickets
    if let Some(other) = state
        .store
        .shows()
        .await?
        .into_iter()
        .find(|o| o.id != show.id && stream_folders_nest(&o.stream_path, &show.stream_path))
    {
        return Err(Error::StreamPathNested {
            inside: show.stream_path.len() > other.stream_path.len(),
            other_show: other.id.to_string(),
            other_path: other.stream_path,
        });
    }
    let outcome = state.store.put_show(show.clone()).await?;
    tracing::info!(show.id = %show.id, ?outcome, "show written");
    audit::record(
        state,
        caller,
        "show.put",
        &format!("show:{}", show.id),
        &format!("published={}", show.published),
    )
    .await;
    Ok((outcome, show))
}

/// Publishes or unpublishes a show.
///
/// # Errors
/// `show_unknown`; `forbidden`.
pub async fn publish_show(
    state: &AppState,
    caller: &Caller,
    id: &str,
    published: bool,
) -> Result<Show> {
    caller.require(Permission::Manage)?;
    let mut show = find_show(state, caller, id).await?;
    show.published = published;
    show.updated_at = state.store.now().to_datetime();
    state.store.put_show(show.clone()).await?;
    audit::record(
        state,
        caller,
        if published {
            "show.publish"
        } else {
            "show.unpublish"
        },
        &format!("show:{}", show.id),
        "",
    )
    .await;
    Ok(show)
}

/// Deletes a show without tickets.
///
/// # Errors
/// `show_unknown`, `show_has_tickets`; `forbidden`.
pub async fn remove_show(state: &AppState, caller: &Caller, id: &str) -> Result<()> {
    caller.require(Permission::Manage)?;
    let id = lookup_id(id)?;
    match state.store.delete_show(&id).await? {
        DeleteShowOutcome::Deleted => {
            state.store.put_poster(&id, None).await?;
            state.store.put_stream_key(&id, None).await?;
            audit::record(state, caller, "show.delete", &format!("show:{id}"), "").await;
            Ok(())
        }
        DeleteShowOutcome::Missing => Err(Error::NotFound(Record::Show)),
        DeleteShowOutcome::HasTickets(n) => Err(Error::ShowHasTickets(n)),
    }
}

/// Sets a show's poster image (PNG, JPEG, WebP or GIF, recognised by its first bytes).
///
/// # Errors
/// `show_unknown`; `invalid_request` for anything but an image; `payload_too_large`; `forbidden`.
pub async fn set_poster(
    state: &AppState,
    caller: &Caller,
    id: &str,
    bytes: Vec<u8>,
) -> Result<Show> {
    caller.require(Permission::Manage)?;
    let mut show = find_show(state, caller, id).await?;
    if bytes.len() > MAX_POSTER_BYTES {
        return Err(Error::PayloadTooLarge);
    }
    let ctype = image_type(&bytes).ok_or_else(|| {
        Error::InvalidRequest("the body must be a PNG, JPEG, WebP or GIF image".into())
    })?;
    let tag = hex_tag(&bytes);
    state
        .store
        .put_poster(&show.id, Some((ctype.to_owned(), bytes)))
        .await?;
    show.poster = Some(tag);
    show.updated_at = state.store.now().to_datetime();
    state.store.put_show(show.clone()).await?;
    audit::record(
        state,
        caller,
        "show.poster",
        &format!("show:{}", show.id),
        ctype,
    )
    .await;
    Ok(show)
}

/// A show's poster image, public like the watch page that shows it.
pub struct Poster {
    /// Its content type (`image/png`).
    pub content_type: String,
    /// The image.
    pub bytes: Vec<u8>,
    /// Its version tag (the show's `poster`), for `ETag`.
    pub tag: String,
}

/// Reads a show's poster image (no caller: it is public).
///
/// # Errors
/// `show_unknown` for a malformed id, `poster_unknown`.
pub async fn poster(state: &AppState, id: &str) -> Result<Poster> {
    let id = lookup_id(id)?;
    let (content_type, bytes) = state
        .store
        .poster(&id)
        .await?
        .ok_or(Error::NotFound(Record::Poster))?;
    let tag = hex_tag(&bytes);
    Ok(Poster {
        content_type,
        bytes,
        tag,
    })
}

fn hex_tag(bytes: &[u8]) -> String {
    sha2::Sha256::digest(bytes)
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The image type of `bytes` by its signature, `None` for anything else.
pub fn image_type(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
        Some("image/jpeg")
    } else if bytes.len() > 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some("image/gif")
    } else {
        None
    }
}
