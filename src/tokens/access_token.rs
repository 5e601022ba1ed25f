//! Gatehouse's own access tokens: short-lived JWTs (jsonwebtoken) whose algorithm is pinned by
//! config, so `alg: none` and algorithm confusion (an HS256 token made with a public key) are
//! refused. Checked with zero clock leeway.

use crate::claims::SessionClaims;
use crate::config::AccessSigning;
use jsonwebtoken::{
    decode, decode_header, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation,
};
use serde::{Deserialize, Serialize};

/// `aud` of every access token: they are for this gate only.
const AUDIENCE: &str = "gatehouse";
/// An `iat` further than this in the future is refused: Gatehouse never writes one, so it is a
/// forgery or a badly wrong clock. The slack covers replicas whose clocks differ a little (the
/// session cookie allows the same).
const MAX_IAT_SKEW_SECS: u64 = 60;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Issuer and audience: this gate's public URL.
    #[serde(rename = "iss")]
    pub issuer: String,
    #[serde(rename = "aud")]
    pub audience: String,
    /// GitHub user id.
    #[serde(rename = "sub")]
    pub user_id: String,
    pub login: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    /// The refresh-token family it was minted from (revoking the family ends it too).
    #[serde(rename = "fam")]
    pub family: String,
    /// When its sign-in began (OIDC's `auth_time`): the revocation list judges the token by
    /// this, so one minted by a refresh just after a revocation is still ended. Older tokens
    /// lack it and are judged by `iat`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<u64>,
    /// When it was minted.
    pub iat: u64,
    pub exp: u64,
}

impl AccessClaims {
    /// When the token's sign-in began, for the revocation list.
    pub fn signed_in_at(&self) -> u64 {
        self.auth_time.unwrap_or(self.iat)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the access-token key is unusable: {0}")]
    Key(String),
    #[error("could not sign a token: {0}")]
    Sign(String),
    #[error("invalid access token: {0}")]
    Invalid(String),
}

pub struct AccessTokens {
    algorithm: Algorithm,
    /// The first configured key: it signs, and its id goes in every token's `kid`.
    encoding: EncodingKey,
    kid: String,
    /// Every configured key by id, the signing key first: a token verifies with the key its
    /// `kid` names (a token without `kid`, from before keys had ids, with any).
    decoding: Vec<(String, DecodingKey)>,
    /// ES256: the public keys as JWKs, for `/.well-known/jwks.json`; HS256: none.
    public_jwks: Vec<serde_json::Value>,
    validation: Validation,
    issuer: String,
    ttl_secs: u64,
}

impl std::fmt::Debug for AccessTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessTokens")
            .field("algorithm", &self.algorithm)
            .field("kid", &self.kid)
            .field("issuer", &self.issuer)
            .finish()
    }
}

/// One key, ready to sign and verify.
struct Key {
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
    jwk: Option<serde_json::Value>,
}

/// An HS256 key's id: base64url of the first 8 bytes of its SHA-256 (names the key without
/// revealing it, like the cookie's `kid`).
fn hs256_key(secret: &[u8]) -> Key {
    use base64::Engine;
    use sha2::Digest;
    let digest = sha2::Sha256::digest(secret);
    Key {
        kid: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..8]),
        encoding: EncodingKey::from_secret(secret),
        decoding: DecodingKey::from_secret(secret),
        jwk: None,
    }
}

/// An ES256 key from its PEM; its id is the JWK thumbprint (as for the assertion's keys).
fn es256_key(pem: &str) -> Result<Key, TokenError> {
    use p256::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
    let key =
        super::assertion::parse_secret_pem(pem).map_err(|e| TokenError::Key(e.to_string()))?;
    let private = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| TokenError::Key(e.to_string()))?;
    let public = key
        .public_key()
        .to_public_key_pem(LineEnding::LF)
        .map_err(|e| TokenError::Key(e.to_string()))?;
    let (kid, jwk) = super::assertion::public_jwk(&key.public_key())
        .map_err(|e| TokenError::Key(e.to_string()))?;
    Ok(Key {
        kid,
        encoding: EncodingKey::from_ec_pem(private.as_bytes())
            .map_err(|e| TokenError::Key(e.to_string()))?,
        decoding: DecodingKey::from_ec_pem(public.as_bytes())
            .map_err(|e| TokenError::Key(e.to_string()))?,
        jwk: Some(jwk),
    })
}

