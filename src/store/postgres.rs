//! The store on PostgreSQL, shared by every replica. A bounded pool (deadpool), a bound on
//! requests waiting for it, and a timeout on each call (client side, and the same as
//! `statement_timeout` on the server, since dropping a future does not stop a query): a stalled
//! database turns into quick "unavailable" answers, never a pile of waiting requests. A closed
//! connection is noticed when taken from the pool, and a new one is made: a restarted database
//! is used again without restarting the gate.
//!
//! Tables (in `session.postgres_schema`, made by [`migrations`]): each row carries its expiry
//! (unix seconds, the replica's clock, as the trait methods give it), reads ignore expired rows,
//! and `prune` deletes them in small batches now and then.

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use std::future::Future;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::{Mutex, Semaphore};

pub use crate::config::PostgresOptions;
use crate::config::PostgresTls;

use super::{Store, StoreError};

mod github_tokens;
mod grants;
pub mod migrations;
mod prune;
mod revocations;
mod sessions;
mod sign_ins;
mod webhooks;

/// Calls allowed to wait on PostgreSQL at once, per process; more get "unavailable" at once.
const MAX_WAITING: usize = 1024;

pub struct PostgresStore {
    options: PostgresOptions,
    pool: Pool,
    waiting: Semaphore,
    /// The schema is at this binary's version (migrated before first use, and again if the
    /// tables are found missing: a database replaced or restored from an old dump).
    migrated: AtomicBool,
    /// One migration attempt at a time; holds the last failure and when it was, so callers
    /// that waited for a failed attempt share its answer instead of each trying in turn.
    migrating: Mutex<Option<(std::time::Instant, StoreError)>>,
    /// When this process last pruned expired rows (unix seconds).
    last_prune: Arc<AtomicU64>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

pub(crate) fn unavailable(e: impl std::fmt::Display) -> StoreError {
    super::errors_counter().inc();
    // Driver errors may quote what they were given; `/ready` shows this text to anyone.
    StoreError::Unavailable(crate::config::redact_urls_in(&e.to_string()).into_owned())
}

/// A driver error with the server's reason (its `Display` alone says only "db error").
pub(crate) fn db_error(e: &tokio_postgres::Error) -> StoreError {
    match e.as_db_error() {
        Some(db) => unavailable(format!(
            "PostgreSQL: {} ({})",
            db.message(),
            db.code().code()
        )),
        None => unavailable(e),
    }
}

fn decode<T: serde::de::DeserializeOwned>(json: &str) -> Result<T, StoreError> {
    serde_json::from_str(json)
        .map_err(|e| unavailable(format!("unreadable record in PostgreSQL: {e}")))
}

fn encode<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(unavailable)
}

