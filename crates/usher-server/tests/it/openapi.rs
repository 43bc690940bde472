//! The API document against the router: every route the router answers is in the document with each method
//! it answers, and every documented operation is routed. Both lists are read from the running code, not
//! from a copy: the routes from the router itself (its `Debug` output names every registered path), the
//! methods by asking the server (a method a path does not take answers 405 `method_not_allowed`).

use std::collections::BTreeSet;

use crate::support::spawn_app;
use reqwest::Method;
use serde_json::Value;

/// The paths registered in an axum router, from its `Debug` output (`RouteId(3): "/livez"`).
fn routed_paths(router: &axum::Router) -> BTreeSet<String> {
    let text = format!("{router:?}");
    // the fallback router that follows registers paths of its own (`/`, a catch-all)
    let text = text.split("fallback_router").next().unwrap_or_default();
    let mut paths = BTreeSet::new();
    for part in text.split("RouteId(").skip(1) {
        if let Some((_, rest)) = part.split_once("): \"")
            && let Some((path, _)) = rest.split_once('"')
            && !path.contains("__private__")
            // the admin console's HTML pages are not API operations; `tests/admin_console.rs` walks
            // their table (`console::route_table`) instead
            && !path.starts_with("/admin")
        {
            paths.insert(path.replace("{*", "{"));
        }
    }
    paths
}

/// A request target for a path template, every parameter filled with a value of the right form that names
/// nothing stored (so no probe changes anything).
fn sample(path: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let end = rest[start..]
            .find('}')
            .map_or(rest.len(), |e| start + e + 1);
        let name = &rest[start + 1..end - 1];
        out.push_str(match name {
            "ticket_id" => "t_000000000000000000000000",
            "session_id" | "session" => "s_00000000000000000000000000000000",
            "key_id" => "k_0000000000000000",
            "file" => "watch.css",
            "path" => "demo/none.ts",
            _ => "sample-unknown",
        });
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in usher_server::openapi::METHODS {
            if item.get(method).is_some() {
                ops.insert((path.clone(), method.to_ascii_uppercase()));
            }
        }
    }
    ops
}

