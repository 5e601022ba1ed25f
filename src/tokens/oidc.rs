//! Verification of external OIDC ID tokens presented as `Authorization: Bearer`, such as GitHub
//! Actions' `ACTIONS_ID_TOKEN`, so CI jobs can call the protected app without stored secrets.
//!
//! Each `[[tokens.oidc_issuers]]` entry names an exact `iss`, a required `aud`, a JWKS URL and
//! claim rules (`repository = "org/repo"`, ...). A token is accepted when:
//!
//! - its unverified `iss` names a configured issuer (otherwise [`OidcError::NotForUs`], so the
//!   caller can try other bearer schemes);
//! - its header `alg` is an asymmetric signature algorithm (RS*, PS*, ES256, ES384): never `none`
//!   and never HS*, so an RSA public key can never be used as an HMAC secret;
//! - the key chosen by `kid` (or the only key, when the token has no `kid`) has a key type that
//!   fits the `alg`, and the JWK's own `alg`, when stated, equals the header's;
//! - the signature verifies; `iss` is exact; `aud` is or contains the audience; `exp` is present
//!   and not past, `nbf` not in the future and `iat` not in the future (all with the issuer's
//!   leeway); `sub` is a string;
//! - every claim rule matches a string claim exactly.
//!
//! Signing keys are fetched lazily on first use and cached per JWKS URL (issuer entries sharing
//! a URL share the cache). An unknown `kid` triggers a refetch, at most one fetch per cache per
//! [`REFETCH_INTERVAL`], so garbage `kid`s cannot make us hammer the JWKS URL; concurrent
//! refetches collapse into one (a tokio mutex per cache). Cached keys older than
//! [`KEYS_MAX_AGE`] are refreshed on use; if that refresh fails the old keys stay in use.
//! JWKS bodies larger than [`MAX_JWKS_BYTES`] are refused.
//!
//! Several entries may name the same `iss` (e.g. one per repository, each granting different
//! roles); they are tried in configuration order and the first that accepts the token wins.
//!
//! Errors and logs never contain the token or any of its values other than `sub`.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyOperations, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation};
use serde_json::{Map, Value};
use url::Url;

/// At most one JWKS fetch per cache (JWKS URL) in this interval.
pub const REFETCH_INTERVAL: Duration = Duration::from_secs(10);
/// JWKS responses larger than this are refused.
pub const MAX_JWKS_BYTES: usize = 1024 * 1024;
/// Cached keys older than this are refreshed on their next use.
pub const KEYS_MAX_AGE: Duration = Duration::from_secs(60 * 60);
/// Longer bearer values are not looked at (not a JWT we would accept).
const MAX_TOKEN_BYTES: usize = 64 * 1024;

/// The only algorithms accepted: asymmetric signatures a JWKS can publish a key for.
const ALLOWED_ALGS: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
];

/// One `[[tokens.oidc_issuers]]` entry, already validated by the config layer.
#[derive(Debug, Clone)]
pub struct IssuerSettings {
    /// Exact `iss`.
    pub issuer: String,
    /// Required `aud` (the token's `aud` is this string or an array containing it).
    pub audience: String,
    /// Where the issuer publishes its signing keys.
    pub jwks_url: Url,
    /// Each claim must be a string equal to this value exactly (e.g. `repository =
    /// "databio/pephub"`, `ref = "refs/heads/main"`); a missing or non-string claim fails.
    pub claims: BTreeMap<String, String>,
    /// Clock leeway for `exp`, `nbf` and `iat` (default 30 s).
    pub leeway: Duration,
}

/// Who a verified token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcIdentity {
    /// Index of the issuer entry (in the `Vec` given to [`OidcVerifier::new`]) that accepted it.
    pub issuer_index: usize,
    /// The token's `sub`.
    pub sub: String,
    /// The token's `exp` (unix seconds): what it opened (a websocket) ends then.
    pub expires_at: u64,
}

/// Why a token was not accepted. Messages never include the token.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// Not a JWT, or no configured issuer has its `iss`: let another scheme have a look.
    #[error("not a token from a configured OIDC issuer")]
    NotForUs,
    /// From a configured issuer but refused (bad signature, expired, wrong aud, claim mismatch...).
    #[error("invalid OIDC token: {0}")]
    Invalid(String),
    /// The issuer's signing keys could not be fetched: the caller answers 503-ish.
    #[error("OIDC signing keys unavailable: {0}")]
    KeysUnavailable(String),
}

/// The key type of a usable JWK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    Rsa,
    P256,
    P384,
}

impl KeyKind {
    fn fits(self, alg: Algorithm) -> bool {
        match self {
            KeyKind::Rsa => matches!(
                alg,
                Algorithm::RS256
                    | Algorithm::RS384
                    | Algorithm::RS512
                    | Algorithm::PS256
                    | Algorithm::PS384
                    | Algorithm::PS512
            ),
            KeyKind::P256 => alg == Algorithm::ES256,
            KeyKind::P384 => alg == Algorithm::ES384,
        }
    }
}

/// One signing key from a JWKS.
#[derive(Debug)]
struct VerifyKey {
    kid: Option<String>,
    /// The JWK's `alg`, when it states one.
    alg: Option<Algorithm>,
    kind: KeyKind,
    key: DecodingKey,
}

/// The keys from one successful fetch.
#[derive(Debug)]
struct KeySet {
    keys: Vec<Arc<VerifyKey>>,
    fetched_at: Instant,
}

/// Outcome of looking a `kid` up in a key set.
enum Pick {
    Found(Arc<VerifyKey>),
    /// The token has a `kid` the set does not know.
    UnknownKid,
    /// The token has no `kid` and the set has several keys.
    NoKidAmbiguous(usize),
}

impl KeySet {
    fn pick(&self, kid: Option<&str>) -> Pick {
        match kid {
            Some(kid) => self
                .keys
                .iter()
                .find(|k| k.kid.as_deref() == Some(kid))
                .map_or(Pick::UnknownKid, |k| Pick::Found(Arc::clone(k))),
            None => match self.keys.as_slice() {
                [only] => Pick::Found(Arc::clone(only)),
                keys => Pick::NoKidAmbiguous(keys.len()),
            },
        }
    }

    fn is_stale(&self) -> bool {
        self.fetched_at.elapsed() >= KEYS_MAX_AGE
    }
}

/// The cached keys of one JWKS URL.
#[derive(Debug)]
struct KeyCache {
    url: Url,
    current: RwLock<Option<Arc<KeySet>>>,
    /// Held while fetching; holds the time of the last fetch attempt (success or not).
    fetch: tokio::sync::Mutex<Option<Instant>>,
}

