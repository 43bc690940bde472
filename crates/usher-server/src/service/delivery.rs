//! Multi-CDN delivery: the pool as the server sees it (the stored CDNs plus Usher's own origin), a
//! session's grants (one per enabled CDN, signed with that CDN's scheme), the CDN order, and the URI of a
//! rendition on each pathway.
//!
//! The pool is prepared once per change of the store's CDN generation ([`cdn_pool`]), and every write to a
//! CDN moves that generation, so disabling a CDN takes effect at once for new playlists, steering manifests
//! and heartbeats. Signing keys never leave this module except inside the
//! signed URLs, cookies and headers a viewer needs; failures are logged with the CDN's id only.

use std::net::IpAddr;
use std::sync::Arc;

use usher_cdn::{AddressBinding, Capabilities, SignRequest, Signer};
use usher_core::cdn::{Cdn, delivery_order};
use usher_core::clock::UnixMs;
use usher_core::grant::{ClientNetwork, Grant};
use usher_core::ids::{CdnId, SessionId};
use usher_core::show::Show;

pub use cdn_pool::{DEFAULT_PRIORITY, PoolCache, PreparedPool, default_origin};

use crate::service::Result;
use crate::state::AppState;

pub mod cdn_pool;

/// Every member of the pool by id, the origin included (its stored record, or the default).
///
/// # Errors
/// Store failures.
pub async fn pool(state: &AppState) -> Result<Vec<Cdn>> {
    cdn_pool::members(&*state.store).await
}

/// The current pool, prepared (kept in the state's [`PoolCache`] while unchanged).
///
/// # Errors
/// Store failures.
pub async fn prepared_pool(state: &AppState) -> Result<Arc<PreparedPool>> {
    state.pool_cache.prepared(&*state.store).await
}

/// The query parameter in which Usher's origin also takes a grant (it wins over the one in the path), so
/// a steering clone can hand players a fresh grant for URIs they already hold.
pub const ORIGIN_GRANT_PARAM: &str = "usher_grant";

/// Who a signature is for, besides the object and its expiry (each scheme takes what it can bind).
#[derive(Debug, Default, Clone)]
pub struct Binding {
    /// Start of validity, Unix seconds.
    pub starts_at: Option<i64>,
    /// The viewer's address.
    pub client_ip: Option<std::net::IpAddr>,
    /// Bind the network of this many leading bits around `client_ip` (schemes that take a network:
    /// CloudFront's IPv4 `AWS:SourceIp`, Cloudflare Stream's `ip.src`) rather than the address.
    pub client_network_bits: Option<u8>,
    /// The session.
    pub session_id: Option<String>,
}

/// Signs the object `path` (relative to `cdn`'s base URL; for Usher's origin, the server's public URL)
/// with `cdn`'s scheme, covering the folder `folder` (relative, `demo/`; empty: the base) when the scheme
/// signs prefixes, until `expires_s`, binding what the scheme can bind of `binding`. The signer is the
/// pool's own, parsed once per change of the pool ([`cdn_pool`]), so what the health prober and the
/// admin's "test a signed URL" get is signed exactly as a viewer's grant.
///
/// # Errors
/// An unusable signing configuration (named without its values), or the scheme's refusal.
pub async fn sign_object(
    state: &AppState,
    cdn: &Cdn,
    path: &str,
    folder: &str,
    expires_s: i64,
    binding: &Binding,
) -> std::result::Result<usher_cdn::Signed, String> {
    let pool = prepared_pool(state).await.map_err(|e| e.to_string())?;
    let (signer, caps) = match pool.signers.get(&cdn.id) {
        Some(Ok((signer, caps))) => (Arc::clone(signer), *caps),
        Some(Err(e)) => return Err(format!("signing: {e}")),
        None => return Err("signing: not a member of the pool".to_owned()),
    };
    // the origin's grant signs the path (`/o/{grant}/{path}`), served at the server's public URL
    let (base, served_at) = if cdn.id.is_origin() {
        ("", Some(state.base_url.trim_end_matches('/')))
    } else {
        (cdn.base_url.as_str(), None)
    };
    let mut req = if served_at.is_some() {
        SignRequest::path(format!("/{path}"), expires_s)
    } else {
        SignRequest::url(format!("{base}/{path}"), expires_s)
    };
    if caps.prefix {
        req = req.with_prefix(format!("{}/{folder}", base_path(base)));
    }
    if let (Some(t), true) = (binding.starts_at, caps.starts_at) {
        req = req.starting_at(t);
    }
    if let (Some(ip), true) = (binding.client_ip, caps.client_ip()) {
        req = match binding.client_network_bits {
            Some(bits) => req.for_client_network(ip, bits),
            None => req.for_client(ip),
        };
    }
    if let (Some(s), true) = (&binding.session_id, caps.session) {
        req = req.for_session(s.clone());
    }
    let mut signed = signer.sign(&req).map_err(|e| format!("signing: {e}"))?;
    if let Some(at) = served_at {
        signed.url = format!("{at}{}", signed.url);
    }
    Ok(signed)
}

