//! The GitHub token inside the codes and refresh families the store keeps, sealed: a dump of
//! Redis yields no GitHub token, as for session records. The key is `session.store_secrets`
//! (else `session.secrets`, which already seal the same token into cookie sessions): first
//! seals, all open, so rotation works as for the records.
//!
//! In the store, the session's `ght` holds the sealed token, a compact JWE (five parts joined
//! by dots). GitHub's tokens have no dots: a `ght` without one is a record written before
//! sealing, read as it is and sealed when it is next written.

use crate::claims::SessionClaims;
use crate::session::{JweError, KeyRing};

/// `session` as the store keeps it: its GitHub token (and refresh token) sealed.
pub fn seal(ring: &KeyRing, session: &SessionClaims) -> Result<SessionClaims, JweError> {
    let github_token = match &session.github_token {
        Some(token) => Some(ring.seal(token.as_bytes())?),
        None => None,
    };
    Ok(SessionClaims {
        github_token,
        github_refresh: ring.seal_refresh(session.github_refresh.as_ref())?,
        ..session.clone()
    })
}

/// `session` as the store gave it, its GitHub token opened. One no key here opens (its key
/// was rotated out) is dropped: what needs it (a refresh, a re-check) asks for a new sign-in.
pub fn open(ring: &KeyRing, mut session: SessionClaims) -> SessionClaims {
    session.github_token = match session.github_token.take() {
        Some(sealed) if sealed.contains('.') => ring
            .open(&sealed)
            .ok()
            .and_then(|plain| String::from_utf8(plain).ok()),
        legacy => legacy,
    };
    session.github_refresh = ring.open_refresh(session.github_refresh.take());
    session
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claims::GithubRefresh;
    use crate::config::SessionKey;

    fn claims(token: Option<&str>) -> SessionClaims {
        SessionClaims {
            user_id: "1".into(),
            login: "mona".into(),
            name: None,
            email: None,
            avatar_url: None,
            groups: vec![],
            roles: vec![],
            iat: 1,
            exp: 2,
            refreshed_at: 1,
            github_token: token.map(str::to_string),
            github_refresh: token.map(|_| GithubRefresh {
                token: "ghr_refresh".into(),
                expires_at: 9,
            }),
            session_id: None,
        }
    }

    #[test]
    fn a_sealed_token_opens_with_any_key_of_the_ring_and_no_other() {
        let (old, new) = (SessionKey([1; 32]), SessionKey([2; 32]));
        let sealed = seal(
            &KeyRing::new(std::slice::from_ref(&old)),
            &claims(Some("gho_abc")),
        )
        .unwrap();
        let stored = sealed.github_token.clone().unwrap();
        assert!(!stored.contains("gho_"), "{stored}");
        let stored_refresh = sealed.github_refresh.clone().unwrap();
        assert!(!stored_refresh.token.contains("ghr_"), "{stored_refresh:?}");
        assert_eq!(stored_refresh.expires_at, 9);
        assert_eq!(
            open(&KeyRing::new(std::slice::from_ref(&old)), sealed.clone())
                .github_refresh
                .map(|r| r.token),
            Some("ghr_refresh".into())
        );
        let rotated = KeyRing::new(&[new.clone(), old]);
        assert_eq!(
            open(&rotated, sealed.clone()).github_token.as_deref(),
            Some("gho_abc")
        );
        assert_eq!(open(&KeyRing::new(&[new]), sealed).github_token, None);
    }

    #[test]
    fn records_from_before_sealing_and_sessions_without_a_token_read_as_they_are() {
        let ring = KeyRing::new(&[SessionKey([1; 32])]);
        assert_eq!(
            open(&ring, claims(Some("gho_plain")))
                .github_token
                .as_deref(),
            Some("gho_plain")
        );
        assert_eq!(seal(&ring, &claims(None)).unwrap().github_token, None);
    }
}
