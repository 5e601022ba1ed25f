//! Where shared state lives: server-side sessions, one-time codes, refresh-token families and
//! their revocations, used sign-in states, and the per-user revocation list. One trait, two
//! implementations: [`MemoryStore`] for one process, [`RedisStore`] for replicas sharing Redis.
//! Both pass the same suite (`conformance`: unit tests, and the integration tests through the
//! `conformance` feature; not compiled into release builds).

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
mod memory;
mod redis;

pub use memory::MemoryStore;
pub use redis::{RedisOptions, RedisStore};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

use crate::session::SessionClaims;

/// The store the settings ask for: Redis when configured, else this process's memory.
pub fn open(redis: Option<RedisOptions>) -> std::sync::Arc<dyn Store> {
    match redis {
        Some(options) => std::sync::Arc::new(RedisStore::new(options)),
        None => std::sync::Arc::new(MemoryStore::default()),
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("the session store is unavailable: {0}")]
    Unavailable(String),
}

/// What a one-time code stands for, until `/oauth2/token` trades it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CodeGrant {
    pub session: SessionClaims,
    pub client_redirect_uri: String,
    /// PKCE S256 challenge the client sent to `/oauth2/start`, if any.
    pub code_challenge: Option<String>,
    pub expires_at: u64,
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

/// A raw GitHub token some replica accepted (`accept_github_tokens`), as the admin listing
/// shows it: when, never the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GithubTokenUse {
    /// When GitHub last vouched for it: the revocation list treats this as its sign-in.
    pub checked_at: u64,
    /// When replicas stop relying on that answer and ask GitHub again.
    pub expires_at: u64,
}

/// What trading a code found.
#[derive(Debug, Clone)]
pub enum CodeTake {
    Granted(Box<CodeGrant>),
    AlreadyUsed,
    /// Never issued, or expired.
    Unknown,
}

/// A server-side session (`session.store = "memory" | "redis"`): the cookie holds only an
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

/// A line of the revocation list: every session of the user signed in at or before
/// `end_before` is over; every session whose memberships were confirmed at or before
/// `recheck_before` must ask GitHub again before its next request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserMark {
    pub end_before: u64,
    pub recheck_before: u64,
    /// When the line can be forgotten (no session it concerns can outlive it).
    pub expires_at: u64,
}

impl UserMark {
    /// The stronger of two marks for the same user.
    pub fn merge(self, other: UserMark) -> UserMark {
        UserMark {
            end_before: self.end_before.max(other.end_before),
            recheck_before: self.recheck_before.max(other.recheck_before),
            expires_at: self.expires_at.max(other.expires_at),
        }
    }
}

/// The revocation list's lines: users (GitHub ids) → their mark.
pub type Marks = HashMap<String, UserMark>;

/// The revocation list as a replica reads it: the marks, and what tells one life of the list
/// from another, so a list the store lost (a restart without persistence, `FLUSHALL`, eviction,
/// a failover that dropped writes) is noticed instead of read as "nobody is revoked".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RevocationList {
    /// Which life of the list this is: a new epoch starts when the list is found missing.
    /// Empty: never read.
    pub epoch: String,
    /// Changes with every change of the list, the epoch included (opaque: compared for
    /// equality only, so a counter that restarted cannot pass for one already seen).
    pub stamp: String,
    /// Every sign-in at or before this (unix seconds) is over, whoever it is: set when a lost
    /// list's marks could not be vouched for by any replica's copy.
    pub floor: u64,
    /// How long (seconds) a new mark is kept at least: the longest `session.ttl` (plus a
    /// margin) any replica has used with this list, so shortening the ttl, revoking and
    /// lengthening it again cannot bring a revoked session back.
    pub keep: u64,
    pub marks: Marks,
}

impl RevocationList {
    /// The user's mark with the floor applied: the floor ends everyone's older sign-ins.
    pub fn mark(&self, user_id: &str) -> Option<UserMark> {
        let floor = (self.floor > 0).then_some(UserMark {
            end_before: self.floor,
            recheck_before: 0,
            expires_at: u64::MAX,
        });
        match (self.marks.get(user_id).copied(), floor) {
            (Some(m), Some(f)) => Some(m.merge(f)),
            (m, f) => m.or(f),
        }
    }
}

/// What reading the revocation list found.
#[derive(Debug, Clone)]
pub enum ListRead {
    /// Still at the stamp the reader knows.
    Unchanged,
    Current(RevocationList),
    /// There is no list: never made, or lost. [`Store::republish`] starts a new epoch.
    Missing,
}

