//! Token pairs: an access token plus a refresh token from a *family*. A refresh token is
//! `gate_rt.FAMILY.GENERATION.SECRET`; each use moves the family to the next generation, and a
//! token of an older generation coming back means it was copied: the whole family is revoked.
//!
//! The family id is no secret (every access token carries it), so nothing changes state before
//! the secret is proven: the current generation's secret by its stored hash, an older one by a
//! tag keyed with the family's own `mac_key` (the store keeps no list of old hashes).

use super::api_keys::constant_time_eq;
use super::{digest, random_token, AccessTokens, RefreshFamily, Store, StoreError};
use crate::claims::SessionClaims;
use crate::session::KeyRing;
use crate::store::TokenOrigin;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

const PREFIX: &str = "gate_rt";

#[derive(Debug, Clone)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: u64,
    pub refresh_expires_in: u64,
}

impl TokenPair {
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "refresh_expires_in": self.refresh_expires_in,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    #[error("this is not a Gatehouse refresh token")]
    Malformed,
    #[error("the refresh token is unknown, expired or revoked")]
    Unknown,
    #[error("the refresh token was already used; every token of its sign-in is now revoked")]
    Reused,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("could not sign a token: {0}")]
    Sign(String),
}

/// A refresh token taken apart.
struct Presented<'a> {
    family: &'a str,
    generation: u64,
    secret: &'a str,
}

