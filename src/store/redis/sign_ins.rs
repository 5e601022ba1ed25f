//! Used sign-in states (`state:H`) and logins' ids (`login:LOGIN`) on Redis.

use async_trait::async_trait;
use redis::AsyncCommands;

use super::super::{LoginIds, SignInStates, StoreError};
use super::{ttl, RedisStore};

#[async_trait]
impl SignInStates for RedisStore {
    async fn consume_state(
        &self,
        state_hash: &str,
        until: u64,
        now: u64,
    ) -> Result<bool, StoreError> {
        let key = self.key("state", state_hash);
        let secs = ttl(until, now);
        self.set_once(key, secs).await
    }
}

#[async_trait]
impl LoginIds for RedisStore {
    async fn remember_login(
        &self,
        login: &str,
        user_id: &str,
        until: u64,
    ) -> Result<(), StoreError> {
        let (key, id) = (self.key("login", login), user_id.to_string());
        let secs = ttl(until, crate::clock::unix_now());
        self.call(|mut c| async move { c.set_ex::<_, _, ()>(key, id, secs).await })
            .await
    }

    async fn user_id_for(&self, login: &str) -> Result<Option<String>, StoreError> {
        let key = self.key("login", login);
        self.call(|mut c| async move { c.get(key).await }).await
    }
}
