//! The front-end assets the pages load (`/assets/{file}`), from the binary.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::http::extract::ApiPath;
use crate::pages;
use crate::service::{Error, Result};
use crate::state::AppState;

/// `GET /assets/{file}`: an embedded front-end asset, cached by the browser.
#[utoipa::path(
    get,
    path = "/assets/{file}",
    tag = "watch",
    params(("file" = String, Path, description = "The asset's file name (`watch.js`, `watch.css`, `docs.css`, `locale-de.ftl`).")),
    responses(
        (status = 200, description = "The asset.", content(
            (String = "text/javascript"), (String = "text/css"), (String = "application/json"),
            (String = "image/svg+xml"), (String = "text/plain"), (String = "application/octet-stream"),
        )),
        (status = 404, description = "`not_found`: no such asset."),
    ),
)]
pub async fn asset(
    State(_state): State<AppState>,
    ApiPath(file): ApiPath<String>,
) -> Result<Response> {
    let (data, etag) = pages::asset(&file).ok_or(Error::RouteNotFound)?;
    let ctype = match file.rsplit_once('.').map(|(_, e)| e) {
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("map") => "application/json",
        Some("svg") => "image/svg+xml",
        // the viewer pages' messages (`locale-de.ftl`), for the language picker
        Some("ftl") => "text/plain; charset=utf-8",
        Some("png") => "image/png",
        _ => "application/octet-stream",
    };
    let mut res = data.into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    Ok(res)
}
