//! The runtime parts built once from [`Settings`] and shared by every request.

use crate::config::{ConfigError, Settings};
use crate::github::recheck::Rechecks;
use crate::github::{GithubClient, GithubError};
use crate::policy::Policy;
use crate::session::Sessions;
use crate::tokens::{TokenService, TokenSetupError};

/// Everything a request needs that outlives it: the validated settings, sessions, tokens,
/// the GitHub client and rate limits. (The *app* is the upstream Gatehouse guards.)
#[derive(Debug)]
pub struct Runtime {
    pub settings: Settings,
    /// Roles and rules, compiled from the settings' config.
    pub policy: Policy,
    pub sessions: Sessions,
    /// Shared with membership re-checks, which run in tasks of their own.
    pub github: std::sync::Arc<GithubClient>,
    pub rechecks: Rechecks,
    pub tokens: TokenService,
    /// `{proxy_prefix}/callback`; also the login cookie's path.
    pub callback_path: String,
    /// Whether any rule or route looks at the request's host (else it is never read).
    pub host_matters: bool,
    /// `http` or `https`, for `X-Forwarded-Proto`.
    pub public_scheme: &'static str,
    /// Per-client-IP rate limits (sign-in and token endpoints, failed API keys); a reload that
    /// keeps the quotas keeps the budgets spent.
    pub limits: std::sync::Arc<crate::limits::Limits>,
}

/// Why the runtime parts could not be built from valid settings.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(transparent)]
    Policy(#[from] ConfigError),
    #[error("cannot set up the GitHub client: {0}")]
    Github(#[from] GithubError),
    #[error(transparent)]
    Tokens(#[from] TokenSetupError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

impl Runtime {
    pub fn new(settings: Settings) -> Result<Runtime, RuntimeError> {
        let store = crate::store::open(&settings.session.store)?;
        let limits = std::sync::Arc::new(crate::limits::Limits::new(&settings.limits));
        Runtime::with_store(settings, store, Default::default(), limits)
    }

    /// The runtime on a given store, revocation list and rate limits (shared across reloads).
    fn with_store(
        settings: Settings,
        store: std::sync::Arc<dyn crate::store::Store>,
        revocations: std::sync::Arc<crate::session::Revocations>,
        limits: std::sync::Arc<crate::limits::Limits>,
    ) -> Result<Runtime, RuntimeError> {
        for w in &settings.warnings {
            tracing::warn!(key = %w.key, "config: {w}");
        }
        let policy =
            crate::policy::from_config(&settings.config).map_err(|problems| ConfigError {
                source_name: "the config".into(),
                problems,
            })?;
        let callback_path = format!("{}/callback", settings.proxy_prefix);
        let callback_url = settings
            .public_url
            .join(&callback_path)
            .map_err(|e| GithubError::Setup(e.to_string()))?;
        Ok(Runtime {
            tokens: TokenService::new(&settings, &policy.roles, std::sync::Arc::clone(&store))?,
            github: std::sync::Arc::new(GithubClient::new(
                &settings.github,
                callback_url.as_str(),
                policy.membership.needs_read_org(),
            )?),
            sessions: Sessions::new(&settings.session, store, revocations),
            rechecks: Rechecks::default(),
            public_scheme: if settings.public_url.scheme() == "https" {
                "https"
            } else {
                "http"
            },
            host_matters: policy.rules.uses_host()
                || policy.routes.iter().any(|r| r.rules.uses_host())
                || settings.routes.iter().any(|r| r.host.is_some()),
            callback_path,
            limits,
            policy,
            settings,
        })
    }

    /// The runtime for a reloaded config (SIGHUP): built from `settings` like [`Runtime::new`], keeping
    /// what this one remembers that a reload must not forget: issued codes, refresh families
    /// and revocations, used sign-in states and sessions (the store, which a reload cannot
    /// change: that takes a restart; the key sealing records in memory lasts as long as the
    /// process), the identity-assertion key when it was generated at start, and the rate-limit
    /// budgets spent unless the quotas changed. Caches start afresh.
    pub fn reloaded(&self, mut settings: Settings) -> Result<Runtime, RuntimeError> {
        if settings.assertion.enabled && settings.assertion.key_pems.is_empty() {
            if let Some(signer) = &self.tokens.assertion {
                settings.assertion.key_pems = vec![signer.to_pem()];
            }
        }
        let quotas = |l: &crate::config::LimitSettings| {
            (l.auth_per_minute, l.burst, l.api_key_failures_per_minute)
        };
        let limits = if quotas(&settings.limits) == quotas(&self.settings.limits) {
            std::sync::Arc::clone(&self.limits)
        } else {
            std::sync::Arc::new(crate::limits::Limits::new(&settings.limits))
        };
        Runtime::with_store(
            settings,
            std::sync::Arc::clone(&self.sessions.store),
            std::sync::Arc::clone(&self.sessions.revocations),
            limits,
        )
    }

    /// `/oauth2/start?rd=…` for a local path.
    pub fn start_url(&self, rd: &str) -> String {
        let encoded: String = url::form_urlencoded::byte_serialize(rd.as_bytes()).collect();
        format!("{}/start?rd={encoded}", self.settings.proxy_prefix)
    }
}

/// Read a config file and check all of it, its sections and its roles and rules, listing
/// every problem of either (what `run`, `check-config` and a reload use).
pub fn load_file(path: &std::path::Path) -> Result<Settings, ConfigError> {
    check(crate::config::parse_file(path)?)
}

/// [`load_file`] for config text with an explicit environment (the demo, tests).
pub fn load_str(
    text: &str,
    source_name: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Settings, ConfigError> {
    check(crate::config::parse_str(text, source_name, env)?)
}

/// The sections' problems, then the roles' and rules' (compiled again by [`Runtime::new`]:
/// a few microseconds at start and reload, and no half-built runtime to carry around).
fn check(parsed: crate::config::Parsed) -> Result<Settings, ConfigError> {
    let rule_problems = crate::policy::from_config(&parsed.config).err();
    let source_name = parsed.source_name.clone();
    match (parsed.validate(), rule_problems) {
        (Ok(settings), None) => Ok(settings),
        (Ok(_), Some(problems)) => Err(ConfigError {
            source_name,
            problems,
        }),
        (Err(mut e), more) => {
            e.problems.extend(more.unwrap_or_default());
            Err(e)
        }
    }
}
