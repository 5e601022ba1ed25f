//! Credentials from request headers: HTTP Basic (app id and secret) and user tokens.

use axum::http::{header, HeaderMap};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use percent_encoding::percent_decode_str;

/// HTTP Basic `(user, password)` pairs to try, raw first.
///
/// RFC 6749 section 2.3.1 says OAuth clients form-encode the id and secret before base64
/// (the `oauth2` crate does), while many clients send them raw. Both readings are offered
/// and a credential is accepted when either matches, so the mock does not fail a client
/// that GitHub might accept.
pub(super) fn basic_credentials(headers: &HeaderMap) -> Option<Vec<(String, String)>> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, pass) = text.split_once(':')?;
    let raw = (user.to_string(), pass.to_string());
    let form = (form_decode(user), form_decode(pass));
    Some(if form == raw {
        vec![raw]
    } else {
        vec![raw, form]
    })
}

fn form_decode(text: &str) -> String {
    percent_decode_str(&text.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

/// What the `Authorization` header says about a user token.
pub(super) enum TokenHeader {
    Missing,
    /// Present but not a `Bearer`/`token` credential.
    Malformed,
    Token(String),
}

/// GitHub accepts `Authorization: Bearer X` and the older `Authorization: token X`.
pub(super) fn token_header(headers: &HeaderMap) -> TokenHeader {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return TokenHeader::Missing;
    };
    let Some((scheme, token)) = value.to_str().ok().and_then(|v| v.trim().split_once(' ')) else {
        return TokenHeader::Malformed;
    };
    if scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token") {
        TokenHeader::Token(token.trim().to_string())
    } else {
        TokenHeader::Malformed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with_auth(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn basic_raw_and_form_encoded() {
        let h = with_auth(&format!("Basic {}", STANDARD.encode("id:a%2Bb")));
        let creds = basic_credentials(&h).unwrap();
        assert_eq!(creds[0], ("id".to_string(), "a%2Bb".to_string()));
        assert_eq!(creds[1], ("id".to_string(), "a+b".to_string()));
        assert!(basic_credentials(&with_auth("Bearer x")).is_none());
    }

    #[test]
    fn token_schemes() {
        assert!(
            matches!(token_header(&with_auth("token abc")), TokenHeader::Token(t) if t == "abc")
        );
        assert!(
            matches!(token_header(&with_auth("Bearer abc")), TokenHeader::Token(t) if t == "abc")
        );
        assert!(matches!(
            token_header(&with_auth("Basic abc")),
            TokenHeader::Malformed
        ));
        assert!(matches!(
            token_header(&HeaderMap::new()),
            TokenHeader::Missing
        ));
    }
}