#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug {
    /// Is the store reachable right now?
    async fn ping(&self) -> Result<(), StoreError>;

    async fn put_code(&self, code_hash: &str, grant: &CodeGrant) -> Result<(), StoreError>;
    /// The grant, used up: a code works once, and a second try is told so.
    async fn take_code(&self, code_hash: &str, now: u64) -> Result<CodeTake, StoreError>;

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
    /// Live refresh families of a GitHub user id, by family id: [`Store::put_family`] indexes
    /// each under its `session.sub`; revoked and expired families are left out.
    async fn user_families(
        &self,
        user_id: &str,
        now: u64,
    ) -> Result<Vec<(String, RefreshFamily)>, StoreError>;
    /// End the family: its refresh tokens stop working, and so do access tokens minted from it.
    async fn revoke_family(&self, id: &str, until: u64) -> Result<(), StoreError>;
    async fn is_revoked(&self, id: &str, now: u64) -> Result<bool, StoreError>;

    /// Mark a sign-in `state` used. False when it was used before (a replay).
    async fn consume_state(
        &self,
        state_hash: &str,
        until: u64,
        now: u64,
    ) -> Result<bool, StoreError>;

    /// Create or replace a session; it expires with its claims.
    async fn put_session(&self, key: &str, record: &SessionRecord) -> Result<(), StoreError>;
    async fn session(&self, key: &str, now: u64) -> Result<Option<SessionRecord>, StoreError>;
    /// Note activity, if the session still exists (never re-creates a deleted one).
    async fn touch_session(&self, key: &str, last_seen: u64) -> Result<(), StoreError>;
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

    /// Remember which GitHub id a login (lower-case) had, for admin requests by login.
    async fn remember_login(
        &self,
        login: &str,
        user_id: &str,
        until: u64,
    ) -> Result<(), StoreError>;
    async fn user_id_for(&self, login: &str) -> Result<Option<String>, StoreError>;

    /// Note that a raw GitHub token of the user was accepted (for the admin listing); `id`
    /// names the token without revealing it. A later note under the same id replaces it.
    async fn note_github_token(
        &self,
        user_id: &str,
        id: &str,
        seen: GithubTokenUse,
    ) -> Result<(), StoreError>;
    /// The user's noted raw GitHub tokens that have not expired, by id.
    async fn user_github_tokens(
        &self,
        user_id: &str,
        now: u64,
    ) -> Result<Vec<(String, GithubTokenUse)>, StoreError>;

    /// Add to the revocation list (merged with the user's existing mark). `mark.expires_at`
    /// minus now is the lifetime this replica needs; the store keeps the mark at least
    /// [`RevocationList::keep`], raised to that. A missing list gets a new epoch first, whose
    /// floor is a few seconds from now (nothing vouches for what it held).
    async fn mark_user(&self, user_id: &str, mark: UserMark) -> Result<(), StoreError>;
    /// The revocation list, unless its stamp is still `known_stamp`. `keep`: the mark lifetime
    /// this replica needs (its `session.ttl` plus a margin), raised in the list if longer.
    async fn revocation_list(
        &self,
        known_stamp: &str,
        keep: u64,
        now: u64,
    ) -> Result<ListRead, StoreError>;
    /// Merge `copy`'s live marks back into the list, atomically, after the list was found
    /// missing, in another epoch than `copy`'s, or lacking marks `copy` holds (writes lost);
    /// returns the list as it then is. A missing list gets a new epoch: floor 0 when it is a
    /// list an older Gatehouse kept (marks, no epoch) and `copy` was never read, `copy.floor`
    /// when `vouch` (the copy was read just before the loss), else now. In another epoch than
    /// `copy`'s, a vouching copy may lower the floor to its own.
    async fn republish(
        &self,
        copy: &RevocationList,
        vouch: bool,
        keep: u64,
        now: u64,
    ) -> Result<RevocationList, StoreError>;

    /// Replace a session only if it still exists (a re-check's write must not re-create a
    /// session signed out or revoked meanwhile). False when it is gone.
    async fn update_session(&self, key: &str, record: &SessionRecord) -> Result<bool, StoreError>;

    /// Remember a webhook delivery (by id, or by a digest of what it said) until `until`.
    /// False when it was remembered already (a replay or a redelivery).
    async fn remember_delivery(&self, id: &str, until: u64, now: u64) -> Result<bool, StoreError>;
    /// Forget a delivery that could not be applied, so GitHub's redelivery of it is.
    async fn forget_delivery(&self, id: &str) -> Result<(), StoreError>;
}
