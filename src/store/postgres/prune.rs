//! Expiry without a job to run: rows carry their expiry and reads ignore expired ones; each
//! replica deletes them now and then, in small batches, skipping rows another replica is
//! deleting at the same moment.

use deadpool_postgres::Pool;
use std::time::Duration;

use super::int;

/// How often a replica prunes (seconds).
pub(super) const EVERY_SECS: u64 = 60;

/// Rows deleted per statement, and statements per table and run: a run never holds many locks
/// or runs long; what is left waits for the next.
const BATCH: i64 = 500;
const BATCHES: usize = 4;

/// Table and the column past which its rows are dead. Used codes stay a minute longer, so a
/// second try is still told "already used".
const TABLES: &[(&str, &str)] = &[
    ("sessions", "expires_at"),
    ("used_states", "until"),
    ("login_ids", "until"),
    ("codes", "expires_at + 60"),
    ("refresh_families", "expires_at"),
    ("revoked_families", "until"),
    ("revocation_marks", "expires_at"),
    ("webhook_deliveries", "until"),
    ("github_token_notes", "expires_at"),
];

/// Delete expired rows; errors are only logged (the next run tries again).
pub(super) async fn expired(pool: Pool, timeout: Duration, now: u64) {
    for (table, column) in TABLES {
        for _ in 0..BATCHES {
            let sql = format!(
                "DELETE FROM {table} WHERE ctid IN (SELECT ctid FROM {table} WHERE {column} < $1 \
                 LIMIT {BATCH} FOR UPDATE SKIP LOCKED)"
            );
            let run = async {
                let client = pool.get().await.map_err(|e| e.to_string())?;
                client
                    .execute(&sql, &[&int(now)])
                    .await
                    .map_err(|e| e.to_string())
            };
            match tokio::time::timeout(timeout, run).await {
                Ok(Ok(n)) if n < BATCH as u64 => break,
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    tracing::debug!(table, error = %crate::config::redact_urls_in(&e), "pruning expired rows failed");
                    return;
                }
                Err(_) => return,
            }
        }
    }
}
