//! Validation of `[tokens]`, `[[api_keys]]` and the upstream assertion settings.

use super::keys::{decode_secret, SessionKey};
use super::schema::Config;
use super::ConfigProblem;
use base64::Engine;
use std::collections::BTreeMap;
use std::collections::HashSet;
use std::time::Duration;
use url::Url;

const PEM_FIX: &str = "make one with `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out key.pem` and give its path";

#[derive(Debug, Clone)]
pub struct TokenSettings {
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
    pub signing: AccessSigning,
    /// Exact client redirect URIs allowed for the code exchange.
    pub client_redirect_uris: Vec<String>,
    pub allow_loopback: bool,
    pub accept_github_tokens: bool,
    pub oidc_issuers: Vec<OidcIssuerSettings>,
    pub api_keys: Vec<ApiKeyEntry>,
    /// `[[tokens.clients]]`, in order.
    pub clients: Vec<ClientEntry>,
}

/// One registered OAuth 2.0 client: its id, where codes may go, and for a confidential client
/// a salted SHA-256 of its secret (never the secret).
#[derive(Clone)]
pub struct ClientEntry {
    pub client_id: String,
    pub redirect_uris: Vec<String>,
    /// `(salt, hash)`; `None`: a public client, which must use PKCE.
    pub secret: Option<(Vec<u8>, [u8; 32])>,
}

impl std::fmt::Debug for ClientEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientEntry")
            .field("client_id", &self.client_id)
            .field("redirect_uris", &self.redirect_uris)
            .field("confidential", &self.secret.is_some())
            .finish()
    }
}

/// How Gatehouse signs its own access tokens (the algorithm is pinned: tokens claiming any
/// other are refused). Each variant holds a key list: the first signs, every one verifies (a
/// token names its key by `kid`), so keys rotate the way session secrets do.
#[derive(Clone)]
pub enum AccessSigning {
    Hs256(Vec<Vec<u8>>),
    /// PKCS#8 (or SEC1) PEMs of P-256 keys.
    Es256(Vec<String>),
}

impl std::fmt::Debug for AccessSigning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AccessSigning::Hs256(_) => "HS256(hidden)",
            AccessSigning::Es256(_) => "ES256(hidden)",
        })
    }
}

#[derive(Debug, Clone)]
pub struct OidcIssuerSettings {
    pub issuer: String,
    pub audience: String,
    pub jwks_url: Url,
    pub claims: BTreeMap<String, String>,
    pub roles: Vec<String>,
    pub leeway: Duration,
}

/// One API key: its name, and a salted SHA-256 of the key (never the key).
#[derive(Clone)]
pub struct ApiKeyEntry {
    pub name: String,
    pub salt: Vec<u8>,
    pub hash: [u8; 32],
    pub roles: Vec<String>,
}

impl std::fmt::Debug for ApiKeyEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeyEntry")
            .field("name", &self.name)
            .field("roles", &self.roles)
            .finish()
    }
}

/// `X-Gatehouse-Jwt-Assertion`.
#[derive(Clone)]
pub struct AssertionSettings {
    pub enabled: bool,
    pub audience: String,
    /// PEM texts, the signing key first; empty: a key is generated at start.
    pub key_pems: Vec<String>,
}

impl std::fmt::Debug for AssertionSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AssertionSettings")
            .field("enabled", &self.enabled)
            .field("audience", &self.audience)
            .field("key_files", &self.key_pems.len())
            .finish()
    }
}

