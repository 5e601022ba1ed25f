//! `gatehouse healthcheck`: ask a running Gatehouse whether it is alive.
//!
//! The container image is distroless (no shell, no curl), so Docker's `HEALTHCHECK` runs the
//! binary itself: `gatehouse healthcheck` GETs `/ping` and exits 0 on `200`, 1 otherwise with
//! a one-line reason on stderr. It never follows redirects, sends no credentials, and gives up
//! after a short timeout so a hung process counts as unhealthy.

use std::time::Duration;

/// The `/ping` of a Gatehouse listening on its default port.
pub const DEFAULT_URL: &str = "http://127.0.0.1:4180/ping";

/// How long the whole check may take (connect, request, status line).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// `Ok(())` when `url` answers `200` within `timeout`; otherwise a one-line reason.
///
/// An `https` URL is accepted with any certificate: the check runs over loopback against the
/// gate's own listener, whose certificate names the public host, and it sends nothing secret.
pub fn check(url: &str, timeout: Duration) -> Result<(), String> {
    let parsed = url::Url::parse(url)
        .map_err(|e| format!("--url `{url}` is not a URL ({e}); give one like {DEFAULT_URL}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!(
            "--url `{url}` must be an http:// or https:// URL, like {DEFAULT_URL}"
        ));
    }
    crate::install_crypto_provider();
    let client = reqwest::Client::builder()
        .user_agent(concat!("gatehouse-healthcheck/", env!("CARGO_PKG_VERSION")))
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .tls_danger_accept_invalid_certs(true)
        .no_proxy()
        .build()
        .map_err(|e| format!("cannot set up the HTTP client: {e}"))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let status = runtime
        .block_on(async { client.get(parsed).send().await.map(|r| r.status()) })
        .map_err(|e| {
            let why = if e.is_timeout() {
                format!("no answer within {}", humantime::format_duration(timeout))
            } else if e.is_connect() {
                "cannot connect (is gatehouse running and listening there?)".to_string()
            } else {
                e.to_string()
            };
            format!("{url}: {why}")
        })?;
    if status == reqwest::StatusCode::OK {
        Ok(())
    } else {
        Err(format!("{url} answered {status}, expected 200 OK"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_is_not_an_http_url() {
        for url in [
            "127.0.0.1:4180/ping",
            "localhost:4180/ping",
            "ftp://127.0.0.1/ping",
        ] {
            let err = check(url, DEFAULT_TIMEOUT).unwrap_err();
            assert!(err.contains(DEFAULT_URL), "{err}");
        }
        let err = check("not a url", DEFAULT_TIMEOUT).unwrap_err();
        assert!(err.contains("not a URL"), "{err}");
    }

    #[test]
    fn nothing_listening_is_unhealthy() {
        // Bind, note the port, and close: nothing listens there afterwards.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let err = check(&format!("http://127.0.0.1:{port}/ping"), DEFAULT_TIMEOUT).unwrap_err();
        assert!(err.contains("cannot connect"), "{err}");
        assert!(!err.contains('\n'), "one line: {err}");
    }
}
