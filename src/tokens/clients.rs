//! OAuth 2.0 clients (RFC 6749 §2): who may receive a one-time code at which redirect URI,
//! and how a confidential client proves its secret. Registered clients come from
//! `[[tokens.clients]]`; a client the config does not register falls back to
//! `tokens.client_redirect_uris` and `tokens.allow_loopback`, as before there were clients.

use super::api_keys::constant_time_eq;
use crate::config::{ClientEntry, TokenSettings};
use sha2::{Digest, Sha256};
use url::Url;

/// Why a client redirect URI is allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientRedirect {
    /// Listed by the operator (`tokens.client_redirect_uris`, or a registered client's
    /// `redirect_uris`): the operator vouches for it.
    Listed,
    /// A loopback address (`tokens.allow_loopback`, or a registered loopback entry, any port):
    /// whichever local program listens there gets the code, so it needs PKCE and the person's
    /// confirmation.
    Loopback,
}

/// What a token or revocation request proved about its client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientAuth {
    /// No secret was needed: a public client (or none named).
    Public,
    /// A confidential client presented its secret.
    Authenticated,
    /// A secret was wrong or missing for a confidential client, or named an unknown client:
    /// `invalid_client`.
    Failed,
}

/// The registered client `client_id`, if any.
pub fn registered<'a>(settings: &'a TokenSettings, client_id: &str) -> Option<&'a ClientEntry> {
    settings.clients.iter().find(|c| c.client_id == client_id)
}

/// Is `host` a loopback address a native app listens on (RFC 8252 §7.3; `localhost` too,
/// which §8.3 only discourages)?
fn is_loopback_host(url: &Url) -> bool {
    url.scheme() == "http" && matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"))
}

/// Does `asked` match the registered `entry`? Exactly, as text; for a loopback entry, any port
/// with everything else equal (RFC 8252 §7.3).
fn matches_registered(entry: &str, asked: &Url, asked_text: &str) -> bool {
    if entry == asked_text {
        return true;
    }
    let Ok(mut entry) = Url::parse(entry) else {
        return false;
    };
    if !is_loopback_host(&entry) || !is_loopback_host(asked) {
        return false;
    }
    if entry.set_port(asked.port()).is_err() {
        return false;
    }
    entry.as_str() == asked.as_str()
}

/// Why a code may be sent to `uri` for `client_id` (`None`: a program using
/// `client_redirect_uri` without an id), if it may.
pub fn redirect(
    settings: &TokenSettings,
    client_id: Option<&str>,
    uri: &str,
) -> Option<ClientRedirect> {
    let parsed = Url::parse(uri).ok()?;
    if parsed.fragment().is_some() || !parsed.username().is_empty() || parsed.password().is_some() {
        return None;
    }
    let loopback = is_loopback_host(&parsed);
    if let Some(client) = client_id.and_then(|id| registered(settings, id)) {
        // A registered client gets only its own addresses.
        return client
            .redirect_uris
            .iter()
            .any(|entry| matches_registered(entry, &parsed, uri))
            .then_some(match loopback {
                true => ClientRedirect::Loopback,
                false => ClientRedirect::Listed,
            });
    }
    // Exact match on the text as configured: no normalizing that could make two URIs equal.
    if settings
        .client_redirect_uris
        .iter()
        .any(|allowed| allowed == uri)
    {
        return Some(ClientRedirect::Listed);
    }
    (settings.allow_loopback && loopback).then_some(ClientRedirect::Loopback)
}

/// The single redirect URI of a registered client, used when the authorize request names none
/// (RFC 6749 §3.1.2.3). A loopback entry has no port yet, so it never counts.
pub fn only_redirect(settings: &TokenSettings, client_id: &str) -> Option<String> {
    match registered(settings, client_id)?.redirect_uris.as_slice() {
        [one] if !Url::parse(one).is_ok_and(|u| is_loopback_host(&u)) => Some(one.clone()),
        _ => None,
    }
}

/// Is `client_id` a confidential client (one with a secret)?
pub fn is_confidential(settings: &TokenSettings, client_id: &str) -> bool {
    registered(settings, client_id).is_some_and(|c| c.secret.is_some())
}

/// Check the client's credentials: `secret` presented for `client_id`, if any.
pub fn authenticate(
    settings: &TokenSettings,
    client_id: Option<&str>,
    secret: Option<&str>,
) -> ClientAuth {
    let Some(id) = client_id else {
        return match secret {
            Some(_) => ClientAuth::Failed,
            None => ClientAuth::Public,
        };
    };
    let stored = registered(settings, id).and_then(|c| c.secret.as_ref());
    match (stored, secret) {
        (None, None) => ClientAuth::Public,
        // A secret for a client that has none (or is unknown) proves nothing: refused, so a
        // mistyped setup is noticed rather than silently treated as public.
        (None, Some(_)) | (Some(_), None) => ClientAuth::Failed,
        (Some((salt, hash)), Some(secret)) => {
            let mut h = Sha256::new();
            h.update(salt);
            h.update(secret.as_bytes());
            let digest: [u8; 32] = h.finalize().into();
            match constant_time_eq(&digest, hash) {
                true => ClientAuth::Authenticated,
                false => ClientAuth::Failed,
            }
        }
    }
}

