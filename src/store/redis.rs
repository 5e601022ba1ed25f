//! The store on Redis, shared by every replica. One multiplexed connection (redis'
//! `ConnectionManager`, which reconnects by itself), a bound on requests waiting for it, and a
//! timeout on each call: a stalled Redis turns into quick "unavailable" answers, never a pile
//! of waiting requests. With Sentinel, the master is looked up again after a failure.
//!
//! Layout (all keys under the prefix, each expiring with what it holds):
//! `code:H` / `code-used:H`, `fam:ID` / `fam-revoked:ID`, `state:H`, `sess:K` (hash: `record`
//! JSON, `last_seen`), `user-sessions:ID` (set of K), `login:LOGIN`, `marks:list` (the
//! revocation list: one hash, see [`revocations`]), `marks:version` (a change counter that
//! replicas from before epochs watch), `delivery:ID` (webhook deliveries seen).
//! Per-user indexes for the admin: `user-families:ID` (set of family ids) and `gh-tokens:ID`
//! (hash: token id → JSON of when GitHub vouched for it).

use arc_swap::ArcSwapOption;
use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Client, RedisResult, Script};
use std::future::Future;
use std::sync::LazyLock;
use std::time::Duration;
use tokio::sync::{Mutex, Semaphore};

use super::{
    CodeGrant, CodeTake, GithubTokenUse, ListRead, RefreshFamily, RevocationList, SessionRecord,
    Store, StoreError, UserMark,
};

mod revocations;
mod settings_check;

/// How to reach Redis (validated config).
#[derive(Clone)]
pub struct RedisOptions {
    /// `redis://` or `rediss://`; with Sentinel, only its credentials and db are used.
    pub url: Option<String>,
    pub sentinel_urls: Vec<String>,
    pub sentinel_master: Option<String>,
    /// PEM roots for `rediss://` (unset: the system's).
    pub ca_pem: Option<Vec<u8>>,
    /// Bound on each call, connecting included.
    pub timeout: Duration,
    /// Calls allowed to wait on Redis at once; more are refused at once.
    pub max_waiting: usize,
    pub prefix: String,
}

impl std::fmt::Debug for RedisOptions {
    // URLs may carry a password: shown masked.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use crate::config::redact_url;
        let sentinels: Vec<_> = self.sentinel_urls.iter().map(|u| redact_url(u)).collect();
        f.debug_struct("RedisOptions")
            .field("url", &self.url.as_deref().map(redact_url))
            .field("sentinel_urls", &sentinels)
            .field("sentinel_master", &self.sentinel_master)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

pub struct RedisStore {
    options: RedisOptions,
    connection: ArcSwapOption<ConnectionManager>,
    /// One lookup of the master (or client build) at a time.
    connecting: Mutex<()>,
    waiting: Semaphore,
    /// The persistence and eviction settings were looked at (once per process).
    settings_checked: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    // The redis crate may quote the URL it was given; `/ready` shows this text to anyone.
    StoreError::Unavailable(crate::config::redact_urls_in(&e.to_string()).into_owned())
}

/// Seconds from `now` until `until`, at least 1 (Redis refuses 0).
fn ttl(until: u64, now: u64) -> u64 {
    until.saturating_sub(now).max(1)
}

fn decode<T: serde::de::DeserializeOwned>(json: &str) -> Result<T, StoreError> {
    serde_json::from_str(json).map_err(|e| unavailable(format!("unreadable record in Redis: {e}")))
}

fn encode<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(unavailable)
}

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

impl RedisStore {
    /// Nothing is contacted yet: the first call connects (so a gate starts even while Redis
    /// is down, and reports not-ready until it is up).
    pub fn new(options: RedisOptions) -> RedisStore {
        RedisStore {
            waiting: Semaphore::new(options.max_waiting.max(1)),
            options,
            connection: ArcSwapOption::empty(),
            connecting: Mutex::new(()),
            settings_checked: Default::default(),
        }
    }

    fn key(&self, kind: &str, id: &str) -> String {
        format!("{}{kind}:{id}", self.options.prefix)
    }

