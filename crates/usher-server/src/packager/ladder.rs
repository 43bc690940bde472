//! An uploaded video in, an unencrypted ABR ladder out: `ffprobe` says what the file is (and refuses what
//! is not a usable video), then one `ffmpeg` run decodes it once and encodes every rung from the source's
//! height down (1080p, 720p, 480p, 360p; H.264 + AAC; 2-second MPEG-TS segments cut at the same instants
//! in every rung, keyframes forced there), reporting its progress from `-progress`.

use std::path::Path;
use std::process::Stdio;

use anyhow::{Context as _, bail};
use serde::Deserialize;
use tokio::io::AsyncBufReadExt as _;

use super::{Rung, SEGMENT_S};

/// Largest width or height accepted (8K is 7680×4320).
pub const MAX_SIDE: u32 = 8192;
/// Largest picture accepted, in pixels (8K).
pub const MAX_PIXELS: u64 = 7680 * 4320;
/// Longest video accepted, in seconds (a day).
pub const MAX_DURATION_S: f64 = 86_400.0;

/// What `ffprobe` found in a file fit to be packaged.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    /// The first video stream's size.
    pub width: u32,
    /// Its height.
    pub height: u32,
    /// The container's duration, in seconds.
    pub duration_s: f64,
    /// Whether there is an audio stream.
    pub audio: bool,
    /// The container's format names (`mov,mp4,m4a,3gp,3g2,mj2`, `matroska,webm`).
    pub format: String,
}

#[derive(Deserialize)]
struct ProbeJson {
    #[serde(default)]
    streams: Vec<ProbeStream>,
    format: Option<ProbeFormat>,
}

#[derive(Deserialize)]
struct ProbeStream {
    codec_type: Option<String>,
    width: Option<u32>,
    height: Option<u32>,
    disposition: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct ProbeFormat {
    format_name: Option<String>,
    duration: Option<String>,
}

/// Reads `ffprobe`'s answer; an error says in plain words why the file cannot be packaged.
fn read_probe(json: &[u8]) -> anyhow::Result<Probe> {
    let p: ProbeJson = serde_json::from_slice(json).context("ffprobe's answer is not JSON")?;
    let format = p.format.context("not a media file ffprobe can read")?;
    let video = p
        .streams
        .iter()
        .find(|s| {
            s.codec_type.as_deref() == Some("video")
                && !s
                    .disposition
                    .as_ref()
                    .is_some_and(|d| d["attached_pic"] == 1)
        })
        .context("the file has no video stream")?;
    let (width, height) = match (video.width, video.height) {
        (Some(w), Some(h)) if w > 0 && h > 0 => (w, h),
        _ => bail!("the video stream has no picture size"),
    };
    if width > MAX_SIDE || height > MAX_SIDE || u64::from(width) * u64::from(height) > MAX_PIXELS {
        bail!(
            "the picture is too large: {width}×{height} (at most {MAX_SIDE} on a side and 7680×4320 in all)"
        );
    }
    let duration_s = format
        .duration
        .as_deref()
        .and_then(|d| d.parse::<f64>().ok())
        .filter(|d| d.is_finite() && *d > 0.0)
        .context("the file has no duration (a truncated or still-recording file?)")?;
    if duration_s > MAX_DURATION_S {
        bail!("the video is longer than a day ({duration_s:.0} s)");
    }
    Ok(Probe {
        width,
        height,
        duration_s,
        audio: p
            .streams
            .iter()
            .any(|s| s.codec_type.as_deref() == Some("audio")),
        format: format.format_name.unwrap_or_default(),
    })
}

/// Probes `input` with `ffprobe`.
///
/// # Errors
/// A file that is empty, not media, has no video, no duration, or a picture too large, with the reason in
/// words a person can act on (ffprobe's own last line when it refuses the file).
pub async fn probe(input: &Path) -> anyhow::Result<Probe> {
    let len = tokio::fs::metadata(input)
        .await
        .with_context(|| format!("reading {}", input.display()))?
        .len();
    if len == 0 {
        bail!("the file is empty");
    }
    let out = tokio::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-print_format",
            "json",
            "-show_format",
            "-show_streams",
        ])
        .arg(input)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .context("running ffprobe (is it installed? apt-get install -y ffmpeg)")?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let reason = probe_reasons(&err, &input.to_string_lossy());
        bail!("not a video file ffprobe can read ({reason}); a truncated or damaged upload?");
    }
    read_probe(&out.stdout)
}

