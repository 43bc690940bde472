//! `usher package`: an MP4 or an unencrypted HLS ladder → an HLS AES-128 ladder for an `aes-128` show, its
//! content keys registered with a running Usher (`PUT /api/v1/content-keys/{id}`, an admin key in
//! `USHER_API_KEY`) before ffmpeg encrypts with them. The work is [`crate::packager`]'s.

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::Args;
use serde_json::{Value, json};
use usher_core::content_key::ContentKey;
use usher_core::ids::ContentKeyId;

use crate::packager::{KeyRegistry, VodJob, default_ladder, package_vod};

/// Arguments of `usher package`.
#[derive(Debug, Args)]
pub struct PackageArgs {
    /// The running Usher to register keys with (`http://127.0.0.1:8080`).
    #[arg(long)]
    pub server: String,
    /// An admin API key.
    #[arg(long, env = "USHER_API_KEY", hide_env_values = true)]
    pub api_key: String,
    /// The show to package for: its `stream_path` names the folder, and its `encryption` must be `aes-128`.
    #[arg(long)]
    pub show: String,
    /// An MP4 (or any file ffmpeg reads: encoded into a 360p + 180p ladder of 2-second segments), or an
    /// unencrypted HLS master or media playlist of MPEG-TS segments (re-muxed, not re-encoded).
    #[arg(long)]
    pub input: PathBuf,
    /// The media folder the show's `stream_path` lies in (the server's `media_dir`, or a CDN's copy).
    #[arg(long)]
    pub media_dir: PathBuf,
    /// Segments per content key: a new key every N segments (30: every minute of 2-second segments).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub segments_per_key: u32,
    /// The URL the key URIs name (`{url}/keys/{id}`): Usher's `public_url` as viewers reach it. Usher's
    /// origin rewrites key URIs to its own URL; a CDN serving its own copy of the folder serves them as
    /// written. Default: `--server`.
    #[arg(long)]
    pub key_url: Option<String>,
    /// Replace the stream folder if it exists.
    #[arg(long)]
    pub replace: bool,
}

/// Registers keys through Usher's admin API.
struct ApiRegistry {
    client: reqwest::Client,
    server: String,
    api_key: String,
}

impl KeyRegistry for ApiRegistry {
    async fn register(
        &self,
        id: &ContentKeyId,
        stream_path: &str,
        key: &ContentKey,
    ) -> anyhow::Result<()> {
        let res = self
            .client
            .put(format!("{}/api/v1/content-keys/{id}", self.server))
            .bearer_auth(&self.api_key)
            .json(&json!({"stream_path": stream_path, "key": hex::encode(key.expose())}))
            .send()
            .await
            .with_context(|| format!("reaching {}", self.server))?;
        let status = res.status();
        if !status.is_success() {
            let body: Value = res.json().await.unwrap_or_default();
            bail!(
                "Usher refused the key ({status}): {} {}",
                body["code"].as_str().unwrap_or(""),
                body["detail"]
                    .as_str()
                    .or(body["title"].as_str())
                    .unwrap_or("")
            );
        }
        Ok(())
    }
}

/// Runs `usher package`.
///
/// # Errors
/// An unreachable server, a show that is missing or not `aes-128`, and whatever packaging fails with.
pub async fn run(args: PackageArgs) -> anyhow::Result<()> {
    let server = args.server.trim_end_matches('/').to_owned();
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()?;
    let res = client
        .get(format!("{server}/api/v1/shows/{}", args.show))
        .bearer_auth(&args.api_key)
        .send()
        .await
        .with_context(|| format!("reaching {server}"))?;
    if !res.status().is_success() {
        bail!("reading show `{}`: {}", args.show, res.status());
    }
    let show: Value = res.json().await?;
    if show["encryption"] != "aes-128" {
        bail!(
            "show `{}` is not encrypted: set its \"encryption\" to \"aes-128\" first (PUT /api/v1/shows/{})",
            args.show,
            args.show
        );
    }
    let stream_path = show["stream_path"]
        .as_str()
        .context("the show has no stream_path")?
        .to_owned();
    let job = VodJob {
        input: args.input,
        media_dir: args.media_dir,
        stream_path,
        key_base: args
            .key_url
            .map_or_else(|| server.clone(), |u| u.trim_end_matches('/').to_owned()),
        segments_per_key: args.segments_per_key as usize,
        ladder: default_ladder(),
        replace: args.replace,
    };
    let registry = ApiRegistry {
        client,
        server,
        api_key: args.api_key,
    };
    let done = package_vod(&job, &registry).await?;
    eprintln!(
        "usher package: {} — {} rendition(s), {} segments, {} content keys (a new key every {} segments)",
        done.dir.display(),
        done.renditions,
        done.segments,
        done.keys,
        job.segments_per_key
    );
    Ok(())
}
