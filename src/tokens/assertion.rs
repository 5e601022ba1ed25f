//! The signed identity assertion Gatehouse attaches to every proxied request as
//! `X-Gatehouse-Jwt-Assertion`.
//!
//! Plain identity headers (`X-Gatehouse-User`, ...) are only as trustworthy as the network path
//! between Gatehouse and the app: anything that can reach the app directly can forge them. The
//! assertion is an ES256 JWT (issuer = Gatehouse's public URL, audience = the upstream's name,
//! lifetime 60 s) that the app can verify with any JOSE library against the public keys Gatehouse
//! serves at `/.well-known/jwks.json`, so it can check who the caller is instead of trusting
//! headers.
//!
//! ECDSA signing costs tens of microseconds, too much to pay on every proxied request, so tokens
//! are cached per subject: the same person gets the same token back while it has more than 30 s
//! left, and a fresh one after that. The cache is bounded and its lock is held only for map
//! access, never while signing.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use http::HeaderValue;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use p256::elliptic_curve::rand_core::OsRng;
use p256::elliptic_curve::sec1::{Coordinates, ToEncodedPoint};
use p256::pkcs8::DecodePrivateKey;
use p256::SecretKey;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// Lifetime of an assertion (`exp - iat`), in seconds.
pub const ASSERTION_TTL_SECS: u64 = 60;
/// A cached assertion is handed out again only while it has more than this many seconds left.
pub const REUSE_MIN_REMAINING_SECS: u64 = 30;
/// Most subjects kept in the token cache.
const CACHE_CAPACITY: usize = 10_000;

const KEY_FIX: &str = "signing key file must be a PKCS#8 PEM EC P-256 private key; make one with \
                       `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out key.pem`";

/// Why a signer could not be built or a token could not be signed.
#[derive(Debug, thiserror::Error)]
pub enum AssertionError {
    /// The configured signing key is unusable; the message names the problem and the fix.
    #[error("{0}")]
    BadKey(String),
    /// Signing failed (should not happen with a key that loaded).
    #[error("could not sign the identity assertion: {0}")]
    Sign(String),
}

/// What the assertion says about the person (caller fills it from its Identity).
#[derive(Debug, Clone, Copy)]
pub struct AssertionSubject<'a> {
    pub sub: &'a str,
    pub login: &'a str,
    pub email: Option<&'a str>,
    pub groups: &'a [String],
    pub roles: &'a [String],
}

/// Signs identity assertions with the first of its P-256 keys and serves the public half of
/// every one as a JWKS, so a key about to sign is published before it does (rotation).
pub struct AssertionSigner {
    key: EncodingKey,
    issuer: String,
    audience: String,
    kid: String,
    jwks: Arc<serde_json::Value>,
    cache: Mutex<HashMap<[u8; 32], CachedToken>>,
    capacity: usize,
}

#[derive(Clone)]
struct CachedToken {
    /// Ready to insert as a header: a clone shares the bytes (the gate sends it on every
    /// request of the subject's minute).
    token: HeaderValue,
    iat: u64,
    exp: u64,
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    aud: &'a str,
    sub: &'a str,
    login: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'a str>,
    groups: &'a [String],
    roles: &'a [String],
    iat: u64,
    exp: u64,
}

impl fmt::Debug for AssertionSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AssertionSigner")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("kid", &self.kid)
            .field("key", &"[redacted]")
            .finish_non_exhaustive()
    }
}

impl AssertionSigner {
    /// Load the signing key from a PEM: PKCS#8 (`BEGIN PRIVATE KEY`) or SEC1
    /// (`BEGIN EC PRIVATE KEY`, as `openssl ecparam -genkey` writes it), P-256 only.
    /// `issuer` = Gatehouse's public_url (no trailing slash), `audience` = the upstream's name.
    pub fn from_pem(pem: &str, issuer: &str, audience: &str) -> Result<Self, AssertionError> {
        Self::from_pems(&[pem], issuer, audience)
    }

