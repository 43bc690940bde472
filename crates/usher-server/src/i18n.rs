//! The viewer pages' languages (the watch page, the TV sign-in page and the phone's approval page).
//!
//! Messages are Project Fluent files, `web/locales/{lang}.ftl`, one per language, compiled into the
//! binary: the server renders the pages with them and hands the same files to the pages' script (embedded
//! in the page, and at `/assets/locale-{lang}.ftl` for the language picker), so a translator edits one
//! file per language and no code. English is the source: a message or attribute missing from another
//! language falls back to it (and `tests::every_language_has_every_message` fails the build's tests).
//!
//! A request's language is the picker's choice (the `usher_lang` cookie) when it names a language we
//! have, else the best match of `Accept-Language`, else English.

use std::borrow::Cow;

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};
use fluent_langneg::{NegotiationStrategy, accepted_languages, negotiate_languages};
use unic_langid::LanguageIdentifier;

/// The cookie the language picker sets (a language code of [`LANGUAGES`]).
pub const LANG_COOKIE: &str = "usher_lang";

/// The language every other falls back to.
pub const DEFAULT_LANG: &str = "en";

/// A language of the viewer pages.
#[derive(Debug, Clone, Copy)]
pub struct Language {
    /// Its BCP 47 code.
    pub code: &'static str,
    /// Its name in itself, for the picker.
    pub name: &'static str,
    /// Its messages (Fluent syntax).
    pub source: &'static str,
}

/// A [`Language`] whose messages are `web/locales/{code}.ftl`.
macro_rules! language {
    ($code:literal, $name:literal) => {
        Language {
            code: $code,
            name: $name,
            source: include_str!(concat!("../../../web/locales/", $code, ".ftl")),
        }
    };
}

/// The viewer pages' languages, English first.
pub const LANGUAGES: [Language; 6] = [
    language!("en", "English"),
    language!("de", "Deutsch"),
    language!("cs", "Čeština"),
    language!("sk", "Slovenčina"),
    language!("pl", "Polski"),
    language!("hu", "Magyar"),
];

/// Longest `Accept-Language` header looked at (a real one is a few dozen bytes; a hostile one costs
/// nothing beyond this).
const MAX_ACCEPT_LANGUAGE: usize = 512;

/// The parsed messages of every language.
pub struct Catalog {
    bundles: Vec<(&'static str, FluentBundle<FluentResource>)>,
    available: Vec<LanguageIdentifier>,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog")
            .field("languages", &self.available)
            .finish()
    }
}

/// A message's arguments: names and numbers or strings.
pub type Args<'a> = FluentArgs<'a>;

impl Catalog {
    /// Parses every language's messages.
    ///
    /// # Errors
    /// A file that does not parse (a build defect: every test that starts the server sees it).
    pub fn new() -> Result<Self, String> {
        let mut bundles = Vec::with_capacity(LANGUAGES.len());
        let mut available = Vec::with_capacity(LANGUAGES.len());
        for lang in LANGUAGES {
            let id: LanguageIdentifier = lang
                .code
                .parse()
                .map_err(|e| format!("language code {}: {e}", lang.code))?;
            let resource =
                FluentResource::try_new(lang.source.to_owned()).map_err(|(_, errs)| {
                    format!("web/locales/{}.ftl does not parse: {errs:?}", lang.code)
                })?;
            let mut bundle = FluentBundle::new_concurrent(vec![id.clone()]);
            // plain text: the pages escape it, and screen readers read no isolation marks
            bundle.set_use_isolating(false);
            bundle
                .add_resource(resource)
                .map_err(|errs| format!("web/locales/{}.ftl: {errs:?}", lang.code))?;
            bundles.push((lang.code, bundle));
            available.push(id);
        }
        Ok(Self { bundles, available })
    }

    /// The language of a request: the picker's cookie when it names one of ours, else the best match of
    /// `Accept-Language` (`de-AT` gets `de`), else English.
    pub fn negotiate(&self, cookie: Option<&str>, accept_language: Option<&str>) -> &'static str {
        if let Some(lang) = cookie.and_then(language) {
            return lang.code;
        }
        let Some(header) = accept_language.filter(|h| h.len() <= MAX_ACCEPT_LANGUAGE) else {
            return DEFAULT_LANG;
        };
        let requested = accepted_languages::parse(header);
        let default: LanguageIdentifier = DEFAULT_LANG.parse().unwrap_or_default();
        negotiate_languages(
            &requested,
            &self.available,
            Some(&default),
            NegotiationStrategy::Lookup,
        )
        .first()
        .and_then(|id| language(id.language.as_str()))
        .map_or(DEFAULT_LANG, |l| l.code)
    }

    /// The text of message `id` in `lang`, or of its attribute when `id` is `message.attribute`
    /// (`ticket-revoked.hint`); English when `lang` lacks it, the id itself when English does too.
    pub fn text(&self, lang: &str, id: &str, args: Option<&Args<'_>>) -> String {
        let order = [lang, DEFAULT_LANG];
        for code in order {
            if let Some(text) = self.format(code, id, args) {
                return text;
            }
        }
        tracing::warn!(id, lang, "no such message in web/locales/en.ftl");
        id.to_owned()
    }

    fn format(&self, lang: &str, id: &str, args: Option<&Args<'_>>) -> Option<String> {
        let (_, bundle) = self.bundles.iter().find(|(code, _)| *code == lang)?;
        let (message, attribute) = match id.split_once('.') {
            Some((m, a)) => (m, Some(a)),
            None => (id, None),
        };
        let message = bundle.get_message(message)?;
        let pattern = match attribute {
            Some(a) => message.get_attribute(a)?.value(),
            None => message.value()?,
        };
        let mut errors = Vec::new();
        let text = bundle.format_pattern(pattern, args, &mut errors);
        if !errors.is_empty() {
            tracing::warn!(id, lang, ?errors, "formatting a message");
        }
        Some(Cow::into_owned(text))
    }
}

