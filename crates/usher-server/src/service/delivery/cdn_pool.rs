//! The CDN pool as delivery uses it: the stored CDNs plus Usher's own origin, with each CDN's signer
//! parsed once and kept while the store's CDN generation says nothing changed.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwapOption;
use secrecy::SecretString;
use serde_json::json;
use usher_cdn::usher::{UsherParams, UsherSigner};
use usher_cdn::{Capabilities, Scheme, SignError, Signer};
use usher_core::cdn::{Cdn, CdnHealth, SigningConfig};
use usher_core::clock::UnixMs;
use usher_core::ids::CdnId;
use usher_core::store::Store;

use crate::service::Result;

/// The default priority of a CDN (and of the origin until an admin changes it); lower comes first.
pub const DEFAULT_PRIORITY: u32 = 100;

/// Usher's own origin as a pool member, before an admin has changed it.
pub fn default_origin() -> Cdn {
    Cdn {
        id: CdnId::origin(),
        name: "Usher origin".to_owned(),
        base_url: "/o".to_owned(),
        signing: SigningConfig(json!({"scheme": "usher"})),
        priority: DEFAULT_PRIORITY,
        weight: 1,
        enabled: true,
        health: CdnHealth::default(),
        canary: None,
        origin_secret_hash: None,
        created_at: UnixMs(0),
        updated_at: UnixMs(0),
    }
}

/// Every member of the pool by id, the origin included (its stored record, or the default).
///
/// # Errors
/// Store failures.
pub async fn members(store: &dyn Store) -> Result<Vec<Cdn>> {
    let mut cdns = store.cdns().await?;
    if !cdns.iter().any(|c| c.id.is_origin()) {
        cdns.push(default_origin());
        cdns.sort_by(|a, b| a.id.cmp(&b.id));
    }
    Ok(cdns)
}

/// The pool as delivery uses it: every member (the origin included) and each CDN's signer, parsed once
/// (for CloudFront an RSA key) rather than on every admit, heartbeat and playlist.
pub struct PreparedPool {
    generation: Option<u64>,
    /// Every member, the origin included.
    pub cdns: Vec<Cdn>,
    /// Each member's signer (the origin's: Usher's grant) and what its scheme can bind, or why its
    /// signing configuration is unusable.
    pub signers: HashMap<CdnId, Result<(Arc<Signer>, Capabilities), String>>,
}

/// The last [`PreparedPool`], kept while the store's [`usher_core::store::Store::cdns_generation`]
/// says the pool is unchanged (on a store without one, the pool is read each time and only the signers of
/// unchanged signing configurations are kept).
pub struct PoolCache {
    last: ArcSwapOption<PreparedPool>,
    /// Usher's own origin as a signing scheme, keyed with the server's grant key.
    origin: Arc<Signer>,
}

fn parse_signer(cdn: &Cdn) -> Result<(Arc<Signer>, Capabilities), String> {
    serde_json::from_value::<Scheme>(cdn.signing.0.clone())
        .map_err(|e| e.to_string())
        .and_then(|s| s.signer().map_err(|e| e.to_string()))
        .map(|s| {
            let caps = s.capabilities();
            (Arc::new(s), caps)
        })
}

impl PoolCache {
    /// An empty cache whose origin signs with `grant_key` (the server's `secrets.grant_key`).
    ///
    /// # Errors
    /// An empty key.
    pub fn new(grant_key: SecretString) -> std::result::Result<Self, SignError> {
        let origin = UsherSigner::new(&UsherParams { key: grant_key })?;
        Ok(Self {
            last: ArcSwapOption::empty(),
            origin: Arc::new(Signer::Usher(origin)),
        })
    }

    /// The pool prepared last, if any (it may be stale).
    pub fn last(&self) -> Option<Arc<PreparedPool>> {
        self.last.load_full()
    }

    /// The current pool, prepared.
    ///
    /// # Errors
    /// Store failures.
    pub async fn prepared(&self, store: &dyn Store) -> Result<Arc<PreparedPool>> {
        // the generation is read before the pool: a change in between makes the next call read again
        let generation = store.cdns_generation();
        let last = self.last.load_full();
        if let (Some(g), Some(last)) = (generation, &last)
            && last.generation == Some(g)
        {
            return Ok(Arc::clone(last));
        }
        let cdns = members(store).await?;
        let mut signers = HashMap::new();
        signers.insert(
            CdnId::origin(),
            Ok((Arc::clone(&self.origin), self.origin.capabilities())),
        );
        for cdn in cdns.iter().filter(|c| !c.id.is_origin()) {
            let kept = last.as_ref().and_then(|l| {
                l.cdns
                    .iter()
                    .any(|c| c.id == cdn.id && c.signing == cdn.signing)
                    .then(|| l.signers.get(&cdn.id).cloned())
                    .flatten()
            });
            signers.insert(cdn.id.clone(), kept.unwrap_or_else(|| parse_signer(cdn)));
        }
        let prepared = Arc::new(PreparedPool {
            generation,
            cdns,
            signers,
        });
        self.last.store(Some(Arc::clone(&prepared)));
        Ok(prepared)
    }
}
