//! The OAuth 2 web flow (authorization code + PKCE S256) through the `oauth2` crate, with a small
//! adapter over reqwest 0.13 that also undoes GitHub's habit of reporting errors with HTTP 200.

use super::{GithubClient, GithubError};
use crate::claims::{GithubRefresh, SessionClaims};
use crate::config::GithubSettings;
use crate::observe::ClientSecretUsed;
use oauth2::basic::BasicClient;
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet,
    EndpointSet, HttpRequest, HttpResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl,
    RefreshToken, RequestTokenError, Scope, TokenResponse, TokenUrl,
};
use std::future::Future;
use std::pin::Pin;

pub(super) type OAuthClient =
    BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

/// The OAuth client authenticating with `client_secret` (the configured one, or the previous
/// one during a rotation).
pub(super) fn build_client(
    settings: &GithubSettings,
    client_secret: &crate::config::Secret,
    callback_url: &str,
) -> Result<OAuthClient, GithubError> {
    let join = |path: &str| {
        settings
            .web_url
            .join(path)
            .map(|u| u.to_string())
            .map_err(|e| GithubError::Setup(format!("github.web_url: {e}")))
    };
    Ok(BasicClient::new(ClientId::new(settings.client_id.clone()))
        .set_client_secret(ClientSecret::new(client_secret.expose().to_string()))
        .set_auth_uri(
            AuthUrl::new(join("login/oauth/authorize")?)
                .map_err(|e| GithubError::Setup(e.to_string()))?,
        )
        .set_token_uri(
            TokenUrl::new(join("login/oauth/access_token")?)
                .map_err(|e| GithubError::Setup(e.to_string()))?,
        )
        .set_redirect_uri(
            RedirectUrl::new(callback_url.to_string())
                .map_err(|e| GithubError::Setup(e.to_string()))?,
        )
        // GitHub documents client credentials as form fields.
        .set_auth_type(AuthType::RequestBody))
}

/// A sign-in about to start: where to send the browser, and the PKCE verifier to keep.
pub struct LoginRequest {
    pub authorize_url: String,
    pub pkce_verifier: String,
}

impl GithubClient {
    pub fn start_login(&self, state: &str) -> LoginRequest {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let state = state.to_string();
        let (url, _) = self
            .oauth
            .authorize_url(move || CsrfToken::new(state))
            .add_scopes(self.scopes.iter().map(|s| Scope::new(s.clone())))
            .set_pkce_challenge(challenge)
            .url();
        LoginRequest {
            authorize_url: url.to_string(),
            pkce_verifier: verifier.secret().clone(),
        }
    }

    /// Trade the one-time code for the user's tokens. During a client-secret rotation
    /// (`github.client_secret_previous`), an exchange GitHub refuses as
    /// `incorrect_client_credentials` is tried once more with the other secret (a refused
    /// client does not use up the code), and which secret GitHub took is counted, so operators
    /// see when the old one is no longer needed.
    pub async fn exchange_code(
        &self,
        code: &str,
        verifier: &str,
        now: u64,
    ) -> Result<GithubTokens, GithubError> {
        self.with_rotation(&Grant::Code { code, verifier }, now)
            .await
    }

    /// Renew an expiring user token (GitHub Apps) with its refresh token. GitHub answers with
    /// a new pair and retires both old tokens, so callers run one renewal per session at a
    /// time and keep what this returns. A refusal (`bad_refresh_token`: expired, used or
    /// revoked) is [`GithubError::OAuth`].
    pub async fn refresh_token(
        &self,
        refresh_token: &str,
        now: u64,
    ) -> Result<GithubTokens, GithubError> {
        self.with_rotation(&Grant::Refresh(refresh_token), now)
            .await
    }

    async fn with_rotation(
        &self,
        grant: &Grant<'_>,
        now: u64,
    ) -> Result<GithubTokens, GithubError> {
        let first = request(&self.oauth, &self.http, grant, now).await;
        let (result, secret) = match (&first, &self.oauth_previous) {
            (Err(GithubError::OAuth { error, .. }), Some(previous))
                if error == "incorrect_client_credentials" =>
            {
                let second = request(previous, &self.http, grant, now).await;
                if second.is_ok() {
                    tracing::warn!("GitHub refused github.client_secret and took github.client_secret_previous: the new secret is not (yet) valid at GitHub");
                }
                (second, ClientSecretUsed::Previous)
            }
            _ => (first, ClientSecretUsed::Current),
        };
        if result.is_ok() {
            crate::observe::metrics().client_secret_used(secret);
        }
        result
    }
}

