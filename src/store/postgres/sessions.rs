//! Server-side sessions in PostgreSQL: table `sessions` (key, user id, record JSON, last seen,
//! expiry), indexed by user and by expiry.

use async_trait::async_trait;

use super::super::{SessionRecord, SessionRecords, StoreError};
use super::{decode, encode, int, secs, PostgresStore};

/// The record with the newer of its own and the row's `last_seen`.
fn read(json: &str, last_seen: i64) -> Result<SessionRecord, StoreError> {
    let mut record: SessionRecord = decode(json)?;
    record.last_seen = record.last_seen.max(secs(last_seen));
    Ok(record)
}

#[async_trait]
impl SessionRecords for PostgresStore {
    async fn put_session(&self, key: &str, record: &SessionRecord) -> Result<(), StoreError> {
        let json = encode(record)?;
        self.call(|c| async move {
            let st = c
                .prepare_cached(
                    "INSERT INTO sessions (key, user_id, record, last_seen, expires_at) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (key) DO UPDATE SET \
                     user_id = EXCLUDED.user_id, record = EXCLUDED.record, \
                     last_seen = EXCLUDED.last_seen, expires_at = EXCLUDED.expires_at",
                )
                .await?;
            c.execute(
                &st,
                &[
                    &key,
                    &record.user_id(),
                    &json,
                    &int(record.last_seen),
                    &int(record.expires_at()),
                ],
            )
            .await?;
            Ok(())
        })
        .await
    }

    async fn session(&self, key: &str, now: u64) -> Result<Option<SessionRecord>, StoreError> {
        self.call(|c| async move {
            let st = c
                .prepare_cached(
                    "SELECT record, last_seen FROM sessions WHERE key = $1 AND expires_at > $2",
                )
                .await?;
            match c.query_opt(&st, &[&key, &int(now)]).await? {
                Some(row) => Ok(Some(read(row.get(0), row.get(1))?)),
                None => Ok(None),
            }
        })
        .await
    }

    async fn touch_session(&self, key: &str, last_seen: u64) -> Result<(), StoreError> {
        let now = crate::clock::unix_now();
        self.call(|c| async move {
            let st = c
                .prepare_cached(
                    "UPDATE sessions SET last_seen = GREATEST(last_seen, $2) \
                     WHERE key = $1 AND expires_at > $3",
                )
                .await?;
            c.execute(&st, &[&key, &int(last_seen), &int(now)]).await?;
            Ok(())
        })
        .await
    }

    async fn update_session(&self, key: &str, record: &SessionRecord) -> Result<bool, StoreError> {
        let (json, now) = (encode(record)?, crate::clock::unix_now());
        self.call(|c| async move {
            // Only while it exists, and for the same user (as the Redis script checks).
            let st = c
                .prepare_cached(
                    "UPDATE sessions SET record = $2, last_seen = GREATEST(last_seen, $3), \
                     expires_at = $4 WHERE key = $1 AND user_id = $5 AND expires_at > $6",
                )
                .await?;
            let n = c
                .execute(
                    &st,
                    &[
                        &key,
                        &json,
                        &int(record.last_seen),
                        &int(record.expires_at()),
                        &record.user_id(),
                        &int(now),
                    ],
                )
                .await?;
            Ok(n == 1)
        })
        .await
    }

    async fn delete_session(&self, key: &str) -> Result<Option<SessionRecord>, StoreError> {
        let now = crate::clock::unix_now();
        self.call(|c| async move {
            let st = c
                .prepare_cached(
                    "DELETE FROM sessions WHERE key = $1 RETURNING record, last_seen, expires_at",
                )
                .await?;
            match c.query_opt(&st, &[&key]).await? {
                // An expired row not yet pruned was no session any more.
                Some(row) if row.get::<_, i64>(2) > int(now) => {
                    Ok(Some(read(row.get(0), row.get(1))?))
                }
                _ => Ok(None),
            }
        })
        .await
    }

    async fn user_sessions(
        &self,
        user_id: &str,
        now: u64,
    ) -> Result<Vec<(String, SessionRecord)>, StoreError> {
        self.call(|c| async move {
            let st = c
                .prepare_cached(
                    "SELECT key, record, last_seen FROM sessions \
                     WHERE user_id = $1 AND expires_at > $2",
                )
                .await?;
            let mut live = Vec::new();
            for row in c.query(&st, &[&user_id, &int(now)]).await? {
                live.push((row.get(0), read(row.get(1), row.get(2))?));
            }
            Ok(live)
        })
        .await
    }

    async fn delete_user_sessions(&self, user_id: &str) -> Result<usize, StoreError> {
        let now = crate::clock::unix_now();
        self.call(|c| async move {
            let st = c
                .prepare_cached(
                    "WITH gone AS (DELETE FROM sessions WHERE user_id = $1 RETURNING expires_at) \
                     SELECT count(*) FILTER (WHERE expires_at > $2) FROM gone",
                )
                .await?;
            let n: i64 = c.query_one(&st, &[&user_id, &int(now)]).await?.get(0);
            Ok(usize::try_from(n).unwrap_or(0))
        })
        .await
    }

    async fn count_sessions(&self, now: u64) -> Result<u64, StoreError> {
        self.call(|c| async move {
            let st = c
                .prepare_cached("SELECT count(*) FROM sessions WHERE expires_at > $1")
                .await?;
            let n: i64 = c.query_one(&st, &[&int(now)]).await?.get(0);
            Ok(secs(n))
        })
        .await
    }
}
