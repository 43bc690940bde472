#!/usr/bin/env bash
# make-demo-media.sh — generate the demo HLS test stream committed under media/demo/.
#
# NEEDS: ffmpeg + ffprobe built with libx264, the native AAC encoder and
#        libfreetype (drawtext), and a TrueType font (DejaVu Sans Mono).
#        On Debian/Ubuntu:  apt-get install -y ffmpeg fonts-dejavu-core
#
# These tools are needed ONLY to regenerate the media. The output is committed,
# so building, running or testing Usher never needs ffmpeg.
#
# What it makes (deleting and recreating media/demo/ each run):
#   media/demo/master.m3u8          master playlist, relative variant URIs
#   media/demo/360p/index.m3u8      640x360 H.264 Main     ~300 kb/s + AAC-LC 64 kb/s
#   media/demo/180p/index.m3u8      320x180 H.264 Baseline ~120 kb/s + AAC-LC 64 kb/s
#   media/demo/<r>/seg_NNN.ts       2-second MPEG-TS segments, 64 s in all
#
# Both renditions: 25 fps, a keyframe exactly every 2 s (50 frames, no scene-cut
# keyframes), so segment boundaries line up across renditions. No B-frames in
# either, and -output_ts_offset 0.1 keeps the AAC priming delay from making the
# muxer shift timestamps, so frame N has the same PTS in both renditions (video
# starts at PTS 1.5 s in every rendition: 0.1 s offset + the MPEG-TS muxer's 1.4 s). The picture is
# ffmpeg's moving `testsrc2` pattern with the playback clock and rendition name
# burned in; the sound is a quiet 440 Hz tone with an 880 Hz beep every second.
#
# Usage: scripts/make-demo-media.sh        (from anywhere; writes into the repo)
set -euo pipefail

# ---------------------------------------------------------------- prerequisites
die() { echo "make-demo-media: error: $*" >&2; exit 1; }

for tool in ffmpeg ffprobe; do
  command -v "$tool" >/dev/null 2>&1 ||
    die "'$tool' not found. Install it first, e.g.: apt-get install -y ffmpeg fonts-dejavu-core"
done
# (capture first: `ffmpeg | grep -q` would trip pipefail via SIGPIPE)
encoders=$(ffmpeg -hide_banner -encoders 2>/dev/null || true)
filters=$(ffmpeg -hide_banner -filters 2>/dev/null || true)
grep -q ' libx264 ' <<<"$encoders" || die "this ffmpeg has no libx264 encoder"
grep -q ' drawtext ' <<<"$filters" || die "this ffmpeg has no drawtext filter (needs libfreetype)"

FONT="${DEMO_FONT:-/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf}"
[ -r "$FONT" ] ||
  die "font '$FONT' not found. Install it (apt-get install -y fonts-dejavu-core) or set DEMO_FONT=/path/to/font.ttf"

# ---------------------------------------------------------------- settings
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$REPO/media/demo"

DURATION=64          # seconds
FPS=25
SEG=2                # segment length in seconds
GOP=$((FPS * SEG))   # frames between keyframes = exactly one segment
MAX_BYTES=$((8 * 1000 * 1000))

# Force the C locale so printf/awk number formatting is stable.
export LC_ALL=C

# ---------------------------------------------------------------- encode
# encode NAME WIDTH HEIGHT PROFILE LEVEL VBITRATE MAXRATE BUFSIZE FONTSIZE
encode() {
  local name=$1 w=$2 h=$3 profile=$4 level=$5 vb=$6 maxrate=$7 bufsize=$8 fs=$9
  local dir="$OUT/$name"
  mkdir -p "$dir"

  # Source is always 640x360 and scaled down, so both renditions show the same
  # picture; text is drawn after scaling so it stays sharp at 180p.
  local pad=$((fs / 2))
  local txt="fontfile=$FONT:fontsize=$fs:fontcolor=white:box=1:boxcolor=black@0.65:boxborderw=$((fs / 4))"
  local vf="scale=${w}:${h}:flags=bicubic,format=yuv420p"
  local big="fontfile=$FONT:fontsize=$((fs * 2)):fontcolor=white:box=1:boxcolor=black@0.65:boxborderw=$((fs / 2))"
  # (testsrc2 draws its own small clock in the top-left corner; leave it visible)
  vf+=",drawtext=$big:x=(w-tw)/2:y=(h-th)/2:text='%{pts\\:hms}'"
  vf+=",drawtext=$txt:x=w-tw-$pad:y=$pad:text='Usher demo $name'"
  vf+=",drawtext=$txt:x=$pad:y=h-th-$pad:text='frame %{frame_num}'"

  echo "make-demo-media: encoding $name (${w}x${h}, $profile@$level, $vb video)" >&2
  ffmpeg -hide_banner -nostdin -y -loglevel error \
    -f lavfi -i "testsrc2=size=640x360:rate=$FPS:duration=$DURATION" \
    -f lavfi -i "sine=frequency=440:beep_factor=2:sample_rate=48000:duration=$DURATION" \
    -filter_complex "[0:v]$vf[v];[1:a]volume=0.5,aformat=sample_fmts=fltp:sample_rates=48000:channel_layouts=stereo[a]" \
    -map '[v]' -map '[a]' \
    -c:v libx264 -threads 1 -preset medium -profile:v "$profile" -level:v "$level" -pix_fmt yuv420p -bf 0 \
    -b:v "$vb" -maxrate "$maxrate" -bufsize "$bufsize" \
    -g "$GOP" -keyint_min "$GOP" -sc_threshold 0 -force_key_frames "expr:gte(t,n_forced*$SEG)" \
    -c:a aac -profile:a aac_low -b:a 64k -ar 48000 -ac 2 \
    -fflags +bitexact -flags:v +bitexact -flags:a +bitexact \
    -output_ts_offset 0.1 \
    -f hls -hls_time "$SEG" -hls_playlist_type vod -hls_list_size 0 \
    -hls_flags independent_segments -hls_segment_type mpegts \
    -hls_segment_filename "$dir/seg_%03d.ts" \
    "$dir/index.m3u8"
}