fn parse(token: &str) -> Option<Presented<'_>> {
    let mut parts = token.trim().split('.');
    let (Some(PREFIX), Some(family), Some(generation), Some(secret), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    let ok = |s: &str| {
        !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    (ok(family) && ok(secret)).then_some(())?;
    Some(Presented {
        family,
        generation: generation.parse().ok()?,
        secret,
    })
}

fn format_token(family: &str, generation: u64, secret: &str) -> String {
    format!("{PREFIX}.{family}.{generation}.{secret}")
}

/// Bytes of randomness, then bytes of tag, in a secret (43 base64url characters in all).
const NONCE_LEN: usize = 16;
const TAG_LEN: usize = 16;

/// A family's `mac_key` as bytes; `None` when missing (records from before it existed).
fn key_bytes(key: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(key).ok().filter(|k| k.len() >= 32)
}

/// The tag binding a nonce to its family and generation; `None` without a usable key.
fn secret_mac(key: &str, family: &str, generation: u64, nonce: &[u8]) -> Option<Hmac<Sha256>> {
    let mut mac = Hmac::<Sha256>::new_from_slice(&key_bytes(key)?).ok()?;
    mac.update(format!("{family}.{generation}.").as_bytes());
    mac.update(nonce);
    Some(mac)
}

/// A fresh secret for `generation` of `family`: random, and tagged so it can be recognised later.
fn new_secret(key: &str, family: &str, generation: u64) -> String {
    let mut bytes = [0u8; NONCE_LEN + TAG_LEN];
    rand::rng().fill_bytes(&mut bytes[..NONCE_LEN]);
    if let Some(mac) = secret_mac(key, family, generation, &bytes[..NONCE_LEN]) {
        bytes[NONCE_LEN..].copy_from_slice(&mac.finalize().into_bytes()[..TAG_LEN]);
    } else {
        // Unreachable with keys made by `new_mac_key`; an untagged secret is merely unrecognisable.
        rand::rng().fill_bytes(&mut bytes[NONCE_LEN..]);
    }
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Was `secret` issued for `generation` of this family? (Constant time in the tag.)
fn issued_for(family_id: &str, family: &RefreshFamily, generation: u64, secret: &str) -> bool {
    let Ok(bytes) = URL_SAFE_NO_PAD.decode(secret) else {
        return false;
    };
    if bytes.len() != NONCE_LEN + TAG_LEN {
        return false;
    }
    let (nonce, tag) = bytes.split_at(NONCE_LEN);
    secret_mac(&family.mac_key, family_id, generation, nonce)
        .is_some_and(|mac| mac.verify_truncated_left(tag).is_ok())
}

/// Is `secret` the current generation's? (Constant time over the hashes.)
fn is_current(family: &RefreshFamily, secret: &str) -> bool {
    let presented = digest(secret);
    constant_time_eq(presented.as_bytes(), family.secret_hash.as_bytes())
}

fn new_mac_key() -> String {
    random_token()
}

/// Everything issuing needs.
pub struct Issuer<'a> {
    pub store: &'a dyn Store,
    /// Seals the family's GitHub token in the store ([`super::sealed`]).
    pub seal: &'a KeyRing,
    pub access: &'a AccessTokens,
    pub refresh_ttl_secs: u64,
}

impl Issuer<'_> {
    /// `session` as the family record keeps it (its GitHub token sealed).
    fn sealed(&self, session: &SessionClaims) -> Result<SessionClaims, RefreshError> {
        super::sealed::seal(self.seal, session).map_err(|e| RefreshError::Sign(e.to_string()))
    }

    /// A new family for `session` (issued to `client_id`, if the client named itself) and its
    /// first pair. The login is remembered, so an admin can name the user by it (and end the
    /// family with the rest of their sign-ins).
    pub async fn start(
        &self,
        session: &SessionClaims,
        origin: TokenOrigin,
        client_id: Option<String>,
        now: u64,
    ) -> Result<TokenPair, RefreshError> {
        let family = random_token();
        let mac_key = new_mac_key();
        let secret = new_secret(&mac_key, &family, 1);
        let record = RefreshFamily {
            generation: 1,
            secret_hash: digest(&secret),
            session: self.sealed(session)?,
            expires_at: self.expiry(session, now),
            mac_key,
            origin,
            issued_at: now,
            client_id,
        };
        self.store.put_family(&family, &record).await?;
        self.store
            .remember_login(
                &session.login.to_ascii_lowercase(),
                &session.user_id,
                record.expires_at.max(session.exp),
            )
            .await?;
        self.pair(&family, 1, &secret, session, now)
    }

    /// Check a presented refresh token. A genuine token of an older generation is reuse and
    /// revokes the family; anything whose secret is not genuine changes nothing.
    pub async fn redeem(
        &self,
        token: &str,
        now: u64,
    ) -> Result<(String, RefreshFamily), RefreshError> {
        let presented = parse(token).ok_or(RefreshError::Malformed)?;
        if self.store.is_revoked(presented.family, now).await? {
            return Err(RefreshError::Unknown);
        }
        let mut family = self
            .store
            .family(presented.family, now)
            .await?
            .ok_or(RefreshError::Unknown)?;
        family.session = super::sealed::open(self.seal, family.session);
        if presented.generation == family.generation && is_current(&family, presented.secret) {
            return Ok((presented.family.to_string(), family));
        }
        let reused = presented.generation < family.generation
            && issued_for(
                presented.family,
                &family,
                presented.generation,
                presented.secret,
            );
        if !reused {
            return Err(RefreshError::Unknown);
        }
        tracing::warn!(login = %family.session.login, "a used refresh token came back; revoking its family");
        self.store
            .revoke_family(presented.family, now + self.refresh_ttl_secs)
            .await?;
        Err(RefreshError::Reused)
    }

    /// Replace the claims `family` keeps (memberships as just re-checked), unless it has moved
    /// on since it was read. False when it had.
    pub async fn keep_claims(
        &self,
        family_id: &str,
        family: &RefreshFamily,
        session: &SessionClaims,
    ) -> Result<bool, RefreshError> {
        let next = RefreshFamily {
            session: self.sealed(session)?,
            ..family.clone()
        };
        Ok(self
            .store
            .advance_family(family_id, family.generation, &next)
            .await?)
    }

    /// Move `family` (as redeemed) to its next generation for `session` (memberships as just
    /// re-checked) and mint the new pair. Losing a race with another refresh of the same token
    /// counts as reuse.
    pub async fn rotate(
        &self,
        family_id: &str,
        redeemed: &RefreshFamily,
        session: &SessionClaims,
        now: u64,
    ) -> Result<TokenPair, RefreshError> {
        // Families stored before secrets were tagged get their key now.
        let mac_key = match key_bytes(&redeemed.mac_key) {
            Some(_) => redeemed.mac_key.clone(),
            None => new_mac_key(),
        };
        let generation = redeemed.generation + 1;
        let secret = new_secret(&mac_key, family_id, generation);
        let next = RefreshFamily {
            generation,
            secret_hash: digest(&secret),
            session: self.sealed(session)?,
            expires_at: self.expiry(session, now),
            mac_key,
            origin: redeemed.origin,
            issued_at: now,
            client_id: redeemed.client_id.clone(),
        };
        if !self
            .store
            .advance_family(family_id, redeemed.generation, &next)
            .await?
        {
            self.store
                .revoke_family(family_id, now + self.refresh_ttl_secs)
                .await?;
            return Err(RefreshError::Reused);
        }
        // A renamed user is found by the new login.
        self.store
            .remember_login(
                &session.login.to_ascii_lowercase(),
                &session.user_id,
                next.expires_at.max(session.exp),
            )
            .await?;
        self.pair(family_id, next.generation, &secret, session, now)
    }

    /// Each refresh token lives `refresh_ttl`, but never past the sign-in's own end
    /// (`session.ttl` after it began): refreshing cannot make a sign-in last forever.
    fn expiry(&self, session: &SessionClaims, now: u64) -> u64 {
        let sliding = now + self.refresh_ttl_secs;
        if session.exp > 0 {
            sliding.min(session.exp)
        } else {
            sliding
        }
    }

    pub async fn revoke(&self, family_id: &str, now: u64) -> Result<(), RefreshError> {
        Ok(self
            .store
            .revoke_family(family_id, now + self.refresh_ttl_secs)
            .await?)
    }

    fn pair(
        &self,
        family: &str,
        generation: u64,
        secret: &str,
        session: &SessionClaims,
        now: u64,
    ) -> Result<TokenPair, RefreshError> {
        let access_token = self
            .access
            .issue(session, family, now)
            .map_err(|e| RefreshError::Sign(e.to_string()))?;
        Ok(TokenPair {
            access_token,
            refresh_token: format_token(family, generation, secret),
            expires_in: self.access.ttl_secs(),
            refresh_expires_in: self.refresh_ttl_secs,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AccessSigning;
    use crate::store::RefreshFamilies;
    use crate::tokens::MemoryStore;

    fn session() -> SessionClaims {
        SessionClaims {
            user_id: "1".into(),
            login: "octocat".into(),
            name: None,
            email: None,
            avatar_url: None,
            groups: vec![],
            roles: vec![],
            iat: 0,
            exp: 0,
            refreshed_at: 0,
            github_token: None,
            github_refresh: None,
            session_id: None,
        }
    }

    fn parts() -> (MemoryStore, AccessTokens) {
        let access =
            AccessTokens::new(&AccessSigning::Hs256(vec![vec![1; 32]]), "http://g", 900).unwrap();
        (MemoryStore::default(), access)
    }

    fn issuer<'a>(store: &'a MemoryStore, access: &'a AccessTokens) -> Issuer<'a> {
        static SEAL: std::sync::LazyLock<KeyRing> =
            std::sync::LazyLock::new(|| KeyRing::new(&[crate::config::SessionKey([9; 32])]));
        Issuer {
            store,
            seal: &SEAL,
            access,
            refresh_ttl_secs: 86_400,
        }
    }

    #[tokio::test]
    async fn refresh_never_outlives_the_sign_in() {
        let (store, access) = parts();
        let issuer = issuer(&store, &access);
        let signed_in = SessionClaims {
            exp: 1_000 + 3_600,
            ..session()
        };
        let pair = issuer
            .start(&signed_in, TokenOrigin::CodeExchange, None, 1_000)
            .await
            .unwrap();
        assert!(issuer.redeem(&pair.refresh_token, 4_599).await.is_ok());
        assert!(issuer.redeem(&pair.refresh_token, 4_600).await.is_err());
    }

    #[tokio::test]
    async fn rotation_and_reuse_detection() {
        let (store, access) = parts();
        let issuer = issuer(&store, &access);
        let now = 1_000;
        let first = issuer
            .start(&session(), TokenOrigin::CodeExchange, None, now)
            .await
            .unwrap();
        let (fam, rec) = issuer.redeem(&first.refresh_token, now).await.unwrap();
        let second = issuer.rotate(&fam, &rec, &session(), now).await.unwrap();
        assert_ne!(first.refresh_token, second.refresh_token);
        // The first token again: theft. The family dies, the newer token with it.
        assert!(matches!(
            issuer.redeem(&first.refresh_token, now).await,
            Err(RefreshError::Reused)
        ));
        assert!(matches!(
            issuer.redeem(&second.refresh_token, now).await,
            Err(RefreshError::Unknown)
        ));
        assert!(store.is_revoked(&fam, now).await.unwrap());
        assert!(matches!(
            issuer.redeem("nope", now).await,
            Err(RefreshError::Malformed)
        ));
        // A forged secret for a live family is simply unknown.
        let third = issuer
            .start(&session(), TokenOrigin::CodeExchange, None, now)
            .await
            .unwrap();
        let mut parts: Vec<String> = third.refresh_token.split('.').map(str::to_string).collect();
        parts[3] = random_token();
        assert!(matches!(
            issuer.redeem(&parts.join("."), now).await,
            Err(RefreshError::Unknown)
        ));
        assert!(
            issuer
                .redeem(&third.refresh_token, now + 86_400)
                .await
                .is_err(),
            "expired"
        );
    }

    #[tokio::test]
    async fn a_wrong_secret_never_changes_state() {
        let (store, access) = parts();
        let issuer = issuer(&store, &access);
        let now = 1_000;
        let first = issuer
            .start(&session(), TokenOrigin::CodeExchange, None, now)
            .await
            .unwrap();
        let (fam, rec) = issuer.redeem(&first.refresh_token, now).await.unwrap();
        let second = issuer.rotate(&fam, &rec, &session(), now).await.unwrap();
        // The family id is public; older, current and future generations with made-up secrets,
        // including a well-formed secret tagged for another generation, are all just unknown.
        let old_secret = first.refresh_token.rsplit('.').next().unwrap();
        for forged in [
            format!("gate_rt.{fam}.0.x"),
            format!("gate_rt.{fam}.1.{}", random_token()),
            format!("gate_rt.{fam}.2.x"),
            format!("gate_rt.{fam}.3.x"),
            format!("gate_rt.{fam}.0.{old_secret}"),
        ] {
            assert!(
                matches!(
                    issuer.redeem(&forged, now).await,
                    Err(RefreshError::Unknown)
                ),
                "{forged}"
            );
        }
        assert!(!store.is_revoked(&fam, now).await.unwrap());
        let (_, rec) = issuer.redeem(&second.refresh_token, now).await.unwrap();
        assert_eq!(rec.generation, 2);

        // A family stored before secrets were tagged cannot recognise its old tokens: they are
        // unknown rather than a reason to revoke, and its next secret is tagged.
        let mut legacy = rec.clone();
        legacy.mac_key.clear();
        store.put_family(&fam, &legacy).await.unwrap();
        assert!(matches!(
            issuer.redeem(&first.refresh_token, now).await,
            Err(RefreshError::Unknown)
        ));
        let third = issuer.rotate(&fam, &legacy, &session(), now).await.unwrap();
        assert!(matches!(
            issuer.redeem(&second.refresh_token, now).await,
            Err(RefreshError::Unknown)
        ));
        let (_, rec) = issuer.redeem(&third.refresh_token, now).await.unwrap();
        issuer.rotate(&fam, &rec, &session(), now).await.unwrap();
        assert!(matches!(
            issuer.redeem(&third.refresh_token, now).await,
            Err(RefreshError::Reused)
        ));
    }
}