    /// Like [`Self::from_pem`] for several keys: the first signs, all are in the JWKS.
    pub fn from_pems<P: AsRef<str>>(
        pems: &[P],
        issuer: &str,
        audience: &str,
    ) -> Result<Self, AssertionError> {
        let secrets = pems
            .iter()
            .map(|pem| parse_secret_pem(pem.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        Self::from_secrets(&secrets, issuer, audience)
    }

    /// A fresh random P-256 key (the caller logs a warning: assertions stop verifying at restart).
    pub fn generate(issuer: &str, audience: &str) -> Self {
        loop {
            // `from_secrets` cannot fail for a freshly generated key (its error paths are for
            // malformed public points); the loop only satisfies the types without a panic.
            let secret = SecretKey::random(&mut OsRng);
            if let Ok(signer) = Self::from_secrets(&[secret], issuer, audience) {
                return signer;
            }
        }
    }

    /// The same keys signing for another audience (a route's app), with a cache of its own.
    pub fn for_audience(&self, audience: &str) -> Self {
        Self {
            key: self.key.clone(),
            issuer: self.issuer.clone(),
            audience: audience.to_owned(),
            kid: self.kid.clone(),
            jwks: Arc::clone(&self.jwks),
            cache: Mutex::new(HashMap::new()),
            capacity: self.capacity,
        }
    }

    fn from_secrets(
        secrets: &[SecretKey],
        issuer: &str,
        audience: &str,
    ) -> Result<Self, AssertionError> {
        let Some(signing) = secrets.first() else {
            return Err(AssertionError::BadKey(format!("no key given; {KEY_FIX}")));
        };
        let public = secrets
            .iter()
            .map(|secret| public_jwk(&secret.public_key()))
            .collect::<Result<Vec<_>, _>>()?;
        let kid = public
            .first()
            .map(|(kid, _)| kid.clone())
            .unwrap_or_default();
        let keys: Vec<serde_json::Value> = public.into_iter().map(|(_, jwk)| jwk).collect();
        Ok(Self {
            key: EncodingKey::from_ec_der(&pkcs8_der(signing)),
            issuer: issuer.trim_end_matches('/').to_owned(),
            audience: audience.to_owned(),
            kid,
            jwks: Arc::new(serde_json::json!({ "keys": keys })),
            cache: Mutex::new(HashMap::new()),
            capacity: CACHE_CAPACITY,
        })
    }

    /// The private key as a PKCS#8 PEM (`BEGIN PRIVATE KEY`), loadable with [`Self::from_pem`].
    /// Secret material: write it only to a file only Gatehouse can read.
    pub fn to_pem(&self) -> String {
        let b64 = STANDARD.encode(self.key.as_bytes());
        let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
        let mut rest = b64.as_str();
        while !rest.is_empty() {
            let (line, tail) = rest.split_at(rest.len().min(64));
            pem.push_str(line);
            pem.push('\n');
            rest = tail;
        }
        pem.push_str("-----END PRIVATE KEY-----\n");
        pem
    }

    /// The key id: the RFC 7638 JWK thumbprint (SHA-256, base64url without padding).
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The issuer (`iss`) put in every assertion.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The audience (`aud`) put in every assertion.
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// The public key set to serve at `/.well-known/jwks.json`.
    pub fn jwks(&self) -> serde_json::Value {
        (*self.jwks).clone()
    }

    /// The public keys alone (each a JWK with its `kid`), signing key first.
    pub fn public_keys(&self) -> &[serde_json::Value] {
        self.jwks["keys"].as_array().map_or(&[], Vec::as_slice)
    }

    /// The JWT for `subject` at `now` (Unix seconds): header `{alg: ES256, typ: JWT, kid}`,
    /// claims `iss, aud, sub, login, email` (omitted when `None`)`, groups, roles, iat = now,
    /// exp = now + 60`. The same subject gets the same token back while it has more than 30 s
    /// left.
    pub fn assertion(
        &self,
        subject: &AssertionSubject<'_>,
        now: u64,
    ) -> Result<HeaderValue, AssertionError> {
        let cache_key = subject_key(subject);
        {
            let cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(hit) = cache.get(&cache_key) {
                // `iat <= now` guards against a clock that jumped backwards.
                if hit.iat <= now && hit.exp > now.saturating_add(REUSE_MIN_REMAINING_SECS) {
                    return Ok(hit.token.clone());
                }
            }
        }

        let exp = now.saturating_add(ASSERTION_TTL_SECS);
        let claims = Claims {
            iss: &self.issuer,
            aud: &self.audience,
            sub: subject.sub,
            login: subject.login,
            email: subject.email,
            groups: subject.groups,
            roles: subject.roles,
            iat: now,
            exp,
        };
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        let token =
            encode(&header, &claims, &self.key).map_err(|e| AssertionError::Sign(e.to_string()))?;
        // A JWT is base64url and dots: always a valid header value.
        let token = HeaderValue::from_maybe_shared(bytes::Bytes::from(token))
            .map_err(|e| AssertionError::Sign(e.to_string()))?;

        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.len() >= self.capacity && !cache.contains_key(&cache_key) {
            let horizon = now.saturating_add(REUSE_MIN_REMAINING_SECS);
            cache.retain(|_, entry| entry.iat <= now && entry.exp > horizon);
            if cache.len() >= self.capacity {
                cache.clear();
            }
        }
        cache.insert(
            cache_key,
            CachedToken {
                token: token.clone(),
                iat: now,
                exp,
            },
        );
        Ok(token)
    }
}

/// The public JWK of a P-256 key (`use: sig`, `alg: ES256`) and its `kid`, the RFC 7638
/// thumbprint (SHA-256, base64url without padding): the same key always gets the same `kid`.
pub fn public_jwk(public: &p256::PublicKey) -> Result<(String, serde_json::Value), AssertionError> {
    let point = public.to_encoded_point(false);
    let Coordinates::Uncompressed { x, y } = point.coordinates() else {
        return Err(AssertionError::BadKey(format!(
            "the key's public point cannot be encoded; {KEY_FIX}"
        )));
    };
    let (x, y) = (URL_SAFE_NO_PAD.encode(x), URL_SAFE_NO_PAD.encode(y));
    // RFC 7638: SHA-256 over the required members in lexicographic order, no whitespace.
    let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
    let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()));
    let jwk = serde_json::json!({
        "kty": "EC",
        "crv": "P-256",
        "x": x,
        "y": y,
        "kid": kid,
        "use": "sig",
        "alg": "ES256",
    });
    Ok((kid, jwk))
}

