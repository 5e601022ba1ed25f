//! Validation of `[upstream]` and `[[routes]]`: where requests go.

use super::schema::{Config, RouteSection};
use super::ConfigProblem;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;
use url::Url;

/// One app behind the gate, resolved at start so no request waits on DNS.
#[derive(Debug, Clone)]
pub struct UpstreamTarget {
    pub url: Url,
    pub addr: SocketAddr,
    pub tls: bool,
    pub sni: String,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    /// PEM CA bundle for an https upstream; `None`: the system's roots.
    pub ca_file: Option<String>,
    /// HTTP/2 with prior knowledge to a cleartext upstream.
    pub h2c: bool,
}

#[derive(Debug, Clone)]
pub struct RouteSettings {
    pub name: String,
    /// Lower-case host, or `.example.com` for `*.example.com`; `None`: any host.
    pub host: Option<String>,
    /// Without a trailing slash; `""` for `/`.
    pub prefix: String,
    pub target: UpstreamTarget,
}

const URL_FIX: &str = "write where the app listens, e.g. \"http://127.0.0.1:8080\"";

/// `[upstream] url` (the single-app shorthand): `None` when routes exist and it is unset.
pub fn check_upstream(
    config: &Config,
    problems: &mut Vec<ConfigProblem>,
) -> Option<UpstreamTarget> {
    let u = &config.upstream;
    let text = match (&u.url, config.routes.is_empty()) {
        (Some(url), _) => url.clone(),
        (None, true) => "http://127.0.0.1:8080".to_string(),
        (None, false) => return None,
    };
    parse_target(
        &text,
        "upstream",
        u.connect_timeout.0,
        u.read_timeout.0,
        u.ca_file.clone(),
        u.h2c,
        problems,
    )
}

pub fn check_routes(config: &Config, problems: &mut Vec<ConfigProblem>) -> Vec<RouteSettings> {
    let mut routes = Vec::new();
    for (i, r) in config.routes.iter().enumerate() {
        let key = format!("routes[{i}]");
        let u = &config.upstream;
        let target = parse_target(
            &r.upstream,
            &key,
            r.connect_timeout
                .as_ref()
                .map_or(u.connect_timeout.0, |d| d.0),
            r.read_timeout.as_ref().map_or(u.read_timeout.0, |d| d.0),
            r.ca_file.clone().or_else(|| u.ca_file.clone()),
            r.h2c,
            problems,
        );
        let host = r
            .host
            .as_deref()
            .and_then(|h| parse_host(h, &key, problems));
        let prefix = match &r.path_prefix {
            None => String::new(),
            Some(p)
                if p.starts_with('/')
                    && !p.contains(['?', '#', '*', '%', '\\'])
                    && !p.split('/').any(|s| s == ".." || s == ".") =>
            {
                p.trim_end_matches('/').to_ascii_lowercase()
            }
            Some(p) => {
                problems.push(ConfigProblem::new(
                    format!("{key}.path_prefix"),
                    format!("`{p}` is not a plain path prefix"),
                    "write a path like \"/grafana\" (no wildcards, no . or .. segments)",
                ));
                continue;
            }
        };
        if let Some(target) = target {
            routes.push(RouteSettings {
                name: route_name(r, i),
                host,
                prefix,
                target,
            });
        }
    }
    routes
}

fn route_name(r: &RouteSection, i: usize) -> String {
    match (&r.name, &r.host, &r.path_prefix) {
        (Some(n), _, _) => n.clone(),
        (None, Some(h), Some(p)) => format!("{h}{p}"),
        (None, Some(h), None) => h.clone(),
        (None, None, Some(p)) => p.clone(),
        (None, None, None) => format!("route-{}", i + 1),
    }
}

fn parse_host(host: &str, key: &str, problems: &mut Vec<ConfigProblem>) -> Option<String> {
    let pattern = super::host_pattern(host);
    if pattern.is_none() {
        problems.push(ConfigProblem::new(
            format!("{key}.host"),
            format!("`{host}` is not a host name"),
            "write \"app.example.com\" or \"*.example.com\" (no port, no scheme)",
        ));
    }
    pattern
}

fn parse_target(
    text: &str,
    key: &str,
    connect_timeout: Duration,
    read_timeout: Duration,
    ca_file: Option<String>,
    h2c: bool,
    problems: &mut Vec<ConfigProblem>,
) -> Option<UpstreamTarget> {
    let field = if key == "upstream" {
        "upstream.url".to_string()
    } else {
        format!("{key}.upstream")
    };
    let text = text.trim();
    let url = match Url::parse(text) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => u,
        _ => {
            problems.push(ConfigProblem::new(
                field,
                format!("`{text}` is not an http(s) URL"),
                URL_FIX,
            ));
            return None;
        }
    };
    if url.path() != "/" || url.query().is_some() {
        problems.push(ConfigProblem::new(
            field,
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
    let Some(addr) = (host.as_str(), port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
    else {
        problems.push(ConfigProblem::new(
            field,
            format!("cannot resolve host `{host}`"),
            "use an IP address or a name this machine can resolve",
        ));
        return None;
    };
    if connect_timeout.is_zero() || read_timeout.is_zero() {
        problems.push(ConfigProblem::new(
            format!("{key}.connect_timeout / {key}.read_timeout"),
            "a timeout of zero would fail every request",
            "use a positive duration such as \"5s\"",
        ));
    }
    if let Some(ca) = &ca_file {
        if let Err(e) = std::fs::read(ca) {
            problems.push(ConfigProblem::new(
                format!("{key}.ca_file"),
                format!("cannot read {ca}: {e}"),
                "give a PEM file with the CA certificate(s) that signed the upstream's certificate",
            ));
        }
    }
    if h2c && url.scheme() == "https" {
        let h2c_key = if key == "upstream" {
            "upstream.h2c".to_string()
        } else {
            format!("{key}.h2c")
        };
        problems.push(ConfigProblem::new(
            h2c_key,
            format!("h2c is HTTP/2 without TLS, but `{text}` is https"),
            "give the app's http:// address, or remove h2c",
        ));
    }
    Some(UpstreamTarget {
        h2c,
        tls: url.scheme() == "https",
        sni: host,
        addr,
        url,
        connect_timeout,
        read_timeout,
        ca_file,
    })
}
