//! The API document (`GET /api/v1/openapi.json`) and its reference page (`GET /api/v1/docs`).

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use axum::Extension;

use crate::openapi::{Document, reference};
use crate::service::Result;
use crate::state::AppState;

const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; frame-ancestors 'none'; \
                   base-uri 'none'; form-action 'none'";

/// `GET /api/v1/openapi.json`: the OpenAPI 3.1 document of this API.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "docs",
    responses((status = 200, description = "The OpenAPI 3.1 document.", body = crate::http::views::ops::OpenApiDocument, content_type = "application/json")),
)]
pub async fn openapi_document(Extension(doc): Extension<Document>) -> Response {
    let mut res = axum::Json(&*doc.0).into_response();
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    res
}

/// `GET /api/v1/docs`: the document as a page to read (server-rendered, no script).
#[utoipa::path(
    get,
    path = "/api/v1/docs",
    tag = "docs",
    responses((status = 200, description = "The API reference as HTML.", body = String, content_type = "text/html")),
)]
pub async fn reference_page(
    axum::extract::State(state): axum::extract::State<AppState>,
    Extension(doc): Extension<Document>,
) -> Result<Response> {
    let html = reference::render(&state.pages, &doc.0)?;
    let mut res = axum::response::Html(html).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    Ok(res)
}