pub fn check_tokens(
    config: &Config,
    session_keys: &[SessionKey],
    problems: &mut Vec<ConfigProblem>,
    warnings: &mut Vec<ConfigProblem>,
) -> TokenSettings {
    let t = &config.tokens;
    if t.access_ttl.0 < Duration::from_secs(10) {
        problems.push(ConfigProblem::new(
            "tokens.access_ttl",
            "is shorter than 10 seconds; clients would refresh constantly",
            "use a duration such as \"15m\" (the default)",
        ));
    }
    if t.refresh_ttl.0 <= t.access_ttl.0 {
        problems.push(ConfigProblem::new(
            "tokens.refresh_ttl",
            "must be longer than tokens.access_ttl",
            "use a duration such as \"1d\" (the default)",
        ));
    }
    let signing = match t.signing_alg.trim().to_ascii_uppercase().as_str() {
        "HS256" => match &t.hmac_secret {
            Some(secret) => match decode_secret(secret.expose()) {
                Some(bytes) if bytes.len() >= 32 => AccessSigning::Hs256(vec![bytes]),
                _ => {
                    problems.push(ConfigProblem::new(
                        "tokens.hmac_secret",
                        "is not base64 of at least 32 bytes",
                        "make one with `gatehouse gen-secret`, or leave it out to derive one from the session secret",
                    ));
                    AccessSigning::Hs256(Vec::new())
                }
            },
            None => AccessSigning::Hs256(derive_hmac_keys(session_keys)),
        },
        "ES256" => {
            let files = PemFiles {
                one: ("tokens.signing_key_file", t.signing_key_file.as_ref()),
                many: ("tokens.signing_key_files", &t.signing_key_files),
            };
            let pems = files.read(problems);
            if pems.is_empty() && !files.named() {
                problems.push(ConfigProblem::new(
                    "tokens.signing_key_files",
                    "signing_alg = \"ES256\" needs a key",
                    PEM_FIX,
                ));
            }
            AccessSigning::Es256(pems)
        }
        other => {
            problems.push(ConfigProblem::new(
                "tokens.signing_alg",
                format!("`{other}` is not supported"),
                "use \"HS256\" (default) or \"ES256\"",
            ));
            AccessSigning::Hs256(Vec::new())
        }
    };
    let client_redirect_uris = check_redirect_uris(
        "tokens.client_redirect_uris",
        &t.client_redirect_uris,
        problems,
    );
    let mut oidc_issuers = Vec::new();
    for (i, o) in t.oidc_issuers.iter().enumerate() {
        let key = |field: &str| format!("tokens.oidc_issuers[{i}].{field}");
        if o.issuer.trim().is_empty() {
            problems.push(ConfigProblem::new(
                key("issuer"),
                "is empty",
                "give the issuer's `iss`, e.g. \"https://token.actions.githubusercontent.com\"",
            ));
        }
        if o.audience.trim().is_empty() {
            problems.push(ConfigProblem::new(
                key("audience"),
                "is empty, so any token of the issuer would do",
                "give the audience your tokens are minted for, e.g. your public_url",
            ));
        }
        check_tenant_pin(i, o, problems, warnings);
        let jwks_url = match Url::parse(o.jwks_url.trim()) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => Some(u),
            _ => {
                problems.push(ConfigProblem::new(
                    key("jwks_url"),
                    format!("`{}` is not an http(s) URL", o.jwks_url),
                    "e.g. \"https://token.actions.githubusercontent.com/.well-known/jwks\"",
                ));
                None
            }
        };
        if let Some(jwks_url) = jwks_url {
            oidc_issuers.push(OidcIssuerSettings {
                issuer: o.issuer.trim().to_string(),
                audience: o.audience.trim().to_string(),
                jwks_url,
                claims: o.claims.clone(),
                roles: o.roles.clone(),
                leeway: o.leeway.0,
            });
        }
    }
    TokenSettings {
        access_ttl: t.access_ttl.0,
        refresh_ttl: t.refresh_ttl.0,
        signing,
        client_redirect_uris,
        allow_loopback: t.allow_loopback,
        accept_github_tokens: t.accept_github_tokens,
        oidc_issuers,
        api_keys: check_api_keys(config, problems),
        clients: check_clients(&t.clients, problems),
    }
}

