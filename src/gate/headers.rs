//! Request headers on the way to the upstream: drop every client-sent identity claim, then add
//! Gatehouse's own.
//!
//! Names are compared case-insensitively with `_` read as `-`: some upstream stacks (CGI, WSGI,
//! PHP) fold both to the same variable, which once let an `X_Forwarded_User` header smuggle an
//! identity past a well-known gateway.

use crate::identity::Identity;
use crate::session::cookies::own_cookie_set_by;
use http::{HeaderName, HeaderValue};
use pingora::http::{RequestHeader, ResponseHeader};

/// Header names an upstream might trust as identity or client facts, or as the method or path
/// to act on (the override headers would let a client change them after Gatehouse decided on
/// the real ones). Anything starting with one of [`PREFIXES`] is also dropped.
const EXACT: &[&str] = &[
    "forwarded",
    "x-real-ip",
    "remote-user",
    "remote-email",
    "remote-groups",
    "remote-name",
    // Identity headers other auth proxies set, which apps configured for them trust
    // (Apache `X-Remote-User`, Grafana's auth proxy default `X-WEBAUTH-USER`).
    "x-remote-user",
    // Kubernetes' front-proxy and impersonation identity (groups, user).
    "x-remote-group",
    "impersonate-user",
    "impersonate-group",
    "impersonate-uid",
    // Client addresses other proxies and CDNs set, which apps (and their rate limits and
    // audit logs) trust when configured for them; Gatehouse sets X-Real-IP / X-Forwarded-For.
    "x-forwarded",
    "true-client-ip",
    "x-client-ip",
    "client-ip",
    "x-cluster-client-ip",
    "cf-connecting-ip",
    "fastly-client-ip",
    "x-original-forwarded-for",
    "x-originating-ip",
    "x-remote-ip",
    "x-remote-addr",
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
    "x-original-url",
    "x-rewrite-url",
    // What nginx `auth_request` and Envoy say the original request was: Gatehouse reads them
    // only at `/oauth2/auth`; an app must never get a client's copy.
    "x-original-uri",
    "x-original-method",
    "x-envoy-original-path",
];

/// Families of identity headers: Gatehouse's own and oauth2-proxy's, Kubernetes' extra
/// attributes and impersonation extras, Grafana's auth proxy, and the identity headers of the
/// cloud auth proxies (Azure App Service, Google IAP, AWS ALB) that apps may be set up to trust.
const PREFIXES: &[&str] = &[
    "x-forwarded-",
    "x-auth-request-",
    "x-gatehouse-",
    "x-remote-extra-",
    "impersonate-extra-",
    "x-webauth-",
    "x-ms-client-principal",
    "x-goog-authenticated-user-",
    "x-goog-iap-jwt-assertion",
    "x-amzn-oidc-",
];

fn is_reserved(name: &str) -> bool {
    PREFIXES.iter().any(|p| starts_normalized(name, p))
        || EXACT
            .iter()
            .any(|e| e.len() == name.len() && starts_normalized(name, e))
}

/// Does `name` begin with `prefix` (lower-case, `-` separated) when read case-insensitively
/// with `_` as `-`? Compares in place: this runs for every header of every request.
fn starts_normalized(name: &str, prefix: &str) -> bool {
    name.len() >= prefix.len()
        && name.bytes().zip(prefix.bytes()).all(|(n, p)| {
            let n = n.to_ascii_lowercase();
            n == p || (n == b'_' && p == b'-')
        })
}

/// Remove every reserved header the client sent, in any spelling.
pub fn strip_reserved(req: &mut RequestHeader) {
    let doomed: Vec<HeaderName> = req
        .headers
        .keys()
        .filter(|name| is_reserved(name.as_str()))
        .cloned()
        .collect();
    for name in doomed {
        req.remove_header(&name);
    }
}