/// A collision-resistant cache key over every subject field (length-prefixed, so field
/// boundaries cannot be shifted to make two different subjects collide).
fn subject_key(subject: &AssertionSubject<'_>) -> [u8; 32] {
    fn field(hasher: &mut Sha256, value: &str) {
        hasher.update((value.len() as u64).to_le_bytes());
        hasher.update(value.as_bytes());
    }
    fn list(hasher: &mut Sha256, values: &[String]) {
        hasher.update((values.len() as u64).to_le_bytes());
        for value in values {
            field(hasher, value);
        }
    }
    let mut hasher = Sha256::new();
    field(&mut hasher, subject.sub);
    field(&mut hasher, subject.login);
    match subject.email {
        Some(email) => {
            hasher.update([1]);
            field(&mut hasher, email);
        }
        None => hasher.update([0]),
    }
    list(&mut hasher, subject.groups);
    list(&mut hasher, subject.roles);
    hasher.finalize().into()
}

/// The PKCS#8 DER of a P-256 private key, without the optional public key (RFC 5208 around an
/// RFC 5915 ECPrivateKey). A fixed template, so encoding cannot fail.
fn pkcs8_der(secret: &SecretKey) -> Vec<u8> {
    const PREFIX: [u8; 35] = [
        0x30, 0x41, // SEQUENCE, 65 bytes
        0x02, 0x01, 0x00, // version 0
        0x30, 0x13, // AlgorithmIdentifier
        0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, // id-ecPublicKey
        0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, // prime256v1
        0x04, 0x27, // OCTET STRING, 39 bytes
        0x30, 0x25, // ECPrivateKey SEQUENCE, 37 bytes
        0x02, 0x01, 0x01, // version 1
        0x04, 0x20, // privateKey OCTET STRING, 32 bytes
    ];
    let mut der = Vec::with_capacity(PREFIX.len() + 32);
    der.extend_from_slice(&PREFIX);
    der.extend_from_slice(&secret.to_bytes());
    der
}

/// The text of the first `label` PEM block in `pem`, if any (skips e.g. an `EC PARAMETERS` block
/// that `openssl ecparam -genkey` writes first).
fn pem_block<'a>(pem: &'a str, label: &str) -> Option<&'a str> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = pem.find(&begin)?;
    let stop = start + pem[start..].find(&end)? + end.len();
    Some(&pem[start..stop])
}

