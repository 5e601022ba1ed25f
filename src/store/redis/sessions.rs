//! Server-side sessions on Redis: `sess:K` (hash: `record` JSON, `last_seen`), the per-user
//! index `user-sessions:ID` (set of K), and `sessions:by-expiry` (sorted set, for the count).

use async_trait::async_trait;
use redis::{AsyncCommands, Script};
use std::sync::LazyLock;

use super::super::{SessionRecord, SessionRecords, StoreError};
use super::{decode, encode, ttl, PipelineExt, RedisStore};

/// Note activity only on a session that still exists.
static TOUCH_SESSION: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local seen = tonumber(redis.call('HGET', KEYS[1], 'last_seen') or '0')
if seen < tonumber(ARGV[1]) then redis.call('HSET', KEYS[1], 'last_seen', ARGV[1]) end
return 1",
    )
});

/// Replace a session only while it exists (KEYS: the record, its user's index, the expiry
/// index; ARGV: user id, record JSON, last_seen, seconds to live, session id, expiry).
static UPDATE_SESSION: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"local cur = redis.call('HGET', KEYS[1], 'record')
if not cur then return 0 end
local ok, r = pcall(cjson.decode, cur)
if not ok or type(r) ~= 'table' or type(r['claims']) ~= 'table' or r['claims']['sub'] ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'record', ARGV[2])
local seen = tonumber(redis.call('HGET', KEYS[1], 'last_seen') or '0')
if seen < tonumber(ARGV[3]) then redis.call('HSET', KEYS[1], 'last_seen', ARGV[3]) end
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('SADD', KEYS[2], ARGV[5])
redis.call('EXPIRE', KEYS[2], ARGV[4], 'NX')
redis.call('EXPIRE', KEYS[2], ARGV[4], 'GT')
redis.call('ZADD', KEYS[3], ARGV[6], ARGV[5])
return 1",
    )
});

#[async_trait]
impl SessionRecords for RedisStore {
    async fn put_session(&self, key: &str, record: &SessionRecord) -> Result<(), StoreError> {
        let now = crate::clock::unix_now();
        let secs = ttl(record.expires_at(), now);
        let (sess, index) = (
            self.key("sess", key),
            self.key("user-sessions", record.user_id()),
        );
        let (json, id, last_seen) = (encode(record)?, key.to_string(), record.last_seen);
        let (by_expiry, record_exp) = (self.key("sessions", "by-expiry"), record.expires_at());
        self.call(|mut c| async move {
            redis::pipe()
                .atomic()
                .del(&sess)
                .hset_multiple(&sess, &[("record", json)])
                .hset(&sess, "last_seen", last_seen)
                .expire(&sess, secs as i64)
                .sadd(&index, &id)
                .zadd(&by_expiry, &id, record_exp)
                // The index lives as long as its longest session.
                .expire_at_least(&index, secs)
                .query_async::<()>(&mut c)
                .await
        })
        .await
    }

    async fn session(&self, key: &str, now: u64) -> Result<Option<SessionRecord>, StoreError> {
        let sess = self.key("sess", key);
        let (json, seen): (Option<String>, Option<u64>) = self
            .call(|mut c| async move {
                redis::cmd("HMGET")
                    .arg(sess)
                    .arg("record")
                    .arg("last_seen")
                    .query_async(&mut c)
                    .await
            })
            .await?;
        let Some(json) = json else { return Ok(None) };
        let mut record: SessionRecord = decode(&json)?;
        record.last_seen = record.last_seen.max(seen.unwrap_or(0));
        Ok(Some(record).filter(|r| now < r.expires_at()))
    }

    async fn touch_session(&self, key: &str, last_seen: u64) -> Result<(), StoreError> {
        let sess = self.key("sess", key);
        self.call(|mut c| async move {
            TOUCH_SESSION
                .key(sess)
                .arg(last_seen)
                .invoke_async::<i64>(&mut c)
                .await
        })
        .await
        .map(drop)
    }