/// Redirect URIs as the key `key` lists them: absolute, without a fragment.
fn check_redirect_uris(
    key: &str,
    uris: &[String],
    problems: &mut Vec<ConfigProblem>,
) -> Vec<String> {
    let mut ok = Vec::new();
    for (i, uri) in uris.iter().enumerate() {
        match Url::parse(uri.trim()) {
            // Private-use schemes of native apps (RFC 8252 §7.1) too, e.g. com.example.app:/cb
            Ok(u)
                if u.fragment().is_none()
                    && (matches!(u.scheme(), "http" | "https") || u.scheme().contains('.')) =>
            {
                ok.push(uri.trim().to_string())
            }
            _ => problems.push(ConfigProblem::new(
                format!("{key}[{i}]"),
                format!("`{uri}` is not an absolute URI without a fragment"),
                "write the full URI the client listens on, e.g. \"https://spa.example.com/callback\" or \"http://127.0.0.1/callback\" (any port)",
            )),
        }
    }
    ok
}

/// `[[tokens.clients]]`: unique ids of safe characters, at least one redirect URI each, and a
/// secret given only as its hash.
fn check_clients(
    clients: &[super::TokenClientSection],
    problems: &mut Vec<ConfigProblem>,
) -> Vec<ClientEntry> {
    let mut seen = HashSet::new();
    let mut entries = Vec::new();
    for (i, c) in clients.iter().enumerate() {
        let key = |field: &str| format!("tokens.clients[{i}].{field}");
        let id = c.client_id.trim();
        if !super::sections::is_key_name(id) {
            problems.push(ConfigProblem::new(
                key("client_id"),
                format!("`{id}` is not a usable client id"),
                "use letters, digits, `-`, `_` or `.`, e.g. \"my-cli\"",
            ));
            continue;
        }
        if !seen.insert(id.to_string()) {
            problems.push(ConfigProblem::new(
                key("client_id"),
                format!("`{id}` is listed twice"),
                "give every client its own id",
            ));
        }
        let redirect_uris = check_redirect_uris(&key("redirect_uris"), &c.redirect_uris, problems);
        if c.redirect_uris.is_empty() {
            problems.push(ConfigProblem::new(
                key("redirect_uris"),
                "is empty, so no code could ever be sent to this client",
                "list where the client receives codes, e.g. [\"http://127.0.0.1/callback\"]",
            ));
        }
        let secret = match &c.client_secret_hash {
            None => None,
            Some(hash) => match parse_key_hash(hash.expose()) {
                Some(parsed) => Some(parsed),
                None => {
                    problems.push(ConfigProblem::new(
                        key("client_secret_hash"),
                        "is not a secret hash (`sha256$SALT$HASH`)",
                        "run `gatehouse hash-key --name CLIENT_ID`, give the client the key it prints and paste the hash here (never the secret itself)",
                    ));
                    continue;
                }
            },
        };
        entries.push(ClientEntry {
            client_id: id.to_string(),
            redirect_uris,
            secret,
        });
    }
    entries
}

/// Claims that tie a GitHub Actions token to one owner or repository, ids first: a name can be
/// registered again by someone else after a rename or deletion, an id cannot.
const GITHUB_ID_PINS: [&str; 2] = ["repository_owner_id", "repository_id"];
const GITHUB_NAME_PINS: [&str; 2] = ["repository_owner", "repository"];

/// The GitHub whose Actions tokens `issuer` names: any repository there can mint one for any
/// audience, so `audience` alone trusts strangers. `None` for other issuers.
fn github_actions_issuer(issuer: &str) -> Option<&'static str> {
    let url = Url::parse(issuer.trim()).ok()?;
    let host = url.host_str()?;
    let path = url.path().trim_end_matches('/');
    if host == "token.actions.githubusercontent.com" {
        // Also `/<enterprise>` (GitHub Enterprise Cloud's customized issuer).
        Some("github.com")
    } else if host.starts_with("token.actions.") && host.ends_with(".ghe.com") {
        Some("GitHub Enterprise Cloud with data residency")
    } else if path == "/_services/token" {
        Some("GitHub Enterprise Server")
    } else {
        None
    }
}