# ---------------------------------------------------------------- measurements
# "avc1.PPCCLL" from the first SPS NAL unit (profile_idc, constraint flags, level_idc).
avc1_codec() {
  local seg=$1 hex
  hex=$(ffmpeg -hide_banner -nostdin -loglevel error -i "$seg" -map 0:v:0 -c copy -frames:v 1 -f h264 - |
        od -An -v -tx1 | tr -s ' \n' ' ')
  # byte-aligned search for start code + NAL header 0x67 (SPS)
  local sps
  sps=$(grep -m1 -oE '00 00 01 67( [0-9a-f]{2}){3}' <<<"$hex") ||
    die "no SPS found in $seg"
  read -r _ _ _ _ p c l <<<"$sps"
  echo "avc1.$p$c$l"
}

# "PEAK AVERAGE" bits/s over the segments of a media playlist (sizes include TS overhead).
bandwidths() {
  local dir=$1
  awk -v dir="$dir" '
    /^#EXTINF:/ { sub(/^#EXTINF:/, ""); sub(/,.*/, ""); dur = $0 + 0; next }
    /^[^#]/ && NF {
      cmd = "stat -c %s \"" dir "/" $0 "\""; cmd | getline size; close(cmd)
      bps = size * 8 / dur; if (bps > peak) peak = bps
      total_bits += size * 8; total_dur += dur
    }
    END {
      if (total_dur <= 0) exit 1
      avg = total_bits / total_dur
      printf "%d %d\n", (peak == int(peak) ? peak : int(peak) + 1), (avg == int(avg) ? avg : int(avg) + 1)
    }' "$dir/index.m3u8"
}

# ---------------------------------------------------------------- main
rm -rf "$OUT"
mkdir -p "$OUT"

#      name  w   h   profile  level vbitrate maxrate bufsize fontsize
encode 360p 640 360 main     3.0   300k     350k    600k    24
encode 180p 320 180 baseline 3.0   120k     140k    240k    12

{
  echo "#EXTM3U"
  echo "#EXT-X-VERSION:3"
  echo "#EXT-X-INDEPENDENT-SEGMENTS"
  for name in 360p 180p; do
    dir="$OUT/$name"
    read -r peak avg < <(bandwidths "$dir")
    # (ffprobe lists a TS stream twice, under its program and on its own: keep the first non-empty line)
    res=$(ffprobe -v error -select_streams v:0 -show_entries stream=width,height -of csv=p=0:s=x "$dir/seg_000.ts" | grep -m1 .)
    fps=$(ffprobe -v error -select_streams v:0 -show_entries stream=avg_frame_rate -of csv=p=0 "$dir/seg_000.ts" |
          grep -m1 . | awk -F/ '{ printf "%.3f", ($2 ? $1 / $2 : $1) }')
    codec=$(avc1_codec "$dir/seg_000.ts")
    echo "#EXT-X-STREAM-INF:BANDWIDTH=$peak,AVERAGE-BANDWIDTH=$avg,RESOLUTION=$res,FRAME-RATE=$fps,CODECS=\"$codec,mp4a.40.2\""
    echo "$name/index.m3u8"
  done
} > "$OUT/master.m3u8"

