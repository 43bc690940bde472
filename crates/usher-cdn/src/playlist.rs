//! The HLS master playlist as one session gets it: every rendition once per CDN pathway, each relative URI
//! signed for its pathway, with `#EXT-X-CONTENT-STEERING` naming the steering manifest; and the
//! `EXT-X-KEY` URIs of any playlist pointed at Usher's key endpoint ([`point_keys_at`]).
//!
//! The rewriter knows nothing of sessions, grants or the CDN pool: it takes the pathways through the
//! small [`Pathway`] trait (an id, and "sign this relative URI"), so whatever holds the signers (the
//! server's delivery) lends them for one playlist.

/// One CDN pathway as the rewriter sees it.
pub trait Pathway {
    /// The pathway's id: its `PATHWAY-ID`, and the suffix of its copies of the rendition groups.
    fn id(&self) -> &str;

    /// The URI a player fetches `uri` (relative to the master playlist's folder, as the playlist names
    /// it) at on this pathway, signed; `None` when it cannot be signed, which leaves that rendition out
    /// of this pathway.
    fn sign(&self, uri: &str) -> Option<String>;
}

impl<P: Pathway + ?Sized> Pathway for &P {
    fn id(&self) -> &str {
        (**self).id()
    }

    fn sign(&self, uri: &str) -> Option<String> {
        (**self).sign(uri)
    }
}

/// The value of an attribute in an HLS tag line (`NAME="v"` or `NAME=v`): its start, end and text.
fn attribute<'a>(line: &'a str, name: &str) -> Option<(usize, usize, &'a str)> {
    let mut from = 0;
    while let Some(i) = line[from..].find(name) {
        let start = from + i;
        let before = line[..start].chars().last();
        let after = &line[start + name.len()..];
        if matches!(before, Some(':' | ',')) && after.starts_with('=') {
            let vstart = start + name.len() + 1;
            let rest = &line[vstart..];
            let vend = if let Some(q) = rest.strip_prefix('"') {
                vstart + 1 + q.find('"')? + 1
            } else {
                vstart + rest.find(',').unwrap_or(rest.len())
            };
            return Some((vstart, vend, &line[vstart..vend]));
        }
        from = start + name.len();
    }
    None
}

/// Replaces the value of `name` in `line`, if present.
fn replace_attribute(line: &str, name: &str, f: impl Fn(&str) -> Option<String>) -> String {
    match attribute(line, name) {
        Some((s, e, v)) => match f(v) {
            Some(new) => format!("{}{}{}", &line[..s], new, &line[e..]),
            None => line.to_owned(),
        },
        None => line.to_owned(),
    }
}

/// An attribute value without its quotes.
fn quoted(v: &str) -> &str {
    v.strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(v)
}

