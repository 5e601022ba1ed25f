//! Keys and secrets as the config writes them (base64 in any common spelling), decoded; the
//! sections that take keys (session, store, tokens) share these.

use base64::Engine;

/// A 32-byte session key; never printed.
#[derive(Clone)]
pub struct SessionKey(pub [u8; 32]);

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKey(hidden)")
    }
}

/// Accepts standard or URL-safe base64, with or without padding.
pub fn decode_key(text: &str) -> Option<[u8; 32]> {
    decode_secret(text).and_then(|bytes| <[u8; 32]>::try_from(bytes.as_slice()).ok())
}

/// Standard or URL-safe base64, with or without padding.
pub(super) fn decode_secret(text: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let text = text.trim();
    [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(text).ok())
}
