//! The vendor known-answer vectors of `testdata/vectors.json`, for the unit tests.
//!
//! The file is written by `scripts/vendor-vectors.sh` with the vendors' own reference code (Akamai's
//! `akamai-edgeauth`, AWS's botocore `CloudFrontSigner`) and a real nginx, at pinned versions, and
//! `scripts/test.sh` regenerates it and fails when it differs: an expected value read here is the vendor's,
//! not a copy of what this crate once printed. Each vendor's tests deserialize the vectors into their own
//! input types, which refuse unknown fields, so an input added to the generator fails the tests until the
//! Rust side uses it too.

use serde::de::DeserializeOwned;
use serde_json::Value;

const FILE: &str = include_str!("../testdata/vectors.json");

fn all() -> Vec<Value> {
    let document: Value = serde_json::from_str(FILE).expect("testdata/vectors.json is JSON");
    match document.get("vectors") {
        Some(Value::Array(vectors)) => vectors.clone(),
        _ => panic!("testdata/vectors.json has no \"vectors\" list"),
    }
}

fn id(vector: &Value) -> &str {
    vector["id"].as_str().expect("every vector has an id")
}

fn parse<T: DeserializeOwned>(vector: Value) -> T {
    let id = id(&vector).to_owned();
    serde_json::from_value(vector).unwrap_or_else(|e| panic!("vector {id}: {e}"))
}

/// Every vector of `vendor` (ids `vendor/…`); panics when there is none, so a test cannot pass on nothing.
pub(crate) fn of<T: DeserializeOwned>(vendor: &str) -> Vec<T> {
    let prefix = format!("{vendor}/");
    let found: Vec<T> = all()
        .into_iter()
        .filter(|v| id(v).starts_with(&prefix))
        .map(parse)
        .collect();
    assert!(
        !found.is_empty(),
        "no {vendor} vectors in testdata/vectors.json"
    );
    found
}

/// The vector `id`.
pub(crate) fn one<T: DeserializeOwned>(id_wanted: &str) -> T {
    let vector = all()
        .into_iter()
        .find(|v| id(v) == id_wanted)
        .unwrap_or_else(|| panic!("no vector {id_wanted} in testdata/vectors.json"));
    parse(vector)
}