/// Unix seconds as PostgreSQL's `bigint` (saturating: no time Gatehouse writes is that far).
fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A `bigint` back to unix seconds (negative: never written; read as 0).
fn secs(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// The error a call's closure returns: the driver's, or a record it could not read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CallError {
    #[error(transparent)]
    Db(#[from] tokio_postgres::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The driver's connection settings: the URL plus the bounds and the schema.
fn pg_config(options: &PostgresOptions) -> Result<tokio_postgres::Config, StoreError> {
    let mut config: tokio_postgres::Config = options.url.parse().map_err(unavailable)?;
    let ms = options.timeout.as_millis();
    let mut server = config.get_options().unwrap_or_default().to_string();
    // Time out on the server too: a query cut short on this side would run on there.
    server.push_str(&format!(
        " -c search_path={} -c statement_timeout={ms} -c lock_timeout={ms}",
        options.schema
    ));
    config.options(server.trim());
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(options.timeout);
    }
    if config.get_application_name().is_none() {
        config.application_name("gatehouse");
    }
    config.ssl_mode(match options.tls {
        PostgresTls::Disable => tokio_postgres::config::SslMode::Disable,
        PostgresTls::VerifyFull => tokio_postgres::config::SslMode::Require,
    });
    Ok(config)
}

/// rustls with the configured roots (or the system's): the chain and the host name checked.
fn tls_connector(
    options: &PostgresOptions,
) -> Result<tokio_postgres_rustls::MakeRustlsConnect, StoreError> {
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    let mut roots = rustls::RootCertStore::empty();
    match &options.ca_pem {
        Some(pem) => {
            for cert in CertificateDer::pem_slice_iter(pem) {
                roots.add(cert.map_err(unavailable)?).map_err(unavailable)?;
            }
        }
        None => {
            for cert in rustls_native_certs::load_native_certs().certs {
                // A system root rustls cannot read is skipped, as every rustls client does.
                let _ = roots.add(cert);
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(unavailable)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

impl PostgresStore {
    /// Nothing is contacted yet: the first call connects and migrates (so a gate starts even
    /// while the database is down, and reports not-ready until it is up).
    pub fn new(options: PostgresOptions) -> Result<PostgresStore, StoreError> {
        let config = pg_config(&options)?;
        let manager_config = ManagerConfig {
            // A closed connection (the server restarted) is dropped when taken; no round trip.
            recycling_method: RecyclingMethod::Fast,
        };
        let manager = match options.tls {
            PostgresTls::Disable => {
                Manager::from_config(config, tokio_postgres::NoTls, manager_config)
            }
            PostgresTls::VerifyFull => {
                Manager::from_config(config, tls_connector(&options)?, manager_config)
            }
        };
        let t = Some(options.timeout);
        let pool = Pool::builder(manager)
            .max_size(options.pool_size)
            .wait_timeout(t)
            .create_timeout(t)
            .recycle_timeout(t)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(unavailable)?;
        Ok(PostgresStore {
            options,
            pool,
            waiting: Semaphore::new(MAX_WAITING),
            migrated: AtomicBool::new(false),
            migrating: Mutex::new(None),
            last_prune: Arc::default(),
        })
    }

    /// Bring the schema to this binary's version (`gatehouse migrate`, and before first use).
    pub async fn migrate(&self) -> Result<migrations::Applied, StoreError> {
        let mut client = self.pool.get().await.map_err(unavailable)?;
        migrations::run(&mut client, &self.options.schema).await
    }

    /// Migrated once per process; a failure is tried again by the next call.
    async fn ensure_schema(&self) -> Result<(), StoreError> {
        if self.migrated.load(Ordering::Acquire) {
            return Ok(());
        }
        // Several replicas may wait on each other's migration: a longer bound.
        let bound = self.options.timeout.max(std::time::Duration::from_secs(5));
        let run = async {
            let mut last_failure = self.migrating.lock().await;
            if self.migrated.load(Ordering::Acquire) {
                return Ok(());
            }
            if let Some((when, e)) = &*last_failure {
                if when.elapsed() < self.options.timeout {
                    return Err(e.clone());
                }
            }
            match self.migrate().await {
                Ok(_) => {
                    self.migrated.store(true, Ordering::Release);
                    *last_failure = None;
                    Ok(())
                }
                Err(e) => {
                    *last_failure = Some((std::time::Instant::now(), e.clone()));
                    Err(e)
                }
            }
        };
        match tokio::time::timeout(bound, run).await {
            Ok(done) => done,
            Err(_) => Err(unavailable(format!(
                "migrating the schema took longer than {bound:?}"
            ))),
        }
    }

    /// Run one call with the bounds: refused at once when too many wait, cut at the timeout.
    async fn call<T, F, Fut>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(Object) -> Fut,
        Fut: Future<Output = Result<T, CallError>>,
    {
        let _permit = self
            .waiting
            .try_acquire()
            .map_err(|_| unavailable("too many requests are waiting for PostgreSQL"))?;
        self.ensure_schema().await?;
        let result = tokio::time::timeout(self.options.timeout, async {
            let client = self.pool.get().await.map_err(unavailable)?;
            f(client).await.map_err(|e| match e {
                CallError::Db(e) => {
                    if e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE) {
                        // The tables are gone: make them again on the next call.
                        self.migrated.store(false, Ordering::Release);
                    }
                    db_error(&e)
                }
                CallError::Store(e) => e,
            })
        })
        .await;
        let result = match result {
            Ok(r) => r,
            Err(_) => Err(unavailable(format!(
                "no answer from PostgreSQL within {:?}",
                self.options.timeout
            ))),
        };
        if result.is_ok() {
            self.prune_now_and_then();
        }
        result
    }

    /// Now and then (each replica about once a minute), delete expired rows in the background.
    fn prune_now_and_then(&self) {
        let now = crate::clock::unix_now();
        let last = self.last_prune.load(Ordering::Relaxed);
        if now < last.saturating_add(prune::EVERY_SECS) {
            return;
        }
        if self
            .last_prune
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            let (pool, timeout) = (self.pool.clone(), self.options.timeout);
            tokio::spawn(prune::expired(pool, timeout, now));
        }
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn ping(&self) -> Result<(), StoreError> {
        self.call(|c| async move {
            c.simple_query("SELECT 1").await?;
            Ok(())
        })
        .await
    }
}
