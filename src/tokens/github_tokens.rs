//! Raw GitHub tokens (`[tokens] accept_github_tokens`): validated against GitHub once, then
//! remembered for 5 minutes under the SHA-256 of the token, never the token itself. A token
//! GitHub refused is remembered too, for a minute, so repeating it costs no GitHub call.

use crate::claims::SessionClaims;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;

pub const CACHE_SECS: u64 = 300;
/// Start of a raw GitHub token's id in the admin listing.
pub const LISTING_PREFIX: &str = "github-token-";
/// How long a token GitHub refused is answered 401 without asking again.
pub const REFUSED_SECS: u64 = 60;
const MAX_CACHED: usize = 10_000;

/// Could `token` be a GitHub token at all (GitHub's alphabet, at most 255 bytes)? Anything
/// else is refused without asking GitHub.
pub fn is_token_shaped(token: &str) -> bool {
    !token.is_empty()
        && token.len() <= 255
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[derive(Debug, Default)]
pub struct GithubTokenCache {
    entries: Mutex<HashMap<[u8; 32], (SessionClaims, u64)>>,
    /// Digests of tokens GitHub refused (401) → until when.
    refused: Mutex<HashMap<[u8; 32], u64>>,
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

    /// Did GitHub refuse this token within the last [`REFUSED_SECS`]?
    pub fn refused(&self, key: &[u8; 32], now: u64) -> bool {
        let refused = self.refused.lock().unwrap_or_else(|p| p.into_inner());
        refused.get(key).is_some_and(|until| now < *until)
    }

    /// Remember that GitHub refused this token.
    pub fn put_refused(&self, key: [u8; 32], now: u64) {
        let mut refused = self.refused.lock().unwrap_or_else(|p| p.into_inner());
        if refused.len() >= MAX_CACHED {
            refused.retain(|_, until| now < *until);
            if refused.len() >= MAX_CACHED {
                // A flood of distinct tokens: the per-address limit bounds its GitHub calls.
                refused.clear();
            }
        }
        refused.insert(key, now + REFUSED_SECS);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_token_is_remembered_for_a_minute_by_digest() {
        let cache = GithubTokenCache::default();
        let key = GithubTokenCache::key("ghp_madeup");
        assert!(!cache.refused(&key, 1000));
        cache.put_refused(key, 1000);
        assert!(cache.refused(&key, 1000 + REFUSED_SECS - 1));
        assert!(!cache.refused(&key, 1000 + REFUSED_SECS));
        assert!(!cache.refused(&GithubTokenCache::key("ghp_other"), 1000));
        assert!(
            cache.get(&key, 1000).is_none(),
            "never taken for an accepted one"
        );
    }

    #[test]
    fn only_token_shaped_strings_are_asked_about() {
        assert!(is_token_shaped("ghp_abcXYZ019"));
        assert!(is_token_shaped("gho_16C7e42F292c6912E7710c838347Ae178B4a"));
        for bad in ["", "ghp_a.b", "ghp_a b", "ghp_ä", &"a".repeat(256)] {
            assert!(!is_token_shaped(bad), "{bad}");
        }
    }
}
