//! Versioned migrations, run by the gate at start (before the store's first use) and by
//! `gatehouse migrate`. All of them in one transaction under a transaction-scoped advisory
//! lock, taken before anything is created: replicas starting at once wait for each other, and
//! the second finds nothing left to do. PostgreSQL's DDL is transactional, so a migration that
//! fails leaves nothing half done. A schema newer than this binary (a rollback after a newer
//! Gatehouse migrated) is used as it is: migrations only add.

use super::{db_error, StoreError};

/// Every migration, in order: version, name, SQL. Never edit one that shipped; add another.
pub const MIGRATIONS: &[(i32, &str, &str)] = &[(
    1,
    "tables for sessions, sign-ins, codes, refresh families, revocations, webhooks, GitHub tokens",
    r"
CREATE TABLE sessions (
    key text PRIMARY KEY,
    user_id text NOT NULL,
    record text NOT NULL,
    last_seen bigint NOT NULL,
    expires_at bigint NOT NULL
);
CREATE INDEX sessions_user_id ON sessions (user_id);
CREATE INDEX sessions_expires_at ON sessions (expires_at);
CREATE TABLE used_states (state_hash text PRIMARY KEY, until bigint NOT NULL);
CREATE INDEX used_states_until ON used_states (until);
CREATE TABLE login_ids (login text PRIMARY KEY, user_id text NOT NULL, until bigint NOT NULL);
CREATE INDEX login_ids_until ON login_ids (until);
CREATE TABLE codes (
    code_hash text PRIMARY KEY,
    user_id text NOT NULL,
    grant_json text,
    used boolean NOT NULL DEFAULT false,
    expires_at bigint NOT NULL
);
CREATE INDEX codes_user_id ON codes (user_id) WHERE NOT used;
CREATE INDEX codes_expires_at ON codes (expires_at);
CREATE TABLE refresh_families (
    id text PRIMARY KEY,
    user_id text NOT NULL,
    generation bigint NOT NULL,
    record text NOT NULL,
    expires_at bigint NOT NULL
);
CREATE INDEX refresh_families_user_id ON refresh_families (user_id);
CREATE INDEX refresh_families_expires_at ON refresh_families (expires_at);
CREATE TABLE revoked_families (id text PRIMARY KEY, until bigint NOT NULL);
CREATE INDEX revoked_families_until ON revoked_families (until);
CREATE TABLE revocation_meta (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    epoch text NOT NULL,
    version bigint NOT NULL,
    floor bigint NOT NULL,
    keep bigint NOT NULL
);
CREATE TABLE revocation_marks (
    user_id text PRIMARY KEY,
    end_before bigint NOT NULL,
    recheck_before bigint NOT NULL,
    expires_at bigint NOT NULL
);
CREATE INDEX revocation_marks_expires_at ON revocation_marks (expires_at);
CREATE TABLE webhook_deliveries (id text PRIMARY KEY, until bigint NOT NULL);
CREATE INDEX webhook_deliveries_until ON webhook_deliveries (until);
CREATE TABLE github_token_notes (
    user_id text NOT NULL,
    id text NOT NULL,
    checked_at bigint NOT NULL,
    expires_at bigint NOT NULL,
    PRIMARY KEY (user_id, id)
);
CREATE INDEX github_token_notes_expires_at ON github_token_notes (expires_at);
",
)];

/// What a run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The schema's version before the run.
    pub from: i32,
    /// Versions applied by this run, in order.
    pub applied: Vec<i32>,
}

/// Bring `schema` to the latest version. `client` connects with `search_path = schema`.
pub async fn run(client: &mut tokio_postgres::Client, schema: &str) -> Result<Applied, StoreError> {
    let applied = run_inner(client, schema).await.map_err(|e| db_error(&e))?;
    if !applied.applied.is_empty() {
        tracing::info!(from = applied.from, applied = ?applied.applied, "PostgreSQL schema migrated");
    }
    Ok(applied)
}

async fn run_inner(
    client: &mut tokio_postgres::Client,
    schema: &str,
) -> Result<Applied, tokio_postgres::Error> {
    // Dropped unfinished (a timeout), the transaction rolls back.
    let tx = client.transaction().await?;
    tx.batch_execute("SET LOCAL statement_timeout = '60s'; SET LOCAL lock_timeout = '60s'")
        .await?;
    tx.execute(
        "SELECT pg_advisory_xact_lock(4711, hashtext('gatehouse:' || $1::text))",
        &[&schema],
    )
    .await?;
    // `schema` is a plain identifier (checked with the config).
    tx.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS {schema};
         CREATE TABLE IF NOT EXISTS {schema}.schema_migrations (
             version int PRIMARY KEY,
             name text NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now())"
    ))
    .await?;
    let from: i32 = tx
        .query_one(
            &format!("SELECT coalesce(max(version), 0) FROM {schema}.schema_migrations"),
            &[],
        )
        .await?
        .get(0);
    let mut applied = Vec::new();
    for (version, name, sql) in MIGRATIONS.iter().filter(|(v, _, _)| *v > from) {
        tx.batch_execute(sql).await?;
        tx.execute(
            &format!("INSERT INTO {schema}.schema_migrations (version, name) VALUES ($1, $2)"),
            &[version, name],
        )
        .await?;
        applied.push(*version);
    }
    tx.commit().await?;
    Ok(Applied { from, applied })
}
