//! Where one-time codes, refresh-token families and revocations live. One trait, so issue 5's
//! Redis store can take the in-memory one's place; every method is async for that reason.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Mutex;

use crate::session::SessionClaims;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the token store is unavailable: {0}")]
    Unavailable(String),
}

/// What a one-time code stands for, until `/oauth2/token` trades it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CodeGrant {
    pub session: SessionClaims,
    pub client_redirect_uri: String,
    /// PKCE S256 challenge the client sent to `/oauth2/start`, if any.
    pub code_challenge: Option<String>,
    pub expires_at: u64,
}

/// A chain of refresh tokens. Each refresh moves `generation` on; presenting an older
/// generation means a token was copied, and the whole family is revoked.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefreshFamily {
    pub generation: u64,
    /// SHA-256 (base64url) of the current token's secret part.
    pub secret_hash: String,
    /// Who the family belongs to, with the GitHub token for re-checks.
    pub session: SessionClaims,
    pub expires_at: u64,
}

/// What trading a code found.
#[derive(Debug, Clone)]
pub enum CodeTake {
    Granted(Box<CodeGrant>),
    AlreadyUsed,
    /// Never issued, or expired.
    Unknown,
}

#[async_trait]
pub trait TokenStore: Send + Sync + std::fmt::Debug {
    async fn put_code(&self, code_hash: &str, grant: &CodeGrant) -> Result<(), StoreError>;
    /// The grant, used up: a code works once, and a second try is told so.
    async fn take_code(&self, code_hash: &str, now: u64) -> Result<CodeTake, StoreError>;
    async fn put_family(&self, id: &str, family: &RefreshFamily) -> Result<(), StoreError>;
    async fn family(&self, id: &str, now: u64) -> Result<Option<RefreshFamily>, StoreError>;
    /// Replace the family only if it is still at `expected_generation` (two refreshes racing
    /// with the same token cannot both win). False when it moved on or is gone.
    async fn advance_family(
        &self,
        id: &str,
        expected_generation: u64,
        next: &RefreshFamily,
    ) -> Result<bool, StoreError>;
    /// End the family: its refresh tokens stop working, and so do access tokens minted from it.
    async fn revoke_family(&self, id: &str, until: u64) -> Result<(), StoreError>;
    async fn is_revoked(&self, id: &str, now: u64) -> Result<bool, StoreError>;
}

/// Bound on entries of each kind, so a flood cannot grow memory without limit.
const MAX_ENTRIES: usize = 500_000;

/// The single-process store.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Maps>,
}

#[derive(Debug, Default)]
struct Maps {
    /// `None` once used (kept until it would have expired, to say "already used").
    codes: HashMap<String, (Option<CodeGrant>, u64)>,
    families: HashMap<String, RefreshFamily>,
    /// Family id → until when it stays revoked.
    revoked: HashMap<String, u64>,
}

impl MemoryStore {
    fn maps(&self) -> std::sync::MutexGuard<'_, Maps> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn full(what: &str) -> StoreError {
    StoreError::Unavailable(format!("too many {what} in memory"))
}

#[async_trait]
impl TokenStore for MemoryStore {
    async fn put_code(&self, code_hash: &str, grant: &CodeGrant) -> Result<(), StoreError> {
        let mut m = self.maps();
        if m.codes.len() >= MAX_ENTRIES {
            let now = super::unix_now();
            m.codes.retain(|_, (_, until)| *until > now);
            if m.codes.len() >= MAX_ENTRIES {
                return Err(full("codes"));
            }
        }
        m.codes.insert(
            code_hash.to_string(),
            (Some(grant.clone()), grant.expires_at),
        );
        Ok(())
    }

    async fn take_code(&self, code_hash: &str, now: u64) -> Result<CodeTake, StoreError> {
        let mut m = self.maps();
        Ok(match m.codes.get_mut(code_hash) {
            Some((_, until)) if now >= *until => {
                m.codes.remove(code_hash);
                CodeTake::Unknown
            }
            Some((slot, _)) => match slot.take() {
                Some(grant) => CodeTake::Granted(Box::new(grant)),
                None => CodeTake::AlreadyUsed,
            },
            None => CodeTake::Unknown,
        })
    }