/// An issuer serving many tenants must be narrowed by `claims` to the tenant meant: refused for
/// GitHub's Actions issuers, a warning for any other issuer without claims.
fn check_tenant_pin(
    i: usize,
    o: &super::OidcIssuerSection,
    problems: &mut Vec<ConfigProblem>,
    warnings: &mut Vec<ConfigProblem>,
) {
    let key = format!("tokens.oidc_issuers[{i}].claims");
    let pinned = |names: &[&str]| -> Vec<String> {
        names
            .iter()
            .filter(|n| o.claims.get(**n).is_some_and(|v| !v.trim().is_empty()))
            .map(|n| n.to_string())
            .collect()
    };
    let Some(github) = github_actions_issuer(&o.issuer) else {
        if o.claims.is_empty() {
            warnings.push(ConfigProblem::new(
                key,
                format!(
                    "is empty, so every token `{}` issues for audience `{}` is accepted",
                    o.issuer.trim(),
                    o.audience.trim()
                ),
                "if that issuer also mints tokens for others (a CI service, a shared identity provider), pin yours with claims = { CLAIM = \"VALUE\" }",
            ));
        }
        return;
    };
    let (ids, names) = (pinned(&GITHUB_ID_PINS), pinned(&GITHUB_NAME_PINS));
    if ids.is_empty() && names.is_empty() {
        problems.push(ConfigProblem::new(
            key,
            format!(
                "pins no owner or repository, but `{}` is the GitHub Actions issuer of {github}: any repository there can mint a token with any audience, so this entry would accept them all",
                o.issuer.trim()
            ),
            "pin yours by id, e.g. claims = { repository_owner_id = \"123456\" } or claims = { repository_id = \"789012\" } (the `repository_owner_id` and `repository_id` of your tokens; `repository_owner` and `repository` also work, but a name can be registered again by someone else after a rename)",
        ));
    } else if ids.is_empty() {
        warnings.push(ConfigProblem::new(
            key,
            format!(
                "pins `{}` by name only; after a rename or deletion someone else can register that name and mint tokens that match",
                names.join("`, `")
            ),
            "pin repository_owner_id or repository_id as well (the numeric ids in your tokens, which never move to someone else)",
        ));
    }
}

fn check_api_keys(config: &Config, problems: &mut Vec<ConfigProblem>) -> Vec<ApiKeyEntry> {
    let mut seen = HashSet::new();
    let mut keys = Vec::new();
    for (i, k) in config.api_keys.iter().enumerate() {
        if !super::sections::is_key_name(&k.name) {
            problems.push(ConfigProblem::new(
                format!("api_keys[{i}].name"),
                format!("`{}` is not a usable key name", k.name),
                "use letters, digits, `-`, `_` or `.` (it is the Basic-auth user name)",
            ));
            continue;
        }
        if !seen.insert(k.name.clone()) {
            problems.push(ConfigProblem::new(
                format!("api_keys[{i}].name"),
                format!("`{}` is listed twice", k.name),
                "give every key its own name",
            ));
        }
        match parse_key_hash(k.hash.expose()) {
            Some((salt, hash)) => keys.push(ApiKeyEntry {
                name: k.name.clone(),
                salt,
                hash,
                roles: k.roles.clone(),
            }),
            None => problems.push(ConfigProblem::new(
                format!("api_keys[{i}].hash"),
                "is not a key hash (`sha256$SALT$HASH`)",
                "run `gatehouse hash-key --name NAME` and paste the entry it prints (never the key itself)",
            )),
        }
    }
    keys
}

pub fn check_assertion(
    config: &Config,
    upstream_url: Option<&Url>,
    problems: &mut Vec<ConfigProblem>,
) -> AssertionSettings {
    let u = &config.upstream;
    let key_pems = PemFiles {
        one: ("upstream.assertion_key_file", u.assertion_key_file.as_ref()),
        many: ("upstream.assertion_key_files", &u.assertion_key_files),
    }
    .read(problems);
    let audience = match &u.name {
        Some(name) if !name.trim().is_empty() => name.trim().to_string(),
        // Never user info: the audience is in every assertion the app (and its logs) sees.
        _ => upstream_url.map_or_else(String::new, |url| {
            let mut url = url.clone();
            let _ = url.set_password(None);
            let _ = url.set_username("");
            url.as_str().trim_end_matches('/').to_string()
        }),
    };
    AssertionSettings {
        enabled: u.jwt_assertion,
        audience,
        key_pems,
    }
}

