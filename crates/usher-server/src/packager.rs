//! The packager behind `usher package` (and the demo's encrypted variant): an MP4 or an unencrypted HLS
//! ladder in, an HLS AES-128 ladder for one stream folder out, with a fresh content key every N segments.
//!
//! ffmpeg does the media work. An MP4 is first encoded into an unencrypted ladder of 2-second MPEG-TS
//! segments (keyframes on segment boundaries); then each rendition is cut into runs of N segments, and
//! each run is re-muxed (`-c copy -copyts`, so timestamps run on across runs) by ffmpeg's HLS muxer with
//! its own key-info file (`-hls_key_info_file`: the key URI Usher answers, the key file, no IV line, so the
//! IV is the run's first media sequence number as the playlist says). The runs' playlists are joined into
//! one media playlist per rendition, each run under its own `#EXT-X-KEY`.
//!
//! Each key is registered with Usher (wrapped in its store) *before* ffmpeg encrypts anything with it; its
//! clear copy lives only in a private temporary folder (mode 0700) for as long as ffmpeg needs it, never
//! under the media folder. The output is built beside the stream folder and moved in place at the end.

pub mod ladder;

use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context as _, bail, ensure};
use usher_core::content_key::ContentKey;
use usher_core::ids::ContentKeyId;

/// Where keys are registered before they encrypt anything: Usher's API for `usher package`, the store
/// directly for the demo.
pub trait KeyRegistry {
    /// Registers `key` as `id` for the stream folder `stream_path`.
    fn register(
        &self,
        id: &ContentKeyId,
        stream_path: &str,
        key: &ContentKey,
    ) -> impl Future<Output = anyhow::Result<()>> + Send;
}

/// One rung of the ladder an MP4 is encoded into.
#[derive(Debug, Clone)]
pub struct Rung {
    /// Its folder name (`360p`).
    pub name: String,
    /// Width and height.
    pub size: (u32, u32),
    /// Video bit rate in kbit/s.
    pub video_kbps: u32,
}

/// The default ladder: 640×360 and 320×180.
pub fn default_ladder() -> Vec<Rung> {
    vec![
        Rung {
            name: "360p".into(),
            size: (640, 360),
            video_kbps: 500,
        },
        Rung {
            name: "180p".into(),
            size: (320, 180),
            video_kbps: 150,
        },
    ]
}

/// A packaging job.
#[derive(Debug, Clone)]
pub struct VodJob {
    /// An MP4 (or anything ffmpeg reads), or an unencrypted HLS master or media playlist (`.m3u8`).
    pub input: PathBuf,
    /// The media folder (`media_dir`).
    pub media_dir: PathBuf,
    /// The stream folder under it (the show's `stream_path`).
    pub stream_path: String,
    /// Usher's public URL, which the key URIs name (`{key_base}/keys/{id}`); Usher's origin rewrites
    /// them to its own URL anyway, a CDN serving its own copy of the folder does not.
    pub key_base: String,
    /// Segments per content key.
    pub segments_per_key: usize,
    /// The ladder for an MP4 input.
    pub ladder: Vec<Rung>,
    /// Replace an existing stream folder.
    pub replace: bool,
}

/// What a job made.
#[derive(Debug, Clone)]
pub struct Packaged {
    /// The stream folder written.
    pub dir: PathBuf,
    /// Renditions.
    pub renditions: usize,
    /// Segments, over all renditions.
    pub segments: usize,
    /// Content keys made (and registered).
    pub keys: usize,
}

/// Segment length of the ladder an MP4 is encoded into, in seconds.
const SEGMENT_S: u32 = 2;

/// Runs `ffmpeg` with `args`; fails with its last lines of output.
async fn ffmpeg(args: &[String]) -> anyhow::Result<()> {
    let out = tokio::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-y"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await
        .context("running ffmpeg (is it installed? apt-get install -y ffmpeg)")?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.lines().rev().take(8).collect();
        bail!(
            "ffmpeg failed ({}): {}",
            out.status,
            tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
        );
    }
    Ok(())
}

