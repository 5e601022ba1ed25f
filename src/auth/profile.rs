//! Everything Gatehouse learns about a person from a GitHub token, as session claims: who they
//! are, their verified email and the memberships the policy plans for. Shared by the browser
//! sign-in, personal access tokens and raw GitHub tokens (what a presented one stands for:
//! [`session_for_github_token`]).

use crate::github::GithubError;
use crate::identity::Identity;
use crate::pages::{GithubRefusal, Refusal};
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
    let (email, memberships) = futures_util::try_join!(
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
        groups: memberships.groups,
        roles: Vec::new(),
        iat: now,
        exp: now + rt.sessions.ttl_secs,
        refreshed_at: now,
        github_token: Some(token.to_string()),
        github_refresh: None,
        session_id: None,
    };
    claims.roles = roles_if_admitted(rt, &claims);
    // Someone GitHub would not tell about is not "not allowed": say what GitHub said. (Admitted
    // anyway, say by login or another org, the unknown membership does not matter.)
    if let Some(refusal) = memberships.refused.into_iter().next() {
        if !admitted(rt, &claims) {
            return Err(GithubError::Refused(refusal));
        }
        tracing::info!(login = %claims.login, reason = refusal.reason(), org = refusal.org().unwrap_or("-"), "GitHub would not confirm a membership; the person is admitted without it");
    }
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
        GithubError::Refused(refusal) => refused(rt, refusal, "/"),
        e => {
            tracing::warn!(error = %e, "could not check a GitHub token");
            Refusal::GithubUnavailable {
                start_url: rt.start_url("/"),
            }
        }
    })
}

/// The refusal for a sign-in GitHub would not confirm, counted and logged for the operator:
/// its "Try again" starts a fresh sign-in that returns to `rd` (a new sign-in is what picks up
/// an owner's approval, a single sign-on session or a newly granted scope), or, while GitHub
/// rate-limits, comes back to `rd` itself.
pub fn refused(rt: &Runtime, refusal: GithubRefusal, rd: &str) -> Refusal {
    crate::observe::metrics().github_refusal(&refusal, crate::observe::RefusedDuring::SignIn);
    tracing::warn!(
        target: "gatehouse::audit",
        event = "github_refused",
        reason = refusal.reason(),
        org = refusal.org().unwrap_or("-"),
        "sign-in not confirmed: GitHub would not say whether the person may enter ({})",
        refusal.reason()
    );
    github_refused(rt, refusal, rd)
}

/// [`refused`] without counting or logging (a re-check has done both once for every request
/// that shares it).
pub fn github_refused(rt: &Runtime, refusal: GithubRefusal, rd: &str) -> Refusal {
    let retry_url = match refusal {
        GithubRefusal::RateLimited { .. } => rd.to_string(),
        _ => rt.start_url(rd),
    };
    Refusal::GithubRefused {
        refusal: Box::new(refusal),
        retry_url,
    }
}
