//! Off-site copies of backups: a local folder or S3-compatible object storage (the `object_store`
//! crate), each backup as its file and a manifest beside it (`<file>.json`: size, SHA-256, store kind,
//! schema and release). The manifest is written last, so a backup without one is an upload that did not
//! finish: listings skip it and retention removes it once it is a day old. A download is checked against
//! its manifest before anything uses it.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use futures::StreamExt as _;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt as _, PutPayload, WriteMultipart};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// Which store a backup is of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// The embedded store's snapshot: a redb database (`.redb`).
    Embedded,
    /// A Redis RDB snapshot (`.rdb`).
    Redis,
}

impl Kind {
    /// The file extension of this kind's backups.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Embedded => "redb",
            Self::Redis => "rdb",
        }
    }

    fn of_file(name: &str) -> Option<Self> {
        if name.ends_with(".redb") {
            Some(Self::Embedded)
        } else if name.ends_with(".rdb") {
            Some(Self::Redis)
        } else {
            None
        }
    }
}

/// What a backup holds and how to check it, stored beside it as `<file>.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The backup's object name inside the destination (`usher-embedded-20261204T163000Z.redb`).
    pub file: String,
    /// Which store it is of.
    pub store: Kind,
    /// Its size in bytes.
    pub bytes: u64,
    /// Its SHA-256, hex.
    pub sha256: String,
    /// The store's schema version when it was taken.
    pub schema: u32,
    /// The Usher release that took it.
    pub release: String,
    /// When it was taken.
    #[serde(with = "time::serde::rfc3339")]
    pub taken_at: OffsetDateTime,
}

impl Manifest {
    /// The object name of a backup of `kind` taken at `at`: names sort by time.
    pub fn file_name(kind: Kind, at: OffsetDateTime) -> String {
        let f = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
        let stamp = at
            .to_offset(time::UtcOffset::UTC)
            .format(&f)
            .unwrap_or_else(|_| at.unix_timestamp().to_string());
        format!("usher-{}-{stamp}.{}", kind_name(kind), kind.extension())
    }
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Embedded => "embedded",
        Kind::Redis => "redis",
    }
}

/// Size and SHA-256 (hex) of a local file.
///
/// # Errors
/// When the file cannot be read.
pub async fn digest(path: &Path) -> anyhow::Result<(u64, String)> {
    let mut f = tokio::fs::File::open(path)
        .await
        .with_context(|| format!("opening {}", path.display()))?;
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    loop {
        let n = f.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
        bytes += n as u64;
    }
    Ok((bytes, hex::encode(hash.finalize())))
}

/// A place backups go: a local folder or a bucket and prefix.
#[derive(Debug, Clone)]
pub struct Destination {
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
    url: String,
}

/// What a backup URL names: a destination folder, and maybe one backup in it.
struct Parsed {
    scheme: String,
    /// `file`: the absolute folder; `s3`: the bucket.
    root: String,
    /// Path segments below the root.
    segments: Vec<String>,
}

fn parse(url: &str) -> Result<Parsed, String> {
    let u = url::Url::parse(url).map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    let segments: Vec<String> = u
        .path_segments()
        .map(|s| s.filter(|p| !p.is_empty()).map(str::to_owned).collect())
        .unwrap_or_default();
    match u.scheme() {
        "file" => {
            if u.host_str().is_some_and(|h| !h.is_empty()) {
                return Err("a file URL names a local folder: file:///absolute/folder".into());
            }
            Ok(Parsed {
                scheme: "file".into(),
                root: "/".into(),
                segments,
            })
        }
        "s3" => {
            let bucket = u.host_str().unwrap_or_default();
            if bucket.is_empty() {
                return Err("an s3 URL names a bucket: s3://bucket/prefix".into());
            }
            Ok(Parsed {
                scheme: "s3".into(),
                root: bucket.to_owned(),
                segments,
            })
        }
        other => Err(format!(
            "scheme {other:?} is not supported: use file:///absolute/folder or s3://bucket/prefix"
        )),
    }
}

impl Destination {
    /// Checks a destination URL's form without touching it.
    ///
    /// # Errors
    /// Why the URL cannot name a destination.
    pub fn check_url(url: &str) -> Result<(), String> {
        parse(url).map(|_| ())
    }

