//! Runtime state of the mock: seeded data plus issued codes and tokens.
//!
//! One std Mutex guards it all; handlers lock, copy out what they need, and unlock before
//! any `.await`, so many concurrent clients never contend across I/O.

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rand::distr::{Alphanumeric, SampleString};

use super::data::{MockApp, MockData, Org, User};
use super::scopes::Scopes;

/// GitHub's authorization codes live 10 minutes.
pub(super) const CODE_TTL: Duration = Duration::from_secs(600);

/// What all clones of one mock share, and the state every handler is given.
pub(super) struct Shared {
    state: Mutex<State>,
    /// REST requests seen, including refused ones (tests prove the hot path makes none).
    pub api_requests: AtomicU64,
}

impl Shared {
    pub fn new(data: MockData) -> Shared {
        let apps = data
            .apps
            .into_iter()
            .map(|a| (a.client_id.clone(), a))
            .collect();
        Shared {
            state: Mutex::new(State {
                apps,
                users: data.users,
                orgs: data.orgs,
                codes: HashMap::new(),
                tokens: HashMap::new(),
                client_secrets: HashMap::new(),
                failure: None,
                sso_requests: HashMap::new(),
                sso_sessions: Vec::new(),
                refresh_tokens: HashMap::new(),
                clock_offset: 0,
            }),
            api_requests: AtomicU64::new(0),
        }
    }

    /// A panic elsewhere must not take the mock down: keep using the data.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub(super) struct State {
    pub apps: HashMap<String, MockApp>,
    pub users: Vec<User>,
    pub orgs: Vec<Org>,
    pub codes: HashMap<String, Grant>,
    pub tokens: HashMap<String, TokenGrant>,
    /// An app's client secrets once [`crate::MockGithub::set_client_secrets`] changed them
    /// (GitHub keeps several valid while one is rotated); else its `client_secret` alone.
    pub client_secrets: HashMap<String, Vec<String>>,
    /// Injected by `POST /_mock/fail`.
    pub failure: Option<Failure>,
    /// The `authorization_request` of each single sign-on URL handed out: who was refused
    /// (user id, client id: empty for personal tokens) and for which org (lower case).
    pub sso_requests: HashMap<String, (u64, String, String)>,
    /// (user id, lower-case org): the user has signed in to the org's single sign-on.
    pub sso_sessions: Vec<(u64, String)>,
    /// GitHub App refresh tokens (`ghr_…`), each usable once.
    pub refresh_tokens: HashMap<String, RefreshGrant>,
    /// Seconds the mock's clock runs ahead of the machine's ([`crate::MockGithub::advance_clock`]),
    /// so a test can let 8-hour tokens expire without waiting.
    pub clock_offset: u64,
}

#[derive(Clone, Copy, Debug)]
pub(super) struct Failure {
    pub mode: FailMode,
    /// Which endpoints fail.
    pub scope: FailScope,
}

/// How an endpoint under [`Failure`] misbehaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum FailMode {
    /// Answer this HTTP status (GitHub's error JSON as the body).
    Status(u16),
    /// Wait this long, then answer normally.
    Slow(Duration),
    /// Answer as things stand when the request arrives, but send it this much later (an
    /// answer in flight while the world changes).
    Late(Duration),
    /// Answer 200 with a JSON body cut off in the middle.
    Malformed,
    /// GitHub's rate limit (REST, after authentication): the primary one (`x-ratelimit-remaining:
    /// 0`, a reset in `wait` seconds) or the secondary one (`retry-after: wait`, when given),
    /// answered with `status` (403 or 429).
    RateLimit {
        secondary: bool,
        status: u16,
        wait: Option<u64>,
    },
    /// The authorize step sends this OAuth error (`redirect_uri_mismatch`,
    /// `application_suspended`, `access_denied`) to the app's callback.
    AuthorizeError(&'static str),
    /// Close the connection before a complete response has been sent.
    Drop,
    /// Send the headers and the start of the body, then cut the connection.
    Truncate,
}

/// The endpoints a [`Failure`] applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum FailScope {
    /// The REST API only (`/user`, memberships, …).
    Rest,
    /// The OAuth token endpoint (`POST /login/oauth/access_token`) only.
    OAuth,
    /// Both.
    All,
    /// The authorize step (`/login/oauth/authorize`) only.
    Authorize,
}

impl Failure {
    pub fn hits_rest(&self) -> bool {
        matches!(self.scope, FailScope::Rest | FailScope::All)
    }

    pub fn hits_oauth(&self) -> bool {
        matches!(self.scope, FailScope::OAuth | FailScope::All)
    }

    /// The OAuth error the authorize step sends, if that is the failure.
    pub fn authorize_error(&self) -> Option<&'static str> {
        match (self.scope, self.mode) {
            (FailScope::Authorize, FailMode::AuthorizeError(error)) => Some(error),
            _ => None,
        }
    }
}

/// What an authorization code was issued for.
#[derive(Clone, Debug)]
pub(super) struct Grant {
    pub client_id: String,
    /// The redirect_uri exactly as the authorize request gave it (None when omitted).
    pub redirect_uri: Option<String>,
    pub scopes: Scopes,
    pub challenge: Option<String>,
    pub user_id: u64,
    pub expires: Instant,
}

#[derive(Clone, Debug)]
pub(super) struct TokenGrant {
    /// Empty for personal access tokens.
    pub client_id: String,
    pub user_id: u64,
    pub scopes: Scopes,
    /// Lower-case orgs enforcing SAML single sign-on the token is authorized for.
    pub sso_orgs: Vec<String>,
    /// When (mock unix seconds) a GitHub App user token stops working; `None`: never
    /// (OAuth App tokens and personal tokens).
    pub expires_at: Option<u64>,
}

