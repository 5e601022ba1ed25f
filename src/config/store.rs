//! `[session] store` and its Redis keys, validated: where sessions and shared state live.

use super::keys::decode_key;
use super::schema::{SessionSection, SessionStore};
use super::ConfigProblem;
use std::time::Duration;

pub use super::postgres::PostgresOptions;

const GEN_STORE_SECRET_FIX: &str = "make one with `gatehouse gen-secret` and put it in session.store_secrets or GATEHOUSE_STORE_SECRET (not the same as session.secrets)";

/// Calls allowed to wait on Redis at once, per process; more get "unavailable" at once.
const MAX_WAITING_ON_REDIS: usize = 1024;

/// Where sessions and shared state live.
#[derive(Debug, Clone)]
pub struct StoreSettings {
    /// Sessions are records in the store and the cookie holds only their id.
    pub server_side: bool,
    /// `None` (and no `postgres`): this process's memory.
    pub redis: Option<RedisOptions>,
    /// `session.postgres_url`: shared state in PostgreSQL.
    pub postgres: Option<PostgresOptions>,
    /// Keys for GitHub tokens in session records (first encrypts). Empty with
    /// `store = "memory"` and none configured: a fresh key per process.
    pub keys: Vec<[u8; 32]>,
}

/// How to reach Redis (validated config; the store connects with it).
#[derive(Clone)]
pub struct RedisOptions {
    /// `redis://` or `rediss://`; with Sentinel, only its credentials and db are used.
    pub url: Option<String>,
    pub sentinel_urls: Vec<String>,
    pub sentinel_master: Option<String>,
    /// Redis Cluster seed nodes; when set, every key carries one hash tag (see the store).
    pub cluster_urls: Vec<String>,
    /// PEM roots for `rediss://` (unset: the system's).
    pub ca_pem: Option<Vec<u8>>,
    /// Bound on each call, connecting included.
    pub timeout: Duration,
    /// Calls allowed to wait on Redis at once; more are refused at once.
    pub max_waiting: usize,
    pub prefix: String,
}

