//! The reference page: the API document rendered as HTML on the server, so it needs no script and no
//! third-party asset (its stylesheet is `web/src/docs.css`, embedded like the watch page's).
//!
//! Operations are grouped by tag, each with its scopes, parameters, body and answers; schemas follow, and a
//! type that names a schema links to it.

use serde_json::{Map, Value};

use crate::openapi::METHODS;
use crate::pages::Pages;
use crate::service::Result;

/// Escapes text for HTML.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Renders a description: paragraphs on blank lines, `code` in backquotes.
fn prose(s: &str) -> String {
    s.split("\n\n")
        .filter(|p| !p.trim().is_empty())
        .map(|p| {
            let mut html = String::from("<p>");
            for (i, part) in p.split('`').enumerate() {
                if i % 2 == 1 {
                    html.push_str("<code>");
                    html.push_str(&esc(part));
                    html.push_str("</code>");
                } else {
                    html.push_str(&esc(part));
                }
            }
            html.push_str("</p>");
            html
        })
        .collect()
}

fn schema_name(reference: &str) -> &str {
    reference.rsplit('/').next().unwrap_or(reference)
}

/// A schema in one line of HTML: a link for a named schema, `array of …`, the type with its format,
/// pattern, bounds and allowed values.
fn type_html(s: &Value) -> String {
    if let Some(r) = s["$ref"].as_str() {
        let name = schema_name(r);
        return format!("<a href=\"#schema-{0}\">{0}</a>", esc(name));
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(alts) = s[key].as_array() {
            return alts.iter().map(type_html).collect::<Vec<_>>().join(" | ");
        }
    }
    if let Some(all) = s["allOf"].as_array() {
        return all
            .iter()
            .filter(|p| p.get("$ref").is_some())
            .map(type_html)
            .collect::<Vec<_>>()
            .join(" &amp; ");
    }
    let types: Vec<String> = match &s["type"] {
        Value::String(t) => vec![t.clone()],
        Value::Array(ts) => ts
            .iter()
            .filter_map(|t| t.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    };
    let mut out = types
        .iter()
        .map(|t| {
            if t == "array" {
                format!("array of {}", type_html(&s["items"]))
            } else {
                esc(t)
            }
        })
        .collect::<Vec<_>>()
        .join(" | ");
    if out.is_empty() {
        out = "any".into();
    }
    let mut notes = Vec::new();
    if let Some(f) = s["format"].as_str() {
        notes.push(esc(f));
    }
    if let Some(values) = s["enum"].as_array() {
        let list: Vec<String> = values
            .iter()
            .map(|v| format!("<code>{}</code>", esc(&v.to_string())))
            .collect();
        notes.push(format!("one of {}", list.join(", ")));
    }
    if let Some(p) = s["pattern"].as_str() {
        notes.push(format!("pattern <code>{}</code>", esc(p)));
    }
    for (key, word) in [
        ("minimum", "≥"),
        ("maximum", "≤"),
        ("minLength", "length ≥"),
        ("maxLength", "length ≤"),
        ("minItems", "items ≥"),
        ("maxItems", "items ≤"),
    ] {
        if let Some(n) = s[key].as_number() {
            notes.push(format!("{word} {n}"));
        }
    }
    if notes.is_empty() {
        out
    } else {
        format!("{out} <span class=\"notes\">({})</span>", notes.join("; "))
    }
}

fn row(name: &str, ty: String, required: bool, description: &str) -> Value {
    serde_json::json!({
        "name": name,
        "type": ty,
        "required": required,
        "description": prose(description),
    })
}

/// The members of an object schema as table rows (none for other schemas).
fn members(s: &Value) -> Vec<Value> {
    let required: Vec<&str> = s["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut rows = Vec::new();
    if let Some(props) = s["properties"].as_object() {
        for (name, p) in props {
            rows.push(row(
                name,
                type_html(p),
                required.contains(&name.as_str()),
                p["description"].as_str().unwrap_or_default(),
            ));
        }
    }
    rows
}

fn operation(doc: &Value, path: &str, method: &str, op: &Value) -> Value {
    let scopes: Vec<String> = op["security"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["bearer"].as_array())
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_owned))
        .collect();
    let params: Vec<Value> = op["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let mut r = row(
                p["name"].as_str().unwrap_or_default(),
                type_html(&p["schema"]),
                p["required"].as_bool().unwrap_or(false),
                p["description"].as_str().unwrap_or_default(),
            );
            r["in"] = p["in"].clone();
            r
        })
        .collect();
    let body = op["requestBody"].as_object().map(|b| {
        let content = b
            .get("content")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        serde_json::json!({
            "description": prose(b.get("description").and_then(Value::as_str).unwrap_or_default()),
            "required": b.get("required").and_then(Value::as_bool).unwrap_or(false),
            "content": content.iter().map(|(ct, c)| serde_json::json!({
                "type": ct, "schema": type_html(&c["schema"]),
            })).collect::<Vec<_>>(),
        })
    });
    let responses: Vec<Value> = op["responses"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(status, r)| {
            let content = r["content"].as_object().cloned().unwrap_or_default();
            serde_json::json!({
                "status": status,
                "description": prose(r["description"].as_str().unwrap_or_default()),
                "content": content.iter().map(|(ct, c)| serde_json::json!({
                    "type": ct, "schema": type_html(&c["schema"]),
                })).collect::<Vec<_>>(),
                "headers": r["headers"].as_object().map(|h| h.keys().cloned().collect::<Vec<_>>()).unwrap_or_default(),
            })
        })
        .collect();
    let _ = doc;
    serde_json::json!({
        "id": op["operationId"],
        "method": method.to_ascii_uppercase(),
        "path": path,
        "summary": op["summary"],
        "description": prose(op["description"].as_str().unwrap_or_default()),
        "scopes": scopes,
        "params": params,
        "body": body,
        "responses": responses,
    })
}

