//! The mock GitHub server: `MockGithub`, its public face, and the router that assembles the
//! handlers (OAuth web flow at the root, REST API under a prefix). Nothing else in the crate
//! imports it: the handlers are given the `Shared` state.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::routing::{get, post};
use axum::Router;

pub use super::data::MockApp;
pub use super::validate::MockError;

use super::state::Shared;
use super::{api, authorize, control, data, redirect, sso, token, validate};

/// A fake GitHub (OAuth app flow + the REST calls Gatehouse makes). Cheap to clone.
#[derive(Clone)]
pub struct MockGithub {
    shared: Arc<Shared>,
    /// "" (API at the root, like api.github.com) or "/api/v3" (GitHub Enterprise).
    api_prefix: Arc<str>,
}

impl MockGithub {
    /// Parse the users/orgs/apps TOML (format documented in `demo_users.toml`).
    pub fn from_toml(text: &str) -> Result<MockGithub, MockError> {
        let data = validate::parse(text)?;
        Ok(MockGithub {
            shared: Arc::new(Shared::new(data)),
            api_prefix: Arc::from("/api/v3"),
        })
    }

    /// The embedded demo data (include_str!("demo_users.toml")).
    #[allow(
        clippy::expect_used,
        reason = "the embedded file is checked by a unit test"
    )]
    pub fn demo() -> MockGithub {
        // Checked by the `demo_file_is_valid` unit test, so this cannot fail at run time.
        MockGithub::from_toml(include_str!("demo_users.toml"))
            .expect("embedded demo_users.toml is valid")
    }

    /// A user's id and active memberships (lower-case orgs and `org/team` slugs), as GitHub
    /// would report them; `None` for an unknown login. For `check-config --explain`.
    pub fn memberships_of(&self, login: &str) -> Option<(u64, Vec<String>)> {
        let st = self.shared.lock();
        let user = st.user_by_login(login)?;
        let mut groups = Vec::new();
        for org in &st.orgs {
            let active = org
                .member(&user.login)
                .is_some_and(|m| m.state == data::MemberState::Active);
            if !active {
                continue;
            }
            let org_login = org.login.to_ascii_lowercase();
            for team in &org.teams {
                if team
                    .members
                    .iter()
                    .any(|m| m.eq_ignore_ascii_case(&user.login))
                {
                    groups.push(format!("{org_login}/{}", team.slug.to_ascii_lowercase()));
                }
            }
            groups.push(org_login);
        }
        groups.sort();
        Some((user.id, groups))
    }

    /// Register (or replace) an OAuth app at run time.
    pub fn add_app(&self, app: MockApp) {
        if let Err(problem) = redirect::check_callback(&app.callback_url) {
            tracing::warn!(client_id = %app.client_id, "mock app callback_url is unusable: {problem}");
        }
        let mut st = self.shared.lock();
        st.client_secrets.remove(&app.client_id);
        st.apps.insert(app.client_id.clone(), app);
    }

    /// Install GitHub App `client_id` on `org` with the Members: read permission, so its user
    /// tokens see the org's memberships. False when there is no such org.
    pub fn install_app(&self, org: &str, client_id: &str) -> bool {
        let mut st = self.shared.lock();
        let Some(org) = st.org_mut(org) else {
            return false;
        };
        if !org.installed_apps.iter().any(|c| c == client_id) {
            org.installed_apps.push(client_id.to_string());
        }
        true
    }

    /// Move the mock's clock `secs` seconds ahead: GitHub App user tokens (8 hours) and
    /// refresh tokens (about 6 months) expire by it, as they would at GitHub.
    pub fn advance_clock(&self, secs: u64) {
        let mut st = self.shared.lock();
        st.clock_offset = st.clock_offset.saturating_add(secs);
    }

    /// Make `secrets` the app's client secrets, as an owner does on GitHub by generating a
    /// new one (both then work) and deleting the old one. Code exchanges and app-authenticated
    /// calls with any other secret get `incorrect_client_credentials` (or 404).
    pub fn set_client_secrets(&self, client_id: &str, secrets: &[&str]) {
        let secrets = secrets.iter().map(|s| s.to_string()).collect();
        self.shared
            .lock()
            .client_secrets
            .insert(client_id.to_string(), secrets);
    }

    /// API prefix; default "/api/v3" (GitHub Enterprise layout). "" means API at root like api.github.com.
    pub fn with_api_prefix(self, prefix: &str) -> MockGithub {
        let trimmed = prefix.trim().trim_matches('/');
        let prefix = if trimmed.is_empty() {
            String::new()
        } else {
            format!("/{trimmed}")
        };
        MockGithub {
            api_prefix: Arc::from(prefix),
            ..self
        }
    }

    /// Serve on an already-bound listener until the future is dropped.
    pub async fn serve(self, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        axum::serve(listener, self.router()).await
    }

    /// Number of REST API requests served so far (tests use it to prove the gate's hot path makes no GitHub call).
    pub fn api_request_count(&self) -> u64 {
        self.shared.api_requests.load(Ordering::Relaxed)
    }

    fn router(self) -> Router {
        let MockGithub { shared, api_prefix } = self;
        // Everything else is the REST API (or a 404 outside the prefix).
        let rest = move |State(shared): State<Arc<Shared>>, req: Request| {
            api::dispatch(shared, api_prefix, req)
        };
        Router::new()
            .route(
                "/login/oauth/authorize",
                get(authorize::show).post(authorize::submit),
            )
            .route("/login/oauth/access_token", post(token::exchange))
            .route("/orgs/{org}/sso", get(sso::show).post(sso::submit))
            .merge(control::routes())
            .fallback(rest)
            .with_state(shared)
    }
}
