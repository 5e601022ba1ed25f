//! Who is asking: the `Authorization` header (Gatehouse access token, OIDC token, raw GitHub
//! token, API key) or else the session cookie. A credential that is present but wrong is a 401,
//! never a silent fall-back to anonymous.

use super::facts::{Authorization, RequestFacts, Scheme};
use crate::identity::{Identity, Source};
use crate::pages::{Denied, Refusal};
use crate::runtime::Runtime;
use crate::session::SessionClaims;
use crate::tokens::github_tokens::{is_token_shaped, GithubTokenCache};
use crate::tokens::is_jwt_shaped;
use base64::Engine;

pub enum Credential {
    Anonymous,
    /// The session cookie (memberships may be due a re-check).
    Session(SessionClaims),
    /// From `Authorization`: already current; the header is Gatehouse's and never goes upstream.
    Token(Identity),
}

/// A refusal of the credential in `Authorization` (always JSON: 401 with `WWW-Authenticate`).
fn refused(reason: impl Into<String>, basic: bool) -> Denied {
    Denied::json(Refusal::InvalidCredentials {
        reason: reason.into(),
        basic,
    })
}

/// Over a budget of credential checks: 429, in JSON (an API client's credential).
fn throttled(retry: crate::limits::RetryAfter) -> Denied {
    Denied::json(Refusal::TooManyRequests {
        retry_after: retry.secs(),
    })
}

/// Who is asking, from the credential the facts found.
pub async fn identify(
    rt: &Runtime,
    facts: &RequestFacts<'_>,
    now: u64,
) -> Result<Credential, Denied> {
    let (scheme, credential) = match facts.authorization {
        Authorization::Absent => return cookie(rt, facts, now).await,
        Authorization::NotText => {
            return Err(refused("the Authorization header is not text", false))
        }
        Authorization::Repeated => {
            return Err(Denied::from(Refusal::BadRequest {
                reason: "the request has more than one Authorization header".into(),
            }))
        }
        Authorization::Given { scheme, credential } => (scheme, credential),
    };
    let tokens = &rt.tokens;
    match scheme {
        Scheme::Bearer if is_jwt_shaped(credential) => {
            if tokens.access.is_ours(credential) {
                return own_token(rt, credential, now).await.map(Credential::Token);
            }
            if tokens.oidc.issuer_for(credential).is_some() {
                return match tokens.oidc.verify(credential).await {
                    Ok(found) => Ok(Credential::Token(oidc_identity(rt, found))),
                    Err(crate::tokens::oidc::OidcError::KeysUnavailable(e)) => {
                        tracing::warn!(error = %e, "OIDC keys unavailable");
                        Err(unavailable(
                            "keys_unavailable",
                            "the token issuer's keys could not be fetched; try again shortly",
                        ))
                    }
                    Err(e) => {
                        tracing::info!(error = %e, "OIDC token refused");
                        Err(refused(e.to_string(), false))
                    }
                };
            }
            Err(refused(
                "the token is not from this gate or a configured issuer",
                false,
            ))
        }
        Scheme::Bearer | Scheme::Token
            if tokens.settings.accept_github_tokens && !credential.is_empty() =>
        {
            github_token(rt, facts, credential, now)
                .await
                .map(Credential::Token)
        }
        Scheme::Bearer | Scheme::Token => Err(refused(
            "this gate accepts its own access tokens and configured OIDC tokens here",
            false,
        )),
        Scheme::Basic if !tokens.api_keys.is_empty() => {
            api_key(rt, facts, credential).map(Credential::Token)
        }
        // Not ours (e.g. the app's own Basic auth): leave it for the app.
        Scheme::Basic | Scheme::Other => cookie(rt, facts, now).await,
    }
}

/// A verified OIDC token's identity: it ends at the token's `exp`, and with its issuer entry.
fn oidc_identity(rt: &Runtime, found: crate::tokens::oidc::OidcIdentity) -> Identity {
    let tokens = &rt.tokens;
    let roles = tokens.oidc_roles.get(found.issuer_index).copied();
    let mut identity = Identity::service(format!("oidc:{}", found.sub), roles.unwrap_or_default());
    identity.expires_at = found.expires_at;
    identity.source = match tokens.oidc_issuer_fingerprint(found.issuer_index) {
        Some(issuer) => Source::Oidc { issuer },
        None => Source::Unknown,
    };
    identity
}

/// 503 for a dependency that is down: never an allow, never a misleading 401.
fn unavailable(error: &'static str, message: &'static str) -> Denied {
    Denied::json(Refusal::Unavailable { error, message })
}