impl KeyCache {
    fn snapshot(&self) -> Option<Arc<KeySet>> {
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    fn store(&self, set: Arc<KeySet>) {
        *self
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(set);
    }
}

/// Verifies external OIDC tokens against the configured issuers. Cheap to share (`Arc`).
pub struct OidcVerifier {
    issuers: Vec<IssuerSettings>,
    /// For each issuer entry, the index of its cache in `caches`.
    cache_of: Vec<usize>,
    caches: Vec<KeyCache>,
    http: reqwest::Client,
    refetch_interval: Duration,
}

impl fmt::Debug for OidcVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcVerifier")
            .field("issuers", &self.issuers)
            .field("refetch_interval", &self.refetch_interval)
            .finish_non_exhaustive()
    }
}

impl OidcVerifier {
    /// Builds the verifier; no network access happens until a token needs keys.
    pub fn new(issuers: Vec<IssuerSettings>, http_timeout: Duration) -> Result<Self, OidcError> {
        crate::install_crypto_provider();
        let http = reqwest::Client::builder()
            .user_agent(concat!("gatehouse/", env!("CARGO_PKG_VERSION")))
            .timeout(http_timeout)
            .connect_timeout(http_timeout)
            .redirect(reqwest::redirect::Policy::limited(3))
            .build()
            .map_err(|e| {
                OidcError::KeysUnavailable(format!("cannot build the HTTP client: {e}"))
            })?;
        let mut caches: Vec<KeyCache> = Vec::new();
        let mut cache_of = Vec::with_capacity(issuers.len());
        for settings in &issuers {
            let index = match caches.iter().position(|c| c.url == settings.jwks_url) {
                Some(index) => index,
                None => {
                    caches.push(KeyCache {
                        url: settings.jwks_url.clone(),
                        current: RwLock::new(None),
                        fetch: tokio::sync::Mutex::new(None),
                    });
                    caches.len() - 1
                }
            };
            cache_of.push(index);
        }
        Ok(OidcVerifier {
            issuers,
            cache_of,
            caches,
            http,
            refetch_interval: REFETCH_INTERVAL,
        })
    }

    /// Tests shorten the refetch interval to exercise rotation without sleeping 10 s.
    #[cfg(test)]
    fn with_refetch_interval(mut self, interval: Duration) -> Self {
        self.refetch_interval = interval;
        self
    }

    /// True when no issuer is configured.
    pub fn is_empty(&self) -> bool {
        self.issuers.is_empty()
    }

    /// Cheap check without verifying: the unverified `iss` of a JWT-shaped token, if it names a
    /// configured issuer (the first entry with that `iss`).
    pub fn issuer_for(&self, token: &str) -> Option<usize> {
        let iss = unverified_iss(token)?;
        self.issuers.iter().position(|s| s.issuer == iss)
    }

    /// Verifies `token` fully; see the module documentation for the rules.
    pub async fn verify(&self, token: &str) -> Result<OidcIdentity, OidcError> {
        let iss = unverified_iss(token).ok_or(OidcError::NotForUs)?;
        let candidates: Vec<usize> = (0..self.issuers.len())
            .filter(|&i| self.issuers[i].issuer == iss)
            .collect();
        if candidates.is_empty() {
            return Err(OidcError::NotForUs);
        }
        // `alg: none` and unknown algorithms fail to parse here.
        let header = jsonwebtoken::decode_header(token).map_err(|_| {
            OidcError::Invalid("malformed JWT header or unsupported algorithm".into())
        })?;
        if !ALLOWED_ALGS.contains(&header.alg) {
            return Err(OidcError::Invalid(format!(
                "algorithm {:?} is not accepted (asymmetric signatures only)",
                header.alg
            )));
        }
        if header.crit.as_ref().is_some_and(|c| !c.is_empty()) {
            return Err(OidcError::Invalid(
                "critical header extensions are not supported".into(),
            ));
        }

        let mut failures: Vec<(usize, OidcError)> = Vec::new();
        for index in candidates {
            match self.verify_for(index, token, &header).await {
                Ok((sub, expires_at)) => {
                    return Ok(OidcIdentity {
                        issuer_index: index,
                        sub,
                        expires_at,
                    })
                }
                Err(e) => {
                    tracing::debug!(issuer_index = index, reason = %e, "OIDC token refused");
                    failures.push((index, e));
                }
            }
        }
        Err(combine(failures))
    }

    /// Verifies against one issuer entry; returns the `sub` and `exp`.
    async fn verify_for(
        &self,
        index: usize,
        token: &str,
        header: &Header,
    ) -> Result<(String, u64), OidcError> {
        let settings = &self.issuers[index];
        let cache = &self.caches[self.cache_of[index]];
        let key = self.key_for(cache, header.kid.as_deref()).await?;
        if !key.kind.fits(header.alg) {
            return Err(OidcError::Invalid(format!(
                "algorithm {:?} does not fit the key type",
                header.alg
            )));
        }
        if key.alg.is_some_and(|a| a != header.alg) {
            return Err(OidcError::Invalid(format!(
                "algorithm {:?} differs from the key's stated algorithm",
                header.alg
            )));
        }

        let leeway = settings.leeway.as_secs();
        let mut validation = Validation::new(header.alg);
        validation.leeway = leeway;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.validate_aud = true;
        validation.set_audience(&[settings.audience.as_str()]);
        validation.set_issuer(&[settings.issuer.as_str()]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &validation)
            .map_err(|e| OidcError::Invalid(describe(e.kind()).into()))?;
        let claims = data.claims;

        // `iss` exact: a single string, not an array that merely contains it.
        if claims.get("iss").and_then(Value::as_str) != Some(settings.issuer.as_str()) {
            return Err(OidcError::Invalid("wrong issuer".into()));
        }
        match claims.get("iat") {
            None => {}
            Some(iat) => match iat.as_f64() {
                Some(iat) if iat <= crate::clock::unix_now().saturating_add(leeway) as f64 => {}
                Some(_) => return Err(OidcError::Invalid("issued in the future (iat)".into())),
                None => return Err(OidcError::Invalid("malformed claim `iat`".into())),
            },
        }
        let sub = match claims.get("sub") {
            Some(Value::String(sub)) if !sub.is_empty() => sub.clone(),
            _ => {
                return Err(OidcError::Invalid(
                    "`sub` is missing or not a string".into(),
                ))
            }
        };
        for (name, want) in &settings.claims {
            match claims.get(name) {
                Some(Value::String(got)) if got == want => {}
                Some(Value::String(_)) => {
                    return Err(OidcError::Invalid(format!(
                        "claim `{name}` does not match the required value"
                    )))
                }
                Some(_) => {
                    return Err(OidcError::Invalid(format!(
                        "claim `{name}` is not a string"
                    )))
                }
                None => return Err(OidcError::Invalid(format!("claim `{name}` is missing"))),
            }
        }
        // Checked above (required, in the future within the leeway); whole seconds, rounded down.
        let exp = claims
            .get("exp")
            .and_then(Value::as_f64)
            .filter(|e| e.is_finite() && *e >= 0.0)
            .ok_or_else(|| OidcError::Invalid("malformed claim `exp`".into()))?;
        Ok((sub, exp as u64))
    }