/// What GitHub's token endpoint gave: the user's access token, and for an expiring one
/// (GitHub Apps) the refresh token that renews it. No `Debug`: both are secrets.
#[derive(Clone, PartialEq, Eq)]
pub struct GithubTokens {
    pub access_token: String,
    pub refresh: Option<GithubRefresh>,
}

impl GithubTokens {
    /// Keep these tokens in a session's claims (replacing the ones they renew).
    pub fn keep_in(self, claims: &mut SessionClaims) {
        claims.github_token = Some(self.access_token);
        claims.github_refresh = self.refresh;
    }
}

/// What is traded at GitHub's token endpoint.
enum Grant<'a> {
    Code { code: &'a str, verifier: &'a str },
    Refresh(&'a str),
}

/// One token request with one client secret.
async fn request(
    oauth: &OAuthClient,
    http: &OAuthHttp,
    grant: &Grant<'_>,
    now: u64,
) -> Result<GithubTokens, GithubError> {
    let result = match grant {
        Grant::Code { code, verifier } => {
            oauth
                .exchange_code(AuthorizationCode::new(code.to_string()))
                .set_pkce_verifier(PkceCodeVerifier::new(verifier.to_string()))
                .request_async(http)
                .await
        }
        Grant::Refresh(token) => {
            oauth
                .exchange_refresh_token(&RefreshToken::new(token.to_string()))
                .request_async(http)
                .await
        }
    };
    match result {
        Ok(token) => Ok(GithubTokens {
            access_token: token.access_token().secret().clone(),
            // Only an expiring token with a refresh token can be renewed; a token that does
            // not expire (OAuth Apps) needs none.
            refresh: match (token.refresh_token(), token.expires_in()) {
                (Some(refresh), Some(lifetime)) => Some(GithubRefresh {
                    token: refresh.secret().clone(),
                    expires_at: now.saturating_add(lifetime.as_secs()),
                }),
                _ => None,
            },
        }),
        Err(RequestTokenError::ServerResponse(e)) => Err(GithubError::OAuth {
            error: e.error().to_string(),
            description: e.error_description().cloned(),
        }),
        Err(RequestTokenError::Request(e)) => Err(GithubError::Unreachable(e.to_string())),
        Err(RequestTokenError::Parse(e, _)) => Err(GithubError::BadResponse(e.to_string())),
        Err(RequestTokenError::Other(e)) => Err(GithubError::BadResponse(e)),
    }
}

/// reqwest 0.13 as the `oauth2` crate's HTTP client. A named type (not a closure) so the future
/// is `Send`, which Pingora's filters require.
#[derive(Clone)]
pub struct OAuthHttp(pub reqwest::Client);

#[derive(Debug, thiserror::Error)]
pub enum OAuthHttpError {
    #[error("{0}")]
    Reqwest(#[from] reqwest::Error),
    #[error("{0}")]
    Http(#[from] http::Error),
    #[error("GitHub answered {0}")]
    ServerError(u16),
}

impl<'c> oauth2::AsyncHttpClient<'c> for OAuthHttp {
    type Error = OAuthHttpError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, Self::Error>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(async move {
            let request = reqwest::Request::try_from(request)?;
            let response = self.0.execute(request).await?;
            let mut status = response.status();
            if status.is_server_error() {
                return Err(OAuthHttpError::ServerError(status.as_u16()));
            }
            let headers = response.headers().clone();
            let body = response.bytes().await?.to_vec();
            // GitHub answers OAuth errors with 200 and an `error` field; give the oauth2 crate
            // the 400 the RFC specifies so it parses them as errors, not as a broken token.
            if status == http::StatusCode::OK && has_error_field(&body) {
                status = http::StatusCode::BAD_REQUEST;
            }
            let mut builder = http::Response::builder().status(status);
            if let Some(h) = builder.headers_mut() {
                *h = headers;
            }
            Ok(builder.body(body)?)
        })
    }
}

fn has_error_field(body: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .is_some_and(|v| v.get("error").is_some())
}