    async fn put_family(&self, id: &str, family: &RefreshFamily) -> Result<(), StoreError> {
        let mut m = self.maps();
        if m.families.len() >= MAX_ENTRIES {
            let now = super::unix_now();
            m.families.retain(|_, f| f.expires_at > now);
            if m.families.len() >= MAX_ENTRIES {
                return Err(full("refresh tokens"));
            }
        }
        m.families.insert(id.to_string(), family.clone());
        Ok(())
    }

    async fn family(&self, id: &str, now: u64) -> Result<Option<RefreshFamily>, StoreError> {
        Ok(self
            .maps()
            .families
            .get(id)
            .filter(|f| now < f.expires_at)
            .cloned())
    }

    async fn advance_family(
        &self,
        id: &str,
        expected_generation: u64,
        next: &RefreshFamily,
    ) -> Result<bool, StoreError> {
        let mut m = self.maps();
        match m.families.get_mut(id) {
            Some(f) if f.generation == expected_generation => {
                *f = next.clone();
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn revoke_family(&self, id: &str, until: u64) -> Result<(), StoreError> {
        let mut m = self.maps();
        m.families.remove(id);
        if m.revoked.len() >= MAX_ENTRIES {
            let now = super::unix_now();
            m.revoked.retain(|_, u| *u > now);
        }
        m.revoked.insert(id.to_string(), until);
        Ok(())
    }

    async fn is_revoked(&self, id: &str, now: u64) -> Result<bool, StoreError> {
        Ok(self.maps().revoked.get(id).is_some_and(|u| now < *u))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> SessionClaims {
        SessionClaims {
            sub: "1".into(),
            login: "octocat".into(),
            name: None,
            email: None,
            avatar_url: None,
            groups: vec![],
            roles: vec![],
            iat: 0,
            exp: 100,
            refreshed_at: 0,
            ght: None,
        }
    }

    #[tokio::test]
    async fn codes_work_once_and_expire() {
        let s = MemoryStore::default();
        let grant = CodeGrant {
            session: claims(),
            client_redirect_uri: "http://127.0.0.1:1/cb".into(),
            code_challenge: None,
            expires_at: 60,
        };
        s.put_code("a", &grant).await.unwrap();
        s.put_code("b", &grant).await.unwrap();
        assert!(matches!(
            s.take_code("a", 10).await.unwrap(),
            CodeTake::Granted(_)
        ));
        assert!(matches!(
            s.take_code("a", 10).await.unwrap(),
            CodeTake::AlreadyUsed
        ));
        assert!(
            matches!(s.take_code("b", 60).await.unwrap(), CodeTake::Unknown),
            "expired"
        );
        assert!(matches!(
            s.take_code("c", 10).await.unwrap(),
            CodeTake::Unknown
        ));
    }

    #[tokio::test]
    async fn families_advance_once_per_generation_and_revoke() {
        let s = MemoryStore::default();
        let f = RefreshFamily {
            generation: 1,
            secret_hash: "h1".into(),
            session: claims(),
            expires_at: 100,
        };
        s.put_family("f", &f).await.unwrap();
        let next = RefreshFamily {
            generation: 2,
            secret_hash: "h2".into(),
            ..f.clone()
        };
        assert!(s.advance_family("f", 1, &next).await.unwrap());
        assert!(!s.advance_family("f", 1, &next).await.unwrap(), "raced");
        assert_eq!(s.family("f", 10).await.unwrap().unwrap().generation, 2);
        s.revoke_family("f", 100).await.unwrap();
        assert!(s.family("f", 10).await.unwrap().is_none());
        assert!(s.is_revoked("f", 10).await.unwrap());
        assert!(!s.is_revoked("f", 100).await.unwrap());
        assert!(!s.is_revoked("g", 10).await.unwrap());
    }
}
