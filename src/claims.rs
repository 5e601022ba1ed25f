//! The claims of a sign-in: what the session cookie (or server-side record) holds and what
//! tokens are minted from. A leaf: it imports nothing of Gatehouse. The wire names are public
//! (docs: reference/cookie), spelled out in Rust with serde renames.

use serde::{Deserialize, Serialize};

/// Only what headers and policy need, so a typical cookie stays well under 1 KB.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionClaims {
    /// GitHub user id, as a string.
    #[serde(rename = "sub")]
    pub user_id: String,
    pub login: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avatar_url: Option<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    pub iat: u64,
    pub exp: u64,
    /// When memberships were last confirmed at GitHub.
    pub refreshed_at: u64,
    /// The user's GitHub token, for membership re-checks (the whole cookie is encrypted).
    #[serde(rename = "ght", default, skip_serializing_if = "Option::is_none")]
    pub github_token: Option<String>,
    /// GitHub App sign-ins (expiring user tokens): what renews `github_token`.
    #[serde(rename = "ghr", default, skip_serializing_if = "Option::is_none")]
    pub github_refresh: Option<GithubRefresh>,
    /// Server-side sessions only: the store key of the record this came from (never in a
    /// cookie or token).
    #[serde(skip)]
    pub session_id: Option<String>,
}

/// GitHub's refresh token for an expiring user token (GitHub Apps: 8 hours, renewed with a
/// refresh token of about 6 months that GitHub replaces at each use).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GithubRefresh {
    /// The refresh token (`ghr_…`): the whole cookie is encrypted; in the store it is sealed.
    #[serde(rename = "t")]
    pub token: String,
    /// When (unix seconds) the access token expires.
    #[serde(rename = "x")]
    pub expires_at: u64,
}

impl SessionClaims {
    /// Tells this session apart from others of the same user (re-checks are per session).
    pub fn session_key(&self) -> String {
        format!("{}:{}", self.user_id, self.iat)
    }

    pub fn is_live(&self, now: u64) -> bool {
        self.iat <= now.saturating_add(60) && now < self.exp
    }
}
