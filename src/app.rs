//! The runtime parts built once from [`Settings`] and shared by every request.

use crate::auth::{Rechecks, UsedStates};
use crate::config::Settings;
use crate::github::{GithubClient, GithubError};
use crate::session::Sessions;
use crate::tokens::{TokenService, TokenSetupError};

#[derive(Debug)]
pub struct App {
    pub settings: Settings,
    pub sessions: Sessions,
    pub github: GithubClient,
    /// Shared with the app a reload replaces this one by (a used state stays used).
    pub used_states: std::sync::Arc<UsedStates>,
    pub rechecks: Rechecks,
    pub tokens: TokenService,
    /// `{proxy_prefix}/callback`; also the login cookie's path.
    pub callback_path: String,
    /// Whether any rule or route looks at the request's host (else it is never read).
    pub host_matters: bool,
    /// `http` or `https`, for `X-Forwarded-Proto`.
    pub public_scheme: &'static str,
    /// Per-client-IP rate limits (sign-in and token endpoints, failed API keys).
    pub limits: crate::limits::Limits,
}

/// Why the runtime parts could not be built from valid settings.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("cannot set up the GitHub client: {0}")]
    Github(#[from] GithubError),
    #[error(transparent)]
    Tokens(#[from] TokenSetupError),
}

impl App {
    pub fn new(settings: Settings) -> Result<App, AppError> {
        let callback_path = format!("{}/callback", settings.proxy_prefix);
        let callback_url = settings
            .public_url
            .join(&callback_path)
            .map_err(|e| GithubError::Setup(e.to_string()))?;
        Ok(App {
            tokens: TokenService::new(&settings)?,
            github: GithubClient::new(&settings.github, callback_url.as_str())?,
            sessions: Sessions::new(&settings.session),
            used_states: Default::default(),
            rechecks: Rechecks::default(),
            public_scheme: if settings.public_url.scheme() == "https" {
                "https"
            } else {
                "http"
            },
            host_matters: settings.policy.rules.uses_host()
                || settings.policy.routes.iter().any(|r| r.rules.uses_host())
                || settings.routes.iter().any(|r| r.host.is_some()),
            callback_path,
            limits: crate::limits::Limits::new(&settings.limits),
            settings,
        })
    }

    /// The app for a reloaded config (SIGHUP): built from `settings` like [`App::new`], keeping
    /// what this one remembers that a reload must not forget: issued codes, refresh families
    /// and revocations (the token store), used sign-in states, and the identity-assertion key
    /// when it was generated at start. Rate-limit budgets and caches start afresh.
    pub fn reloaded(&self, mut settings: Settings) -> Result<App, AppError> {
        if settings.assertion.enabled && settings.assertion.key_pem.is_none() {
            if let Some(signer) = &self.tokens.assertion {
                settings.assertion.key_pem = Some(signer.to_pem());
            }
        }
        let mut app = App::new(settings)?;
        app.tokens.store = std::sync::Arc::clone(&self.tokens.store);
        app.used_states = std::sync::Arc::clone(&self.used_states);
        Ok(app)
    }

    /// `/oauth2/start?rd=…` for a local path.
    pub fn start_url(&self, rd: &str) -> String {
        let encoded: String = url::form_urlencoded::byte_serialize(rd.as_bytes()).collect();
        format!("{}/start?rd={encoded}", self.settings.proxy_prefix)
    }
}
