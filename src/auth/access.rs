//! The per-request access decision ([`decide`]): from the request's [`RequestFacts`] (path
//! normalized, host canonical, route found once), find the deciding rule, and only when the rule
//! needs it read the credential (re-checking memberships when they are due) and judge the
//! person. The outcome is an [`Access`]: **allow** with what was [`Granted`], or **deny** with
//! a [`Denied`] refusal, which the caller renders (`pages::Refusal::reply`, page or JSON by the
//! facts' browser flag).

use super::credentials::{self, Credential};
use super::facts::{Authorization, HostFact, RequestFacts};
pub use super::facts::{DenyAs, Judge};
use crate::github::recheck::Outcome;
use crate::identity::Identity;
use crate::pages::{Denied, Refusal};
use crate::policy::host::CanonicalHost;
use crate::policy::{path_refusal, Policy, Target, Verdict};
use crate::routing::{Destination, RouteId};
use crate::runtime::Runtime;
use crate::session::{SessionClaims, WriteError};
use http::request::Parts;
use http::Method;

/// The access decision for one request.
// Lives on the stack for one request; boxing would cost an allocation on every request.
#[allow(clippy::large_enum_variant)]
pub enum Access {
    Allow(Granted),
    Deny(Denied),
}

/// What an allowed request carries on.
#[derive(Debug, Default)]
pub struct Granted {
    /// Which app the request goes to.
    pub route: RouteId,
    /// `None` on a public path: no identity headers go upstream.
    pub identity: Option<Identity>,
    /// The normalized path, when it differs from what the client sent: the upstream gets it.
    pub normalized_path: Option<String>,
    /// The canonical `Host` the rules judged (lower case, no trailing dot or empty port), when
    /// it differs from what the client sent: the upstream gets it.
    pub canonical_host: Option<String>,
    /// `Set-Cookie` values for the response (a session refreshed by a re-check).
    pub set_cookies: Vec<String>,
    /// The `Authorization` header held Gatehouse's credential; it must not reach the upstream.
    pub consumed_authorization: bool,
}

/// [`decide`] for a request read here (no client address known): the entry point for
/// benchmarks and tests that start from an `http` request.
pub async fn check(
    rt: &Runtime,
    req: &Parts,
    judge: Judge<'_>,
    now: u64,
    deny_as: DenyAs,
) -> Access {
    decide(rt, &RequestFacts::read(rt, req, None, judge, deny_as), now).await
}

fn deny(refusal: Refusal) -> Access {
    Access::Deny(Denied::from(refusal))
}

