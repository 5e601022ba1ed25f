//! Everything Gatehouse learns about a person from a GitHub token, as session claims: who they
//! are, their verified email and the memberships the policy plans for. Shared by the browser
//! sign-in, personal access tokens and raw GitHub tokens.

use crate::github::GithubError;
use crate::identity::Identity;
use crate::runtime::Runtime;
use crate::session::SessionClaims;

/// Claims for a session starting `now`, with the token kept for re-checks and roles filled in
/// when the person is admitted.
pub async fn session_claims(
    rt: &Runtime,
    token: &str,
    now: u64,
) -> Result<SessionClaims, GithubError> {
    let user = rt.github.user(token).await?;
    let (email, groups) = futures_util::try_join!(
        rt.github.primary_verified_email(token),
        rt.github
            .memberships(token, &user.login, &rt.policy.membership)
    )?;
    let mut claims = SessionClaims {
        user_id: user.id.to_string(),
        login: user.login,
        name: user.name,
        email,
        avatar_url: user.avatar_url,
        groups,
        roles: Vec::new(),
        iat: now,
        exp: now + rt.sessions.ttl_secs,
        refreshed_at: now,
        github_token: Some(token.to_string()),
        session_id: None,
    };
    claims.roles = roles_if_admitted(rt, &claims);
    Ok(claims)
}

/// Whether the claims' person passes the allow-lists.
pub fn admitted(rt: &Runtime, claims: &SessionClaims) -> bool {
    rt.policy.admission.admits(&Identity::from(claims.clone()))
}

/// The role names for the cookie's `roles` claim (empty for people not admitted).
pub fn roles_if_admitted(rt: &Runtime, claims: &SessionClaims) -> Vec<String> {
    let identity = Identity::from(claims.clone());
    if rt.policy.admission.admits(&identity) {
        rt.policy.role_names(&identity)
    } else {
        Vec::new()
    }
}
