//! `usher sign-url` as operators run it: the real binary, one run per scheme, its output checked against the
//! vendors' known answers (the same vectors as `usher-cdn`'s unit tests, with their sources named there).

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

fn usher(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_usher"))
        .arg("sign-url")
        .args(args)
        .env_remove("USHER_SIGN_KEY")
        .output()
        .expect("run usher sign-url")
}

/// Runs and returns stdout, failing the test with stderr when the command fails.
fn ok(args: &[&str]) -> String {
    let out = usher(args);
    assert!(
        out.status.success(),
        "usher sign-url {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

fn cloudfront_key() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../usher-cdn/testdata/aws-sdk-js-v3-test-key.pem")
        .display()
        .to_string()
}

#[test]
fn google_signed_url_with_either_time_form() {
    // GoogleCloudPlatform/python-docs-samples cdn/snippets_test.py.
    let want = "URL: http://35.186.234.33/index.html?Expires=1549751401&KeyName=my-key&Signature=CRFqQnVfFyiUyR63OQf-HRUpIwc=\n";
    for expires in ["1549751401", "2019-02-09T22:30:01Z"] {
        let out = ok(&[
            "--scheme",
            "google",
            "--key-name",
            "my-key",
            "--key",
            "nZtRohdNF9m3cKM24IcK4w==",
            "--url",
            "http://35.186.234.33/index.html",
            "--expires",
            expires,
        ]);
        assert_eq!(out, want);
    }
    let out = ok(&[
        "--scheme",
        "google",
        "--key-name",
        "my-key",
        "--key",
        "nZtRohdNF9m3cKM24IcK4w==",
        "--url",
        "http://www.example.com/foo/master.m3u8",
        "--prefix",
        "/foo/",
        "--delivery",
        "cookie",
        "--expires",
        "1549751401",
    ]);
    assert_eq!(
        out,
        "URL: http://www.example.com/foo/master.m3u8\n\
         Set-Cookie: Cloud-CDN-Cookie=URLPrefix=aHR0cDovL3d3dy5leGFtcGxlLmNvbS9mb28v:Expires=1549751401:KeyName=my-key:Signature=Z9uYAu73YHioRScZDxnP-TnS274=; Domain=www.example.com; Path=/; HttpOnly\n"
    );
}

#[test]
fn cloudfront_canned_url_from_a_pem_file_and_json_cookies() {
    // Key from the AWS SDK for JavaScript v3 tests; signature computed with botocore's CloudFrontSigner.
    let out = ok(&[
        "--scheme",
        "cloudfront",
        "--key-file",
        &cloudfront_key(),
        "--key-pair-id",
        "APKAEIBAERJR2EXAMPLE",
        "--url",
        "https://d111111abcdef8.cloudfront.net/private-content/private.jpeg",
        "--expires",
        "2020-01-01T00:00:00Z",
    ]);
    assert_eq!(
        out,
        "URL: https://d111111abcdef8.cloudfront.net/private-content/private.jpeg?Expires=1577836800&Signature=NOai~fCNG523XBDM03BnCCZFJ0527Mdd31dfH5rqm1ewjuTt2uo8Eq9FCxFdKQhe2x-b2WXsaAuSa5lTQUtQrRAWmqTVxY-T9I8O0A26QI8agkU5TCA4EBwCaI6C8kvL5kpgQselQxP0j51842oCHXMCg2zSscihgPdi5Ml5QU0RTFPpSphxZRlLkhQSjcjAPSJwlvvuceogycsXHYMlqvfn1hv7DzPjF-53Xg1NSodBrs~IgG0zNsokIrv91xIdpNTOEIuovKLtsgPTE1UYMT880TqNrZFx56oPDmEwgBAf9jHJ2zyJvnj3f7XPsb46ofOp9eniUKAAh-zdOrCRbw__&Key-Pair-Id=APKAEIBAERJR2EXAMPLE\n"
    );
    let out = ok(&[
        "--scheme",
        "cloudfront",
        "--key-file",
        &cloudfront_key(),
        "--key-pair-id",
        "APKAEIBAERJR2EXAMPLE",
        "--url",
        "https://d111111abcdef8.cloudfront.net/demo/master.m3u8",
        "--prefix",
        "/demo/",
        "--starts",
        "1575158400",
        "--ip",
        "10.0.0.0",
        "--expires",
        "1577836800",
        "--delivery",
        "cookies",
        "--json",
    ]);
    let v: Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(
        v["url"],
        "https://d111111abcdef8.cloudfront.net/demo/master.m3u8"
    );
    let cookies = v["cookies"].as_array().expect("cookies");
    let pair = |i: usize| {
        (
            cookies[i]["name"].as_str().unwrap(),
            cookies[i]["value"].as_str().unwrap(),
        )
    };
    assert_eq!(
        pair(0),
        (
            "CloudFront-Policy",
            "eyJTdGF0ZW1lbnQiOlt7IlJlc291cmNlIjoiaHR0cHM6Ly9kMTExMTExYWJjZGVmOC5jbG91ZGZyb250Lm5ldC9kZW1vLyoiLCJDb25kaXRpb24iOnsiRGF0ZUxlc3NUaGFuIjp7IkFXUzpFcG9jaFRpbWUiOjE1Nzc4MzY4MDB9LCJJcEFkZHJlc3MiOnsiQVdTOlNvdXJjZUlwIjoiMTAuMC4wLjAvMzIifSwiRGF0ZUdyZWF0ZXJUaGFuIjp7IkFXUzpFcG9jaFRpbWUiOjE1NzUxNTg0MDB9fX1dfQ__"
        )
    );
    assert_eq!(
        pair(1),
        (
            "CloudFront-Signature",
            "ZTMkZPlIYKAplFKgOtKhGPsMqd4P7lF-l~w34uL-0CpzxkSxYzv63h95qoZx0ccQd9WR41nkYfo0soEEPSOliYb4N57Du9zgkzhaQLBPIYdIARlOjGIjs-3VanlAgnh9RqBLoa1tX~hyix7kvzP2ZQ8iMyXHadYLXm0CQlvxqBG2qcgbSfvy7izkNIwBIZcEEyZ7Ao26~AVy9X7~jyO5MB0Q~htHlbMWkuMMKiKAGDMD2bJH~FMtkpqy9W7-q4Isbn0AlTNQgwTVotBUR44lkgqqM7Z5u2-99sRPbXyzD2g81BUgIgx81Vr9cvzh3UNar1DEqy39xBh2Qwj6dLpMUg__"
        )
    );
    assert_eq!(pair(2), ("CloudFront-Key-Pair-Id", "APKAEIBAERJR2EXAMPLE"));
    assert_eq!(
        cookies[2]["set_cookie"],
        "CloudFront-Key-Pair-Id=APKAEIBAERJR2EXAMPLE; Domain=d111111abcdef8.cloudfront.net; Path=/; Secure; HttpOnly"
    );
}

#[test]
fn akamai_acl_token_as_cookie_and_header() {
    // Computed with akamai-edgeauth 0.3.2 (Akamai's Python reference library).
    let token = "exp=1700003600~acl=/demo/*~id=abc123~hmac=6b9051fdfbedee0b6ba4a84746c52e4f0cb73bafd9a396837ae65e81acf45c75";
    let base = [
        "--scheme",
        "akamai",
        "--key",
        "aabbccddeeff00112233445566778899",
        "--salt",
        "pepper",
        "--url",
        "https://a.example/demo/master.m3u8",
        "--prefix",
        "/demo/",
        "--session",
        "abc123",
        "--expires",
        "1700003600",
    ];
    let cookie = ok(&[&base[..], &["--delivery", "cookie"]].concat());
    assert_eq!(
        cookie,
        format!(
            "URL: https://a.example/demo/master.m3u8\nSet-Cookie: __token__={token}; Domain=a.example; Path=/; Secure; HttpOnly\n"
        )
    );
    let header = ok(&[&base[..], &["--delivery", "header"]].concat());
    assert_eq!(
        header,
        format!("URL: https://a.example/demo/master.m3u8\nHeader: __token__: {token}\n")
    );
    let query = ok(&base);
    assert_eq!(
        query,
        format!("URL: https://a.example/demo/master.m3u8?__token__={token}\n")
    );
}

#[test]
fn bunny_hmac_and_sha256_forms() {
    // BunnyWay/BunnyCDN.TokenAuthentication go/token_test.go (TestDirectoryAllowed) and the C# library's
    // SHA-256-era test (WithIPAddressAllowed).
    let out = ok(&[
        "--scheme",
        "bunny",
        "--key",
        "SecurityKey",
        "--url",
        "https://token-tester.b-cdn.net/abc/",
        "--delivery",
        "path",
        "--expires",
        "1598024587",
    ]);
    assert_eq!(
        out,
        "URL: https://token-tester.b-cdn.net/bcdn_token=HS256-bTMv4RVOkjx2UXLfVDl-JIygaxfSIQP8UCnCy7CILuY&expires=1598024587/abc/\n"
    );
    let out = ok(&[
        "--scheme",
        "bunny",
        "--key",
        "SecurityKey",
        "--url",
        "https://token-tester.b-cdn.net/300kb.jpg",
        "--form",
        "sha256",
        "--ip",
        "1.2.3.4",
        "--expires",
        "1598024587",
    ]);
    assert_eq!(
        out,
        "URL: https://token-tester.b-cdn.net/300kb.jpg?token=xUWMwsZcXfzxMvTTFiKAN6if1WBhDZV1Shjt_GOrjG0&expires=1598024587\n"
    );
}

#[test]
fn nginx_documentation_example_with_key_from_environment() {
    // nginx.org ngx_http_secure_link_module example; the key comes from USHER_SIGN_KEY here.
    let out = Command::new(env!("CARGO_BIN_EXE_usher"))
        .args([
            "sign-url",
            "--scheme",
            "nginx",
            "--path",
            "/s/link",
            "--ip",
            "127.0.0.1",
            "--expression",
            "$secure_link_expires$uri$remote_addr $secret",
            "--expires",
            "2147483647",
        ])
        .env("USHER_SIGN_KEY", "secret")
        .output()
        .expect("run usher sign-url");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "URL: /s/link?md5=_e4Nc3iduzkWRm01TBBNYw&expires=2147483647\n"
    );
}

