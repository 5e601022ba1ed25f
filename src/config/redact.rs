//! Passwords inside URLs (`redis://:PASSWORD@host`, `https://user:TOKEN@host`,
//! `…?password=…`) masked wherever a URL is shown: `check-config`, config errors, log lines and
//! errors of libraries that quote the URL they were given.

use std::borrow::Cow;

/// What replaces a hidden part.
pub const MASK: &str = "***";

/// Query parameters whose value is hidden: any name containing one of these (ASCII case
/// ignored).
const SECRET_PARAMS: &[&str] = &[
    "pass",
    "pwd",
    "secret",
    "token",
    "key",
    "auth",
    "credential",
    "signature",
    "sig",
];

/// `url` with its user info and secret-looking query values masked. Not a URL: unchanged.
pub fn redact_url(url: &str) -> Cow<'_, str> {
    redact_urls_in(url)
}

/// Every `scheme://…` inside `text` (an error message, a log line, a JSON document) masked as
/// [`redact_url`] does: user info becomes `user:***` (or `***` when there is only a user name,
/// which is often a token), secret-looking query values become `***`. Text without `://` is
/// returned as it is, without allocating.
pub fn redact_urls_in(text: &str) -> Cow<'_, str> {
    if !text.contains("://") {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut changed = false;
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (before, after) = rest.split_at(at + 3);
        out.push_str(before);
        let end = after.find(ends_url).unwrap_or(after.len());
        let (url, tail) = after.split_at(end);
        let masked = mask_after_scheme(url);
        changed |= masked != url;
        out.push_str(&masked);
        rest = tail;
    }
    out.push_str(rest);
    if changed {
        Cow::Owned(out)
    } else {
        Cow::Borrowed(text)
    }
}

/// Where a URL quoted in running text ends.
fn ends_url(c: char) -> bool {
    c.is_whitespace() || c.is_control() || matches!(c, '"' | '\'' | '`' | '<' | '>' | '\\')
}

/// `user:pass@host/path?q=1#f` (what follows `scheme://`), masked.
fn mask_after_scheme(url: &str) -> String {
    let authority_end = url.find(['/', '?', '#']).unwrap_or(url.len());
    let (authority, rest) = url.split_at(authority_end);
    let mut out = String::with_capacity(url.len());
    match authority.rfind('@') {
        Some(at) => {
            let userinfo = &authority[..at];
            if let Some((user, _)) = userinfo.split_once(':') {
                out.push_str(user);
                out.push(':');
            }
            out.push_str(MASK);
            out.push_str(&authority[at..]);
        }
        None => out.push_str(authority),
    }
    let (before_fragment, fragment) = match rest.find('#') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match before_fragment.split_once('?') {
        Some((path, query)) => {
            out.push_str(path);
            out.push('?');
            for (i, pair) in query.split('&').enumerate() {
                if i > 0 {
                    out.push('&');
                }
                match pair.split_once('=') {
                    Some((name, value)) if !value.is_empty() && is_secret_param(name) => {
                        out.push_str(name);
                        out.push('=');
                        out.push_str(MASK);
                    }
                    _ => out.push_str(pair),
                }
            }
        }
        None => out.push_str(before_fragment),
    }
    out.push_str(fragment);
    out
}

fn is_secret_param(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SECRET_PARAMS.iter().any(|s| name.contains(s))
}

/// Every string inside a TOML value masked with [`redact_urls_in`] (the effective config
/// `check-config` prints).
pub fn redact_toml(value: &mut toml::Value) {
    match value {
        toml::Value::String(s) => {
            if let Cow::Owned(masked) = redact_urls_in(s) {
                *s = masked;
            }
        }
        toml::Value::Array(items) => items.iter_mut().for_each(redact_toml),
        toml::Value::Table(table) => table.iter_mut().for_each(|(_, v)| redact_toml(v)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_info_and_secret_parameters_are_masked() {
        for (url, shown) in [
            (
                "redis://:hunter2@10.0.0.1:6379/0",
                "redis://:***@10.0.0.1:6379/0",
            ),
            (
                "rediss://default:hunter2@cache:6380",
                "rediss://default:***@cache:6380",
            ),
            (
                "https://ghp_token@example.com/x",
                "https://***@example.com/x",
            ),
            ("https://u:p@ss@h/", "https://u:***@h/"),
            (
                "https://idp.example/jwks?api_key=k1&x=1&Access_Token=t#frag",
                "https://idp.example/jwks?api_key=***&x=1&Access_Token=***#frag",
            ),
            ("redis://h/?password=hunter2", "redis://h/?password=***"),
            ("https://example.com/a@b", "https://example.com/a@b"),
            ("https://github.com", "https://github.com"),
            ("not a url", "not a url"),
        ] {
            assert_eq!(redact_url(url), shown, "{url}");
        }
    }

    #[test]
    fn urls_inside_text_are_masked_and_the_rest_kept() {
        let text =
            "cannot connect to `redis://:hunter2@10.0.0.1:6379`: refused; also \"https://a:b@c/\"";
        assert_eq!(
            redact_urls_in(text),
            "cannot connect to `redis://:***@10.0.0.1:6379`: refused; also \"https://a:***@c/\""
        );
        assert!(matches!(redact_urls_in("plain text"), Cow::Borrowed(_)));
        assert!(matches!(
            redact_urls_in("see https://github.com/x"),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn toml_strings_are_masked_everywhere() {
        let mut v: toml::Value =
            toml::from_str("a = \"redis://:pw1@h\"\nb = [\"redis://:pw2@h\"]\n[c]\nd = \"x\"\n")
                .unwrap();
        redact_toml(&mut v);
        let text = toml::to_string(&v).unwrap();
        assert!(!text.contains("pw1") && !text.contains("pw2"), "{text}");
        assert!(text.contains("redis://:***@h"), "{text}");
    }
}
