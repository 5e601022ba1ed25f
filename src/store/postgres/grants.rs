//! One-time codes (`codes`) and refresh-token families (`refresh_families`,
//! `revoked_families`) in PostgreSQL.

use async_trait::async_trait;

use super::super::{CodeGrant, CodeGrants, CodeTake, RefreshFamilies, RefreshFamily, StoreError};
use super::{decode, encode, int, PostgresStore};

#[async_trait]
impl CodeGrants for PostgresStore {
    async fn put_code(&self, code_hash: &str, grant: &CodeGrant) -> Result<(), StoreError> {
        let json = encode(grant)?;
        self.call(|c| async move {
            let st = c
                .prepare_cached(
                    "INSERT INTO codes (code_hash, user_id, grant_json, used, expires_at) \
                     VALUES ($1, $2, $3, false, $4) ON CONFLICT (code_hash) DO UPDATE SET \
                     user_id = EXCLUDED.user_id, grant_json = EXCLUDED.grant_json, \
                     used = false, expires_at = EXCLUDED.expires_at",
                )
                .await?;
            c.execute(
                &st,
                &[
                    &code_hash,
                    &grant.session.user_id,
                    &json,
                    &int(grant.expires_at),
                ],
            )
            .await?;
            Ok(())
        })
        .await
    }

    async fn take_code(&self, code_hash: &str, now: u64) -> Result<CodeTake, StoreError> {
        let real_now = crate::clock::unix_now();
        self.call(|c| async move {
            // A second taker racing this one waits on the row lock, re-checks `NOT used` once
            // this commits, and gets no row: a code works once.
            let take = c
                .prepare_cached(
                    "UPDATE codes SET used = true, grant_json = NULL FROM (SELECT code_hash, \
                     grant_json FROM codes WHERE code_hash = $1 AND NOT used FOR UPDATE) AS old \
                     WHERE codes.code_hash = old.code_hash RETURNING old.grant_json",
                )
                .await?;
            if let Some(row) = c.query_opt(&take, &[&code_hash]).await? {
                let json: Option<String> = row.get(0);
                let grant: CodeGrant = decode(json.as_deref().unwrap_or("null"))?;
                return Ok(if now < grant.expires_at {
                    CodeTake::Granted(Box::new(grant))
                } else {
                    CodeTake::Unknown
                });
            }
            // A new statement, a new snapshot: sees the winner's commit.
            let used = c
                .prepare_cached(
                    "SELECT used FROM codes WHERE code_hash = $1 AND expires_at + 60 > $2",
                )
                .await?;
            let was_used = c
                .query_opt(&used, &[&code_hash, &int(real_now)])
                .await?
                .is_some_and(|row| row.get::<_, bool>(0));
            Ok(if was_used {
                CodeTake::AlreadyUsed
            } else {
                CodeTake::Unknown
            })
        })
        .await
    }

    async fn drop_user_codes(&self, user_id: &str, now: u64) -> Result<usize, StoreError> {
        self.call(|c| async move {
            let st = c
                .prepare_cached(
                    "WITH gone AS (DELETE FROM codes WHERE user_id = $1 AND NOT used \
                     RETURNING expires_at) SELECT count(*) FILTER (WHERE expires_at > $2) FROM gone",
                )
                .await?;
            let n: i64 = c.query_one(&st, &[&user_id, &int(now)]).await?.get(0);
            Ok(usize::try_from(n).unwrap_or(0))
        })
        .await
    }
}

#[async_trait]
impl RefreshFamilies for PostgresStore {
    async fn put_family(&self, id: &str, family: &RefreshFamily) -> Result<(), StoreError> {
        let json = encode(family)?;
        self.call(|c| async move {
            let st = c
                .prepare_cached(
                    "INSERT INTO refresh_families (id, user_id, generation, record, expires_at) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO UPDATE SET \
                     user_id = EXCLUDED.user_id, generation = EXCLUDED.generation, \
                     record = EXCLUDED.record, expires_at = EXCLUDED.expires_at",
                )
                .await?;
            c.execute(
                &st,
                &[
                    &id,
                    &family.session.user_id,
                    &int(family.generation),
                    &json,
                    &int(family.expires_at),
                ],
            )
            .await?;
            Ok(())
        })
        .await
    }

    async fn family(&self, id: &str, now: u64) -> Result<Option<RefreshFamily>, StoreError> {
        self.call(|c| async move {
            let st = c
                .prepare_cached(
                    "SELECT record FROM refresh_families WHERE id = $1 AND expires_at > $2",
                )
                .await?;
            match c.query_opt(&st, &[&id, &int(now)]).await? {
                Some(row) => Ok(Some(decode(row.get(0))?)),
                None => Ok(None),
            }
        })
        .await
    }

    async fn advance_family(
        &self,
        id: &str,
        expected_generation: u64,
        next: &RefreshFamily,
    ) -> Result<bool, StoreError> {
        let (json, now) = (encode(next)?, crate::clock::unix_now());
        self.call(|c| async move {
            // Compare and set: of two refreshes racing with one token, the second finds the
            // generation moved on (it re-checks the row after the first commits).
            let st = c
                .prepare_cached(
                    "UPDATE refresh_families SET generation = $3, record = $4, expires_at = $5 \
                     WHERE id = $1 AND generation = $2 AND expires_at > $6",
                )
                .await?;
            let n = c
                .execute(
                    &st,
                    &[
                        &id,
                        &int(expected_generation),
                        &int(next.generation),
                        &json,
                        &int(next.expires_at),
                        &int(now),
                    ],
                )
                .await?;
            Ok(n == 1)
        })
        .await
    }

    async fn user_families(
        &self,
        user_id: &str,
        now: u64,
    ) -> Result<Vec<(String, RefreshFamily)>, StoreError> {
        self.call(|c| async move {
            let st = c
                .prepare_cached(
                    "SELECT id, record FROM refresh_families \
                     WHERE user_id = $1 AND expires_at > $2",
                )
                .await?;
            let mut live = Vec::new();
            for row in c.query(&st, &[&user_id, &int(now)]).await? {
                live.push((row.get(0), decode(row.get(1))?));
            }
            Ok(live)
        })
        .await
    }

    async fn revoke_family(&self, id: &str, until: u64) -> Result<(), StoreError> {
        self.call(|c| async move {
            // One statement, so one transaction: the family and its revocation together.
            let st = c
                .prepare_cached(
                    "WITH gone AS (DELETE FROM refresh_families WHERE id = $1) \
                     INSERT INTO revoked_families (id, until) VALUES ($1, $2) \
                     ON CONFLICT (id) DO UPDATE SET until = EXCLUDED.until",
                )
                .await?;
            c.execute(&st, &[&id, &int(until)]).await?;
            Ok(())
        })
        .await
    }

    async fn is_revoked(&self, id: &str, now: u64) -> Result<bool, StoreError> {
        self.call(|c| async move {
            let st = c
                .prepare_cached("SELECT 1 FROM revoked_families WHERE id = $1 AND until > $2")
                .await?;
            Ok(c.query_opt(&st, &[&id, &int(now)]).await?.is_some())
        })
        .await
    }
}