/// Renders the document as the reference page.
///
/// # Errors
/// `internal` when the template fails.
pub fn render(pages: &Pages, doc: &Value) -> Result<String> {
    let mut by_tag: Map<String, Value> = Map::new();
    let tags: Vec<Value> = doc["tags"].as_array().cloned().unwrap_or_default();
    for t in &tags {
        if let Some(name) = t["name"].as_str() {
            by_tag.insert(name.to_owned(), Value::Array(Vec::new()));
        }
    }
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for method in METHODS {
            if let Some(op) = item.get(method) {
                let tag = op["tags"][0].as_str().unwrap_or("other").to_owned();
                let list = by_tag
                    .entry(tag)
                    .or_insert_with(|| Value::Array(Vec::new()));
                if let Some(l) = list.as_array_mut() {
                    l.push(operation(doc, path, method, op));
                }
            }
        }
    }
    let groups: Vec<Value> = by_tag
        .into_iter()
        .filter(|(_, ops)| ops.as_array().is_some_and(|o| !o.is_empty()))
        .map(|(name, ops)| {
            let description = tags
                .iter()
                .find(|t| t["name"] == name.as_str())
                .and_then(|t| t["description"].as_str())
                .unwrap_or_default();
            serde_json::json!({"name": name, "description": prose(description), "operations": ops})
        })
        .collect();
    // keep the order of the document's tags
    let order = |name: &str| {
        tags.iter()
            .position(|t| t["name"] == name)
            .unwrap_or(usize::MAX)
    };
    let mut groups = groups;
    groups.sort_by_key(|g| order(g["name"].as_str().unwrap_or_default()));
    let schemas: Vec<Value> = doc["components"]["schemas"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, s)| {
            let alternatives: Vec<String> = ["oneOf", "anyOf"]
                .iter()
                .filter_map(|k| s[*k].as_array())
                .flatten()
                .map(|alt| {
                    let title = alt["title"].as_str().map(esc);
                    let inner = members(alt)
                        .iter()
                        .map(|m| m["name"].as_str().unwrap_or_default().to_owned())
                        .collect::<Vec<_>>()
                        .join(", ");
                    match (title, inner.is_empty()) {
                        (_, false) => format!("{{{}}}", esc(&inner)),
                        (Some(t), true) => t,
                        (None, true) => type_html(alt),
                    }
                })
                .collect();
            serde_json::json!({
                "name": name,
                "description": prose(s["description"].as_str().unwrap_or_default()),
                "type": type_html(s),
                "members": members(s),
                "alternatives": alternatives,
            })
        })
        .collect();
    pages.render(
        "docs.html",
        minijinja::context! {
            title => doc["info"]["title"],
            version => doc["info"]["version"],
            description => prose(doc["info"]["description"].as_str().unwrap_or_default()),
            groups => groups,
            schemas => schemas,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prose_escapes_and_marks_code() {
        assert_eq!(
            prose("a `<b>` & c\n\nd"),
            "<p>a <code>&lt;b&gt;</code> &amp; c</p><p>d</p>"
        );
    }

    #[test]
    fn types_link_to_schemas() {
        let s =
            serde_json::json!({"type": "array", "items": {"$ref": "#/components/schemas/Show"}});
        assert_eq!(type_html(&s), "array of <a href=\"#schema-Show\">Show</a>");
        let s = serde_json::json!({"type": ["string", "null"], "format": "date-time"});
        assert_eq!(
            type_html(&s),
            "string | null <span class=\"notes\">(date-time)</span>"
        );
    }
}
