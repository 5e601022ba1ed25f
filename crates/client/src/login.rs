//! `gatehouse login`: the native-app sign-in (RFC 8252). Listen on a loopback port, send the
//! browser to the gate's `/oauth2/start` with `state` and a PKCE challenge, take exactly one
//! callback carrying that `state` (others get 400 and are ignored), trade its code for
//! tokens, store them.

use super::api::{ApiError, GateApi, TokenResponse};
use super::callback::{parse_callback, CallbackOutcome};
use super::loopback::Loopback;
use super::store::{self, StoredTokens};
use super::{browser, page, pkce, unix_now, ClientError};
use std::path::PathBuf;
use std::time::Duration;

/// The stderr line carrying the sign-in URL; tests and people read it.
pub const OPEN_PREFIX: &str = "Open this URL to sign in: ";
/// What this program calls itself at `/oauth2/start` (`client_name`).
pub const CLIENT_NAME: &str = "gatehouse login";

pub struct LoginOptions {
    /// The gate's origin (see [`super::origin::normalize`]).
    pub origin: String,
    pub open_browser: bool,
    /// How long to wait for the browser to come back.
    pub timeout: Duration,
    /// Where `tokens.json` lives.
    pub store_dir: PathBuf,
}

pub async fn login(options: &LoginOptions) -> Result<(), ClientError> {
    let open_browser = options.open_browser;
    login_with(options, |url| {
        if open_browser {
            browser::open(url);
        }
    })
    .await
}

/// [`login`], with `open` called on the start URL (after it is printed) instead of a browser.
pub async fn login_with(
    options: &LoginOptions,
    open: impl FnOnce(&str),
) -> Result<(), ClientError> {
    let origin = options.origin.as_str();
    let api = GateApi::new(origin)?;
    let mut loopback = Loopback::bind().await.map_err(ClientError::Listen)?;
    let redirect_uri = loopback.redirect_uri();
    let state = pkce::new_state();
    let verifier = pkce::new_verifier();
    let start = start_url(
        origin,
        &redirect_uri,
        &state,
        &pkce::challenge_s256(&verifier),
    )?;

    eprintln!("{OPEN_PREFIX}{start}");
    // The gate's confirmation page names the address; this lets the person match it.
    eprintln!("When the gate asks, confirm sending the sign-in to {redirect_uri}: this command is listening there.");
    open(&start);

    let deadline = tokio::time::Instant::now() + options.timeout;
    let (code, pending) = loop {
        let pending = match tokio::time::timeout_at(deadline, loopback.next_callback()).await {
            Ok(Some(pending)) => pending,
            Ok(None) => {
                return Err(ClientError::Listen(std::io::Error::other(
                    "the loopback listener stopped",
                )))
            }
            Err(_) => {
                return Err(ClientError::Timeout {
                    url: origin.to_string(),
                    secs: format_secs(options.timeout),
                })
            }
        };
        match parse_callback(&pending.query, &state) {
            CallbackOutcome::Code(code) => break (code, pending),
            CallbackOutcome::Incomplete => {
                let html = page::failed("This address only takes the sign-in redirect from Gatehouse; the command is still waiting for it.");
                pending.respond(400, &html).await;
            }
            // Anyone on this machine, or a web page, can reach the port: an answer without
            // this login's state neither ends nor fails it.
            CallbackOutcome::StateMismatch => {
                let html = page::failed("This answer does not belong to the sign-in this command started (its state does not match), so it was ignored; the command is still waiting for its own.");
                pending.respond(400, &html).await;
                eprintln!(
                    "Ignored a sign-in answer that this command did not start; still waiting."
                );
            }
            CallbackOutcome::Denied { error, description } => {
                let e = ClientError::Denied {
                    url: origin.to_string(),
                    error,
                    description,
                };
                pending.respond(403, &page::failed(&e.to_string())).await;
                return Err(e);
            }
        }
    };

    let stored = api
        .exchange(&code, &redirect_uri, &verifier)
        .await
        .map_err(|e| exchange_error(origin, e))
        .and_then(|tokens| store::put(&options.store_dir, origin, to_stored(&tokens, unix_now())));
    match stored {
        Ok(()) => {
            pending.respond(200, &page::signed_in(origin)).await;
            eprintln!("Signed in to {origin}");
            Ok(())
        }
        Err(e) => {
            pending.respond(400, &page::failed(&e.to_string())).await;
            Err(e)
        }
    }
}

/// `{origin}/oauth2/start?client_redirect_uri=…&state=…&code_challenge=…&code_challenge_method=S256&client_name=…`.
pub fn start_url(
    origin: &str,
    redirect_uri: &str,
    state: &str,
    challenge: &str,
) -> Result<String, ClientError> {
    let mut url =
        url::Url::parse(&format!("{origin}/oauth2/start")).map_err(|e| ClientError::BadUrl {
            url: origin.to_string(),
            problem: e.to_string(),
        })?;
    url.query_pairs_mut()
        .append_pair("client_redirect_uri", redirect_uri)
        .append_pair("state", state)
        .append_pair("code_challenge", challenge)
        .append_pair("code_challenge_method", "S256")
        // Shown on the gate's confirmation page, so the person knows what asks.
        .append_pair("client_name", CLIENT_NAME);
    Ok(url.into())
}

/// Token lifetimes → absolute Unix expiry times.
pub fn to_stored(tokens: &TokenResponse, now: u64) -> StoredTokens {
    StoredTokens {
        access_token: tokens.access_token.clone(),
        refresh_token: tokens.refresh_token.clone(),
        access_expires_at: now.saturating_add(tokens.expires_in),
        refresh_expires_at: now.saturating_add(tokens.refresh_expires_in),
    }
}

fn exchange_error(origin: &str, e: ApiError) -> ClientError {
    match e {
        ApiError::Network(source) => ClientError::Network {
            url: origin.to_string(),
            action: "exchange the sign-in code",
            source,
        },
        ApiError::Refused(r) => ClientError::ExchangeRefused {
            url: origin.to_string(),
            status: r.status,
            error: r.error,
            message: r.message,
        },
        ApiError::BadResponse(detail) => ClientError::BadResponse {
            url: origin.to_string(),
            detail,
        },
    }
}

/// `120`, or `1.5` for sub-second parts.
fn format_secs(d: Duration) -> String {
    format!("{}", d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_url_carries_redirect_state_and_challenge() {
        let url = start_url(
            "http://127.0.0.1:4180",
            "http://127.0.0.1:5555/callback",
            "st",
            "ch",
        )
        .unwrap();
        assert_eq!(
            url,
            "http://127.0.0.1:4180/oauth2/start?client_redirect_uri=http%3A%2F%2F127.0.0.1%3A5555%2Fcallback\
             &state=st&code_challenge=ch&code_challenge_method=S256&client_name=gatehouse+login"
        );
    }

    #[test]
    fn lifetimes_become_unix_expiry_times() {
        let tokens = TokenResponse {
            access_token: "a".into(),
            refresh_token: "r".into(),
            token_type: Some("Bearer".into()),
            expires_in: 900,
            refresh_expires_in: 86_400,
        };
        let stored = to_stored(&tokens, 1_000);
        assert_eq!(stored.access_expires_at, 1_900);
        assert_eq!(stored.refresh_expires_at, 87_400);
    }

    #[test]
    fn timeout_seconds_print_plainly() {
        assert_eq!(format_secs(Duration::from_secs(120)), "120");
        assert_eq!(format_secs(Duration::from_millis(1500)), "1.5");
    }
}
