//! Opaque values: fresh random tokens (codes, refresh secrets, session ids, list epochs) and
//! the digests stores keep instead of them. A leaf: it imports nothing of Gatehouse.

use base64::Engine;
use sha2::{Digest, Sha256};

/// 256 random bits, base64url (from the leaf crate `gatehouse-base`, which the CLI client
/// shares).
pub use gatehouse_base::random::token as random_token;

/// SHA-256, base64url: how codes and refresh secrets are stored (a store dump reveals none).
pub fn digest(text: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(text.as_bytes()))
}
