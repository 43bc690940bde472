//! The live transcoder: one ffmpeg per publishing connection, reading the input on its stdin and writing
//! the show's ladder as live HLS into its stream folder.
//!
//! The first run of a show starts the playlists afresh; a run after a drop-out (a reconnect, or ffmpeg
//! started again after a failure) appends to them (`-hls_flags append_list`): the media sequence goes
//! on, the new segments follow an `#EXT-X-DISCONTINUITY`, and players keep playing. Playlists never get
//! `#EXT-X-ENDLIST` from ffmpeg (`omit_endlist`); [`close_playlists`] adds it when the stream is over.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};

use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use usher_core::ids::ShowId;

use crate::ingest::hub::{Hub, InputInfo};
use crate::settings::IngestSettings;

/// Longest ffmpeg log line kept (longer ones are cut).
const MAX_LINE: usize = 2048;

/// What the input is, for ffmpeg's `-f`.
#[derive(Debug, Clone, Copy)]
pub(crate) enum InputFormat {
    /// FLV framed from RTMP messages.
    Flv,
    /// MPEG-TS as SRT carries it.
    MpegTs,
}

/// The stream folder of a show.
pub(crate) fn stream_dir(media_dir: &Path, stream_path: &str) -> PathBuf {
    media_dir.join(stream_path)
}

/// Whether `dir` holds live playlists the next run appends to: of an earlier run that did not end (this
/// node restarted while the show was on), so players see the media sequence go on, not start over; or,
/// for a show keeping its `recording`, any earlier run, so a new publish continues the recording rather
/// than overwriting it.
pub(crate) async fn resumable(dir: &Path, recording: bool) -> bool {
    tokio::fs::read_to_string(dir.join("0").join("index.m3u8"))
        .await
        .is_ok_and(|text| {
            text.starts_with("#EXTM3U") && (recording || !text.contains("#EXT-X-ENDLIST"))
        })
}

/// What one show asks of its live playlists.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Playlists<'a> {
    /// Seconds of media kept (the DVR window), unless `recording`.
    pub(crate) dvr_s: u32,
    /// Keep every segment: an `EVENT` playlist from the first segment on.
    pub(crate) recording: bool,
    /// The key-info file of an `aes-128` show (`ingest::keys`): segments are encrypted with the key it
    /// names, read again at every segment (`periodic_rekey`).
    pub(crate) key_info: Option<&'a Path>,
}

