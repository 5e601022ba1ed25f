//! Gatehouse's access tokens carry the groups of their sign-in. When a GitHub webhook asks a
//! user's sign-ins to re-check their memberships (removed from an org or team), a token issued
//! before that asks GitHub again before its next use, with the GitHub token its refresh family
//! keeps; someone no longer admitted is refused (and the family revoked), and a fresh answer is
//! written back to the family so the token's later uses need not ask again.

use crate::github::recheck::Outcome;
use crate::identity::Identity;
use crate::pages::{Denied, Refusal};
use crate::runtime::Runtime;
use crate::session::SessionClaims;
use crate::tokens::{AccessClaims, RefreshFamily};

/// The sign-in behind `token` with memberships from after `requested_at` (when the webhook
/// asked), or the refusal: 401 when the sign-in is over, 403 when its person is no longer
/// admitted, 503 when GitHub or the store cannot answer (never the old groups).
pub async fn current(
    rt: &Runtime,
    token: &AccessClaims,
    requested_at: u64,
    now: u64,
) -> Result<SessionClaims, Denied> {
    let family = match rt.tokens.family(&token.family, now).await {
        Ok(Some(family)) => family,
        Ok(None) => return Err(ended("the token's sign-in has ended; sign in again")),
        Err(e) => {
            tracing::warn!(error = %e, "token store unavailable for a membership re-check");
            return Err(Denied::json(Refusal::StoreUnavailable));
        }
    };
    // Another use of a token of this sign-in (here or on another replica) already asked.
    if family.session.refreshed_at > requested_at {
        return Ok(family.session);
    }
    let answer = rt
        .rechecks
        .run(
            &rt.github,
            &rt.policy.membership,
            &family.session,
            now,
            requested_at,
            None,
        )
        .await;
    // GitHub retired the family's GitHub tokens if it renewed them: keep the new ones even
    // when the memberships could not be confirmed (a fresh answer keeps them below).
    if let Some((Outcome::Unconfirmed(_), _, Some(tokens))) = &answer {
        let mut session = family.session.clone();
        tokens.clone().keep_in(&mut session);
        remember(rt, &token.family, &family, &session).await;
    }
    match answer {
        Some((
            Outcome::Fresh {
                login,
                groups,
                refused,
            },
            checked_at,
            renewed,
        )) => {
            let mut session = SessionClaims {
                login,
                groups,
                refreshed_at: checked_at,
                ..family.session.clone()
            };
            if let Some(tokens) = renewed {
                tokens.keep_in(&mut session);
            }
            let admitted = super::profile::admitted(rt, &session);
            // GitHub would not say about a membership that might admit: not "removed", so
            // nothing is revoked.
            if let (Some(refusal), false) = (refused, admitted) {
                return Err(Denied::json(super::profile::github_refused(
                    rt, refusal, "/",
                )));
            }
            if !admitted {
                revoke(rt, &token.family, &session, "no longer allowed", now).await;
                return Err(Denied::json(Refusal::Forbidden {
                    login: Some(session.login),
                    sign_out_url: format!("{}/sign_out", rt.settings.proxy_prefix),
                }));
            }
            remember(rt, &token.family, &family, &session).await;
            Ok(session)
        }
        Some((Outcome::Revoked, ..)) => {
            revoke(
                rt,
                &token.family,
                &family.session,
                "GitHub no longer accepts the sign-in",
                now,
            )
            .await;
            Err(ended(
                "GitHub no longer accepts this sign-in; sign in again",
            ))
        }
        Some((Outcome::Unconfirmed(Some(refusal)), ..)) => Err(Denied::json(
            super::profile::github_refused(rt, refusal, "/"),
        )),
        Some((Outcome::Unconfirmed(None), ..)) | None => {
            Err(Denied::json(Refusal::MembershipUnconfirmed))
        }
    }
}

fn ended(reason: &str) -> Denied {
    Denied::json(Refusal::InvalidCredentials {
        reason: reason.into(),
        basic: false,
    })
}

/// End the sign-in's tokens: the access tokens minted from the family stop working too.
async fn revoke(rt: &Runtime, family_id: &str, session: &SessionClaims, reason: &str, now: u64) {
    tracing::info!(
        target: "gatehouse::audit",
        event = "token_refused",
        reason,
        login = %session.login,
        user_id = %session.user_id,
        "access token refused at its membership re-check; its sign-in's tokens are revoked"
    );
    if let Err(e) = rt.tokens.issuer().revoke(family_id, now).await {
        tracing::warn!(error = %e, "could not revoke a token family");
    }
}

/// Keep the fresh memberships in the family. Only if it has not moved on: a refresh racing
/// this one wrote fresher claims (and a new generation) that must not be overwritten.
async fn remember(rt: &Runtime, family_id: &str, family: &RefreshFamily, session: &SessionClaims) {
    if let Err(e) = rt
        .tokens
        .issuer()
        .keep_claims(family_id, family, session)
        .await
    {
        tracing::debug!(error = %e, "could not keep re-checked memberships; the next use asks again");
    }
}

/// The identity a token stands for, with `session`'s (re-checked) login and groups.
pub fn identity(token: AccessClaims, session: Option<SessionClaims>) -> Identity {
    let signed_in_at = token.signed_in_at();
    let (login, groups) = match session {
        Some(s) => (s.login, s.groups),
        None => (token.login, token.groups),
    };
    let mut identity = Identity::github(&token.user_id, &login);
    identity.name = token.name;
    identity.email = token.email;
    identity.groups = groups;
    identity.expires_at = token.exp;
    identity.signed_in_at = signed_in_at;
    identity.source = crate::identity::Source::AccessToken {
        family: token.family,
    };
    identity
}
