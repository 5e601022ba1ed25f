//! The store on Redis, shared by every replica. One multiplexed connection (redis'
//! `ConnectionManager`, which reconnects by itself), a bound on requests waiting for it, and a
//! timeout on each call: a stalled Redis turns into quick "unavailable" answers, never a pile
//! of waiting requests. With Sentinel, the master is looked up again after a failure. With
//! Redis Cluster, the cluster connection follows MOVED/ASK and failovers itself; every key then
//! starts with the hash tag `{PREFIX}`, so all of them hash to one slot and the transactions
//! and scripts over several keys (a record and its per-user index, the revocation list and its
//! version) stay valid. The data is small; one shard holds it.
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
use redis::cluster_async::ClusterConnection;
use redis::{AsyncCommands, Client, RedisResult};
use std::future::Future;
use std::time::Duration;
use tokio::sync::{Mutex, Semaphore};

pub use crate::config::RedisOptions;

use super::{Store, StoreError};
use conn::Conn;

mod conn;
mod github_tokens;
mod grants;
mod revocations;
mod sessions;
mod settings_check;
mod sign_ins;
mod webhooks;

pub struct RedisStore {
    options: RedisOptions,
    connection: ArcSwapOption<Conn>,
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
    super::errors_counter().inc();
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

/// A pipeline step the concerns share.
trait PipelineExt {
    /// Let `key` live at least `secs` more: a TTL where it has none (`EXPIRE … NX`), a longer
    /// one where it has a shorter (`GT`), never a shorter one. For per-user indexes, which live
    /// as long as the longest-lived entry they list.
    fn expire_at_least(&mut self, key: &str, secs: u64) -> &mut Self;
}

impl PipelineExt for redis::Pipeline {
    fn expire_at_least(&mut self, key: &str, secs: u64) -> &mut Self {
        self.cmd("EXPIRE")
            .arg(key)
            .arg(secs)
            .arg("NX")
            .cmd("EXPIRE")
            .arg(key)
            .arg(secs)
            .arg("GT")
    }
}

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
        if self.options.cluster_urls.is_empty() {
            format!("{}{kind}:{id}", self.options.prefix)
        } else {
            // One hash tag for every key: see the module comment.
            format!("{{{}}}{kind}:{id}", self.options.prefix)
        }
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

    /// The cluster connection: the seed nodes are asked for the slot map now, so a failed
    /// connect is "unavailable" and the next call tries again.
    async fn cluster_connection(&self) -> RedisResult<ClusterConnection> {
        let mut builder = redis::cluster::ClusterClient::builder(self.options.cluster_urls.clone())
            .connection_timeout(self.options.timeout)
            .response_timeout(self.options.timeout)
            // A few quick retries for MOVED/ASK/TRYAGAIN; the call's own timeout bounds them.
            .retries(3)
            .min_retry_wait(10)
            .max_retry_wait(200);
        if let Some(pem) = &self.options.ca_pem {
            if self.options.cluster_urls[0].starts_with("rediss://") {
                builder = builder.certs(redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem.clone()),
                });
            }
        }
        builder.build()?.get_async_connection().await
    }

    async fn connection(&self) -> Result<Conn, StoreError> {
        if let Some(c) = self.connection.load_full() {
            return Ok((*c).clone());
        }
        let _one = self.connecting.lock().await;
        if let Some(c) = self.connection.load_full() {
            return Ok((*c).clone());
        }
        if !self.options.cluster_urls.is_empty() {
            let cluster = Conn::Cluster(self.cluster_connection().await.map_err(unavailable)?);
            self.connection
                .store(Some(std::sync::Arc::new(cluster.clone())));
            return Ok(cluster);
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
        let manager = Conn::Single(manager);
        self.connection
            .store(Some(std::sync::Arc::new(manager.clone())));
        Ok(manager)
    }

    /// Look at Redis' persistence and eviction settings, in the background, once.
    fn check_settings_once(&self, conn: Conn) {
        use std::sync::atomic::Ordering;
        if !self.settings_checked.load(Ordering::Relaxed)
            && !self.settings_checked.swap(true, Ordering::Relaxed)
        {
            let checked = std::sync::Arc::clone(&self.settings_checked);
            tokio::spawn(settings_check::warn_if_unsafe(conn, checked));
        }
    }

    /// `SET key 1 NX EX secs`: true when the key was not there (the first use of a one-time
    /// value), false when it was (a replay).
    async fn set_once(&self, key: String, secs: u64) -> Result<bool, StoreError> {
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
        F: FnOnce(Conn) -> Fut,
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
                // On a cluster, a failover can leave the connection's slot map pointing at a
                // node that answers MOVED to whole (aborted, never applied) transactions, which
                // it neither follows nor learns from: start afresh from the seed nodes.
                if !self.options.cluster_urls.is_empty() {
                    self.connection.store(None);
                }
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
}
