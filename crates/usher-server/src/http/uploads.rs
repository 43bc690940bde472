//! The uploads API (scope `admin`): the tus 1.0 protocol (core, creation, termination) over
//! `/api/v1/uploads`, plus JSON reads of the uploads and their packaging jobs. Each handler calls one
//! action of [`crate::service::admin::uploads`], which the console's upload form reaches through these
//! same routes (with its session cookie and `X-CSRF-Token`).
//!
//! A `PATCH` body is streamed to disk as it arrives, never held in memory, and is not bound by
//! `http.max_body_bytes` or `http.request_timeout_s` (the upload's own `Upload-Length` and a stall
//! deadline bound it instead).

use std::time::{Duration, SystemTime};

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt as _;

use crate::http::auth::{Authorized, Manage, Read};
use crate::http::extract::ApiPath;
use crate::http::views::uploads::{UploadList, UploadView};
use crate::service::admin::uploads::{
    self, Append, Chunks, NewUpload, TUS_EXTENSIONS, TUS_VERSION, Upload,
};
use crate::service::{Error, Result};
use crate::state::AppState;

fn text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    text(headers, "content-length").and_then(|v| v.trim().parse().ok())
}

/// The headers every tus answer carries, and the upload's offset, length and expiry when known.
fn tus_headers(res: &mut Response, up: Option<(&Upload, u64)>) {
    let h = res.headers_mut();
    h.insert("tus-resumable", HeaderValue::from_static(TUS_VERSION));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some((up, expiry_s)) = up {
        h.insert("upload-offset", HeaderValue::from(up.offset));
        h.insert("upload-length", HeaderValue::from(up.length));
        let expires = SystemTime::from(up.expires_at(expiry_s));
        if let Ok(v) = HeaderValue::from_str(&httpdate::fmt_http_date(expires)) {
            h.insert("upload-expires", v);
        }
    }
}

/// `OPTIONS /api/v1/uploads`: what this server speaks (tus discovery).
#[utoipa::path(
    options,
    path = "/api/v1/uploads",
    tag = "uploads",
    responses(
        (status = 204, description = "tus discovery: `Tus-Version: 1.0.0`, `Tus-Extension: creation,termination`, `Tus-Max-Size` (`uploads.max_bytes`).",
            headers(("Tus-Version" = String), ("Tus-Extension" = String), ("Tus-Max-Size" = u64))),
        (status = 404, description = "`uploads_disabled`: `uploads.enabled` is off on this node."),
    ),
)]
pub async fn tus_options(State(state): State<AppState>) -> Result<Response> {
    let settings = state.uploads.settings();
    if !settings.enabled {
        return Err(Error::UploadsDisabled);
    }
    let mut res = StatusCode::NO_CONTENT.into_response();
    tus_headers(&mut res, None);
    let h = res.headers_mut();
    h.insert("tus-version", HeaderValue::from_static(TUS_VERSION));
    h.insert("tus-extension", HeaderValue::from_static(TUS_EXTENSIONS));
    h.insert("tus-max-size", HeaderValue::from(settings.max_bytes));
    Ok(res)
}

/// `POST /api/v1/uploads`: creates an upload (tus creation) for the show named in `Upload-Metadata`.
#[utoipa::path(
    post,
    path = "/api/v1/uploads",
    tag = "uploads",
    params(
        ("Upload-Length" = u64, Header, description = "The file's length in bytes, at most `uploads.max_bytes`."),
        ("Upload-Metadata" = String, Header, description = "tus metadata, comma-separated `key base64(value)` pairs: `show_id` (required), `filename` (`.mp4`, `.m4v`, `.mov` or `.mkv`), `filetype` (`video/mp4`, `video/quicktime`, `video/x-matroska`)."),
        ("Tus-Resumable" = Option<String>, Header, description = "`1.0.0` (another version: 412; not a version: 400)."),
    ),
    responses(
        (status = 201, description = "Created: `Location` is the upload's URL (`/api/v1/uploads/{id}`), to `PATCH` bytes to; the body describes it.", body = UploadView,
            headers(("Location" = String), ("Upload-Offset" = u64), ("Upload-Expires" = String), ("Tus-Resumable" = String))),
        (status = 400, description = "`invalid_request`: no or a bad `Upload-Length`, a `Tus-Resumable` that is not a version, `Upload-Defer-Length`, metadata that is not base64, no `show_id`, or a body (send bytes with `PATCH`)."),
        (status = 404, description = "`show_unknown`: no such show. `uploads_disabled`: `uploads.enabled` is off on this node."),
        (status = 412, description = "`tus_version_unsupported`: `Tus-Resumable` is not `1.0.0` (`Tus-Version` says what is)."),
        (status = 413, description = "`payload_too_large`: `Upload-Length` is larger than `uploads.max_bytes`."),
        (status = 415, description = "`unsupported_media_type`: the file name or type is not MP4, MOV or MKV."),
    ),
    security(("bearer" = ["admin"])),
)]
pub async fn create_upload(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<Manage>,
    headers: HeaderMap,
) -> Result<Response> {
    let up = uploads::create_upload(
        &state,
        &caller,
        NewUpload {
            tus: text(&headers, "tus-resumable"),
            length: text(&headers, "upload-length"),
            defer_length: headers.contains_key("upload-defer-length"),
            metadata: text(&headers, "upload-metadata"),
            body_length: content_length(&headers).unwrap_or(0),
        },
    )
    .await?;
    let expiry = state.uploads.settings().expiry_s;
    let mut res = (StatusCode::CREATED, Json(UploadView::new(&up, expiry))).into_response();
    tus_headers(&mut res, Some((&up, expiry)));
    if let Ok(v) = HeaderValue::from_str(&format!("/api/v1/uploads/{}", up.id)) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    Ok(res)
}

