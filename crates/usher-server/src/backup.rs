//! Backups of the embedded store: `POST /api/v1/backup` streams a consistent snapshot of a running server;
//! `usher backup` saves one (from a running server with `--server`, or from a stopped one's data
//! directory); `usher restore` checks a backup and puts it in place while Usher is stopped.
//! Scheduled off-site backups of either store (`[backup]`) are taken by [`scheduled`] and kept by
//! [`offsite`]; `usher restore --from s3://…` or `file:///…` fetches one and checks it first.

pub mod offsite;
pub mod rdb;
pub mod scheduled;

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use clap::Args;
use usher_core::clock::SystemClock;
use usher_core::store::{Store as _, StoreError};

use crate::http::auth::{Authorized, Manage};
use crate::service::{Error, Result};
use crate::settings::{Config, StoreSettings};
use crate::state::AppState;

/// `POST /api/v1/backup`: a consistent snapshot of the embedded store as a redb file (the leases made
/// durable first). 409 `backup_unsupported` on Redis.
#[utoipa::path(
    post,
    path = "/api/v1/backup",
    tag = "ops",
    responses(
        (status = 200, description = "A consistent snapshot of the embedded store (a redb database file; `usher restore` puts it in place). Headers: `Content-Disposition` with a file name, `X-Usher-Backup-Records`.", body = String, content_type = "application/octet-stream"),
        (status = 409, description = "`backup_unsupported`: the server keeps its data in Redis."),
    ),
    security(("bearer" = ["admin"])),
)]
pub async fn backup_store(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<Manage>,
) -> Result<Response> {
    let now = state.store.now();
    let path = state
        .config
        .data_dir
        .join(format!(".backup-{}-{}.redb", now.0, std::process::id()));
    let info = match state.store.backup(&path).await {
        Ok(info) => info,
        Err(StoreError::Unsupported { .. }) => return Err(Error::BackupUnsupported),
        Err(e) => return Err(e.into()),
    };
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(|e| Error::Internal(format!("opening the snapshot: {e}")));
    // the open handle keeps the data readable; the name goes at once
    let _ = tokio::fs::remove_file(&path).await;
    let file = file?;
    tracing::info!(
        actor = caller.actor().id(),
        records = info.records,
        bytes = info.bytes,
        "backup taken"
    );
    crate::service::audit::record(
        &state,
        &caller,
        "store.backup",
        "store",
        &format!("records={} bytes={}", info.records, info.bytes),
    )
    .await;
    let stamp = now.to_rfc3339().replace(':', "");
    let mut res = Body::from_stream(tokio_util::io::ReaderStream::new(file)).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(info.bytes));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"usher-backup-{stamp}.redb\""
    )) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert("x-usher-backup-records", HeaderValue::from(info.records));
    Ok(res)
}

/// Arguments of `usher backup`.
#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The file to write (must not exist).
    #[arg(long)]
    pub out: PathBuf,
    /// Take it from this running server (`POST /api/v1/backup`, admin key in `USHER_API_KEY`);
    /// without it the stopped store of `--config`/`--data-dir` is read.
    #[arg(long)]
    pub server: Option<String>,
    /// An admin API key (with `--server`).
    #[arg(long, env = "USHER_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// TOML configuration file (without `--server`).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Data directory (without `--server`; overrides `data_dir`).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

/// Arguments of `usher restore`.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The backup: a local file, or a backup in a `[backup]` destination (`s3://bucket/prefix/usher-….redb`,
    /// `file:///folder/usher-….rdb`), or a destination alone for its newest backup (`s3://bucket/prefix`).
    /// S3 credentials, region and endpoint come from the `AWS_*` environment variables.
    #[arg(long)]
    pub from: String,
    /// The data directory to restore into (a Redis backup is written there as `dump.rdb`, for the Redis
    /// server's `dir`).
    #[arg(long)]
    pub data_dir: PathBuf,
    /// Replace a store already there (never one a running Usher holds).
    #[arg(long)]
    pub force: bool,
}

