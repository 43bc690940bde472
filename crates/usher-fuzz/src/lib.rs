//! Fuzz targets for Usher's parsers of hostile input live in `tests/fuzz.rs`: ticket tokens, device and
//! session ids, session secrets, grants, media paths, `Forwarded`/`X-Forwarded-For` chains, master
//! playlists, configuration files, and the API's request bodies (`problem_bodies`: every refusal is a
//! well-formed problem with a documented code, never a 5xx). `cargo test -p usher-fuzz` runs each on its committed corpus
//! (`tests/corpus/<target>/`) and on random inputs for `USHER_FUZZ_SECONDS` (default 2) seconds;
//! `cargo bolero test -p usher-fuzz <target>` (nightly, cargo-bolero) runs a coverage-guided fuzzer.
