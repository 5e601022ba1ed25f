//! Turn a parsed [`Config`] into [`Settings`], listing every problem with its key and fix.

use super::schema::{Config, GroupsHeader, SessionStore};
use super::secret::Secret;
use super::tokens::{check_assertion, check_tokens, AssertionSettings, TokenSettings};
use super::ConfigProblem;
use crate::policy::{is_github_login, Policy};
use base64::Engine;
use std::collections::BTreeSet;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;
use url::Url;

const GEN_SECRET_FIX: &str = "make one with `gatehouse gen-secret` and put it in session.secrets or GATEHOUSE_SESSION_SECRET";

/// The validated configuration, in the shapes the rest of the program uses.
#[derive(Debug)]
pub struct Settings {
    /// The config as written (after expansion), kept for `check-config` output.
    pub config: Config,
    pub listen: SocketAddr,
    pub public_url: Url,
    pub proxy_prefix: String,
    pub threads: usize,
    pub upstream: UpstreamTarget,
    pub github: GithubSettings,
    pub session: SessionSettings,
    pub access: AccessSettings,
    /// Roles and rules, compiled.
    pub policy: Policy,
    pub tokens: TokenSettings,
    pub assertion: AssertionSettings,
    pub log_level: String,
}

#[derive(Debug, Clone)]
pub struct UpstreamTarget {
    pub url: Url,
    pub addr: SocketAddr,
    pub tls: bool,
    pub sni: String,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct GithubSettings {
    pub client_id: String,
    pub client_secret: Secret,
    pub web_url: Url,
    pub api_url: Url,
    pub scopes: Vec<String>,
    pub timeout: Duration,
}

/// A 32-byte session key; never printed.
#[derive(Clone)]
pub struct SessionKey(pub [u8; 32]);

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKey(hidden)")
    }
}

#[derive(Debug, Clone)]
pub struct SessionSettings {
    pub keys: Vec<SessionKey>,
    pub cookie_name: String,
    pub ttl: Duration,
    pub secure: bool,
    pub domain: Option<String>,
}

#[derive(Debug, Clone)]
pub struct AccessSettings {
    /// Lower-cased logins.
    pub allowed_users: Vec<String>,
    pub allowed_user_ids: Vec<u64>,
    /// Lower-cased org logins.
    pub allowed_orgs: Vec<String>,
    /// Lower-cased (org, team-slug) pairs.
    pub allowed_teams: Vec<(String, String)>,
    pub allow_any_github_user: bool,
    /// Lower-cased logins.
    pub admin_users: Vec<String>,
    pub default_roles: Vec<String>,
    pub groups_header: GroupsHeader,
    pub refresh_interval: Duration,
    pub stale_grace: Duration,
    pub case_sensitive_paths: bool,
}

impl Default for AccessSettings {
    fn default() -> Self {
        let defaults = super::schema::AccessSection::default();
        AccessSettings {
            allowed_users: Vec::new(),
            allowed_user_ids: Vec::new(),
            allowed_orgs: Vec::new(),
            allowed_teams: Vec::new(),
            allow_any_github_user: false,
            admin_users: Vec::new(),
            default_roles: defaults.default_roles,
            groups_header: defaults.groups_header,
            refresh_interval: defaults.refresh_interval.0,
            stale_grace: defaults.stale_grace.0,
            case_sensitive_paths: false,
        }
    }
}

pub fn validate(
    config: Config,
    missing_vars: &BTreeSet<String>,
) -> Result<Settings, Vec<ConfigProblem>> {
    let mut problems = Vec::new();
    let unset_hint = |field: &str| -> String {
        if missing_vars.is_empty() {
            String::new()
        } else {
            let vars: Vec<&str> = missing_vars.iter().map(String::as_str).collect();
            format!(
                " ({field} refers to unset environment variable(s): {})",
                vars.join(", ")
            )
        }
    };

    let listen = parse_listen(&config.server.listen, "server.listen", &mut problems);
    let public_url = parse_public_url(&config.server.public_url, &mut problems);
    let proxy_prefix = check_prefix(&config.server.proxy_prefix, &mut problems);
    let upstream = parse_upstream(&config, &mut problems);
    let access = check_access(&config, &mut problems);
    let policy = crate::policy::compile(&access, &config.roles, &config.rules, &mut problems);
    let github = check_github(
        &config,
        policy.membership.needs_read_org(),
        &unset_hint("a [github] value"),
        &mut problems,
    );
    let session = check_session(
        &config,
        public_url.as_ref(),
        &unset_hint("session.secrets"),
        &mut problems,
    );
    let tokens = match &session {
        Some(session) => check_tokens(&config, &session.keys, &mut problems),
        None => check_tokens(&config, &[], &mut problems),
    };
    check_granted_roles(&tokens, &policy, &mut problems);
    let assertion = check_assertion(&config, upstream.as_ref().map(|u| &u.url), &mut problems);

    let threads = match config.server.threads {
        0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
        n => n,
    };

    match (listen, public_url, upstream, github, session) {
        (Some(listen), Some(public_url), Some(upstream), Some(github), Some(session))
            if problems.is_empty() =>
        {
            Ok(Settings {
                listen,
                public_url,
                proxy_prefix,
                threads,
                upstream,
                github,
                session,
                access,
                policy,
                tokens,
                assertion,
                log_level: config.log.level.clone(),
                config,
            })
        }
        _ => Err(problems),
    }
}

