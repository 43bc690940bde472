//! Server-rendered pages (minijinja templates compiled into the binary) and the front-end assets built
//! from `web/` by `scripts/build-web.sh`, embedded so the binary needs nothing at run time.

use minijinja::Environment;
use rust_embed::RustEmbed;

use crate::service::{Error, Result};

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
        env.add_template("tv.html", include_str!("../templates/tv.html"))?;
        env.add_template("activate.html", include_str!("../templates/activate.html"))?;
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
            "webhooks.html",
            "webhook.html",
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

/// An embedded asset: its bytes and an entity tag from its hash.
pub fn asset(name: &str) -> Option<(Vec<u8>, String)> {
    let asset = Assets::get(name)?;
    let etag = format!("\"{}\"", hex_prefix(&asset.metadata.sha256_hash()));
    Some((asset.data.into_owned(), etag))
}

fn hex_prefix(bytes: &[u8]) -> String {
    bytes.iter().take(12).map(|b| format!("{b:02x}")).collect()
}