/// Decide on the request `facts` describe.
pub async fn decide(rt: &Runtime, facts: &RequestFacts<'_>, now: u64) -> Access {
    let policy = &rt.policy;
    let method = facts.method;
    if facts.authorization == Authorization::Repeated {
        return deny(Refusal::BadRequest {
            reason: "the request has more than one Authorization header".into(),
        });
    }
    if let Some(reason) = method_refusal(method) {
        return deny(Refusal::BadRequest { reason });
    }
    let host = match &facts.host {
        HostFact::Canonical(h) => Some(h),
        HostFact::Absent => None,
        HostFact::Invalid(e) => {
            return deny(Refusal::BadRequest {
                reason: e.to_string(),
            })
        }
        HostFact::Repeated => {
            return deny(Refusal::BadRequest {
                reason: "the request has more than one Host header".into(),
            })
        }
    };
    if host.is_none() && rt.host_matters && facts.judge != Judge::IdentityOnly {
        return deny(Refusal::BadRequest {
            reason: "the request names no host (forward-auth: the proxy must send X-Forwarded-Host), and this gate decides by host".into(),
        });
    }
    let canonical_host = host.filter(|h| h.changed).map(CanonicalHost::header_value);
    let normal = match &facts.path {
        Ok(n) => n,
        Err(e) => {
            return deny(Refusal::BadPath {
                reason: e.to_string(),
            })
        }
    };
    // Gatehouse's own endpoints are recognised by the path as sent; another spelling of one
    // (`/%6Fauth2/start`, `//oauth2/userinfo`) would otherwise go to the app as the real thing.
    if facts.judge == Judge::Request && super::is_own_path(rt, &normal.path) {
        return deny(Refusal::BadPath {
            reason:
                "it names one of Gatehouse's own endpoints in another spelling; use its plain path"
                    .into(),
        });
    }
    let target = Target {
        method,
        host: facts.rules_host(),
        path: &normal.path,
    };
    let route = match facts.route {
        None => None,
        Some(Destination::Route(route)) => route,
        Some(Destination::Nowhere) => return deny(Refusal::NotFound),
    };
    let found = match facts.judge {
        Judge::IdentityOnly => None,
        _ => policy.rule_on_route(route, &target),
    };
    if let Some(reason) = path_refusal(normal, found.as_ref().map(|f| f.rule)) {
        return deny(Refusal::BadPath {
            reason: reason.into(),
        });
    }
    let normalized_path = match &normal.path {
        std::borrow::Cow::Owned(p) => Some(p.clone()),
        std::borrow::Cow::Borrowed(_) => None,
    };
    if !Policy::needs_identity(found.as_ref(), method) {
        return match policy.judge_on(route, found.as_ref(), method, None) {
            Verdict::Public => Access::Allow(Granted {
                route,
                identity: None,
                normalized_path,
                canonical_host,
                set_cookies: Vec::new(),
                consumed_authorization: credentials::is_gatehouse_credential(rt, facts),
            }),
            verdict => Access::Deny(refusal(rt, facts.req, verdict, None).into()),
        };
    }

    let mut set_cookies = Vec::new();
    let credential = match credentials::identify(rt, facts, now).await {
        Ok(credential) => credential,
        Err(denied) => return Access::Deny(denied),
    };
    let consumed_authorization = credentials::consumed_authorization(&credential)
        || credentials::is_gatehouse_credential(rt, facts);
    let identity = match credential {
        Credential::Session(claims) => {
            match current_claims(rt, facts, claims, now, &mut set_cookies).await {
                Ok(claims) => claims.map(Identity::from),
                Err(refusal) => return Access::Deny(Denied::from(refusal).cookies(set_cookies)),
            }
        }
        Credential::Token(identity) => Some(identity),
        Credential::Anonymous => None,
    };
    let verdict = policy.judge_on(route, found.as_ref(), method, identity.as_ref());
    match (verdict, identity) {
        (Verdict::Allow | Verdict::Public, Some(mut identity)) => {
            identity.roles = policy.role_names(&identity);
            Access::Allow(Granted {
                route,
                identity: Some(identity),
                normalized_path,
                canonical_host,
                set_cookies,
                consumed_authorization,
            })
        }
        (verdict, identity) => Access::Deny(
            Denied::from(refusal(rt, facts.req, verdict, identity.as_ref())).cookies(set_cookies),
        ),
    }
}

/// How long a request waits for a due membership re-check while the last known memberships
/// may still serve.
const RECHECK_PATIENCE: std::time::Duration = std::time::Duration::from_secs(1);