/// Is `Authorization` a credential Gatehouse recognises: its access or refresh tokens, an API
/// key, a GitHub token (by its prefix, whether or not this gate accepts them) or a token from a
/// configured OIDC issuer? Checked on public paths too, so these never reach the app even where
/// nobody needs them. Cheap: no signature check.
pub fn is_gatehouse_credential(rt: &Runtime, facts: &RequestFacts<'_>) -> bool {
    let Authorization::Given {
        scheme,
        credential: rest,
    } = facts.authorization
    else {
        return false;
    };
    let tokens = &rt.tokens;
    match scheme {
        Scheme::Bearer | Scheme::Token => {
            tokens.access.is_ours(rest)
                || rest.starts_with("gate_rt.")
                || is_github_token(rest)
                || (tokens.settings.accept_github_tokens && !rest.is_empty())
                || (is_jwt_shaped(rest) && tokens.oidc.issuer_for(rest).is_some())
        }
        Scheme::Basic if !tokens.api_keys.is_empty() => {
            basic_name(rest).is_some_and(|name| tokens.api_keys.has(&name))
        }
        Scheme::Basic | Scheme::Other => false,
    }
}

/// GitHub's token prefixes (OAuth, personal, user-to-server, server-to-server, refresh,
/// fine-grained personal): such a token is a GitHub credential whatever the app expects.
fn is_github_token(token: &str) -> bool {
    ["gho_", "ghp_", "ghu_", "ghs_", "ghr_", "github_pat_"]
        .iter()
        .any(|prefix| token.starts_with(prefix))
}

/// Did [`identify`] consume the `Authorization` header (so it must not reach the upstream)?
pub fn consumed_authorization(credential: &Credential) -> bool {
    matches!(credential, Credential::Token(_))
}

async fn cookie(rt: &Runtime, facts: &RequestFacts<'_>, now: u64) -> Result<Credential, Denied> {
    match rt.sessions.read(&facts.req.headers, now).await {
        Ok(Some(claims)) => Ok(Credential::Session(claims)),
        Ok(None) => Ok(Credential::Anonymous),
        Err(e) => Err(store_unavailable(&e).into()),
    }
}

/// 503 when the session store cannot answer: never an allow, never a misleading sign-in.
pub fn store_unavailable(e: &crate::store::StoreError) -> Refusal {
    tracing::warn!(error = %e, "session store unavailable; refusing requests that need a session");
    Refusal::StoreUnavailable
}

async fn own_token(rt: &Runtime, token: &str, now: u64) -> Result<Identity, Denied> {
    let mut claims = rt
        .tokens
        .access
        .verify(token)
        .map_err(|e| refused(e.to_string(), false))?;
    // Its sign-in lives `session.ttl` as configured now, like a cookie session.
    claims.exp = claims.exp.min(rt.sessions.ends_at(claims.signed_in_at()));
    if now >= claims.exp {
        return Err(refused("the token's sign-in has ended", false));
    }
    let revoked = || refused("the token's sign-in was revoked", false);
    let mark = match rt.tokens.store.is_revoked(&claims.family, now).await {
        Ok(false) => {
            rt.sessions
                .revocations
                .mark(rt.sessions.store.as_ref(), &claims.user_id)
                .await
        }
        Ok(true) => return Err(revoked()),
        Err(e) => Err(e),
    };
    let mark = match mark {
        Ok(mark) if mark.is_some_and(|m| claims.signed_in_at() <= m.end_before) => {
            return Err(revoked())
        }
        Ok(mark) => mark,
        Err(e) => {
            tracing::warn!(error = %e, "token store unavailable");
            return Err(unavailable(
                "store_unavailable",
                "the token store is unavailable; try again shortly",
            ));
        }
    };
    // A webhook asked this user's sign-ins to re-check their memberships after the token was
    // issued: its groups may be stale, so GitHub is asked before it is used.
    let requested = mark
        .map(|m| m.recheck_before)
        .filter(|&at| at > 0 && claims.iat <= at);
    let session = match requested {
        Some(at) => Some(super::token_recheck::current(rt, &claims, at, now).await?),
        None => None,
    };
    Ok(super::token_recheck::identity(claims, session))
}

/// An API key, unless its budget of failed attempts is spent: then 429 without checking, so a
/// right guess looks like a wrong one. The budget is per client address and key name for a
/// configured name, per client address otherwise ([`crate::limits::ApiKeyBudget`]): failures
/// of others on a shared address never lock out a key they did not name.
fn api_key(rt: &Runtime, facts: &RequestFacts<'_>, encoded: &str) -> Result<Identity, Denied> {
    let budget = facts.client_ip.map(|ip| {
        let name = basic_name(encoded);
        let configured = name.as_deref().is_some_and(|n| rt.tokens.api_keys.has(n));
        crate::limits::ApiKeyBudget::of(ip, name.as_deref(), configured)
    });
    let Some(budget) = budget else {
        // No client address (cannot happen on a TCP listener): nothing to count against.
        return check_api_key(rt, encoded);
    };
    if let Some(retry) = rt.limits.api_key_locked_out(&budget) {
        return Err(throttled(retry));
    }
    check_api_key(rt, encoded).map_err(|refusal| match rt.limits.api_key_failed(&budget) {
        Some(retry) => {
            tracing::info!(budget = ?budget, "API key attempts over the limit");
            throttled(retry)
        }
        None => refusal,
    })
}

/// The name in Basic credentials (`base64(name:key)`), if they decode.
fn basic_name(encoded: &str) -> Option<String> {
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    decoded.split_once(':').map(|(name, _)| name.to_string())
}

