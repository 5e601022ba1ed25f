//! Where shared state lives: server-side sessions, one-time codes, refresh-token families and
//! their revocations, used sign-in states, logins' ids, noted GitHub tokens, webhook deliveries,
//! and the per-user revocation list. Each concern is a small trait in its own module, with its
//! records, so code that needs one concern can take only that one:
//!
//! | trait | module | what |
//! | --- | --- | --- |
//! | [`SessionRecords`] | `sessions` | server-side sessions, per-user index, count |
//! | [`SignInStates`] | `sign_ins` | sign-in `state` values used (replay guard) |
//! | [`LoginIds`] | `sign_ins` | login → GitHub id, for admin requests by login |
//! | [`CodeGrants`] | `grants` | one-time codes until `/oauth2/token` trades them |
//! | [`RefreshFamilies`] | `grants` | refresh-token families and their revocation |
//! | [`UserRevocations`] | `revocations` | the per-user revocation list all replicas read |
//! | [`WebhookDeliveries`] | `webhooks` | webhook deliveries seen (replay guard) |
//! | [`GithubTokenNotes`] | `github_tokens` | raw GitHub tokens accepted, for the admin listing |
//!
//! [`Store`] is all of them (plus a health check); the runtime holds one `Arc<dyn Store>`, and
//! every concern's methods can be called on it. Two implementations: [`MemoryStore`] for one
//! process, [`RedisStore`] for replicas sharing Redis, [`PostgresStore`] for replicas sharing a
//! PostgreSQL database. All pass the same suite (`conformance`: unit tests, and the integration tests through the
//! `conformance` feature; not compiled into release builds).

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
mod github_tokens;
mod grants;
mod memory;
pub mod postgres;
mod redis;
mod revocations;
mod sessions;
mod sign_ins;
mod webhooks;

pub use github_tokens::{GithubTokenNotes, GithubTokenUse};
pub use grants::{CodeGrant, CodeGrants, CodeTake, RefreshFamilies, RefreshFamily, TokenOrigin};
pub use memory::MemoryStore;
pub use postgres::{PostgresOptions, PostgresStore};
pub use redis::{RedisOptions, RedisStore};
pub use revocations::{ListRead, Marks, RevocationList, UserMark, UserRevocations};
pub use sessions::{SessionRecord, SessionRecords};
pub use sign_ins::{LoginIds, SignInStates};
pub use webhooks::WebhookDeliveries;

use async_trait::async_trait;

/// The store the settings ask for: Redis or PostgreSQL when configured, else this process's
/// memory.
pub fn open(
    settings: &crate::config::StoreSettings,
) -> Result<std::sync::Arc<dyn Store>, StoreError> {
    Ok(match (&settings.redis, &settings.postgres) {
        (Some(options), _) => std::sync::Arc::new(RedisStore::new(options.clone())),
        (None, Some(options)) => std::sync::Arc::new(PostgresStore::new(options.clone())?),
        (None, None) => std::sync::Arc::new(MemoryStore::default()),
    })
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("the session store is unavailable: {0}")]
    Unavailable(String),
}

/// `gatehouse_store_errors_total`: store calls that failed (Redis unreachable, timed out or
/// answering what Gatehouse cannot read). Kept here so each failure is counted where it is
/// made; `observe` registers it with the other metrics.
#[allow(clippy::expect_used, reason = "a constant name: a failure is a bug")]
pub fn errors_counter() -> &'static prometheus::IntCounter {
    static ERRORS: std::sync::OnceLock<prometheus::IntCounter> = std::sync::OnceLock::new();
    ERRORS.get_or_init(|| {
        prometheus::IntCounter::new(
            "gatehouse_store_errors_total",
            "Session store calls that failed: unreachable, timed out, or an unreadable answer.",
        )
        .expect("store errors metric")
    })
}

/// Every concern of the store, as one object: what the runtime holds and hands out.
#[async_trait]
pub trait Store:
    SessionRecords
    + SignInStates
    + LoginIds
    + CodeGrants
    + RefreshFamilies
    + UserRevocations
    + WebhookDeliveries
    + GithubTokenNotes
    + Send
    + Sync
    + std::fmt::Debug
{
    /// Is the store reachable right now?
    async fn ping(&self) -> Result<(), StoreError>;
}
