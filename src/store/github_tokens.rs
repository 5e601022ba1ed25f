//! Raw GitHub tokens replicas accepted (`accept_github_tokens`), noted per user for the admin
//! listing: when, never the token.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::StoreError;

/// A raw GitHub token some replica accepted (`accept_github_tokens`), as the admin listing
/// shows it: when, never the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GithubTokenUse {
    /// When GitHub last vouched for it: the revocation list treats this as its sign-in.
    pub checked_at: u64,
    /// When replicas stop relying on that answer and ask GitHub again.
    pub expires_at: u64,
}

/// Notes of the raw GitHub tokens accepted, per GitHub user id.
#[async_trait]
pub trait GithubTokenNotes: Send + Sync {
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
}
