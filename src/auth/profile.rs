//! Everything Gatehouse learns about a person from a GitHub token, as session claims: who they
//! are, their verified email and the memberships the policy plans for. Shared by the browser
//! sign-in, personal access tokens and raw GitHub tokens (what a presented one stands for:
//! [`session_for_github_token`]).

use crate::github::GithubError;
use crate::identity::Identity;
use crate::pages::Refusal;
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

/// Claims for a GitHub token someone presented (PAT or raw token), or the failure to show.
pub async fn session_for_github_token(
    rt: &Runtime,
    token: &str,
    now: u64,
) -> Result<SessionClaims, Refusal> {
    if !crate::tokens::github_tokens::is_token_shaped(token) {
        return Err(Refusal::InvalidCredentials {
            reason: "that is not a GitHub token".into(),
            basic: false,
        });
    }
    session_claims(rt, token, now).await.map_err(|e| match e {
        GithubError::Status { status: 401, .. } => Refusal::InvalidCredentials {
            reason: "GitHub does not accept this token".into(),
            basic: false,
        },
        e => {
            tracing::warn!(error = %e, "could not check a GitHub token");
            Refusal::GithubUnavailable {
                start_url: rt.start_url("/"),
            }
        }
    })
}
