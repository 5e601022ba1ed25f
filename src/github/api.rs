//! The REST calls made at sign-in: who the user is, their verified email, and the memberships
//! the config asks about (one targeted call each, however many orgs the user is in).

use super::refusal::{classify, Answer, Links};
use super::{GithubClient, GithubError};
use crate::pages::GithubRefusal;
use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct GithubUser {
    pub id: u64,
    pub login: String,
    pub name: Option<String>,
    pub avatar_url: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PrimaryEmail {
    pub email: String,
    pub primary: bool,
    pub verified: bool,
}

#[derive(Deserialize)]
struct Membership {
    state: String,
}

impl GithubClient {
    async fn get(
        &self,
        call: &'static str,
        path: &str,
        token: &str,
    ) -> Result<reqwest::Response, GithubError> {
        let url = self
            .api_url
            .join(path)
            .map_err(|e| GithubError::Setup(format!("github.api_url: {e}")))?;
        self.get_url(call, url, token).await
    }

    pub(super) async fn get_url(
        &self,
        call: &'static str,
        url: url::Url,
        token: &str,
    ) -> Result<reqwest::Response, GithubError> {
        let sent = std::time::Instant::now();
        let result = self
            .http
            .0
            .get(url)
            .bearer_auth(token)
            .header("Accept", "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28")
            .send()
            .await;
        crate::observe::metrics().github_call(sent.elapsed(), result.as_ref().map_err(|_| ()));
        result.map_err(|e| GithubError::Unreachable(format!("{call}: {}", without_url(&e))))
    }

    async fn get_json<T: DeserializeOwned>(
        &self,
        call: &'static str,
        path: &str,
        token: &str,
    ) -> Result<T, GithubError> {
        let response = self.get(call, path, token).await?;
        if !response.status().is_success() {
            return Err(self.refused(call, response, false).await);
        }
        read_json(call, response).await
    }

    /// The error for an answer that is not a success: the refusal GitHub's headers and
    /// message name (`membership`: a membership call, whose 404 hides private memberships
    /// from tokens without `read:org`), else the status with GitHub's message.
    pub(super) async fn refused(
        &self,
        call: &'static str,
        response: reqwest::Response,
        membership: bool,
    ) -> GithubError {
        let status = response.status();
        let headers = response.headers().clone();
        let message = error_message(response).await;
        let answer = Answer {
            status: status.as_u16(),
            headers: &headers,
            message: &message,
            membership,
        };
        let links = Links {
            web_url: &self.web_url,
            client_id: &self.client_id,
        };
        match classify(&answer, &links, crate::clock::unix_now()) {
            Some(refusal) => {
                if matches!(
                    refusal,
                    GithubRefusal::RateLimited {
                        secondary: true,
                        ..
                    }
                ) && status == StatusCode::FORBIDDEN
                {
                    // A 403 with budget left: `github_call` could not tell it was a limit.
                    crate::observe::metrics()
                        .github_error(crate::observe::metrics::GithubErrorKind::RateLimited);
                }
                GithubError::Refused(refusal)
            }
            None => status_error(call, status, message),
        }
    }

    pub async fn user(&self, token: &str) -> Result<GithubUser, GithubError> {
        self.get_json("GET /user", "user", token).await
    }

    /// The primary email if GitHub says it is verified; anything else is no email.
    pub async fn primary_verified_email(&self, token: &str) -> Result<Option<String>, GithubError> {
        let response = self.get("GET /user/emails", "user/emails", token).await?;
        match response.status() {
            s if s.is_success() => {
                let emails: Vec<PrimaryEmail> = read_json("GET /user/emails", response).await?;
                Ok(emails
                    .into_iter()
                    .find(|e| e.primary && e.verified)
                    .map(|e| e.email))
            }
            // The token lacks `user:email` (an admin may have trimmed scopes): no email. A rate
            // limit is no answer, though.
            StatusCode::NOT_FOUND | StatusCode::FORBIDDEN => {
                match self.refused("GET /user/emails", response, false).await {
                    e @ GithubError::Refused(GithubRefusal::RateLimited { .. }) => Err(e),
                    _ => Ok(None),
                }
            }
            _ => Err(self.refused("GET /user/emails", response, false).await),
        }
    }

    /// `GET /user/memberships/orgs/{org}`: only `active` counts; 404 means not a member
    /// (unless the token lacks `read:org`: then GitHub hides private memberships).
    pub async fn org_member(&self, token: &str, org: &str) -> Result<bool, GithubError> {
        let path = format!("user/memberships/orgs/{}", segment(org));
        self.membership("GET /user/memberships/orgs/{org}", &path, token)
            .await
    }

    /// `GET /orgs/{org}/teams/{team}/memberships/{login}`: only `active` counts.
    pub async fn team_member(
        &self,
        token: &str,
        org: &str,
        team: &str,
        login: &str,
    ) -> Result<bool, GithubError> {
        let path = format!(
            "orgs/{}/teams/{}/memberships/{}",
            segment(org),
            segment(team),
            segment(login)
        );
        self.membership(
            "GET /orgs/{org}/teams/{team}/memberships/{login}",
            &path,
            token,
        )
        .await
    }

    async fn membership(
        &self,
        call: &'static str,
        path: &str,
        token: &str,
    ) -> Result<bool, GithubError> {
        let response = self.get(call, path, token).await?;
        if response.status().is_success() {
            let m: Membership = read_json(call, response).await?;
            return Ok(m.state == "active");
        }
        // A 403 is never read as "not a member" by itself: GitHub says why it refuses.
        match self.refused(call, response, true).await {
            GithubError::Status { status: 404, .. } => Ok(false),
            e => Err(e),
        }
    }
}

/// The body of a successful answer as JSON. A transfer that breaks off midway means GitHub
/// could not be reached (try again later), like a connection that fails before the answer; a
/// whole body that is not the JSON expected is a bad response.
pub(super) async fn read_json<T: DeserializeOwned>(
    call: &'static str,
    response: reqwest::Response,
) -> Result<T, GithubError> {
    let body = response.bytes().await.map_err(|e| {
        GithubError::Unreachable(format!("{call}: the answer broke off: {}", without_url(&e)))
    })?;
    serde_json::from_slice(&body).map_err(|e| GithubError::BadResponse(format!("{call}: {e}")))
}

fn status_error(call: &'static str, status: StatusCode, message: String) -> GithubError {
    if status.is_server_error() {
        GithubError::Unreachable(format!("{call} answered {status}"))
    } else {
        GithubError::Status {
            call,
            status: status.as_u16(),
            message,
        }
    }
}

/// GitHub's `message` in an error body (at most 300 characters, no control characters), or
/// "" when the body is not GitHub's error JSON.
async fn error_message(response: reqwest::Response) -> String {
    #[derive(Deserialize)]
    struct Body {
        message: String,
    }
    let Ok(bytes) = response.bytes().await else {
        return String::new();
    };
    serde_json::from_slice::<Body>(&bytes)
        .map(|b| {
            b.message
                .chars()
                .filter(|c| !c.is_control())
                .take(300)
                .collect()
        })
        .unwrap_or_default()
}

/// Logins and slugs are `[A-Za-z0-9-]`, but escape anyway so config text can never add a path.
fn segment(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// reqwest errors print the URL; ours carry no secrets, but keep log lines short and uniform.
pub(super) fn without_url(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    if let Some(url) = e.url() {
        s = s.replace(url.as_str(), "");
    }
    s.trim().to_string()
}