/// Remove every `Set-Cookie` of the upstream's response that would set, overwrite or clear one
/// of Gatehouse's cookies (see [`own_cookie_set_by`]): the app must not plant a session, fix a
/// login state or sign someone out. Runs before Gatehouse adds its own.
pub fn drop_own_set_cookies(resp: &mut ResponseHeader, session_name: &str) -> pingora::Result<()> {
    let set_cookie = http::header::SET_COOKIE;
    let mut doomed = false;
    for value in resp.headers.get_all(&set_cookie) {
        if let Some(name) = own_cookie_set_by(value.as_bytes(), session_name) {
            tracing::warn!(
                cookie = %name,
                "the app tried to set one of Gatehouse's cookies; the Set-Cookie was dropped"
            );
            doomed = true;
        }
    }
    if !doomed {
        return Ok(());
    }
    let kept: Vec<HeaderValue> = resp
        .headers
        .get_all(&set_cookie)
        .iter()
        .filter(|v| own_cookie_set_by(v.as_bytes(), session_name).is_none())
        .cloned()
        .collect();
    resp.remove_header(&set_cookie);
    for value in kept {
        resp.append_header(set_cookie.clone(), value)?;
    }
    Ok(())
}

/// `Clear-Site-Data` of the upstream's response without what would clear Gatehouse's cookies:
/// `"cookies"` is removed and `"*"` becomes the other types it stands for. An app that wants to
/// end the Gatehouse session links to its sign-out.
pub fn drop_cookie_clearing(resp: &mut ResponseHeader) -> pingora::Result<()> {
    const NAME: &str = "clear-site-data";
    let clears_cookies = |v: &HeaderValue| {
        v.as_bytes()
            .split(|b| *b == b',')
            .any(|t| matches!(t.trim_ascii(), b"\"cookies\"" | b"\"*\""))
    };
    if !resp.headers.get_all(NAME).iter().any(clears_cookies) {
        return Ok(());
    }
    tracing::warn!("the app tried to clear Gatehouse's cookies with Clear-Site-Data; only its other types were kept");
    let kept: Vec<String> = resp
        .headers
        .get_all(NAME)
        .iter()
        .flat_map(|v| v.as_bytes().split(|b| *b == b','))
        .flat_map(|t| -> Vec<String> {
            match t.trim_ascii() {
                b"\"cookies\"" => Vec::new(),
                b"\"*\"" => ["\"cache\"", "\"storage\"", "\"executionContexts\""]
                    .map(String::from)
                    .to_vec(),
                other => vec![String::from_utf8_lossy(other).into_owned()],
            }
        })
        .filter(|t| !t.is_empty())
        .collect();
    resp.remove_header(NAME);
    if !kept.is_empty() {
        resp.insert_header(NAME, kept.join(", "))?;
    }
    Ok(())
}

/// Identity headers for an admitted person (README.md "What the app receives").
pub fn add_identity(req: &mut RequestHeader, identity: &Identity) -> pingora::Result<()> {
    req.insert_header("X-Forwarded-User", identity.login.as_str())?;
    req.insert_header("X-Forwarded-User-Id", identity.user_id.as_str())?;
    req.insert_header("X-Forwarded-Preferred-Username", identity.login.as_str())?;
    if let Some(email) = &identity.email {
        // An address that is not a valid header value is left out rather than failing the request.
        let _ = req.insert_header("X-Forwarded-Email", email.as_str());
    }
    if !identity.groups.is_empty() {
        req.insert_header("X-Forwarded-Groups", identity.groups.join(","))?;
    }
    if !identity.roles.is_empty() {
        req.insert_header("X-Forwarded-Roles", identity.roles.join(","))?;
    }
    Ok(())
}

/// `X-Forwarded-For/-Proto/-Host` and `X-Real-IP` from what Gatehouse itself saw, except that
/// a trusted proxy's `X-Forwarded-For` is appended to and its `-Proto`/`-Host` are kept
/// (`client` says which; see `client_ip`).
pub fn add_forwarded(
    req: &mut RequestHeader,
    client: &super::client_ip::ClientInfo,
    proto: &'static str,
    host: Option<&str>,
) -> pingora::Result<()> {
    // The client's address as text, made once: without a trusted proxy it is also the whole
    // `X-Forwarded-For`, and a clone of the value shares its bytes.
    let ip = client.ip.map(ip_value);
    match (client.proxy.is_none() && client.peer == client.ip, &ip) {
        (true, Some(ip)) => req.insert_header("X-Forwarded-For", ip.clone())?,
        _ => {
            if let Some(chain) = client.forwarded_for() {
                req.insert_header("X-Forwarded-For", chain)?;
            }
        }
    }
    if let Some(ip) = ip {
        req.insert_header("X-Real-IP", ip)?;
    }
    let said = client.proxy.as_ref();
    match said.and_then(|p| p.proto.as_deref()) {
        Some(theirs) => req.insert_header("X-Forwarded-Proto", theirs)?,
        None => req.insert_header("X-Forwarded-Proto", HeaderValue::from_static(proto))?,
    }
    if let Some(host) = said.and_then(|p| p.host.as_deref()).or(host) {
        req.insert_header("X-Forwarded-Host", host)?;
    }
    Ok(())
}

