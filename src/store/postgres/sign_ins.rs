//! Used sign-in states (`used_states`) and logins' ids (`login_ids`) in PostgreSQL.

use async_trait::async_trait;

use super::super::{LoginIds, SignInStates, StoreError};
use super::{int, PostgresStore};

impl PostgresStore {
    /// Mark `id` used in `table` (`id` and `until` columns) until `until`: true on the first
    /// use, or when the earlier mark had expired (as a Redis key would have); false for a
    /// replay. Concurrent first uses serialise on the primary key: one wins.
    pub(super) async fn use_once(
        &self,
        table: &'static str,
        id: &str,
        until: u64,
        now: u64,
    ) -> Result<bool, StoreError> {
        let key = match table {
            "used_states" => "state_hash",
            _ => "id",
        };
        let sql = format!(
            "INSERT INTO {table} ({key}, until) VALUES ($1, $2) ON CONFLICT ({key}) DO UPDATE \
             SET until = EXCLUDED.until WHERE {table}.until <= $3 RETURNING 1"
        );
        self.call(|c| async move {
            let st = c.prepare_cached(&sql).await?;
            Ok(c.query_opt(&st, &[&id, &int(until), &int(now)])
                .await?
                .is_some())
        })
        .await
    }
}

#[async_trait]
impl SignInStates for PostgresStore {
    async fn consume_state(
        &self,
        state_hash: &str,
        until: u64,
        now: u64,
    ) -> Result<bool, StoreError> {
        self.use_once("used_states", state_hash, until, now).await
    }
}

#[async_trait]
impl LoginIds for PostgresStore {
    async fn remember_login(
        &self,
        login: &str,
        user_id: &str,
        until: u64,
    ) -> Result<(), StoreError> {
        self.call(|c| async move {
            let st = c
                .prepare_cached(
                    "INSERT INTO login_ids (login, user_id, until) VALUES ($1, $2, $3) \
                     ON CONFLICT (login) DO UPDATE SET user_id = EXCLUDED.user_id, \
                     until = EXCLUDED.until",
                )
                .await?;
            c.execute(&st, &[&login, &user_id, &int(until)]).await?;
            Ok(())
        })
        .await
    }

    async fn user_id_for(&self, login: &str) -> Result<Option<String>, StoreError> {
        let now = crate::clock::unix_now();
        self.call(|c| async move {
            let st = c
                .prepare_cached("SELECT user_id FROM login_ids WHERE login = $1 AND until > $2")
                .await?;
            Ok(c.query_opt(&st, &[&login, &int(now)])
                .await?
                .map(|row| row.get(0)))
        })
        .await
    }
}