/// ffprobe's complaints in a few words: each line without its `[demuxer @ 0x…]` or `file:` prefix (the
/// client knows which file it sent, and addresses mean nothing to it), at most three, joined.
fn probe_reasons(stderr: &str, path: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    for line in stderr.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let mut l = line;
        if l.starts_with('[')
            && let Some((_, rest)) = l.split_once("] ")
        {
            l = rest;
        }
        if let Some(rest) = l.strip_prefix(path).and_then(|r| r.strip_prefix(": ")) {
            l = rest;
        }
        let l: String = l.chars().take(120).collect();
        if !out.contains(&l) && out.len() < 3 {
            out.push(l);
        }
    }
    if out.is_empty() {
        "no reason given".into()
    } else {
        out.join("; ")
    }
}

/// The ladder for a source of `height` lines: every rung of 1080p, 720p, 480p and 360p at or below it
/// (never scaled up); a source below 360 lines gets one rung of its own (even) height.
pub fn ladder_for(height: u32) -> Vec<Rung> {
    let rungs = [(1080, 5000), (720, 2800), (480, 1200), (360, 700)];
    let mut out: Vec<Rung> = rungs
        .iter()
        .filter(|(h, _)| *h <= height)
        .map(|(h, kbps)| Rung {
            name: format!("{h}p"),
            size: (0, *h),
            video_kbps: *kbps,
        })
        .collect();
    if out.is_empty() {
        let h = (height / 2 * 2).max(2);
        out.push(Rung {
            name: format!("{h}p"),
            size: (0, h),
            video_kbps: 400,
        });
    }
    out
}

/// The width a rung of `height` lines gets for a `src_w`×`src_h` source (even, aspect kept).
pub fn width_for(height: u32, src_w: u32, src_h: u32) -> u32 {
    let w =
        (f64::from(height) * f64::from(src_w) / f64::from(src_h.max(1)) / 2.0).round() as u32 * 2;
    w.max(2)
}