/// The path part of a base URL (`https://h/x` → `/x`, `https://h` → ``, `/o` → `/o`).
fn base_path(base_url: &str) -> &str {
    match base_url.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("", |i| &rest[i..]),
        None => base_url,
    }
}

enum PathwaySigner {
    /// Usher's origin: the grant token goes in the path.
    Origin { token: String },
    /// A CDN: each URI is signed with its scheme.
    Cdn {
        signer: Arc<Signer>,
        caps: Capabilities,
        base_url: String,
    },
}

/// One CDN pathway of a session.
pub struct Pathway {
    /// The CDN (also the `PATHWAY-ID`).
    pub id: CdnId,
    /// The query parameters that carry this pathway's fresh grant, when its grant can ride in the query
    /// (Usher's origin, CDN schemes that sign a folder into a query string): content steering hands them
    /// to players as a `PATHWAY-CLONES` entry.
    pub grant_params: Vec<(String, String)>,
    /// Whether the CDN is enabled and not unhealthy.
    pub in_service: bool,
    signer: PathwaySigner,
    prefix: String,
    expires_s: i64,
    session: SessionId,
    /// What the CDN's signatures bind of the viewer's address ([`cdn_client_binding`]).
    client: Option<ClientBinding>,
}

/// What a CDN's signature binds of the viewer's address: the address, and the prefix length of the
/// network around it for schemes that take any network (`None`: what the scheme binds by itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ClientBinding {
    address: IpAddr,
    network_bits: Option<u8>,
}

/// What a CDN whose scheme can do `caps` should bind of the viewer at `client`, when grants are bound to
/// the network of `bits` leading bits around the viewer's address (`http.grant_address_prefix_v4`/`_v6`;
/// 0: none). A scheme that takes any network binds exactly that one (CloudFront's IPv4 CIDR); a scheme that
/// binds a fixed network binds it only when it is no narrower than the setting's, so a viewer moving inside
/// the setting's network is never cut off by the CDN while the origin would serve it (Akamai, nginx and
/// Bunny's IPv4 bind the exact address: only at /32 or /128; Bunny's IPv6 /64: at /64 or longer). A CDN
/// whose own configuration demands the address (nginx with `$remote_addr`) always gets it exactly:
/// without it that CDN could not sign at all.
fn cdn_client_binding(caps: &Capabilities, client: IpAddr, bits: u8) -> Option<ClientBinding> {
    let address = client.to_canonical();
    if caps.client_ip_required {
        return Some(ClientBinding {
            address,
            network_bits: None,
        });
    }
    if bits == 0 {
        return None;
    }
    match caps.address_binding(address) {
        AddressBinding::None => None,
        AddressBinding::Network => Some(ClientBinding {
            address,
            network_bits: Some(bits),
        }),
        AddressBinding::Fixed(fixed) => (fixed <= bits).then_some(ClientBinding {
            address,
            network_bits: None,
        }),
    }
}

impl Pathway {
    /// Whether one signature covers the whole stream folder (so a player may reuse it for every URI).
    fn covers_prefix(&self) -> bool {
        match &self.signer {
            PathwaySigner::Origin { .. } => true,
            PathwaySigner::Cdn { caps, .. } => caps.prefix,
        }
    }

