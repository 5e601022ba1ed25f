//! Configuration: TOML schema, `${VAR}` expansion, environment fallbacks and validation.
//!
//! `load` turns a file into [`Settings`], the validated, ready-to-use form every other module
//! reads. Validation collects every problem before failing, each naming the key and the fix.

mod duration;
mod expand;
mod keys;
mod listeners;
mod postgres;
mod problem;
mod redact;
#[cfg(test)]
mod reference;
mod routes;
mod schema;
mod secret;
mod sections;
mod store;
mod tokens;
mod unknown_key;
mod validate;

pub use duration::HumanDuration;
pub use keys::SessionKey;
pub use listeners::{load_tls_pair, TlsFiles};
pub use postgres::PostgresTls;
pub use problem::{ConfigError, ConfigProblem};
pub use redact::{redact_toml, redact_url, redact_urls_in};
pub use routes::{RouteSettings, UpstreamTarget};
pub use schema::{
    ApiKeySection, Config, GroupsHeader, OidcIssuerSection, RoleSection, RouteSection, RuleSection,
    SessionStore, TokenClientSection,
};
pub use secret::Secret;
pub use sections::{host_pattern, is_github_login, is_key_name, LogFormat, PagesSettings};
pub use store::{PostgresOptions, RedisOptions, StoreSettings};
pub use tokens::{
    parse_key_hash, AccessSigning, ApiKeyEntry, AssertionSettings, ClientEntry, OidcIssuerSettings,
    TokenSettings,
};
pub use validate::{
    check_access, route_admissions, AccessSettings, GithubSettings, LimitSettings, SessionSettings,
    Settings,
};

use std::path::Path;

/// Where `run` and `check-config` look when no `--config` is given.
pub fn default_config_path() -> String {
    std::env::var("GATEHOUSE_CONFIG").unwrap_or_else(|_| "gatehouse.toml".to_string())
}

/// Read, expand, overlay the environment and validate a config file's sections (its roles and
/// rules are compiled by `policy::from_config`; `runtime::load_file` does both and lists every
/// problem of either).
pub fn load_file(path: &Path) -> Result<Settings, ConfigError> {
    parse_file(path)?.validate()
}

/// Read, expand and overlay the environment, without validating.
pub fn parse_file(path: &Path) -> Result<Parsed, ConfigError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        source_name: name.clone(),
        problems: vec![ConfigProblem::new(
            "--config",
            format!("cannot read {name}: {e}"),
            "pass an existing file with --config FILE or set GATEHOUSE_CONFIG (config.example.toml is a starting point)",
        )],
    })?;
    parse_str(&text, &name, &|var| std::env::var(var).ok())
}

/// Parse config text with an explicit environment (tests pass their own) and validate its
/// sections.
pub fn load_str(
    text: &str,
    source_name: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Settings, ConfigError> {
    parse_str(text, source_name, env)?.validate()
}

/// A config as written, after `${VAR}` expansion and the environment overlay: what
/// validation and the policy compiler both read.
#[derive(Debug)]
pub struct Parsed {
    pub config: Config,
    /// Variables `${VAR}` named that are unset (validation mentions them in its hints).
    missing_vars: std::collections::BTreeSet<String>,
    pub source_name: String,
}

impl Parsed {
    /// Check every section; `Err` lists every problem with its key and fix.
    pub fn validate(self) -> Result<Settings, ConfigError> {
        let source_name = self.source_name;
        validate::validate(self.config, &self.missing_vars).map_err(|problems| ConfigError {
            source_name,
            problems,
        })
    }
}

/// Parse config text with an explicit environment, without validating.
pub fn parse_str(
    text: &str,
    source_name: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Parsed, ConfigError> {
    let fail = |problems: Vec<ConfigProblem>| ConfigError {
        source_name: source_name.to_string(),
        problems,
    };
    let mut value: toml::Value = toml::from_str(text).map_err(|e| {
        fail(vec![ConfigProblem::new(
            "(file)",
            format!("not valid TOML: {}", e.message()),
            format!("correct the syntax{}", line_hint(text, e.span())),
        )])
    })?;
    let missing_vars = expand::expand_value(&mut value, env).map_err(|e| {
        fail(vec![ConfigProblem::new(
            e.split(':').next().unwrap_or("(file)"),
            e.clone(),
            "write ${VAR} or ${VAR:-default}",
        )])
    })?;
    // The path of whatever serde refused, so the problem names the key in full.
    let mut config: Config = serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let message = e.into_inner().message().to_string();
        let problem = unknown_key::problem(&path, &message).unwrap_or_else(|| {
            let key = if path.is_empty() || path == "." {
                "(file)".to_string()
            } else {
                path
            };
            ConfigProblem::new(
                key,
                message,
                "remove or rename the key; config.example.toml lists every key",
            )
        });
        fail(vec![problem])
    })?;
    overlay_env(&mut config, env);
    Ok(Parsed {
        config,
        missing_vars,
        source_name: source_name.to_string(),
    })
}

fn line_hint(text: &str, span: Option<std::ops::Range<usize>>) -> String {
    match span {
        Some(r) => {
            let line = text[..r.start.min(text.len())].lines().count().max(1);
            format!(" near line {line}")
        }
        None => String::new(),
    }
}

/// `GH_CLIENT_ID`, `GH_CLIENT_SECRET`, `GITHUB_USERS`, `GATEHOUSE_SESSION_SECRET`,
/// `GATEHOUSE_STORE_SECRET`, `GATEHOUSE_REDIS_URL`, `GATEHOUSE_POSTGRES_URL` and
/// `GH_WEBHOOK_SECRET` apply even when
/// the file does not mention them, so a Kubernetes sidecar can keep secrets out of its ConfigMap.
fn overlay_env(config: &mut Config, env: &dyn Fn(&str) -> Option<String>) {
    let set = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    if config.github.client_id.trim().is_empty() {
        if let Some(v) = set("GH_CLIENT_ID") {
            config.github.client_id = v.trim().to_string();
        }
    }
    if config.github.client_secret.is_empty() {
        if let Some(v) = set("GH_CLIENT_SECRET") {
            config.github.client_secret = Secret::new(v.trim());
        }
    }
    if config.session.secrets.iter().all(Secret::is_empty) {
        if let Some(v) = set("GATEHOUSE_SESSION_SECRET") {
            config.session.secrets = vec![Secret::new(v.trim())];
        }
    }
    if config.github.webhook_secret.is_empty() {
        if let Some(v) = set("GH_WEBHOOK_SECRET") {
            config.github.webhook_secret = Secret::new(v.trim());
        }
    }
    if config.session.store_secrets.iter().all(Secret::is_empty) {
        if let Some(v) = set("GATEHOUSE_STORE_SECRET") {
            config.session.store_secrets = vec![Secret::new(v.trim())];
        }
    }
    if config
        .session
        .redis_url
        .as_deref()
        .is_none_or(|u| u.trim().is_empty())
    {
        if let Some(v) = set("GATEHOUSE_REDIS_URL") {
            config.session.redis_url = Some(v.trim().to_string());
        }
    }
    if config
        .session
        .postgres_url
        .as_deref()
        .is_none_or(|u| u.trim().is_empty())
    {
        if let Some(v) = set("GATEHOUSE_POSTGRES_URL") {
            config.session.postgres_url = Some(v.trim().to_string());
        }
    }
    if let Some(users) = set("GITHUB_USERS") {
        config.access.allowed_users.extend(
            users
                .split(|c: char| c == ',' || c.is_whitespace())
                .filter(|s| !s.is_empty())
                .map(str::to_string),
        );
    }
}

#[cfg(test)]
mod tests;
