//! The "sign-in keeps looping" page: what Gatehouse saw about this browser's cookies, and what
//! to change. `auth::loop_guard` decides when to show it and which hints apply.

use super::html::{self, escape};

/// One likely cause of a login loop that Gatehouse could see in the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoopHint {
    /// The session cookie is `Secure` but the request came over plain http.
    SecureOnHttp,
    /// `session.cookie_domain` does not cover the host the browser asked for.
    CookieDomain { domain: String, host: String },
    /// The browser opened another address than `server.public_url`: GitHub sends it back to
    /// `public_url`, where the cookies set at the other address do not exist.
    PublicUrlMismatch { public: String, opened: String },
    /// The page is inside a frame of another site: `SameSite=Lax` cookies are not sent there.
    ThirdPartyFrame,
    /// A session cookie arrived issued `seconds` in the future (`future`) or expired `seconds`
    /// ago by this server's clock, although the browser still keeps it.
    ClockSkew { seconds: u64, future: bool },
    /// A session cookie arrived that this server cannot decrypt.
    UnreadableSession,
    /// Not even the small loop-counter cookie came back.
    CookiesBlocked,
}

impl LoopHint {
    /// A stable name for API clients and logs.
    pub fn code(&self) -> &'static str {
        match self {
            LoopHint::SecureOnHttp => "secure_cookie_on_http",
            LoopHint::CookieDomain { .. } => "cookie_domain_mismatch",
            LoopHint::PublicUrlMismatch { .. } => "public_url_mismatch",
            LoopHint::ThirdPartyFrame => "third_party_frame",
            LoopHint::ClockSkew { .. } => "clock_skew",
            LoopHint::UnreadableSession => "unreadable_session",
            LoopHint::CookiesBlocked => "cookies_blocked",
        }
    }

    /// (what is wrong, why it breaks sign-in, how to fix it), as plain text.
    fn explain(&self) -> (String, String, String) {
        match self {
            LoopHint::SecureOnHttp => (
                "The cookie is marked Secure, but this address is plain http".into(),
                "The session cookie has the Secure attribute (session.cookie_secure = true, or an https server.public_url), and this request came over http, so the browser refuses to store or send it.".into(),
                "Open the site over https (behind a proxy that terminates TLS, make it send X-Forwarded-Proto: https). Only for local testing over http, set session.cookie_secure = false.".into(),
            ),
            LoopHint::CookieDomain { domain, host } => (
                "The cookie domain does not match this address".into(),
                format!("session.cookie_domain is \"{domain}\", but this page is on {host}; browsers reject cookies set for another domain."),
                format!("Set session.cookie_domain to {host} or a parent domain of it, or remove it (the cookie then belongs to this host only)."),
            ),
            LoopHint::PublicUrlMismatch { public, opened } => (
                "This address is not server.public_url".into(),
                format!("You opened {opened}, but server.public_url is {public}. GitHub sends you back to {public}, where the cookies set at {opened} do not exist."),
                format!("Open {public} instead, or set server.public_url to the address people use (and register its /oauth2/callback URL at GitHub)."),
            ),
            LoopHint::ThirdPartyFrame => (
                "The app is shown inside another site's frame".into(),
                "Browsers do not send SameSite=Lax cookies to a page framed by another site, so a sign-in cannot stick there.".into(),
                "Open the app in its own tab or window, or serve the framing page from the same site.".into(),
            ),
            LoopHint::ClockSkew { seconds, future } => (
                "Clocks disagree".into(),
                if *future {
                    format!("Your browser sent a session cookie issued {seconds} s in the future by this server's clock: the clocks of the Gatehouse servers disagree.")
                } else {
                    format!("Your browser sent a session cookie that had already expired {seconds} s ago by this server's clock, though the browser still keeps it: this server's clock is ahead of the one that issued it.")
                },
                "Synchronize the clock of every Gatehouse server (NTP), and check this computer's clock.".into(),
            ),
            LoopHint::UnreadableSession => (
                "The session cookie was made with another key".into(),
                "Your browser sent a session cookie this server cannot decrypt: the Gatehouse replicas have different session.secrets, or the secret changed.".into(),
                "Give every replica the same session.secrets (when rotating, keep the old secret second).".into(),
            ),
            LoopHint::CookiesBlocked => (
                "Cookies are not coming back at all".into(),
                "Not even Gatehouse's small test cookie came back: the browser blocks cookies for this site (privacy settings, an extension, or a private window).".into(),
                "Allow cookies for this site, then try again.".into(),
            ),
        }
    }
}