    fn request(&self, url: String) -> SignRequest {
        let mut req = SignRequest::url(url, self.expires_s);
        if let PathwaySigner::Cdn { caps, .. } = &self.signer {
            if caps.prefix {
                req = req.with_prefix(self.prefix.clone());
            }
            if caps.session {
                req = req.for_session(self.session.as_str());
            }
            req = match self.client {
                Some(ClientBinding {
                    address,
                    network_bits: Some(bits),
                }) => req.for_client_network(address, bits),
                Some(ClientBinding {
                    address,
                    network_bits: None,
                }) => req.for_client(address),
                None => req,
            };
        }
        req
    }

    /// The URI of `rel` (a playlist's relative URI) in the stream folder `dir` on this pathway, or `None`
    /// when the CDN's scheme refuses to sign it.
    pub fn uri(&self, dir: &str, rel: &str) -> Option<String> {
        match &self.signer {
            PathwaySigner::Origin { token } => Some(format!("/o/{token}/{dir}/{rel}")),
            PathwaySigner::Cdn {
                signer, base_url, ..
            } => match signer.sign(&self.request(format!("{base_url}/{dir}/{rel}"))) {
                Ok(s) => Some(s.url),
                Err(e) => {
                    tracing::warn!(cdn.id = %self.id, error = %e, "signing a rendition URI failed");
                    None
                }
            },
        }
    }
}

/// A session's permission to fetch its show's media from one CDN (the admit and heartbeat answers
/// carry one per pathway).
#[derive(Debug, Clone)]
pub enum PathwayGrant {
    /// Usher's origin: the grant token goes in the path after `/o/`.
    Origin {
        /// `origin`.
        cdn: CdnId,
        /// The grant.
        token: String,
        /// Its expiry, whole seconds.
        expires_at: UnixMs,
    },
    /// A CDN, signed with its own scheme.
    Cdn {
        /// The CDN.
        cdn: CdnId,
        /// Its base URL, without a trailing `/`.
        base_url: String,
        /// Its signing scheme.
        scheme: Option<String>,
        /// The signed master playlist URL, with the cookies and headers the viewer needs.
        signed: usher_cdn::Signed,
        /// A folder-wide signature riding in the path (`None` otherwise).
        token: Option<String>,
        /// A folder-wide signature riding in the query (`None` otherwise).
        query: Option<String>,
        /// Its expiry, whole seconds.
        expires_at: UnixMs,
    },
}

/// A session's delivery: its pathways best first, grants and CDN order.
pub struct Delivery {
    /// Enabled CDNs that could sign, best first (healthy before unhealthy).
    pub pathways: Vec<Pathway>,
    /// The grants of those pathways, in the same order.
    pub grants: Vec<PathwayGrant>,
    /// The CDN ids to use, best first: enabled and healthy ones (all enabled ones when none is healthy).
    pub cdn_order: Vec<String>,
}

/// The pathways of the last prepared pool in delivery order (in service first), without reading the store:
/// what a steering reload can still name while the store is unreachable.
pub fn last_known_order(state: &AppState) -> Vec<String> {
    state
        .pool_cache
        .last()
        .map(|pool| {
            delivery_order(&pool.cdns)
                .iter()
                .map(|c| c.id.to_string())
                .collect()
        })
        .unwrap_or_else(|| vec![CdnId::origin().to_string()])
}