pub(super) fn parse_secret_pem(pem: &str) -> Result<SecretKey, AssertionError> {
    let bad = |problem: String| AssertionError::BadKey(format!("{problem}; {KEY_FIX}"));
    if let Some(block) = pem_block(pem, "PRIVATE KEY") {
        return SecretKey::from_pkcs8_pem(block).map_err(|e| {
            bad(format!(
                "the PRIVATE KEY block is not an EC P-256 key ({e})"
            ))
        });
    }
    if let Some(block) = pem_block(pem, "EC PRIVATE KEY") {
        return SecretKey::from_sec1_pem(block)
            .map_err(|e| bad(format!("the EC PRIVATE KEY block is not a P-256 key ({e})")));
    }
    let problem = if pem.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
        "the key is encrypted; decrypt it first (`openssl pkey -in encrypted.pem -out key.pem`)"
    } else if pem.contains("-----BEGIN RSA PRIVATE KEY-----") {
        "this is an RSA key, not an EC P-256 key"
    } else if pem.contains("-----BEGIN PUBLIC KEY-----")
        || pem.contains("-----BEGIN CERTIFICATE-----")
    {
        "this is a public key or certificate, not the private key"
    } else {
        "no PEM private key block found"
    };
    Err(bad(problem.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::jwk::{JwkSet, ThumbprintHash};
    use jsonwebtoken::{decode, decode_header, get_current_timestamp, DecodingKey, Validation};

    const ISS: &str = "https://gate.example.com";
    const AUD: &str = "wiki";

    fn strings(values: &[&str]) -> Vec<String> {
        values.iter().map(|v| (*v).to_owned()).collect()
    }

    fn decoding_key(signer: &AssertionSigner) -> DecodingKey {
        let set: JwkSet = serde_json::from_value(signer.jwks()).unwrap();
        assert_eq!(set.keys.len(), 1);
        DecodingKey::from_jwk(&set.keys[0]).unwrap()
    }

    fn validation() -> Validation {
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_issuer(&[ISS]);
        validation.set_audience(&[AUD]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation
    }

    /// The cache handed out the same token, not an equal copy.
    fn same_bytes(a: &HeaderValue, b: &HeaderValue) -> bool {
        a.as_bytes().as_ptr() == b.as_bytes().as_ptr()
    }

    fn verify(
        signer: &AssertionSigner,
        token: &str,
    ) -> jsonwebtoken::errors::Result<serde_json::Value> {
        decode::<serde_json::Value>(token, &decoding_key(signer), &validation()).map(|d| d.claims)
    }

    #[test]
    fn token_verifies_against_jwks_with_the_specified_claims() {
        let signer = AssertionSigner::generate(ISS, AUD);
        let groups = strings(&["acme/devs", "acme/ops"]);
        let roles = strings(&["admin"]);
        let subject = AssertionSubject {
            sub: "github|42",
            login: "octocat",
            email: Some("octo@example.com"),
            groups: &groups,
            roles: &roles,
        };
        let now = get_current_timestamp();
        let token = signer.assertion(&subject, now).unwrap();
        let claims = verify(&signer, token.to_str().unwrap()).unwrap();
        assert_eq!(
            claims,
            serde_json::json!({
                "iss": ISS, "aud": AUD, "sub": "github|42", "login": "octocat",
                "email": "octo@example.com", "groups": ["acme/devs", "acme/ops"],
                "roles": ["admin"], "iat": now, "exp": now + 60,
            })
        );
    }

    #[test]
    fn email_is_omitted_when_none() {
        let signer = AssertionSigner::generate(ISS, AUD);
        let subject = AssertionSubject {
            sub: "github|7",
            login: "ghost",
            email: None,
            groups: &[],
            roles: &[],
        };
        let token = signer.assertion(&subject, get_current_timestamp()).unwrap();
        let claims = verify(&signer, token.to_str().unwrap()).unwrap();
        assert!(claims.get("email").is_none(), "{claims}");
        assert_eq!(claims["groups"], serde_json::json!([]));
        assert_eq!(claims["roles"], serde_json::json!([]));
    }

    #[test]
    fn header_kid_matches_jwks_and_rfc7638_thumbprint() {
        let signer = AssertionSigner::generate(ISS, AUD);
        let subject = AssertionSubject {
            sub: "1",
            login: "a",
            email: None,
            groups: &[],
            roles: &[],
        };
        let token = signer.assertion(&subject, get_current_timestamp()).unwrap();
        let header = decode_header(token.to_str().unwrap()).unwrap();
        assert_eq!(header.alg, Algorithm::ES256);
        assert_eq!(header.typ.as_deref(), Some("JWT"));
        assert_eq!(header.kid.as_deref(), Some(signer.kid()));

        let jwks = signer.jwks();
        let key = &jwks["keys"][0];
        assert_eq!(key["kid"], signer.kid());
        assert_eq!(key["kty"], "EC");
        assert_eq!(key["crv"], "P-256");
        assert_eq!(key["use"], "sig");
        assert_eq!(key["alg"], "ES256");
        let set: JwkSet = serde_json::from_value(jwks).unwrap();
        assert_eq!(
            set.keys[0].thumbprint(ThumbprintHash::SHA256).unwrap(),
            signer.kid()
        );
        assert_eq!(signer.kid().len(), 43);
    }

    #[test]
    fn same_subject_within_30s_gets_the_cached_token() {
        let signer = AssertionSigner::generate(ISS, AUD);
        let roles = strings(&["dev"]);
        let subject = AssertionSubject {
            sub: "1",
            login: "a",
            email: None,
            groups: &[],
            roles: &roles,
        };
        let now = 1_700_000_000;
        let first = signer.assertion(&subject, now).unwrap();
        let again = signer.assertion(&subject, now + 1).unwrap();
        let later = signer.assertion(&subject, now + 29).unwrap();
        assert!(same_bytes(&first, &again));
        assert!(same_bytes(&first, &later));
    }

    #[test]
    fn token_is_reissued_after_31s() {
        let signer = AssertionSigner::generate(ISS, AUD);
        let subject = AssertionSubject {
            sub: "1",
            login: "a",
            email: None,
            groups: &[],
            roles: &[],
        };
        let now = get_current_timestamp() - 31;
        let first = signer.assertion(&subject, now).unwrap();
        let second = signer.assertion(&subject, now + 31).unwrap();
        assert_ne!(first, second);
        let claims = verify(&signer, second.to_str().unwrap()).unwrap();
        assert_eq!(claims["iat"], now + 31);
        // And the new token is what gets reused from then on.
        let third = signer.assertion(&subject, now + 32).unwrap();
        assert!(same_bytes(&second, &third));
    }

    #[test]
    fn clock_going_backwards_reissues() {
        let signer = AssertionSigner::generate(ISS, AUD);
        let subject = AssertionSubject {
            sub: "1",
            login: "a",
            email: None,
            groups: &[],
            roles: &[],
        };
        let first = signer.assertion(&subject, 1_000).unwrap();
        let second = signer.assertion(&subject, 990).unwrap();
        assert_ne!(first, second);
    }

    #[test]
    fn any_subject_field_change_gives_a_different_token() {
        let signer = AssertionSigner::generate(ISS, AUD);
        let now = 1_700_000_000;
        let (dev, admin) = (strings(&["dev"]), strings(&["admin"]));
        let (g1, g2) = (strings(&["acme/a"]), strings(&["acme/b"]));
        let base = AssertionSubject {
            sub: "1",
            login: "a",
            email: Some("a@x"),
            groups: &g1,
            roles: &dev,
        };
        let variants = [
            AssertionSubject {
                roles: &admin,
                ..base
            },
            AssertionSubject {
                groups: &g2,
                ..base
            },
            AssertionSubject {
                email: None,
                ..base
            },
            AssertionSubject {
                email: Some("b@x"),
                ..base
            },
            AssertionSubject { sub: "2", ..base },
            AssertionSubject { login: "b", ..base },
        ];
        let original = signer.assertion(&base, now).unwrap();
        for variant in &variants {
            let token = signer.assertion(variant, now).unwrap();
            assert_ne!(original, token, "{variant:?}");
        }
        // Moving a value between lists must not alias either.
        let ab = strings(&["a", "b"]);
        let a = strings(&["a"]);
        let b = strings(&["b"]);
        let left = AssertionSubject {
            groups: &ab,
            roles: &[],
            ..base
        };
        let right = AssertionSubject {
            groups: &a,
            roles: &b,
            ..base
        };
        assert_ne!(subject_key(&left), subject_key(&right));
        assert_eq!(signer.assertion(&base, now).unwrap(), original);
    }

    #[test]
    fn tampered_payload_fails_verification() {
        let signer = AssertionSigner::generate(ISS, AUD);
        let roles = strings(&["viewer"]);
        let subject = AssertionSubject {
            sub: "1",
            login: "a",
            email: None,
            groups: &[],
            roles: &roles,
        };
        let now = get_current_timestamp();
        let token = signer.assertion(&subject, now).unwrap();
        let parts: Vec<&str> = token.to_str().unwrap().split('.').collect();
        assert_eq!(parts.len(), 3);
        let mut claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        claims["roles"] = serde_json::json!(["admin"]);
        let forged_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap());
        let forged = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);
        let err = verify(&signer, &forged).unwrap_err();
        assert_eq!(
            *err.kind(),
            jsonwebtoken::errors::ErrorKind::InvalidSignature
        );
        // A token from another Gatehouse key does not verify either.
        let other = AssertionSigner::generate(ISS, AUD);
        let theirs = other.assertion(&subject, now).unwrap();
        assert!(verify(&signer, theirs.to_str().unwrap()).is_err());
    }

    #[test]
    fn expired_token_fails_verification() {
        let signer = AssertionSigner::generate(ISS, AUD);
        let subject = AssertionSubject {
            sub: "1",
            login: "a",
            email: None,
            groups: &[],
            roles: &[],
        };
        let long_ago = get_current_timestamp() - 3_600;
        let token = signer.assertion(&subject, long_ago).unwrap();
        let err = verify(&signer, token.to_str().unwrap()).unwrap_err();
        assert_eq!(
            *err.kind(),
            jsonwebtoken::errors::ErrorKind::ExpiredSignature
        );
    }

    #[test]
    fn wrong_audience_fails_verification() {
        let signer = AssertionSigner::generate(ISS, "other-app");
        let subject = AssertionSubject {
            sub: "1",
            login: "a",
            email: None,
            groups: &[],
            roles: &[],
        };
        let token = signer.assertion(&subject, get_current_timestamp()).unwrap();
        assert!(verify(&signer, token.to_str().unwrap()).is_err());
    }

    #[test]
    fn from_pem_round_trips_a_generated_key() {
        let signer = AssertionSigner::generate(ISS, AUD);
        let pem = signer.to_pem();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        let loaded = AssertionSigner::from_pem(&pem, &format!("{ISS}/"), AUD).unwrap();
        assert_eq!(loaded.kid(), signer.kid());
        assert_eq!(loaded.jwks(), signer.jwks());
        assert_eq!(loaded.issuer(), ISS);
        let subject = AssertionSubject {
            sub: "1",
            login: "a",
            email: None,
            groups: &[],
            roles: &[],
        };
        let token = loaded.assertion(&subject, get_current_timestamp()).unwrap();
        verify(&signer, token.to_str().unwrap()).unwrap();
    }

    #[test]
    fn from_pem_accepts_sec1_and_p256_crate_pkcs8() {
        use p256::pkcs8::{EncodePrivateKey, LineEnding};
        let secret = SecretKey::random(&mut OsRng);
        let reference =
            AssertionSigner::from_secrets(std::slice::from_ref(&secret), ISS, AUD).unwrap();

        let pkcs8 = secret.to_pkcs8_pem(LineEnding::LF).unwrap();
        let from_pkcs8 = AssertionSigner::from_pem(&pkcs8, ISS, AUD).unwrap();
        assert_eq!(from_pkcs8.kid(), reference.kid());

        // `openssl ecparam -genkey` style: an EC PARAMETERS block, then the SEC1 key.
        let sec1 = secret.to_sec1_pem(LineEnding::LF).unwrap();
        let with_params = format!(
            "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n{}",
            *sec1
        );
        let from_sec1 = AssertionSigner::from_pem(&with_params, ISS, AUD).unwrap();
        assert_eq!(from_sec1.kid(), reference.kid());

        // Our template DER decodes to the same key with the p256 crate.
        let der = pkcs8_der(&secret);
        assert_eq!(SecretKey::from_pkcs8_der(&der).unwrap(), secret);
    }

    #[test]
    fn garbage_pem_is_bad_key_with_the_fix() {
        for pem in [
            "not a key",
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n",
            "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
        ] {
            match AssertionSigner::from_pem(pem, ISS, AUD) {
                Err(AssertionError::BadKey(message)) => {
                    assert!(
                        message.contains("PKCS#8 PEM EC P-256 private key"),
                        "{message}"
                    );
                    assert!(
                        message.contains(
                            "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out key.pem"
                        ),
                        "{message}"
                    );
                }
                other => panic!("expected BadKey for {pem:?}, got {other:?}"),
            }
        }
    }

    #[test]
    fn cache_stays_bounded() {
        let mut signer = AssertionSigner::generate(ISS, AUD);
        signer.capacity = 4;
        let logins: Vec<String> = (0..10).map(|i| format!("user{i}")).collect();
        fn subject(login: &str) -> AssertionSubject<'_> {
            AssertionSubject {
                sub: "1",
                login,
                email: None,
                groups: &[],
                roles: &[],
            }
        }
        let now = 1_700_000_000;
        for login in &logins[..4] {
            signer.assertion(&subject(login), now).unwrap();
        }
        // Full of still-fresh entries: the next insert clears it.
        signer.assertion(&subject(&logins[4]), now).unwrap();
        assert_eq!(signer.cache.lock().unwrap().len(), 1);
        for login in &logins[5..8] {
            signer.assertion(&subject(login), now).unwrap();
        }
        // Full, all stale by now + 40: stale entries are dropped, the new one kept.
        signer.assertion(&subject(&logins[8]), now + 40).unwrap();
        assert_eq!(signer.cache.lock().unwrap().len(), 1);
        // Fresh entries survive the pruning of stale ones.
        for login in &logins[..3] {
            signer.assertion(&subject(login), now + 65).unwrap();
        }
        signer.assertion(&subject(&logins[9]), now + 75).unwrap();
        let cache = signer.cache.lock().unwrap();
        assert_eq!(cache.len(), 4);
        assert!(!cache.contains_key(&subject_key(&subject(&logins[8]))));
        for login in [&logins[0], &logins[1], &logins[2], &logins[9]] {
            assert!(cache.contains_key(&subject_key(&subject(login))));
        }
    }

    #[test]
    fn signer_is_send_sync_and_debug_hides_the_key() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<AssertionSigner>();
        let signer = AssertionSigner::generate(ISS, AUD);
        let debug = format!("{signer:?}");
        assert!(debug.contains(signer.kid()));
        assert!(debug.contains("[redacted]"));
        let pem = signer.to_pem();
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        assert!(!debug.contains(&body));
    }

    #[test]
    fn several_keys_are_all_published_and_the_first_signs() {
        use p256::pkcs8::{EncodePrivateKey, LineEnding};
        let (new, old) = (SecretKey::random(&mut OsRng), SecretKey::random(&mut OsRng));
        let pem = |k: &SecretKey| k.to_pkcs8_pem(LineEnding::LF).unwrap().to_string();
        let before = AssertionSigner::from_pem(&pem(&old), ISS, AUD).unwrap();
        let rotated = AssertionSigner::from_pems(&[pem(&new), pem(&old)], ISS, AUD).unwrap();
        let set: JwkSet = serde_json::from_value(rotated.jwks()).unwrap();
        let kids: Vec<_> = set
            .keys
            .iter()
            .map(|k| k.common.key_id.clone().unwrap())
            .collect();
        assert_eq!(kids, [rotated.kid().to_owned(), before.kid().to_owned()]);
        let route = rotated.for_audience("grafana");
        assert_eq!((route.kid(), route.audience()), (rotated.kid(), "grafana"));
        assert_eq!(route.jwks(), rotated.jwks());
        let groups = strings(&["databio"]);
        let who = AssertionSubject {
            sub: "1",
            login: "mona",
            email: None,
            groups: &groups,
            roles: &groups,
        };
        let token = route.assertion(&who, get_current_timestamp()).unwrap();
        assert_eq!(
            decode_header(token.to_str().unwrap())
                .unwrap()
                .kid
                .as_deref(),
            Some(rotated.kid())
        );
    }
}