impl std::fmt::Debug for RedisOptions {
    // URLs may carry a password: shown masked.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use super::redact_url;
        let sentinels: Vec<_> = self.sentinel_urls.iter().map(|u| redact_url(u)).collect();
        f.debug_struct("RedisOptions")
            .field("url", &self.url.as_deref().map(redact_url))
            .field("sentinel_urls", &sentinels)
            .field("sentinel_master", &self.sentinel_master)
            .field(
                "cluster_urls",
                &self
                    .cluster_urls
                    .iter()
                    .map(|u| redact_url(u))
                    .collect::<Vec<_>>(),
            )
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl StoreSettings {
    /// Is shared state kept outside this process (Redis or PostgreSQL)?
    pub fn shared(&self) -> bool {
        self.redis.is_some() || self.postgres.is_some()
    }
}

pub(super) fn check_store(
    s: &SessionSection,
    cookie_keys: &[[u8; 32]],
    problems: &mut Vec<ConfigProblem>,
) -> StoreSettings {
    let redis = check_redis(s, problems);
    let postgres = super::postgres::check_postgres(s, problems);
    if redis.is_some() && postgres.is_some() {
        problems.push(ConfigProblem::new(
            "session.postgres_url",
            "is set and so is Redis; shared state lives in one store",
            "keep either session.postgres_url or the redis_* and sentinel_* keys",
        ));
    }
    if s.store == SessionStore::Postgres
        && postgres.is_none()
        && !super::postgres::has_postgres_keys(s)
    {
        problems.push(ConfigProblem::new(
            "session.postgres_url",
            "session.store = \"postgres\" needs to know where PostgreSQL is",
            "set session.postgres_url (or GATEHOUSE_POSTGRES_URL), e.g. \"postgres://gatehouse:PASSWORD@db.internal:5432/gatehouse?sslmode=verify-full\"",
        ));
    }
    if s.store == SessionStore::Redis && super::postgres::has_postgres_keys(s) && !has_redis_keys(s)
    {
        problems.push(ConfigProblem::new(
            "session.store",
            "is \"redis\" but only session.postgres_url is set",
            "use store = \"postgres\", or set session.redis_url",
        ));
    }
    if s.store == SessionStore::Redis && redis.is_none() && !has_redis_keys(s) {
        problems.push(ConfigProblem::new(
            "session.redis_url",
            "session.store = \"redis\" needs to know where Redis is",
            "set session.redis_url (or GATEHOUSE_REDIS_URL), e.g. \"redis://127.0.0.1:6379\", or session.sentinel_urls with session.sentinel_master",
        ));
    }
    if s.store == SessionStore::Memory && super::postgres::has_postgres_keys(s) {
        problems.push(ConfigProblem::new(
            "session.store",
            "is \"memory\" but session.postgres_url is set too",
            "use store = \"postgres\" to keep sessions in PostgreSQL, or remove session.postgres_url",
        ));
    }
    if s.store == SessionStore::Postgres
        && has_redis_keys(s)
        && !super::postgres::has_postgres_keys(s)
    {
        problems.push(ConfigProblem::new(
            "session.store",
            "is \"postgres\" but only Redis keys are set",
            "use store = \"redis\", or set session.postgres_url",
        ));
    }
    if s.store == SessionStore::Memory && has_redis_keys(s) {
        problems.push(ConfigProblem::new(
            "session.store",
            "is \"memory\" but Redis keys are set too",
            "use store = \"redis\" to keep sessions in Redis, or remove the redis_* and sentinel_* keys",
        ));
    }
    let server_side = s.store != SessionStore::Cookie;
    let mut keys = Vec::new();
    for (i, secret) in s.store_secrets.iter().filter(|v| !v.is_empty()).enumerate() {
        match decode_key(secret.expose()) {
            Some(key) if cookie_keys.contains(&key) => problems.push(ConfigProblem::new(
                format!("session.store_secrets[{i}]"),
                "is also a session secret; the store key must be separate from the cookie key",
                GEN_STORE_SECRET_FIX,
            )),
            Some(key) => keys.push(key),
            None => problems.push(ConfigProblem::new(
                format!("session.store_secrets[{i}]"),
                "is not 32 bytes of base64",
                GEN_STORE_SECRET_FIX,
            )),
        }
    }
    if matches!(s.store, SessionStore::Redis | SessionStore::Postgres)
        && keys.is_empty()
        && s.store_secrets.iter().all(|v| v.is_empty())
    {
        problems.push(ConfigProblem::new(
            "session.store_secrets",
            "a shared session store (\"redis\" or \"postgres\") keeps GitHub tokens outside this process and needs a key to encrypt them with",
            GEN_STORE_SECRET_FIX,
        ));
    }
    StoreSettings {
        server_side,
        redis,
        postgres,
        keys,
    }
}

fn has_redis_keys(s: &SessionSection) -> bool {
    s.redis_url.as_ref().is_some_and(|u| !u.trim().is_empty())
        || !s.sentinel_urls.is_empty()
        || s.sentinel_master.is_some()
        || !s.redis_cluster_urls.is_empty()
}

fn check_redis(s: &SessionSection, problems: &mut Vec<ConfigProblem>) -> Option<RedisOptions> {
    if !has_redis_keys(s) {
        return None;
    }
    let url = s
        .redis_url
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty());
    let mut ok = true;
    if let Some(url) = url {
        ok &= redis_url_ok(url, "session.redis_url", problems);
    }
    for (i, u) in s.sentinel_urls.iter().enumerate() {
        ok &= redis_url_ok(u.trim(), &format!("session.sentinel_urls[{i}]"), problems);
    }
    match (s.sentinel_urls.is_empty(), &s.sentinel_master) {
        (true, Some(_)) => {
            ok = false;
            problems.push(ConfigProblem::new(
                "session.sentinel_urls",
                "session.sentinel_master is set but no sentinel is listed",
                "list the sentinels, e.g. sentinel_urls = [\"redis://10.0.0.1:26379\", \"redis://10.0.0.2:26379\"]",
            ));
        }
        (false, None) => {
            ok = false;
            problems.push(ConfigProblem::new(
                "session.sentinel_master",
                "sentinels are listed but not the name of the master they watch",
                "set sentinel_master to the name in the sentinels' `sentinel monitor NAME …` line (often \"mymaster\")",
            ));
        }
        (true, None) if url.is_none() && s.redis_cluster_urls.is_empty() => ok = false,
        _ => {}
    }
    ok &= cluster_ok(s, url.is_some(), problems);
    if !s.sentinel_urls.is_empty() && s.redis_ca_file.is_some() {
        ok = false;
        problems.push(ConfigProblem::new(
            "session.redis_ca_file",
            "is not supported with Sentinel in this version (the sentinels and the master would be checked against the system's roots only)",
            "add the CA to the system's trust store and leave redis_ca_file out, or use redis_url without Sentinel",
        ));
    }
    let ca_pem = match &s.redis_ca_file {
        Some(path) => match std::fs::read(path) {
            Ok(pem) => Some(pem),
            Err(e) => {
                problems.push(ConfigProblem::new(
                    "session.redis_ca_file",
                    format!("cannot read {path}: {e}"),
                    "give a PEM file with the CA certificate(s) that signed Redis's certificate",
                ));
                None
            }
        },
        None => None,
    };
    let timeout: Duration = s.redis_timeout.0;
    if timeout.is_zero() || timeout > Duration::from_secs(30) {
        ok = false;
        problems.push(ConfigProblem::new(
            "session.redis_timeout",
            "must be more than zero and at most 30s; every request with a session may wait this long when Redis stalls",
            "use something like \"500ms\" (the default) or \"2s\"",
        ));
    }
    ok.then(|| RedisOptions {
        url: url.map(str::to_string),
        sentinel_urls: s
            .sentinel_urls
            .iter()
            .map(|u| u.trim().to_string())
            .collect(),
        sentinel_master: s.sentinel_master.clone(),
        cluster_urls: s
            .redis_cluster_urls
            .iter()
            .map(|u| u.trim().to_string())
            .collect(),
        ca_pem,
        timeout,
        max_waiting: MAX_WAITING_ON_REDIS,
        prefix: s.redis_prefix.clone(),
    })
}