    /// Finds the key for `kid`, fetching or refetching the JWKS when needed and allowed.
    async fn key_for(
        &self,
        cache: &KeyCache,
        kid: Option<&str>,
    ) -> Result<Arc<VerifyKey>, OidcError> {
        let before = cache.snapshot();
        if let Some(set) = &before {
            if !set.is_stale() {
                match set.pick(kid) {
                    Pick::Found(key) => return Ok(key),
                    Pick::NoKidAmbiguous(n) => return Err(no_kid(n)),
                    Pick::UnknownKid => {}
                }
            }
        }

        // Needs a (re)fetch. One fetcher at a time; latecomers reuse its result.
        let mut last_attempt = cache.fetch.lock().await;
        let current = cache.snapshot();
        let refreshed = match (&before, &current) {
            (Some(a), Some(b)) => !Arc::ptr_eq(a, b),
            (None, Some(_)) => true,
            _ => false,
        };
        if let (true, Some(set)) = (refreshed, &current) {
            if let Pick::Found(key) = set.pick(kid) {
                return Ok(key);
            }
        }
        let may_fetch = last_attempt.is_none_or(|t| t.elapsed() >= self.refetch_interval);
        if !may_fetch {
            return match &current {
                Some(set) => match set.pick(kid) {
                    Pick::Found(key) => Ok(key),
                    Pick::NoKidAmbiguous(n) => Err(no_kid(n)),
                    Pick::UnknownKid => Err(OidcError::Invalid(
                        "unknown key id (kid) for this issuer".into(),
                    )),
                },
                None => Err(OidcError::KeysUnavailable(format!(
                    "the JWKS at {} could not be fetched recently; retrying at most every {} s",
                    cache.url,
                    self.refetch_interval.as_secs()
                ))),
            };
        }

        *last_attempt = Some(Instant::now());
        match self.fetch(&cache.url).await {
            Ok(set) => {
                let set = Arc::new(set);
                cache.store(Arc::clone(&set));
                drop(last_attempt);
                match set.pick(kid) {
                    Pick::Found(key) => Ok(key),
                    Pick::NoKidAmbiguous(n) => Err(no_kid(n)),
                    Pick::UnknownKid => Err(OidcError::Invalid(
                        "unknown key id (kid) for this issuer".into(),
                    )),
                }
            }
            Err(e) => {
                tracing::warn!(jwks_url = %crate::config::redact_url(cache.url.as_str()), error = %e, "OIDC JWKS fetch failed");
                // Stale keys stay usable when a refresh fails.
                if let Some(set) = &current {
                    if let Pick::Found(key) = set.pick(kid) {
                        return Ok(key);
                    }
                }
                Err(e)
            }
        }
    }

    /// Fetches and parses one JWKS.
    async fn fetch(&self, url: &Url) -> Result<KeySet, OidcError> {
        let unavailable = |what: String| OidcError::KeysUnavailable(format!("JWKS {url}: {what}"));
        let mut response = self
            .http
            .get(url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| unavailable(e.without_url().to_string()))?;
        let status = response.status();
        if !status.is_success() {
            return Err(unavailable(format!("answered {status}")));
        }
        if response
            .content_length()
            .is_some_and(|n| n > MAX_JWKS_BYTES as u64)
        {
            return Err(unavailable("response larger than 1 MB".into()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| unavailable(e.without_url().to_string()))?
        {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                return Err(unavailable("response larger than 1 MB".into()));
            }
            body.extend_from_slice(&chunk);
        }
        let (keys, skipped) = parse_jwks(&body).map_err(|what| unavailable(what.into()))?;
        tracing::info!(jwks_url = %crate::config::redact_url(url.as_str()), keys = keys.len(), skipped, "fetched OIDC signing keys");
        Ok(KeySet {
            keys,
            fetched_at: Instant::now(),
        })
    }
}

/// Parses a JWKS body into its usable signing keys (and the count of keys skipped).
fn parse_jwks(body: &[u8]) -> Result<(Vec<Arc<VerifyKey>>, usize), &'static str> {
    #[derive(serde::Deserialize)]
    struct RawSet {
        keys: Vec<Value>,
    }
    let raw: RawSet = serde_json::from_slice(body).map_err(|_| "not a JWK set")?;
    let mut keys = Vec::new();
    let mut skipped = 0;
    for value in raw.keys {
        match serde_json::from_value::<Jwk>(value)
            .ok()
            .and_then(|jwk| usable_key(&jwk))
        {
            Some(key) => keys.push(Arc::new(key)),
            None => skipped += 1,
        }
    }
    if keys.is_empty() {
        return Err("no usable signing keys (RSA, P-256 or P-384)");
    }
    Ok((keys, skipped))
}

/// A JWK we may verify signatures with, or `None` (symmetric, encryption-only, unknown...).
fn usable_key(jwk: &Jwk) -> Option<VerifyKey> {
    if let Some(usage) = &jwk.common.public_key_use {
        if *usage != PublicKeyUse::Signature {
            return None;
        }
    }
    if let Some(ops) = &jwk.common.key_operations {
        if !ops.contains(&KeyOperations::Verify) {
            return None;
        }
    }
    let kind = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => KeyKind::Rsa,
        AlgorithmParameters::EllipticCurve(params) => match params.curve {
            EllipticCurve::P256 => KeyKind::P256,
            EllipticCurve::P384 => KeyKind::P384,
            _ => return None,
        },
        _ => return None,
    };
    let alg = match jwk.common.key_algorithm {
        None => None,
        Some(stated) => {
            let alg = Algorithm::try_from(stated).ok()?;
            if !ALLOWED_ALGS.contains(&alg) || !kind.fits(alg) {
                return None;
            }
            Some(alg)
        }
    };
    let key = DecodingKey::from_jwk(jwk).ok()?;
    Some(VerifyKey {
        kid: jwk.common.key_id.clone(),
        alg,
        kind,
        key,
    })
}