/// Builds the delivery of `session` for `show` at `now` from the current pool, for the viewer at
/// `client`: the origin's grant is bound to the network `http.grant_address_prefix_v4`/`_v6` around it,
/// and each CDN's signatures to what its scheme can express of that network ([`cdn_client_binding`];
/// DESIGN.md "Session integrity").
///
/// # Errors
/// Store failures.
pub async fn delivery(
    state: &AppState,
    session: &SessionId,
    show: &Show,
    now: UnixMs,
    client: IpAddr,
) -> Result<Delivery> {
    let bits = state.config.http.grant_address_prefix(client);
    // 0: the grant carries no address (format 1), as before address binding existed
    let origin_client = (bits > 0).then(|| ClientNetwork::new(client, bits));
    let pool = prepared_pool(state).await?;
    let members = serving(&pool.cdns, show, state.config.cdn_probe.exclude_unhealthy);
    let expires_at = now.plus_secs(show.grant_ttl_s);
    let expires_s = expires_at.0.div_euclid(1000);
    let expires_whole = UnixMs(expires_s * 1000);
    let mut pathways = Vec::with_capacity(members.len());
    let mut grants = Vec::with_capacity(members.len());
    let prefix_rel = format!("{}/", show.stream_path);
    for cdn in members {
        if cdn.id.is_origin() {
            let token = state.grants.sign(&Grant {
                session: session.clone(),
                expires_at,
                prefix: prefix_rel.clone(),
                client: origin_client,
            });
            grants.push(PathwayGrant::Origin {
                cdn: cdn.id.clone(),
                token: token.clone(),
                expires_at: expires_whole,
            });
            pathways.push(Pathway {
                id: cdn.id.clone(),
                grant_params: vec![(ORIGIN_GRANT_PARAM.to_owned(), token.clone())],
                in_service: cdn.in_service(),
                signer: PathwaySigner::Origin { token },
                prefix: String::new(),
                expires_s,
                session: session.clone(),
                client: None,
            });
            continue;
        }
        let (signer, caps) = match pool.signers.get(&cdn.id) {
            Some(Ok((signer, caps))) => (Arc::clone(signer), *caps),
            Some(Err(e)) => {
                tracing::warn!(cdn.id = %cdn.id, error = %e, "CDN signing configuration unusable");
                continue;
            }
            None => continue,
        };
        let mut pathway = Pathway {
            id: cdn.id.clone(),
            grant_params: Vec::new(),
            in_service: cdn.in_service(),
            prefix: format!("{}/{prefix_rel}", base_path(&cdn.base_url)),
            signer: PathwaySigner::Cdn {
                caps,
                signer,
                base_url: cdn.base_url.clone(),
            },
            expires_s,
            session: session.clone(),
            client: cdn_client_binding(&caps, client, bits),
        };
        let PathwaySigner::Cdn {
            signer, base_url, ..
        } = &pathway.signer
        else {
            continue;
        };
        let master = format!("{base_url}/{}/master.m3u8", show.stream_path);
        match signer.sign(&pathway.request(master.clone())) {
            Ok(signed) => {
                let (token, query) = if pathway.covers_prefix() {
                    grant_parts(&master, base_url, &signed.url)
                } else {
                    (None, None)
                };
                let params: Vec<(String, String)> = query
                    .as_deref()
                    .unwrap_or_default()
                    .split('&')
                    .filter_map(|kv| kv.split_once('='))
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect();
                grants.push(PathwayGrant::Cdn {
                    cdn: cdn.id.clone(),
                    base_url: base_url.clone(),
                    scheme: cdn.signing.scheme().map(str::to_owned),
                    signed,
                    token,
                    query,
                    expires_at: expires_whole,
                });
                pathway.grant_params = params;
                pathways.push(pathway);
            }
            Err(e) => {
                tracing::warn!(cdn.id = %cdn.id, error = %e, "signing a grant failed");
            }
        }
    }
    let mut cdn_order: Vec<String> = pathways
        .iter()
        .filter(|p| p.in_service)
        .map(|p| p.id.to_string())
        .collect();
    if cdn_order.is_empty() {
        cdn_order = pathways.iter().map(|p| p.id.to_string()).collect();
    }
    Ok(Delivery {
        pathways,
        grants,
        cdn_order,
    })
}

/// The CDNs that deliver `show`, best first: the enabled members of its CDN set (every enabled CDN when
/// the set is empty, or when none of its members is enabled, so a show is never left without delivery),
/// without unhealthy ones when `exclude_unhealthy` (unless that leaves none).
pub fn serving<'a>(pool: &'a [Cdn], show: &Show, exclude_unhealthy: bool) -> Vec<&'a Cdn> {
    let mut order = delivery_order(pool);
    if !show.cdns.is_empty() && order.iter().any(|c| show.cdns.contains(&c.id)) {
        order.retain(|c| show.cdns.contains(&c.id));
    }
    if exclude_unhealthy && order.iter().any(|c| c.in_service()) {
        order.retain(|c| c.in_service());
    }
    order
}

