//! What a sign-in leaves besides its session: the `state` it used (so it cannot be replayed),
//! and which GitHub id its login had (so admin requests can name users by login).

use async_trait::async_trait;

use super::StoreError;

/// Sign-in `state` values already used, by digest, until they would have expired.
#[async_trait]
pub trait SignInStates: Send + Sync {
    /// Mark a sign-in `state` used. False when it was used before (a replay).
    async fn consume_state(
        &self,
        state_hash: &str,
        until: u64,
        now: u64,
    ) -> Result<bool, StoreError>;
}

/// Lower-case GitHub login → GitHub id, as last seen at a sign-in, for admin requests by login.
#[async_trait]
pub trait LoginIds: Send + Sync {
    /// Remember which GitHub id a login (lower-case) had, until `until`.
    async fn remember_login(
        &self,
        login: &str,
        user_id: &str,
        until: u64,
    ) -> Result<(), StoreError>;
    async fn user_id_for(&self, login: &str) -> Result<Option<String>, StoreError>;
}