/// The unverified `iss` of a JWT-shaped token (three dot-separated parts, JSON payload with a
/// string `iss`).
fn unverified_iss(token: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Peek {
        iss: Option<String>,
    }
    if token.len() > MAX_TOKEN_BYTES {
        return None;
    }
    let mut parts = token.split('.');
    let (_header, payload, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let json = URL_SAFE_NO_PAD.decode(payload).ok()?;
    serde_json::from_slice::<Peek>(&json).ok()?.iss
}

fn no_kid(keys: usize) -> OidcError {
    OidcError::Invalid(format!(
        "the token has no key id (kid) and the issuer publishes {keys} keys"
    ))
}

/// A fixed description of a jsonwebtoken failure (its own messages may quote token values).
fn describe(kind: &ErrorKind) -> &'static str {
    match kind {
        ErrorKind::InvalidSignature => "bad signature",
        ErrorKind::ExpiredSignature => "expired (exp)",
        ErrorKind::ImmatureSignature => "not yet valid (nbf)",
        ErrorKind::InvalidAudience => "wrong audience",
        ErrorKind::InvalidIssuer => "wrong issuer",
        ErrorKind::MissingRequiredClaim(claim) => match claim.as_str() {
            "exp" => "missing claim `exp`",
            "iss" => "missing claim `iss`",
            "aud" => "missing claim `aud`",
            "sub" => "missing claim `sub`",
            _ => "missing a required claim",
        },
        ErrorKind::InvalidClaimFormat(_) => "malformed time claim",
        ErrorKind::InvalidAlgorithm | ErrorKind::UnsupportedAlgorithm => {
            "algorithm not allowed for this key"
        }
        ErrorKind::InvalidEcdsaKey | ErrorKind::InvalidRsaKey(_) | ErrorKind::InvalidKeyFormat => {
            "the issuer's key is unusable"
        }
        _ => "malformed token",
    }
}