fn parse_listen(text: &str, key: &str, problems: &mut Vec<ConfigProblem>) -> Option<SocketAddr> {
    match text.parse::<SocketAddr>() {
        Ok(addr) => Some(addr),
        Err(_) => {
            problems.push(ConfigProblem::new(
                key,
                format!("`{text}` is not an address to listen on"),
                "write IP:PORT, e.g. \"127.0.0.1:4180\" or \"0.0.0.0:4180\"",
            ));
            None
        }
    }
}

fn parse_public_url(text: &str, problems: &mut Vec<ConfigProblem>) -> Option<Url> {
    let key = "server.public_url";
    let fix = "write the URL people open, e.g. \"https://app.example.com\" (the callback is public_url + \"/oauth2/callback\")";
    match Url::parse(text) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
            if url.path() != "/" || url.query().is_some() {
                problems.push(ConfigProblem::new(
                    key,
                    format!("`{text}` has a path or query; Gatehouse serves a whole origin"),
                    "give only scheme, host and port",
                ));
                return None;
            }
            Some(url)
        }
        _ => {
            problems.push(ConfigProblem::new(
                key,
                format!("`{text}` is not an http(s) URL"),
                fix,
            ));
            None
        }
    }
}

fn check_prefix(text: &str, problems: &mut Vec<ConfigProblem>) -> String {
    let trimmed = text.trim_end_matches('/');
    let ok = trimmed.starts_with('/')
        && trimmed.len() > 1
        && trimmed[1..].split('/').all(|seg| {
            !seg.is_empty()
                && seg
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        });
    if !ok {
        problems.push(ConfigProblem::new(
            "server.proxy_prefix",
            format!("`{text}` is not a path prefix"),
            "write a path like \"/oauth2\" (letters, digits, - _ .)",
        ));
    }
    trimmed.to_string()
}

fn parse_upstream(config: &Config, problems: &mut Vec<ConfigProblem>) -> Option<UpstreamTarget> {
    let key = "upstream.url";
    let text = config.upstream.url.trim();
    let url = match Url::parse(text) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => u,
        _ => {
            problems.push(ConfigProblem::new(
                key,
                format!("`{text}` is not an http(s) URL"),
                "write where the app listens, e.g. \"http://127.0.0.1:8080\"",
            ));
            return None;
        }
    };
    if url.path() != "/" || url.query().is_some() {
        problems.push(ConfigProblem::new(
            key,
            format!("`{text}` has a path or query; requests keep their own path"),
            "give only scheme, host and port",
        ));
        return None;
    }
    let host = url
        .host_str()
        .unwrap_or_default()
        .trim_matches(['[', ']'])
        .to_string();
    let port = url.port_or_known_default().unwrap_or(80);
    // Resolved once at start so no request ever waits on DNS.
    let addr = match (host.as_str(), port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
    {
        Some(addr) => addr,
        None => {
            problems.push(ConfigProblem::new(
                key,
                format!("cannot resolve host `{host}`"),
                "use an IP address or a name this machine can resolve",
            ));
            return None;
        }
    };
    if config.upstream.connect_timeout.0.is_zero() || config.upstream.read_timeout.0.is_zero() {
        problems.push(ConfigProblem::new(
            "upstream.connect_timeout / upstream.read_timeout",
            "a timeout of zero would fail every request",
            "use a positive duration such as \"5s\"",
        ));
    }
    Some(UpstreamTarget {
        tls: url.scheme() == "https",
        sni: host,
        addr,
        url,
        connect_timeout: config.upstream.connect_timeout.0,
        read_timeout: config.upstream.read_timeout.0,
    })
}