/// `GET /api/v1/uploads`: this node's uploads and their jobs, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/uploads",
    tag = "uploads",
    responses(
        (status = 200, description = "The uploads.", body = UploadList),
        (status = 404, description = "`uploads_disabled`: `uploads.enabled` is off on this node."),
    ),
    security(("bearer" = ["admin"])),
)]
pub async fn list_uploads(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<Read>,
) -> Result<Json<UploadList>> {
    let all = uploads::list_uploads(&state, &caller).await?;
    let expiry = state.uploads.settings().expiry_s;
    Ok(Json(UploadList {
        uploads: all.iter().map(|u| UploadView::new(u, expiry)).collect(),
    }))
}

/// `GET /api/v1/uploads/{id}`: the upload, its offset and its packaging job (state, percent, error).
#[utoipa::path(
    get,
    path = "/api/v1/uploads/{upload_id}",
    tag = "uploads",
    params(("upload_id" = String, Path, description = "The upload's id.")),
    responses(
        (status = 200, description = "The upload and its job.", body = UploadView),
        (status = 404, description = "`upload_unknown`: no such upload on this node (or it expired). `uploads_disabled`: `uploads.enabled` is off on this node."),
    ),
    security(("bearer" = ["admin"])),
)]
pub async fn read_upload(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<Read>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<UploadView>> {
    let up = uploads::find_upload(&state, &caller, &id).await?;
    Ok(Json(UploadView::new(
        &up,
        state.uploads.settings().expiry_s,
    )))
}

/// `HEAD /api/v1/uploads/{id}`: where to resume (tus core): `Upload-Offset` and `Upload-Length`.
#[utoipa::path(
    head,
    path = "/api/v1/uploads/{upload_id}",
    tag = "uploads",
    params(("upload_id" = String, Path, description = "The upload's id.")),
    responses(
        (status = 200, description = "`Upload-Offset`: the bytes received; `Upload-Length`; `Upload-Expires`. No body.",
            headers(("Upload-Offset" = u64), ("Upload-Length" = u64), ("Upload-Expires" = String), ("Tus-Resumable" = String))),
        (status = 404, description = "`upload_unknown`: no such upload on this node (or it expired). `uploads_disabled`: `uploads.enabled` is off on this node."),
    ),
    security(("bearer" = ["admin"])),
)]
pub async fn upload_offset(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<Read>,
    ApiPath(id): ApiPath<String>,
) -> Result<Response> {
    let up = uploads::find_upload(&state, &caller, &id).await?;
    let mut res = StatusCode::OK.into_response();
    tus_headers(&mut res, Some((&up, state.uploads.settings().expiry_s)));
    Ok(res)
}

/// Bytes of a file, as the API document describes a `PATCH` body.
#[derive(utoipa::ToSchema)]
#[schema(value_type = String, format = Binary)]
#[expect(dead_code, reason = "only its schema is used")]
pub struct RawBytes(Vec<u8>);

/// An HTTP body as the parts the upload service reads.
struct BodyChunks(Body);

impl Chunks for BodyChunks {
    type Chunk = Bytes;

