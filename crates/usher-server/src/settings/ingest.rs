//! `[ingest]`: live input from encoders over RTMP and SRT, transcoded by ffmpeg into live HLS.

use std::net::SocketAddr;

use serde::Deserialize;

use super::error::{ConfigError, invalid};

/// `[ingest]`: where encoders publish, when a publish is accepted, and what ffmpeg makes of it. With
/// neither `rtmp_listen` nor `srt_listen` set (the default) the node runs no listener and needs no ffmpeg.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestSettings {
    /// RTMP listen address (`0.0.0.0:1935`); unset: no RTMP listener.
    pub rtmp_listen: Option<String>,
    /// SRT listen address (UDP, `0.0.0.0:9000`); unset: no SRT listener.
    pub srt_listen: Option<String>,
    /// Host name encoders reach the listeners at, for the ingest URLs the console and the API show
    /// (default: the host of `public_url`, else the listen address).
    pub public_host: Option<String>,
    /// Seconds before a show's `starts_at` from which its encoder may publish.
    pub lead_s: u64,
    /// Seconds after a show's `ends_at` until which its encoder may go on publishing.
    pub margin_s: u64,
    /// Seconds a dropped encoder may take to come back before its show's stream is ended
    /// (`#EXT-X-ENDLIST`); within it the playlist goes on where it stopped.
    pub reconnect_window_s: u64,
    /// Seconds of media per segment (GOPs are aligned to it).
    pub segment_s: u32,
    /// Seconds of media the live playlists keep (the DVR window viewers can seek back in).
    pub dvr_s: u32,
    /// The ffmpeg binary.
    pub ffmpeg: String,
    /// x264 preset of the live encodes.
    pub preset: String,
    /// The renditions made of each live input, largest first.
    pub ladder: Vec<Rung>,
    /// Most encoder connections (handshaking or publishing) per protocol at once.
    pub max_connections: usize,
    /// Seconds between content keys of an `aes-128` live show: each period's segments are encrypted
    /// with a new key that only sessions holding their seat get, so a viewer who loses the seat stops
    /// within about this long, whatever a CDN cached (rounded up to whole segments).
    pub key_rotation_s: u32,
}

/// One rendition of the live ladder.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Rung {
    /// Picture height in pixels (the width follows the input's aspect ratio).
    pub height: u32,
    /// Video bitrate, kbit/s.
    pub video_kbps: u32,
    /// Audio bitrate, kbit/s.
    pub audio_kbps: u32,
}

impl Default for IngestSettings {
    fn default() -> Self {
        Self {
            rtmp_listen: None,
            srt_listen: None,
            public_host: None,
            lead_s: 1800,
            margin_s: 900,
            reconnect_window_s: 30,
            segment_s: 2,
            dvr_s: 120,
            ffmpeg: "ffmpeg".into(),
            preset: "veryfast".into(),
            ladder: vec![
                Rung {
                    height: 720,
                    video_kbps: 3000,
                    audio_kbps: 128,
                },
                Rung {
                    height: 480,
                    video_kbps: 1400,
                    audio_kbps: 96,
                },
                Rung {
                    height: 360,
                    video_kbps: 800,
                    audio_kbps: 96,
                },
            ],
            max_connections: 16,
            key_rotation_s: 60,
        }
    }
}

impl IngestSettings {
    /// Whether any listener is configured.
    pub fn enabled(&self) -> bool {
        self.rtmp_listen.is_some() || self.srt_listen.is_some()
    }

    /// The RTMP address, when set.
    pub fn rtmp_addr(&self) -> Option<SocketAddr> {
        self.rtmp_listen.as_deref().and_then(|a| a.parse().ok())
    }

    /// The SRT address, when set.
    pub fn srt_addr(&self) -> Option<SocketAddr> {
        self.srt_listen.as_deref().and_then(|a| a.parse().ok())
    }

    /// Checks the values.
    pub(super) fn check(&self) -> Result<(), ConfigError> {
        for (key, value) in [
            ("ingest.rtmp_listen", &self.rtmp_listen),
            ("ingest.srt_listen", &self.srt_listen),
        ] {
            if let Some(v) = value
                && v.parse::<SocketAddr>().is_err()
            {
                return Err(invalid(
                    key,
                    format!("`{v}` is not an address like 0.0.0.0:1935"),
                ));
            }
        }
        if let Some(h) = &self.public_host
            && (h.is_empty() || h.len() > 253 || h.contains(['/', ' ', '?', '#', '@']))
        {
            return Err(invalid("ingest.public_host", "must be a host name"));
        }
        if self.lead_s > 86_400 {
            return Err(invalid("ingest.lead_s", "must be at most 86400"));
        }
        if self.margin_s > 86_400 {
            return Err(invalid("ingest.margin_s", "must be at most 86400"));
        }
        if !(1..=600).contains(&self.reconnect_window_s) {
            return Err(invalid("ingest.reconnect_window_s", "must be 1 to 600"));
        }
        if self.key_rotation_s < self.segment_s || self.key_rotation_s > 3600 {
            return Err(invalid(
                "ingest.key_rotation_s",
                "must be at least one segment (ingest.segment_s) and at most 3600",
            ));
        }
        if !(1..=10).contains(&self.segment_s) {
            return Err(invalid("ingest.segment_s", "must be 1 to 10"));
        }
        if self.dvr_s < 3 * self.segment_s || self.dvr_s > 6 * 3600 {
            return Err(invalid(
                "ingest.dvr_s",
                "must be at least 3 segments and at most 21600",
            ));
        }
        if self.ffmpeg.is_empty() {
            return Err(invalid("ingest.ffmpeg", "must name the ffmpeg binary"));
        }
        const PRESETS: &[&str] = &[
            "ultrafast",
            "superfast",
            "veryfast",
            "faster",
            "fast",
            "medium",
        ];
        if !PRESETS.contains(&self.preset.as_str()) {
            return Err(invalid(
                "ingest.preset",
                format!("must be one of {}", PRESETS.join(", ")),
            ));
        }
        if self.ladder.is_empty() || self.ladder.len() > 6 {
            return Err(invalid("ingest.ladder", "must have 1 to 6 renditions"));
        }
        for r in &self.ladder {
            if !(90..=2160).contains(&r.height) || r.height % 2 != 0 {
                return Err(invalid(
                    "ingest.ladder",
                    "each height must be even and 90 to 2160",
                ));
            }
            if !(100..=50_000).contains(&r.video_kbps) || !(32..=512).contains(&r.audio_kbps) {
                return Err(invalid(
                    "ingest.ladder",
                    "video_kbps must be 100 to 50000 and audio_kbps 32 to 512",
                ));
            }
        }
        if !(1..=1024).contains(&self.max_connections) {
            return Err(invalid("ingest.max_connections", "must be 1 to 1024"));
        }
        Ok(())
    }
}
