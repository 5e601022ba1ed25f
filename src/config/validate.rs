//! Turn a parsed [`Config`] into [`Settings`], listing every problem with its key and fix.

use super::is_github_login;
use super::keys::{decode_key, SessionKey};
use super::routes::{check_routes, check_upstream, RouteSettings, UpstreamTarget};
use super::schema::{Config, GroupsHeader};
use super::secret::Secret;
use super::tokens::{check_assertion, check_tokens, AssertionSettings, TokenSettings};
use super::ConfigProblem;
use std::collections::BTreeSet;
use std::net::SocketAddr;
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
    /// `[upstream]`: the app for requests no route takes (`None`: they get 404).
    pub upstream: Option<UpstreamTarget>,
    pub routes: Vec<RouteSettings>,
    pub github: GithubSettings,
    pub session: SessionSettings,
    /// `[access]`, validated (the roles and rules are compiled by `policy::from_config`).
    pub access: AccessSettings,
    pub tokens: TokenSettings,
    pub assertion: AssertionSettings,
    pub log_level: String,
    /// `[pages]`, validated.
    pub pages: super::PagesSettings,
    pub log_format: super::LogFormat,
    /// `[log] access_log`: one INFO line per request on target `gatehouse::access`.
    pub access_log: bool,
    /// `server.admin_listen`: where `/metrics` is served; `None`: nowhere.
    pub admin_listen: Option<SocketAddr>,
    /// `server.tls_cert`/`tls_key`: the listener serves HTTPS (HTTP/2 and 1.1); `None`: http.
    pub tls: Option<super::TlsFiles>,
    /// `server.hsts`: the `Strict-Transport-Security` value (only ever set with `tls`).
    pub hsts: Option<String>,
    /// `server.http_redirect_listen`: a plain listener redirecting to the https `public_url`.
    pub http_redirect_listen: Option<SocketAddr>,
    /// `server.shutdown_grace`, whole seconds: how long SIGTERM waits for in-flight requests.
    pub shutdown_grace: Duration,
    /// `server.upgrade_sock`: where `run --upgrade` waits for the running process's sockets.
    pub upgrade_sock: std::path::PathBuf,
    /// `server.h2c`: the plain listener also accepts HTTP/2 with prior knowledge.
    pub h2c: bool,
    pub limits: LimitSettings,
    /// Settings that are valid but probably not what was meant: logged at start and on reload,
    /// printed by `check-config`.
    pub warnings: Vec<ConfigProblem>,
}

/// Per-client budgets (`[limits]` and the `server` keys about clients): rate limits (`0`: off),
/// header sizes, the header read timeout, and whose forwarded headers are believed.
#[derive(Debug, Clone)]
pub struct LimitSettings {
    pub auth_per_minute: u32,
    pub burst: u32,
    pub api_key_failures_per_minute: u32,
    pub trusted_proxies: Vec<ipnet::IpNet>,
    pub max_header_bytes: usize,
    pub client_timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct GithubSettings {
    pub client_id: String,
    pub client_secret: Secret,
    /// The app's other client secret during a rotation (`github.client_secret_previous`).
    pub client_secret_previous: Option<Secret>,
    pub web_url: Url,
    pub api_url: Url,
    pub scopes: Vec<String>,
    pub timeout: Duration,
    pub revoke_on_sign_out: bool,
    /// `None`: webhooks are off.
    pub webhook_secret: Option<Secret>,
    /// Also accepted while the webhook's secret is rotated (`github.webhook_secret_previous`).
    pub webhook_secret_previous: Option<Secret>,
}

#[derive(Debug, Clone)]
pub struct SessionSettings {
    pub keys: Vec<SessionKey>,
    pub cookie_name: String,
    pub ttl: Duration,
    pub secure: bool,
    pub domain: Option<String>,
    pub store: super::StoreSettings,
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
    let admin_listen = check_admin_listen(&config, listen, &mut problems);
    let log_format = check_log_format(&config.log.format, &mut problems);
    let public_url = parse_public_url(&config.server.public_url, &mut problems);
    let proxy_prefix = check_prefix(&config.server.proxy_prefix, &mut problems);
    let upstream = check_upstream(&config, &mut problems);
    let routes = check_routes(&config, &mut problems);
    let access = check_access(&config, &mut problems);
    route_admissions(&config, &mut problems);
    let github = check_github(&config, &unset_hint("a [github] value"), &mut problems);
    let session = check_session(
        &config,
        public_url.as_ref(),
        &unset_hint("session.secrets"),
        &mut problems,
    );
    let mut warnings = Vec::new();
    let session_keys = session.as_ref().map_or(&[][..], |s| &s.keys[..]);
    let tokens = check_tokens(&config, session_keys, &mut problems, &mut warnings);
    let pages = check_pages(&config, public_url.as_ref(), &mut problems);
    let assertion = check_assertion(&config, upstream.as_ref().map(|u| &u.url), &mut problems);
    let limits = check_limits(&config, &mut problems, &mut warnings);
    let listeners = super::listeners::check_listeners(
        &config,
        listen,
        admin_listen,
        public_url.as_ref(),
        &mut problems,
    );

