//! The viewer pages' language (issue 22): the server renders the watch, TV and approval pages in the
//! picker's language, else the best match of `Accept-Language`, else English; a show's title comes from
//! its `translations`; the pages' messages are served for the picker; hostile headers change nothing.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{TestApp, assert_problem, rfc3339, spawn_app};

async fn page(
    app: &TestApp,
    path: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
) -> (StatusCode, String, reqwest::header::HeaderMap) {
    let mut req = app.client.get(app.url(path));
    let mut cookies = Vec::new();
    if let Some(t) = token {
        cookies.push(format!("usher_ticket={t}"));
    }
    for (name, value) in headers {
        if name.eq_ignore_ascii_case("cookie") {
            cookies.push((*value).to_owned());
        } else {
            req = req.header(*name, *value);
        }
    }
    if !cookies.is_empty() {
        req = req.header("cookie", cookies.join("; "));
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    let h = res.headers().clone();
    (status, res.text().await.unwrap(), h)
}

/// The text of the element with this id (`<p id="status">…</p>`), trimmed.
fn text_of<'a>(html: &'a str, id: &str) -> &'a str {
    let open = format!("id=\"{id}\"");
    let at = html
        .find(&open)
        .unwrap_or_else(|| panic!("no #{id} in {html}"));
    let start = at + html[at..].find('>').unwrap() + 1;
    html[start..start + html[start..].find("</").unwrap()].trim()
}

fn html_lang(html: &str) -> &str {
    let at = html.find("<html lang=\"").expect("an html lang") + 12;
    &html[at..at + html[at..].find('"').unwrap()]
}