fn check_api_key(rt: &Runtime, encoded: &str) -> Result<Identity, Denied> {
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| refused("Basic credentials are not base64 of name:key", true))?;
    let (name, key) = decoded
        .split_once(':')
        .ok_or_else(|| refused("Basic credentials are not name:key", true))?;
    let entry = rt.tokens.api_keys.verify(name, key).ok_or_else(|| {
        tracing::info!(name = %name.chars().take(64).collect::<String>(), "API key refused");
        refused("unknown API key name, or wrong key", true)
    })?;
    let roles = rt
        .tokens
        .api_key_roles
        .get(&entry.name)
        .copied()
        .unwrap_or_default();
    let mut identity = Identity::service(format!("apikey:{}", entry.name), roles);
    // Fail closed: an entry without a fingerprint (cannot happen) is refused.
    let fingerprint = rt.tokens.api_key_fingerprint(&entry.name);
    identity.source = Source::ApiKey {
        name: entry.name.clone(),
        entry: fingerprint.ok_or_else(|| refused("unknown API key name, or wrong key", true))?,
    };
    Ok(identity)
}

/// A raw GitHub token: asked of GitHub once, then cached 5 minutes by its hash. Asking costs
/// the gate's GitHub rate limit, so a token GitHub refused is answered from memory for a
/// while, and each client address may have only so many tokens checked a minute (429 past
/// that, without asking).
async fn github_token(
    rt: &Runtime,
    facts: &RequestFacts<'_>,
    token: &str,
    now: u64,
) -> Result<Identity, Denied> {
    let key = GithubTokenCache::key(token);
    if let Some(claims) = rt.tokens.github_cache.get(&key, now) {
        // Unless a webhook asked this user's memberships to be re-checked, or their sign-ins
        // were ended, after GitHub was last asked about the token. A fresh copy of the list:
        // a replica that only sees raw tokens must still see revocations made elsewhere.
        let mark = rt
            .sessions
            .revocations
            .mark(rt.sessions.store.as_ref(), &claims.user_id)
            .await
            .map_err(|e| store_unavailable_api(&e))?;
        let stale = mark.is_some_and(|m| {
            claims.iat <= m.end_before
                || (m.recheck_before > 0 && claims.refreshed_at <= m.recheck_before)
        });
        if !stale {
            return Ok(github_token_identity(claims));
        }
    }
    let cache = &rt.tokens.github_cache;
    if !is_token_shaped(token) || cache.refused(&key, now) {
        return Err(refused("GitHub does not accept this token", false));
    }
    if let Err(retry) = rt.limits.check_github_token(facts.client_ip) {
        tracing::info!("GitHub token checks over the limit for this client address");
        return Err(throttled(retry));
    }
    let claims = match super::profile::session_for_github_token(rt, token, now).await {
        Ok(claims) => claims,
        Err(refusal) => {
            // Shaped like a token, so this is GitHub's own refusal (not an outage).
            if matches!(refusal, Refusal::InvalidCredentials { .. }) {
                cache.put_refused(key, now);
            }
            return Err(Denied::json(refusal));
        }
    };
    // GitHub just vouched for it: a sign-in made now, after any revocation of this second
    // (else it would count as ended, and GitHub be asked again on every request).
    let claims = rt
        .sessions
        .after_revocation(&claims)
        .await
        .map_err(|e| store_unavailable_api(&e))?;
    // Never the token itself, not even in memory beyond this request.
    let cached = SessionClaims {
        github_token: None,
        github_refresh: None,
        ..claims
    };
    if super::profile::admitted(rt, &cached) {
        remember_github_token(rt, &key, &cached, now)
            .await
            .map_err(|e| store_unavailable_api(&e))?;
    }
    rt.tokens.github_cache.put(key, cached.clone(), now);
    Ok(github_token_identity(cached))
}

fn github_token_identity(claims: SessionClaims) -> Identity {
    Identity {
        source: Source::GithubToken,
        ..Identity::from(claims)
    }
}

/// So an admin can find the user by login, see the token (never it, only when GitHub last
/// vouched for it) and end it with the rest of their sign-ins.
async fn remember_github_token(
    rt: &Runtime,
    key: &[u8; 32],
    claims: &SessionClaims,
    now: u64,
) -> Result<(), crate::store::StoreError> {
    let store = rt.sessions.store.as_ref();
    store
        .remember_login(
            &claims.login.to_ascii_lowercase(),
            &claims.user_id,
            now.saturating_add(rt.sessions.ttl_secs),
        )
        .await?;
    let seen = crate::store::GithubTokenUse {
        checked_at: claims.iat,
        expires_at: now + crate::tokens::github_tokens::CACHE_SECS,
    };
    store
        .note_github_token(&claims.user_id, &GithubTokenCache::listing_id(key), seen)
        .await
}

/// 503 for an API client when the store cannot answer (never an allow).
fn store_unavailable_api(e: &crate::store::StoreError) -> Denied {
    tracing::warn!(error = %e, "session store unavailable for a GitHub token");
    unavailable(
        "store_unavailable",
        "the session store is unavailable; try again shortly",
    )
}