/// How a folder-wide signature rides in a signed URL, found by comparing it with the plain one: a
/// path segment right after the base URL (`token`, as Usher's origin carries its grant), or a query
/// string (`query`). Players put it into every URI under `base_url`.
fn grant_parts(plain: &str, base_url: &str, signed: &str) -> (Option<String>, Option<String>) {
    if let Some(query) = signed.strip_prefix(plain).and_then(|q| q.strip_prefix('?')) {
        return (None, Some(query.to_owned()));
    }
    let rest = &plain[base_url.len()..];
    if let Some(token) = signed
        .strip_prefix(base_url)
        .and_then(|s| s.strip_prefix('/'))
        .and_then(|s| s.strip_suffix(rest))
        .filter(|t| !t.is_empty() && !t.contains('/'))
    {
        return (Some(token.to_owned()), None);
    }
    (None, None)
}

/// One of a session's pathways lent to the playlist rewriter, for the stream folder `dir`.
struct InStream<'a> {
    pathway: &'a Pathway,
    dir: &'a str,
}

impl usher_cdn::playlist::Pathway for InStream<'_> {
    fn id(&self) -> &str {
        self.pathway.id.as_str()
    }

    fn sign(&self, uri: &str) -> Option<String> {
        self.pathway.uri(self.dir, uri)
    }
}

