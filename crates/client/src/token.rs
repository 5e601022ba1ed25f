//! `gatehouse token`: a valid access token from the store, refreshed first when it has less
//! than [`REFRESH_MARGIN_SECS`] left.

use super::api::{ApiError, GateApi};
use super::login::to_stored;
use super::store::{self, StoredTokens};
use super::{unix_now, ClientError};
use std::path::Path;

/// An access token with less than this many seconds left is refreshed before use.
pub const REFRESH_MARGIN_SECS: u64 = 30;

/// What to do with the stored pair at time `now`.
#[derive(Debug, PartialEq, Eq)]
pub enum Freshness {
    /// The access token has at least the margin left.
    Valid,
    /// The access token is (nearly) expired but the refresh token is not.
    NeedsRefresh,
    /// Both are expired: sign in again.
    Ended,
}

pub fn freshness(tokens: &StoredTokens, now: u64) -> Freshness {
    if tokens.access_expires_at >= now.saturating_add(REFRESH_MARGIN_SECS) {
        Freshness::Valid
    } else if now < tokens.refresh_expires_at {
        Freshness::NeedsRefresh
    } else {
        Freshness::Ended
    }
}

/// The access token to use for `origin`, refreshing (and storing the new pair) when needed.
pub async fn access_token(origin: &str, dir: &Path) -> Result<String, ClientError> {
    let not_signed_in = |message: Option<String>| ClientError::NotSignedIn {
        url: origin.to_string(),
        message,
    };
    let Some(stored) = store::get(dir, origin)? else {
        return Err(not_signed_in(None));
    };
    match freshness(&stored, unix_now()) {
        Freshness::Valid => return Ok(stored.access_token),
        Freshness::Ended => return Err(not_signed_in(None)),
        Freshness::NeedsRefresh => {}
    }
    let api = GateApi::new(origin)?;
    match api.refresh(&stored.refresh_token).await {
        Ok(tokens) => {
            let fresh = to_stored(&tokens, unix_now());
            store::put(dir, origin, fresh)?;
            Ok(tokens.access_token)
        }
        Err(ApiError::Refused(r)) if (400..500).contains(&r.status) => {
            // Another `gatehouse token` may have used the refresh token first; take its pair.
            if let Some(now_stored) = store::get(dir, origin)? {
                if now_stored.refresh_token != stored.refresh_token
                    && freshness(&now_stored, unix_now()) == Freshness::Valid
                {
                    return Ok(now_stored.access_token);
                }
            }
            Err(not_signed_in(Some(r.message)))
        }
        Err(ApiError::Refused(r)) => Err(ClientError::Server {
            url: origin.to_string(),
            action: "renew the session",
            status: r.status,
            error: r.error,
            message: r.message,
        }),
        Err(ApiError::Network(source)) => Err(ClientError::Network {
            url: origin.to_string(),
            action: "renew the session",
            source,
        }),
        Err(ApiError::BadResponse(detail)) => Err(ClientError::BadResponse {
            url: origin.to_string(),
            detail,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(access_expires_at: u64, refresh_expires_at: u64) -> StoredTokens {
        StoredTokens {
            access_token: "a".into(),
            refresh_token: "r".into(),
            access_expires_at,
            refresh_expires_at,
        }
    }

    #[test]
    fn token_expiry_uses_a_30s_margin() {
        let now = 10_000;
        assert_eq!(
            freshness(&pair(now + 900, now + 9_000), now),
            Freshness::Valid
        );
        assert_eq!(
            freshness(&pair(now + 30, now + 9_000), now),
            Freshness::Valid
        );
        assert_eq!(
            freshness(&pair(now + 29, now + 9_000), now),
            Freshness::NeedsRefresh
        );
        assert_eq!(
            freshness(&pair(now - 5, now + 1), now),
            Freshness::NeedsRefresh
        );
        assert_eq!(freshness(&pair(now - 5, now), now), Freshness::Ended);
        assert_eq!(freshness(&pair(now - 5, now - 1), now), Freshness::Ended);
    }

    #[tokio::test]
    async fn token_without_stored_pair_says_to_log_in() {
        let tmp = tempfile::tempdir().unwrap();
        let e = access_token("https://a.example", tmp.path())
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("Not signed in to https://a.example (or the session ended): run `gatehouse login --url https://a.example`"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn token_returns_a_fresh_stored_access_token_without_network() {
        let tmp = tempfile::tempdir().unwrap();
        let fresh = StoredTokens {
            access_token: "live".into(),
            refresh_token: "r".into(),
            access_expires_at: unix_now() + 600,
            refresh_expires_at: unix_now() + 6_000,
        };
        store::put(tmp.path(), "http://127.0.0.1:9", fresh).unwrap();
        assert_eq!(
            access_token("http://127.0.0.1:9", tmp.path())
                .await
                .unwrap(),
            "live"
        );
    }

    #[tokio::test]
    async fn token_with_both_expired_says_to_log_in() {
        let tmp = tempfile::tempdir().unwrap();
        store::put(tmp.path(), "http://127.0.0.1:9", pair(1, 2)).unwrap();
        let e = access_token("http://127.0.0.1:9", tmp.path()).await;
        assert!(matches!(e, Err(ClientError::NotSignedIn { .. })));
    }
}
