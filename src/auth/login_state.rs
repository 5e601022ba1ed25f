//! The in-flight sign-in: `state`, the PKCE verifier and where to land, sealed in a short-lived
//! cookie that binds the GitHub round trip to this browser. Used states are recorded in the
//! store (shared by replicas), so none can be replayed.

use serde::{Deserialize, Serialize};

/// A sign-in must finish within this many seconds.
pub const LOGIN_TTL_SECS: u64 = 600;

#[derive(Debug, Serialize, Deserialize)]
pub struct LoginState {
    pub state: String,
    pub verifier: String,
    pub rd: String,
    pub exp: u64,
    /// Set for the code-for-token exchange: where the one-time code goes instead of `rd`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<ClientLogin>,
    /// Set for a sign-in started on another host of the routes: where the session is handed
    /// back to after the callback (`rd` is then `/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handoff: Option<super::handoff::Return>,
}

/// A CLI's or SPA's sign-in (`/oauth2/start?client_redirect_uri=`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClientLogin {
    pub redirect_uri: String,
    /// The client's own `state`, echoed back with the code.
    pub state: Option<String>,
    /// PKCE S256 challenge, checked at `/oauth2/token`.
    pub code_challenge: Option<String>,
    /// What the program calls itself (`client_name`), shown on the loopback confirmation page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The OAuth 2.0 `client_id`, when the program sent one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
}

/// Per-attempt cookie name, so two tabs signing in at once do not overwrite each other.
pub fn cookie_name(session_cookie: &str, state: &str) -> String {
    let tag: String = state.chars().take(12).collect();
    format!("{session_cookie}_login_{tag}")
}

/// A fresh, unguessable `state` (256 bits, base64url).
pub fn new_state() -> String {
    use base64::Engine;
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Is `state` one Gatehouse could have made? Anything else is refused before it is used to
/// name a cookie.
pub fn is_well_formed(state: &str) -> bool {
    state.len() == 43
        && state
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_are_unique_and_well_formed() {
        let a = new_state();
        assert!(is_well_formed(&a));
        assert_ne!(a, new_state());
        assert!(!is_well_formed("short"));
        assert!(!is_well_formed(&format!("{}\n", &a[..42])));
        assert!(!is_well_formed(&format!("{};", &a[..42])));
    }
}