    /// Opens the destination folder `url` (for S3, credentials, region and endpoint come from the
    /// `AWS_*` environment variables: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`,
    /// `AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP`).
    ///
    /// # Errors
    /// A URL of another form, a folder that cannot be made, or S3 settings the client refuses.
    pub fn open(url: &str) -> anyhow::Result<Self> {
        let p = parse(url).map_err(anyhow::Error::msg)?;
        Self::at(&p, &p.segments, url)
    }

    /// Opens what `url` names: a destination and one backup's file name in it when the URL ends in
    /// `.redb` or `.rdb`.
    ///
    /// # Errors
    /// As [`Destination::open`].
    pub fn open_file(url: &str) -> anyhow::Result<(Self, Option<String>)> {
        let p = parse(url).map_err(anyhow::Error::msg)?;
        match p.segments.last() {
            Some(last) if Kind::of_file(last).is_some() => {
                let folder = &p.segments[..p.segments.len() - 1];
                Ok((Self::at(&p, folder, url)?, Some(last.clone())))
            }
            _ => Ok((Self::at(&p, &p.segments, url)?, None)),
        }
    }

    fn at(p: &Parsed, folder: &[String], url: &str) -> anyhow::Result<Self> {
        let (store, prefix): (Arc<dyn ObjectStore>, ObjectPath) = match p.scheme.as_str() {
            "file" => {
                let dir = Path::new(&p.root).join(folder.join("/"));
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("making the backup folder {}", dir.display()))?;
                let fs = LocalFileSystem::new_with_prefix(&dir)
                    .with_context(|| format!("opening {}", dir.display()))?;
                (Arc::new(fs), ObjectPath::default())
            }
            _ => {
                let s3 = AmazonS3Builder::from_env()
                    .with_bucket_name(&p.root)
                    .build()
                    .with_context(|| format!("S3 settings for bucket {}", p.root))?;
                (Arc::new(s3), ObjectPath::from_iter(folder.iter().cloned()))
            }
        };
        Ok(Self {
            store,
            prefix,
            url: url.to_owned(),
        })
    }

    fn path(&self, name: &str) -> ObjectPath {
        self.prefix.clone().join(name)
    }

    /// Uploads `local` as `manifest.file`, then the manifest (the backup counts only once it is there).
    ///
    /// # Errors
    /// Any failure of the object store; a half-written backup is left without its manifest.
    pub async fn upload(&self, local: &Path, manifest: &Manifest) -> anyhow::Result<()> {
        let target = self.path(&manifest.file);
        let upload =
            self.store.put_multipart(&target).await.with_context(|| {
                format!("starting the upload of {} to {}", manifest.file, self.url)
            })?;
        let mut writer = WriteMultipart::new(upload);
        let mut f = tokio::fs::File::open(local).await?;
        let mut buf = vec![0u8; 8 << 20];
        loop {
            let n = f.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            writer.wait_for_capacity(4).await?;
            writer.write(&buf[..n]);
        }
        writer
            .finish()
            .await
            .with_context(|| format!("uploading {} to {}", manifest.file, self.url))?;
        let json = serde_json::to_vec_pretty(manifest)?;
        self.store
            .put(
                &self.path(&format!("{}.json", manifest.file)),
                PutPayload::from(json),
            )
            .await
            .with_context(|| format!("writing the manifest of {}", manifest.file))?;
        Ok(())
    }

    /// Every complete backup (one with a readable manifest), newest first, and the objects of
    /// incomplete ones with their age in seconds.
    async fn inventory(&self) -> anyhow::Result<(Vec<Manifest>, Vec<(String, i64)>)> {
        let mut names = Vec::new();
        let mut listing = self.store.list(Some(&self.prefix));
        let now = OffsetDateTime::now_utc();
        while let Some(meta) = listing.next().await {
            let meta = meta.with_context(|| format!("listing {}", self.url))?;
            if let Some(name) = meta.location.filename() {
                let age = now.unix_timestamp() - meta.last_modified.timestamp();
                names.push((name.to_owned(), age));
            }
        }
        let mut complete = Vec::new();
        let mut incomplete = Vec::new();
        for (name, age) in &names {
            if Kind::of_file(name).is_none() {
                continue;
            }
            let manifest_name = format!("{name}.json");
            if !names.iter().any(|(n, _)| *n == manifest_name) {
                incomplete.push((name.clone(), *age));
                continue;
            }
            match self.manifest(name).await {
                Ok(m) => complete.push(m),
                Err(e) => {
                    tracing::warn!(backup = %name, error = %format!("{e:#}"), "a backup's manifest cannot be read; it is left alone")
                }
            }
        }
        complete.sort_by(|a, b| b.taken_at.cmp(&a.taken_at).then(b.file.cmp(&a.file)));
        Ok((complete, incomplete))
    }

    /// Every complete backup, newest first.
    ///
    /// # Errors
    /// When the destination cannot be listed.
    pub async fn list(&self) -> anyhow::Result<Vec<Manifest>> {
        Ok(self.inventory().await?.0)
    }

    async fn manifest(&self, file: &str) -> anyhow::Result<Manifest> {
        let bytes = self
            .store
            .get(&self.path(&format!("{file}.json")))
            .await
            .with_context(|| format!("reading the manifest of {file}"))?
            .bytes()
            .await?;
        let m: Manifest = serde_json::from_slice(&bytes)
            .with_context(|| format!("the manifest of {file} is not one"))?;
        if m.file != file {
            bail!("the manifest of {file} describes {}", m.file);
        }
        Ok(m)
    }

    /// Removes backups past the newest `keep` and older than `keep_days` (0: no age limit), never the
    /// newest, and incomplete uploads older than a day. Returns the files removed.
    ///
    /// # Errors
    /// When the destination cannot be listed or an object not removed.
    pub async fn prune(&self, keep: u32, keep_days: u32) -> anyhow::Result<Vec<String>> {
        let (complete, incomplete) = self.inventory().await?;
        let now = OffsetDateTime::now_utc();
        let mut removed = Vec::new();
        for (i, m) in complete.iter().enumerate() {
            let too_many = i >= keep as usize;
            let too_old =
                keep_days > 0 && now - m.taken_at > time::Duration::days(i64::from(keep_days));
            if i > 0 && (too_many || too_old) {
                // the manifest first: an interrupted removal leaves an incomplete upload, removed later
                self.store
                    .delete(&self.path(&format!("{}.json", m.file)))
                    .await?;
                self.store.delete(&self.path(&m.file)).await?;
                removed.push(m.file.clone());
            }
        }
        for (name, age_s) in incomplete {
            if age_s > 24 * 3600 {
                self.store.delete(&self.path(&name)).await?;
                removed.push(name);
            }
        }
        Ok(removed)
    }

    /// Downloads backup `file` (the newest complete one when `None`) to `to`, checking its size and
    /// SHA-256 against its manifest; a backup that does not match is removed from `to` and refused.
    ///
    /// # Errors
    /// No such backup, a transfer failure, or a damaged backup.
    pub async fn download(&self, file: Option<&str>, to: &Path) -> anyhow::Result<Manifest> {
        let manifest = match file {
            Some(f) => self.manifest(f).await?,
            None => self
                .list()
                .await?
                .into_iter()
                .next()
                .with_context(|| format!("{} holds no complete backup", self.url))?,
        };
        let result = self.fetch_checked(&manifest, to).await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(to).await;
        }
        result.map(|()| manifest)
    }

    async fn fetch_checked(&self, manifest: &Manifest, to: &Path) -> anyhow::Result<()> {
        let got = self
            .store
            .get(&self.path(&manifest.file))
            .await
            .with_context(|| format!("reading {} from {}", manifest.file, self.url))?;
        let mut stream = got.into_stream();
        let mut out = tokio::fs::File::create(to)
            .await
            .with_context(|| format!("creating {}", to.display()))?;
        let mut hash = Sha256::new();
        let mut bytes = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.with_context(|| format!("reading {}", manifest.file))?;
            hash.update(&chunk);
            bytes += chunk.len() as u64;
            out.write_all(&chunk).await?;
        }
        out.sync_all().await?;
        let sha256 = hex::encode(hash.finalize());
        if bytes != manifest.bytes || sha256 != manifest.sha256 {
            bail!(
                "{} is damaged: its manifest says {} bytes with SHA-256 {}, the copy has {bytes} bytes with SHA-256 {sha256}",
                manifest.file,
                manifest.bytes,
                manifest.sha256
            );
        }
        Ok(())
    }
}