    async fn next_chunk(&mut self) -> Option<std::io::Result<Bytes>> {
        loop {
            match self.0.frame().await? {
                Err(e) => return Some(Err(std::io::Error::other(e))),
                Ok(frame) => {
                    if let Ok(data) = frame.into_data() {
                        return Some(Ok(data));
                    }
                }
            }
        }
    }
}

/// `PATCH /api/v1/uploads/{id}`: appends the body at `Upload-Offset` (tus core), streamed to disk; the
/// last byte queues the packaging job.
#[utoipa::path(
    patch,
    path = "/api/v1/uploads/{upload_id}",
    tag = "uploads",
    params(
        ("upload_id" = String, Path, description = "The upload's id."),
        ("Upload-Offset" = u64, Header, description = "Where this body starts: the upload's offset (`HEAD` says it)."),
        ("Tus-Resumable" = Option<String>, Header, description = "`1.0.0` (another version: 412; not a version: 400)."),
    ),
    request_body(content = RawBytes, content_type = "application/offset+octet-stream", description = "The next bytes of the file (any number, up to `Upload-Length`)."),
    responses(
        (status = 204, description = "Written: `Upload-Offset` is the new offset.", headers(("Upload-Offset" = u64), ("Tus-Resumable" = String))),
        (status = 400, description = "`invalid_request`: no or a bad `Upload-Offset`, a `Tus-Resumable` that is not a version, or the body broke off (what arrived is kept: ask with `HEAD`)."),
        (status = 404, description = "`upload_unknown`: no such upload on this node (or it expired). `uploads_disabled`: `uploads.enabled` is off on this node."),
        (status = 409, description = "`upload_offset_mismatch`: `Upload-Offset` is not the upload's offset (`offset` says it), or the upload is complete."),
        (status = 412, description = "`tus_version_unsupported`: `Tus-Resumable` is not `1.0.0`."),
        (status = 413, description = "`payload_too_large`: the body runs past `Upload-Length` (none of it is kept)."),
        (status = 415, description = "`unsupported_media_type`: the body is not `application/offset+octet-stream`."),
        (status = 423, description = "`upload_busy`: another request is writing this upload, or its packaging job runs."),
    ),
    security(("bearer" = ["admin"])),
)]
pub async fn append_upload(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<Manage>,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response> {
    let up = uploads::append_upload(
        &state,
        &caller,
        &id,
        Append {
            tus: text(&headers, "tus-resumable"),
            content_type: text(&headers, "content-type"),
            offset: text(&headers, "upload-offset"),
            content_length: content_length(&headers),
        },
        BodyChunks(body),
    )
    .await?;
    let mut res = StatusCode::NO_CONTENT.into_response();
    tus_headers(&mut res, Some((&up, state.uploads.settings().expiry_s)));
    Ok(res)
}

/// `DELETE /api/v1/uploads/{id}`: deletes the upload and its record (tus termination); a finished job's
/// media folder stays.
#[utoipa::path(
    delete,
    path = "/api/v1/uploads/{upload_id}",
    tag = "uploads",
    params(
        ("upload_id" = String, Path, description = "The upload's id."),
        ("Tus-Resumable" = Option<String>, Header, description = "`1.0.0` (another version: 412; not a version: 400)."),
    ),
    responses(
        (status = 204, description = "Deleted.", headers(("Tus-Resumable" = String))),
        (status = 404, description = "`upload_unknown`: no such upload on this node (or it expired). `uploads_disabled`: `uploads.enabled` is off on this node."),
        (status = 412, description = "`tus_version_unsupported`: `Tus-Resumable` is not `1.0.0`."),
        (status = 423, description = "`upload_busy`: another request is writing this upload, or its packaging job runs."),
    ),
    security(("bearer" = ["admin"])),
)]
pub async fn delete_upload(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<Manage>,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
) -> Result<Response> {
    uploads::delete_upload(&state, &caller, &id, text(&headers, "tus-resumable")).await?;
    let mut res = StatusCode::NO_CONTENT.into_response();
    tus_headers(&mut res, None);
    Ok(res)
}

/// Whether a request is a tus `PATCH`, which the request time limit does not cut (its body may take
/// hours; a stall deadline bounds it instead).
pub fn is_upload_patch(method: &axum::http::Method, path: &str) -> bool {
    method == axum::http::Method::PATCH && path.starts_with("/api/v1/uploads/")
}

/// How long a tus `PATCH` may take at most (a day: a slow link's multi-GiB body).
pub const PATCH_TIME_LIMIT: Duration = Duration::from_secs(86_400);