/// The origins of every configured client address on the web (not loopback): the token
/// endpoints answer them with CORS.
pub fn web_origins(settings: &TokenSettings) -> impl Iterator<Item = String> + '_ {
    settings
        .client_redirect_uris
        .iter()
        .chain(settings.clients.iter().flat_map(|c| c.redirect_uris.iter()))
        .filter_map(|uri| Url::parse(uri).ok())
        .filter(|u| !is_loopback_host(u))
        .map(|u| u.origin().ascii_serialization())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(clients: Vec<ClientEntry>) -> TokenSettings {
        let text = r#"
[server]
public_url = "http://gate.test:4180"
[upstream]
url = "http://127.0.0.1:9"
[github]
client_id = "id"
client_secret = "secret"
[session]
secrets = ["AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="]
[access]
allowed_users = ["octocat"]
[tokens]
client_redirect_uris = ["https://spa.example/cb"]
"#;
        let mut t = crate::config::load_str(text, "test", &|_| None)
            .expect("valid config")
            .tokens;
        t.clients = clients;
        t
    }

    fn client(id: &str, uris: &[&str], secret: Option<&str>) -> ClientEntry {
        ClientEntry {
            client_id: id.into(),
            redirect_uris: uris.iter().map(|u| u.to_string()).collect(),
            secret: secret.map(|s| {
                let salt = vec![7u8; 16];
                let mut h = Sha256::new();
                h.update(&salt);
                h.update(s.as_bytes());
                (salt, h.finalize().into())
            }),
        }
    }

    #[test]
    fn a_registered_loopback_entry_matches_any_port_and_nothing_else() {
        let s = settings(vec![client("cli", &["http://127.0.0.1/callback"], None)]);
        let r = |uri: &str| redirect(&s, Some("cli"), uri);
        assert_eq!(
            r("http://127.0.0.1:53211/callback"),
            Some(ClientRedirect::Loopback)
        );
        assert_eq!(
            r("http://127.0.0.1/callback"),
            Some(ClientRedirect::Loopback)
        );
        assert_eq!(r("http://127.0.0.1:5/other"), None);
        assert_eq!(r("http://127.0.0.1:5/callback?x=1"), None);
        assert_eq!(r("http://[::1]:5/callback"), None, "another host");
        assert_eq!(r("https://spa.example/cb"), None, "not this client's");
        assert_eq!(r("http://u@127.0.0.1:5/callback"), None);
    }

    #[test]
    fn unregistered_clients_keep_the_old_rules() {
        let s = settings(vec![client("web", &["https://web.example/cb"], Some("s"))]);
        assert_eq!(
            redirect(&s, None, "https://spa.example/cb"),
            Some(ClientRedirect::Listed)
        );
        assert_eq!(
            redirect(&s, Some("someone"), "https://spa.example/cb"),
            Some(ClientRedirect::Listed)
        );
        assert_eq!(redirect(&s, Some("someone"), "http://127.0.0.1:4/cb"), None);
        assert_eq!(
            redirect(&s, Some("web"), "https://web.example/cb"),
            Some(ClientRedirect::Listed)
        );
        assert_eq!(
            only_redirect(&s, "web").as_deref(),
            Some("https://web.example/cb")
        );
    }

    #[test]
    fn secrets_are_checked() {
        let s = settings(vec![
            client("web", &["https://web.example/cb"], Some("s3:cr/t")),
            client("cli", &["http://127.0.0.1/cb"], None),
        ]);
        assert_eq!(
            authenticate(&s, Some("web"), Some("s3:cr/t")),
            ClientAuth::Authenticated
        );
        assert_eq!(
            authenticate(&s, Some("web"), Some("nope")),
            ClientAuth::Failed
        );
        assert_eq!(authenticate(&s, Some("web"), None), ClientAuth::Failed);
        assert_eq!(authenticate(&s, Some("cli"), None), ClientAuth::Public);
        assert_eq!(authenticate(&s, Some("cli"), Some("x")), ClientAuth::Failed);
        assert_eq!(authenticate(&s, None, None), ClientAuth::Public);
        assert!(is_confidential(&s, "web") && !is_confidential(&s, "cli"));
        let origins: Vec<String> = web_origins(&s).collect();
        assert_eq!(origins, ["https://spa.example", "https://web.example"]);
    }
}
