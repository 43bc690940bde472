//! Checks answers against the API document the server serves: the operation is found from the request's
//! method and path, the answer's status must be documented for it, and a JSON answer must match the schema
//! the document gives that status and content type.
//!
//! The check is stricter than the document read literally, so that drift fails: in the copy validated
//! against, every object schema is closed (members it does not declare are refused; see [`close`]), and
//! formats (`date-time`, …) are validated.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

/// The served document, closed, with a validator per schema, compiled when first needed.
pub(crate) struct ApiDoc {
    /// The document as served.
    served: Value,
    /// The copy answers are checked against (object schemas closed).
    doc: Value,
    templates: Vec<Template>,
    validators: Mutex<HashMap<String, Arc<jsonschema::Validator>>>,
}

/// A path template of the document, split into segments.
struct Template {
    text: String,
    segments: Vec<Option<String>>,
    /// The last parameter takes the rest of the path (`{*path}` in the router).
    wildcard: bool,
}

/// One answer as a client received it.
pub(crate) struct Answer<'a> {
    pub(crate) method: &'a str,
    /// The request target: path and query, as sent.
    pub(crate) target: &'a str,
    pub(crate) status: u16,
    pub(crate) content_type: Option<&'a str>,
    pub(crate) body: &'a [u8],
}

/// Where an answer was looked up: the operation (`GET /api/v1/shows/{show_id}`) or why there was none.
pub(crate) struct Checked {
    pub(crate) operation: String,
    pub(crate) json: bool,
    pub(crate) result: Result<(), String>,
}