/// A folder only this user can read, removed when dropped (the clear key files live there).
fn private_dir() -> anyhow::Result<tempfile::TempDir> {
    let dir = tempfile::Builder::new()
        .prefix("usher-package-")
        .tempdir()
        .context("making a temporary folder")?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(dir)
}

/// A media playlist's segments: (duration line, URI), and whether it is fit to be encrypted here.
fn media_segments(text: &str) -> anyhow::Result<Vec<(String, String)>> {
    ensure!(text.starts_with("#EXTM3U"), "not an HLS playlist");
    ensure!(
        !text.contains("#EXT-X-KEY:") && !text.contains("#EXT-X-SESSION-KEY:"),
        "the input is encrypted already"
    );
    ensure!(
        !text.contains("#EXT-X-MAP:") && !text.contains("#EXT-X-BYTERANGE:"),
        "only MPEG-TS segments in whole files can be packaged (no fMP4, no byte ranges)"
    );
    let mut out = Vec::new();
    let mut inf = None;
    for line in text.lines().map(str::trim) {
        if line.starts_with("#EXTINF:") {
            inf = Some(line.to_owned());
        } else if !line.is_empty() && !line.starts_with('#') {
            let inf = inf
                .take()
                .with_context(|| format!("segment {line} has no #EXTINF"))?;
            ensure!(
                !line.contains("://") && !line.starts_with('/'),
                "segment URIs must be relative file names ({line})"
            );
            out.push((inf, line.to_owned()));
        }
    }
    ensure!(!out.is_empty(), "the playlist lists no segment");
    Ok(out)
}

/// The master playlist's variant URIs (relative), or `None` for a media playlist.
fn variants(text: &str) -> Option<Vec<String>> {
    if !text.contains("#EXT-X-STREAM-INF:") {
        return None;
    }
    let mut out = Vec::new();
    let mut next_is_variant = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with("#EXT-X-STREAM-INF:") {
            next_is_variant = true;
        } else if next_is_variant && !line.is_empty() && !line.starts_with('#') {
            out.push(line.to_owned());
            next_is_variant = false;
        }
    }
    Some(out)
}