/// Our language with this code (`de`), if we have it.
pub fn language(code: &str) -> Option<&'static Language> {
    LANGUAGES.iter().find(|l| l.code == code)
}

/// Arguments for [`Catalog::text`] from names and values.
pub fn args<'a>(pairs: &[(&'a str, FluentValue<'a>)]) -> Args<'a> {
    let mut args = FluentArgs::new();
    for (name, value) in pairs {
        args.set(*name, value.clone());
    }
    args
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use fluent_bundle::FluentResource;
    use fluent_syntax::ast;

    use super::*;

    /// Every message id and `id.attribute` of a file.
    fn keys(source: &str) -> BTreeSet<String> {
        let resource = FluentResource::try_new(source.to_owned()).expect("parses");
        let mut keys = BTreeSet::new();
        for entry in resource.entries() {
            if let ast::Entry::Message(m) = entry {
                if m.value.is_some() {
                    keys.insert(m.id.name.to_owned());
                }
                for a in &m.attributes {
                    keys.insert(format!("{}.{}", m.id.name, a.id.name));
                }
            }
        }
        keys
    }

    #[test]
    fn every_language_has_every_message() {
        let english = keys(LANGUAGES[0].source);
        assert!(english.len() > 50, "en.ftl has {} keys", english.len());
        for lang in &LANGUAGES[1..] {
            let theirs = keys(lang.source);
            let missing: Vec<_> = english.difference(&theirs).collect();
            let extra: Vec<_> = theirs.difference(&english).collect();
            assert!(
                missing.is_empty(),
                "web/locales/{}.ftl lacks {missing:?}",
                lang.code
            );
            assert!(
                extra.is_empty(),
                "web/locales/{}.ftl has messages English lacks: {extra:?}",
                lang.code
            );
        }
    }

    #[test]
    fn every_message_formats_without_errors_in_every_language() {
        let catalog = Catalog::new().expect("every file parses");
        let args = args(&[
            ("seconds", FluentValue::from(30)),
            ("minutes", FluentValue::from(3)),
            ("position", FluentValue::from(4)),
            ("days", FluentValue::from(2)),
            ("clock", FluentValue::from("03:04:05")),
            ("device", FluentValue::from("Chrome on Android")),
            ("time", FluentValue::from("20:15")),
            ("country", FluentValue::from("Austria")),
            ("title", FluentValue::from("The Show")),
            ("from", FluentValue::from("a")),
            ("until", FluentValue::from("b")),
        ]);
        for lang in LANGUAGES {
            for key in keys(lang.source) {
                let text = catalog
                    .format(lang.code, &key, Some(&args))
                    .unwrap_or_else(|| panic!("{}: {key} missing", lang.code));
                assert!(!text.trim().is_empty(), "{}: {key} is empty", lang.code);
                assert!(
                    !text.contains('{') && !text.contains("$"),
                    "{}: {key} left a placeable: {text}",
                    lang.code
                );
            }
        }
    }

    #[test]
    fn plurals_follow_each_language() {
        let catalog = Catalog::new().expect("parses");
        let secs = |lang: &str, n: i64| {
            catalog.text(
                lang,
                "no-connection.hint",
                Some(&args(&[("seconds", FluentValue::from(n))])),
            )
        };
        assert_eq!(secs("en", 1), "Trying again in 1 second…");
        assert_eq!(secs("en", 5), "Trying again in 5 seconds…");
        // Czech, Slovak and Polish have a form for 2–4 apart from 5 and more
        for lang in ["cs", "sk", "pl"] {
            assert_ne!(secs(lang, 2), secs(lang, 5).replace('5', "2"), "{lang}");
        }
    }

    #[test]
    fn the_cookie_then_accept_language_then_english() {
        let c = Catalog::new().expect("parses");
        assert_eq!(c.negotiate(Some("hu"), Some("de")), "hu");
        assert_eq!(c.negotiate(Some("xx"), Some("de-AT,de;q=0.9")), "de");
        assert_eq!(c.negotiate(None, Some("fr-FR,cs;q=0.8,en;q=0.5")), "cs");
        assert_eq!(c.negotiate(None, Some("sk-SK")), "sk");
        assert_eq!(c.negotiate(None, Some("PL")), "pl");
        assert_eq!(c.negotiate(None, Some("fr, es;q=0.5")), "en");
        assert_eq!(c.negotiate(None, Some(";;;,q=,*")), "en");
        assert_eq!(c.negotiate(None, None), "en");
        let hostile = format!("{}de", "x-".repeat(400));
        assert_eq!(c.negotiate(None, Some(&hostile)), "en");
    }

    #[test]
    fn a_missing_message_falls_back_to_english_then_to_its_id() {
        let c = Catalog::new().expect("parses");
        assert_eq!(c.text("xx", "playing", None), "Playing.");
        assert_eq!(c.text("de", "no-such-message", None), "no-such-message");
        assert_eq!(
            c.text("en", "ticket-revoked.hint", None),
            "If you think this is a mistake, contact the seller of your ticket."
        );
    }
}
