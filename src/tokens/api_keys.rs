//! `[[api_keys]]`: machine-to-machine credentials sent as HTTP Basic `name:key`. The config holds
//! a salted SHA-256 of each key, never the key; keys are 256 random bits, so a fast hash is
//! enough (nobody can guess their way through the key space).

use crate::config::ApiKeyEntry;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// Key prefix, so secret scanners and people can tell what it is.
const KEY_PREFIX: &str = "gk_";

#[derive(Debug, Default)]
pub struct ApiKeys {
    by_name: HashMap<String, ApiKeyEntry>,
}

impl ApiKeys {
    pub fn new(entries: &[ApiKeyEntry]) -> ApiKeys {
        ApiKeys {
            by_name: entries
                .iter()
                .map(|e| (e.name.clone(), e.clone()))
                .collect(),
        }
    }

    pub fn has(&self, name: &str) -> bool {
        self.by_name.contains_key(name)
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    /// The entry whose name and key both match; comparing hashes in constant time.
    pub fn verify(&self, name: &str, key: &str) -> Option<&ApiKeyEntry> {
        let entry = self.by_name.get(name)?;
        let digest = salted_hash(&entry.salt, key);
        constant_time_eq(&digest, &entry.hash).then_some(entry)
    }
}

fn salted_hash(salt: &[u8], key: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(salt);
    h.update(key.as_bytes());
    h.finalize().into()
}

/// Equal bytes, compared without stopping at the first difference (lengths are not secret).
pub(super) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub use crate::config::is_key_name;

/// A new random key and the `hash` value for its config entry.
pub fn new_key() -> (String, String) {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut secret = [0u8; 32];
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut secret);
    rand::rng().fill_bytes(&mut salt);
    let key = format!("{KEY_PREFIX}{}", b64.encode(secret));
    let hash = format!(
        "sha256${}${}",
        b64.encode(salt),
        b64.encode(salted_hash(&salt, &key))
    );
    (key, hash)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_key_hash;

    #[test]
    fn a_new_key_verifies_and_nothing_else_does() {
        let (key, hash) = new_key();
        let (salt, digest) = parse_key_hash(&hash).unwrap();
        let keys = ApiKeys::new(&[ApiKeyEntry {
            name: "ci".into(),
            salt,
            hash: digest,
            roles: vec!["deployer".into()],
        }]);
        assert_eq!(keys.verify("ci", &key).unwrap().roles, ["deployer"]);
        assert!(keys.verify("ci", &format!("{key}x")).is_none());
        assert!(keys.verify("other", &key).is_none());
        assert!(!hash.contains(&key[KEY_PREFIX.len()..]));
    }
}