/// Rewrites a master playlist for `pathways` (best first) with [`usher_cdn::playlist::personalize`]:
/// each variant stream once per pathway, every relative URI signed for its pathway in the stream folder
/// `dir`, and `#EXT-X-CONTENT-STEERING` naming `steering_uri` and the first pathway.
pub fn personalize_pathways(
    master: &str,
    dir: &str,
    pathways: &[Pathway],
    first: &str,
    steering_uri: &str,
) -> String {
    let lent: Vec<InStream<'_>> = pathways
        .iter()
        .map(|pathway| InStream { pathway, dir })
        .collect();
    usher_cdn::playlist::personalize(master, &lent, first, steering_uri)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use usher_cdn::Scheme;

    fn origin(token: &str) -> Pathway {
        Pathway {
            id: CdnId::origin(),
            grant_params: Vec::new(),
            in_service: true,
            signer: PathwaySigner::Origin {
                token: token.into(),
            },
            prefix: String::new(),
            expires_s: 2_000_000_000,
            session: SessionId::generate(),
            client: None,
        }
    }

    fn nginx(id: &str) -> Pathway {
        let scheme: Scheme = serde_json::from_value(json!({
            "scheme": "nginx", "secret": "s3cret", "delivery": "path", "prefix_variable": "prefix",
            "expression": "$secure_link_expires$prefix $secret"
        }))
        .unwrap();
        let signer = scheme.signer().unwrap();
        Pathway {
            id: CdnId::parse(id).unwrap(),
            grant_params: Vec::new(),
            in_service: true,
            signer: PathwaySigner::Cdn {
                caps: signer.capabilities(),
                signer: Arc::new(signer),
                base_url: "http://a.example".into(),
            },
            prefix: "/demo/".into(),
            expires_s: 2_000_000_000,
            session: SessionId::generate(),
            client: None,
        }
    }

    /// The rewriter's own cases are in `usher_cdn::playlist`; here, that each pathway signs in the
    /// stream folder, by its own scheme.
    #[test]
    fn each_pathway_signs_in_the_stream_folder() {
        let master = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n360p/index.m3u8\n";
        let out = personalize_pathways(
            master,
            "demo",
            &[nginx("cdn-a"), origin("G")],
            "cdn-a",
            "/hls/s/steering.json",
        );
        assert!(out.contains("PATHWAY-ID=\"origin\"\n/o/G/demo/360p/index.m3u8\n"));
        let a = out.find("PATHWAY-ID=\"cdn-a\"\nhttp://a.example/").unwrap();
        let line = out[a..].lines().nth(1).unwrap();
        assert!(line.ends_with("/demo/360p/index.m3u8"), "{line}");
        assert!(!out.contains("s3cret"));
    }

    fn caps_of(config: serde_json::Value) -> Capabilities {
        serde_json::from_value::<Scheme>(config)
            .unwrap()
            .signer()
            .unwrap()
            .capabilities()
    }

    #[test]
    fn cdns_bind_the_viewers_network_only_as_far_as_their_scheme_can() {
        let pem = include_str!("../../../usher-cdn/testdata/aws-sdk-js-v3-test-key.pem");
        let akamai =
            caps_of(json!({"scheme": "akamai", "key": "aabbccddeeff00112233445566778899"}));
        let cloudfront = caps_of(
            json!({"scheme": "cloudfront", "key_pair_id": "APKAEIBAERJR2EXAMPLE", "private_key_pem": pem}),
        );
        let bunny = caps_of(json!({"scheme": "bunny", "key": "SecurityKey", "delivery": "path"}));
        let google = caps_of(
            json!({"scheme": "google", "key_name": "k", "key": "nZtRohdNF9m3cKM24IcK4w=="}),
        );
        let nginx_ip = caps_of(
            json!({"scheme": "nginx", "secret": "s", "expression": "$secure_link_expires$uri$remote_addr $secret"}),
        );
        let nginx = caps_of(
            json!({"scheme": "nginx", "secret": "s", "expression": "$secure_link_expires$uri $secret"}),
        );
        let v4: IpAddr = "203.0.113.7".parse().unwrap();
        let v6: IpAddr = "2001:db8:85a3:1::7".parse().unwrap();
        let exact = |address| {
            Some(ClientBinding {
                address,
                network_bits: None,
            })
        };
        let network = |address, bits| {
            Some(ClientBinding {
                address,
                network_bits: Some(bits),
            })
        };
        for (what, caps, client, bits, want) in [
            ("akamai at /24", akamai, v4, 24, None),
            ("akamai at /32", akamai, v4, 32, exact(v4)),
            ("akamai at /64", akamai, v6, 64, None),
            ("akamai at /128", akamai, v6, 128, exact(v6)),
            ("cloudfront at /24", cloudfront, v4, 24, network(v4, 24)),
            ("cloudfront at /32", cloudfront, v4, 32, network(v4, 32)),
            ("cloudfront for IPv6", cloudfront, v6, 64, None),
            ("bunny at /24", bunny, v4, 24, None),
            ("bunny at /32", bunny, v4, 32, exact(v4)),
            ("bunny at /48", bunny, v6, 48, None),
            ("bunny at /64", bunny, v6, 64, exact(v6)),
            ("bunny at /128", bunny, v6, 128, exact(v6)),
            ("google", google, v4, 32, None),
            ("nginx without $remote_addr", nginx, v4, 32, None),
            (
                "nginx with $remote_addr at /24",
                nginx_ip,
                v4,
                24,
                exact(v4),
            ),
            (
                "nginx with $remote_addr, binding off",
                nginx_ip,
                v4,
                0,
                exact(v4),
            ),
            ("cloudfront, binding off", cloudfront, v4, 0, None),
            ("akamai, binding off", akamai, v4, 0, None),
            (
                "an IPv4-mapped address counts as IPv4",
                cloudfront,
                "::ffff:203.0.113.7".parse().unwrap(),
                24,
                network(v4, 24),
            ),
        ] {
            assert_eq!(cdn_client_binding(&caps, client, bits), want, "{what}");
        }
    }

    #[test]
    fn grant_parts_by_form() {
        let plain = "http://a.example/x/demo/master.m3u8";
        assert_eq!(
            grant_parts(
                plain,
                "http://a.example/x",
                "http://a.example/x/h4sh,99/demo/master.m3u8"
            ),
            (Some("h4sh,99".into()), None)
        );
        assert_eq!(
            grant_parts(
                plain,
                "http://a.example/x",
                &format!("{plain}?hdnts=exp=1~hmac=ab")
            ),
            (None, Some("hdnts=exp=1~hmac=ab".into()))
        );
        assert_eq!(
            grant_parts(plain, "http://a.example/x", plain),
            (None, None)
        );
        assert_eq!(
            grant_parts(
                plain,
                "http://a.example/x",
                "http://a.example/x/a/b/demo/master.m3u8"
            ),
            (None, None)
        );
    }

    #[test]
    fn base_paths() {
        assert_eq!(base_path("https://h.example"), "");
        assert_eq!(base_path("https://h.example/x/y"), "/x/y");
        assert_eq!(base_path("/o"), "/o");
    }
}