impl ApiDoc {
    /// `doc` as served; `wildcards`: the templates (as the document writes them) whose last parameter is a
    /// catch-all in the router.
    pub(crate) fn new(doc: &Value, wildcards: &BTreeSet<String>) -> Self {
        let served = doc.clone();
        let mut doc = doc.clone();
        assert_eq!(doc["openapi"], "3.1.0", "the served API document");
        let mut templates = Vec::new();
        for text in doc["paths"]
            .as_object()
            .expect("the document has paths")
            .keys()
        {
            let segments = text
                .split('/')
                .map(|s| {
                    if s.starts_with('{') && s.ends_with('}') {
                        None
                    } else {
                        Some(s.to_owned())
                    }
                })
                .collect();
            templates.push(Template {
                text: text.clone(),
                segments,
                wildcard: wildcards.contains(text),
            });
        }
        for (name, schema) in doc["components"]["schemas"]
            .as_object_mut()
            .expect("the document has component schemas")
        {
            assert!(schema.is_object(), "schema {name}");
            close(schema, false);
        }
        for item in doc["paths"].as_object_mut().unwrap().values_mut() {
            for op in item.as_object_mut().unwrap().values_mut() {
                let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
                    continue;
                };
                for answer in responses.values_mut() {
                    if let Some(content) = answer.get_mut("content").and_then(Value::as_object_mut)
                    {
                        for media in content.values_mut() {
                            if let Some(schema) = media.get_mut("schema") {
                                close(schema, false);
                            }
                        }
                    }
                }
            }
        }
        // validated as JSON Schema 2020-12 (OpenAPI 3.1's dialect), `$ref`s resolved in the document
        doc["$schema"] = json!("https://json-schema.org/draft/2020-12/schema");
        Self {
            served,
            doc,
            templates,
            validators: Mutex::new(HashMap::new()),
        }
    }

    /// The document as served.
    pub(crate) fn served(&self) -> &Value {
        &self.served
    }

    /// The template a request path falls under: the one matching segment for segment with the most
    /// literal segments, else one whose catch-all takes the rest.
    fn template(&self, path: &str) -> Option<&Template> {
        let parts: Vec<&str> = path.split('/').collect();
        let fits = |t: &Template, parts: &[&str]| {
            t.segments.len() == parts.len()
                && t.segments.iter().zip(parts).all(|(s, p)| match s {
                    Some(lit) => lit == p,
                    None => !p.is_empty(),
                })
        };
        let exact = self
            .templates
            .iter()
            .filter(|t| fits(t, &parts))
            .max_by_key(|t| t.segments.iter().filter(|s| s.is_some()).count());
        exact.or_else(|| {
            self.templates.iter().find(|t| {
                let n = t.segments.len();
                t.wildcard
                    && parts.len() > n
                    && fits(t, &parts[..n])
                    && parts[n..].iter().all(|p| !p.is_empty())
            })
        })
    }

    /// Checks one answer.
    pub(crate) fn check(&self, a: &Answer<'_>) -> Checked {
        let path = a.target.split('?').next().unwrap_or_default();
        let media = a.content_type.map(|c| {
            c.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        });
        let json = media
            .as_deref()
            .is_some_and(|m| m == "application/json" || m.ends_with("+json"));
        let method = a.method.to_ascii_lowercase();
        let template = self.template(path);
        // HEAD is answered by the GET handler
        let op = template.and_then(|t| {
            let item = &self.doc["paths"][&t.text];
            match item.get(&method) {
                Some(op) => Some((t, method.as_str(), op)),
                None if method == "head" => item.get("get").map(|op| (t, "get", op)),
                None => None,
            }
        });
        let Some((template, op_method, op)) = op else {
            // outside the document: only the router's own refusals may answer, as problems
            let operation = format!(
                "{} {} (no documented operation)",
                a.method,
                template.map_or(path, |t| &t.text)
            );
            let expected = if template.is_some() { 405 } else { 404 };
            let result = if !json {
                Ok(())
            } else if a.status != expected {
                Err(format!(
                    "a JSON answer {} from no documented operation (only the router's {expected} may answer here)",
                    a.status
                ))
            } else {
                self.validate("/components/schemas/Problem", "Problem", a.body)
                    .and_then(|()| same_status(a))
            };
            return Checked {
                operation,
                json,
                result,
            };
        };
        let operation = format!("{} {}", a.method, template.text);
        let responses = &op["responses"];
        let status = a.status.to_string();
        let range = format!("{}XX", a.status / 100);
        let Some((key, answer)) = [status.as_str(), range.as_str(), "default"]
            .into_iter()
            .find_map(|k| responses.get(k).map(|r| (k, r)))
        else {
            return Checked {
                operation,
                json,
                result: Err(format!(
                    "status {} is not documented for the operation{}",
                    a.status,
                    excerpt(a.body)
                )),
            };
        };
        if a.method.eq_ignore_ascii_case("head") || a.body.is_empty() && !json {
            return Checked {
                operation,
                json,
                result: Ok(()),
            };
        }
        let content = answer.get("content").and_then(Value::as_object);
        let Some(media) = media else {
            return Checked {
                operation,
                json,
                result: Err(format!(
                    "{} {key}: a body without a content type{}",
                    a.status,
                    excerpt(a.body)
                )),
            };
        };
        let Some(described) = content.and_then(|c| c.get(&media)) else {
            let documented: Vec<&String> = content.map(|c| c.keys().collect()).unwrap_or_default();
            return Checked {
                operation,
                json,
                result: Err(format!(
                    "{} {key}: content type {media} is not documented (documented: {documented:?}){}",
                    a.status,
                    excerpt(a.body)
                )),
            };
        };
        if !json {
            return Checked {
                operation,
                json,
                result: Ok(()),
            };
        }
        let result = match described.get("schema") {
            None => Err(format!("{} {key}: {media} has no schema", a.status)),
            Some(_) => {
                let pointer = format!(
                    "/paths/{}/{op_method}/responses/{key}/content/{}/schema",
                    escape(&template.text),
                    escape(&media)
                );
                self.validate(
                    &pointer,
                    &format!("{media} (documented under {key})"),
                    a.body,
                )
            }
        };
        Checked {
            operation,
            json,
            result,
        }
    }

    /// Validates `body` against the schema at `pointer` in the document.
    fn validate(&self, pointer: &str, what: &str, body: &[u8]) -> Result<(), String> {
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| format!("{what}: not JSON ({e}){}", excerpt(body)))?;
        let validator = self.validator(pointer)?;
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .map(|e| format!("at '{}': {e}", e.instance_path()))
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{what} does not match the schema:\n      {}{}",
                errors.join("\n      "),
                excerpt(body)
            ))
        }
    }

    fn validator(&self, pointer: &str) -> Result<Arc<jsonschema::Validator>, String> {
        let mut cache = self.validators.lock().unwrap();
        if let Some(v) = cache.get(pointer) {
            return Ok(v.clone());
        }
        let mut root = self.doc.clone();
        root["$ref"] = Value::String(format!("#{}", fragment(pointer)));
        let validator = jsonschema::options()
            .should_validate_formats(true)
            .build(&root)
            .map_err(|e| format!("the schema at {pointer} does not compile: {e}"))?;
        let validator = Arc::new(validator);
        cache.insert(pointer.to_owned(), validator.clone());
        Ok(validator)
    }
}

