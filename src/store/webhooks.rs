//! GitHub webhook deliveries already applied, so a replay or a redelivery is not applied twice.

use async_trait::async_trait;

use super::StoreError;

/// Webhook deliveries seen, by id (or by a digest of what they said), until `until`.
#[async_trait]
pub trait WebhookDeliveries: Send + Sync {
    /// Remember a webhook delivery (by id, or by a digest of what it said) until `until`.
    /// False when it was remembered already (a replay or a redelivery).
    async fn remember_delivery(&self, id: &str, until: u64, now: u64) -> Result<bool, StoreError>;
    /// Forget a delivery that could not be applied, so GitHub's redelivery of it is.
    async fn forget_delivery(&self, id: &str) -> Result<(), StoreError>;
}