impl AccessTokens {
    /// Keys are parsed once here; nothing is set up per request.
    pub fn new(signing: &AccessSigning, issuer: &str, ttl_secs: u64) -> Result<Self, TokenError> {
        let (algorithm, keys) = match signing {
            AccessSigning::Hs256(secrets) => (
                Algorithm::HS256,
                secrets.iter().map(|s| hs256_key(s)).collect::<Vec<_>>(),
            ),
            AccessSigning::Es256(pems) => (
                Algorithm::ES256,
                pems.iter()
                    .map(|pem| es256_key(pem))
                    .collect::<Result<Vec<_>, _>>()?,
            ),
        };
        let mut keys = keys.into_iter();
        let Some(first) = keys.next() else {
            return Err(TokenError::Key("no key to sign with".into()));
        };
        let mut validation = Validation::new(algorithm);
        validation.leeway = 0;
        // Gatehouse never sets `nbf`, but a token that has one is not valid before it (RFC 7519
        // section 4.1.5).
        validation.validate_nbf = true;
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let (encoding, kid) = (first.encoding.clone(), first.kid.clone());
        let all: Vec<Key> = std::iter::once(first).chain(keys).collect();
        Ok(AccessTokens {
            algorithm,
            encoding,
            kid,
            public_jwks: all.iter().filter_map(|k| k.jwk.clone()).collect(),
            decoding: all.into_iter().map(|k| (k.kid, k.decoding)).collect(),
            validation,
            issuer: issuer.to_string(),
            ttl_secs,
        })
    }

    /// ES256: the public keys (JWKs with `kid`), the signing key first; HS256: none.
    pub fn public_keys(&self) -> &[serde_json::Value] {
        &self.public_jwks
    }

    pub fn ttl_secs(&self) -> u64 {
        self.ttl_secs
    }

    pub fn issue(
        &self,
        session: &SessionClaims,
        family: &str,
        now: u64,
    ) -> Result<String, TokenError> {
        let claims = AccessClaims {
            issuer: self.issuer.clone(),
            audience: AUDIENCE.into(),
            user_id: session.user_id.clone(),
            login: session.login.clone(),
            name: session.name.clone(),
            email: session.email.clone(),
            groups: session.groups.clone(),
            family: family.to_string(),
            auth_time: Some(session.iat),
            iat: now,
            exp: now + self.ttl_secs,
        };
        let mut header = Header::new(self.algorithm);
        header.kid = Some(self.kid.clone());
        encode(&header, &claims, &self.encoding).map_err(|e| TokenError::Sign(e.to_string()))
    }

    /// Is this token one of ours? (Cheap: looks at the unverified `iss`.)
    pub fn is_ours(&self, token: &str) -> bool {
        super::unverified_issuer(token).as_deref() == Some(self.issuer.as_str())
    }

    /// The claims, when the key the token's `kid` names signed it (any key, for a token
    /// without `kid`). An unknown `kid` is refused without trying the others.
    fn decode(&self, token: &str) -> Result<AccessClaims, TokenError> {
        let header = decode_header(token).map_err(|e| TokenError::Invalid(e.to_string()))?;
        let mut result = Err(TokenError::Invalid("unknown key id".into()));
        let named = |kid: &String| header.kid.as_ref().is_none_or(|named| named == kid);
        for (_, key) in self.decoding.iter().filter(|(kid, _)| named(kid)) {
            result = decode::<AccessClaims>(token, key, &self.validation)
                .map(|data| data.claims)
                .map_err(|e| TokenError::Invalid(e.to_string()));
            if result.is_ok() {
                break;
            }
        }
        result
    }