/// `session.redis_cluster_urls`: valid URLs, one scheme (the client takes TLS from the first
/// node for all), and neither Sentinel nor a single `redis_url` beside them.
fn cluster_ok(s: &SessionSection, has_url: bool, problems: &mut Vec<ConfigProblem>) -> bool {
    let urls = &s.redis_cluster_urls;
    if urls.is_empty() {
        return true;
    }
    let mut ok = true;
    for (i, u) in urls.iter().enumerate() {
        ok &= redis_url_ok(
            u.trim(),
            &format!("session.redis_cluster_urls[{i}]"),
            problems,
        );
    }
    let tls = urls
        .iter()
        .filter(|u| u.trim().starts_with("rediss://"))
        .count();
    if ok && tls != 0 && tls != urls.len() {
        ok = false;
        problems.push(ConfigProblem::new(
            "session.redis_cluster_urls",
            "mixes redis:// and rediss:// nodes",
            "use rediss:// for every node of a TLS cluster, redis:// for every node otherwise",
        ));
    }
    if has_url || !s.sentinel_urls.is_empty() || s.sentinel_master.is_some() {
        ok = false;
        problems.push(ConfigProblem::new(
            "session.redis_cluster_urls",
            "is set together with session.redis_url or Sentinel",
            "keep only redis_cluster_urls for a Redis Cluster (put the password in its URLs), or leave it out",
        ));
    }
    ok
}

fn redis_url_ok(text: &str, key: &str, problems: &mut Vec<ConfigProblem>) -> bool {
    let ok = url::Url::parse(text)
        .is_ok_and(|u| matches!(u.scheme(), "redis" | "rediss") && u.host().is_some());
    if !ok {
        problems.push(ConfigProblem::new(
            key,
            format!(
                "`{}` is not a redis:// or rediss:// URL",
                super::redact_url(text)
            ),
            "write it as redis://[:PASSWORD@]HOST:PORT[/DB] (rediss:// for TLS)",
        ));
    }
    ok
}