/// ffmpeg's arguments for one run.
pub(crate) fn arguments(
    cfg: &IngestSettings,
    input: InputFormat,
    dir: &Path,
    append: bool,
    playlists: Playlists<'_>,
) -> Vec<String> {
    let n = cfg.ladder.len();
    let seg = cfg.segment_s;
    let mut args: Vec<String> = [
        "-hide_banner",
        "-nostats",
        "-loglevel",
        "info",
        "-fflags",
        "+genpts+discardcorrupt",
        // MPEG-TS says nothing of its streams up front: probe 1 s of it, not ffmpeg's default 5 s
        "-analyzeduration",
        match input {
            InputFormat::Flv => "5000000",
            InputFormat::MpegTs => "1000000",
        },
        "-f",
        match input {
            InputFormat::Flv => "flv",
            InputFormat::MpegTs => "mpegts",
        },
        "-i",
        "pipe:0",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let mut graph = format!("[0:v:0]split={n}");
    for i in 0..n {
        graph.push_str(&format!("[s{i}]"));
    }
    for (i, rung) in cfg.ladder.iter().enumerate() {
        graph.push_str(&format!(
            ";[s{i}]scale=-2:{h},format=yuv420p[v{i}]",
            h = rung.height
        ));
    }
    args.extend(["-filter_complex".into(), graph]);
    for (i, rung) in cfg.ladder.iter().enumerate() {
        args.extend([
            "-map".into(),
            format!("[v{i}]"),
            "-map".into(),
            "0:a:0".into(),
            format!("-b:v:{i}"),
            format!("{}k", rung.video_kbps),
            format!("-maxrate:v:{i}"),
            format!("{}k", rung.video_kbps * 11 / 10),
            format!("-bufsize:v:{i}"),
            format!("{}k", rung.video_kbps * 2),
            format!("-b:a:{i}"),
            format!("{}k", rung.audio_kbps),
        ]);
    }
    let mut flags = String::from("omit_endlist+independent_segments");
    if !playlists.recording {
        flags.push_str("+delete_segments");
    }
    if append {
        flags.push_str("+append_list");
    }
    if playlists.key_info.is_some() {
        flags.push_str("+periodic_rekey");
    }
    let map: Vec<String> = (0..n).map(|i| format!("v:{i},a:{i}")).collect();
    args.extend(
        [
            "-c:v",
            "libx264",
            "-preset",
            &cfg.preset,
            "-profile:v",
            "main",
            "-sc_threshold",
            "0",
            "-force_key_frames",
            &format!("expr:gte(t,n_forced*{seg})"),
            "-fps_mode",
            "cfr",
            "-c:a",
            "aac",
            "-ar",
            "48000",
            "-ac",
            "2",
            "-f",
            "hls",
            "-hls_time",
            &seg.to_string(),
            "-hls_list_size",
            &if playlists.recording {
                // every segment, as an EVENT playlist: players may seek back to the start
                "0".to_owned()
            } else {
                (playlists.dvr_s / seg).max(3).to_string()
            },
            "-hls_playlist_type",
            if playlists.recording { "event" } else { "0" },
            "-hls_delete_threshold",
            "3",
            "-hls_flags",
            &flags,
            "-hls_segment_type",
            "mpegts",
        ]
        .iter()
        .map(|s| (*s).to_owned()),
    );
    if let Some(info) = playlists.key_info {
        args.extend([
            "-hls_key_info_file".into(),
            info.to_string_lossy().into_owned(),
        ]);
    }
    args.extend(
        [
            "-hls_segment_filename",
            &dir.join("%v/seg_%06d.ts").to_string_lossy(),
            "-master_pl_name",
            "master.m3u8",
            "-var_stream_map",
            &map.join(" "),
            &dir.join("%v/index.m3u8").to_string_lossy(),
        ]
        .iter()
        .map(|s| (*s).to_owned()),
    );
    args
}

/// A running ffmpeg.
pub(crate) struct Run {
    /// Its input.
    pub(crate) stdin: ChildStdin,
    /// Resolves with its exit when it ends (its log read to the end).
    pub(crate) exit: tokio::task::JoinHandle<std::io::Result<ExitStatus>>,
}

/// Starts ffmpeg for `show` writing into `dir`.
///
/// # Errors
/// When the folder cannot be made or ffmpeg cannot be started.
pub(crate) fn start(
    cfg: &IngestSettings,
    hub: std::sync::Arc<Hub>,
    show: &ShowId,
    input: InputFormat,
    dir: &Path,
    append: bool,
    playlists: Playlists<'_>,
) -> std::io::Result<Run> {
    for i in 0..cfg.ladder.len() {
        std::fs::create_dir_all(dir.join(i.to_string()))?;
    }
    let mut child: Child = Command::new(&cfg.ffmpeg)
        .args(arguments(cfg, input, dir, append, playlists))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let stdin = child.stdin.take().expect("stdin is piped");
    let stderr = child.stderr.take().expect("stderr is piped");
    let show = show.clone();
    let exit = tokio::spawn(async move {
        let mut lines = BufReader::new(stderr);
        let mut line = Vec::new();
        // ffmpeg describes its input (`Input #0`) before its outputs, whose streams are also `#0:…`
        let mut in_input = false;
        loop {
            line.clear();
            // a bounded read of one line: ffmpeg's log cannot grow memory
            let n = (&mut lines)
                .take(MAX_LINE as u64)
                .read_until(b'\n', &mut line)
                .await?;
            if n == 0 {
                break;
            }
            let text = String::from_utf8_lossy(&line);
            let text = text.trim_end();
            if text.starts_with("Input #") {
                in_input = true;
            } else if text.starts_with("Output #") || text.starts_with("Stream mapping") {
                in_input = false;
            }
            if in_input && let Some(info) = input_info(text) {
                hub.note_input(&show, info);
            }
            if text.contains("rror") {
                tracing::warn!(show.id = %show, ffmpeg = text, "ffmpeg");
            } else {
                tracing::debug!(show.id = %show, ffmpeg = text, "ffmpeg");
            }
        }
        child.wait().await
    });
    Ok(Run { stdin, exit })
}

/// The input's picture from ffmpeg's description of input stream 0's video
/// (`  Stream #0:0: Video: h264 (High), yuv420p(progressive), 640x360 [SAR 1:1 DAR 16:9], 25 fps, …`).
pub(crate) fn input_info(line: &str) -> Option<InputInfo> {
    let rest = line.trim_start().strip_prefix("Stream #0:")?;
    let (_, desc) = rest.split_once(": Video: ")?;
    let mut info = InputInfo::default();
    for part in desc.split(", ") {
        let first = part.split_whitespace().next().unwrap_or("");
        if let Some((w, h)) = first.split_once('x')
            && let (Ok(w), Ok(h)) = (w.parse::<u32>(), h.parse::<u32>())
        {
            info.width = Some(w);
            info.height = Some(h);
        }
        if let Some(fps) = part.strip_suffix(" fps") {
            info.fps = fps.trim().parse().ok();
        }
    }
    Some(info)
}

/// Ends the stream in `dir`: `#EXT-X-ENDLIST` after the last segment of every media playlist that lacks
/// it (players stop at the end instead of polling). Blocking file work: call from `spawn_blocking`.
pub(crate) fn close_playlists(dir: &Path, renditions: usize) -> std::io::Result<()> {
    for i in 0..renditions {
        let path = dir.join(i.to_string()).join("index.m3u8");
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        if text.contains("#EXT-X-ENDLIST") {
            continue;
        }
        let mut text = text;
        if !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str("#EXT-X-ENDLIST\n");
        // written beside and renamed, so the origin never serves half a playlist
        let tmp = path.with_extension("m3u8.tmp");
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, &path)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_input_picture_is_read_from_ffmpegs_log() {
        let info = input_info("  Stream #0:0: Video: h264 (High), yuv420p(progressive), 640x360 [SAR 1:1 DAR 16:9], 25 fps, 25 tbr, 1k tbn").unwrap();
        assert_eq!(
            (info.width, info.height, info.fps),
            (Some(640), Some(360), Some(25.0))
        );
        let ts = input_info("  Stream #0:0[0x100]: Video: h264 (High) ([27][0][0][0] / 0x001B), yuv420p(progressive), 320x180, 29.97 fps, 90k tbn").unwrap();
        assert_eq!(
            (ts.width, ts.height, ts.fps),
            (Some(320), Some(180), Some(29.97))
        );
        assert!(input_info("  Stream #0:1: Audio: aac (LC), 44100 Hz, stereo").is_none());
        assert!(input_info("  Stream #1:0: Video: h264, 640x360").is_none());
    }

    #[test]
    fn the_ladder_maps_every_rendition_and_appends_after_a_drop() {
        let cfg = IngestSettings::default();
        let sliding = Playlists {
            dvr_s: 60,
            recording: false,
            key_info: None,
        };
        let args = arguments(&cfg, InputFormat::Flv, Path::new("/m/live"), true, sliding).join(" ");
        assert!(args.contains("split=3[s0][s1][s2]"), "{args}");
        assert!(args.contains("v:0,a:0 v:1,a:1 v:2,a:2"), "{args}");
        assert!(args.contains("+append_list"), "{args}");
        assert!(
            args.contains("-hls_list_size 30") && args.contains("delete_segments"),
            "{args}"
        );
        let fresh = arguments(
            &cfg,
            InputFormat::MpegTs,
            Path::new("/m/live"),
            false,
            sliding,
        )
        .join(" ");
        assert!(!fresh.contains("append_list") && fresh.contains("-f mpegts -i pipe:0"));
        let recording = Playlists {
            dvr_s: 60,
            recording: true,
            key_info: None,
        };
        let kept = arguments(
            &cfg,
            InputFormat::Flv,
            Path::new("/m/live"),
            false,
            recording,
        )
        .join(" ");
        assert!(
            kept.contains("-hls_list_size 0 -hls_playlist_type event")
                && !kept.contains("delete_segments"),
            "{kept}"
        );
        assert!(!kept.contains("rekey") && !kept.contains("key_info"));
        let encrypted = Playlists {
            dvr_s: 60,
            recording: false,
            key_info: Some(Path::new("/tmp/k/current.keyinfo")),
        };
        let enc = arguments(
            &cfg,
            InputFormat::Flv,
            Path::new("/m/live"),
            false,
            encrypted,
        )
        .join(" ");
        assert!(
            enc.contains("+periodic_rekey")
                && enc.contains("-hls_key_info_file /tmp/k/current.keyinfo"),
            "{enc}"
        );
    }

    #[tokio::test]
    async fn only_unended_playlists_are_resumed() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!resumable(dir.path(), true).await);
        std::fs::create_dir(dir.path().join("0")).unwrap();
        let p = dir.path().join("0/index.m3u8");
        std::fs::write(&p, "#EXTM3U\n#EXTINF:2.0,\nseg_000001.ts\n").unwrap();
        assert!(resumable(dir.path(), false).await);
        close_playlists(dir.path(), 1).unwrap();
        assert!(!resumable(dir.path(), false).await);
        assert!(resumable(dir.path(), true).await, "a recording goes on");
    }

    #[test]
    fn closing_adds_one_endlist() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("0")).unwrap();
        let p = dir.path().join("0/index.m3u8");
        std::fs::write(&p, "#EXTM3U\n#EXTINF:2.0,\nseg_000001.ts\n").unwrap();
        close_playlists(dir.path(), 2).unwrap();
        close_playlists(dir.path(), 2).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert_eq!(text.matches("#EXT-X-ENDLIST").count(), 1);
        assert!(text.ends_with("seg_000001.ts\n#EXT-X-ENDLIST\n"));
    }
}