    async fn update_session(&self, key: &str, record: &SessionRecord) -> Result<bool, StoreError> {
        let now = crate::clock::unix_now();
        let secs = ttl(record.expires_at(), now);
        let (sess, index, by_expiry) = (
            self.key("sess", key),
            self.key("user-sessions", record.user_id()),
            self.key("sessions", "by-expiry"),
        );
        let (user, json, id) = (
            record.user_id().to_string(),
            encode(record)?,
            key.to_string(),
        );
        let (last_seen, exp) = (record.last_seen, record.expires_at());
        let replaced: i64 = self
            .call(|mut c| async move {
                UPDATE_SESSION
                    .key(sess)
                    .key(index)
                    .key(by_expiry)
                    .arg(user)
                    .arg(json)
                    .arg(last_seen)
                    .arg(secs)
                    .arg(id)
                    .arg(exp)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        Ok(replaced == 1)
    }

    async fn delete_session(&self, key: &str) -> Result<Option<SessionRecord>, StoreError> {
        let sess = self.key("sess", key);
        let found: Option<String> = self
            .call(|mut c| {
                let sess = sess.clone();
                async move { c.hget(sess, "record").await }
            })
            .await?;
        let Some(json) = found else { return Ok(None) };
        let record: SessionRecord = decode(&json)?;
        let index = self.key("user-sessions", record.user_id());
        let by_expiry = self.key("sessions", "by-expiry");
        let id = key.to_string();
        let deleted: (i64, i64, i64) = self
            .call(|mut c| async move {
                redis::pipe()
                    .atomic()
                    .del(sess)
                    .srem(index, &id)
                    .zrem(by_expiry, &id)
                    .query_async(&mut c)
                    .await
            })
            .await?;
        Ok((deleted.0 == 1).then_some(record))
    }

    async fn user_sessions(
        &self,
        user_id: &str,
        now: u64,
    ) -> Result<Vec<(String, SessionRecord)>, StoreError> {
        let index = self.key("user-sessions", user_id);
        let ids = self.index_members(&index).await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = ids.iter().map(|id| self.key("sess", id)).collect();
        let found: Vec<(Option<String>, Option<u64>)> = self
            .call(|mut c| async move {
                let mut pipe = redis::pipe();
                for k in &keys {
                    pipe.cmd("HMGET").arg(k).arg("record").arg("last_seen");
                }
                pipe.query_async(&mut c).await
            })
            .await?;
        let mut live = Vec::new();
        let mut gone = Vec::new();
        for (id, (json, seen)) in ids.into_iter().zip(found) {
            match json {
                Some(json) => {
                    let mut record: SessionRecord = decode(&json)?;
                    record.last_seen = record.last_seen.max(seen.unwrap_or(0));
                    if now < record.expires_at() {
                        live.push((id, record));
                    }
                }
                None => gone.push(id),
            }
        }
        if !gone.is_empty() {
            // Expired sessions leave their id in the index; tidy it while here.
            self.drop_from_index(index, gone).await?;
        }
        Ok(live)
    }

    async fn delete_user_sessions(&self, user_id: &str) -> Result<usize, StoreError> {
        let index = self.key("user-sessions", user_id);
        let ids = self.index_members(&index).await?;
        if ids.is_empty() {
            return Ok(0);
        }
        let keys: Vec<String> = ids.iter().map(|id| self.key("sess", id)).collect();
        let by_expiry = self.key("sessions", "by-expiry");
        let (deleted, _, _): (usize, i64, i64) = self
            .call(|mut c| async move {
                redis::pipe()
                    .atomic()
                    .del(keys)
                    .del(index)
                    .zrem(by_expiry, ids)
                    .query_async(&mut c)
                    .await
            })
            .await?;
        Ok(deleted)
    }

    async fn count_sessions(&self, now: u64) -> Result<u64, StoreError> {
        let by_expiry = self.key("sessions", "by-expiry");
        let (live,): (u64,) = self
            .call(|mut c| async move {
                redis::pipe()
                    .atomic()
                    // Expired sessions leave with their keys; drop them from the index too.
                    .zrembyscore(&by_expiry, "-inf", crate::clock::unix_now())
                    .ignore()
                    .zcount(&by_expiry, format!("({now}"), "+inf")
                    .query_async(&mut c)
                    .await
            })
            .await?;
        Ok(live)
    }
}