/// Encodes `input` into `dir/{rung}/index.m3u8` + segments and `dir/master.m3u8` in one ffmpeg run,
/// calling `progress` with 0–100 as it goes.
///
/// # Errors
/// ffmpeg's failure (its last lines), or an output much shorter than the probed duration (a file
/// truncated in the middle that ffmpeg read up to the damage).
pub async fn encode(
    input: &Path,
    dir: &Path,
    probe: &Probe,
    preset: &str,
    mut progress: impl FnMut(u8) + Send,
) -> anyhow::Result<Vec<Rung>> {
    let ladder: Vec<Rung> = ladder_for(probe.height)
        .into_iter()
        .map(|mut r| {
            r.size.0 = width_for(r.size.1, probe.width, probe.height);
            r
        })
        .collect();
    let mut filter = format!("[0:v:0]split={}", ladder.len());
    for i in 0..ladder.len() {
        filter.push_str(&format!("[s{i}]"));
    }
    for (i, r) in ladder.iter().enumerate() {
        filter.push_str(&format!(
            ";[s{i}]scale={}:{},setsar=1,format=yuv420p[v{i}]",
            r.size.0, r.size.1
        ));
    }
    let mut args: Vec<String> = [
        "-hide_banner",
        "-nostdin",
        "-loglevel",
        "error",
        "-nostats",
        "-progress",
        "pipe:1",
        "-y",
        "-i",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    args.push(input.to_string_lossy().into_owned());
    args.extend(["-filter_complex".into(), filter]);
    for (i, r) in ladder.iter().enumerate() {
        let out = dir.join(&r.name);
        std::fs::create_dir_all(&out)?;
        args.extend(["-map".into(), format!("[v{i}]")]);
        if probe.audio {
            args.extend(["-map".into(), "0:a:0".into()]);
        }
        let k = r.video_kbps;
        args.extend(
            [
                "-c:v",
                "libx264",
                "-preset",
                preset,
                "-profile:v",
                "high",
                "-b:v",
                &format!("{k}k"),
                "-maxrate",
                &format!("{}k", k * 5 / 4),
                "-bufsize",
                &format!("{}k", k * 2),
                "-sc_threshold",
                "0",
                "-force_key_frames",
                &format!("expr:gte(t,n_forced*{SEGMENT_S})"),
                "-c:a",
                "aac",
                "-b:a",
                "128k",
                "-ac",
                "2",
                "-ar",
                "48000",
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
            .map(|s| (*s).to_owned()),
        );
    }
    let mut child = tokio::process::Command::new("ffmpeg")
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("running ffmpeg (is it installed? apt-get install -y ffmpeg)")?;
    let stdout = child.stdout.take().context("ffmpeg's output")?;
    let mut stderr = child.stderr.take().context("ffmpeg's errors")?;
    let errors = tokio::spawn(async move {
        let mut text = String::new();
        let _ = tokio::io::AsyncReadExt::read_to_string(&mut stderr, &mut text).await;
        text
    });
    let total_us = probe.duration_s * 1_000_000.0;
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let mut last = 0u8;
    while let Some(line) = lines.next_line().await? {
        if let Some(v) = line.strip_prefix("out_time_us=")
            && let Ok(us) = v.trim().parse::<f64>()
        {
            let pct = (us / total_us * 100.0).clamp(0.0, 99.0) as u8;
            if pct > last {
                last = pct;
                progress(pct);
            }
        }
    }
    let status = child.wait().await?;
    let err = errors.await.unwrap_or_default();
    if !status.success() {
        let tail: Vec<&str> = err.lines().rev().take(4).collect();
        bail!(
            "ffmpeg could not encode the video ({status}): {}",
            tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
        );
    }
    // a file cut in the middle can still be read up to the cut: compare what came out with the probe
    let top = std::fs::read_to_string(dir.join(&ladder[0].name).join("index.m3u8"))?;
    let encoded: f64 = top
        .lines()
        .filter_map(|l| l.strip_prefix("#EXTINF:"))
        .filter_map(|l| l.split(',').next()?.trim().parse::<f64>().ok())
        .sum();
    if encoded < probe.duration_s * 0.9 - 1.0 {
        bail!(
            "the video ends after {encoded:.1} s of the {:.1} s its header announces: the file is truncated or damaged",
            probe.duration_s
        );
    }
    let mut master = String::from("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    for r in &ladder {
        let bandwidth = (r.video_kbps * 5 / 4 + if probe.audio { 140 } else { 0 }) * 1000;
        let codecs = if probe.audio {
            "avc1.640028,mp4a.40.2"
        } else {
            "avc1.640028"
        };
        master.push_str(&format!(
            "#EXT-X-STREAM-INF:BANDWIDTH={bandwidth},RESOLUTION={}x{},CODECS=\"{codecs}\"\n{}/index.m3u8\n",
            r.size.0, r.size.1, r.name
        ));
    }
    std::fs::write(dir.join("master.m3u8"), master)?;
    progress(100);
    Ok(ladder)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ladder_runs_from_the_source_down() {
        let names = |h| {
            ladder_for(h)
                .into_iter()
                .map(|r| r.name)
                .collect::<Vec<_>>()
        };
        assert_eq!(names(1080), ["1080p", "720p", "480p", "360p"]);
        assert_eq!(names(2160), ["1080p", "720p", "480p", "360p"]);
        assert_eq!(names(720), ["720p", "480p", "360p"]);
        assert_eq!(names(479), ["360p"]);
        assert_eq!(names(241), ["240p"]);
        assert_eq!(width_for(720, 1920, 1080), 1280);
        assert_eq!(width_for(360, 1920, 1080), 640);
        assert_eq!(width_for(360, 1080, 1920), 202);
    }

    #[test]
    fn ffprobe_complaints_are_read_without_prefixes() {
        let err = "[mov,mp4,m4a,3gp,3g2,mj2 @ 0x55f1e8601180] moov atom not found\n/up/data: Invalid data found when processing input\n";
        assert_eq!(
            probe_reasons(err, "/up/data"),
            "moov atom not found; Invalid data found when processing input"
        );
        assert_eq!(probe_reasons("", "/up/data"), "no reason given");
    }

    #[test]
    fn probes_say_why_a_file_cannot_be_packaged() {
        let ok = br#"{"streams":[{"codec_type":"video","width":1920,"height":1080},{"codec_type":"audio"}],
            "format":{"format_name":"mov,mp4","duration":"120.0"}}"#;
        let p = read_probe(ok).unwrap();
        assert_eq!((p.width, p.height, p.audio), (1920, 1080, true));
        let audio_only = br#"{"streams":[{"codec_type":"audio"}],"format":{"duration":"3"}}"#;
        assert!(
            read_probe(audio_only)
                .unwrap_err()
                .to_string()
                .contains("no video stream")
        );
        let huge = br#"{"streams":[{"codec_type":"video","width":16384,"height":16384}],"format":{"duration":"3"}}"#;
        assert!(
            read_probe(huge)
                .unwrap_err()
                .to_string()
                .contains("too large")
        );
        let no_duration =
            br#"{"streams":[{"codec_type":"video","width":64,"height":64}],"format":{}}"#;
        assert!(
            read_probe(no_duration)
                .unwrap_err()
                .to_string()
                .contains("no duration")
        );
        let cover_only = br#"{"streams":[{"codec_type":"video","width":600,"height":600,"disposition":{"attached_pic":1}}],"format":{"duration":"3"}}"#;
        assert!(read_probe(cover_only).is_err());
    }
}
