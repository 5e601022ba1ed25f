//! `DELETE /applications/{client_id}/token`: revoke a user's token at GitHub (sign-out with
//! `github.revoke_on_sign_out`). GitHub authenticates the app itself with Basic auth
//! (client id and secret) and answers 204; 404 and 422 mean the token was already gone.

use super::{GithubClient, GithubError};

impl GithubClient {
    pub async fn revoke_token(&self, token: &str) -> Result<(), GithubError> {
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
            .basic_auth(&self.client_id, Some(self.client_secret.expose()))
            .header("Accept", "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28")
            .json(&serde_json::json!({ "access_token": token }))
            .send()
            .await;
        crate::observe::metrics().github_call(sent.elapsed(), result.as_ref().map_err(|_| ()));
        let response = result.map_err(|e| {
            GithubError::Unreachable(format!("revoke token: {}", super::api::without_url(&e)))
        })?;
        match response.status().as_u16() {
            204 | 200 | 404 | 422 => Ok(()),
            status => Err(GithubError::Status {
                call: "revoke token",
                status,
                message: String::new(),
            }),
        }
    }
}