fn show(title: &str, starts_in_h: i64, translations: Value) -> Value {
    let now = time::OffsetDateTime::now_utc();
    json!({
        "title": title,
        "description": "In English.",
        "starts_at": rfc3339(now + time::Duration::hours(starts_in_h)),
        "ends_at": rfc3339(now + time::Duration::hours(starts_in_h + 2)),
        "stream_path": "demo",
        "translations": translations,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watch_page_speaks_the_cookie_then_accept_language_then_english() {
    let app = spawn_app().await;
    let res = app
        .put_show(
            "gig",
            show(
                "The concert",
                1,
                json!({"de": {"title": "Das Konzert", "description": "Auf Deutsch."}, "cs": {"title": "Koncert"}}),
            ),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let stored: Value = res.json().await.unwrap();
    assert_eq!(stored["translations"]["de"]["title"], "Das Konzert");
    let (_, token) = app.ticket("gig").await;

    // Accept-Language picks German: the server's words, the title and description in it
    let (status, html, headers) = page(
        &app,
        "/watch",
        Some(&token),
        &[("accept-language", "de-AT,de;q=0.9,en;q=0.5")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(html_lang(&html), "de");
    assert_eq!(
        text_of(&html, "status"),
        "Die Veranstaltung hat noch nicht begonnen."
    );
    assert_eq!(text_of(&html, "title"), "Das Konzert");
    assert_eq!(text_of(&html, "description"), "Auf Deutsch.");
    let vary = headers.get("vary").unwrap().to_str().unwrap();
    assert!(
        vary.contains("Accept-Language") && vary.contains("Cookie"),
        "{vary}"
    );
    // the page carries English and German messages for its script, and the picker selects German
    assert!(html.contains(r#"<option value="de" lang="de" selected>Deutsch</option>"#));
    assert!(html.contains(r#""lang":"de""#));

    // Czech has a title but no description: the English description stays
    let (_, html, _) = page(&app, "/watch", Some(&token), &[("accept-language", "cs")]).await;
    assert_eq!(html_lang(&html), "cs");
    assert_eq!(text_of(&html, "title"), "Koncert");
    assert_eq!(text_of(&html, "description"), "In English.");

    // the picker's cookie wins over Accept-Language; one naming no language of ours does not
    let (_, html, _) = page(
        &app,
        "/watch",
        Some(&token),
        &[("accept-language", "de"), ("cookie", "usher_lang=hu")],
    )
    .await;
    assert_eq!(html_lang(&html), "hu");
    assert_eq!(
        text_of(&html, "title"),
        "The concert",
        "no Hungarian title: the show's own"
    );
    let (_, html, _) = page(
        &app,
        "/watch",
        Some(&token),
        &[("accept-language", "pl"), ("cookie", "usher_lang=xx")],
    )
    .await;
    assert_eq!(html_lang(&html), "pl");

    // a language we lack, none, or garbage: English
    for accept in ["fr-FR,ja;q=0.5", "", ";;;q=x,*,", &"de-".repeat(300)] {
        let (status, html, _) =
            page(&app, "/watch", Some(&token), &[("accept-language", accept)]).await;
        assert_eq!(status, StatusCode::OK, "{accept}");
        assert_eq!(html_lang(&html), "en", "{accept}");
        assert_eq!(text_of(&html, "status"), "The show has not started yet.");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_and_the_tv_pages_are_rendered_in_the_language() {
    let app = spawn_app().await;
    app.open_show("gig", 1, "newest_wins").await;
    // an unknown ticket, in Slovak
    let (status, html, _) = page(
        &app,
        "/watch/not-a-ticket-token-at-all",
        None,
        &[("accept-language", "sk-SK")],
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(html_lang(&html), "sk");
    assert_eq!(
        text_of(&html, "status"),
        "Tento odkaz na vstupenku nie je platný."
    );
    // no ticket, in Polish
    let (status, html, _) = page(&app, "/watch", None, &[("accept-language", "pl")]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(html_lang(&html), "pl");
    assert_eq!(
        text_of(&html, "status"),
        "W tej przeglądarce nie znaleziono biletu."
    );
    // the TV's sign-in page and the phone's approval page, in Hungarian
    let (status, html, _) = page(&app, "/tv", None, &[("accept-language", "hu")]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(html_lang(&html), "hu");
    assert_eq!(text_of(&html, "status"), "Kód lekérése…");
    let (status, html, _) = page(&app, "/activate", None, &[("accept-language", "hu")]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(html_lang(&html), "hu");
    assert_eq!(
        text_of(&html, "status"),
        "Előbb nyissa meg ezen a telefonon a jegyéhez tartozó megtekintési linket, majd olvassa be újra a tévé kódját."
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_language_is_served_for_the_picker() {
    let app = spawn_app().await;
    for lang in ["en", "de", "cs", "sk", "pl", "hu"] {
        let res = app
            .client
            .get(app.url(&format!("/assets/locale-{lang}.ftl")))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{lang}");
        assert_eq!(res.headers()["content-type"], "text/plain; charset=utf-8");
        let body = res.text().await.unwrap();
        assert!(body.contains("continue-here ="), "{lang}");
    }
    let res = app
        .client
        .get(app.url("/assets/locale-xx.ftl"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn translations_are_checked() {
    let app = spawn_app().await;
    let many: serde_json::Map<String, Value> = (0..21)
        .map(|i| (format!("x{}", (b'a' + i) as char), json!({"title": "t"})))
        .collect();
    for (translations, why) in [
        (
            json!({"German": {"title": "Das Konzert"}}),
            "a name, not a code",
        ),
        (json!({"de-de": {"title": "t"}}), "a region in lower case"),
        (
            json!({"de": {"title": "x".repeat(201)}}),
            "a title too long",
        ),
        (
            json!({"de": {"title": "bad\u{0007}"}}),
            "a control character",
        ),
        (Value::Object(many), "21 languages"),
    ] {
        let res = app.put_show("gig", show("t", 1, translations)).await;
        let problem = assert_problem(res, StatusCode::BAD_REQUEST, "invalid_request").await;
        assert!(
            problem["detail"].as_str().unwrap().contains("translations"),
            "{why}: {problem}"
        );
    }
    let res = app
        .put_show("gig", show("t", 1, json!({"de": {"subtitle": "t"}})))
        .await;
    assert_problem(res, StatusCode::BAD_REQUEST, "invalid_request").await;
    let res = app
        .put_show(
            "gig",
            show("t", 1, json!({"pt-BR": {"description": "Olá"}})),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
}
