//! What tests that start the real `usher` binary share: its path, a configuration file, and API keys made
//! with its CLI.

use std::path::{Path, PathBuf};

use usher_testkit::repo_root;

/// The `usher` binary built for these tests.
pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_usher");

/// Writes `dir/usher.toml` for `usher serve` on `127.0.0.1:0`: data in `dir/data`, the repository's media,
/// fixed test secrets, JSON logs at `warn,usher=info`, then `extra` (whole TOML sections).
pub(crate) fn serve_config(dir: &Path, extra: &str) -> PathBuf {
    let path = dir.join("usher.toml");
    std::fs::write(
        &path,
        format!(
            r#"listen = "127.0.0.1:0"
data_dir = "{data}"
media_dir = "{media}"

[secrets]
token_key = "process-test-token-key-0123456789abcdef01"
grant_key = "process-test-grant-key-0123456789abcdef01"

[log]
format = "json"
level = "warn,usher=info"

{extra}
"#,
            data = dir.join("data").display(),
            media = repo_root().join("media").display(),
        ),
    )
    .unwrap();
    path
}

/// A new API key named and scoped `scope`, made by `usher api-key create` against `config`.
pub(crate) fn api_key(config: &Path, scope: &str) -> String {
    let out = std::process::Command::new(BIN)
        .args([
            "api-key", "create", "--name", scope, "--scope", scope, "--config",
        ])
        .arg(config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "api-key create: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}
