//! Webhook deliveries seen, on Redis: `delivery:ID`.

use async_trait::async_trait;
use redis::AsyncCommands;

use super::super::{StoreError, WebhookDeliveries};
use super::{ttl, RedisStore};

#[async_trait]
impl WebhookDeliveries for RedisStore {
    async fn remember_delivery(&self, id: &str, until: u64, now: u64) -> Result<bool, StoreError> {
        let key = self.key("delivery", id);
        let secs = ttl(until, now);
        self.set_once(key, secs).await
    }

    async fn forget_delivery(&self, id: &str) -> Result<(), StoreError> {
        let key = self.key("delivery", id);
        self.call(|mut c| async move { c.del::<_, ()>(key).await })
            .await
    }
}