/// The usual causes, listed when Gatehouse could not see one for certain (and, briefly, as
/// other things to check when it could).
const USUAL: [(&str, &str); 5] = [
    ("Cookies blocked", "the browser, an extension or a private window blocks cookies for this site."),
    ("Secure cookie on plain http", "session.cookie_secure = true (or an https public_url) while the site is opened over http."),
    ("Cookie domain", "session.cookie_domain does not cover the address in the address bar, or that address is not server.public_url."),
    ("SameSite", "the app is inside a frame of another site, where SameSite=Lax cookies are not sent."),
    ("Clocks or secrets", "several Gatehouse replicas with different clocks or different session.secrets."),
];

pub(super) fn message(hints: &[LoopHint]) -> String {
    let mut text = "Sign-in keeps starting over: your browser came back to sign in several times within a minute, but the session cookie never reached Gatehouse.".to_string();
    if hints.is_empty() {
        text.push_str(" Usual causes: blocked cookies, a Secure cookie on plain http, a cookie domain that does not match the address, the app inside another site's frame (SameSite), or replicas with different clocks or secrets.");
    } else {
        text.push_str(" Likely cause: ");
        let titles: Vec<String> = hints.iter().map(|h| h.explain().0).collect();
        text.push_str(&titles.join("; "));
        text.push('.');
    }
    text.push_str(" Fix that, then start again.");
    text
}

pub(super) fn page(hints: &[LoopHint], start_url: &str) -> String {
    let mut body = String::from(
        "<h1>Sign-in keeps looping</h1><p>Your browser came back to sign in several times within a minute, but the session cookie never reached Gatehouse, so you would be sent to GitHub again and again. Gatehouse stopped the loop.</p>",
    );
    if hints.is_empty() {
        body.push_str("<h2>Likely causes</h2><p>Gatehouse could not see the cause for certain. The usual ones:</p><ul>");
        for (title, text) in USUAL {
            body.push_str(&format!(
                "<li><strong>{}</strong>: {}</li>",
                escape(title),
                escape(text)
            ));
        }
        body.push_str("</ul>");
    } else {
        body.push_str("<h2>What Gatehouse noticed</h2><ul>");
        for hint in hints {
            let (title, why, fix) = hint.explain();
            body.push_str(&format!(
                "<li><strong>{}</strong><br>{} <em>Fix:</em> {}</li>",
                escape(&title),
                escape(&why),
                escape(&fix)
            ));
        }
        body.push_str("</ul>");
    }
    body.push_str("<h2>What to do</h2><p>If you run this site: fix the cause above in the Gatehouse config (or the proxy in front of it) and restart it (the README's Troubleshooting section has more). If you only use it: allow cookies for this site, open it in its own tab, check your computer's clock, and send this page to the site's operator.</p>");
    body.push_str(&format!(
        r#"<div class="actions">{}{}</div>"#,
        html::button_link(start_url, "Try again"),
        html::secondary_link("/", "Start page")
    ));
    html::layout("Sign-in keeps looping", &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_each_hint_with_a_fix_and_escapes() {
        let hints = vec![
            LoopHint::SecureOnHttp,
            LoopHint::CookieDomain {
                domain: ".example.com".into(),
                host: "<evil>".into(),
            },
        ];
        let html = page(&hints, "/oauth2/start?rd=%2F");
        assert!(html.contains("Secure") && html.contains("cookie_secure"));
        assert!(html.contains("&lt;evil&gt;") && !html.contains("<evil>"));
        assert!(html.contains("Fix:") && html.contains("Try again"));
        assert!(message(&hints).contains("marked Secure"));
    }

    #[test]
    fn without_hints_lists_the_usual_causes() {
        let html = page(&[], "/oauth2/start");
        for word in ["Secure", "SameSite", "domain", "Clocks"] {
            assert!(html.contains(word), "{word}");
        }
    }
}