#[test]
fn usher_grant_from_a_key_file() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("grant.key");
    std::fs::write(&key_file, "usher-test-grant-key-0123456789abcdef\n").unwrap();
    let out = ok(&[
        "--scheme",
        "usher",
        "--key-file",
        key_file.to_str().unwrap(),
        "--url",
        "https://usher.example/demo/master.m3u8",
        "--session",
        "s_0123456789abcdef0123456789abcdef",
        "--expires",
        "1700003600",
        "--json",
    ]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v["url"],
        "https://usher.example/o/MXxzXzAxMjM0NTY3ODlhYmNkZWYwMTIzNDU2Nzg5YWJjZGVmfDE3MDAwMDM2MDB8ZGVtby8.HAAiy4vXYCWyvVr4pFOjaV3kusEtlsO_0tIUn5_EYKM/demo/master.m3u8"
    );
}

#[test]
fn refusals_fail_cleanly_without_echoing_the_key() {
    let cases: [&[&str]; 5] = [
        &[
            "--scheme",
            "akamai",
            "--key",
            "not-hex-secret",
            "--path",
            "/a",
            "--expires",
            "10",
        ],
        &[
            "--scheme",
            "google",
            "--key-name",
            "k",
            "--key",
            "nZtRohdNF9m3cKM24IcK4w==",
            "--path",
            "/a",
            "--expires",
            "10",
        ],
        &[
            "--scheme",
            "bunny",
            "--key",
            "SecurityKey",
            "--path",
            "/a",
            "--expires",
            "soon",
        ],
        &[
            "--scheme",
            "cloudfront",
            "--key=-----BEGIN RSA PRIVATE KEY-----\nnot-a-key\n-----END RSA PRIVATE KEY-----",
            "--key-pair-id",
            "K1",
            "--url",
            "https://h/a",
            "--expires",
            "10",
        ],
        &[
            "--scheme",
            "usher",
            "--key",
            "grant-secret-xyz",
            "--path",
            "/demo/a.ts",
            "--expires",
            "10",
        ],
    ];
    for args in cases {
        let out = usher(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}");
        assert!(stderr.starts_with("usher: error:"), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        for secret in [
            "not-hex-secret",
            "nZtRohdNF9m3cKM24IcK4w",
            "not-a-key",
            "grant-secret-xyz",
        ] {
            assert!(
                !stderr.contains(secret),
                "{args:?} echoed its key: {stderr}"
            );
        }
    }
}