/// A GitHub App refresh token: what it renews, and until when.
#[derive(Clone, Debug)]
pub(super) struct RefreshGrant {
    /// The access token issued with it, which using it revokes.
    pub access_token: String,
    pub grant: TokenGrant,
    pub expires_at: u64,
}

/// A token answer: the access token, and for a GitHub App its expiry and refresh token.
pub(super) struct Issued {
    pub access_token: String,
    pub scope: String,
    /// `(expires_in, refresh_token, refresh_token_expires_in)`.
    pub refresh: Option<(u64, String, u64)>,
}

/// GitHub App user tokens live 8 hours by default.
pub(super) const APP_TOKEN_SECS: u64 = 8 * 3600;
/// ...and their refresh tokens about 6 months (GitHub's own `refresh_token_expires_in`).
pub(super) const APP_REFRESH_SECS: u64 = 15_897_600;

/// GitHub App client ids start with `Iv` (`Iv1.…` for older apps, `Iv23…` today); OAuth App
/// ones do not.
pub(super) fn is_github_app(client_id: &str) -> bool {
    client_id.starts_with("Iv")
}

impl State {
    /// The app `client_id` names, if `secret` is one of its client secrets.
    pub fn app_accepting(&self, client_id: &str, secret: &str) -> Option<&MockApp> {
        let app = self.apps.get(client_id)?;
        let valid = match self.client_secrets.get(client_id) {
            Some(secrets) => secrets.iter().any(|s| s == secret),
            None => app.client_secret == secret,
        };
        valid.then_some(app)
    }

    pub fn user_by_login(&self, login: &str) -> Option<&User> {
        self.users
            .iter()
            .find(|u| u.login.eq_ignore_ascii_case(login))
    }

    pub fn user_by_id(&self, id: u64) -> Option<&User> {
        self.users.iter().find(|u| u.id == id)
    }

    pub fn org(&self, login: &str) -> Option<&Org> {
        self.orgs
            .iter()
            .find(|o| o.login.eq_ignore_ascii_case(login))
    }

    pub fn org_mut(&mut self, login: &str) -> Option<&mut Org> {
        self.orgs
            .iter_mut()
            .find(|o| o.login.eq_ignore_ascii_case(login))
    }

    /// Store a grant and return its fresh code (20 hex characters, like GitHub's).
    pub fn issue_code(&mut self, grant: Grant) -> String {
        let now = Instant::now();
        self.codes.retain(|_, g| g.expires > now);
        let code: String = rand::random::<[u8; 10]>()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        self.codes.insert(code.clone(), grant);
        code
    }

    /// Remove the code whatever happens next: codes are single use even when the exchange fails.
    pub fn take_code(&mut self, code: &str) -> Option<Grant> {
        let now = Instant::now();
        self.codes.retain(|_, g| g.expires > now);
        self.codes.remove(code)
    }

    /// The orgs whose single sign-on the user has signed in to.
    pub fn sso_sessions_of(&self, user_id: u64) -> Vec<String> {
        self.sso_sessions
            .iter()
            .filter(|(id, _)| *id == user_id)
            .map(|(_, org)| org.clone())
            .collect()
    }

    /// The mock's wall clock (unix seconds), [`State::clock_offset`] ahead of the machine's.
    pub fn now(&self) -> u64 {
        let machine = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        machine + self.clock_offset
    }

    /// A new `gho_` token (the prefix GitHub uses for OAuth app user tokens).
    pub fn issue_token(&mut self, grant: TokenGrant) -> String {
        let token = format!("gho_{}", Alphanumeric.sample_string(&mut rand::rng(), 36));
        self.tokens.insert(token.clone(), grant);
        token
    }

    /// A user token for a sign-in: `gho_` for an OAuth App; for a GitHub App an 8-hour `ghu_`
    /// token with a `ghr_` refresh token, and no scopes (Apps have permissions instead).
    pub fn issue_user_token(&mut self, mut grant: TokenGrant) -> Issued {
        if !is_github_app(&grant.client_id) {
            let scope = grant.scopes.joined(",");
            let access_token = self.issue_token(grant);
            return Issued {
                access_token,
                scope,
                refresh: None,
            };
        }
        let now = self.now();
        grant.expires_at = Some(now + APP_TOKEN_SECS);
        let access_token = format!("ghu_{}", Alphanumeric.sample_string(&mut rand::rng(), 36));
        let refresh_token = format!("ghr_{}", Alphanumeric.sample_string(&mut rand::rng(), 76));
        self.tokens.insert(access_token.clone(), grant.clone());
        self.refresh_tokens.insert(
            refresh_token.clone(),
            RefreshGrant {
                access_token: access_token.clone(),
                grant,
                expires_at: now + APP_REFRESH_SECS,
            },
        );
        Issued {
            access_token,
            scope: String::new(),
            refresh: Some((APP_TOKEN_SECS, refresh_token, APP_REFRESH_SECS)),
        }
    }

    /// Use a refresh token of `client_id`'s: it and the access token issued with it stop
    /// working, and a new pair is issued. `None` when it is unknown, used, expired or another
    /// app's.
    pub fn refresh_user_token(&mut self, client_id: &str, refresh_token: &str) -> Option<Issued> {
        let now = self.now();
        if self.refresh_tokens.get(refresh_token)?.grant.client_id != client_id {
            return None;
        }
        let used = self.refresh_tokens.remove(refresh_token)?;
        self.tokens.remove(&used.access_token);
        if used.expires_at <= now {
            return None;
        }
        self.user_by_id(used.grant.user_id)?;
        Some(self.issue_user_token(used.grant))
    }
}
