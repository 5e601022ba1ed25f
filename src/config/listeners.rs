//! `[server]` keys about how the listeners run: TLS termination, HSTS, the plain-http redirect
//! listener, the SIGTERM drain time and the socket an upgrade takes the listeners over.

use super::schema::Config;
use super::ConfigProblem;
use std::net::SocketAddr;
use std::time::Duration;
use url::Url;

/// A key's trimmed value; unset and `""` are the same.
fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// `server.tls_cert` / `server.tls_key`, checked to load as a matching pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: String,
    pub key: String,
}

/// The validated listener keys.
#[derive(Debug, Clone, Default)]
pub(super) struct ListenerSettings {
    pub tls: Option<TlsFiles>,
    pub hsts: Option<String>,
    pub http_redirect_listen: Option<SocketAddr>,
    pub shutdown_grace: Duration,
    pub upgrade_sock: std::path::PathBuf,
    pub h2c: bool,
}

const CERT_FIX: &str = "give the path of a PEM file with the server certificate first, then its intermediates (e.g. Let's Encrypt's fullchain.pem)";
const KEY_FIX: &str = "give the path of the PEM private key of server.tls_cert (PKCS#8, PKCS#1 or SEC1; e.g. Let's Encrypt's privkey.pem)";

pub(super) fn check_listeners(
    config: &Config,
    listen: Option<SocketAddr>,
    admin_listen: Option<SocketAddr>,
    public_url: Option<&Url>,
    problems: &mut Vec<ConfigProblem>,
) -> ListenerSettings {
    let s = &config.server;
    let (cert, key) = (given(&s.tls_cert), given(&s.tls_key));
    // TLS was asked for (even if its files are broken): the keys that depend on it are judged.
    let tls_on = cert.is_some() || key.is_some();
    let tls = match (cert, key) {
        (Some(cert), Some(key)) => check_pair(cert, key, problems),
        (None, None) => None,
        (Some(_), None) => {
            problems.push(ConfigProblem::new(
                "server.tls_key",
                "server.tls_cert is set but server.tls_key is not",
                KEY_FIX,
            ));
            None
        }
        (None, Some(_)) => {
            problems.push(ConfigProblem::new(
                "server.tls_cert",
                "server.tls_key is set but server.tls_cert is not",
                CERT_FIX,
            ));
            None
        }
    };
    if tls_on {
        if let Some(url) = public_url.filter(|u| u.scheme() != "https") {
            let mut https = url.clone();
            let _ = https.set_scheme("https");
            problems.push(ConfigProblem::new(
                "server.public_url",
                format!("`{}` is http, but the listener serves HTTPS (server.tls_cert): GitHub would send people back to a URL that does not answer, and the session cookie would not be Secure", s.public_url),
                format!("write the https URL people open, e.g. \"{}\"", https.as_str().trim_end_matches('/')),
            ));
        }
    }
    let hsts = given(&s.hsts).and_then(|v| check_hsts(v, tls_on, problems));
    if s.h2c && tls_on {
        problems.push(ConfigProblem::new(
            "server.h2c",
            "h2c is HTTP/2 without TLS, but the listener serves HTTPS (server.tls_cert), where HTTP/2 is offered by ALPN already",
            "remove server.h2c (or the TLS keys, if a proxy in front terminates TLS)",
        ));
    }
    let http_redirect_listen = given(&s.http_redirect_listen)
        .and_then(|text| check_redirect_listen(text, tls_on, listen, admin_listen, problems));
    let grace = s.shutdown_grace.0;
    // Pingora counts whole seconds.
    let shutdown_grace = Duration::from_secs(grace.as_secs() + u64::from(grace.subsec_nanos() > 0));
    ListenerSettings {
        tls,
        hsts,
        http_redirect_listen,
        shutdown_grace,
        upgrade_sock: check_upgrade_sock(&s.upgrade_sock, problems),
        h2c: s.h2c && !tls_on,
    }
}

/// Longest path a Unix socket address holds (`sun_path` is 108 bytes with its final NUL).
const MAX_SOCKET_PATH: usize = 107;

