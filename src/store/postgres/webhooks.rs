//! Webhook deliveries seen, in PostgreSQL: `webhook_deliveries`.

use async_trait::async_trait;

use super::super::{StoreError, WebhookDeliveries};
use super::PostgresStore;

#[async_trait]
impl WebhookDeliveries for PostgresStore {
    async fn remember_delivery(&self, id: &str, until: u64, now: u64) -> Result<bool, StoreError> {
        self.use_once("webhook_deliveries", id, until, now).await
    }

    async fn forget_delivery(&self, id: &str) -> Result<(), StoreError> {
        self.call(|c| async move {
            let st = c
                .prepare_cached("DELETE FROM webhook_deliveries WHERE id = $1")
                .await?;
            c.execute(&st, &[&id]).await?;
            Ok(())
        })
        .await
    }
}
