//! Server-rendered pages (minijinja templates compiled into the binary) and the front-end assets built
//! from `web/` by `scripts/build-web.sh`, embedded so the binary needs nothing at run time.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use minijinja::Environment;
use rust_embed::RustEmbed;

use crate::http::extract::ApiPath;
use crate::service::{Error, Result};
use crate::state::AppState;

#[derive(RustEmbed)]
#[folder = "../../web/dist"]
struct Assets;

/// The page templates.
pub struct Pages {
    env: Environment<'static>,
}

impl std::fmt::Debug for Pages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pages")
    }
}

impl Pages {
    /// Compiles the templates.
    ///
    /// # Errors
    /// A template syntax error (a build defect, caught by every test that starts the server).
    pub fn new() -> Result<Self, minijinja::Error> {
        let mut env = Environment::new();
        env.add_template("watch.html", include_str!("../templates/watch.html"))?;
        macro_rules! admin {
            ($($name:literal),*) => {
                $(env.add_template(concat!("admin/", $name), include_str!(concat!("../templates/admin/", $name)))?;)*
            };
        }
        admin!(
            "layout.html",
            "error.html",
            "login.html",
            "password.html",
            "dashboard.html",
            "shows.html",
            "show.html",
            "tickets.html",
            "ticket.html",
            "sessions.html",
            "cdns.html",
            "cdn.html",
            "geoip.html",
            "api_keys.html",
            "users.html",
            "audit.html"
        );
        env.add_template("docs.html", include_str!("../templates/docs.html"))?;
        Ok(Self { env })
    }

    /// Renders a template with `ctx`.
    ///
    /// # Errors
    /// `internal` when rendering fails.
    pub fn render(&self, name: &str, ctx: minijinja::Value) -> Result<String> {
        self.env
            .get_template(name)
            .and_then(|t| t.render(ctx))
            .map_err(|e| Error::Internal(format!("rendering {name}: {e}")))
    }
}

/// Whether the embedded assets hold `name` (checked at start so a build without `web/dist` fails loudly).
pub fn has_asset(name: &str) -> bool {
    Assets::get(name).is_some()
}

/// `GET /assets/{file}`: an embedded front-end asset, cached by the browser.
#[utoipa::path(
    get,
    path = "/assets/{file}",
    tag = "watch",
    params(("file" = String, Path, description = "The asset's file name (`watch.js`, `watch.css`, `docs.css`).")),
    responses(
        (status = 200, description = "The asset.", content(
            (String = "text/javascript"), (String = "text/css"), (String = "application/json"),
            (String = "image/svg+xml"), (String = "application/octet-stream"),
        )),
        (status = 404, description = "`not_found`: no such asset."),
    ),
)]
pub async fn asset(
    State(_state): State<AppState>,
    ApiPath(file): ApiPath<String>,
) -> Result<Response> {
    let asset = Assets::get(&file).ok_or(Error::RouteNotFound)?;
    let ctype = match file.rsplit_once('.').map(|(_, e)| e) {
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("map") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        _ => "application/octet-stream",
    };
    let etag = format!("\"{}\"", hex_prefix(&asset.metadata.sha256_hash()));
    let mut res = asset.data.into_owned().into_response();
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

fn hex_prefix(bytes: &[u8]) -> String {
    bytes.iter().take(12).map(|b| format!("{b:02x}")).collect()
}
