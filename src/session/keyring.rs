//! Compact JWE (RFC 7516) with `alg=dir`, `enc=A256GCM`: the session cookie's wire format.
//!
//! Ciphers are built once per key at start, so a request only pays for the AES-GCM work itself.
//! The first key encrypts; every key decrypts, which is how secrets rotate without signing
//! anyone out.

use crate::claims::GithubRefresh;
use crate::config::SessionKey;
use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Why a token could not be opened. Callers treat every variant the same (anonymous), but the
/// variants make tests and debug logs precise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JweError {
    #[error("not a compact JWE")]
    Malformed,
    #[error("unsupported JWE header")]
    UnsupportedHeader,
    #[error("unknown key id")]
    UnknownKey,
    #[error("decryption failed")]
    Decrypt,
    #[error("encryption failed")]
    Encrypt,
}

struct RingKey {
    kid: String,
    /// `BASE64URL(protected header)`: also the AAD of every token made with this key.
    header_b64: String,
    cipher: Aes256Gcm,
}

pub struct KeyRing {
    keys: Vec<RingKey>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kids: Vec<&str> = self.keys.iter().map(|k| k.kid.as_str()).collect();
        f.debug_struct("KeyRing").field("kids", &kids).finish()
    }
}

/// `kid` = base64url (no padding) of the first 8 bytes of SHA-256 of the raw key (docs/src/reference/cookie.md).
pub fn key_id(key: &[u8; 32]) -> String {
    let digest = Sha256::digest(key);
    B64.encode(&digest[..8])
}

#[derive(serde::Deserialize)]
struct Header<'a> {
    alg: &'a str,
    enc: &'a str,
    kid: Option<&'a str>,
    zip: Option<&'a str>,
    crit: Option<serde::de::IgnoredAny>,
}

