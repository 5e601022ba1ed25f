//! PKCE (RFC 7636, S256) and the `state` value: 32 random bytes each, base64url without padding.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

/// base64url (no padding) of 32 bytes from the thread's CSPRNG: 43 characters.
pub use gatehouse_base::random::token as random_token;

/// A fresh `code_verifier` (43 characters, inside RFC 7636's 43..=128).
pub fn new_verifier() -> String {
    random_token()
}

/// A fresh `state` for one sign-in.
pub fn new_state() -> String {
    random_token()
}

/// The S256 `code_challenge`: base64url(SHA-256(verifier)).
pub fn challenge_s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7636 appendix B: the octets, the verifier they encode, and its S256 challenge.
    #[test]
    fn pkce_challenge_matches_rfc7636_appendix_b() {
        let octets: [u8; 32] = [
            116, 24, 223, 180, 151, 153, 224, 37, 79, 250, 96, 125, 216, 173, 187, 186, 22, 212,
            37, 77, 105, 214, 191, 240, 91, 88, 5, 88, 83, 132, 141, 121,
        ];
        let verifier = URL_SAFE_NO_PAD.encode(octets);
        assert_eq!(verifier, "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
        assert_eq!(
            challenge_s256(&verifier),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn generated_values_are_long_fresh_and_url_safe() {
        let (a, b) = (new_verifier(), new_verifier());
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
        assert_ne!(new_state(), new_state());
    }
}
