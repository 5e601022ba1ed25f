//! The runtime parts built once from [`Settings`] and shared by every request.

use crate::auth::UsedStates;
use crate::config::Settings;
use crate::github::{GithubClient, GithubError};
use crate::identity::Identity;
use crate::policy::Admission;
use crate::session::Sessions;
use http::HeaderMap;

#[derive(Debug)]
pub struct App {
    pub settings: Settings,
    pub sessions: Sessions,
    pub admission: Admission,
    pub github: GithubClient,
    pub used_states: UsedStates,
    /// `{proxy_prefix}/callback`; also the login cookie's path.
    pub callback_path: String,
    /// `http` or `https`, for `X-Forwarded-Proto`.
    pub public_scheme: &'static str,
}

impl App {
    pub fn new(settings: Settings) -> Result<App, GithubError> {
        let callback_path = format!("{}/callback", settings.proxy_prefix);
        let callback_url = settings
            .public_url
            .join(&callback_path)
            .map_err(|e| GithubError::Setup(e.to_string()))?;
        Ok(App {
            github: GithubClient::new(&settings.github, callback_url.as_str())?,
            sessions: Sessions::new(&settings.session),
            admission: Admission::new(&settings.access),
            used_states: UsedStates::default(),
            public_scheme: if settings.public_url.scheme() == "https" {
                "https"
            } else {
                "http"
            },
            callback_path,
            settings,
        })
    }

    /// The identity carried by the request's session cookie, if any and valid.
    pub fn identity(&self, headers: &HeaderMap, now: u64) -> Option<Identity> {
        self.sessions.read(headers, now).map(Identity::from)
    }

    /// `/oauth2/start?rd=…` for a local path.
    pub fn start_url(&self, rd: &str) -> String {
        let encoded: String = url::form_urlencoded::byte_serialize(rd.as_bytes()).collect();
        format!("{}/start?rd={encoded}", self.settings.proxy_prefix)
    }
}
