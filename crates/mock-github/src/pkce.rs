//! PKCE (RFC 7636), S256 only: GitHub refuses the `plain` method.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

/// An S256 challenge is the unpadded base64url of a 32-byte hash: exactly 43 characters.
pub(super) fn valid_challenge(challenge: &str) -> bool {
    challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Check a token request's verifier against the challenge recorded with the code.
pub(super) fn verify(challenge: &str, verifier: Option<&str>) -> Result<(), &'static str> {
    let Some(verifier) = verifier.filter(|v| !v.is_empty()) else {
        return Err("The code_verifier is missing; this code was issued with a code_challenge.");
    };
    // RFC 7636 section 4.1: 43..=128 characters of [A-Za-z0-9-._~].
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    if well_formed && URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) == challenge {
        Ok(())
    } else {
        Err("The code_verifier does not match the code_challenge.")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The example from RFC 7636 appendix B.
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn rfc_example_verifies() {
        assert!(valid_challenge(CHALLENGE));
        assert_eq!(verify(CHALLENGE, Some(VERIFIER)), Ok(()));
    }

    #[test]
    fn wrong_or_missing_verifier_fails() {
        assert!(verify(CHALLENGE, None).unwrap_err().contains("missing"));
        assert!(verify(CHALLENGE, Some("")).unwrap_err().contains("missing"));
        let other = "eBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert!(verify(CHALLENGE, Some(other))
            .unwrap_err()
            .contains("does not match"));
        // `plain` style: verifier equal to the challenge is not accepted.
        assert!(verify(CHALLENGE, Some(CHALLENGE)).is_err());
    }

    #[test]
    fn short_verifier_is_malformed() {
        let short = "abc";
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(short.as_bytes()));
        assert!(verify(&challenge, Some(short)).is_err());
    }

    #[test]
    fn challenge_shape() {
        assert!(!valid_challenge("short"));
        assert!(!valid_challenge(&format!("{}=", &CHALLENGE[..42])));
    }
}