/// `server.upgrade_sock`: an absolute path short enough for a Unix socket address.
fn check_upgrade_sock(text: &str, problems: &mut Vec<ConfigProblem>) -> std::path::PathBuf {
    let key = "server.upgrade_sock";
    let fix = "give an absolute path in a directory only Gatehouse's user can write, e.g. \"/run/gatehouse/upgrade.sock\" (systemd: RuntimeDirectory=gatehouse)";
    let path = std::path::PathBuf::from(text);
    if !path.is_absolute() || path.file_name().is_none() {
        problems.push(ConfigProblem::new(
            key,
            format!("`{text}` is not an absolute file path"),
            fix,
        ));
    } else if text.len() > MAX_SOCKET_PATH {
        problems.push(ConfigProblem::new(
            key,
            format!(
                "is {} bytes long; a Unix socket path holds at most {MAX_SOCKET_PATH}",
                text.len()
            ),
            fix,
        ));
    }
    path
}

/// The certificate chain and key load, and the key is the certificate's.
fn check_pair(cert: &str, key: &str, problems: &mut Vec<ConfigProblem>) -> Option<TlsFiles> {
    let found = pair_problems(cert, key);
    if found.is_empty() {
        return Some(TlsFiles {
            cert: cert.to_string(),
            key: key.to_string(),
        });
    }
    problems.extend(found);
    None
}

/// Check again, at start, that the TLS files load as a pair (they may have changed since the
/// config was read; Pingora would panic on them).
pub fn load_tls_pair(files: &TlsFiles) -> Result<(), String> {
    let found = pair_problems(&files.cert, &files.key);
    if found.is_empty() {
        return Ok(());
    }
    Err(found
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; "))
}

fn pair_problems(cert: &str, key: &str) -> Vec<ConfigProblem> {
    use rustls::pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};
    let certs = match std::fs::read(cert) {
        Err(e) => Err(format!("cannot read `{cert}`: {e}")),
        Ok(pem) => match CertificateDer::pem_slice_iter(&pem).collect::<Result<Vec<_>, _>>() {
            Ok(certs) if certs.is_empty() => Err(format!("`{cert}` holds no PEM certificate")),
            Ok(certs) => Ok(certs),
            Err(e) => Err(format!("`{cert}` is not a PEM certificate file ({e})")),
        },
    };
    let private = match std::fs::read(key) {
        Err(e) => Err(format!("cannot read `{key}`: {e}")),
        Ok(pem) => PrivateKeyDer::from_pem_slice(&pem)
            .map_err(|e| format!("`{key}` holds no PEM private key ({e})")),
    };
    let (certs, private) = match (certs, private) {
        (Ok(c), Ok(k)) => (c, k),
        (c, k) => {
            let mut problems = Vec::new();
            if let Err(e) = c {
                problems.push(ConfigProblem::new("server.tls_cert", e, CERT_FIX));
            }
            if let Err(e) = k {
                problems.push(ConfigProblem::new("server.tls_key", e, KEY_FIX));
            }
            return problems;
        }
    };
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let built = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())
        .and_then(|b| {
            b.with_no_client_auth()
                .with_single_cert(certs, private)
                .map_err(|e| e.to_string())
        });
    match built {
        Ok(_) => Vec::new(),
        Err(e) => vec![ConfigProblem::new(
            "server.tls_key",
            format!("`{key}` cannot serve `{cert}`: {e}"),
            "give the private key that belongs to the certificate (the first one in server.tls_cert)",
        )],
    }
}

fn check_hsts(value: &str, tls_on: bool, problems: &mut Vec<ConfigProblem>) -> Option<String> {
    let key = "server.hsts";
    if !tls_on {
        problems.push(ConfigProblem::new(
            key,
            "Strict-Transport-Security is only sent over TLS, and the listener is plain http",
            "set server.tls_cert and server.tls_key, or remove server.hsts (behind a TLS-terminating proxy, let that proxy send the header)",
        ));
        return None;
    }
    let max_age_ok = value.split(';').any(|d| {
        d.trim()
            .to_ascii_lowercase()
            .strip_prefix("max-age=")
            .is_some_and(|n| {
                !n.is_empty() && n.trim_matches('"').bytes().all(|b| b.is_ascii_digit())
            })
    });
    if !max_age_ok || http::HeaderValue::from_str(value).is_err() {
        problems.push(ConfigProblem::new(
            key,
            format!("`{value}` is not a Strict-Transport-Security value"),
            "write e.g. \"max-age=31536000; includeSubDomains\" (max-age in seconds is required)",
        ));
        return None;
    }
    Some(value.to_string())
}

