//! `session.postgres_*`, validated: how the PostgreSQL store connects. libpq's `sslmode` and
//! `sslrootcert` are read here (the driver knows neither `verify-full` nor `sslrootcert`) and
//! taken out of the URL the driver sees.

use super::schema::SessionSection;
use super::ConfigProblem;
use std::time::Duration;

/// How the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostgresTls {
    /// Plain TCP (`sslmode=disable`, or a loopback host without `sslmode`).
    Disable,
    /// TLS with the server's certificate chain and host name checked (`require` and
    /// `verify-full` alike: rustls never skips either check).
    VerifyFull,
}

/// How to reach PostgreSQL (validated config; the store connects with it).
#[derive(Clone)]
pub struct PostgresOptions {
    /// The URL without `sslmode` / `sslrootcert` (the driver parses the rest).
    pub url: String,
    pub tls: PostgresTls,
    /// PEM roots (`session.postgres_ca_file` or `sslrootcert`; unset: the system's).
    pub ca_pem: Option<Vec<u8>>,
    /// Bound on each call: waiting for a connection, connecting and the query.
    pub timeout: Duration,
    pub pool_size: usize,
    /// Where the tables live (a plain identifier).
    pub schema: String,
}

impl std::fmt::Debug for PostgresOptions {
    // The URL may carry a password: shown masked.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresOptions")
            .field("url", &super::redact_url(&self.url))
            .field("tls", &self.tls)
            .field("timeout", &self.timeout)
            .field("pool_size", &self.pool_size)
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

pub(super) fn has_postgres_keys(s: &SessionSection) -> bool {
    s.postgres_url
        .as_ref()
        .is_some_and(|u| !u.trim().is_empty())
}

const URL_FIX: &str = "write it as postgres://USER:PASSWORD@HOST:PORT/DATABASE?sslmode=verify-full";

pub(super) fn check_postgres(
    s: &SessionSection,
    problems: &mut Vec<ConfigProblem>,
) -> Option<PostgresOptions> {
    if !has_postgres_keys(s) {
        return None;
    }
    let text = s.postgres_url.as_deref().unwrap_or_default().trim();
    let key = "session.postgres_url";
    let shown = super::redact_url(text).into_owned();
    let Some(url) = url::Url::parse(text)
        .ok()
        .filter(|u| matches!(u.scheme(), "postgres" | "postgresql") && u.host().is_some())
    else {
        problems.push(ConfigProblem::new(
            key,
            format!("`{shown}` is not a postgres:// URL with a host"),
            URL_FIX,
        ));
        return None;
    };
    let mut ok = true;
    let (mut sslmode, mut rootcert) = (None, None);
    let mut kept = url.clone();
    kept.query_pairs_mut().clear();
    for (k, v) in url.query_pairs() {
        match &*k {
            "sslmode" => sslmode = Some(v.into_owned()),
            "sslrootcert" => rootcert = Some(v.into_owned()),
            _ => {
                kept.query_pairs_mut().append_pair(&k, &v);
            }
        }
    }
    if kept.query() == Some("") {
        kept.set_query(None);
    }
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        // `postgres:` is not a special scheme: its hosts stay text, addresses included.
        Some(url::Host::Domain(d)) => {
            d == "localhost"
                || d.trim_matches(|c| c == '[' || c == ']')
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        None => false,
    };
    let tls = match sslmode.as_deref() {
        None if loopback => PostgresTls::Disable,
        None | Some("require" | "verify-full") => PostgresTls::VerifyFull,
        Some("disable") => PostgresTls::Disable,
        Some(other) => {
            ok = false;
            problems.push(ConfigProblem::new(
                key,
                format!("sslmode={other} is not supported (`prefer` and `allow` may fall back to plain text; `verify-ca` skips the host name)"),
                "use sslmode=verify-full (or require, which Gatehouse checks as fully), or sslmode=disable on a private network",
            ));
            PostgresTls::Disable
        }
    };
    if let Err(e) = kept.as_str().parse::<tokio_postgres::Config>() {
        ok = false;
        problems.push(ConfigProblem::new(
            key,
            format!(
                "`{shown}` cannot be used: {}",
                super::redact_urls_in(&e.to_string())
            ),
            URL_FIX,
        ));
    }
    let ca_file = s.postgres_ca_file.clone().or(rootcert);
    let ca_pem = match &ca_file {
        Some(path) => match std::fs::read(path) {
            Ok(pem) => Some(pem),
            Err(e) => {
                ok = false;
                problems.push(ConfigProblem::new(
                    "session.postgres_ca_file",
                    format!("cannot read {path}: {e}"),
                    "give a PEM file with the CA certificate(s) that signed PostgreSQL's certificate",
                ));
                None
            }
        },
        None => None,
    };
    let timeout: Duration = s.postgres_timeout.0;
    if timeout.is_zero() || timeout > Duration::from_secs(30) {
        ok = false;
        problems.push(ConfigProblem::new(
            "session.postgres_timeout",
            "must be more than zero and at most 30s; every request with a session may wait this long when PostgreSQL stalls",
            "use something like \"500ms\" (the default) or \"2s\"",
        ));
    }
    if s.postgres_pool_size == 0 || s.postgres_pool_size > 1000 {
        ok = false;
        problems.push(ConfigProblem::new(
            "session.postgres_pool_size",
            "must be between 1 and 1000",
            "use something like 16 (the default); each replica opens at most this many connections",
        ));
    }
    let schema = &s.postgres_schema;
    let plain = schema.len() <= 63
        && schema.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && schema
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !plain {
        ok = false;
        problems.push(ConfigProblem::new(
            "session.postgres_schema",
            format!("`{schema}` is not a plain lower-case identifier"),
            "use lower-case letters, digits and _ (e.g. \"gatehouse\"), at most 63 characters",
        ));
    }
    ok.then(|| PostgresOptions {
        url: kept.to_string(),
        tls,
        ca_pem,
        timeout,
        pool_size: s.postgres_pool_size,
        schema: schema.clone(),
    })
}