/// One error for all the entries that refused a token.
fn combine(mut failures: Vec<(usize, OidcError)>) -> OidcError {
    if failures.len() == 1 {
        if let Some((_, e)) = failures.pop() {
            return e;
        }
    }
    if let Some(pos) = failures
        .iter()
        .position(|(_, e)| matches!(e, OidcError::KeysUnavailable(_)))
    {
        return failures.swap_remove(pos).1;
    }
    let reasons: Vec<String> = failures
        .iter()
        .map(|(index, e)| match e {
            OidcError::Invalid(why) | OidcError::KeysUnavailable(why) => {
                format!("issuer entry #{}: {why}", index + 1)
            }
            OidcError::NotForUs => format!("issuer entry #{}: not for us", index + 1),
        })
        .collect();
    OidcError::Invalid(reasons.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
    use std::sync::Mutex;

    use axum::extract::State;
    use axum::http::{header, StatusCode};
    use axum::routing::get;
    use jsonwebtoken::EncodingKey;
    use p256::pkcs8::EncodePrivateKey;
    use serde_json::json;
    use sha2::{Digest, Sha256};

    const ISS: &str = "https://token.actions.githubusercontent.com";
    const AUD: &str = "https://gatehouse.example.com";
    const SUB: &str = "repo:databio/pephub:ref:refs/heads/main";

    /// A fixed 2048-bit RSA test key (made with `openssl genrsa -traditional 2048`).
    const RSA_PRIVATE_PEM: &str = r"-----BEGIN RSA PRIVATE KEY-----
MIIEowIBAAKCAQEAtuz/ah3KXwyU8fC37B1N3WE3egV/oICNF4FM1oZOjdupgS4E
z4kqDLDUKh0OK4tZ7iaW/zFaqLr4JDUvXFt4g9UjHG3DP3I1OVxM+21rRjY3NNAv
f+6gO9vuBvaN82xM6GTv5YxIZyKFGw1LD38dhGrrPu/6tAUhxtje3+v+4FuA3shX
VVgfNLNwUhQ0dnYUEGBxouLN/SST6M9LC/GaEg5pwm/a+j3Xiw+VOMrxhpPMzZsP
HK+mhLFrrhsGOi2HJ19IbV1y3RSLXizp8auAfKM+WHCVr7M4in1qpflUPk/Ndt3Z
z2Rh/fuaCS/5QWu51rpdg8xKsQSKsRK9aAwd/QIDAQABAoIBABD66/SqQkRTcyoI
OdJxn+46XX92rjO0ayRw7LSHMBiL+O6UWn73UQ9vhKpKGywgmd749xBGQQ+jl3Ao
/bX5ibTXHpS/fZ3QmK8z6bN3IzuXwcUlxBsAiCA2WKCN13xuo67426n3vSrRsgBi
WgLcvl0x3ZdwiFmYlluSexHXIsgpnhBDGgvTiWZ74yeg/ucqs5lgmANb05Y+bgjD
LVOUny4Ig0DT6tyhzaXhKxZGnVXDeAiW0nQfvNyyZR139bw2Ov6DqVmS2saJbFch
u0JFHCXvvIX8gSavR6pcX9nR5LxExuHiCVPh+Q+9V6i1PQJ8mG8wrqkGxjCNnu72
tvSgTXMCgYEA5AtdVwz8gNOQ4F6XdTKUeix7LEP6Q4203DMrRPKwUa2L4BF19T+8
b92cNHLwheug1CnnVzpx5WP5dpQkt/wTbKOMpY8bDWFioLzPIeLhPsTQuSQO0nXT
72AQGdFSdwVzUhn/xvn/Pf8kemXAMiPAaG4kkFAQtbeGEqC/2Ftv+z8CgYEAzVmx
DZVSE+kxIzaJfxBOeYFq95Cc4Z/Ozx6aXMu5DjWEsWbHtS+cLYOLs8eyP9M4PsPb
psJQkLH+F+h+IniYlytyMTKKAO9jcMhJzC6A7xcJGeN627AvmpDJly6W+eogiqcJ
6cQQ6vIYBE3+0riF4+bSyIW1mOqa9VtDj0CyA8MCgYEAun2cwKLLICNkWEii/eH2
UI9tz35r/LC3Vli2KvV5QeJ2ADDnUT/lP2pw4ueYUTyn0rnOCaSvHhQLH3D5MkkA
LZj2XTJRwjiA6shdb+3VnHph4vZc9LoNLrZVlHd9Q/5+F4dRiAxMMwwjbcEmUxqv
r/dbCXWgpKrIBxXUrf/g7QsCgYApuhD9JptwClF+y0UzOZgInqCiv5LxUezPL3PE
aW0oEv3somrwSUVeBj3sAScaSwxBzMCkaRW/4Ts1lnuS+5heF2jz0EY0nHBDaZ99
SvHOI4so5I2BeJKjwMoF22S4UbfdFMYx5zJc22a/8S1XmkEypyOrtWfKM9nbA3l9
8XJ6ywKBgBD1ta03wYNQbZpDRYwpuzPCQPG4YAEStl9AHcFAH2Dv45Gp3Ey8xBzd
mH+v41cnOTUxObFztMQ5d9mAtFmeiHCya8dcSelQfpp+nQvk/rkquQQJEWnOjv/U
36Bsl78UfG+eXzQepl9kwgmcSyEFCcS37VA1iHND7gHkhNLQrD5X
-----END RSA PRIVATE KEY-----
";
    /// Its public half (`openssl rsa -pubout`), the classic HS256-confusion "secret".
    const RSA_PUBLIC_PEM: &str = r"-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAtuz/ah3KXwyU8fC37B1N
3WE3egV/oICNF4FM1oZOjdupgS4Ez4kqDLDUKh0OK4tZ7iaW/zFaqLr4JDUvXFt4
g9UjHG3DP3I1OVxM+21rRjY3NNAvf+6gO9vuBvaN82xM6GTv5YxIZyKFGw1LD38d
hGrrPu/6tAUhxtje3+v+4FuA3shXVVgfNLNwUhQ0dnYUEGBxouLN/SST6M9LC/Ga
Eg5pwm/a+j3Xiw+VOMrxhpPMzZsPHK+mhLFrrhsGOi2HJ19IbV1y3RSLXizp8auA
fKM+WHCVr7M4in1qpflUPk/Ndt3Zz2Rh/fuaCS/5QWu51rpdg8xKsQSKsRK9aAwd
/QIDAQAB
-----END PUBLIC KEY-----
";

    /// A JWKS endpoint whose body and status the test controls, counting hits.
    #[derive(Clone)]
    struct Jwks {
        body: Arc<Mutex<String>>,
        status: Arc<AtomicU16>,
        hits: Arc<AtomicUsize>,
    }

    impl Jwks {
        fn set(&self, keys: &[Value]) {
            *self.body.lock().unwrap() = json!({ "keys": keys }).to_string();
        }
        fn hits(&self) -> usize {
            self.hits.load(Ordering::SeqCst)
        }
    }

    async fn jwks_handler(
        State(jwks): State<Jwks>,
    ) -> (StatusCode, [(header::HeaderName, &'static str); 1], String) {
        jwks.hits.fetch_add(1, Ordering::SeqCst);
        let status = StatusCode::from_u16(jwks.status.load(Ordering::SeqCst)).unwrap();
        let body = jwks.body.lock().unwrap().clone();
        (status, [(header::CONTENT_TYPE, "application/json")], body)
    }

    async fn serve_jwks(keys: &[Value]) -> (Jwks, Url) {
        let jwks = Jwks {
            body: Arc::new(Mutex::new(String::new())),
            status: Arc::new(AtomicU16::new(200)),
            hits: Arc::new(AtomicUsize::new(0)),
        };
        jwks.set(keys);
        let app = axum::Router::new()
            .route("/.well-known/jwks", get(jwks_handler))
            .with_state(jwks.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        let url = Url::parse(&format!("http://{addr}/.well-known/jwks")).unwrap();
        (jwks, url)
    }

    /// A P-256 key derived from `seed`, with its public JWK (kid and alg set).
    fn ec_key(seed: &str, kid: &str) -> (EncodingKey, Value) {
        let secret = p256::SecretKey::from_slice(&Sha256::digest(seed.as_bytes())).unwrap();
        let der = secret.to_pkcs8_der().unwrap();
        let encoding = EncodingKey::from_ec_der(der.as_bytes());
        let jwk = Jwk::from_encoding_key(&encoding, Algorithm::ES256).unwrap();
        let mut value = serde_json::to_value(jwk).unwrap();
        value["kid"] = json!(kid);
        value["use"] = json!("sig");
        (encoding, value)
    }

    fn rsa_key(kid: &str) -> (EncodingKey, Value) {
        let encoding = EncodingKey::from_rsa_pem(RSA_PRIVATE_PEM.as_bytes()).unwrap();
        let jwk = Jwk::from_encoding_key(&encoding, Algorithm::RS256).unwrap();
        let mut value = serde_json::to_value(jwk).unwrap();
        value["kid"] = json!(kid);
        value["use"] = json!("sig");
        (encoding, value)
    }

    fn now() -> i64 {
        crate::clock::unix_now() as i64
    }

    fn claims() -> Value {
        let now = now();
        json!({
            "iss": ISS,
            "aud": AUD,
            "sub": SUB,
            "repository": "databio/pephub",
            "ref": "refs/heads/main",
            "iat": now,
            "nbf": now - 5,
            "exp": now + 300,
        })
    }

    fn sign(key: &EncodingKey, alg: Algorithm, kid: Option<&str>, claims: &Value) -> String {
        let mut header = Header::new(alg);
        header.kid = kid.map(str::to_owned);
        jsonwebtoken::encode(&header, claims, key).unwrap()
    }

    fn settings(url: &Url) -> IssuerSettings {
        IssuerSettings {
            issuer: ISS.into(),
            audience: AUD.into(),
            jwks_url: url.clone(),
            claims: BTreeMap::from([
                ("repository".to_owned(), "databio/pephub".to_owned()),
                ("ref".to_owned(), "refs/heads/main".to_owned()),
            ]),
            leeway: Duration::from_secs(30),
        }
    }

    fn verifier(url: &Url) -> OidcVerifier {
        OidcVerifier::new(vec![settings(url)], Duration::from_secs(5)).unwrap()
    }

    /// Asserts `Invalid` whose message mentions `needle` and never quotes the token.
    fn assert_invalid(result: Result<OidcIdentity, OidcError>, token: &str, needle: &str) {
        match result {
            Err(OidcError::Invalid(why)) => {
                assert!(why.contains(needle), "{why:?} should mention {needle:?}");
                for part in token.split('.').filter(|p| p.len() > 8) {
                    assert!(!why.contains(part), "error quotes the token: {why}");
                }
            }
            other => panic!("expected Invalid({needle}), got {other:?}"),
        }
    }

    #[test]
    fn verifier_is_send_sync_debug() {
        fn check<T: Send + Sync + fmt::Debug>() {}
        check::<OidcVerifier>();
        check::<OidcError>();
    }

    #[tokio::test]
    async fn valid_es256_token_is_admitted() {
        let (key, jwk) = ec_key("k1", "k1");
        let (jwks, url) = serve_jwks(&[jwk]).await;
        let verifier = verifier(&url);
        assert!(!verifier.is_empty());
        let claims = claims();
        let token = sign(&key, Algorithm::ES256, Some("k1"), &claims);
        assert_eq!(verifier.issuer_for(&token), Some(0));
        assert_eq!(jwks.hits(), 0, "issuer_for must not fetch keys");
        let identity = verifier.verify(&token).await.unwrap();
        assert_eq!(
            identity,
            OidcIdentity {
                issuer_index: 0,
                sub: SUB.into(),
                expires_at: claims["exp"].as_u64().unwrap(),
            }
        );
        // Cached: a second verification does not fetch again.
        verifier.verify(&token).await.unwrap();
        assert_eq!(jwks.hits(), 1);
    }

    #[tokio::test]
    async fn valid_rs256_token_is_admitted() {
        let (key, jwk) = rsa_key("r1");
        let (_jwks, url) = serve_jwks(&[jwk]).await;
        let token = sign(&key, Algorithm::RS256, Some("r1"), &claims());
        let identity = verifier(&url).verify(&token).await.unwrap();
        assert_eq!(identity.sub, SUB);
    }

    #[tokio::test]
    async fn audience_array_containing_ours_is_admitted_wrong_audience_is_not() {
        let (key, jwk) = ec_key("k1", "k1");
        let (_jwks, url) = serve_jwks(&[jwk]).await;
        let verifier = verifier(&url);
        let mut c = claims();
        c["aud"] = json!(["https://other.example.com", AUD]);
        let token = sign(&key, Algorithm::ES256, Some("k1"), &c);
        verifier.verify(&token).await.unwrap();

        c["aud"] = json!("https://other.example.com");
        let token = sign(&key, Algorithm::ES256, Some("k1"), &c);
        assert_invalid(verifier.verify(&token).await, &token, "audience");

        c.as_object_mut().unwrap().remove("aud");
        let token = sign(&key, Algorithm::ES256, Some("k1"), &c);
        assert_invalid(verifier.verify(&token).await, &token, "aud");
    }

    #[tokio::test]
    async fn unknown_issuer_and_non_jwts_are_not_for_us() {
        let (key, jwk) = ec_key("k1", "k1");
        let (jwks, url) = serve_jwks(&[jwk]).await;
        let verifier = verifier(&url);
        let mut c = claims();
        c["iss"] = json!("https://evil.example.com");
        let token = sign(&key, Algorithm::ES256, Some("k1"), &c);
        assert_eq!(verifier.issuer_for(&token), None);
        assert!(matches!(
            verifier.verify(&token).await,
            Err(OidcError::NotForUs)
        ));
        // Prefix or array forms of the issuer are not the issuer.
        c["iss"] = json!(format!("{ISS}/"));
        let token = sign(&key, Algorithm::ES256, Some("k1"), &c);
        assert!(matches!(
            verifier.verify(&token).await,
            Err(OidcError::NotForUs)
        ));
        c["iss"] = json!([ISS]);
        let token = sign(&key, Algorithm::ES256, Some("k1"), &c);
        assert!(matches!(
            verifier.verify(&token).await,
            Err(OidcError::NotForUs)
        ));
        for junk in ["", "gh_abcdef", "a.b", "a.b.c", "a.b.c.d", "ghp_x.y.z"] {
            assert_eq!(verifier.issuer_for(junk), None);
            assert!(matches!(
                verifier.verify(junk).await,
                Err(OidcError::NotForUs)
            ));
        }
        assert_eq!(jwks.hits(), 0);
        let empty = OidcVerifier::new(Vec::new(), Duration::from_secs(1)).unwrap();
        assert!(empty.is_empty());
    }

    #[tokio::test]
    async fn expired_token_is_refused_beyond_leeway_but_admitted_within() {
        let (key, jwk) = ec_key("k1", "k1");
        let (_jwks, url) = serve_jwks(&[jwk]).await;
        let verifier = verifier(&url);
        let mut c = claims();
        c["iat"] = json!(now() - 600);
        c["nbf"] = json!(now() - 600);
        c["exp"] = json!(now() - 10);
        let token = sign(&key, Algorithm::ES256, Some("k1"), &c);
        verifier.verify(&token).await.unwrap();

        c["exp"] = json!(now() - 120);
        let token = sign(&key, Algorithm::ES256, Some("k1"), &c);
        assert_invalid(verifier.verify(&token).await, &token, "expired");

        c.as_object_mut().unwrap().remove("exp");
        let token = sign(&key, Algorithm::ES256, Some("k1"), &c);
        assert_invalid(verifier.verify(&token).await, &token, "exp");
    }

    #[tokio::test]
    async fn future_nbf_and_iat_are_refused_beyond_leeway() {
        let (key, jwk) = ec_key("k1", "k1");
        let (_jwks, url) = serve_jwks(&[jwk]).await;
        let verifier = verifier(&url);
        let mut c = claims();
        c["nbf"] = json!(now() + 10);
        c["iat"] = json!(now() + 10);
        let token = sign(&key, Algorithm::ES256, Some("k1"), &c);
        verifier.verify(&token).await.unwrap();

        c["nbf"] = json!(now() + 120);
        let token = sign(&key, Algorithm::ES256, Some("k1"), &c);
        assert_invalid(verifier.verify(&token).await, &token, "nbf");

        c["nbf"] = json!(now());
        c["iat"] = json!(now() + 120);
        let token = sign(&key, Algorithm::ES256, Some("k1"), &c);
        assert_invalid(verifier.verify(&token).await, &token, "iat");
    }

    #[tokio::test]
    async fn claim_mismatch_missing_and_non_string_claims_are_refused() {
        let (key, jwk) = ec_key("k1", "k1");
        let (_jwks, url) = serve_jwks(&[jwk]).await;
        let verifier = verifier(&url);

        let mut c = claims();
        c["repository"] = json!("databio/pephub-fork");
        let token = sign(&key, Algorithm::ES256, Some("k1"), &c);
        assert_invalid(
            verifier.verify(&token).await,
            &token,
            "claim `repository` does not match",
        );

        let mut c = claims();
        c["repository"] = json!("DATABIO/PEPHUB");
        let token = sign(&key, Algorithm::ES256, Some("k1"), &c);
        assert_invalid(
            verifier.verify(&token).await,
            &token,
            "claim `repository` does not match",
        );

        let mut c = claims();
        c.as_object_mut().unwrap().remove("ref");
        let token = sign(&key, Algorithm::ES256, Some("k1"), &c);
        assert_invalid(
            verifier.verify(&token).await,
            &token,
            "claim `ref` is missing",
        );

        let mut c = claims();
        c["repository"] = json!(["databio/pephub"]);
        let token = sign(&key, Algorithm::ES256, Some("k1"), &c);
        assert_invalid(
            verifier.verify(&token).await,
            &token,
            "claim `repository` is not a string",
        );

        let mut c = claims();
        c["sub"] = json!(42);
        let token = sign(&key, Algorithm::ES256, Some("k1"), &c);
        assert_invalid(verifier.verify(&token).await, &token, "sub");
    }

    #[tokio::test]
    async fn alg_none_is_refused() {
        let (_key, jwk) = ec_key("k1", "k1");
        let (_jwks, url) = serve_jwks(&[jwk]).await;
        let verifier = verifier(&url);
        let payload = URL_SAFE_NO_PAD.encode(claims().to_string());
        for alg in ["none", "None", "NONE"] {
            let header =
                URL_SAFE_NO_PAD.encode(json!({"alg": alg, "typ": "JWT", "kid": "k1"}).to_string());
            for token in [
                format!("{header}.{payload}."),
                format!("{header}.{payload}.c2ln"),
            ] {
                assert_eq!(verifier.issuer_for(&token), Some(0));
                assert_invalid(verifier.verify(&token).await, &token, "header");
            }
        }
    }

    #[tokio::test]
    async fn hs256_token_signed_with_the_public_key_is_refused() {
        let (_rsa, rsa_jwk) = rsa_key("r1");
        let (_ec, ec_jwk) = ec_key("k1", "k1");
        let (jwks, url) = serve_jwks(&[rsa_jwk.clone(), ec_jwk.clone()]).await;
        let verifier = verifier(&url);
        let secrets = [
            RSA_PUBLIC_PEM.as_bytes().to_vec(),
            rsa_jwk.to_string().into_bytes(),
            ec_jwk.to_string().into_bytes(),
        ];
        for secret in &secrets {
            for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
                for kid in [Some("r1"), Some("k1"), None] {
                    let token = sign(&EncodingKey::from_secret(secret), alg, kid, &claims());
                    assert_invalid(verifier.verify(&token).await, &token, "not accepted");
                }
            }
        }
        // Refused before any key lookup.
        assert_eq!(jwks.hits(), 0);
    }

    #[tokio::test]
    async fn tampered_token_is_refused() {
        let (key, jwk) = ec_key("k1", "k1");
        let (_jwks, url) = serve_jwks(&[jwk]).await;
        let verifier = verifier(&url);
        let token = sign(&key, Algorithm::ES256, Some("k1"), &claims());
        let parts: Vec<&str> = token.split('.').collect();

        // Payload changed, signature kept.
        let mut c = claims();
        c["repository"] = json!("databio/pephub");
        c["sub"] = json!("repo:someone/else:ref:refs/heads/main");
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            URL_SAFE_NO_PAD.encode(c.to_string()),
            parts[2]
        );
        assert_invalid(verifier.verify(&forged).await, &forged, "signature");

        // Signature changed.
        let mut sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        sig[10] ^= 0x01;
        let forged = format!("{}.{}.{}", parts[0], parts[1], URL_SAFE_NO_PAD.encode(&sig));
        assert_invalid(verifier.verify(&forged).await, &forged, "signature");

        // Signed by a key the issuer does not publish, under the published kid.
        let (other, _) = ec_key("attacker", "k1");
        let forged = sign(&other, Algorithm::ES256, Some("k1"), &claims());
        assert_invalid(verifier.verify(&forged).await, &forged, "signature");
    }

    #[tokio::test]
    async fn alg_must_fit_the_key_type_and_the_jwk_alg() {
        let (rsa, rsa_jwk) = rsa_key("r1");
        let (ec, ec_jwk) = ec_key("k1", "k1");
        let (_jwks, url) = serve_jwks(&[rsa_jwk, ec_jwk]).await;
        let verifier = verifier(&url);
        // ES256 header naming the RSA key.
        let token = sign(&ec, Algorithm::ES256, Some("r1"), &claims());
        assert_invalid(verifier.verify(&token).await, &token, "key type");
        // RS256 header naming the EC key.
        let token = sign(&rsa, Algorithm::RS256, Some("k1"), &claims());
        assert_invalid(verifier.verify(&token).await, &token, "key type");
        // PS256 with the right RSA key, but the JWK says RS256.
        let token = sign(&rsa, Algorithm::PS256, Some("r1"), &claims());
        assert_invalid(verifier.verify(&token).await, &token, "stated algorithm");
    }

    #[tokio::test]
    async fn jwk_without_alg_accepts_any_fitting_algorithm() {
        let (rsa, mut rsa_jwk) = rsa_key("r1");
        rsa_jwk.as_object_mut().unwrap().remove("alg");
        let (_jwks, url) = serve_jwks(&[rsa_jwk]).await;
        let verifier = verifier(&url);
        for alg in [Algorithm::RS256, Algorithm::RS512, Algorithm::PS256] {
            let token = sign(&rsa, alg, Some("r1"), &claims());
            verifier.verify(&token).await.unwrap();
        }
    }

    #[tokio::test]
    async fn token_without_kid_needs_a_single_key() {
        let (k1, jwk1) = ec_key("k1", "k1");
        let (_k2, jwk2) = ec_key("k2", "k2");
        let (jwks, url) = serve_jwks(std::slice::from_ref(&jwk1)).await;
        let verifier = verifier(&url);
        let token = sign(&k1, Algorithm::ES256, None, &claims());
        verifier.verify(&token).await.unwrap();

        jwks.set(&[jwk1, jwk2]);
        let verifier = self::verifier(&url);
        assert_invalid(verifier.verify(&token).await, &token, "no key id");
    }

    #[tokio::test]
    async fn key_rotation_refetches_for_a_new_kid() {
        let (k1, jwk1) = ec_key("k1", "k1");
        let (k2, jwk2) = ec_key("k2", "k2");
        let (jwks, url) = serve_jwks(std::slice::from_ref(&jwk1)).await;
        let verifier = verifier(&url).with_refetch_interval(Duration::from_secs(1));
        let old = sign(&k1, Algorithm::ES256, Some("k1"), &claims());
        verifier.verify(&old).await.unwrap();
        assert_eq!(jwks.hits(), 1);

        jwks.set(&[jwk1, jwk2]);
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let new = sign(&k2, Algorithm::ES256, Some("k2"), &claims());
        assert_eq!(verifier.verify(&new).await.unwrap().sub, SUB);
        assert_eq!(jwks.hits(), 2);
        // Both keys now cached.
        verifier.verify(&old).await.unwrap();
        verifier.verify(&new).await.unwrap();
        assert_eq!(jwks.hits(), 2);
    }

    #[tokio::test]
    async fn garbage_kids_refetch_at_most_once_per_interval() {
        let (k1, jwk1) = ec_key("k1", "k1");
        let (jwks, url) = serve_jwks(&[jwk1]).await;
        let verifier = verifier(&url);
        assert_eq!(verifier.refetch_interval, Duration::from_secs(10));
        verifier
            .verify(&sign(&k1, Algorithm::ES256, Some("k1"), &claims()))
            .await
            .unwrap();
        assert_eq!(jwks.hits(), 1);
        // Signed up front: the loops below must run well inside the window.
        let garbage: Vec<String> = (0..25)
            .map(|i| {
                sign(
                    &k1,
                    Algorithm::ES256,
                    Some(&format!("garbage-{i}")),
                    &claims(),
                )
            })
            .collect();
        for token in &garbage {
            assert_invalid(verifier.verify(token).await, token, "unknown key id");
        }
        assert_eq!(
            jwks.hits(),
            1,
            "garbage kids within 10 s of a fetch must not refetch"
        );

        // With a short window: one refetch per window, however many garbage tokens.
        let verifier = verifier.with_refetch_interval(Duration::from_secs(1));
        tokio::time::sleep(Duration::from_millis(1100)).await;
        for token in &garbage {
            assert_invalid(verifier.verify(token).await, token, "unknown key id");
        }
        assert_eq!(jwks.hits(), 2);
    }

    #[tokio::test]
    async fn concurrent_first_use_fetches_once() {
        let (k1, jwk1) = ec_key("k1", "k1");
        let (jwks, url) = serve_jwks(&[jwk1]).await;
        let verifier = Arc::new(verifier(&url));
        let token = sign(&k1, Algorithm::ES256, Some("k1"), &claims());
        let tasks: Vec<_> = (0..20)
            .map(|i| {
                let verifier = Arc::clone(&verifier);
                let token = token.clone();
                tokio::spawn(async move {
                    if i % 2 == 0 {
                        verifier.verify(&token).await.map(|_| ())
                    } else {
                        // Garbage kids racing the first fetch collapse into it too.
                        let (k, _) = ec_key("k1", "k1");
                        let garbage = sign(&k, Algorithm::ES256, Some("nope"), &claims());
                        match verifier.verify(&garbage).await {
                            Err(OidcError::Invalid(_)) => Ok(()),
                            other => panic!("{other:?}"),
                        }
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        assert_eq!(jwks.hits(), 1);
    }

    #[tokio::test]
    async fn jwks_down_is_keys_unavailable() {
        let (k1, jwk1) = ec_key("k1", "k1");
        let token = sign(&k1, Algorithm::ES256, Some("k1"), &claims());

        // Nothing listening.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let url = Url::parse(&format!("http://{addr}/jwks")).unwrap();
        let verifier = verifier(&url);
        assert!(matches!(
            verifier.verify(&token).await,
            Err(OidcError::KeysUnavailable(_))
        ));

        // Error status, then recovery once the window has passed.
        let (jwks, url) = serve_jwks(&[jwk1]).await;
        jwks.status.store(500, Ordering::SeqCst);
        let verifier = self::verifier(&url).with_refetch_interval(Duration::from_secs(1));
        match verifier.verify(&token).await {
            Err(OidcError::KeysUnavailable(why)) => {
                assert!(why.contains("500"), "{why}");
                assert!(!why.contains(&token), "{why}");
            }
            other => panic!("{other:?}"),
        }
        // Within the window: no new attempt.
        assert!(matches!(
            verifier.verify(&token).await,
            Err(OidcError::KeysUnavailable(_))
        ));
        assert_eq!(jwks.hits(), 1);
        jwks.status.store(200, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(1100)).await;
        verifier.verify(&token).await.unwrap();
        assert_eq!(jwks.hits(), 2);

        // Not a JWK set, or no usable keys.
        *jwks.body.lock().unwrap() = "<html>".into();
        let verifier = self::verifier(&url);
        assert!(matches!(
            verifier.verify(&token).await,
            Err(OidcError::KeysUnavailable(_))
        ));
        jwks.set(&[json!({"kty": "oct", "k": "c2VjcmV0", "kid": "k1", "alg": "HS256"})]);
        let verifier = self::verifier(&url);
        assert!(matches!(
            verifier.verify(&token).await,
            Err(OidcError::KeysUnavailable(_))
        ));
    }

    #[tokio::test]
    async fn oversized_jwks_is_refused() {
        let (k1, jwk1) = ec_key("k1", "k1");
        let mut padded = jwk1.clone();
        padded["x-padding"] = json!("a".repeat(MAX_JWKS_BYTES));
        let (_jwks, url) = serve_jwks(&[jwk1.clone(), padded]).await;
        let token = sign(&k1, Algorithm::ES256, Some("k1"), &claims());
        match verifier(&url).verify(&token).await {
            Err(OidcError::KeysUnavailable(why)) => assert!(why.contains("1 MB"), "{why}"),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn unusable_keys_in_the_set_are_skipped() {
        let (k1, jwk1) = ec_key("k1", "k1");
        let (_k2, mut enc_only) = ec_key("k2", "k2");
        enc_only["use"] = json!("enc");
        let (_jwks, url) = serve_jwks(&[
            json!({"kty": "oct", "k": "c2VjcmV0", "kid": "hmac", "alg": "HS256"}),
            json!({"kty": "OKP", "crv": "X25519", "x": "abc", "kid": "weird"}),
            enc_only,
            jwk1,
        ])
        .await;
        let verifier = verifier(&url);
        verifier
            .verify(&sign(&k1, Algorithm::ES256, Some("k1"), &claims()))
            .await
            .unwrap();
        let secret = EncodingKey::from_secret(b"secret");
        let token = sign(&secret, Algorithm::HS256, Some("hmac"), &claims());
        assert_invalid(verifier.verify(&token).await, &token, "not accepted");
        // A token without kid: only one usable key remains, so it is chosen.
        verifier
            .verify(&sign(&k1, Algorithm::ES256, None, &claims()))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn entries_sharing_an_issuer_are_tried_in_order() {
        let (k1, jwk1) = ec_key("k1", "k1");
        let (jwks, url) = serve_jwks(&[jwk1]).await;
        let mut other_repo = settings(&url);
        other_repo
            .claims
            .insert("repository".into(), "databio/other".into());
        let verifier =
            OidcVerifier::new(vec![other_repo, settings(&url)], Duration::from_secs(5)).unwrap();
        let token = sign(&k1, Algorithm::ES256, Some("k1"), &claims());
        assert_eq!(verifier.issuer_for(&token), Some(0));
        let identity = verifier.verify(&token).await.unwrap();
        assert_eq!(identity.issuer_index, 1);
        assert_eq!(
            jwks.hits(),
            1,
            "entries with the same JWKS URL share one cache"
        );

        let mut c = claims();
        c["repository"] = json!("databio/third");
        let token = sign(&k1, Algorithm::ES256, Some("k1"), &c);
        assert_invalid(verifier.verify(&token).await, &token, "issuer entry #2");
    }
}