fn check_redirect_listen(
    text: &str,
    tls_on: bool,
    listen: Option<SocketAddr>,
    admin_listen: Option<SocketAddr>,
    problems: &mut Vec<ConfigProblem>,
) -> Option<SocketAddr> {
    let key = "server.http_redirect_listen";
    let Ok(addr) = text.parse::<SocketAddr>() else {
        problems.push(ConfigProblem::new(
            key,
            format!("`{text}` is not an address to listen on"),
            "write IP:PORT, e.g. \"0.0.0.0:80\"",
        ));
        return None;
    };
    if !tls_on {
        problems.push(ConfigProblem::new(
            key,
            "it redirects to https, but the listener is plain http",
            "set server.tls_cert and server.tls_key, or remove server.http_redirect_listen",
        ));
        return None;
    }
    let clash = |other: SocketAddr| {
        other.port() == addr.port()
            && (other.ip() == addr.ip()
                || other.ip().is_unspecified()
                || addr.ip().is_unspecified())
    };
    for (other, name) in [
        (listen, "server.listen"),
        (admin_listen, "server.admin_listen"),
    ] {
        if other.is_some_and(clash) {
            problems.push(ConfigProblem::new(
                key,
                format!("`{text}` is the address of {name}"),
                "give the redirect listener its own port, usually \"0.0.0.0:80\"",
            ));
            return None;
        }
    }
    Some(addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems_of(server: &str) -> Vec<ConfigProblem> {
        let config: Config = toml::from_str(&format!("[server]\n{server}")).unwrap();
        let url = Url::parse(&config.server.public_url).unwrap();
        let mut problems = Vec::new();
        check_listeners(
            &config,
            "127.0.0.1:4180".parse().ok(),
            None,
            Some(&url),
            &mut problems,
        );
        problems
    }

    #[test]
    fn tls_needs_both_files_and_https() {
        let p = problems_of("tls_cert = \"/nonexistent/cert.pem\"");
        assert!(p.iter().any(|p| p.key == "server.tls_key"), "{p:?}");
        assert!(p.iter().any(|p| p.key == "server.public_url"), "{p:?}");
        let p = problems_of("public_url = \"https://x.example\"\ntls_cert = \"/nonexistent/c\"\ntls_key = \"/nonexistent/k\"");
        assert!(
            p.iter()
                .any(|p| p.key == "server.tls_cert" && p.problem.contains("cannot read")),
            "{p:?}"
        );
        assert!(
            p.iter()
                .any(|p| p.key == "server.tls_key" && p.problem.contains("cannot read")),
            "{p:?}"
        );
    }

    #[test]
    fn hsts_and_redirect_need_tls() {
        let p = problems_of("hsts = \"max-age=60\"\nhttp_redirect_listen = \"127.0.0.1:8080\"");
        assert!(p.iter().any(|p| p.key == "server.hsts"), "{p:?}");
        assert!(
            p.iter().any(|p| p.key == "server.http_redirect_listen"),
            "{p:?}"
        );
        assert!(problems_of("").is_empty());
    }

    #[test]
    fn hsts_needs_max_age() {
        let mut p = Vec::new();
        assert!(check_hsts("includeSubDomains", true, &mut p).is_none());
        assert!(check_hsts("max-age=31536000; includeSubDomains", true, &mut p).is_some());
        assert_eq!(p.len(), 1);
    }

    #[test]
    fn upgrade_sock_is_an_absolute_path_that_fits_a_socket_address() {
        assert!(problems_of("upgrade_sock = \"/run/gatehouse/upgrade.sock\"").is_empty());
        for bad in ["upgrade.sock", "/", &format!("/{}", "a".repeat(107))] {
            let p = problems_of(&format!("upgrade_sock = {bad:?}"));
            assert!(
                p.iter().any(|p| p.key == "server.upgrade_sock"),
                "{bad}: {p:?}"
            );
        }
        assert!(problems_of(&format!("upgrade_sock = \"/{}\"", "a".repeat(106))).is_empty());
    }
}