#[tokio::test]
async fn every_route_is_documented_and_every_operation_routed() {
    let app = spawn_app().await;
    let doc: Value = app
        .client
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let documented = documented(&doc);
    let doc_paths: BTreeSet<String> = documented.iter().map(|(p, _)| p.clone()).collect();

    let routed = routed_paths(&usher_server::http::router(app.state.clone()));
    assert!(
        routed.len() >= 20 && routed.contains("/livez"),
        "could not read the routes from the router's Debug output (did axum change it?): {routed:?}"
    );
    let undocumented: Vec<_> = routed.difference(&doc_paths).collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from the API document (add a #[utoipa::path] and register the handler with routes!): {undocumented:?}"
    );
    let unrouted: Vec<_> = doc_paths.difference(&routed).collect();
    assert!(
        unrouted.is_empty(),
        "documented paths without a route: {unrouted:?}"
    );

    let mut wrong = Vec::new();
    for path in &routed {
        for method in ["GET", "PUT", "POST", "PATCH", "DELETE", "OPTIONS", "TRACE"] {
            let res = app
                .client
                .request(
                    Method::from_bytes(method.as_bytes()).unwrap(),
                    app.url(&sample(path)),
                )
                .bearer_auth(&app.admin_key)
                .send()
                .await
                .unwrap();
            let status = res.status().as_u16();
            let body: Value = res.json().await.unwrap_or(Value::Null);
            let answered = !(status == 405 && body["code"] == "method_not_allowed");
            assert!(
                status != 404 || body["code"] != "not_found" || path == "/assets/{file}",
                "{method} {path}: the router has no route for {}",
                sample(path)
            );
            let is_documented = documented.contains(&(path.clone(), method.to_owned()));
            if answered != is_documented {
                wrong.push(format!(
                    "{method} {path}: {} but {}",
                    if answered { "routed" } else { "not routed" },
                    if is_documented {
                        "documented"
                    } else {
                        "not documented"
                    },
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "router and API document differ:\n{}",
        wrong.join("\n")
    );
    app.shutdown().await;
}

#[tokio::test]
async fn every_error_answer_is_a_problem_with_its_codes() {
    let app = spawn_app().await;
    let doc: Value = app
        .client
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            for (status, answer) in op["responses"].as_object().unwrap() {
                let code: u16 = status.parse().unwrap();
                let content = answer["content"].as_object();
                if code >= 400
                    && !content.is_some_and(|c| {
                        c.contains_key("text/html") || c.contains_key("application/json")
                    })
                {
                    assert!(
                        content.is_some_and(|c| c.contains_key("application/problem+json")),
                        "{method} {path} {status}: an error answer without the problem schema"
                    );
                }
            }
            if op["security"].is_array() {
                assert!(
                    op["responses"]["401"].is_object(),
                    "{method} {path}: keyed, no 401"
                );
                assert!(
                    op["responses"]["403"].is_object(),
                    "{method} {path}: keyed, no 403"
                );
            }
        }
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    // every code is promised by some operation's answer (its narrowed problem schema), but for the two
    // answered outside the document's operations: the console's login form (a page) and the router's
    // 405 to a method no operation has. A code no operation lists is either dead or answered without
    // being documented (show_unpublished on admit was, until this check). That each listed code is
    // really answered by some test is scripts/check-api-codes.py's part, over the whole suite's answers.
    let mut promised = std::collections::BTreeSet::new();
    for item in doc["paths"].as_object().unwrap().values() {
        for op in item.as_object().unwrap().values() {
            for answer in op["responses"].as_object().unwrap().values() {
                let schema = &answer["content"]["application/problem+json"]["schema"];
                for part in schema["allOf"].as_array().into_iter().flatten() {
                    for code in part["properties"]["code"]["enum"]
                        .as_array()
                        .into_iter()
                        .flatten()
                    {
                        promised.insert(code.as_str().unwrap().to_owned());
                    }
                }
            }
        }
    }
    let unlisted: Vec<&str> = usher_server::http::error::CODES
        .iter()
        .copied()
        .filter(|c| !promised.contains(*c) && !["login_failed", "method_not_allowed"].contains(c))
        .collect();
    assert!(
        unlisted.is_empty(),
        "codes no operation of the document lists: {unlisted:?}"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn the_reference_page_lists_every_operation_without_script() {
    let app = spawn_app().await;
    let res = app
        .client
        .get(app.url("/api/v1/docs"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let csp = res.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("default-src 'none'") && !csp.contains("script-src"),
        "{csp}"
    );
    let html = res.text().await.unwrap();
    assert!(!html.contains("<script"), "the page needs no script");
    assert!(html.contains("/assets/docs.css"));
    let doc: Value = app
        .client
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for item in doc["paths"].as_object().unwrap().values() {
        for op in item.as_object().unwrap().values() {
            let id = op["operationId"].as_str().unwrap();
            assert!(
                html.contains(&format!("id=\"op-{id}\"")),
                "{id} is not on the page"
            );
        }
    }
    let css = app
        .client
        .get(app.url("/assets/docs.css"))
        .send()
        .await
        .unwrap();
    assert_eq!(css.status(), 200);
    app.shutdown().await;
}

/// A `#[utoipa::path]` that lists one status twice keeps only one of them in the document, silently
/// (the responses are a map): the codes of the other are then undocumented and every client that
/// validates answers refuses them. So no handler may list a status twice.
#[test]
fn no_operation_lists_a_status_twice() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = vec![src];
    let mut twice = Vec::new();
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for block in text.split("#[utoipa::path(").skip(1) {
            let block = block.split("\n)]").next().unwrap_or(block);
            let Some(responses) = block.split("responses(").nth(1) else {
                continue;
            };
            let mut seen = std::collections::BTreeSet::new();
            for part in responses.split("(status = ").skip(1) {
                let status: String = part.chars().take_while(char::is_ascii_digit).collect();
                if !seen.insert(status.clone()) {
                    let op = block.lines().nth(2).unwrap_or("").trim().to_owned();
                    twice.push(format!("{}: {op} lists {status} twice", path.display()));
                }
            }
        }
    }
    assert!(twice.is_empty(), "{twice:#?}");
}
