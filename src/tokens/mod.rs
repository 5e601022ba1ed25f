//! Tokens for everything that is not a browser: Gatehouse's own access and refresh tokens (the
//! code-for-token exchange, refresh with reuse detection), API keys, external OIDC tokens, raw
//! GitHub tokens, and the signed identity assertion sent to the upstream.

pub mod access_token;
pub mod api_keys;
pub mod assertion;
pub mod clients;
mod fingerprint;
pub mod github_tokens;
pub mod oidc;
pub mod refresh;
pub mod sealed;
mod service;

pub use crate::store::{CodeGrant, CodeTake, MemoryStore, RefreshFamily, Store, StoreError};
pub use access_token::{AccessClaims, AccessTokens, TokenError};
pub use api_keys::ApiKeys;
pub use clients::{ClientAuth, ClientRedirect};
pub use service::{TokenService, TokenSetupError};

use base64::Engine;

pub use crate::clock::unix_now;
pub use crate::opaque::{digest, random_token};

/// The `iss` of a JWT-shaped token, without verifying anything (to pick who verifies it).
pub fn unverified_issuer(token: &str) -> Option<String> {
    let mut parts = token.split('.');
    let (Some(_), Some(payload), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    if payload.len() > 16 * 1024 {
        return None;
    }
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    #[derive(serde::Deserialize)]
    struct Iss {
        iss: Option<String>,
    }
    serde_json::from_slice::<Iss>(&json).ok()?.iss
}

/// Does this look like a JWT (three base64url parts)?
pub fn is_jwt_shaped(token: &str) -> bool {
    token.split('.').count() == 3
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'='))
}
