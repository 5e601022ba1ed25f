//! The TOML schema. Field names here are the public config keys (see DESIGN.md).

use super::duration::HumanDuration;
use super::secret::Secret;
use serde::{Deserialize, Serialize};

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerSection,
    pub upstream: UpstreamSection,
    pub github: GithubSection,
    pub session: SessionSection,
    pub access: AccessSection,
    pub log: LogSection,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSection {
    pub listen: String,
    pub public_url: String,
    /// Path prefix of Gatehouse's own endpoints (oauth2-proxy calls it `proxy_prefix`).
    pub proxy_prefix: String,
    /// Worker threads; 0 means one per CPU.
    pub threads: usize,
}

impl Default for ServerSection {
    fn default() -> Self {
        ServerSection {
            listen: "127.0.0.1:4180".into(),
            public_url: "http://localhost:4180".into(),
            proxy_prefix: "/oauth2".into(),
            threads: 0,
        }
    }
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct UpstreamSection {
    pub url: String,
    pub connect_timeout: HumanDuration,
    pub read_timeout: HumanDuration,
}

impl Default for UpstreamSection {
    fn default() -> Self {
        UpstreamSection {
            url: "http://127.0.0.1:8080".into(),
            connect_timeout: HumanDuration::from_secs(5),
            read_timeout: HumanDuration::from_secs(60),
        }
    }
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct GithubSection {
    pub client_id: String,
    pub client_secret: Secret,
    pub web_url: String,
    pub api_url: String,
    /// Empty means the defaults: `read:user`, `user:email` (+ `read:org` when org/team rules exist).
    pub scopes: Vec<String>,
    pub timeout: HumanDuration,
}

impl Default for GithubSection {
    fn default() -> Self {
        GithubSection {
            client_id: String::new(),
            client_secret: Secret::default(),
            web_url: "https://github.com".into(),
            api_url: "https://api.github.com".into(),
            scopes: Vec::new(),
            timeout: HumanDuration::from_secs(10),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionStore {
    Cookie,
    Redis,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionSection {
    pub secrets: Vec<Secret>,
    pub cookie_name: String,
    pub ttl: HumanDuration,
    /// Unset: Secure exactly when `server.public_url` is https.
    pub cookie_secure: Option<bool>,
    pub cookie_domain: Option<String>,
    pub store: SessionStore,
}

impl Default for SessionSection {
    fn default() -> Self {
        SessionSection {
            secrets: Vec::new(),
            cookie_name: "_gatehouse".into(),
            ttl: HumanDuration::from_secs(7 * 24 * 3600),
            cookie_secure: None,
            cookie_domain: None,
            store: SessionStore::Cookie,
        }
    }
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccessSection {
    pub allowed_users: Vec<String>,
    pub allowed_user_ids: Vec<u64>,
    pub allowed_orgs: Vec<String>,
    pub allowed_teams: Vec<String>,
    pub allow_any_github_user: bool,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSection {
    /// `error`, `warn`, `info`, `debug`, `trace`, or a tracing filter; `RUST_LOG` wins.
    pub level: String,
}

impl Default for LogSection {
    fn default() -> Self {
        LogSection {
            level: "info".into(),
        }
    }
}