impl KeyRing {
    /// `keys[0]` encrypts. Panics never; an empty list yields a ring that opens nothing.
    pub fn new(keys: &[SessionKey]) -> KeyRing {
        let keys = keys
            .iter()
            .map(|k| {
                let kid = key_id(&k.0);
                let header = format!(r#"{{"alg":"dir","enc":"A256GCM","kid":"{kid}"}}"#);
                RingKey {
                    header_b64: B64.encode(header),
                    cipher: Aes256Gcm::new(&k.0.into()),
                    kid,
                }
            })
            .collect();
        KeyRing { keys }
    }

    /// Encrypt `plaintext` under the first key as a compact JWE string.
    pub fn seal(&self, plaintext: &[u8]) -> Result<String, JweError> {
        let key = self.keys.first().ok_or(JweError::Encrypt)?;
        let mut iv = [0u8; 12];
        rand::rng().fill_bytes(&mut iv);
        let mut buf = plaintext.to_vec();
        let tag = key
            .cipher
            .encrypt_inout_detached(
                &Nonce::from(iv),
                key.header_b64.as_bytes(),
                buf.as_mut_slice().into(),
            )
            .map_err(|_| JweError::Encrypt)?;
        let mut out = String::with_capacity(key.header_b64.len() + buf.len() * 4 / 3 + 48);
        out.push_str(&key.header_b64);
        out.push_str("..");
        B64.encode_string(iv, &mut out);
        out.push('.');
        B64.encode_string(&buf, &mut out);
        out.push('.');
        B64.encode_string(tag.as_slice(), &mut out);
        Ok(out)
    }

    /// Decrypt a compact JWE made by any key in the ring.
    pub fn open(&self, token: &str) -> Result<Vec<u8>, JweError> {
        let mut parts = token.split('.');
        let (Some(header_b64), Some(encrypted_key), Some(iv), Some(ciphertext), Some(tag), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(JweError::Malformed);
        };
        // `dir` carries no encrypted key.
        if !encrypted_key.is_empty() {
            return Err(JweError::UnsupportedHeader);
        }
        let key = self.find_key(header_b64)?;
        let iv: [u8; 12] = decode_exact(iv)?;
        let tag: [u8; 16] = decode_exact(tag)?;
        let mut buf = B64.decode(ciphertext).map_err(|_| JweError::Malformed)?;
        key.cipher
            .decrypt_inout_detached(
                &Nonce::from(iv),
                header_b64.as_bytes(),
                buf.as_mut_slice().into(),
                &Tag::from(tag),
            )
            .map_err(|_| JweError::Decrypt)?;
        Ok(buf)
    }

    /// A GitHub refresh token as the store keeps it: sealed like the access token.
    pub fn seal_refresh(
        &self,
        refresh: Option<&GithubRefresh>,
    ) -> Result<Option<GithubRefresh>, JweError> {
        refresh
            .map(|r| {
                Ok(GithubRefresh {
                    token: self.seal(r.token.as_bytes())?,
                    expires_at: r.expires_at,
                })
            })
            .transpose()
    }

    /// A sealed GitHub refresh token opened; `None` when no key here opens it (what needs it
    /// then asks for a new sign-in).
    pub fn open_refresh(&self, refresh: Option<GithubRefresh>) -> Option<GithubRefresh> {
        let refresh = refresh?;
        let plain = self.open(&refresh.token).ok()?;
        Some(GithubRefresh {
            token: String::from_utf8(plain).ok()?,
            expires_at: refresh.expires_at,
        })
    }

    fn find_key(&self, header_b64: &str) -> Result<&RingKey, JweError> {
        // Fast path: a header this ring wrote itself.
        if let Some(key) = self.keys.iter().find(|k| k.header_b64 == header_b64) {
            return Ok(key);
        }
        // Any other standard-conforming writer: parse the header and pick by `kid`.
        let raw = B64.decode(header_b64).map_err(|_| JweError::Malformed)?;
        let header: Header<'_> = serde_json::from_slice(&raw).map_err(|_| JweError::Malformed)?;
        if header.alg != "dir"
            || header.enc != "A256GCM"
            || header.zip.is_some()
            || header.crit.is_some()
        {
            return Err(JweError::UnsupportedHeader);
        }
        match header.kid {
            Some(kid) => self
                .keys
                .iter()
                .find(|k| k.kid == kid)
                .ok_or(JweError::UnknownKey),
            None => Err(JweError::UnknownKey),
        }
    }
}

fn decode_exact<const N: usize>(text: &str) -> Result<[u8; N], JweError> {
    let bytes = B64.decode(text).map_err(|_| JweError::Malformed)?;
    <[u8; N]>::try_from(bytes.as_slice()).map_err(|_| JweError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(seeds: &[u8]) -> KeyRing {
        let keys: Vec<SessionKey> = seeds.iter().map(|s| SessionKey([*s; 32])).collect();
        KeyRing::new(&keys)
    }

    #[test]
    fn round_trip_and_header_shape() {
        let r = ring(&[1]);
        let token = r.seal(b"{\"a\":1}").unwrap();
        assert_eq!(token.split('.').count(), 5);
        let header = B64.decode(token.split('.').next().unwrap()).unwrap();
        let header: serde_json::Value = serde_json::from_slice(&header).unwrap();
        assert_eq!(header["alg"], "dir");
        assert_eq!(header["enc"], "A256GCM");
        assert_eq!(header["kid"], key_id(&[1; 32]));
        assert_eq!(r.open(&token).unwrap(), b"{\"a\":1}");
    }

    #[test]
    fn rotation_old_key_still_opens() {
        let old = ring(&[1]);
        let token = old.seal(b"x").unwrap();
        let rotated = ring(&[2, 1]);
        assert_eq!(rotated.open(&token).unwrap(), b"x");
        assert_eq!(ring(&[2]).open(&token), Err(JweError::UnknownKey));
    }

    #[test]
    fn tampering_fails() {
        let r = ring(&[1]);
        let token = r.seal(b"hello world").unwrap();
        let mut parts: Vec<String> = token.split('.').map(String::from).collect();
        let mut ct = B64.decode(&parts[3]).unwrap();
        ct[0] ^= 1;
        parts[3] = B64.encode(ct);
        assert_eq!(r.open(&parts.join(".")), Err(JweError::Decrypt));
        assert_eq!(r.open(&token[..token.len() - 3]), Err(JweError::Malformed));
        assert_eq!(r.open("a.b.c"), Err(JweError::Malformed));
        assert_eq!(r.open(""), Err(JweError::Malformed));
    }

    #[test]
    fn same_kid_different_key_fails() {
        // A header claiming our kid but sealed under another key must not open.
        let ours = ring(&[1]);
        let theirs = ring(&[9]);
        let token = theirs.seal(b"x").unwrap();
        let forged = format!(
            "{}{}",
            ours.keys[0].header_b64,
            &token[token.find('.').unwrap()..]
        );
        assert_eq!(ours.open(&forged), Err(JweError::Decrypt));
    }

    #[test]
    fn foreign_header_with_other_alg_is_refused() {
        let r = ring(&[1]);
        let token = r.seal(b"x").unwrap();
        let rest = &token[token.find('.').unwrap()..];
        let bad = B64.encode(br#"{"alg":"none","enc":"A256GCM","kid":"x"}"#);
        assert_eq!(
            r.open(&format!("{bad}{rest}")),
            Err(JweError::UnsupportedHeader)
        );
    }
}
