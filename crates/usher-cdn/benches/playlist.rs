//! The master playlist as the origin serves it per session (`GET /hls/{session}/master.m3u8`): the show's
//! master playlist rewritten by [`usher_cdn::playlist::personalize`] for the session's pathways, every URI
//! signed for its pathway.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use usher_cdn::playlist::{Pathway, personalize};
use usher_cdn::{Scheme, SignRequest, Signer};
use usher_core::clock::UnixMs;
use usher_core::grant::{Grant, GrantSigner};
use usher_core::ids::SessionId;

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

/// Usher's origin: the session's grant in the path, as the server's delivery writes it.
struct Origin {
    token: String,
}

impl Pathway for Origin {
    fn id(&self) -> &str {
        "origin"
    }

    fn sign(&self, uri: &str) -> Option<String> {
        Some(format!("/o/{}/demo/{uri}", self.token))
    }
}

/// A CDN whose scheme signs every URI (nginx `secure_link` over the stream folder).
struct Nginx(Signer);

impl Pathway for Nginx {
    fn id(&self) -> &str {
        "cdn-a"
    }

    fn sign(&self, uri: &str) -> Option<String> {
        let req = SignRequest::url(format!("https://a.example/demo/{uri}"), 1_800_000_120)
            .with_prefix("/demo/");
        self.0.sign(&req).ok().map(|s| s.url)
    }
}

fn playlist(c: &mut Criterion) {
    let signer = GrantSigner::new(&[3u8; 32]);
    let grant = Grant {
        session: SessionId::generate(),
        expires_at: UnixMs(1_800_000_120_000),
        prefix: "demo/".into(),
        client: None,
    };
    let origin = [Origin {
        token: signer.sign(&grant),
    }];
    let steering = "/hls/s/steering.json";
    c.bench_function("playlist/personalize_demo_master", |b| {
        b.iter(|| personalize(black_box(DEMO_MASTER), &origin, "origin", steering))
    });
    let big = big_master();
    c.bench_function("playlist/personalize_6_renditions_4_audio_4_subs", |b| {
        b.iter(|| personalize(black_box(&big), &origin, "origin", steering))
    });
    c.bench_function("playlist/sign_and_personalize_demo_master", |b| {
        b.iter(|| {
            let origin = [Origin {
                token: signer.sign(black_box(&grant)),
            }];
            personalize(DEMO_MASTER, &origin, "origin", steering)
        })
    });
    let scheme: Scheme = serde_json::from_value(serde_json::json!({
        "scheme": "nginx", "secret": "s3cret", "delivery": "path", "prefix_variable": "prefix",
        "expression": "$secure_link_expires$prefix $secret"
    }))
    .expect("an nginx scheme");
    let nginx = Nginx(scheme.signer().expect("an nginx signer"));
    let both: [&dyn Pathway; 2] = [&nginx, &origin[0]];
    c.bench_function("playlist/personalize_demo_master_nginx_and_origin", |b| {
        b.iter(|| personalize(black_box(DEMO_MASTER), &both, "cdn-a", steering))
    });
}

criterion_group!(benches, playlist);
criterion_main!(benches);
