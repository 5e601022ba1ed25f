//! The signed-in person, as every part of Gatehouse sees them.

use crate::claims::SessionClaims;

/// Who stands behind an identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IdentityKind {
    /// A GitHub user: judged by the allow-lists, roles from the config.
    #[default]
    Github,
    /// A machine (an OIDC issuer's token, an API key): skips the allow-lists and holds exactly
    /// the roles its issuer or key entry grants.
    Service(RoleSet),
}

/// What vouched for an identity, so a connection it opened (a websocket) can be watched by
/// it: ended when that credential ends.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Source {
    /// Not known (tests, `--explain`): nothing beyond `expires_at` to watch.
    #[default]
    Unknown,
    /// A session cookie (its server-side record, if any, is `session_record`).
    Session,
    /// One of Gatehouse's access tokens, minted from this refresh family.
    AccessToken { family: String },
    /// A raw GitHub token (`accept_github_tokens`).
    GithubToken,
    /// An `[[api_keys]]` entry, by name and the fingerprint of the entry as configured when
    /// the key was accepted (a reload that removes or changes it ends what it opened).
    ApiKey { name: String, entry: [u8; 32] },
    /// A token of a `[[tokens.oidc_issuers]]` entry, by that entry's fingerprint.
    Oidc { issuer: [u8; 32] },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub kind: IdentityKind,
    /// Numeric GitHub user id, as a string (stable across renames).
    pub user_id: String,
    pub login: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub avatar_url: Option<String>,
    /// Lower-cased org logins and `org/team` slugs.
    pub groups: Vec<String>,
    pub roles: Vec<String>,
    /// Unix seconds when the session ends.
    pub expires_at: u64,
    /// Unix seconds of the sign-in (or token) it rides on; 0 when none (API keys, OIDC).
    pub signed_in_at: u64,
    /// The server-side session record it came from, if any.
    pub session_record: Option<String>,
    /// The credential it came from.
    pub source: Source,
}

impl From<SessionClaims> for Identity {
    fn from(c: SessionClaims) -> Identity {
        Identity {
            kind: IdentityKind::Github,
            user_id: c.user_id,
            login: c.login,
            name: c.name,
            email: c.email,
            avatar_url: c.avatar_url,
            groups: c.groups,
            roles: c.roles,
            expires_at: c.exp,
            signed_in_at: c.iat,
            session_record: c.session_id,
            source: Source::Session,
        }
    }
}

impl Identity {
    /// A GitHub user known only by id and login (tests, `--explain`).
    pub fn github(user_id: &str, login: &str) -> Identity {
        Identity {
            kind: IdentityKind::Github,
            user_id: user_id.to_string(),
            login: login.to_string(),
            name: None,
            email: None,
            avatar_url: None,
            groups: Vec::new(),
            roles: Vec::new(),
            expires_at: 0,
            signed_in_at: 0,
            session_record: None,
            source: Source::Unknown,
        }
    }

    /// A machine identity: `login` is `oidc:<sub>` or `apikey:<name>`.
    pub fn service(login: String, roles: RoleSet) -> Identity {
        Identity {
            kind: IdentityKind::Service(roles),
            user_id: login.clone(),
            login,
            name: None,
            email: None,
            avatar_url: None,
            groups: Vec::new(),
            roles: Vec::new(),
            expires_at: 0,
            signed_in_at: 0,
            session_record: None,
            source: Source::Unknown,
        }
    }

    /// The JSON of `/oauth2/userinfo` (public, docs/src/reference/endpoints.md: the first four keys match oauth2-proxy).
    pub fn userinfo_json(&self) -> serde_json::Value {
        serde_json::json!({
            "user": self.login,
            "user_id": self.user_id,
            "email": self.email,
            "preferredUsername": self.login,
            "name": self.name,
            "avatar_url": self.avatar_url,
            "groups": self.groups,
            "roles": self.roles,
            "expires_at": self.expires_at,
        })
    }
}

/// A set of roles, as bits indexing the role names of the policy's role table (`policy::RoleTable`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RoleSet(u128);

impl RoleSet {
    pub fn with(self, bit: usize) -> RoleSet {
        RoleSet(self.0 | (1u128 << bit))
    }
    pub fn union(self, other: RoleSet) -> RoleSet {
        RoleSet(self.0 | other.0)
    }
    pub fn intersects(self, other: RoleSet) -> bool {
        self.0 & other.0 != 0
    }
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}