    pub fn verify(&self, token: &str) -> Result<AccessClaims, TokenError> {
        let claims = self.decode(token)?;
        let now = crate::clock::unix_now();
        if claims.iat > now.saturating_add(MAX_IAT_SKEW_SECS) {
            return Err(TokenError::Invalid("issued in the future (iat)".into()));
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn session() -> SessionClaims {
        SessionClaims {
            user_id: "583231".into(),
            login: "octocat".into(),
            name: None,
            email: Some("octocat@example.com".into()),
            avatar_url: None,
            groups: vec!["databio".into()],
            roles: vec![],
            iat: 0,
            exp: 0,
            refreshed_at: 0,
            github_token: Some("gho_secret".into()),
            github_refresh: None,
            session_id: None,
        }
    }

    fn hs() -> AccessTokens {
        AccessTokens::new(&AccessSigning::Hs256(vec![vec![7; 32]]), "http://gate", 900).unwrap()
    }

    #[test]
    fn round_trip_and_no_github_token_inside() {
        let t = hs();
        let now = crate::clock::unix_now();
        let token = t.issue(&session(), "fam1", now).unwrap();
        assert!(!token.contains("gho_"));
        let payload = token.split('.').nth(1).unwrap();
        let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap();
        assert!(!String::from_utf8(json).unwrap().contains("gho_secret"));
        let claims = t.verify(&token).unwrap();
        assert_eq!(claims.login, "octocat");
        assert_eq!(claims.family, "fam1");
        assert!(t.is_ours(&token));
    }

    #[test]
    fn a_token_is_judged_by_its_sign_in_not_by_when_it_was_minted() {
        let t = hs();
        let now = crate::clock::unix_now();
        let signed_in = SessionClaims {
            iat: now - 3_600,
            ..session()
        };
        // Minted by a refresh an hour into the sign-in: a revocation from before the refresh
        // but after the sign-in still ends it.
        let claims = t.verify(&t.issue(&signed_in, "f", now).unwrap()).unwrap();
        assert_eq!((claims.iat, claims.signed_in_at()), (now, now - 3_600));
        let older = AccessClaims {
            auth_time: None,
            ..claims
        };
        assert_eq!(older.signed_in_at(), now, "tokens without auth_time: iat");
    }

    #[test]
    fn expired_none_and_confused_tokens_fail() {
        let t = hs();
        let old = t.issue(&session(), "f", 1_000).unwrap();
        assert!(t.verify(&old).is_err(), "expired");
        let now = crate::clock::unix_now();
        let good = t.issue(&session(), "f", now).unwrap();
        let parts: Vec<&str> = good.split('.').collect();
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let none = format!(
            "{}.{}.",
            b64.encode(r#"{"alg":"none","typ":"JWT"}"#),
            parts[1]
        );
        assert!(t.verify(&none).is_err(), "alg none");
        // Signed with another secret, or claiming another algorithm.
        let other = AccessTokens::new(&AccessSigning::Hs256(vec![vec![8; 32]]), "http://gate", 900)
            .unwrap();
        assert!(t
            .verify(&other.issue(&session(), "f", now).unwrap())
            .is_err());
        let hs384 = encode(
            &Header::new(Algorithm::HS384),
            &t.verify(&good).unwrap(),
            &EncodingKey::from_secret(&[7; 32]),
        )
        .unwrap();
        assert!(t.verify(&hs384).is_err(), "algorithm is pinned");
        // A tampered payload.
        let mut claims = t.verify(&good).unwrap();
        claims.login = "mallory".into();
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            b64.encode(serde_json::to_vec(&claims).unwrap()),
            parts[2]
        );
        assert!(t.verify(&forged).is_err());
    }

    #[test]
    fn not_yet_valid_and_future_issued_tokens_fail() {
        let t = hs();
        let now = crate::clock::unix_now();
        let good = t.verify(&t.issue(&session(), "f", now).unwrap()).unwrap();
        let sign = |claims: &serde_json::Value| {
            encode(
                &Header::new(Algorithm::HS256),
                claims,
                &EncodingKey::from_secret(&[7; 32]),
            )
            .unwrap()
        };
        let mut claims = serde_json::to_value(&good).unwrap();
        assert!(t.verify(&sign(&claims)).is_ok());
        claims["nbf"] = serde_json::json!(now + 60);
        assert!(t.verify(&sign(&claims)).is_err(), "nbf in the future");
        claims["nbf"] = serde_json::json!(now - 1);
        assert!(t.verify(&sign(&claims)).is_ok(), "nbf in the past");
        claims["iat"] = serde_json::json!(now + 3600);
        assert!(t.verify(&sign(&claims)).is_err(), "iat in the future");
        claims["iat"] = serde_json::json!(now + 30);
        assert!(t.verify(&sign(&claims)).is_ok(), "small clock differences");
    }

    #[test]
    fn es256_keys_sign_and_an_hs256_token_made_with_the_public_key_fails() {
        use p256::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
        let key = p256::SecretKey::from_slice(&[3u8; 32]).unwrap();
        let pem = key.to_pkcs8_pem(LineEnding::LF).unwrap().to_string();
        let t = AccessTokens::new(&AccessSigning::Es256(vec![pem]), "http://gate", 900).unwrap();
        let now = crate::clock::unix_now();
        let token = t.issue(&session(), "f", now).unwrap();
        assert_eq!(t.verify(&token).unwrap().user_id, "583231");
        let public = key.public_key().to_public_key_pem(LineEnding::LF).unwrap();
        let confused = encode(
            &Header::new(Algorithm::HS256),
            &t.verify(&token).unwrap(),
            &EncodingKey::from_secret(public.as_bytes()),
        )
        .unwrap();
        assert!(t.verify(&confused).is_err());
    }

    fn hs_keys(keys: &[u8]) -> AccessTokens {
        let keys = keys.iter().map(|k| vec![*k; 32]).collect();
        AccessTokens::new(&AccessSigning::Hs256(keys), "http://gate", 900).unwrap()
    }

    #[test]
    fn a_promoted_key_signs_and_every_listed_key_verifies_by_kid() {
        let now = crate::clock::unix_now();
        let (before, added, promoted, dropped) = (
            hs_keys(&[1]),
            hs_keys(&[1, 2]),
            hs_keys(&[2, 1]),
            hs_keys(&[2]),
        );
        let old_token = before.issue(&session(), "f", now).unwrap();
        let new_token = promoted.issue(&session(), "f", now).unwrap();
        // Replicas mid-promote: each reads what the other signs.
        for t in [&before, &added, &promoted] {
            assert!(t.verify(&old_token).is_ok());
        }
        for t in [&added, &promoted, &dropped] {
            assert!(t.verify(&new_token).is_ok());
        }
        assert!(before.verify(&new_token).is_err(), "a key not listed");
        assert!(dropped.verify(&old_token).is_err(), "a dropped key");
        // The kid names the signing key; a token claiming a key it was not signed with fails.
        let kid = |token: &str| decode_header(token).unwrap().kid.unwrap();
        assert_ne!(kid(&old_token), kid(&new_token));
        let claims = promoted.verify(&new_token).unwrap();
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(kid(&new_token));
        let lying = encode(&header, &claims, &EncodingKey::from_secret(&[1; 32])).unwrap();
        assert!(added.verify(&lying).is_err());
        // Tokens from before keys had ids verify with any listed key.
        let untagged = encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(&[1; 32]),
        )
        .unwrap();
        assert!(promoted.verify(&untagged).is_ok());
        assert!(dropped.verify(&untagged).is_err());
    }

    #[test]
    fn es256_keys_are_all_published_and_the_first_signs() {
        use p256::pkcs8::{EncodePrivateKey, LineEnding};
        let pem = |seed: u8| {
            p256::SecretKey::from_slice(&[seed; 32])
                .unwrap()
                .to_pkcs8_pem(LineEnding::LF)
                .unwrap()
                .to_string()
        };
        let es = |pems: Vec<String>| {
            AccessTokens::new(&AccessSigning::Es256(pems), "http://gate", 900).unwrap()
        };
        let (old, rotated) = (es(vec![pem(3)]), es(vec![pem(4), pem(3)]));
        let kids: Vec<&str> = rotated
            .public_keys()
            .iter()
            .map(|k| k["kid"].as_str().unwrap())
            .collect();
        assert_eq!(kids.len(), 2);
        assert_eq!(kids[1], old.public_keys()[0]["kid"]);
        assert!(rotated.public_keys().iter().all(|k| k.get("d").is_none()));
        let now = crate::clock::unix_now();
        let token = rotated.issue(&session(), "f", now).unwrap();
        assert_eq!(decode_header(&token).unwrap().kid.as_deref(), Some(kids[0]));
        assert!(rotated
            .verify(&old.issue(&session(), "f", now).unwrap())
            .is_ok());
        assert!(old.verify(&token).is_err());
        assert!(
            hs_keys(&[1]).public_keys().is_empty(),
            "HS256 keys are secret"
        );
    }
}
