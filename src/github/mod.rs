//! Talking to GitHub (or GitHub Enterprise, or the mock): the OAuth web flow and the few REST
//! calls sign-in needs. Nothing here runs on the per-request path.

mod api;
mod membership;
mod oauth;
pub mod recheck;
mod refusal;
mod revoke;

pub use api::{GithubUser, PrimaryEmail};
pub use membership::Memberships;
pub use oauth::{GithubTokens, LoginRequest, OAuthHttp};
pub use refusal::covers;

use crate::config::GithubSettings;
use url::Url;

#[derive(Debug, thiserror::Error)]
pub enum GithubError {
    /// Network failure, timeout, or a 5xx: GitHub could not be asked.
    #[error("GitHub could not be reached: {0}")]
    Unreachable(String),
    /// GitHub refused the OAuth exchange (`bad_verification_code`, `redirect_uri_mismatch`, …).
    #[error("GitHub refused the sign-in: {error}{}", description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    OAuth {
        error: String,
        description: Option<String>,
    },
    /// GitHub answered with a status the call does not expect (`message`: GitHub's own
    /// words, for the log).
    #[error("GitHub answered {status} to {call}{}", if message.is_empty() { String::new() } else { format!(": {message}") })]
    Status {
        call: &'static str,
        status: u16,
        message: String,
    },
    /// GitHub would not answer, and said why (an org's app restrictions, SAML single sign-on,
    /// a missing scope, a rate limit): "could not confirm", never "not a member".
    #[error("GitHub would not confirm access ({}){}", .0.reason(), .0.org().map(|o| format!(" to the org {o}")).unwrap_or_default())]
    Refused(crate::pages::GithubRefusal),
    #[error("GitHub sent a response Gatehouse cannot read ({0})")]
    BadResponse(String),
    #[error("the GitHub settings are unusable: {0}")]
    Setup(String),
}

impl GithubError {
    /// Errors that mean "try again later" rather than "this login is invalid".
    pub fn is_unavailable(&self) -> bool {
        matches!(self, GithubError::Unreachable(_))
            || matches!(self, GithubError::Status { status, .. } if *status >= 500)
    }
}

/// One client for the whole process: pooled HTTPS connections to GitHub.
pub struct GithubClient {
    oauth: oauth::OAuthClient,
    /// With `github.client_secret_previous`: the same client with that secret.
    oauth_previous: Option<oauth::OAuthClient>,
    http: OAuthHttp,
    api_url: Url,
    /// GitHub's web UI, for the links in refusals.
    web_url: Url,
    scopes: Vec<String>,
    /// For calls GitHub authenticates as the app (token revocation).
    client_id: String,
    client_secret: crate::config::Secret,
    client_secret_previous: Option<crate::config::Secret>,
}

impl std::fmt::Debug for GithubClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GithubClient")
            .field("api_url", &self.api_url.as_str())
            .finish()
    }
}

impl GithubClient {
    /// `callback_url` is Gatehouse's own `/oauth2/callback`, sent as `redirect_uri`;
    /// `needs_read_org`: the policy asks about orgs or teams, so sign-ins ask for `read:org` too.
    pub fn new(
        settings: &GithubSettings,
        callback_url: &str,
        needs_read_org: bool,
    ) -> Result<GithubClient, GithubError> {
        crate::install_crypto_provider();
        let client = reqwest::Client::builder()
            .user_agent(concat!("gatehouse/", env!("CARGO_PKG_VERSION")))
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            // OAuth endpoints must never be followed to somewhere else.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| GithubError::Setup(e.to_string()))?;
        Ok(GithubClient {
            oauth: oauth::build_client(settings, &settings.client_secret, callback_url)?,
            oauth_previous: match &settings.client_secret_previous {
                Some(previous) => Some(oauth::build_client(settings, previous, callback_url)?),
                None => None,
            },
            http: OAuthHttp(client),
            api_url: settings.api_url.clone(),
            web_url: settings.web_url.clone(),
            scopes: scopes_for(&settings.scopes, needs_read_org),
            client_id: settings.client_id.clone(),
            client_secret: settings.client_secret.clone(),
            client_secret_previous: settings.client_secret_previous.clone(),
        })
    }
}

impl GithubClient {
    /// The scopes sign-ins ask for.
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }
}

/// The configured scopes, plus `read:org` when the policy needs it.
fn scopes_for(configured: &[String], needs_read_org: bool) -> Vec<String> {
    let mut scopes = configured.to_vec();
    if needs_read_org && !scopes.iter().any(|s| s == "read:org") {
        scopes.push("read:org".into());
    }
    scopes
}
