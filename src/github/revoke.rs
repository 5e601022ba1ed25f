//! `DELETE /applications/{client_id}/token`: revoke a user's token at GitHub (sign-out with
//! `github.revoke_on_sign_out`). GitHub authenticates the app itself with Basic auth
//! (client id and secret) and answers 204; 404 and 422 mean the token was already gone (404 also
//! means wrong app credentials: with `github.client_secret_previous`, that one is tried too).

use super::{GithubClient, GithubError};
use crate::config::Secret;

impl GithubClient {
    pub async fn revoke_token(&self, token: &str) -> Result<(), GithubError> {
        let mut status = self.revoke_with(&self.client_secret, token).await?;
        // GitHub answers wrong app credentials with 404 too: during a client-secret rotation
        // the other secret may be the one GitHub still (or already) takes.
        if let (404, Some(previous)) = (status, &self.client_secret_previous) {
            status = self.revoke_with(previous, token).await?;
        }
        match status {
            204 | 200 | 404 | 422 => Ok(()),
            status => Err(GithubError::Status {
                call: "revoke token",
                status,
                message: String::new(),
            }),
        }
    }

    /// One revocation call authenticated with `secret`; GitHub's status.
    async fn revoke_with(&self, secret: &Secret, token: &str) -> Result<u16, GithubError> {
        let path = format!("applications/{}/token", self.client_id);
        let url = self
            .api_url
            .join(&path)
            .map_err(|e| GithubError::Setup(format!("github.api_url: {e}")))?;
        let sent = std::time::Instant::now();
        let result = self
            .http
            .0
            .delete(url)
            .basic_auth(&self.client_id, Some(secret.expose()))
            .header("Accept", "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28")
            .json(&serde_json::json!({ "access_token": token }))
            .send()
            .await;
        crate::observe::metrics().github_call(sent.elapsed(), result.as_ref().map_err(|_| ()));
        let response = result.map_err(|e| {
            GithubError::Unreachable(format!("revoke token: {}", super::api::without_url(&e)))
        })?;
        Ok(response.status().as_u16())
    }
}
