//! The command-line side of Gatehouse tokens: `gatehouse login` signs in through the browser
//! as a native app (RFC 8252: loopback redirect + PKCE) and stores the tokens, and
//! `gatehouse token` prints a valid access token, refreshing it when it is about to expire.
//!
//! Async work runs on a small current-thread runtime built here, so `main.rs` stays a caller.
//! A crate of its own: it speaks to a gate over HTTP only and depends on no part of it.

pub mod api;
pub mod browser;
pub mod callback;
pub mod error;
pub mod login;
pub mod loopback;
pub mod origin;
pub mod page;
pub mod pkce;
pub mod store;
pub mod token;

#[cfg(test)]
mod flow_tests;

pub use error::ClientError;

use std::time::Duration;

pub(crate) use gatehouse_base::clock::unix_now;

/// Set (to anything) to keep `gatehouse login` from opening a browser, like `--no-browser`.
pub const NO_BROWSER_ENV: &str = "GATEHOUSE_NO_BROWSER";

/// `gatehouse login --url URL [--no-browser] [--timeout D]`.
pub fn login(url: &str, no_browser: bool, timeout: Duration) -> Result<(), ClientError> {
    let origin = origin::normalize(url)?;
    let options = login::LoginOptions {
        origin,
        open_browser: !no_browser && std::env::var_os(NO_BROWSER_ENV).is_none(),
        timeout,
        store_dir: store::default_dir()?,
    };
    runtime()?.block_on(login::login(&options))
}

/// `gatehouse token --url URL`: a valid access token for the gate at `url`.
pub fn token(url: &str) -> Result<String, ClientError> {
    let origin = origin::normalize(url)?;
    let dir = store::default_dir()?;
    runtime()?.block_on(token::access_token(&origin, &dir))
}

/// Parse `--timeout`: `120s`, `2m`, `1m30s`, or plain seconds (`120`).
pub fn parse_timeout(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let parsed = match text.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => humantime::parse_duration(text)
            .map_err(|e| format!("`{text}` is not a duration ({e}); write it like 120s or 5m"))?,
    };
    if parsed.is_zero() {
        return Err("the timeout must be longer than 0s".to_string());
    }
    Ok(parsed)
}

/// Text from the network (the gate's answers, the browser's redirect) as it may be printed or
/// shown: control and invisible characters dropped (an ESC could drive the terminal, a CR or LF
/// forge lines), surrounding space trimmed, at most `max` characters (`…` when cut).
pub(crate) fn printable(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max * 4));
    let shown = text
        .trim()
        .chars()
        .filter(|c| !gatehouse_base::text::is_unsafe(*c));
    for (i, c) in shown.enumerate() {
        if i == max {
            out.push('…');
            break;
        }
        out.push(c);
    }
    out.trim_end().to_string()
}

/// Make ring the process-wide TLS crypto provider (reqwest is built without one, as the gate
/// is); calling again is harmless.
pub(crate) fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn runtime() -> Result<tokio::runtime::Runtime, ClientError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(ClientError::Runtime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_parse_with_or_without_unit() {
        assert_eq!(parse_timeout("120s"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_timeout("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_timeout("45"), Ok(Duration::from_secs(45)));
        assert!(parse_timeout("0s").is_err());
        assert!(parse_timeout("soon").is_err());
    }

    #[test]
    fn network_text_is_printable_and_bounded() {
        assert_eq!(printable(" a\u{1b}[2J\r\nb\u{9b}\u{202e}c ", 100), "a[2Jbc");
        assert_eq!(printable("abcdef", 3), "abc…");
        assert_eq!(printable("abc", 3), "abc");
    }
}