    fn client(&self, url: &str) -> RedisResult<Client> {
        match &self.options.ca_pem {
            Some(pem) if url.starts_with("rediss://") => Client::build_with_tls(
                url,
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem.clone()),
                },
            ),
            _ => Client::open(url),
        }
    }

    async fn master_client(&self) -> RedisResult<Client> {
        let Some(master) = &self.options.sentinel_master else {
            return self.client(self.options.url.as_deref().unwrap_or_default());
        };
        let mut sentinel = redis::sentinel::Sentinel::build(self.options.sentinel_urls.clone())?;
        let node = self
            .options
            .url
            .as_deref()
            .map(redis::IntoConnectionInfo::into_connection_info)
            .transpose()?
            .map(|info| {
                let tls = match info.addr() {
                    redis::ConnectionAddr::TcpTls { insecure, .. } => Some(if *insecure {
                        redis::TlsMode::Insecure
                    } else {
                        redis::TlsMode::Secure
                    }),
                    _ => None,
                };
                let node = redis::sentinel::SentinelNodeConnectionInfo::default()
                    .set_redis_connection_info(info.redis_settings().clone());
                match tls {
                    Some(mode) => node.set_tls_mode(mode),
                    None => node,
                }
            });
        sentinel.async_master_for(master, node.as_ref()).await
    }

    async fn connection(&self) -> Result<ConnectionManager, StoreError> {
        if let Some(c) = self.connection.load_full() {
            return Ok((*c).clone());
        }
        let _one = self.connecting.lock().await;
        if let Some(c) = self.connection.load_full() {
            return Ok((*c).clone());
        }
        let client = self.master_client().await.map_err(unavailable)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.options.timeout))
            .set_response_timeout(Some(self.options.timeout))
            // No hidden retries: the caller sees the real reason (a refused certificate, a
            // refused connection) at once, and the next call simply tries again.
            .set_number_of_retries(0)
            .set_max_delay(Duration::from_millis(500));
        let manager =
            ConnectionManager::new_lazy_with_config(client, config).map_err(unavailable)?;
        self.connection
            .store(Some(std::sync::Arc::new(manager.clone())));
        Ok(manager)
    }

    /// Look at Redis' persistence and eviction settings, in the background, once.
    fn check_settings_once(&self, conn: ConnectionManager) {
        use std::sync::atomic::Ordering;
        if !self.settings_checked.load(Ordering::Relaxed)
            && !self.settings_checked.swap(true, Ordering::Relaxed)
        {
            let checked = std::sync::Arc::clone(&self.settings_checked);
            tokio::spawn(settings_check::warn_if_unsafe(conn, checked));
        }
    }

    /// The ids in a per-user index set (`user-sessions:ID`, `user-families:ID`).
    async fn index_members(&self, index: &str) -> Result<Vec<String>, StoreError> {
        let index = index.to_string();
        self.call(|mut c| async move { c.smembers(index).await })
            .await
    }

    /// Remove ids whose records are gone (expired, revoked) from a per-user index set.
    async fn drop_from_index(&self, index: String, gone: Vec<String>) -> Result<(), StoreError> {
        self.call(|mut c| async move { c.srem::<_, _, ()>(index, gone).await })
            .await
    }

    /// Run one call with the bounds: refused at once when too many wait, cut at the timeout.
    async fn call<T, F, Fut>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let _permit = self
            .waiting
            .try_acquire()
            .map_err(|_| unavailable("too many requests are waiting for Redis"))?;
        let result = tokio::time::timeout(self.options.timeout, async {
            let conn = self.connection().await?;
            let spare = conn.clone();
            let result = f(conn).await;
            if result.is_ok() {
                self.check_settings_once(spare);
            }
            result.map_err(|e| {
                // With Sentinel, a failure may mean the master moved: look it up again.
                if self.options.sentinel_master.is_some()
                    && (e.is_io_error()
                        || e.is_connection_dropped()
                        || e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::ReadOnly))
                {
                    self.connection.store(None);
                }
                unavailable(e)
            })
        })
        .await;
        match result {
            Ok(r) => r,
            Err(_) => {
                if self.options.sentinel_master.is_some() {
                    self.connection.store(None);
                }
                Err(unavailable(format!(
                    "no answer from Redis within {:?}",
                    self.options.timeout
                )))
            }
        }
    }
}

#[async_trait]
impl Store for RedisStore {
    async fn ping(&self) -> Result<(), StoreError> {
        self.call(|mut c| async move { redis::cmd("PING").query_async::<String>(&mut c).await })
            .await
            .map(drop)
    }

    async fn put_code(&self, code_hash: &str, grant: &CodeGrant) -> Result<(), StoreError> {
        let (key, json) = (self.key("code", code_hash), encode(grant)?);
        let secs = ttl(grant.expires_at, crate::clock::unix_now());
        self.call(|mut c| async move { c.set_ex::<_, _, ()>(key, json, secs).await })
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
                .cmd("EXPIRE")
                .arg(&index)
                .arg(index_secs)
                .arg("NX")
                .cmd("EXPIRE")
                .arg(&index)
                .arg(index_secs)
                .arg("GT")
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

    async fn consume_state(
        &self,
        state_hash: &str,
        until: u64,
        now: u64,
    ) -> Result<bool, StoreError> {
        let key = self.key("state", state_hash);
        let secs = ttl(until, now);
        let set: Option<String> = self
            .call(|mut c| async move {
                redis::cmd("SET")
                    .arg(key)
                    .arg(1)
                    .arg("NX")
                    .arg("EX")
                    .arg(secs)
                    .query_async(&mut c)
                    .await
            })
            .await?;
        Ok(set.is_some())
    }

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
                .cmd("EXPIRE")
                .arg(&index)
                .arg(secs)
                .arg("NX")
                .cmd("EXPIRE")
                .arg(&index)
                .arg(secs)
                .arg("GT")
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
                .cmd("EXPIRE")
                .arg(&index)
                .arg(secs)
                .arg("NX")
                .cmd("EXPIRE")
                .arg(&index)
                .arg(secs)
                .arg("GT")
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

    async fn mark_user(&self, user_id: &str, mark: UserMark) -> Result<(), StoreError> {
        self.mark_user_in_list(user_id, mark).await
    }

    async fn revocation_list(
        &self,
        known_stamp: &str,
        keep: u64,
        now: u64,
    ) -> Result<ListRead, StoreError> {
        self.read_list(known_stamp, keep, now).await
    }

    async fn republish(
        &self,
        copy: &RevocationList,
        vouch: bool,
        keep: u64,
        now: u64,
    ) -> Result<RevocationList, StoreError> {
        self.republish_list(copy, vouch, keep, now).await
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

    async fn remember_delivery(&self, id: &str, until: u64, now: u64) -> Result<bool, StoreError> {
        let key = self.key("delivery", id);
        let secs = ttl(until, now);
        let set: Option<String> = self
            .call(|mut c| async move {
                redis::cmd("SET")
                    .arg(key)
                    .arg(1)
                    .arg("NX")
                    .arg("EX")
                    .arg(secs)
                    .query_async(&mut c)
                    .await
            })
            .await?;
        Ok(set.is_some())
    }

    async fn forget_delivery(&self, id: &str) -> Result<(), StoreError> {
        let key = self.key("delivery", id);
        self.call(|mut c| async move { c.del::<_, ()>(key).await })
            .await
    }
}
