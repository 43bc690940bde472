//! FLV framing of the audio and video messages an RTMP publisher sends, for ffmpeg's `-f flv -i pipe:0`.
//!
//! RTMP carries FLV tag bodies already; this adds the file header and tag headers, and remembers the
//! codec configurations (AVC decoder configuration, AAC AudioSpecificConfig) so that an ffmpeg started
//! again mid-stream gets them before the next frames.

/// The FLV file header (audio and video) and the first, empty, previous-tag-size.
const HEADER: [u8; 13] = [b'F', b'L', b'V', 1, 0x05, 0, 0, 0, 9, 0, 0, 0, 0];

/// Tag types.
pub(crate) const AUDIO: u8 = 8;
pub(crate) const VIDEO: u8 = 9;

/// Frames RTMP messages as FLV tags.
#[derive(Default)]
pub(crate) struct FlvWriter {
    video_config: Option<Vec<u8>>,
    audio_config: Option<Vec<u8>>,
}

impl FlvWriter {
    /// The bytes a fresh ffmpeg reads first: the header and the codec configurations seen so far.
    pub(crate) fn prelude(&self) -> Vec<u8> {
        let mut out = HEADER.to_vec();
        for config in [&self.video_config, &self.audio_config]
            .into_iter()
            .flatten()
        {
            out.extend_from_slice(config);
        }
        out
    }

    /// One tag of `kind` ([`AUDIO`] or [`VIDEO`]) at `timestamp_ms` holding `data` (a message body of at
    /// most 16 MiB, as RTMP's 24-bit length allows).
    pub(crate) fn tag(&mut self, kind: u8, timestamp_ms: u32, data: &[u8]) -> Vec<u8> {
        let len = data.len().min(0xFF_FFFF);
        let data = &data[..len];
        let mut out = Vec::with_capacity(11 + len + 4);
        out.push(kind);
        out.extend_from_slice(&(len as u32).to_be_bytes()[1..]);
        out.extend_from_slice(&(timestamp_ms & 0xFF_FFFF).to_be_bytes()[1..]);
        out.push((timestamp_ms >> 24) as u8);
        out.extend_from_slice(&[0, 0, 0]);
        out.extend_from_slice(data);
        out.extend_from_slice(&((11 + len) as u32).to_be_bytes());
        let is_config = match kind {
            // AVC (codec 7), AVCPacketType 0: the decoder configuration
            VIDEO => data.len() > 1 && data[0] & 0x0F == 7 && data[1] == 0,
            // AAC (format 10), AACPacketType 0: the AudioSpecificConfig
            AUDIO => data.len() > 1 && data[0] >> 4 == 10 && data[1] == 0,
            _ => false,
        };
        if is_config {
            // as a tag at time 0, for the prelude
            let mut config = out.clone();
            config[4..8].fill(0);
            if kind == VIDEO {
                self.video_config = Some(config);
            } else {
                self.audio_config = Some(config);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_have_their_sizes_and_extended_timestamps() {
        let mut w = FlvWriter::default();
        let tag = w.tag(VIDEO, 0x0123_4567, &[0x17, 1, 0, 0, 0, 9]);
        assert_eq!(tag[0], VIDEO);
        assert_eq!(&tag[1..4], &[0, 0, 6]);
        assert_eq!(&tag[4..8], &[0x23, 0x45, 0x67, 0x01]);
        assert_eq!(&tag[tag.len() - 4..], &17u32.to_be_bytes());
        assert_eq!(w.prelude(), HEADER.to_vec(), "a frame is no configuration");
        w.tag(VIDEO, 500, &[0x17, 0, 0, 0, 0, 1, 2]);
        w.tag(AUDIO, 500, &[0xAF, 0, 0x12, 0x10]);
        let prelude = w.prelude();
        assert_eq!(prelude.len(), 13 + (11 + 7 + 4) + (11 + 4 + 4));
        assert_eq!(
            &prelude[13 + 4..13 + 8],
            &[0, 0, 0, 0],
            "configurations at time 0"
        );
    }
}
