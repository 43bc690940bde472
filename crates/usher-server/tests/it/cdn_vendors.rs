//! The pool's `signing` for the schemes and options of issue 21: each reaches the signer through
//! `PUT /api/v1/cdns/{id}` (checked through `POST /api/v1/cdns/{id}/sign` and a viewer's grant), hostile
//! values get a precise 422, and nginx's cookie delivery is accepted by a real nginx.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::cdn::{NGINX_SECRET, admin, start_nginx};
use crate::support::{TestApp, assert_problem, spawn_app};

const STREAM_VIDEO: &str = "ea95132c15732412d22c1476fa83f27a";

fn pem() -> String {
    std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../usher-cdn/testdata/aws-sdk-js-v3-test-key.pem"),
    )
    .unwrap()
}

async fn put(app: &TestApp, id: &str, base_url: &str, signing: Value) -> reqwest::Response {
    admin(
        app,
        Method::PUT,
        &format!("/api/v1/cdns/{id}"),
        Some(json!({"name": id, "base_url": base_url, "signing": signing})),
    )
    .await
}

async fn sign(app: &TestApp, id: &str, body: Value) -> Value {
    let res = admin(
        app,
        Method::POST,
        &format!("/api/v1/cdns/{id}/sign"),
        Some(body),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK, "sign {id}");
    res.json().await.unwrap()
}