/// Rewrites a master playlist for `pathways` (best first): each variant stream once per pathway with its
/// `PATHWAY-ID`, rendition groups duplicated per pathway (`GROUP-ID` suffixed `-<pathway>`), every relative
/// URI signed for its pathway (absolute ones and URLs are kept as they are), and
/// `#EXT-X-CONTENT-STEERING` naming `steering_uri` and the pathway `first`.
pub fn personalize<P: Pathway>(
    master: &str,
    pathways: &[P],
    first: &str,
    steering_uri: &str,
) -> String {
    let lines: Vec<&str> = master.lines().map(str::trim_end).collect();
    let is_global = |l: &str| {
        l.starts_with("#EXTM3U")
            || l.starts_with("#EXT-X-VERSION")
            || l.starts_with("#EXT-X-INDEPENDENT-SEGMENTS")
            || l.starts_with("#EXT-X-START")
            || l.starts_with("#EXT-X-DEFINE")
            || l.starts_with("#EXT-X-SESSION-")
    };
    let mut out = String::with_capacity(master.len() * (pathways.len() + 1));
    for l in lines.iter().filter(|l| is_global(l)) {
        out.push_str(l);
        out.push('\n');
    }
    out.push_str(&format!(
        "#EXT-X-CONTENT-STEERING:SERVER-URI=\"{steering_uri}\",PATHWAY-ID=\"{first}\"\n"
    ));
    let sign = |p: &P, uri: &str| -> Option<String> {
        if uri.contains("://") || uri.starts_with('/') {
            Some(uri.to_owned())
        } else {
            p.sign(uri)
        }
    };
    for p in pathways {
        let id = p.id();
        let group = |v: &str| Some(format!("\"{}-{id}\"", quoted(v)));
        let mut i = 0;
        while i < lines.len() {
            let line = lines[i];
            i += 1;
            if line.is_empty() || is_global(line) || line.starts_with("#EXT-X-CONTENT-STEERING") {
                continue;
            }
            if line.starts_with("#EXT-X-MEDIA:") {
                let mut l = replace_attribute(line, "GROUP-ID", group);
                if let Some((_, _, v)) = attribute(&l, "URI") {
                    let Some(u) = sign(p, quoted(v)) else {
                        continue;
                    };
                    l = replace_attribute(&l, "URI", |_| Some(format!("\"{u}\"")));
                }
                out.push_str(&l);
                out.push('\n');
            } else if line.starts_with("#EXT-X-STREAM-INF:") {
                let uri = lines.get(i).copied().unwrap_or_default();
                i += 1;
                let Some(u) = sign(p, uri) else { continue };
                let mut l = line.to_owned();
                for g in ["AUDIO", "VIDEO", "SUBTITLES"] {
                    l = replace_attribute(&l, g, group);
                }
                out.push_str(&l);
                out.push_str(&format!(",PATHWAY-ID=\"{id}\"\n{u}\n"));
            } else if line.starts_with("#EXT-X-I-FRAME-STREAM-INF:") {
                let Some((_, _, v)) = attribute(line, "URI") else {
                    continue;
                };
                let Some(u) = sign(p, quoted(v)) else {
                    continue;
                };
                let l = replace_attribute(line, "URI", |_| Some(format!("\"{u}\"")));
                let l = replace_attribute(&l, "VIDEO", group);
                out.push_str(&l);
                out.push_str(&format!(",PATHWAY-ID=\"{id}\"\n"));
            } else if line.starts_with('#') && !line.starts_with("#EXT") {
                // a comment: once is enough
            } else if line.starts_with('#') {
                // another tag that applies to the next variant (none in practice): keep per pathway
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

/// The path under which Usher answers content keys: a key URI is `{base}/keys/{key id}`.
pub const KEY_PATH: &str = "/keys/";

/// The content key id an `EXT-X-KEY` URI names, when it is one of Usher's (`…/keys/ck_…`, whatever its
/// host, query or fragment).
fn usher_key_id(uri: &str) -> Option<&str> {
    let at = uri.rfind(KEY_PATH)?;
    let rest = &uri[at + KEY_PATH.len()..];
    let id = &rest[..rest.find(['?', '#']).unwrap_or(rest.len())];
    usher_core::ids::ContentKeyId::parse(id).ok().map(|_| id)
}

/// Points every `#EXT-X-KEY` and `#EXT-X-SESSION-KEY` URI that names one of Usher's content keys at
/// `{key_base}/keys/{id}` (with `?{query}` when given), whatever host the packager wrote: key requests
/// always go to Usher, never to a CDN. Other key URIs (another key server, `METHOD=NONE`) and every other
/// line are kept as they are; `None` when nothing changed.
pub fn point_keys_at(playlist: &str, key_base: &str, query: Option<&str>) -> Option<String> {
    if !playlist.contains("#EXT-X-KEY:") && !playlist.contains("#EXT-X-SESSION-KEY:") {
        return None;
    }
    let mut out = String::with_capacity(playlist.len() + 256);
    let mut changed = false;
    for line in playlist.split_inclusive('\n') {
        let body = line.trim_end_matches(['\r', '\n']);
        let end = &line[body.len()..];
        if body.starts_with("#EXT-X-KEY:") || body.starts_with("#EXT-X-SESSION-KEY:") {
            let new = replace_attribute(body, "URI", |v| {
                let id = usher_key_id(quoted(v))?;
                Some(match query {
                    Some(q) => format!("\"{key_base}{KEY_PATH}{id}?{q}\""),
                    None => format!("\"{key_base}{KEY_PATH}{id}\""),
                })
            });
            changed |= new != body;
            out.push_str(&new);
        } else {
            out.push_str(body);
        }
        out.push_str(end);
    }
    changed.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Scheme, SignRequest, Signer};

    /// Usher's origin: the grant token in the path.
    struct Origin(&'static str);

    impl Pathway for Origin {
        fn id(&self) -> &str {
            "origin"
        }

        fn sign(&self, uri: &str) -> Option<String> {
            Some(format!("/o/{}/demo/{uri}", self.0))
        }
    }

    /// A CDN signing each URI with nginx `secure_link` over the stream folder.
    struct Nginx(&'static str, Signer);

    impl Pathway for Nginx {
        fn id(&self) -> &str {
            self.0
        }

        fn sign(&self, uri: &str) -> Option<String> {
            let req = SignRequest::url(format!("http://a.example/demo/{uri}"), 2_000_000_000)
                .with_prefix("/demo/");
            self.1.sign(&req).ok().map(|s| s.url)
        }
    }

    fn nginx(id: &'static str) -> Nginx {
        let scheme: Scheme = serde_json::from_value(serde_json::json!({
            "scheme": "nginx", "secret": "s3cret", "delivery": "path", "prefix_variable": "prefix",
            "expression": "$secure_link_expires$prefix $secret"
        }))
        .unwrap();
        Nginx(id, scheme.signer().unwrap())
    }

    #[test]
    fn every_variant_once_per_pathway_best_first() {
        let master = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud\",NAME=\"en\",URI=\"audio/index.m3u8\"\n#EXT-X-STREAM-INF:BANDWIDTH=1,AUDIO=\"aud\",CODECS=\"avc1.4d401e,mp4a.40.2\"\n360p/index.m3u8\n#EXT-X-STREAM-INF:BANDWIDTH=2\nhttps://x.example/abs.m3u8\n";
        let pathways: [&dyn Pathway; 2] = [&nginx("cdn-a"), &Origin("G")];
        let out = personalize(master, &pathways, "cdn-a", "/hls/s/steering.json");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            &lines[..3],
            ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-INDEPENDENT-SEGMENTS"]
        );
        assert_eq!(
            lines[3],
            "#EXT-X-CONTENT-STEERING:SERVER-URI=\"/hls/s/steering.json\",PATHWAY-ID=\"cdn-a\""
        );
        assert!(out.contains("GROUP-ID=\"aud-cdn-a\""));
        assert!(out.contains("GROUP-ID=\"aud-origin\""));
        assert!(out.contains("AUDIO=\"aud-origin\",CODECS=\"avc1.4d401e,mp4a.40.2\",PATHWAY-ID=\"origin\"\n/o/G/demo/360p/index.m3u8\n"));
        assert!(out.contains("URI=\"/o/G/demo/audio/index.m3u8\""));
        let a = out.find("PATHWAY-ID=\"cdn-a\"\nhttp://a.example/").unwrap();
        let o = out.find("PATHWAY-ID=\"origin\"").unwrap();
        assert!(a < o, "best first:\n{out}");
        assert_eq!(out.matches("PATHWAY-ID=\"cdn-a\"").count(), 3);
        assert_eq!(out.matches("\nhttps://x.example/abs.m3u8\n").count(), 2);
        assert!(!out.contains("s3cret"));
    }

    /// A pathway that signs nothing.
    struct Refusing;

    impl Pathway for Refusing {
        fn id(&self) -> &str {
            "refusing"
        }

        fn sign(&self, _: &str) -> Option<String> {
            None
        }
    }

    #[test]
    fn a_uri_a_pathway_cannot_sign_leaves_its_rendition_out() {
        let master = "#EXTM3U\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud\",URI=\"audio/index.m3u8\"\n#EXT-X-STREAM-INF:BANDWIDTH=1\n360p/index.m3u8\n#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=1,URI=\"iframes.m3u8\"\n";
        let out = personalize(master, &[Refusing], "refusing", "/s.json");
        assert_eq!(
            out,
            "#EXTM3U\n#EXT-X-CONTENT-STEERING:SERVER-URI=\"/s.json\",PATHWAY-ID=\"refusing\"\n"
        );
    }

    #[test]
    fn attributes_quoted_or_not_and_only_whole_names() {
        let line = "#EXT-X-STREAM-INF:BANDWIDTH=1,AVERAGE-BANDWIDTH=2,AUDIO=\"a,b\",CODECS=x";
        assert_eq!(attribute(line, "BANDWIDTH").map(|a| a.2), Some("1"));
        assert_eq!(attribute(line, "AUDIO").map(|a| a.2), Some("\"a,b\""));
        assert_eq!(attribute(line, "CODECS").map(|a| a.2), Some("x"));
        assert_eq!(attribute(line, "VIDEO"), None);
        assert_eq!(quoted("\"a,b\""), "a,b");
        assert_eq!(
            replace_attribute(line, "CODECS", |v| Some(format!("{v}y"))),
            "#EXT-X-STREAM-INF:BANDWIDTH=1,AVERAGE-BANDWIDTH=2,AUDIO=\"a,b\",CODECS=xy"
        );
    }

    #[test]
    fn key_uris_point_at_usher_whatever_host_the_packager_wrote() {
        let id = "ck_0123456789abcdef0123456789abcdef";
        let media = format!(
            "#EXTM3U\r\n#EXT-X-TARGETDURATION:2\r\n#EXT-X-KEY:METHOD=AES-128,URI=\"https://cdn.example/keys/{id}\",IV=0x01\r\n#EXTINF:2,\r\nseg_000.ts\r\n#EXT-X-KEY:METHOD=AES-128,URI=\"https://other.example/key.bin\"\r\n#EXTINF:2,\r\nseg_001.ts\r\n#EXT-X-KEY:METHOD=NONE\r\n"
        );
        let out = point_keys_at(&media, "https://watch.example", Some("usher_grant=G")).unwrap();
        assert!(out.contains(&format!(
            "#EXT-X-KEY:METHOD=AES-128,URI=\"https://watch.example/keys/{id}?usher_grant=G\",IV=0x01\r\n"
        )), "{out}");
        // another key server's URI, the rest of the playlist and its line ends stay
        assert!(out.contains("URI=\"https://other.example/key.bin\"\r\n"));
        assert_eq!(out.lines().count(), media.lines().count());
        assert!(out.ends_with("#EXT-X-KEY:METHOD=NONE\r\n"));
        let plain = point_keys_at(&media, "http://u", None).unwrap();
        assert!(plain.contains(&format!("URI=\"http://u/keys/{id}\"")));
        // nothing to do
        assert_eq!(point_keys_at("#EXTM3U\nseg.ts\n", "http://u", None), None);
        assert_eq!(
            point_keys_at(
                "#EXT-X-KEY:METHOD=AES-128,URI=\"/keys/ck_short\"\n",
                "http://u",
                None
            ),
            None
        );
    }
}