    let threads = match config.server.threads {
        0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
        n => n,
    };

    match (listen, public_url, github, session) {
        (Some(listen), Some(public_url), Some(github), Some(session)) if problems.is_empty() => {
            Ok(Settings {
                listen,
                public_url,
                proxy_prefix,
                threads,
                upstream,
                routes,
                github,
                session,
                access,
                tokens,
                assertion,
                log_level: config.log.level.clone(),
                pages,
                log_format,
                access_log: config.log.access_log,
                admin_listen,
                limits,
                tls: listeners.tls,
                hsts: listeners.hsts,
                http_redirect_listen: listeners.http_redirect_listen,
                shutdown_grace: listeners.shutdown_grace,
                upgrade_sock: listeners.upgrade_sock,
                h2c: listeners.h2c,
                warnings,
                config,
            })
        }
        _ => Err(problems),
    }
}

fn check_admin_listen(
    config: &Config,
    listen: Option<SocketAddr>,
    problems: &mut Vec<ConfigProblem>,
) -> Option<SocketAddr> {
    let key = "server.admin_listen";
    let text = config.server.admin_listen.as_deref()?.trim();
    let addr = parse_listen(text, key, problems)?;
    if listen.is_some_and(|l| {
        l.port() == addr.port()
            && (l.ip() == addr.ip() || l.ip().is_unspecified() || addr.ip().is_unspecified())
    }) {
        problems.push(ConfigProblem::new(
            key,
            format!("`{text}` is the address of server.listen"),
            "give the admin listener its own port, e.g. \"127.0.0.1:9180\" (keep it off the public network)",
        ));
        return None;
    }
    Some(addr)
}

fn check_log_format(text: &str, problems: &mut Vec<ConfigProblem>) -> super::LogFormat {
    text.parse().unwrap_or_else(|()| {
        problems.push(ConfigProblem::new(
            "log.format",
            format!("`{text}` is not a log format"),
            "write \"pretty\" (lines for people) or \"json\" (one JSON object per line)",
        ));
        super::LogFormat::default()
    })
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

fn check_github(
    config: &Config,
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
    if !gh.webhook_secret_previous.is_empty() && gh.webhook_secret.is_empty() {
        problems.push(ConfigProblem::new(
            "github.webhook_secret_previous",
            "is set but github.webhook_secret is not",
            "put the webhook's current secret in github.webhook_secret; the previous one is only accepted beside it",
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
    // `read:org` is added by the GitHub client when the policy asks about orgs or teams.
    let scopes: Vec<String> = if gh.scopes.is_empty() {
        vec!["read:user".into(), "user:email".into()]
    } else {
        gh.scopes.clone()
    };
    Some(GithubSettings {
        client_id: gh.client_id.trim().to_string(),
        client_secret: gh.client_secret.clone(),
        client_secret_previous: set(&gh.client_secret_previous),
        web_url: web_url?,
        api_url: api_url?,
        scopes,
        timeout: gh.timeout.0,
        revoke_on_sign_out: gh.revoke_on_sign_out,
        webhook_secret: set(&gh.webhook_secret),
        webhook_secret_previous: set(&gh.webhook_secret_previous),
    })
}

/// A secret that is set (an empty one, e.g. from `${VAR:-}`, is unset).
fn set(secret: &Secret) -> Option<Secret> {
    (!secret.is_empty()).then(|| secret.clone())
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

/// `[pages]`: a name, a logo the pages' CSP can load (https or a data: image), a short note.
fn check_pages(
    config: &Config,
    public_url: Option<&Url>,
    problems: &mut Vec<ConfigProblem>,
) -> super::PagesSettings {
    let p = &config.pages;
    let text =
        |key: &str, value: &Option<String>, max: usize, problems: &mut Vec<ConfigProblem>| {
            let value = value.as_deref().map(str::trim).filter(|v| !v.is_empty())?;
            if value.chars().count() > max || value.chars().any(|c| c.is_control() && c != '\n') {
                problems.push(ConfigProblem::new(
                    format!("pages.{key}"),
                    format!("is longer than {max} characters or holds control characters"),
                    format!("write plain text of at most {max} characters"),
                ));
                return None;
            }
            Some(value.to_string())
        };
    let app_name = text("app_name", &p.app_name, 80, problems)
        .or_else(|| public_url.and_then(|u| u.host_str()).map(str::to_string))
        .unwrap_or_else(|| "This app".to_string());
    let message = text("message", &p.message, 500, problems);
    let logo_url = p
        .logo_url
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty());
    let logo_ok = |url: &str| {
        if let Some(data) = url.strip_prefix("data:image/") {
            let (kind, rest) = data.split_once([';', ',']).unwrap_or(("", ""));
            return ["png", "jpeg", "gif", "webp", "svg+xml"].contains(&kind)
                && !rest.is_empty()
                && url.len() <= 64 * 1024
                && !url.chars().any(|c| c.is_whitespace() || c == '"');
        }
        Url::parse(url).is_ok_and(|u| u.scheme() == "https" && u.host().is_some())
    };
    let logo_url = match logo_url {
        Some(url) if logo_ok(url) => Some(url.to_string()),
        Some(url) => {
            let shown: String = url.chars().take(60).collect();
            problems.push(ConfigProblem::new(
                "pages.logo_url",
                format!("`{shown}` is not an https URL or a data:image URL (at most 64 KiB)"),
                "use an https:// address of the image, or embed it as data:image/png;base64,… (the pages load images from nowhere else)",
            ));
            None
        }
        None => None,
    };
    super::PagesSettings {
        app_name,
        logo_url,
        message,
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
            Some(key) => keys.push(SessionKey(key)),
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
    let cookie_keys: Vec<[u8; 32]> = keys.iter().map(|k: &SessionKey| k.0).collect();
    let store = super::store::check_store(s, &cookie_keys, problems);
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
        store,
    })
}

fn check_limits(
    config: &Config,
    problems: &mut Vec<ConfigProblem>,
    warnings: &mut Vec<ConfigProblem>,
) -> LimitSettings {
    let (l, server) = (&config.limits, &config.server);
    let mut trusted_proxies = Vec::new();
    for (i, text) in server.trusted_proxies.iter().enumerate() {
        let text = text.trim();
        match text.parse::<ipnet::IpNet>() {
            Ok(net) => {
                if catches_all(&net) {
                    warnings.push(ConfigProblem::new(
                        format!("server.trusted_proxies[{i}]"),
                        format!("`{text}` trusts every client: anyone can pick the address their limits, lockouts and logs count them under, with X-Forwarded-For"),
                        "list only your proxies' addresses or networks, e.g. \"10.0.0.0/8\"",
                    ));
                }
                trusted_proxies.push(net.trunc())
            }
            Err(_) => match text.parse::<std::net::IpAddr>() {
                Ok(ip) => trusted_proxies.push(ipnet::IpNet::from(ip)),
                Err(_) => problems.push(ConfigProblem::new(
                    format!("server.trusted_proxies[{i}]"),
                    format!("`{text}` is not an IP address or CIDR"),
                    "write the proxy's address or network, e.g. \"10.0.0.0/8\" or \"192.0.2.7\"",
                )),
            },
        }
    }
    if server.max_header_bytes < 4096 {
        problems.push(ConfigProblem::new(
            "server.max_header_bytes",
            format!(
                "{} bytes would refuse ordinary browsers",
                server.max_header_bytes
            ),
            "use at least 4096; the default is 32768",
        ));
    }
    if server.client_timeout.0 < Duration::from_secs(1) {
        problems.push(ConfigProblem::new(
            "server.client_timeout",
            "must be at least 1s",
            "use a duration such as \"30s\" (the default)",
        ));
    }
    if l.auth_per_minute > 0 && l.burst == 0 {
        problems.push(ConfigProblem::new(
            "limits.burst",
            "a burst of 0 would refuse every sign-in",
            "use at least 1 (the default is 30), or auth_per_minute = 0 to turn the limit off",
        ));
    }
    LimitSettings {
        auth_per_minute: l.auth_per_minute,
        burst: l.burst,
        api_key_failures_per_minute: l.api_key_failures_per_minute,
        trusted_proxies,
        max_header_bytes: server.max_header_bytes,
        client_timeout: server.client_timeout.0,
    }
}

/// Does `net` hold every IPv4 or every IPv6 address (`0.0.0.0/0`, `::/0`, or every
/// IPv4-mapped address, `::ffff:0:0/96`)?
fn catches_all(net: &ipnet::IpNet) -> bool {
    let mapped_v4 = std::net::IpAddr::V6(std::net::Ipv4Addr::UNSPECIFIED.to_ipv6_mapped());
    net.prefix_len() == 0 || (net.prefix_len() <= 96 && net.contains(&mapped_v4))
}

/// Logins, org logins and `(org, team)` pairs, lower-cased; each bad entry is a problem under
/// `{section}.allowed_*[i]`.
#[allow(clippy::type_complexity)]
pub(crate) fn parse_allow_lists(
    section: &str,
    users: &[String],
    orgs: &[String],
    teams: &[String],
    problems: &mut Vec<ConfigProblem>,
) -> (Vec<String>, Vec<String>, Vec<(String, String)>) {
    let mut out = (Vec::new(), Vec::new(), Vec::new());
    for (i, login) in users.iter().enumerate() {
        let login = login.trim();
        if is_github_login(login) {
            out.0.push(login.to_ascii_lowercase());
        } else {
            problems.push(ConfigProblem::new(
                format!("{section}.allowed_users[{i}]"),
                format!("`{login}` is not a GitHub login"),
                "use the login as shown on github.com/LOGIN (letters, digits, -)",
            ));
        }
    }
    for (i, org) in orgs.iter().enumerate() {
        if is_github_login(org.trim()) {
            out.1.push(org.trim().to_ascii_lowercase());
        } else {
            problems.push(ConfigProblem::new(
                format!("{section}.allowed_orgs[{i}]"),
                format!("`{org}` is not a GitHub organization login"),
                "use the org's login as in github.com/ORG",
            ));
        }
    }
    for (i, team) in teams.iter().enumerate() {
        match team.trim().split_once('/') {
            Some((org, slug)) if is_github_login(org) && is_github_login(slug) => out
                .2
                .push((org.to_ascii_lowercase(), slug.to_ascii_lowercase())),
            _ => problems.push(ConfigProblem::new(
                format!("{section}.allowed_teams[{i}]"),
                format!("`{team}` is not \"org/team-slug\""),
                "write the org login and the team slug, e.g. \"databio/core\"",
            )),
        }
    }
    out.0.sort();
    out.0.dedup();
    out
}

/// Each route's own allow-lists, validated (`None`: the route sets none and `[access]` applies).
pub fn route_admissions(
    config: &Config,
    problems: &mut Vec<ConfigProblem>,
) -> Vec<Option<AccessSettings>> {
    config
        .routes
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let own =
                r.allowed_users.is_some() || r.allowed_orgs.is_some() || r.allowed_teams.is_some();
            own.then(|| {
                let (users, orgs, teams) = parse_allow_lists(
                    &format!("routes[{i}]"),
                    r.allowed_users.as_deref().unwrap_or_default(),
                    r.allowed_orgs.as_deref().unwrap_or_default(),
                    r.allowed_teams.as_deref().unwrap_or_default(),
                    problems,
                );
                AccessSettings {
                    allowed_users: users,
                    allowed_orgs: orgs,
                    allowed_teams: teams,
                    ..AccessSettings::default()
                }
            })
        })
        .collect()
}

/// `[access]`, validated; every problem goes to `problems`.
pub fn check_access(config: &Config, problems: &mut Vec<ConfigProblem>) -> AccessSettings {
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
    let (users, orgs, teams) = parse_allow_lists(
        "access",
        &a.allowed_users,
        &a.allowed_orgs,
        &a.allowed_teams,
        problems,
    );
    access.allowed_users = users;
    access.allowed_orgs = orgs;
    access.allowed_teams = teams;
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
