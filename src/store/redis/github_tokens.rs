//! Noted raw GitHub tokens on Redis: `gh-tokens:ID` (hash: token id → JSON of when GitHub
//! vouched for it).

use async_trait::async_trait;
use redis::AsyncCommands;

use super::super::{GithubTokenNotes, GithubTokenUse, StoreError};
use super::{decode, encode, ttl, PipelineExt, RedisStore};

#[async_trait]
impl GithubTokenNotes for RedisStore {
    async fn note_github_token(
        &self,
        user_id: &str,
        id: &str,
        seen: GithubTokenUse,
    ) -> Result<(), StoreError> {
        let index = self.key("gh-tokens", user_id);
        let (id, json) = (id.to_string(), encode(&seen)?);
        let secs = ttl(seen.expires_at, crate::clock::unix_now());
        self.call(|mut c| async move {
            redis::pipe()
                .atomic()
                .hset(&index, id, json)
                // The hash lives as long as its latest note.
                .expire_at_least(&index, secs)
                .query_async::<()>(&mut c)
                .await
        })
        .await
    }

    async fn user_github_tokens(
        &self,
        user_id: &str,
        now: u64,
    ) -> Result<Vec<(String, GithubTokenUse)>, StoreError> {
        let index = self.key("gh-tokens", user_id);
        let all: std::collections::HashMap<String, String> = self
            .call(|mut c| {
                let index = index.clone();
                async move { c.hgetall(index).await }
            })
            .await?;
        let mut live = Vec::new();
        let mut stale = Vec::new();
        let real_now = crate::clock::unix_now();
        for (id, json) in all {
            let seen: GithubTokenUse = decode(&json)?;
            // Notes past their end stay in the hash until it expires; drop them while here.
            if seen.expires_at <= real_now {
                stale.push(id.clone());
            }
            if now < seen.expires_at {
                live.push((id, seen));
            }
        }
        if !stale.is_empty() {
            self.call(|mut c| async move { c.hdel::<_, _, ()>(index, stale).await })
                .await?;
        }
        Ok(live)
    }
}
