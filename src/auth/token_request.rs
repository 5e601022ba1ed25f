//! What a client sends the token and revocation endpoints, read once: the parameters of an
//! `application/x-www-form-urlencoded` body (RFC 6749 §4.1.3, §6; RFC 7009 §2.1) or of the older
//! JSON body, and the client's credentials (HTTP Basic, RFC 6749 §2.3.1, or `client_id` and
//! `client_secret` in the body). Errors here are RFC 6749 §5.2's.

use crate::pages::Refusal;
use crate::reply::Reply;
use base64::Engine;
use http::request::Parts;
use std::collections::BTreeMap;

/// How an endpoint words its refusals: RFC 6749 §5.2 (every grant error 400) at the token and
/// revocation endpoints, or the statuses `/oauth2/refresh` has always answered with (401 for a
/// refresh token that no longer works, 403 for a user no longer allowed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Rfc6749,
    Legacy,
}

/// An OAuth error answer: `error`, `error_description` (and the same text as `message`, as
/// every Gatehouse API refusal has). In [`Dialect::Rfc6749`] a client error is 400 and
/// `access_denied`, which the token endpoint has no such word for, is `invalid_grant`.
pub fn oauth_error(
    dialect: Dialect,
    status: u16,
    code: &'static str,
    description: impl Into<String>,
) -> Reply {
    let (status, code) = match dialect {
        Dialect::Rfc6749 if (400..500).contains(&status) && code != "invalid_client" => (
            400,
            match code {
                "access_denied" => "invalid_grant",
                other => other,
            },
        ),
        _ => (status, code),
    };
    let reply = Refusal::api(status, code, description).reply(false);
    match code {
        // RFC 6749 §5.2: a failed client authentication is 401 with the scheme to use.
        "invalid_client" => reply.header("WWW-Authenticate", r#"Basic realm="gatehouse""#),
        _ => reply,
    }
}

/// The request's parameters and client credentials.
#[derive(Debug, Default)]
pub struct TokenParams {
    params: BTreeMap<String, String>,
    /// The client as it authenticated or named itself.
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    /// The body was JSON (the older form).
    pub json: bool,
}

impl TokenParams {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }

    /// The body's parameters, then the client's credentials; `Err` is the §5.2 answer.
    pub fn read(req: &Parts, body: &[u8], dialect: Dialect) -> Result<TokenParams, Reply> {
        let invalid = |why: String| oauth_error(dialect, 400, "invalid_request", why);
        let form = req
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|t| {
                t.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            });
        let mut params = BTreeMap::new();
        if form {
            for (k, v) in url::form_urlencoded::parse(body) {
                // RFC 6749 §3.2: no parameter may come twice.
                if params.insert(k.to_string(), v.into_owned()).is_some() {
                    return Err(invalid(format!("the parameter {k} was sent twice")));
                }
            }
        } else {
            let value: serde_json::Value = serde_json::from_slice(body)
                .map_err(|e| invalid(format!("the body must be a form or JSON: {e}")))?;
            let Some(object) = value.as_object() else {
                return Err(invalid("the body must be a JSON object".into()));
            };
            for (k, v) in object {
                match v {
                    serde_json::Value::String(s) => {
                        params.insert(k.clone(), s.clone());
                    }
                    serde_json::Value::Null => {}
                    _ => return Err(invalid(format!("{k} must be a string"))),
                }
            }
        }
        // The older name of redirect_uri.
        if let Some(uri) = params.remove("client_redirect_uri") {
            if params.get("redirect_uri").is_some_and(|r| *r != uri) {
                return Err(invalid(
                    "redirect_uri and client_redirect_uri differ; send one".into(),
                ));
            }
            params.insert("redirect_uri".into(), uri);
        }
        let (basic_id, basic_secret) = match basic_credentials(req) {
            Ok(Some((id, secret))) => (Some(id), Some(secret)),
            Ok(None) => (None, None),
            Err(()) => {
                return Err(oauth_error(
                    dialect,
                    401,
                    "invalid_client",
                    "the Authorization header is not HTTP Basic client_id:client_secret",
                ))
            }
        };
        let body_id = params.remove("client_id").filter(|id| !id.is_empty());
        let body_secret = params.remove("client_secret");
        // RFC 6749 §2.3: one way of authenticating per request.
        if basic_secret.is_some() && body_secret.is_some() {
            return Err(invalid(
                "client credentials were sent both in the Authorization header and in the body; use one"
                    .into(),
            ));
        }
        if let (Some(a), Some(b)) = (&basic_id, &body_id) {
            if a != b {
                return Err(invalid(
                    "client_id differs from the client in the Authorization header".into(),
                ));
            }
        }
        Ok(TokenParams {
            params,
            client_id: basic_id.or(body_id),
            client_secret: basic_secret.or(body_secret),
            json: !form,
        })
    }
}

