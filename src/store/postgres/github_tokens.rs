//! Noted raw GitHub tokens in PostgreSQL: `github_token_notes` (user, token id, when GitHub
//! vouched for it, until when).

use async_trait::async_trait;

use super::super::{GithubTokenNotes, GithubTokenUse, StoreError};
use super::{int, secs, PostgresStore};

#[async_trait]
impl GithubTokenNotes for PostgresStore {
    async fn note_github_token(
        &self,
        user_id: &str,
        id: &str,
        seen: GithubTokenUse,
    ) -> Result<(), StoreError> {
        self.call(|c| async move {
            let st = c
                .prepare_cached(
                    "INSERT INTO github_token_notes (user_id, id, checked_at, expires_at) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (user_id, id) DO UPDATE SET \
                     checked_at = EXCLUDED.checked_at, expires_at = EXCLUDED.expires_at",
                )
                .await?;
            c.execute(
                &st,
                &[&user_id, &id, &int(seen.checked_at), &int(seen.expires_at)],
            )
            .await?;
            Ok(())
        })
        .await
    }

    async fn user_github_tokens(
        &self,
        user_id: &str,
        now: u64,
    ) -> Result<Vec<(String, GithubTokenUse)>, StoreError> {
        self.call(|c| async move {
            let st = c
                .prepare_cached(
                    "SELECT id, checked_at, expires_at FROM github_token_notes \
                     WHERE user_id = $1 AND expires_at > $2",
                )
                .await?;
            Ok(c.query(&st, &[&user_id, &int(now)])
                .await?
                .into_iter()
                .map(|row| {
                    let seen = GithubTokenUse {
                        checked_at: secs(row.get(1)),
                        expires_at: secs(row.get(2)),
                    };
                    (row.get(0), seen)
                })
                .collect())
        })
        .await
    }
}
