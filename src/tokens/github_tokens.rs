//! Raw GitHub tokens (`[tokens] accept_github_tokens`): validated against GitHub once, then
//! remembered for 5 minutes under the SHA-256 of the token, never the token itself.

use crate::session::SessionClaims;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;

pub const CACHE_SECS: u64 = 300;
/// Start of a raw GitHub token's id in the admin listing.
pub const LISTING_PREFIX: &str = "github-token-";
const MAX_CACHED: usize = 10_000;

#[derive(Debug, Default)]
pub struct GithubTokenCache {
    entries: Mutex<HashMap<[u8; 32], (SessionClaims, u64)>>,
}

impl GithubTokenCache {
    pub fn key(token: &str) -> [u8; 32] {
        Sha256::digest(token.as_bytes()).into()
    }

    /// How the admin listing names a token: a hash of its cache key under a label of its own,
    /// so the listing gives away neither the token nor the key it is cached under.
    pub fn listing_id(key: &[u8; 32]) -> String {
        let mut h = Sha256::new();
        h.update(b"gatehouse github-token listing\0");
        h.update(key);
        let digest = h.finalize();
        format!("{LISTING_PREFIX}{}", URL_SAFE_NO_PAD.encode(&digest[..18]))
    }

    pub fn get(&self, key: &[u8; 32], now: u64) -> Option<SessionClaims> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(key)
            .filter(|(_, until)| now < *until)
            .map(|(claims, _)| claims.clone())
    }

    pub fn put(&self, key: [u8; 32], claims: SessionClaims, now: u64) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= MAX_CACHED {
            entries.retain(|_, (_, until)| now < *until);
            if entries.len() >= MAX_CACHED {
                entries.clear();
            }
        }
        entries.insert(key, (claims, now + CACHE_SECS));
    }
}