/// A CDN id, its base URL, its `signing`, the body of a sign call, and what its answer must show.
type Case = (
    &'static str,
    &'static str,
    Value,
    Value,
    Box<dyn Fn(&Value)>,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_new_option_reaches_the_signer_through_the_pool() {
    let app = spawn_app().await;
    let expires = 2_000_000_000_i64;
    let cases: Vec<Case> = vec![
        (
            "bunny",
            "https://zone.b-cdn.net",
            json!({"scheme": "bunny", "key": "SecurityKey", "countries_allowed": "CA,US",
                   "countries_blocked": "RU", "speed_limit": 5000}),
            json!({"path": "demo/master.m3u8", "expires_at": expires, "client_ip": "1.2.3.4"}),
            Box::new(|s: &Value| {
                let url = s["url"].as_str().unwrap();
                for part in [
                    "token=HS256-1-",
                    "token_countries=CA%2CUS",
                    "token_countries_blocked=RU",
                    "limit=5000",
                    "token_path=%2Fdemo%2F",
                ] {
                    assert!(url.contains(part), "{part}: {url}");
                }
            }),
        ),
        (
            "bunnyignore",
            "https://zone.b-cdn.net",
            json!({"scheme": "bunny", "key": "SecurityKey", "ignore_params": true, "delivery": "path"}),
            json!({"path": "demo/master.m3u8", "expires_at": expires}),
            Box::new(|s: &Value| {
                let url = s["url"].as_str().unwrap();
                assert!(
                    url.starts_with("https://zone.b-cdn.net/bcdn_token=HS256-")
                        && url.contains("&token_ignore_params=true&token_path=%2Fdemo%2F&"),
                    "{url}"
                );
            }),
        ),
        (
            "bunnymd5",
            "https://zone.b-cdn.net",
            json!({"scheme": "bunny", "key": "SecurityKey", "form": "md5"}),
            // the basic form signs one path (no token_path): its capabilities say so, so no folder is asked
            json!({"path": "demo/master.m3u8", "expires_at": expires, "client_ip": "192.0.2.7"}),
            Box::new(|s: &Value| {
                let url = s["url"].as_str().unwrap();
                assert!(
                    url.starts_with("https://zone.b-cdn.net/demo/master.m3u8?token=")
                        && url.ends_with("&expires=2000000000")
                        && !url.contains("token_path"),
                    "{url}"
                );
            }),
        ),
        (
            "fastly",
            "https://f.example",
            json!({"scheme": "fastly", "key": "iqFPeN2u+Z0Lm5IrsKaOFKRqEU5Gw8ePtaEkHZWuD24="}),
            json!({"path": "demo/master.m3u8", "expires_at": expires}),
            Box::new(|s: &Value| {
                let url = s["url"].as_str().unwrap();
                assert!(
                    url.starts_with("https://f.example/demo/master.m3u8?token=2000000000_"),
                    "{url}"
                );
            }),
        ),
        (
            "cfwaf",
            "https://cf.example",
            json!({"scheme": "cloudflare", "secret": "mysecrettoken", "lifetime_s": 600, "token_param": "v"}),
            json!({"path": "demo/master.m3u8", "expires_at": expires}),
            Box::new(|s: &Value| {
                let url = s["url"].as_str().unwrap();
                assert!(
                    url.starts_with("https://cf.example/demo/master.m3u8?v=1999999400-"),
                    "{url}"
                );
            }),
        ),
        (
            "cfstream",
            "https://customer-abc123.cloudflarestream.com",
            json!({"scheme": "cloudflare_stream", "key_id": "k1", "private_key_pem": pem(),
                   "access_rules": [{"type": "ip.geoip.country", "country": ["GB"], "action": "allow"}],
                   "downloadable": true}),
            json!({"path": format!("{STREAM_VIDEO}/manifest/video.m3u8"), "expires_at": expires,
                   "starts_at": 1_999_999_000, "client_ip": "203.0.113.77/24"}),
            Box::new(|s: &Value| {
                let url = s["url"].as_str().unwrap();
                let token = url.split('/').nth(3).unwrap();
                let claims: Value = serde_json::from_slice(
                    &base64::Engine::decode(
                        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                        token.split('.').nth(1).unwrap(),
                    )
                    .unwrap(),
                )
                .unwrap();
                assert_eq!(claims["sub"], STREAM_VIDEO);
                assert_eq!(claims["nbf"], 1_999_999_000);
                assert_eq!(claims["downloadable"], true);
                assert_eq!(
                    claims["accessRules"][1]["ip"][0], "203.0.113.0/24",
                    "{claims}"
                );
                assert!(url.ends_with("/manifest/video.m3u8"));
            }),
        ),
        (
            "akamai",
            "https://a.example",
            json!({"scheme": "akamai", "key": "aabbccddeeff00112233445566778899", "escape_early": true,
                   "data": "a&b"}),
            json!({"path": "demo/master.m3u8", "expires_at": expires, "session_id": "user:1"}),
            Box::new(|s: &Value| {
                let url = s["url"].as_str().unwrap();
                assert!(url.contains("~id=user%3a1~data=a%26b~hmac="), "{url}");
            }),
        ),
        (
            "google",
            "https://cdn.example.com",
            json!({"scheme": "google", "key_name": "my-key", "key": "nZtRohdNF9m3cKM24IcK4w==",
                   "delivery": "cookie", "cookie_scope": "parent_domain", "cookie_domain": "example.com"}),
            json!({"path": "demo/master.m3u8", "expires_at": expires}),
            Box::new(|s: &Value| {
                let set = s["cookies"][0]["set_cookie"].as_str().unwrap();
                assert!(set.contains("; Domain=example.com; Path=/"), "{set}");
            }),
        ),
        (
            "cloudfront",
            "https://d111111abcdef8.cloudfront.net",
            json!({"scheme": "cloudfront", "key_pair_id": "APKAEIBAERJR2EXAMPLE", "private_key_pem": pem()}),
            json!({"path": "demo/master.m3u8", "expires_at": expires, "client_ip": "198.51.100.9/16"}),
            Box::new(|s: &Value| {
                let url = s["url"].as_str().unwrap();
                let policy = url
                    .split(['?', '&'])
                    .find_map(|kv| kv.strip_prefix("Policy="))
                    .unwrap()
                    .replace('-', "+")
                    .replace('_', "=")
                    .replace('~', "/");
                let policy = String::from_utf8(
                    base64::Engine::decode(&base64::engine::general_purpose::STANDARD, policy)
                        .unwrap(),
                )
                .unwrap();
                assert!(
                    policy.contains(r#""AWS:SourceIp":"198.51.0.0/16""#),
                    "{policy}"
                );
            }),
        ),
    ];
    for (id, base, signing, body, check) in cases {
        let res = put(&app, id, base, signing.clone()).await;
        assert_eq!(
            res.status(),
            StatusCode::CREATED,
            "{id}: {}",
            res.text().await.unwrap()
        );
        let signed = sign(&app, id, body).await;
        assert!(!signed.to_string().contains("SecurityKey"));
        assert!(!signed.to_string().contains("mysecrettoken"));
        check(&signed);
    }
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_signing_values_get_a_precise_422() {
    let app = spawn_app().await;
    let pem = pem();
    let cases = [
        (
            json!({"scheme": "bunny", "key": "SecurityKey", "countries_allowed": "US&limit=0"}),
            "signing_option_invalid",
            Some("countries_allowed"),
        ),
        (
            json!({"scheme": "bunny", "key": "SecurityKey", "ignore_params": true, "countries_allowed": "US"}),
            "signing_option_invalid",
            Some("ignore_params"),
        ),
        (
            json!({"scheme": "bunny", "key": "SecurityKey", "speed_limit": 0}),
            "signing_option_invalid",
            Some("speed_limit"),
        ),
        (
            json!({"scheme": "bunny", "key": "SecurityKey", "form": "md5", "delivery": "path"}),
            "signing_option_invalid",
            Some("delivery"),
        ),
        (
            json!({"scheme": "cloudflare", "secret": "s3cr3t-value", "lifetime_s": 0}),
            "signing_option_invalid",
            Some("lifetime_s"),
        ),
        (
            json!({"scheme": "cloudflare", "secret": "s3cr3t\"value", "lifetime_s": 60}),
            "signing_key_invalid",
            None,
        ),
        (
            json!({"scheme": "fastly", "key": "c2hvcnQ="}),
            "signing_key_invalid",
            None,
        ),
        (
            json!({"scheme": "fastly", "key": "iqFPeN2u+Z0Lm5IrsKaOFKRqEU5Gw8ePtaEkHZWuD24=", "token_param": "a&b"}),
            "signing_option_invalid",
            Some("token_param"),
        ),
        (
            json!({"scheme": "cloudflare_stream", "key_id": "k1", "private_key_pem": "bm90IGEgcGVt"}),
            "signing_key_invalid",
            None,
        ),
        (
            json!({"scheme": "cloudflare_stream", "key_id": "k1", "private_key_pem": pem,
                   "access_rules": [{"type": "ip.src", "ip": ["10.0.0.0/33"], "action": "allow"}]}),
            "signing_option_invalid",
            Some("access_rules"),
        ),
        (
            json!({"scheme": "google", "key_name": "my-key", "key": "nZtRohdNF9m3cKM24IcK4w==",
                   "cookie_scope": "parent_domain", "cookie_domain": "example.com; Secure"}),
            "signing_option_invalid",
            Some("cookie_domain"),
        ),
        (
            json!({"scheme": "nginx", "secret": "nginx-s3cr3t", "delivery": "path",
                   "expression": "$secure_link_expires$uri $secret"}),
            "signing_unmatchable",
            Some("expression"),
        ),
        (
            json!({"scheme": "nginx", "secret": "nginx-s3cr3t", "cookie_name": "a b"}),
            "signing_option_invalid",
            Some("cookie_name"),
        ),
    ];
    for (signing, code, field) in cases {
        let res = put(&app, "x", "https://x.example", signing.clone()).await;
        let p = assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, code).await;
        assert_eq!(
            p.get("field").and_then(Value::as_str),
            field,
            "{signing}: {p}"
        );
        for secret in ["s3cr3t", "MIIE", "nZtRoh", "iqFPeN"] {
            assert!(!p.to_string().contains(secret), "a key leaked: {p}");
        }
        if code == "signing_unmatchable" {
            // the detail shows the string nginx would hash, with the secret as $secret
            assert!(
                p["detail"]
                    .as_str()
                    .unwrap()
                    .contains("\"2000000000/<hash>,2000000000/demo/master.m3u8 $secret\""),
                "{p}"
            );
        }
    }
    // a malformed configuration (an unknown option, a value of the wrong type) stays a 400
    let res = put(
        &app,
        "x",
        "https://x.example",
        json!({"scheme": "fastly", "key": "k", "token_parm": "t"}),
    )
    .await;
    assert_problem(res, StatusCode::BAD_REQUEST, "invalid_request").await;
    app.shutdown().await;
}

/// nginx's cookie delivery end to end: a viewer's grant carries `usher_link=<hash>,<expires>` for the
/// stream folder, and the real nginx serves the plain URLs with it (and refuses them without it, with it
/// changed, or for another folder).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_serves_with_the_cookie_usher_hands_out() {
    let nginx = start_nginx().await;
    let app = spawn_app().await;
    let edge = format!("http://127.0.0.1:{}/c", nginx.port);
    let signing = json!({
        "scheme": "nginx", "secret": NGINX_SECRET, "delivery": "cookie",
        "expression": "$secure_link_expires$folder $secret",
        "prefix_variable": "folder", "prefix_holds": "folder",
    });
    let res = put(&app, "c", &edge, signing).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    app.open_show("gig", 1, "newest_wins").await;
    let (_, token) = app.ticket("gig").await;
    let res = app.admit(&token, "device-nginx-cookie").await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let admitted: Value = res.json().await.unwrap();
    let grant = admitted["grants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["cdn"] == "c")
        .unwrap_or_else(|| panic!("a grant of c: {admitted}"))
        .clone();
    let cookie = &grant["cookies"][0];
    assert_eq!(cookie["name"], "usher_link", "{grant}");
    assert!(
        cookie["set_cookie"]
            .as_str()
            .unwrap()
            .contains("; Domain=127.0.0.1; Path=/c/demo/; HttpOnly"),
        "{grant}"
    );
    let value = cookie["value"].as_str().unwrap();
    let url = grant["url"].as_str().unwrap();
    assert_eq!(url, format!("{edge}/demo/master.m3u8"));
    let fetch = |url: String, cookie: Option<String>| {
        let client = app.client.clone();
        async move {
            let mut req = client.get(url);
            if let Some(c) = cookie {
                req = req.header("Cookie", c);
            }
            req.send().await.unwrap().status()
        }
    };
    let with = Some(format!("usher_link={value}"));
    assert_eq!(fetch(url.to_owned(), with.clone()).await, StatusCode::OK);
    // the folder's other objects, with the same cookie
    assert_eq!(
        fetch(format!("{edge}/demo/360p/index.m3u8"), with.clone()).await,
        StatusCode::OK
    );
    assert_eq!(fetch(url.to_owned(), None).await, StatusCode::FORBIDDEN);
    let (hash, expires) = value.split_once(',').unwrap();
    let changed = format!(
        "usher_link={}{},{expires}",
        if hash.starts_with('A') { "B" } else { "A" },
        &hash[1..]
    );
    assert_eq!(
        fetch(url.to_owned(), Some(changed)).await,
        StatusCode::FORBIDDEN
    );
    let later = format!("usher_link={hash},{}", expires.parse::<i64>().unwrap() + 60);
    assert_eq!(
        fetch(url.to_owned(), Some(later)).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        fetch(format!("{edge}/other/master.m3u8"), with).await,
        StatusCode::FORBIDDEN
    );
    app.shutdown().await;
    drop(nginx);
}