/// `sha256$SALT$HASH`, both base64url without padding.
pub fn parse_key_hash(text: &str) -> Option<(Vec<u8>, [u8; 32])> {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut parts = text.trim().split('$');
    let (Some("sha256"), Some(salt), Some(hash), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let salt = b64.decode(salt).ok().filter(|s| s.len() >= 16)?;
    let hash = <[u8; 32]>::try_from(b64.decode(hash).ok()?.as_slice()).ok()?;
    Some((salt, hash))
}

/// The private keys of a key list written either as one file (`one`, the older spelling, kept
/// as an alias) or as a list (`many`: the first signs, all are published and verify).
struct PemFiles<'a> {
    one: (&'static str, Option<&'a String>),
    many: (&'static str, &'a [String]),
}

impl PemFiles<'_> {
    /// Whether either key names a file (read or not).
    fn named(&self) -> bool {
        self.one.1.is_some() || !self.many.1.is_empty()
    }

    /// Each file's PEM text, in order; each unreadable file is a problem naming its key.
    fn read(&self, problems: &mut Vec<ConfigProblem>) -> Vec<String> {
        let (one_key, one) = self.one;
        let (many_key, many) = self.many;
        if one.is_some() && !many.is_empty() {
            problems.push(ConfigProblem::new(
                one_key,
                format!("is set together with {many_key}"),
                format!(
                    "list every key in {many_key} (the signing key first) and remove {one_key}"
                ),
            ));
            return Vec::new();
        }
        let named: Vec<(String, &String)> = match one {
            Some(path) => vec![(one_key.to_string(), path)],
            None => many
                .iter()
                .enumerate()
                .map(|(i, path)| (format!("{many_key}[{i}]"), path))
                .collect(),
        };
        let mut pems = Vec::new();
        for (key, path) in named {
            match std::fs::read_to_string(path) {
                Ok(pem) if pem.contains("PRIVATE KEY") => pems.push(pem),
                Ok(_) => problems.push(ConfigProblem::new(
                    key,
                    format!("{path} holds no PEM private key"),
                    PEM_FIX,
                )),
                Err(e) => problems.push(ConfigProblem::new(
                    key,
                    format!("cannot read {path}: {e}"),
                    PEM_FIX,
                )),
            }
        }
        pems
    }
}

/// HS256 keys of their own for access tokens, one derived from each session secret in the
/// same order, so replicas and restarts agree without another secret to manage.
///
/// Why one per secret rather than one from "the first": the first secret changes when a new
/// one is promoted, and replicas are promoted one after another. A key derived from the first
/// alone would change with the order, and a token one replica signed would fail on the next
/// until every replica agreed (and every token signed before the promote would fail after
/// it). Here the first secret's key signs and the token names it by `kid`; every listed
/// secret's key verifies. That is safe because it trusts no one new: whoever holds any listed
/// secret can already mint a session cookie, which is worth as much as an access token.
fn derive_hmac_keys(session_keys: &[SessionKey]) -> Vec<Vec<u8>> {
    use hmac::{Hmac, Mac};
    session_keys
        .iter()
        .filter_map(|key| {
            let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key.0).ok()?;
            mac.update(b"gatehouse access-token signing key v1");
            Some(mac.finalize().into_bytes().to_vec())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_hashes_parse_strictly() {
        let salt = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([1u8; 16]);
        let hash = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([2u8; 32]);
        assert!(parse_key_hash(&format!("sha256${salt}${hash}")).is_some());
        assert!(parse_key_hash(&format!("md5${salt}${hash}")).is_none());
        assert!(parse_key_hash(&format!("sha256${salt}${hash}$x")).is_none());
        assert!(parse_key_hash("sha256$abc$def").is_none());
        assert!(parse_key_hash("the-key-itself").is_none());
    }
}
