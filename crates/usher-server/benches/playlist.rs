//! The master playlist as the origin serves it per session (`GET /hls/{session}/master.m3u8`): a fresh grant
//! signed and written into every URI of the show's master playlist.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use usher_core::clock::UnixMs;
use usher_core::grant::{Grant, GrantSigner};
use usher_core::ids::SessionId;
use usher_server::http::origin::personalize;

const DEMO_MASTER: &str = include_str!("../../../media/demo/master.m3u8");

/// A larger ladder with alternate audio and subtitles (URI attributes as well as plain lines).
fn big_master() -> String {
    let mut m = String::from("#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    for lang in ["en", "de", "fr", "es"] {
        m.push_str(&format!("#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud\",LANGUAGE=\"{lang}\",NAME=\"{lang}\",URI=\"audio/{lang}/index.m3u8\"\n"));
        m.push_str(&format!("#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"sub\",LANGUAGE=\"{lang}\",NAME=\"{lang}\",URI=\"subs/{lang}/index.m3u8\"\n"));
    }
    for (h, bw) in [
        (180, 250_000),
        (360, 800_000),
        (540, 1_800_000),
        (720, 3_000_000),
        (1080, 6_000_000),
        (2160, 16_000_000),
    ] {
        m.push_str(&format!("#EXT-X-STREAM-INF:BANDWIDTH={bw},RESOLUTION={}x{h},CODECS=\"avc1.640028,mp4a.40.2\",AUDIO=\"aud\",SUBTITLES=\"sub\"\n{h}p/index.m3u8\n", h * 16 / 9));
    }
    m
}

fn playlist(c: &mut Criterion) {
    let signer = GrantSigner::new(&[3u8; 32]);
    let grant = Grant {
        session: SessionId::generate(),
        expires_at: UnixMs(1_800_000_120_000),
        prefix: "demo/".into(),
    };
    let token = signer.sign(&grant);
    c.bench_function("playlist/personalize_demo_master", |b| {
        b.iter(|| personalize(black_box(DEMO_MASTER), black_box(&token), "demo"))
    });
    let big = big_master();
    c.bench_function("playlist/personalize_6_renditions_4_audio_4_subs", |b| {
        b.iter(|| personalize(black_box(&big), black_box(&token), "demo"))
    });
    c.bench_function("playlist/sign_and_personalize_demo_master", |b| {
        b.iter(|| {
            let token = signer.sign(black_box(&grant));
            personalize(DEMO_MASTER, &token, "demo")
        })
    });
}

criterion_group!(benches, playlist);
criterion_main!(benches);
