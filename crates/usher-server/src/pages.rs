//! Server-rendered pages (minijinja templates compiled into the binary) and the front-end assets built
//! from `web/` by `scripts/build-web.sh`, embedded so the binary needs nothing at run time.

use std::sync::Arc;

use fluent_bundle::FluentValue;
use minijinja::value::Kwargs;
use minijinja::{Environment, ErrorKind};
use rust_embed::RustEmbed;

use crate::i18n::{self, Catalog};
use crate::service::{Error, Result};

#[derive(RustEmbed)]
#[folder = "../../web/dist"]
struct Assets;

/// The page templates and the viewer pages' messages.
pub struct Pages {
    env: Environment<'static>,
    catalog: Arc<Catalog>,
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
        let catalog = Arc::new(
            Catalog::new().map_err(|e| minijinja::Error::new(ErrorKind::InvalidOperation, e))?,
        );
        let mut env = Environment::new();
        // `{{ t("ticket-revoked.hint") }}`, `{{ t("starts-at", time=…) }}`: a message in the page's
        // `lang` (a template variable every viewer page sets)
        let messages = Arc::clone(&catalog);
        env.add_function(
            "t",
            move |state: &minijinja::State<'_, '_>, id: &str, kwargs: Kwargs| {
                let lang = state
                    .lookup("lang")
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_else(|| i18n::DEFAULT_LANG.to_owned());
                let mut args = i18n::Args::new();
                for name in kwargs.args() {
                    let value: minijinja::Value = kwargs.get(name)?;
                    let value = match i64::try_from(value.clone()) {
                        Ok(n) => FluentValue::from(n),
                        Err(_) => FluentValue::from(value.to_string()),
                    };
                    args.set(name.to_owned(), value);
                }
                Ok::<_, minijinja::Error>(messages.text(&lang, id, Some(&args)))
            },
        );
        env.add_template("watch.html", include_str!("../templates/watch.html"))?;
        env.add_template("language.html", include_str!("../templates/language.html"))?;
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
        Ok(Self { env, catalog })
    }

    /// The viewer pages' messages.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
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
