//! The TOML schema. Field names here are the public config keys (docs/src/reference/config.md, generated from config/reference.rs).

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
    /// `[[routes]]`: several apps behind one gate; the longest matching prefix wins.
    pub routes: Vec<RouteSection>,
    /// `[[api_keys]]`: machine-to-machine credentials, sent as HTTP Basic `name:key`.
    pub api_keys: Vec<ApiKeySection>,
    pub log: LogSection,
    /// `[pages]`: what the sign-in and "who am I" pages show.
    pub pages: PagesSection,
    pub limits: LimitsSection,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokensSection {
    pub access_ttl: HumanDuration,
    pub refresh_ttl: HumanDuration,
    /// "HS256" (with `hmac_secret`) or "ES256" (with `signing_key_files`).
    pub signing_alg: String,
    /// base64 of at least 32 bytes; unset: one key derived from each session secret.
    pub hmac_secret: Option<Secret>,
    /// PKCS#8 PEM of an EC P-256 key, for ES256 (one key; `signing_key_files` takes several).
    pub signing_key_file: Option<String>,
    /// PEMs of EC P-256 keys for ES256: the first signs, all verify and are in the JWKS.
    pub signing_key_files: Vec<String>,
    /// Where `/oauth2/start?client_redirect_uri=` may send codes (exact match).
    pub client_redirect_uris: Vec<String>,
    /// Also allow `http://127.0.0.1:ANY` and `http://localhost:ANY` (RFC 8252 native apps).
    pub allow_loopback: bool,
    /// Accept raw GitHub tokens as `Authorization: Bearer` / `token`.
    pub accept_github_tokens: bool,
    pub oidc_issuers: Vec<OidcIssuerSection>,
    /// `[[tokens.clients]]`: OAuth 2.0 clients registered by id.
    pub clients: Vec<TokenClientSection>,
}

/// One registered OAuth 2.0 client (RFC 6749 §2).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TokenClientSection {
    pub client_id: String,
    /// Exact redirect URIs; a loopback one matches any port (RFC 8252 §7.3).
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// `sha256$SALT$HASH` of the secret (`gatehouse hash-key`): a confidential client.
    #[serde(default)]
    pub client_secret_hash: Option<Secret>,
}

