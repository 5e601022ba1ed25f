//! What the token endpoints keep: one-time codes until `/oauth2/token` trades them, and
//! refresh-token families (each refresh moves a family on; a family can be revoked).

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::StoreError;
use crate::claims::SessionClaims;

/// What a one-time code stands for, until `/oauth2/token` trades it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CodeGrant {
    pub session: SessionClaims,
    pub client_redirect_uri: String,
    /// PKCE S256 challenge the client sent to `/oauth2/start`, if any.
    pub code_challenge: Option<String>,
    pub expires_at: u64,
    /// The `client_id` the authorize request named, if any: the token request must name it
    /// too (RFC 6749 §4.1.3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
}

/// What trading a code found.
#[derive(Debug, Clone)]
pub enum CodeTake {
    Granted(Box<CodeGrant>),
    AlreadyUsed,
    /// Never issued, or expired.
    Unknown,
}

/// A chain of refresh tokens. Each refresh moves `generation` on; presenting an older
/// generation means a token was copied, and the whole family is revoked.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefreshFamily {
    pub generation: u64,
    /// SHA-256 (base64url) of the current token's secret part.
    pub secret_hash: String,
    /// Who the family belongs to, with the GitHub token for re-checks.
    pub session: SessionClaims,
    pub expires_at: u64,
    /// base64url key tagging the family's secrets, so a genuine token of an earlier generation
    /// (reuse) is told apart from a guess. Empty in records written before it existed.
    #[serde(default)]
    pub mac_key: String,
    /// How the sign-in began (for the admin listing).
    #[serde(default)]
    pub origin: TokenOrigin,
    /// When the current generation was issued (the last refresh); 0 in older records.
    #[serde(default)]
    pub issued_at: u64,
    /// The OAuth 2.0 client the sign-in was issued to, if it named one: only that client may
    /// refresh or revoke it (a confidential one with its secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
}

/// How a token sign-in began. Records from before this existed count as the code exchange.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenOrigin {
    /// `/oauth2/token`: a CLI or SPA traded a one-time code.
    #[default]
    CodeExchange,
    /// `/oauth2/pat`: a GitHub personal access token was traded.
    Pat,
}

impl TokenOrigin {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenOrigin::CodeExchange => "code_exchange",
            TokenOrigin::Pat => "pat",
        }
    }
}

/// One-time codes (`/oauth2/start` → `/oauth2/token`, and the client-confirm page), by a
/// digest of the code.
#[async_trait]
pub trait CodeGrants: Send + Sync {
    async fn put_code(&self, code_hash: &str, grant: &CodeGrant) -> Result<(), StoreError>;
    /// The grant, used up: a code works once, and a second try is told so.
    async fn take_code(&self, code_hash: &str, now: u64) -> Result<CodeTake, StoreError>;
    /// Drop the codes of a GitHub user id not yet exchanged ([`CodeGrants::put_code`] indexes
    /// each under its `session.sub`): ending a user's sign-ins ends them by their records,
    /// whatever the replicas' clocks say. How many live codes were dropped.
    async fn drop_user_codes(&self, user_id: &str, now: u64) -> Result<usize, StoreError>;
}

/// Refresh-token families, by family id, and which of them were revoked.
#[async_trait]
pub trait RefreshFamilies: Send + Sync {
    async fn put_family(&self, id: &str, family: &RefreshFamily) -> Result<(), StoreError>;
    async fn family(&self, id: &str, now: u64) -> Result<Option<RefreshFamily>, StoreError>;
    /// Replace the family only if it is still at `expected_generation` (two refreshes racing
    /// with the same token cannot both win). False when it moved on or is gone.
    async fn advance_family(
        &self,
        id: &str,
        expected_generation: u64,
        next: &RefreshFamily,
    ) -> Result<bool, StoreError>;
    /// Live refresh families of a GitHub user id, by family id: [`RefreshFamilies::put_family`]
    /// indexes each under its `session.sub`; revoked and expired families are left out.
    async fn user_families(
        &self,
        user_id: &str,
        now: u64,
    ) -> Result<Vec<(String, RefreshFamily)>, StoreError>;
    /// End the family: its refresh tokens stop working, and so do access tokens minted from it.
    async fn revoke_family(&self, id: &str, until: u64) -> Result<(), StoreError>;
    async fn is_revoked(&self, id: &str, now: u64) -> Result<bool, StoreError>;
}
