//! Server-side sessions (`session.store = "memory" | "redis" | "postgres"`): the records, indexed by their
//! GitHub user for the admin listing and sign-out everywhere.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::StoreError;
use crate::claims::SessionClaims;

/// A server-side session (`session.store = "memory" | "redis" | "postgres"`): the cookie holds only an
/// encrypted id; this holds who it is. The GitHub token is sealed under the store key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// The claims, without the GitHub token.
    pub claims: SessionClaims,
    /// The GitHub token, AES-256-GCM under `session.store_secrets` (base64url nonce‖ciphertext).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed_token: Option<String>,
    pub created_at: u64,
    pub last_seen: u64,
    #[serde(default)]
    pub ip: Option<String>,
    #[serde(default)]
    pub user_agent: Option<String>,
}

impl SessionRecord {
    /// The GitHub user id the session belongs to.
    pub fn user_id(&self) -> &str {
        &self.claims.user_id
    }

    pub fn expires_at(&self) -> u64 {
        self.claims.exp
    }
}

/// Server-side sessions, by key (the id the cookie carries, encrypted).
#[async_trait]
pub trait SessionRecords: Send + Sync {
    /// Create or replace a session; it expires with its claims.
    async fn put_session(&self, key: &str, record: &SessionRecord) -> Result<(), StoreError>;
    async fn session(&self, key: &str, now: u64) -> Result<Option<SessionRecord>, StoreError>;
    /// Note activity, if the session still exists (never re-creates a deleted one).
    async fn touch_session(&self, key: &str, last_seen: u64) -> Result<(), StoreError>;
    /// Replace a session only if it still exists (a re-check's write must not re-create a
    /// session signed out or revoked meanwhile). False when it is gone.
    async fn update_session(&self, key: &str, record: &SessionRecord) -> Result<bool, StoreError>;
    /// Delete one session; returns what it was.
    async fn delete_session(&self, key: &str) -> Result<Option<SessionRecord>, StoreError>;
    /// Live sessions of a GitHub user id, by key.
    async fn user_sessions(
        &self,
        user_id: &str,
        now: u64,
    ) -> Result<Vec<(String, SessionRecord)>, StoreError>;
    /// Delete every session of a GitHub user id; returns how many there were.
    async fn delete_user_sessions(&self, user_id: &str) -> Result<usize, StoreError>;
    /// How many sessions are live (`gatehouse_sessions_active`).
    async fn count_sessions(&self, now: u64) -> Result<u64, StoreError>;
}
