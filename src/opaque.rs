//! Opaque values: fresh random tokens (codes, refresh secrets, session ids, list epochs) and
//! the digests stores keep instead of them. A leaf: it imports nothing of Gatehouse.

use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// 256 random bits, base64url.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// SHA-256, base64url: how codes and refresh secrets are stored (a store dump reveals none).
pub fn digest(text: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(text.as_bytes()))
}
