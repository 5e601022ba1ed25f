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
    /// `[roles.NAME]`: who holds each role besides `admin_users` and `default_roles`.
    pub roles: std::collections::BTreeMap<String, RoleSection>,
    /// `[[rules]]`: ordered; the first that matches a request decides.
    pub rules: Vec<RuleSection>,
    pub tokens: TokensSection,
    /// `[[api_keys]]`: machine-to-machine credentials, sent as HTTP Basic `name:key`.
    pub api_keys: Vec<ApiKeySection>,
    pub log: LogSection,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokensSection {
    pub access_ttl: HumanDuration,
    pub refresh_ttl: HumanDuration,
    /// "HS256" (with `hmac_secret`) or "ES256" (with `signing_key_file`).
    pub signing_alg: String,
    /// base64 of at least 32 bytes; unset: derived from the first session secret.
    pub hmac_secret: Option<Secret>,
    /// PKCS#8 PEM of an EC P-256 key, for ES256.
    pub signing_key_file: Option<String>,
    /// Where `/oauth2/start?client_redirect_uri=` may send codes (exact match).
    pub client_redirect_uris: Vec<String>,
    /// Also allow `http://127.0.0.1:ANY` and `http://localhost:ANY` (RFC 8252 native apps).
    pub allow_loopback: bool,
    /// Accept raw GitHub tokens as `Authorization: Bearer` / `token`.
    pub accept_github_tokens: bool,
    pub oidc_issuers: Vec<OidcIssuerSection>,
}

impl Default for TokensSection {
    fn default() -> Self {
        TokensSection {
            access_ttl: HumanDuration::from_secs(15 * 60),
            refresh_ttl: HumanDuration::from_secs(24 * 3600),
            signing_alg: "HS256".into(),
            hmac_secret: None,
            signing_key_file: None,
            client_redirect_uris: Vec::new(),
            allow_loopback: false,
            accept_github_tokens: false,
            oidc_issuers: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OidcIssuerSection {
    pub issuer: String,
    pub audience: String,
    pub jwks_url: String,
    /// Each claim must equal this value, e.g. `repository = "databio/pephub"`.
    #[serde(default)]
    pub claims: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default = "default_leeway")]
    pub leeway: HumanDuration,
}

fn default_leeway() -> HumanDuration {
    HumanDuration::from_secs(30)
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeySection {
    pub name: String,
    /// `sha256$SALT$HASH` as printed by `gatehouse hash-key`; never the key itself.
    pub hash: Secret,
    #[serde(default)]
    pub roles: Vec<String>,
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
    /// The `aud` of `X-Gatehouse-Jwt-Assertion`; default: the upstream URL.
    pub name: Option<String>,
    /// Send `X-Gatehouse-Jwt-Assertion` (a signed identity) with every proxied request.
    pub jwt_assertion: bool,
    /// PKCS#8 PEM of an EC P-256 key for the assertion; unset: a new key at every start.
    pub assertion_key_file: Option<String>,
}

impl Default for UpstreamSection {
    fn default() -> Self {
        UpstreamSection {
            url: "http://127.0.0.1:8080".into(),
            connect_timeout: HumanDuration::from_secs(5),
            read_timeout: HumanDuration::from_secs(60),
            name: None,
            jwt_assertion: true,
            assertion_key_file: None,
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

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccessSection {
    pub allowed_users: Vec<String>,
    pub allowed_user_ids: Vec<u64>,
    pub allowed_orgs: Vec<String>,
    pub allowed_teams: Vec<String>,
    pub allow_any_github_user: bool,
    /// Logins that get the `admin` role.
    pub admin_users: Vec<String>,
    /// Roles every admitted user gets.
    pub default_roles: Vec<String>,
    /// What `X-Forwarded-Groups` lists: "policy" (the orgs and teams the config mentions) or
    /// "all" (every org and team of the user, listed at sign-in).
    pub groups_header: GroupsHeader,
    /// Memberships older than this are re-checked at GitHub on the next request.
    pub refresh_interval: HumanDuration,
    /// How long the last known memberships stay usable while GitHub cannot be asked.
    pub stale_grace: HumanDuration,
    /// Rule paths match ignoring ASCII case unless this is true.
    pub case_sensitive_paths: bool,
}

impl Default for AccessSection {
    fn default() -> Self {
        AccessSection {
            allowed_users: Vec::new(),
            allowed_user_ids: Vec::new(),
            allowed_orgs: Vec::new(),
            allowed_teams: Vec::new(),
            allow_any_github_user: false,
            admin_users: Vec::new(),
            default_roles: vec!["viewer".into()],
            groups_header: GroupsHeader::Policy,
            refresh_interval: HumanDuration::from_secs(3600),
            stale_grace: HumanDuration::from_secs(15 * 60),
            case_sensitive_paths: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupsHeader {
    #[default]
    Policy,
    All,
}

#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RoleSection {
    pub users: Vec<String>,
    pub orgs: Vec<String>,
    /// "org/team-slug"
    pub teams: Vec<String>,
}

/// One `[[rules]]` entry as written; `policy::rules` compiles and checks it.
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuleSection {
    /// Glob: `*` is one segment, `**` any number, `{owner}` names a segment.
    pub path: Option<String>,
    pub path_regex: Option<String>,
    pub methods: Vec<String>,
    /// `app.example.com` or `*.example.com`.
    pub host: Option<String>,
    /// "public", "authenticated" or "deny".
    pub policy: Option<String>,
    /// `role:NAME`, `org:ORG`, `team:ORG/SLUG`, `user:LOGIN`.
    pub allow: Option<Vec<String>>,
    /// Methods allowed only to the owner named by the path's `{owner}` segment.
    pub owner_methods: Vec<String>,
    /// Answer 404 instead of 403.
    pub hide: bool,
    /// Let `%2F`, `%5C`, `%00` and `;` through on paths this rule decides.
    pub allow_encoded_path: bool,
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