/// The session's claims after a membership re-check when one is due. `Ok(None)`: the session
/// ended (token revoked); `Err`: GitHub has been unreachable for longer than the grace.
async fn current_claims(
    rt: &Runtime,
    facts: &RequestFacts<'_>,
    claims: SessionClaims,
    now: u64,
    set_cookies: &mut Vec<String>,
) -> Result<Option<SessionClaims>, Refusal> {
    let req = facts.req;
    let access = &rt.settings.access;
    let due_at = claims
        .refreshed_at
        .saturating_add(access.refresh_interval.as_secs());
    // A webhook (or an admin) asked every session of this user to ask GitHub again now.
    let requested = rt.sessions.recheck_requested(&claims);
    if now < due_at && requested.is_none() {
        return Ok(Some(claims));
    }
    // While the last known memberships may still serve (within stale_grace) and no
    // revocation asked for this re-check, a slow GitHub delays a request by at most
    // RECHECK_PATIENCE: past it, the request is served on them and the re-check finishes in
    // the background for the session's next request.
    let within_grace = now < due_at.saturating_add(access.stale_grace.as_secs());
    let patience = (requested.is_none() && within_grace).then_some(RECHECK_PATIENCE);
    let Some((outcome, checked_at, renewed)) = rt
        .rechecks
        .run(
            &rt.github,
            &rt.policy.membership,
            &claims,
            now,
            requested.unwrap_or(0),
            patience,
        )
        .await
    else {
        tracing::debug!(login = %claims.login, "re-check still running; serving the last known memberships");
        return Ok(Some(claims));
    };
    let mut claims = claims;
    if let Some(tokens) = renewed {
        tokens.keep_in(&mut claims);
        // GitHub retired the old tokens: keep the new ones even when the memberships could
        // not be confirmed (a fresh answer is stored below anyway).
        if matches!(outcome, Outcome::Unconfirmed(_)) {
            match rt.sessions.update(&claims, req, facts.client_ip, now).await {
                Ok(cookies) => set_cookies.extend(cookies),
                Err(e) => tracing::warn!(error = %e, "could not store the renewed GitHub token"),
            }
        }
    }
    match outcome {
        Outcome::Fresh {
            login,
            groups,
            refused,
        } => {
            let mut fresh = SessionClaims {
                login,
                groups,
                refreshed_at: checked_at,
                ..claims
            };
            let identity = Identity::from(fresh.clone());
            let admitted = rt.policy.admission.admits(&identity);
            // Not admitted, and GitHub would not say about a membership that might admit:
            // say so (not stored, so the session's next request asks GitHub again).
            if let (Some(refusal), false) = (refused, admitted) {
                return Err(super::profile::github_refused(rt, refusal, rd(req)));
            }
            fresh.roles = if admitted {
                rt.policy.role_names(&identity)
            } else {
                Vec::new()
            };
            let claims = fresh;
            // Not stored (too large, or the store failed) means the next request re-checks
            // again; still correct.
            match rt.sessions.update(&claims, req, facts.client_ip, now).await {
                Ok(cookies) => set_cookies.extend(cookies),
                // Signed out or revoked while GitHub was asked: the session is over, and the
                // write did not bring it back.
                Err(WriteError::Ended) => {
                    tracing::info!(login = %claims.login, "session ended during its re-check");
                    set_cookies.extend(rt.sessions.clear(&req.headers));
                    return Ok(None);
                }
                Err(e) => tracing::warn!(error = %e, "could not store re-checked memberships"),
            }
            Ok(Some(claims))
        }
        Outcome::Revoked => {
            tracing::info!(
                target: "gatehouse::audit",
                event = "session_revoked",
                reason = "GitHub no longer accepts the sign-in",
                login = %claims.login,
                user_id = %claims.user_id,
                "session ended: GitHub no longer accepts the sign-in"
            );
            if let Err(e) = rt.sessions.end(&claims).await {
                tracing::warn!(error = %e, "could not delete an ended session from the store");
            }
            set_cookies.extend(rt.sessions.clear(&req.headers));
            Ok(None)
        }
        // Could not confirm is never "removed": within the grace the last known memberships serve.
        Outcome::Unconfirmed(_) if now < due_at.saturating_add(access.stale_grace.as_secs()) => {
            Ok(Some(claims))
        }
        Outcome::Unconfirmed(refused) => {
            tracing::warn!(login = %claims.login, reason = refused.as_ref().map_or("unreachable", |r| r.reason()), "access refused: memberships could not be re-checked within access.stale_grace");
            Err(match refused {
                Some(refusal) => super::profile::github_refused(rt, refusal, rd(req)),
                None => Refusal::MembershipUnconfirmed,
            })
        }
    }
}

/// Where a sign-in started from this request returns to: the request itself.
fn rd(req: &Parts) -> &str {
    req.uri.path_and_query().map_or("/", |pq| pq.as_str())
}

/// The refusal for a verdict that does not let the request through.
fn refusal(rt: &Runtime, req: &Parts, verdict: Verdict, identity: Option<&Identity>) -> Refusal {
    if let Verdict::Deny { hide } = verdict {
        tracing::info!(
            target: "gatehouse::audit",
            event = "denied",
            status = if hide { 404 } else { 403 },
            login = identity.map_or("-", |i| i.login.as_str()),
            method = %req.method,
            path = req.uri.path(),
            "access denied by rule"
        );
    }
    match verdict {
        Verdict::Deny { hide: true } => Refusal::NotFound,
        Verdict::Deny { hide: false } => Refusal::Forbidden {
            login: identity.map(|i| i.login.clone()),
            sign_out_url: format!("{}/sign_out", rt.settings.proxy_prefix),
        },
        // Allow without an identity cannot happen; answer it as "sign in" (fail closed). A
        // browser is sent to sign in, and back here after.
        Verdict::Login | Verdict::Allow | Verdict::Public => Refusal::SignInRequired {
            sign_in_url: rt.start_url(rd(req)),
        },
    }
}

/// Method names are case-sensitive (RFC 9110 §9.1), but Django, Flask, Symfony and Laravel
/// upper-case whatever arrives: `post` would be judged as one method and run as another. So a
/// method with a lower-case letter is refused rather than guessed at.
fn method_refusal(method: &Method) -> Option<String> {
    let name = method.as_str();
    name.bytes().any(|b| b.is_ascii_lowercase()).then(|| {
        format!(
            "the method `{name}` is not in upper case; methods are case-sensitive, send `{}`",
            name.to_ascii_uppercase()
        )
    })
}
