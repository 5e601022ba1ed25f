//! One-time codes (`code:H`, `code-used:H`, the per-user index `user-codes:ID`) and
//! refresh-token families (`fam:ID`, `fam-revoked:ID`, the per-user index `user-families:ID`)
//! on Redis.

use async_trait::async_trait;
use redis::{AsyncCommands, Script};
use std::sync::LazyLock;

use super::super::{CodeGrant, CodeGrants, CodeTake, RefreshFamilies, RefreshFamily, StoreError};
use super::{decode, encode, ttl, PipelineExt, RedisStore};

/// Replace a family only while it is at the expected generation.
static ADVANCE_FAMILY: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"local cur = redis.call('GET', KEYS[1])
if not cur then return 0 end
local ok, f = pcall(cjson.decode, cur)
if not ok or f['generation'] ~= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 1",
    )
});

#[async_trait]
impl CodeGrants for RedisStore {
    async fn put_code(&self, code_hash: &str, grant: &CodeGrant) -> Result<(), StoreError> {
        let (key, json) = (self.key("code", code_hash), encode(grant)?);
        let index = self.key("user-codes", &grant.session.user_id);
        let secs = ttl(grant.expires_at, crate::clock::unix_now());
        let code_hash = code_hash.to_string();
        self.call(|mut c| async move {
            redis::pipe()
                .atomic()
                .set_ex(key, json, secs)
                .sadd(&index, code_hash)
                .expire_at_least(&index, secs)
                .query_async::<()>(&mut c)
                .await
        })
        .await
    }

    async fn take_code(&self, code_hash: &str, now: u64) -> Result<CodeTake, StoreError> {
        let (key, used) = (
            self.key("code", code_hash),
            self.key("code-used", code_hash),
        );
        let found: Option<String> = self
            .call(|mut c| async move { c.get_del(key).await })
            .await?;
        match found {
            Some(json) => {
                let grant: CodeGrant = decode(&json)?;
                // Remembered as used for as long as it would have lived, plus a margin.
                let secs = ttl(grant.expires_at, now) + 60;
                self.call(|mut c| async move { c.set_ex::<_, _, ()>(used, 1, secs).await })
                    .await?;
                Ok(if now < grant.expires_at {
                    CodeTake::Granted(Box::new(grant))
                } else {
                    CodeTake::Unknown
                })
            }
            None => {
                let was_used: bool = self
                    .call(|mut c| async move { c.exists(used).await })
                    .await?;
                Ok(if was_used {
                    CodeTake::AlreadyUsed
                } else {
                    CodeTake::Unknown
                })
            }
        }
    }

    async fn drop_user_codes(&self, user_id: &str, _now: u64) -> Result<usize, StoreError> {
        let index = self.key("user-codes", user_id);
        let listed = index.clone();
        let hashes: Vec<String> = self
            .call(|mut c| async move { c.smembers(listed).await })
            .await?;
        if hashes.is_empty() {
            return Ok(0);
        }
        // A code's key expires with it, so the keys deleted are the live codes.
        let keys: Vec<String> = hashes.iter().map(|h| self.key("code", h)).collect();
        let deleted: Vec<usize> = self
            .call(|mut c| async move {
                let mut pipe = redis::pipe();
                for key in &keys {
                    pipe.del(key);
                }
                pipe.srem(&index, &hashes).ignore();
                pipe.query_async(&mut c).await
            })
            .await?;
        Ok(deleted.iter().sum())
    }
}

#[async_trait]
impl RefreshFamilies for RedisStore {
    async fn put_family(&self, id: &str, family: &RefreshFamily) -> Result<(), StoreError> {
        let (key, json) = (self.key("fam", id), encode(family)?);
        let index = self.key("user-families", &family.session.user_id);
        let now = crate::clock::unix_now();
        let secs = ttl(family.expires_at, now);
        // Refreshes move a family's end on, but never past its sign-in's: the index lives as
        // long as the longest sign-in it lists.
        let index_secs = ttl(family.expires_at.max(family.session.exp), now);
        let id = id.to_string();
        self.call(|mut c| async move {
            redis::pipe()
                .atomic()
                .set_ex(key, json, secs)
                .sadd(&index, id)
                .expire_at_least(&index, index_secs)
                .query_async::<()>(&mut c)
                .await
        })
        .await
    }

    async fn family(&self, id: &str, now: u64) -> Result<Option<RefreshFamily>, StoreError> {
        let key = self.key("fam", id);
        let json: Option<String> = self.call(|mut c| async move { c.get(key).await }).await?;
        Ok(match json {
            Some(json) => Some(decode::<RefreshFamily>(&json)?).filter(|f| now < f.expires_at),
            None => None,
        })
    }

    async fn advance_family(
        &self,
        id: &str,
        expected_generation: u64,
        next: &RefreshFamily,
    ) -> Result<bool, StoreError> {
        let (key, json) = (self.key("fam", id), encode(next)?);
        let secs = ttl(next.expires_at, crate::clock::unix_now());
        let moved: i64 = self
            .call(|mut c| async move {
                ADVANCE_FAMILY
                    .key(key)
                    .arg(expected_generation)
                    .arg(json)
                    .arg(secs)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        Ok(moved == 1)
    }

    async fn user_families(
        &self,
        user_id: &str,
        now: u64,
    ) -> Result<Vec<(String, RefreshFamily)>, StoreError> {
        let index = self.key("user-families", user_id);
        let ids = self.index_members(&index).await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = ids.iter().map(|id| self.key("fam", id)).collect();
        let found: Vec<Option<String>> = self
            .call(|mut c| async move {
                let mut pipe = redis::pipe();
                for k in &keys {
                    pipe.get(k);
                }
                pipe.query_async(&mut c).await
            })
            .await?;
        let mut live = Vec::new();
        let mut gone = Vec::new();
        for (id, json) in ids.into_iter().zip(found) {
            match json {
                Some(json) => {
                    let family: RefreshFamily = decode(&json)?;
                    if now < family.expires_at && family.session.user_id == user_id {
                        live.push((id, family));
                    }
                }
                None => gone.push(id),
            }
        }
        if !gone.is_empty() {
            // Revoked and expired families leave their id in the index; tidy it while here.
            self.drop_from_index(index, gone).await?;
        }
        Ok(live)
    }

    async fn revoke_family(&self, id: &str, until: u64) -> Result<(), StoreError> {
        let (key, revoked) = (self.key("fam", id), self.key("fam-revoked", id));
        let secs = ttl(until, crate::clock::unix_now());
        self.call(|mut c| async move {
            redis::pipe()
                .atomic()
                .del(key)
                .set_ex(revoked, until, secs)
                .query_async::<()>(&mut c)
                .await
        })
        .await
    }

    async fn is_revoked(&self, id: &str, now: u64) -> Result<bool, StoreError> {
        let key = self.key("fam-revoked", id);
        let until: Option<u64> = self.call(|mut c| async move { c.get(key).await }).await?;
        Ok(until.is_some_and(|u| now < u))
    }
}