/// An address as a header value, formatted without a `String` on the way.
fn ip_value(ip: std::net::IpAddr) -> HeaderValue {
    use std::io::Write;
    // The longest address, an IPv6 with an embedded IPv4 part, is 45 bytes.
    let mut buf = [0u8; 48];
    let mut rest = &mut buf[..];
    let _ = write!(rest, "{ip}");
    let len = 48 - rest.len();
    // An address's text is always a valid header value; the fallback is never taken.
    HeaderValue::from_bytes(&buf[..len]).unwrap_or_else(|_| HeaderValue::from_static("unknown"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_names_in_every_spelling() {
        for name in [
            "x-forwarded-user",
            "X_Forwarded_User",
            "x-forwarded_email",
            "X-FORWARDED-GROUPS",
            "x_auth_request_user",
            "x-real-ip",
            "remote_user",
            "forwarded",
            "x-forwarded-for",
            "x-http-method-override",
            "X-HTTP-Method-Override",
            "x_http_method_override",
            "X-Http-Method",
            "x_http_method",
            "X-Method-Override",
            "x_method_override",
            "X-Original-URL",
            "x_original_url",
            "X-REWRITE-URL",
            "x_rewrite_url",
            "X-Original-URI",
            "x_original_uri",
            "X-Original-Method",
            "x-envoy-original-path",
            "X-Remote-User",
            "x_webauth_user",
            "X-WEBAUTH-EMAIL",
            "X-Remote-Group",
            "x-remote-extra-scopes",
            "X_Remote_Extra_Reason",
            "Impersonate-User",
            "impersonate-extra-dn",
            "X-Forwarded",
            "True-Client-IP",
            "X-Client-IP",
            "Client-IP",
            "X-Cluster-Client-IP",
            "CF-Connecting-IP",
            "Fastly-Client-IP",
            "X-MS-CLIENT-PRINCIPAL-NAME",
            "x-goog-authenticated-user-email",
            "x-amzn-oidc-identity",
        ] {
            assert!(is_reserved(name), "{name}");
        }
        for name in [
            "x-request-id",
            "accept",
            "x-forwardeduser",
            "cookie",
            "authorization",
            // Exact names only: neither longer nor shorter spellings are caught.
            "x-http-method-overrides",
            "x-http-metho",
            "x-original-url-2",
            "x-original",
            "x-rewrite",
            "x-method",
        ] {
            assert!(!is_reserved(name), "{name}");
        }
        let long = format!("x_forwarded_{}", "a".repeat(80));
        assert!(is_reserved(&long));
        assert!(!is_reserved(&"b".repeat(80)));
    }

    #[test]
    fn strip_then_add() {
        let mut req = RequestHeader::build("GET", b"/", None).unwrap();
        req.append_header("X-Forwarded-User", "evil").unwrap();
        req.append_header("x_forwarded_user", "evil2").unwrap();
        req.append_header("X-Keep", "yes").unwrap();
        req.append_header("X-HTTP-Method-Override", "DELETE")
            .unwrap();
        req.append_header("x_http_method", "PUT").unwrap();
        req.append_header("X-Method-Override", "PATCH").unwrap();
        req.append_header("X-Original-URL", "/admin").unwrap();
        req.append_header("x_rewrite_url", "/admin").unwrap();
        strip_reserved(&mut req);
        assert!(req.headers.get("x-forwarded-user").is_none());
        assert!(req.headers.get("x_forwarded_user").is_none());
        for name in [
            "x-http-method-override",
            "x_http_method",
            "x-method-override",
            "x-original-url",
            "x_rewrite_url",
        ] {
            assert!(req.headers.get(name).is_none(), "{name}");
        }
        assert_eq!(req.headers.get("x-keep").unwrap(), "yes");
    }
}
