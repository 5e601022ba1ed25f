//! Token pairs: an access token plus a refresh token from a *family*. A refresh token is
//! `gate_rt.FAMILY.GENERATION.SECRET`; each use moves the family to the next generation, and a
//! token of an older generation coming back means it was copied: the whole family is revoked.

use super::{digest, random_token, AccessTokens, RefreshFamily, Store, StoreError};
use crate::session::SessionClaims;

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

/// Everything issuing needs.
pub struct Issuer<'a> {
    pub store: &'a dyn Store,
    pub access: &'a AccessTokens,
    pub refresh_ttl_secs: u64,
}

impl Issuer<'_> {
    /// A new family for `session` and its first pair.
    pub async fn start(
        &self,
        session: &SessionClaims,
        now: u64,
    ) -> Result<TokenPair, RefreshError> {
        let family = random_token();
        let secret = random_token();
        let record = RefreshFamily {
            generation: 1,
            secret_hash: digest(&secret),
            session: session.clone(),
            expires_at: self.expiry(session, now),
        };
        self.store.put_family(&family, &record).await?;
        self.pair(&family, 1, &secret, session, now)
    }

    /// Check a presented refresh token. On reuse of an old generation, revoke the family.
    pub async fn redeem(
        &self,
        token: &str,
        now: u64,
    ) -> Result<(String, RefreshFamily), RefreshError> {
        let presented = parse(token).ok_or(RefreshError::Malformed)?;
        if self.store.is_revoked(presented.family, now).await? {
            return Err(RefreshError::Unknown);
        }
        let family = self
            .store
            .family(presented.family, now)
            .await?
            .ok_or(RefreshError::Unknown)?;
        if presented.generation < family.generation {
            tracing::warn!(login = %family.session.login, "a used refresh token came back; revoking its family");
            self.store
                .revoke_family(presented.family, now + self.refresh_ttl_secs)
                .await?;
            return Err(RefreshError::Reused);
        }
        if presented.generation != family.generation
            || digest(presented.secret) != family.secret_hash
        {
            return Err(RefreshError::Unknown);
        }
        Ok((presented.family.to_string(), family))
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
        let secret = random_token();
        let next = RefreshFamily {
            generation: redeemed.generation + 1,
            secret_hash: digest(&secret),
            session: session.clone(),
            expires_at: self.expiry(session, now),
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
    use crate::tokens::MemoryStore;

    fn session() -> SessionClaims {
        SessionClaims {
            sub: "1".into(),
            login: "octocat".into(),
            name: None,
            email: None,
            avatar_url: None,
            groups: vec![],
            roles: vec![],
            iat: 0,
            exp: 0,
            refreshed_at: 0,
            ght: None,
            sid: None,
        }
    }

    #[tokio::test]
    async fn refresh_never_outlives_the_sign_in() {
        let store = MemoryStore::default();
        let access =
            AccessTokens::new(&AccessSigning::Hs256(vec![1; 32]), "http://g", 900).unwrap();
        let issuer = Issuer {
            store: &store,
            access: &access,
            refresh_ttl_secs: 86_400,
        };
        let signed_in = SessionClaims {
            exp: 1_000 + 3_600,
            ..session()
        };
        let pair = issuer.start(&signed_in, 1_000).await.unwrap();
        assert!(issuer.redeem(&pair.refresh_token, 4_599).await.is_ok());
        assert!(issuer.redeem(&pair.refresh_token, 4_600).await.is_err());
    }

    #[tokio::test]
    async fn rotation_and_reuse_detection() {
        let store = MemoryStore::default();
        let access =
            AccessTokens::new(&AccessSigning::Hs256(vec![1; 32]), "http://g", 900).unwrap();
        let issuer = Issuer {
            store: &store,
            access: &access,
            refresh_ttl_secs: 86_400,
        };
        let now = 1_000;
        let first = issuer.start(&session(), now).await.unwrap();
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
        let third = issuer.start(&session(), now).await.unwrap();
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
}
