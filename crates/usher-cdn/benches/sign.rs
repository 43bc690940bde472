//! Signing cost per scheme: one prepared signer per scheme, one request each, nanoseconds per signature.

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use usher_cdn::{Scheme, SignRequest};

fn schemes() -> Vec<(&'static str, serde_json::Value, SignRequest)> {
    let url = "https://cdn.example/demo/master.m3u8";
    let exp = 2_000_000_000;
    let session = "s_0123456789abcdef0123456789abcdef";
    let pem = include_str!("../testdata/aws-sdk-js-v3-test-key.pem");
    vec![
        (
            "akamai_acl_sha256",
            serde_json::json!({"scheme": "akamai", "key": "aabbccddeeff00112233445566778899"}),
            SignRequest::url(url, exp)
                .with_prefix("/demo/")
                .for_session(session),
        ),
        (
            "cloudfront_canned_sha1",
            serde_json::json!({"scheme": "cloudfront", "key_pair_id": "APKAEIBAERJR2EXAMPLE", "private_key_pem": pem}),
            SignRequest::url(url, exp),
        ),
        (
            "cloudfront_custom_sha256_cookies",
            serde_json::json!({"scheme": "cloudfront", "key_pair_id": "APKAEIBAERJR2EXAMPLE", "private_key_pem": pem, "hash_algorithm": "sha256", "delivery": "cookies"}),
            SignRequest::url(url, exp).with_prefix("/demo/"),
        ),
        (
            "google_url_prefix",
            serde_json::json!({"scheme": "google", "key_name": "my-key", "key": "nZtRohdNF9m3cKM24IcK4w=="}),
            SignRequest::url(url, exp).with_prefix("/demo/"),
        ),
        (
            "bunny_hmac_path",
            serde_json::json!({"scheme": "bunny", "key": "SecurityKey", "delivery": "path"}),
            SignRequest::url(url, exp)
                .with_prefix("/demo/")
                .for_client("192.0.2.1".parse().unwrap()),
        ),
        (
            "bunny_sha256_query",
            serde_json::json!({"scheme": "bunny", "key": "SecurityKey", "form": "sha256"}),
            SignRequest::url(url, exp).with_prefix("/demo/"),
        ),
        (
            "nginx_secure_link",
            serde_json::json!({"scheme": "nginx", "secret": "secret", "expression": "$secure_link_expires$uri$remote_addr $secret"}),
            SignRequest::url(url, exp).for_client("192.0.2.1".parse().unwrap()),
        ),
        (
            "bunny_md5_query",
            serde_json::json!({"scheme": "bunny", "key": "SecurityKey", "form": "md5"}),
            SignRequest::url(url, exp).for_client("192.0.2.1".parse().unwrap()),
        ),
        (
            "cloudflare_waf_token",
            serde_json::json!({"scheme": "cloudflare", "secret": "mysecrettoken", "lifetime_s": 10800}),
            SignRequest::url(url, exp),
        ),
        (
            "cloudflare_stream_rs256",
            serde_json::json!({"scheme": "cloudflare_stream", "key_id": "k1", "private_key_pem": pem}),
            SignRequest::url(url, exp)
                .with_prefix("/demo/")
                .for_client_network("192.0.2.1".parse().unwrap(), 24),
        ),
        (
            "fastly_token",
            serde_json::json!({"scheme": "fastly", "key": "iqFPeN2u+Z0Lm5IrsKaOFKRqEU5Gw8ePtaEkHZWuD24="}),
            SignRequest::url(url, exp),
        ),
        (
            "usher_grant",
            serde_json::json!({"scheme": "usher", "key": "usher-test-grant-key-0123456789abcdef"}),
            SignRequest::url(url, exp).for_session(session),
        ),
    ]
}

fn sign(c: &mut Criterion) {
    let mut group = c.benchmark_group("sign");
    for (name, config, req) in schemes() {
        let scheme: Scheme = serde_json::from_value(config).expect("valid config");
        let signer = scheme.signer().expect("valid keys");
        group.bench_function(name, |b| {
            b.iter(|| signer.sign(black_box(&req)).expect("signs"))
        });
    }
    group.finish();
}

criterion_group!(benches, sign);
criterion_main!(benches);