# ---------------------------------------------------------------- verify
echo "make-demo-media: verifying" >&2
for name in 360p 180p; do
  pl="$OUT/$name/index.m3u8"
  grep -qx '#EXT-X-PLAYLIST-TYPE:VOD' "$pl" || die "$pl: no #EXT-X-PLAYLIST-TYPE:VOD"
  grep -qx '#EXT-X-ENDLIST' "$pl" || die "$pl: no #EXT-X-ENDLIST"
  if grep -v '^#' "$pl" | grep -q '/'; then die "$pl: segment URIs are not plain relative names"; fi
  # every segment ~2.0 s, total >= 60 s
  awk -v pl="$pl" '
    /^#EXTINF:/ { sub(/^#EXTINF:/, ""); sub(/,.*/, ""); d = $0 + 0; n++; t += d
                  if (d < 1.95 || d > 2.05) { printf "%s: segment %d lasts %s s\n", pl, n, d > "/dev/stderr"; bad = 1 } }
    END { if (t < 60) { printf "%s: total %.3f s < 60 s\n", pl, t > "/dev/stderr"; bad = 1 }
          printf "make-demo-media: %s: %d segments, %.3f s\n", pl, n, t > "/dev/stderr"; exit bad }' "$pl" ||
    die "$pl: bad segment durations"
  # the streams in a segment are what the master promises
  probe=$(ffprobe -v error -show_entries stream=codec_name,profile,width,height,pix_fmt,channels,sample_rate -of compact=p=0 "$OUT/$name/seg_000.ts")
  grep -q 'codec_name=h264' <<<"$probe" || die "$name: no H.264 video"
  grep -q 'pix_fmt=yuv420p' <<<"$probe" || die "$name: video is not yuv420p"
  grep -q 'codec_name=aac|profile=LC' <<<"$probe" || die "$name: no AAC-LC audio"
  grep -q 'channels=2' <<<"$probe" || die "$name: audio is not stereo"
  # every segment opens with a keyframe; note its PTS to compare renditions
  : > "$OUT/.pts_$name"
  for seg in "$OUT/$name"/seg_*.ts; do
    first=$(ffprobe -v error -select_streams v:0 -read_intervals '%+#1' -show_entries frame=key_frame,pict_type,pts_time -of csv=p=0 "$seg" | grep -m1 .)
    [[ "$first" == 1,*,I* ]] || die "$seg does not start with a keyframe ($first)"
    echo "${seg##*/} $first" >> "$OUT/.pts_$name"
  done
  # the picture is not black: mean luma of a frame mid-stream
  yavg=$(ffmpeg -hide_banner -nostdin -loglevel error -i "$OUT/$name/seg_010.ts" -map 0:v:0 -frames:v 1 \
           -vf signalstats,metadata=print:key=lavfi.signalstats.YAVG:file=- -f null - |
         sed -n 's/^lavfi.signalstats.YAVG=//p' | head -n1)
  awk -v y="$yavg" 'BEGIN { exit !(y > 32) }' || die "$name: frame looks black (YAVG=$yavg)"
done
# segment N of each rendition starts with the same frame at the same PTS
cmp -s "$OUT/.pts_360p" "$OUT/.pts_180p" ||
  die "segments are not aligned across renditions: $(diff "$OUT/.pts_360p" "$OUT/.pts_180p" | head -n 4)"
rm -f "$OUT/.pts_360p" "$OUT/.pts_180p"
# the master: well-formed variant entries, and ffmpeg's HLS demuxer can open both variants
n_inf=$(grep -cE '^#EXT-X-STREAM-INF:BANDWIDTH=[0-9]+,AVERAGE-BANDWIDTH=[0-9]+,RESOLUTION=[0-9]+x[0-9]+,FRAME-RATE=[0-9]+\.[0-9]{3},CODECS="avc1\.[0-9a-f]{6},mp4a\.40\.2"$' "$OUT/master.m3u8" || true)
[ "$n_inf" = 2 ] || die "master.m3u8: expected 2 well-formed #EXT-X-STREAM-INF lines, found $n_inf"
[ "$(grep -v '^#' "$OUT/master.m3u8")" = "$(printf '360p/index.m3u8\n180p/index.m3u8')" ] ||
  die "master.m3u8: variant URIs are not 360p/index.m3u8 and 180p/index.m3u8"
master_probe=$(ffprobe -v error -show_entries format=duration:stream=codec_name -of compact=p=0 "$OUT/master.m3u8")
[ "$(grep -c '^codec_name=h264' <<<"$master_probe")" -ge 2 ] || die "master.m3u8: ffprobe does not see 2 H.264 streams"
[ "$(grep -c '^codec_name=aac' <<<"$master_probe")" -ge 2 ] || die "master.m3u8: ffprobe does not see 2 AAC streams"
master_dur=$(sed -n 's/^duration=//p' <<<"$master_probe" | head -n1)
[[ "$master_dur" =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "master.m3u8: ffprobe gives no duration ($master_dur)"
awk -v d="$master_dur" 'BEGIN { exit !(d + 0 >= 60) }' || die "master.m3u8 duration $master_dur < 60 s"
size=$(du -sb "$OUT" | cut -f1)
[ "$size" -lt "$MAX_BYTES" ] || die "media/demo is $size bytes, over $MAX_BYTES"

echo "make-demo-media: ok — $OUT: $size bytes, master duration ${master_dur}s" >&2
cat "$OUT/master.m3u8"