fn check_github(
    config: &Config,
    needs_read_org: bool,
    unset_hint: &str,
    problems: &mut Vec<ConfigProblem>,
) -> Option<GithubSettings> {
    let gh = &config.github;
    let register = "register an OAuth app at https://github.com/settings/applications/new (callback URL = server.public_url + \"/oauth2/callback\")";
    if gh.client_id.trim().is_empty() {
        problems.push(ConfigProblem::new(
            "github.client_id",
            format!(
                "GitHub OAuth is not configured: set github.client_id or GH_CLIENT_ID{unset_hint}"
            ),
            register,
        ));
    }
    if gh.client_secret.is_empty() {
        problems.push(ConfigProblem::new(
            "github.client_secret",
            format!("GitHub OAuth is not configured: set github.client_secret or GH_CLIENT_SECRET{unset_hint}"),
            register,
        ));
    }
    let web_url = parse_base_url(&gh.web_url, "github.web_url", problems);
    let api_url = parse_base_url(&gh.api_url, "github.api_url", problems);
    if gh.timeout.0.is_zero() {
        problems.push(ConfigProblem::new(
            "github.timeout",
            "a timeout of zero would fail every sign-in",
            "use a positive duration such as \"10s\"",
        ));
    }
    let mut scopes: Vec<String> = if gh.scopes.is_empty() {
        vec!["read:user".into(), "user:email".into()]
    } else {
        gh.scopes.clone()
    };
    if needs_read_org && !scopes.iter().any(|s| s == "read:org") {
        scopes.push("read:org".into());
    }
    Some(GithubSettings {
        client_id: gh.client_id.trim().to_string(),
        client_secret: gh.client_secret.clone(),
        web_url: web_url?,
        api_url: api_url?,
        scopes,
        timeout: gh.timeout.0,
    })
}

/// A base URL with a trailing slash, so `join("user")` keeps any path prefix like `/api/v3`.
fn parse_base_url(text: &str, key: &str, problems: &mut Vec<ConfigProblem>) -> Option<Url> {
    let with_slash = format!("{}/", text.trim().trim_end_matches('/'));
    match Url::parse(&with_slash) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Some(u),
        _ => {
            problems.push(ConfigProblem::new(
                key,
                format!("`{text}` is not an http(s) URL"),
                "leave it out for github.com, or give your GitHub Enterprise URL (web: https://ghe.example.com, api: https://ghe.example.com/api/v3)",
            ));
            None
        }
    }
}

fn check_session(
    config: &Config,
    public_url: Option<&Url>,
    unset_hint: &str,
    problems: &mut Vec<ConfigProblem>,
) -> Option<SessionSettings> {
    let s = &config.session;
    let mut keys = Vec::new();
    let secrets: Vec<&Secret> = s.secrets.iter().filter(|v| !v.is_empty()).collect();
    if secrets.is_empty() {
        problems.push(ConfigProblem::new(
            "session.secrets",
            format!("no session secret is set{unset_hint}"),
            GEN_SECRET_FIX,
        ));
    }
    for (i, secret) in secrets.iter().enumerate() {
        match decode_key(secret.expose()) {
            Some(key) => keys.push(super::SessionKey(key)),
            None => problems.push(ConfigProblem::new(
                format!("session.secrets[{i}]"),
                "is not 32 bytes of base64",
                GEN_SECRET_FIX,
            )),
        }
    }
    let name_ok = !s.cookie_name.is_empty()
        && s.cookie_name.len() <= 64
        && s.cookie_name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
    if !name_ok {
        problems.push(ConfigProblem::new(
            "session.cookie_name",
            format!("`{}` is not a usable cookie name", s.cookie_name),
            "use letters, digits, `_`, `-` or `.` (the default is \"_gatehouse\")",
        ));
    }
    if s.ttl.0 < Duration::from_secs(60) {
        problems.push(ConfigProblem::new(
            "session.ttl",
            "is shorter than a minute; people would be signed out while they work",
            "use a duration such as \"12h\" or \"7d\"",
        ));
    }
    if s.store == SessionStore::Redis {
        problems.push(ConfigProblem::new(
            "session.store",
            "\"redis\" is not available in this version",
            "use store = \"cookie\" (the default)",
        ));
    }
    if let Some(domain) = &s.cookie_domain {
        let ok = !domain.is_empty()
            && domain
                .trim_start_matches('.')
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-.".contains(c));
        if !ok {
            problems.push(ConfigProblem::new(
                "session.cookie_domain",
                format!("`{domain}` is not a domain name"),
                "leave it out (cookie for this host only) or write e.g. \".example.com\"",
            ));
        }
    }
    let secure = s
        .cookie_secure
        .unwrap_or_else(|| public_url.is_some_and(|u| u.scheme() == "https"));
    Some(SessionSettings {
        keys,
        cookie_name: s.cookie_name.clone(),
        ttl: s.ttl.0,
        secure,
        domain: s.cookie_domain.clone(),
    })
}