/// A problem outside the document names the answer's own status.
fn same_status(a: &Answer<'_>) -> Result<(), String> {
    let body: Value = serde_json::from_slice(a.body).unwrap_or_default();
    if body["status"] == a.status {
        Ok(())
    } else {
        Err(format!(
            "the problem's status is not {}{}",
            a.status,
            excerpt(a.body)
        ))
    }
}

/// A JSON pointer's escape of one reference token.
fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// A JSON pointer as a URI fragment: what a fragment may not hold (`{`, `}`, …) percent-encoded.
fn fragment(pointer: &str) -> String {
    let mut out = String::new();
    for b in pointer.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/?".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The start of a body, for messages.
fn excerpt(body: &[u8]) -> String {
    if body.is_empty() {
        return String::new();
    }
    let text = String::from_utf8_lossy(body);
    let mut short: String = text.chars().take(400).collect();
    if short.len() < text.len() {
        short.push('…');
    }
    format!("\n      body: {short}")
}

/// Closes every object schema in `schema` that does not say which other members it allows: members it
/// does not declare then fail (`unevaluatedProperties: false`, which also sees the members declared
/// through `$ref` and `allOf`). A direct member of an `allOf` is left open, since its siblings may declare
/// the members it lacks; the schema holding the `allOf` is closed instead.
fn close(schema: &mut Value, in_all_of: bool) {
    let Some(map) = schema.as_object_mut() else {
        return;
    };
    let objectish = match map.get("type") {
        Some(Value::String(t)) => t == "object",
        Some(Value::Array(ts)) => ts.iter().any(|t| t == "object"),
        _ => false,
    } || map.contains_key("properties")
        || map.contains_key("allOf");
    let open = [
        "additionalProperties",
        "unevaluatedProperties",
        "patternProperties",
    ]
    .iter()
    .any(|k| map.contains_key(*k));
    if objectish && !open && !in_all_of {
        map.insert("unevaluatedProperties".into(), Value::Bool(false));
    }
    for (key, sub) in map.iter_mut() {
        match key.as_str() {
            "properties" | "$defs" | "dependentSchemas" | "patternProperties" => {
                if let Some(subs) = sub.as_object_mut() {
                    for s in subs.values_mut() {
                        close(s, false);
                    }
                }
            }
            "allOf" | "anyOf" | "oneOf" | "prefixItems" => {
                if let Some(subs) = sub.as_array_mut() {
                    for s in subs {
                        close(s, key == "allOf");
                    }
                }
            }
            "items"
            | "additionalProperties"
            | "not"
            | "if"
            | "then"
            | "else"
            | "contains"
            | "propertyNames"
            | "unevaluatedItems"
            | "unevaluatedProperties" => close(sub, false),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> ApiDoc {
        let doc = json!({
            "openapi": "3.1.0",
            "paths": {
                "/things/{id}": {"get": {"responses": {
                    "200": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Thing"}}}},
                    "404": {"content": {"application/problem+json": {"schema": {"allOf": [
                        {"$ref": "#/components/schemas/Problem"},
                        {"properties": {"status": {"const": 404}}},
                    ]}}}},
                }}},
                "/things/batch": {"post": {"responses": {"200": {"description": "no body"}}}},
                "/files/{path}": {"get": {"responses": {"200": {"content": {"text/plain": {}}}}}},
            },
            "components": {"schemas": {
                "Thing": {"type": "object", "required": ["id"], "properties": {
                    "id": {"type": "string"},
                    "at": {"type": "string", "format": "date-time"},
                    "inner": {"oneOf": [{"$ref": "#/components/schemas/Inner"}, {"type": "null"}]},
                }},
                "Inner": {"type": "object", "properties": {"n": {"type": "integer"}}},
                "Problem": {"type": "object", "required": ["status"], "properties": {
                    "status": {"type": "integer"}, "code": {"type": "string"},
                }},
            }},
        });
        ApiDoc::new(&doc, &BTreeSet::from(["/files/{path}".to_owned()]))
    }

    fn check(method: &str, target: &str, status: u16, ctype: &str, body: &str) -> Checked {
        doc().check(&Answer {
            method,
            target,
            status,
            content_type: Some(ctype),
            body: body.as_bytes(),
        })
    }

    fn fails(c: Checked, what: &str) {
        let err = c.result.expect_err("must fail");
        assert!(err.contains(what), "{err}");
    }

    #[test]
    fn answers_that_match_pass() {
        let ok = |c: Checked| c.result.unwrap();
        ok(check(
            "GET",
            "/things/1?x=y",
            200,
            "application/json",
            r#"{"id": "1", "inner": {"n": 2}}"#,
        ));
        ok(check(
            "GET",
            "/things/1",
            200,
            "application/json; charset=utf-8",
            r#"{"id": "1", "inner": null}"#,
        ));
        ok(check(
            "GET",
            "/things/1",
            404,
            "application/problem+json",
            r#"{"status": 404, "code": "x"}"#,
        ));
        ok(check("HEAD", "/things/1", 200, "application/json", ""));
        ok(check("GET", "/files/a/b/c.txt", 200, "text/plain", "hello"));
        ok(check(
            "GET",
            "/elsewhere",
            404,
            "application/problem+json",
            r#"{"status": 404}"#,
        ));
        ok(check(
            "PUT",
            "/things/1",
            405,
            "application/problem+json",
            r#"{"status": 405}"#,
        ));
        ok(check("GET", "/console", 200, "text/html", "<p>"));
    }

    #[test]
    fn drift_fails() {
        // a member the schema does not declare, at the top and nested behind $ref and oneOf
        fails(
            check(
                "GET",
                "/things/1",
                200,
                "application/json",
                r#"{"id": "1", "extra": true}"#,
            ),
            "extra",
        );
        fails(
            check(
                "GET",
                "/things/1",
                200,
                "application/json",
                r#"{"id": "1", "inner": {"n": 1, "m": 2}}"#,
            ),
            "at '/inner'",
        );
        fails(
            check(
                "GET",
                "/things/1",
                404,
                "application/problem+json",
                r#"{"status": 404, "more": 1}"#,
            ),
            "more",
        );
        // a required member missing, a wrong type, a bad format
        fails(
            check("GET", "/things/1", 200, "application/json", "{}"),
            "\"id\" is a required",
        );
        fails(
            check("GET", "/things/1", 200, "application/json", r#"{"id": 1}"#),
            "at '/id'",
        );
        fails(
            check(
                "GET",
                "/things/1",
                200,
                "application/json",
                r#"{"id": "1", "at": "yesterday"}"#,
            ),
            "date-time",
        );
        fails(
            check(
                "GET",
                "/things/1",
                404,
                "application/problem+json",
                r#"{"status": 400}"#,
            ),
            "404",
        );
        // an undocumented status, content type or operation; not JSON
        fails(
            check("GET", "/things/1", 500, "application/json", "{}"),
            "status 500 is not documented",
        );
        fails(
            check("GET", "/things/1", 200, "text/html", "<p>"),
            "content type text/html",
        );
        fails(
            check("POST", "/things/batch", 200, "application/json", "{}"),
            "application/json is not documented",
        );
        fails(
            check("GET", "/elsewhere", 200, "application/json", "{}"),
            "no documented operation",
        );
        fails(
            check("GET", "/things/1", 200, "application/json", "{"),
            "not JSON",
        );
    }

    #[test]
    fn literal_segments_win_over_parameters() {
        let d = doc();
        assert_eq!(d.template("/things/batch").unwrap().text, "/things/batch");
        assert_eq!(d.template("/things/other").unwrap().text, "/things/{id}");
        assert!(d.template("/things/a/b").is_none(), "no catch-all there");
        assert!(d.template("/things/").is_none());
    }
}