impl Default for TokensSection {
    fn default() -> Self {
        TokensSection {
            access_ttl: HumanDuration::from_secs(15 * 60),
            refresh_ttl: HumanDuration::from_secs(24 * 3600),
            signing_alg: "HS256".into(),
            hmac_secret: None,
            signing_key_file: None,
            signing_key_files: Vec::new(),
            client_redirect_uris: Vec::new(),
            allow_loopback: false,
            accept_github_tokens: false,
            oidc_issuers: Vec::new(),
            clients: Vec::new(),
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
    /// `IP:PORT` of the admin listener (`GET /metrics`); unset: none.
    pub admin_listen: Option<String>,
    /// CIDRs of proxies whose `X-Forwarded-For/-Proto/-Host` are believed.
    pub trusted_proxies: Vec<String>,
    /// Requests whose header fields total more bytes than this get 431.
    pub max_header_bytes: usize,
    /// How long a client may take to send a request's header (and an idle keep-alive
    /// connection stays open).
    pub client_timeout: HumanDuration,
    /// PEM certificate chain: with `tls_key`, the listener serves HTTPS (HTTP/2 and 1.1).
    pub tls_cert: Option<String>,
    /// PEM private key of `tls_cert`.
    pub tls_key: Option<String>,
    /// `Strict-Transport-Security` value sent with every response over TLS; unset: none.
    pub hsts: Option<String>,
    /// `IP:PORT` of a plain-http listener that answers everything with 308 to the https
    /// `public_url` (same path and query); unset: none.
    pub http_redirect_listen: Option<String>,
    /// On SIGTERM, how long in-flight requests may take to finish before the process exits.
    pub shutdown_grace: HumanDuration,
    /// Unix socket over which `gatehouse run --upgrade` takes the listening sockets from the
    /// running process (which hands them over on SIGQUIT).
    pub upgrade_sock: String,
    /// Accept HTTP/2 without TLS (prior knowledge) on the plain listener, besides HTTP/1.1.
    pub h2c: bool,
}

impl Default for ServerSection {
    fn default() -> Self {
        ServerSection {
            listen: "127.0.0.1:4180".into(),
            public_url: "http://localhost:4180".into(),
            proxy_prefix: "/oauth2".into(),
            threads: 0,
            admin_listen: None,
            trusted_proxies: Vec::new(),
            max_header_bytes: 32 * 1024,
            client_timeout: HumanDuration::from_secs(30),
            tls_cert: None,
            tls_key: None,
            hsts: None,
            http_redirect_listen: None,
            shutdown_grace: HumanDuration::from_secs(10),
            upgrade_sock: "/run/gatehouse/upgrade.sock".into(),
            h2c: false,
        }
    }
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct UpstreamSection {
    /// Unset: `http://127.0.0.1:8080` when there are no `[[routes]]`; with routes, requests no
    /// route matches get 404.
    pub url: Option<String>,
    pub connect_timeout: HumanDuration,
    pub read_timeout: HumanDuration,
    /// The `aud` of `X-Gatehouse-Jwt-Assertion`; default: the upstream URL.
    pub name: Option<String>,
    /// Send `X-Gatehouse-Jwt-Assertion` (a signed identity) with every proxied request.
    pub jwt_assertion: bool,
    /// PKCS#8 PEM of an EC P-256 key for the assertion; unset: a new key at every start.
    pub assertion_key_file: Option<String>,
    /// PEMs of EC P-256 keys for the assertion: the first signs, all are in the JWKS.
    pub assertion_key_files: Vec<String>,
    /// PEM CA bundle to verify an https upstream with (default: the system's roots).
    pub ca_file: Option<String>,
    /// Speak HTTP/2 without TLS (prior knowledge) to an `http://` upstream, e.g. a gRPC server.
    pub h2c: bool,
}

/// One `[[routes]]` entry: which requests go to which app, with its own rules and lists.
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RouteSection {
    /// Shown in logs and metrics, and the `aud` of its identity assertion.
    pub name: Option<String>,
    /// `app.example.com` or `*.example.com`; unset: any host.
    pub host: Option<String>,
    /// `/grafana`: this path and everything under it; unset: `/`.
    pub path_prefix: Option<String>,
    pub upstream: String,
    pub connect_timeout: Option<HumanDuration>,
    pub read_timeout: Option<HumanDuration>,
    pub ca_file: Option<String>,
    /// Speak HTTP/2 without TLS to this route's `http://` upstream.
    pub h2c: bool,
    /// When any of these is set, they replace `[access]`'s allow-lists on this route.
    pub allowed_users: Option<Vec<String>>,
    pub allowed_orgs: Option<Vec<String>>,
    pub allowed_teams: Option<Vec<String>>,
    /// Checked before the top-level `[[rules]]`, for requests on this route.
    pub rules: Vec<RuleSection>,
}

impl Default for UpstreamSection {
    fn default() -> Self {
        UpstreamSection {
            url: None,
            connect_timeout: HumanDuration::from_secs(5),
            read_timeout: HumanDuration::from_secs(60),
            name: None,
            jwt_assertion: true,
            assertion_key_file: None,
            assertion_key_files: Vec::new(),
            ca_file: None,
            h2c: false,
        }
    }
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct GithubSection {
    pub client_id: String,
    pub client_secret: Secret,
    /// The app's other client secret while it is rotated (GitHub keeps both valid until one is
    /// deleted): a code exchange GitHub refuses with one is tried once with the other.
    pub client_secret_previous: Secret,
    pub web_url: String,
    pub api_url: String,
    /// Empty means the defaults: `read:user`, `user:email` (+ `read:org` when org/team rules exist).
    pub scopes: Vec<String>,
    pub timeout: HumanDuration,
    /// At sign-out, also revoke the GitHub token at GitHub.
    pub revoke_on_sign_out: bool,
    /// Verifies `X-Hub-Signature-256` on `POST /oauth2/github/webhook`; unset: no webhooks.
    pub webhook_secret: Secret,
    /// A second webhook secret accepted while the webhook's secret is rotated.
    pub webhook_secret_previous: Secret,
}

impl Default for GithubSection {
    fn default() -> Self {
        GithubSection {
            client_id: String::new(),
            client_secret: Secret::default(),
            client_secret_previous: Secret::default(),
            web_url: "https://github.com".into(),
            api_url: "https://api.github.com".into(),
            scopes: Vec::new(),
            timeout: HumanDuration::from_secs(10),
            revoke_on_sign_out: false,
            webhook_secret: Secret::default(),
            webhook_secret_previous: Secret::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionStore {
    /// The whole session in the (encrypted) cookie.
    Cookie,
    /// Server-side sessions in this process's memory (one process only).
    Memory,
    /// Server-side sessions in Redis, shared by replicas.
    Redis,
    /// Server-side sessions in PostgreSQL, shared by replicas.
    Postgres,
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
    /// `redis://` or `rediss://`. Also usable with `store = "cookie"`: then codes, refresh
    /// tokens, sign-in states and the revocation list are shared through Redis.
    pub redis_url: Option<String>,
    /// Redis Sentinel addresses (`redis://host:26379`), with `sentinel_master`.
    pub sentinel_urls: Vec<String>,
    pub sentinel_master: Option<String>,
    /// Redis Cluster seed nodes (`redis://host:port`, or all `rediss://`).
    pub redis_cluster_urls: Vec<String>,
    /// PEM CA bundle for `rediss://` (default: the system's roots).
    pub redis_ca_file: Option<String>,
    /// Bound on each Redis call, connecting included.
    pub redis_timeout: HumanDuration,
    /// Prefix of every key Gatehouse writes (several gates can share one Redis).
    pub redis_prefix: String,
    /// `postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=require|verify-full]`. Also usable
    /// with `store = "cookie"`, like `redis_url`.
    pub postgres_url: Option<String>,
    /// PEM CA bundle the server's certificate is checked against (default: the system's roots).
    pub postgres_ca_file: Option<String>,
    /// Bound on each PostgreSQL call, waiting for a connection and connecting included.
    pub postgres_timeout: HumanDuration,
    /// Connections each process keeps to PostgreSQL at most.
    pub postgres_pool_size: usize,
    /// The schema Gatehouse's tables live in (several gates can share one database).
    pub postgres_schema: String,
    /// base64 of 32 bytes: encrypts GitHub tokens in server-side session records; first
    /// encrypts, all decrypt. Must differ from `secrets`.
    pub store_secrets: Vec<Secret>,
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
            redis_url: None,
            sentinel_urls: Vec::new(),
            sentinel_master: None,
            redis_cluster_urls: Vec::new(),
            redis_ca_file: None,
            redis_timeout: HumanDuration::from_millis(500),
            redis_prefix: "gatehouse:".into(),
            postgres_url: None,
            postgres_ca_file: None,
            postgres_timeout: HumanDuration::from_millis(500),
            postgres_pool_size: 16,
            postgres_schema: "gatehouse".into(),
            store_secrets: Vec::new(),
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
    /// Let `%2F`, `%5C`, `%00`, `%25`, escaped control bytes, `;` and `\` through on paths
    /// this rule decides.
    pub allow_encoded_path: bool,
    /// Let segments ending in a dot or a space (`/admin./x`) through on paths this rule decides.
    pub allow_folded_segments: bool,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSection {
    /// `error`, `warn`, `info`, `debug`, `trace`, or a tracing filter; `RUST_LOG` wins.
    pub level: String,
    /// "pretty" (human-readable lines) or "json" (one object per line).
    pub format: String,
    /// One INFO line per request on target `gatehouse::access`.
    pub access_log: bool,
}

impl Default for LogSection {
    fn default() -> Self {
        LogSection {
            level: "info".into(),
            format: "pretty".into(),
            access_log: true,
        }
    }
}

/// `[limits]`: per-client-IP rate limits; `0` turns one off.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsSection {
    /// Requests a minute to the sign-in and token endpoints (`/oauth2/start`, `callback`,
    /// `token`, `refresh`, `pat`).
    pub auth_per_minute: u32,
    /// How many of those may come at once before the per-minute rate applies.
    pub burst: u32,
    /// Failed API-key attempts a minute; past it every API-key attempt gets 429.
    pub api_key_failures_per_minute: u32,
}

impl Default for LimitsSection {
    fn default() -> Self {
        LimitsSection {
            auth_per_minute: 120,
            burst: 30,
            api_key_failures_per_minute: 10,
        }
    }
}

/// `[pages]`: branding of the sign-in and "who am I" pages.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PagesSection {
    /// Unset: the host of `server.public_url`.
    pub app_name: Option<String>,
    /// `https://…` or `data:image/…` only (the pages load nothing else).
    pub logo_url: Option<String>,
    /// Short plain text shown on the sign-in page.
    pub message: Option<String>,
}