/// Runs `usher backup`; `config` reads the configuration when no `--server` is given.
///
/// # Errors
/// The server's refusal, an existing output file, a store in use, or file errors.
pub async fn run_backup(
    args: BackupArgs,
    config: impl FnOnce(Option<PathBuf>, Option<PathBuf>) -> anyhow::Result<Config>,
) -> anyhow::Result<()> {
    if args.out.exists() {
        bail!(
            "{} exists: a backup never overwrites a file",
            args.out.display()
        );
    }
    match &args.server {
        Some(server) => {
            let key = args
                .api_key
                .as_deref()
                .context("--server needs an admin API key in USHER_API_KEY (or --api-key)")?;
            let url = format!("{}/api/v1/backup", server.trim_end_matches('/'));
            let res = reqwest::Client::new()
                .post(&url)
                .bearer_auth(key)
                .send()
                .await
                .with_context(|| format!("asking {server} for a backup"))?;
            let status = res.status();
            if !status.is_success() {
                let body: serde_json::Value = res.json().await.unwrap_or_default();
                bail!(
                    "{url} answered {status}: {}",
                    body["title"].as_str().unwrap_or("no detail")
                );
            }
            let bytes = res.bytes().await.context("receiving the backup")?;
            let partial = args.out.with_extension("partial");
            tokio::fs::write(&partial, &bytes)
                .await
                .with_context(|| format!("writing {}", partial.display()))?;
            tokio::fs::File::open(&partial).await?.sync_all().await?;
            tokio::fs::rename(&partial, &args.out).await?;
            eprintln!(
                "backup of {server}: {} bytes in {}",
                bytes.len(),
                args.out.display()
            );
        }
        None => {
            let config = config(args.config.clone(), args.data_dir.clone())?;
            if !matches!(config.store, StoreSettings::Embedded) {
                bail!("this configuration uses Redis: back Redis up instead (docs/redis.md)");
            }
            let dir = config.data_dir.clone();
            let store = tokio::task::spawn_blocking(move || {
                usher_store::EmbeddedStore::open(&dir, std::sync::Arc::new(SystemClock))
            })
            .await?
            .with_context(|| {
                format!(
                    "opening the store in {} (while Usher runs, use --server)",
                    config.data_dir.display()
                )
            })?;
            let info = store.backup(&args.out).await?;
            eprintln!(
                "backup of {}: {} records, {} bytes in {}",
                config.data_dir.display(),
                info.records,
                info.bytes,
                args.out.display()
            );
        }
    }
    Ok(())
}

/// Runs `usher restore`.
///
/// # Errors
/// A backup that does not match its manifest or does not read back, a store in use, or a store already
/// there without `--force`; nothing is replaced then.
pub async fn run_restore(args: &RestoreArgs) -> anyhow::Result<()> {
    if !args.from.contains("://") {
        let from = PathBuf::from(&args.from);
        let target = if from.extension().is_some_and(|e| e == "rdb") {
            restore_rdb(&from, &args.data_dir, args.force).await?
        } else {
            usher_store::backup::restore(&from, &args.data_dir, args.force)?
        };
        eprintln!("restored {} into {}", args.from, target.display());
        return Ok(());
    }
    let (dest, file) = offsite::Destination::open_file(&args.from)?;
    tokio::fs::create_dir_all(&args.data_dir)
        .await
        .with_context(|| format!("making {}", args.data_dir.display()))?;
    // downloaded next to the target (one filesystem: the final rename cannot half-happen)
    let download = args
        .data_dir
        .join(format!(".restore-download-{}", std::process::id()));
    let manifest = dest.download(file.as_deref(), &download).await?;
    let result = match manifest.store {
        offsite::Kind::Embedded => {
            usher_store::backup::restore(&download, &args.data_dir, args.force).map_err(Into::into)
        }
        offsite::Kind::Redis => restore_rdb(&download, &args.data_dir, args.force).await,
    };
    let _ = tokio::fs::remove_file(&download).await;
    let target = result?;
    eprintln!(
        "restored {} (taken {}, {} bytes, SHA-256 checked) into {}",
        manifest.file,
        manifest.taken_at,
        manifest.bytes,
        target.display()
    );
    Ok(())
}

/// Checks the RDB snapshot `from` and copies it to `data_dir/dump.rdb`.
async fn restore_rdb(from: &Path, data_dir: &Path, force: bool) -> anyhow::Result<PathBuf> {
    rdb::check(from).await?;
    tokio::fs::create_dir_all(data_dir)
        .await
        .with_context(|| format!("making {}", data_dir.display()))?;
    let target = data_dir.join("dump.rdb");
    if target.exists() && !force {
        bail!(
            "{} exists: stop that Redis and pass --force to replace it",
            target.display()
        );
    }
    let staged = data_dir.join(format!(".dump.rdb.{}", std::process::id()));
    tokio::fs::copy(from, &staged)
        .await
        .with_context(|| format!("copying into {}", data_dir.display()))?;
    tokio::fs::File::open(&staged).await?.sync_all().await?;
    tokio::fs::rename(&staged, &target).await?;
    Ok(target)
}
