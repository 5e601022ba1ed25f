//! Raw GitHub tokens (`[tokens] accept_github_tokens`): validated against GitHub once, then
//! remembered for 5 minutes under the SHA-256 of the token, never the token itself.

use crate::session::SessionClaims;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;

pub const CACHE_SECS: u64 = 300;
const MAX_CACHED: usize = 10_000;

#[derive(Debug, Default)]
pub struct GithubTokenCache {
    entries: Mutex<HashMap<[u8; 32], (SessionClaims, u64)>>,
}

impl GithubTokenCache {
    pub fn key(token: &str) -> [u8; 32] {
        Sha256::digest(token.as_bytes()).into()
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