/// Roles that OIDC issuers and API keys grant must be roles the policy knows.
fn check_granted_roles(tokens: &TokenSettings, policy: &Policy, problems: &mut Vec<ConfigProblem>) {
    let granted = tokens
        .oidc_issuers
        .iter()
        .enumerate()
        .flat_map(|(i, o)| {
            o.roles
                .iter()
                .map(move |r| (format!("tokens.oidc_issuers[{i}].roles"), r))
        })
        .chain(tokens.api_keys.iter().flat_map(|k| {
            k.roles
                .iter()
                .map(move |r| (format!("api_keys[{}].roles", k.name), r))
        }));
    for (key, role) in granted {
        if policy.roles.index(role).is_none() {
            problems.push(ConfigProblem::new(
                key,
                format!("`{role}` is not a role"),
                "define it in [roles.NAME] or access.default_roles, or use \"admin\"",
            ));
        }
    }
}

/// Accepts standard or URL-safe base64, with or without padding.
pub fn decode_key(text: &str) -> Option<[u8; 32]> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let text = text.trim();
    [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(text).ok())
        .and_then(|bytes| <[u8; 32]>::try_from(bytes.as_slice()).ok())
}

fn check_access(config: &Config, problems: &mut Vec<ConfigProblem>) -> AccessSettings {
    let a = &config.access;
    let mut access = AccessSettings {
        allow_any_github_user: a.allow_any_github_user,
        allowed_user_ids: a.allowed_user_ids.clone(),
        default_roles: a
            .default_roles
            .iter()
            .map(|r| r.trim().to_string())
            .collect(),
        groups_header: a.groups_header,
        refresh_interval: a.refresh_interval.0,
        stale_grace: a.stale_grace.0,
        case_sensitive_paths: a.case_sensitive_paths,
        ..Default::default()
    };
    for (i, login) in a.admin_users.iter().enumerate() {
        let login = login.trim();
        if is_github_login(login) {
            access.admin_users.push(login.to_ascii_lowercase());
        } else {
            problems.push(ConfigProblem::new(
                format!("access.admin_users[{i}]"),
                format!("`{login}` is not a GitHub login"),
                "use the login as shown on github.com/LOGIN (letters, digits, -)",
            ));
        }
    }
    if a.refresh_interval.0 < Duration::from_secs(1) {
        problems.push(ConfigProblem::new(
            "access.refresh_interval",
            "must be at least 1s; memberships would be re-checked on every request",
            "use a duration such as \"1h\" (the default) or \"10m\"",
        ));
    }
    for (i, login) in a.allowed_users.iter().enumerate() {
        let login = login.trim();
        if is_github_login(login) {
            access.allowed_users.push(login.to_ascii_lowercase());
        } else {
            problems.push(ConfigProblem::new(
                format!("access.allowed_users[{i}]"),
                format!("`{login}` is not a GitHub login"),
                "use the login as shown on github.com/LOGIN (letters, digits, -)",
            ));
        }
    }
    for (i, org) in a.allowed_orgs.iter().enumerate() {
        if is_github_login(org.trim()) {
            access.allowed_orgs.push(org.trim().to_ascii_lowercase());
        } else {
            problems.push(ConfigProblem::new(
                format!("access.allowed_orgs[{i}]"),
                format!("`{org}` is not a GitHub organization login"),
                "use the org's login as in github.com/ORG",
            ));
        }
    }
    for (i, team) in a.allowed_teams.iter().enumerate() {
        match team.trim().split_once('/') {
            Some((org, slug)) if is_github_login(org) && is_github_login(slug) => access
                .allowed_teams
                .push((org.to_ascii_lowercase(), slug.to_ascii_lowercase())),
            _ => problems.push(ConfigProblem::new(
                format!("access.allowed_teams[{i}]"),
                format!("`{team}` is not \"org/team-slug\""),
                "write the org login and the team slug, e.g. \"databio/core\"",
            )),
        }
    }
    access.allowed_users.sort();
    access.allowed_users.dedup();
    let empty = a.allowed_users.is_empty()
        && a.allowed_user_ids.is_empty()
        && a.allowed_orgs.is_empty()
        && a.allowed_teams.is_empty();
    if empty && !a.allow_any_github_user {
        problems.push(ConfigProblem::new(
            "access.allowed_users",
            "nobody is allowed in: the allow-lists are empty",
            "list logins in access.allowed_users (or GITHUB_USERS), orgs in access.allowed_orgs, teams in access.allowed_teams, or set access.allow_any_github_user = true to admit every GitHub account",
        ));
    }
    access
}