/// `Authorization: Basic` client credentials: each part form-url-encoded (RFC 6749 §2.3.1), which
/// leaves plain ones as they are. `Ok(None)`: no such header (or another scheme, which is not
/// about the client).
fn basic_credentials(req: &Parts) -> Result<Option<(String, String)>, ()> {
    let Some(value) = req.headers.get(http::header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| ())?;
    let Some((scheme, encoded)) = value.split_once(' ') else {
        return Err(());
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Ok(None);
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| ())?;
    let text = String::from_utf8(decoded).map_err(|_| ())?;
    let (id, secret) = text.split_once(':').ok_or(())?;
    let unescape = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8()
            .map(|c| c.into_owned())
            .map_err(|_| ())
    };
    Ok(Some((unescape(id)?, unescape(secret)?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(headers: &[(&str, &str)]) -> Parts {
        let mut b = http::Request::builder().method("POST").uri("/oauth2/token");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    const FORM: (&str, &str) = (
        "content-type",
        "application/x-www-form-urlencoded;charset=UTF-8",
    );

    #[test]
    fn forms_and_json_read_alike() {
        let p = TokenParams::read(
            &parts(&[FORM]),
            b"grant_type=authorization_code&code=c&redirect_uri=http%3A%2F%2F127.0.0.1%3A5%2Fcb&client_id=cli",
            Dialect::Rfc6749,
        )
        .unwrap();
        assert_eq!(p.get("redirect_uri"), Some("http://127.0.0.1:5/cb"));
        assert_eq!(p.client_id.as_deref(), Some("cli"));
        assert!(!p.json);
        let p = TokenParams::read(
            &parts(&[("content-type", "application/json")]),
            br#"{"code":"c","client_redirect_uri":"http://x/cb","code_verifier":null}"#,
            Dialect::Legacy,
        )
        .unwrap();
        assert_eq!(p.get("redirect_uri"), Some("http://x/cb"));
        assert_eq!(p.get("code_verifier"), None);
        assert!(p.json);
    }

    #[test]
    fn basic_credentials_as_authlib_and_the_oauth2_crate_send_them() {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        // authlib: not url-encoded; the oauth2 crate: url-encoded.
        for header in [b64("web:s3:cr/t"), b64("web:s3%3Acr%2Ft")] {
            let p = TokenParams::read(
                &parts(&[FORM, ("authorization", &format!("Basic {header}"))]),
                b"grant_type=refresh_token&refresh_token=r",
                Dialect::Rfc6749,
            )
            .unwrap();
            assert_eq!(p.client_id.as_deref(), Some("web"));
            assert_eq!(p.client_secret.as_deref(), Some("s3:cr/t"));
        }
    }

    #[test]
    fn errors_are_rfc6749_section_5_2() {
        let r = TokenParams::read(&parts(&[FORM]), b"code=a&code=b", Dialect::Rfc6749).unwrap_err();
        assert_eq!(r.status, 400);
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body["error"], "invalid_request");
        assert!(body["error_description"]
            .as_str()
            .unwrap()
            .contains("twice"));
        let r = TokenParams::read(
            &parts(&[FORM, ("authorization", "Basic !!!")]),
            b"",
            Dialect::Rfc6749,
        )
        .unwrap_err();
        assert_eq!(r.status, 401);
        assert!(r
            .headers
            .contains(&("WWW-Authenticate", r#"Basic realm="gatehouse""#.into())));
        let r = oauth_error(Dialect::Rfc6749, 403, "access_denied", "no");
        assert_eq!(r.status, 400);
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body["error"], "invalid_grant");
        assert_eq!(
            oauth_error(Dialect::Legacy, 401, "invalid_grant", "x").status,
            401
        );
        assert_eq!(
            oauth_error(Dialect::Rfc6749, 503, "store_unavailable", "x").status,
            503
        );
    }
}
