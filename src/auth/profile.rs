//! Everything Gatehouse learns about a person from a GitHub token, as session claims: who they
//! are, their verified email and the memberships the policy plans for. Shared by the browser
//! sign-in, personal access tokens and raw GitHub tokens.

use crate::app::App;
use crate::github::GithubError;
use crate::identity::Identity;
use crate::session::SessionClaims;

/// Claims for a session starting `now`, with the token kept for re-checks and roles filled in
/// when the person is admitted.
pub async fn session_claims(
    app: &App,
    token: &str,
    now: u64,
) -> Result<SessionClaims, GithubError> {
    let user = app.github.user(token).await?;
    let (email, groups) = futures_util::try_join!(
        app.github.primary_verified_email(token),
        app.github
            .memberships(token, &user.login, &app.settings.policy.membership)
    )?;
    let mut claims = SessionClaims {
        sub: user.id.to_string(),
        login: user.login,
        name: user.name,
        email,
        avatar_url: user.avatar_url,
        groups,
        roles: Vec::new(),
        iat: now,
        exp: now + app.sessions.ttl_secs,
        refreshed_at: now,
        ght: Some(token.to_string()),
        sid: None,
    };
    claims.roles = roles_if_admitted(app, &claims);
    Ok(claims)
}

/// Whether the claims' person passes the allow-lists.
pub fn admitted(app: &App, claims: &SessionClaims) -> bool {
    app.settings
        .policy
        .admission
        .admits(&Identity::from(claims.clone()))
}

/// The role names for the cookie's `roles` claim (empty for people not admitted).
pub fn roles_if_admitted(app: &App, claims: &SessionClaims) -> Vec<String> {
    let identity = Identity::from(claims.clone());
    if app.settings.policy.admission.admits(&identity) {
        app.settings.policy.role_names(&identity)
    } else {
        Vec::new()
    }
}