/// Encodes `input` into an unencrypted ladder of 2-second segments under `dir` (`master.m3u8`,
/// `{rung}/index.m3u8`); returns the master's path.
async fn encode_ladder(input: &Path, dir: &Path, ladder: &[Rung]) -> anyhow::Result<PathBuf> {
    let mut master = String::from("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    for rung in ladder {
        let out = dir.join(&rung.name);
        std::fs::create_dir_all(&out)?;
        let (w, h) = rung.size;
        let args: Vec<String> = [
            "-i",
            &input.to_string_lossy(),
            "-map",
            "0:v:0",
            "-map",
            "0:a:0?",
            "-vf",
            &format!("scale={w}:{h}:force_original_aspect_ratio=decrease,pad=ceil(iw/2)*2:ceil(ih/2)*2,format=yuv420p"),
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-b:v",
            &format!("{}k", rung.video_kbps),
            "-maxrate",
            &format!("{}k", rung.video_kbps * 5 / 4),
            "-bufsize",
            &format!("{}k", rung.video_kbps * 2),
            "-sc_threshold",
            "0",
            "-force_key_frames",
            &format!("expr:gte(t,n_forced*{SEGMENT_S})"),
            "-c:a",
            "aac",
            "-b:a",
            "64k",
            "-ac",
            "2",
            "-f",
            "hls",
            "-hls_time",
            &SEGMENT_S.to_string(),
            "-hls_playlist_type",
            "vod",
            "-hls_list_size",
            "0",
            "-hls_segment_filename",
            &out.join("seg_%04d.ts").to_string_lossy(),
            &out.join("index.m3u8").to_string_lossy(),
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        ffmpeg(&args)
            .await
            .with_context(|| format!("encoding {}", rung.name))?;
        let bandwidth = (rung.video_kbps * 5 / 4 + 70) * 1000;
        master.push_str(&format!(
            "#EXT-X-STREAM-INF:BANDWIDTH={bandwidth},RESOLUTION={w}x{h}\n{}/index.m3u8\n",
            rung.name
        ));
    }
    let path = dir.join("master.m3u8");
    std::fs::write(&path, master)?;
    Ok(path)
}

/// Encrypts one unencrypted media playlist (`source`) into `out_dir/index.m3u8` and its segments, a key
/// every `per_key` segments; returns (segments, keys).
async fn encrypt_rendition<R: KeyRegistry>(
    job: &VodJob,
    registry: &R,
    source: &Path,
    out_dir: &Path,
    keys_dir: &Path,
) -> anyhow::Result<(usize, usize)> {
    let text =
        std::fs::read_to_string(source).with_context(|| format!("reading {}", source.display()))?;
    let segments = media_segments(&text).with_context(|| format!("{}", source.display()))?;
    let src_dir = source.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(out_dir)?;
    let mut body = String::new();
    let mut target = 1u64;
    let mut keys = 0;
    for (run, chunk) in segments.chunks(job.segments_per_key.max(1)).enumerate() {
        let first = run * job.segments_per_key.max(1);
        let id = ContentKeyId::generate();
        let key = ContentKey::generate();
        registry
            .register(&id, &job.stream_path, &key)
            .await
            .with_context(|| format!("registering content key {id}"))?;
        keys += 1;
        let key_file = keys_dir.join(format!("{id}.key"));
        std::fs::write(&key_file, key.expose())?;
        let info = keys_dir.join(format!("{id}.keyinfo"));
        std::fs::write(
            &info,
            format!("{}/keys/{id}\n{}\n", job.key_base, key_file.display()),
        )?;
        let concat = chunk
            .iter()
            .map(|(_, uri)| src_dir.join(uri).to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("|");
        let run_playlist = keys_dir.join(format!("run-{run}.m3u8"));
        let args: Vec<String> = [
            "-copyts",
            "-i",
            &format!("concat:{concat}"),
            "-map",
            "0",
            "-c",
            "copy",
            "-f",
            "hls",
            "-hls_time",
            "1",
            "-hls_list_size",
            "0",
            "-hls_playlist_type",
            "vod",
            "-start_number",
            &first.to_string(),
            "-hls_key_info_file",
            &info.to_string_lossy(),
            "-hls_segment_filename",
            &out_dir
                .join(format!("seg_{run:04}_%03d.ts"))
                .to_string_lossy(),
            &run_playlist.to_string_lossy(),
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        let done = ffmpeg(&args).await;
        // the clear key goes as soon as ffmpeg is done with it
        let _ = std::fs::remove_file(&key_file);
        done.with_context(|| format!("encrypting segments {first}… of {}", source.display()))?;
        let made = std::fs::read_to_string(&run_playlist)?;
        for line in made.lines() {
            if let Some(t) = line.strip_prefix("#EXT-X-TARGETDURATION:") {
                target = target.max(t.trim().parse().unwrap_or(1));
            } else if line.starts_with("#EXT-X-KEY:")
                || line.starts_with("#EXTINF:")
                || line.starts_with("#EXT-X-DISCONTINUITY")
                || (!line.is_empty() && !line.starts_with('#'))
            {
                body.push_str(line);
                body.push('\n');
            }
        }
    }
    let playlist = format!(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:{target}\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-INDEPENDENT-SEGMENTS\n{body}#EXT-X-ENDLIST\n"
    );
    std::fs::write(out_dir.join("index.m3u8"), playlist)?;
    Ok((segments.len(), keys))
}

/// Packages `job`, registering each key with `registry` before it is used.
///
/// # Errors
/// A bad input, an existing stream folder without `replace`, ffmpeg's failure, a refused registration.
pub async fn package_vod<R: KeyRegistry>(job: &VodJob, registry: &R) -> anyhow::Result<Packaged> {
    usher_core::show::check_stream_path(&job.stream_path)
        .map_err(|e| anyhow::anyhow!("stream folder: {e}"))?;
    let dest = job.media_dir.join(&job.stream_path);
    ensure!(
        job.replace || !dest.exists(),
        "{} exists (pass --replace to package it again)",
        dest.display()
    );
    let work = private_dir()?;
    let keys_dir = work.path().join("keys");
    std::fs::create_dir_all(&keys_dir)?;
    let is_playlist = job
        .input
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("m3u8"));
    let source = if is_playlist {
        job.input.clone()
    } else {
        let src = work.path().join("source");
        encode_ladder(&job.input, &src, &job.ladder).await?
    };
    let text = std::fs::read_to_string(&source)
        .with_context(|| format!("reading {}", source.display()))?;
    let parent = dest.parent().context("the stream folder has no parent")?;
    std::fs::create_dir_all(parent)?;
    let staging = tempfile::Builder::new()
        .prefix(".usher-package-")
        .tempdir_in(parent)
        .context("making the staging folder")?;
    let (mut segments, mut keys, renditions);
    match variants(&text) {
        Some(list) => {
            ensure!(!list.is_empty(), "the master playlist lists no variant");
            let src_dir = source.parent().unwrap_or(Path::new("."));
            (segments, keys) = (0, 0);
            for uri in &list {
                ensure!(
                    !uri.contains("://") && !uri.starts_with('/') && !uri.contains(".."),
                    "variant URIs must be relative ({uri})"
                );
                let out_dir = staging
                    .path()
                    .join(Path::new(uri).parent().unwrap_or(Path::new("")));
                let (s, k) =
                    encrypt_rendition(job, registry, &src_dir.join(uri), &out_dir, &keys_dir)
                        .await?;
                segments += s;
                keys += k;
                // the variant's playlist keeps the file name the master names
                let name = Path::new(uri)
                    .file_name()
                    .context("a variant URI without a name")?;
                if name != "index.m3u8" {
                    std::fs::rename(out_dir.join("index.m3u8"), out_dir.join(name))?;
                }
            }
            renditions = list.len();
            std::fs::write(staging.path().join("master.m3u8"), &text)?;
        }
        None => {
            (segments, keys) =
                encrypt_rendition(job, registry, &source, staging.path(), &keys_dir).await?;
            renditions = 1;
            std::fs::write(
                staging.path().join("master.m3u8"),
                "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-STREAM-INF:BANDWIDTH=1000000\nindex.m3u8\n",
            )?;
        }
    }
    let staged = staging.keep();
    if dest.exists() {
        let old = parent.join(format!(
            ".usher-replaced-{}",
            usher_core::ids::random_hex(4)
        ));
        std::fs::rename(&dest, &old)?;
        std::fs::rename(&staged, &dest)?;
        let _ = std::fs::remove_dir_all(&old);
    } else {
        std::fs::rename(&staged, &dest)?;
    }
    Ok(Packaged {
        dir: dest,
        renditions,
        segments,
        keys,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn playlists_are_read_for_what_can_be_packaged() {
        let media = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\nseg_000.ts\n#EXTINF:2.0,\nseg_001.ts\n#EXT-X-ENDLIST\n";
        let segs = media_segments(media).unwrap();
        assert_eq!(segs.len(), 2);
        assert_eq!(segs[1].1, "seg_001.ts");
        assert!(
            media_segments("#EXTM3U\n#EXT-X-KEY:METHOD=AES-128,URI=\"k\"\n#EXTINF:2,\na.ts\n")
                .is_err()
        );
        assert!(media_segments("#EXTM3U\n#EXT-X-MAP:URI=\"i.mp4\"\n#EXTINF:2,\na.m4s\n").is_err());
        assert!(media_segments("#EXTM3U\n#EXTINF:2,\n../a.ts\n").is_ok());
        assert!(media_segments("#EXTM3U\n#EXTINF:2,\nhttp://x/a.ts\n").is_err());
        assert_eq!(variants(media), None);
        let master = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n360p/index.m3u8\n#EXT-X-STREAM-INF:BANDWIDTH=2\n180p/index.m3u8\n";
        assert_eq!(
            variants(master).unwrap(),
            ["360p/index.m3u8", "180p/index.m3u8"]
        );
    }
}
