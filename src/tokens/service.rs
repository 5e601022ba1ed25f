//! The token machinery one process runs with, built once from [`Settings`].

use super::assertion::AssertionSigner;
use super::clients::ClientRedirect;
use super::github_tokens::GithubTokenCache;
use super::oidc::{IssuerSettings, OidcVerifier};
use super::refresh::Issuer;
use super::{sealed, AccessTokens, ApiKeys, CodeGrant, CodeTake, RefreshFamily, Store, StoreError};
use crate::config::{SessionKey, Settings, TokenSettings};
use crate::identity::RoleSet;
use crate::session::KeyRing;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum TokenSetupError {
    #[error("tokens: {0}")]
    Access(#[from] super::TokenError),
    #[error("upstream.assertion_key_file(s): {0}")]
    Assertion(#[from] super::assertion::AssertionError),
    #[error("tokens.oidc_issuers: {0}")]
    Oidc(#[from] super::oidc::OidcError),
}

#[derive(Debug)]
pub struct TokenService {
    pub access: AccessTokens,
    pub store: Arc<dyn Store>,
    pub api_keys: ApiKeys,
    /// Roles each API key grants, by name.
    pub api_key_roles: std::collections::HashMap<String, RoleSet>,
    pub oidc: OidcVerifier,
    /// Roles each OIDC issuer grants, by position in `tokens.oidc_issuers`.
    pub oidc_roles: Vec<RoleSet>,
    pub github_cache: GithubTokenCache,
    /// `None` when `upstream.jwt_assertion = false`. Signs for the `[upstream]` app.
    pub assertion: Option<AssertionSigner>,
    /// The same key, with each route's name as the audience (by route index).
    pub route_assertions: Vec<AssertionSigner>,
    pub settings: TokenSettings,
    /// Seals the GitHub token in the codes and families the store keeps ([`super::sealed`]).
    store_seal: KeyRing,
}

impl TokenService {
    /// `store` is shared with the sessions (and survives a reload).
    pub fn new(
        settings: &Settings,
        roles: &crate::policy::RoleTable,
        store: Arc<dyn Store>,
    ) -> Result<TokenService, TokenSetupError> {
        let issuer = settings.public_url.as_str().trim_end_matches('/');
        let t = &settings.tokens;
        let (assertion, route_assertions) = if settings.assertion.enabled {
            let audience = &settings.assertion.audience;
            let main = match settings.assertion.key_pems.as_slice() {
                [] => {
                    tracing::warn!("upstream.assertion_key_files is not set: signing X-Gatehouse-Jwt-Assertion with a key made at start; apps must re-read /.well-known/jwks.json after every restart, and replicas will not share it");
                    AssertionSigner::generate(issuer, audience)
                }
                pems => AssertionSigner::from_pems(pems, issuer, audience)?,
            };
            let per_route = settings
                .routes
                .iter()
                .map(|r| main.for_audience(&r.name))
                .collect();
            (Some(main), per_route)
        } else {
            (None, Vec::new())
        };
        let oidc = OidcVerifier::new(
            t.oidc_issuers
                .iter()
                .map(|o| IssuerSettings {
                    issuer: o.issuer.clone(),
                    audience: o.audience.clone(),
                    jwks_url: o.jwks_url.clone(),
                    claims: o.claims.clone(),
                    leeway: o.leeway,
                })
                .collect(),
            settings.github.timeout,
        )?;
        Ok(TokenService {
            access: AccessTokens::new(&t.signing, issuer, t.access_ttl.as_secs())?,
            store,
            api_keys: ApiKeys::new(&t.api_keys),
            api_key_roles: t
                .api_keys
                .iter()
                .map(|k| {
                    (
                        k.name.clone(),
                        roles.set_of(k.roles.iter().map(String::as_str)),
                    )
                })
                .collect(),
            oidc,
            oidc_roles: t
                .oidc_issuers
                .iter()
                .map(|o| roles.set_of(o.roles.iter().map(String::as_str)))
                .collect(),
            github_cache: GithubTokenCache::default(),
            assertion,
            route_assertions,
            settings: t.clone(),
            store_seal: KeyRing::new(&store_seal_keys(settings)),
        })
    }

    /// Keep a one-time code's grant (its GitHub token sealed).
    pub async fn put_code(&self, code_hash: &str, grant: &CodeGrant) -> Result<(), StoreError> {
        let sealed = CodeGrant {
            session: sealed::seal(&self.store_seal, &grant.session)
                .map_err(|e| StoreError::Unavailable(e.to_string()))?,
            ..grant.clone()
        };
        self.store.put_code(code_hash, &sealed).await
    }

    /// Use up a one-time code: its grant, GitHub token opened.
    pub async fn take_code(&self, code_hash: &str, now: u64) -> Result<CodeTake, StoreError> {
        Ok(match self.store.take_code(code_hash, now).await? {
            CodeTake::Granted(mut grant) => {
                grant.session = sealed::open(&self.store_seal, grant.session);
                CodeTake::Granted(grant)
            }
            other => other,
        })
    }

    /// A live refresh family, its GitHub token opened.
    pub async fn family(&self, id: &str, now: u64) -> Result<Option<RefreshFamily>, StoreError> {
        Ok(self.store.family(id, now).await?.map(|mut family| {
            family.session = sealed::open(&self.store_seal, family.session);
            family
        }))
    }

    /// The signer for requests going to `route` (`None`: the `[upstream]` app).
    pub fn assertion_for(&self, route: Option<usize>) -> Option<&AssertionSigner> {
        match route {
            Some(i) => self.route_assertions.get(i),
            None => self.assertion.as_ref(),
        }
    }

    pub fn issuer(&self) -> Issuer<'_> {
        Issuer {
            store: self.store.as_ref(),
            seal: &self.store_seal,
            access: &self.access,
            refresh_ttl_secs: self.settings.refresh_ttl.as_secs(),
        }
    }

    /// The `Origin` a browser sent, if a configured client (an SPA on another origin) lives
    /// there: the token endpoints answer it with CORS headers.
    pub fn cors_origin<'a>(&self, origin: Option<&'a str>) -> Option<&'a str> {
        // `null` is the origin of sandboxed frames and private-use schemes: never trusted.
        let origin = origin.filter(|o| *o != "null")?;
        super::clients::web_origins(&self.settings)
            .any(|o| o == origin)
            .then_some(origin)
    }

    /// Why a code may be sent to `uri` for `client_id`, if it may ([`super::clients::redirect`]).
    pub fn client_redirect(&self, client_id: Option<&str>, uri: &str) -> Option<ClientRedirect> {
        super::clients::redirect(&self.settings, client_id, uri)
    }
}

/// The store key (`session.store_secrets`), else the cookie keys (`session.secrets`, which
/// seal the same GitHub token into cookie sessions): never a key made at start, so codes and
/// families stay readable across a reload.
fn store_seal_keys(settings: &Settings) -> Vec<SessionKey> {
    match settings.session.store.keys.as_slice() {
        [] => settings.session.keys.clone(),
        keys => keys.iter().map(|k| SessionKey(*k)).collect(),
    }
}
