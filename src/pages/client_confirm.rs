//! The confirmation before a sign-in goes to a program on this computer (a loopback
//! `client_redirect_uri`): it names the account, the program and the exact address, and only
//! its button (a same-origin POST) sends the code.

use super::html::{self, escape};
use crate::reply::Reply;

/// What the confirmation page shows and posts.
pub struct ClientConfirm<'a> {
    /// Where the button posts (`{proxy_prefix}/confirm`).
    pub action: &'a str,
    /// The pending confirmation's id, posted back.
    pub id: &'a str,
    /// The GitHub login signing in.
    pub login: &'a str,
    /// What the program calls itself, if it said.
    pub client_name: Option<&'a str>,
    /// The exact address the code goes to.
    pub redirect_uri: &'a str,
    pub app_name: &'a str,
}

pub fn client_confirm_page(c: &ClientConfirm<'_>) -> Reply {
    let program = match c.client_name {
        Some(name) => format!(
            "<strong>{}</strong> (as the program names itself: any program can claim a name)",
            escape(name)
        ),
        None => "a program that gave no name".to_string(),
    };
    let target = url::Url::parse(c.redirect_uri).ok();
    let origin = target
        .as_ref()
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default();
    let host_port = origin.strip_prefix("http://").unwrap_or(&origin);
    let body = format!(
        r#"<h1>Sign in a program on this computer?</h1><p>A program on this computer asks to act as <strong>{login}</strong> on <strong>{app}</strong>. If you continue, it receives access tokens for your account here.</p><p>Program: {program}<br>Sends the sign-in to: <code>{target}</code></p><p>Continue only if you just started this sign-in yourself, for example with <code>gatehouse login</code> in a terminal. Otherwise close this page: nothing has been sent.</p><div class="actions">{confirm}{cancel}</div>"#,
        login = escape(c.login),
        app = escape(c.app_name),
        target = escape(c.redirect_uri),
        confirm = html::post_form(
            c.action,
            &[("id", c.id)],
            &format!("Continue: send to {host_port}")
        ),
        cancel = html::secondary_link("/", "Cancel"),
    );
    // The button's POST is answered with a redirect to the program, and browsers hold that
    // redirect to the page's `form-action` too (Chromium blocks it under `'self'` alone). CSP
    // cannot name an IPv6 address: `[::1]` gets the scheme.
    let source = match target.as_ref().and_then(url::Url::host) {
        Some(url::Host::Ipv6(_)) => "http:",
        _ => origin.as_str(),
    };
    let csp = format!(
        "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; form-action 'self' {source}; frame-ancestors 'none'"
    );
    Reply::html(
        200,
        html::layout("Sign in a program on this computer?", &body),
    )
    .replace_header("Content-Security-Policy", csp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_names_everything_and_posts_only_the_id() {
        let r = client_confirm_page(&ClientConfirm {
            action: "/oauth2/confirm",
            id: "ID<1>",
            login: "octocat",
            client_name: Some("gatehouse <login>"),
            redirect_uri: "http://127.0.0.1:5555/callback",
            app_name: "Demo & Co",
        });
        assert_eq!(r.status, 200);
        let html = String::from_utf8(r.body.to_vec()).unwrap();
        assert!(html.contains(r#"<form method="post" action="/oauth2/confirm">"#));
        assert!(html.contains(r#"name="id" value="ID&lt;1&gt;""#));
        assert!(html.contains("<code>http://127.0.0.1:5555/callback</code>"));
        assert!(html.contains("gatehouse &lt;login&gt;") && html.contains("Demo &amp; Co"));
        assert!(html.contains("Continue: send to 127.0.0.1:5555"));
        let csp = r
            .headers
            .iter()
            .filter(|(n, _)| *n == "Content-Security-Policy")
            .map(|(_, v)| v.as_str())
            .collect::<Vec<_>>();
        assert_eq!(csp.len(), 1);
        assert!(csp[0].contains("form-action 'self' http://127.0.0.1:5555;"));
        assert!(csp[0].contains("frame-ancestors 'none'"));
        let v6 = client_confirm_page(&ClientConfirm {
            redirect_uri: "http://[::1]:5555/cb",
            action: "/oauth2/confirm",
            id: "i",
            login: "octocat",
            client_name: None,
            app_name: "a",
        });
        let html = String::from_utf8(v6.body.to_vec()).unwrap();
        assert!(html.contains("a program that gave no name"));
        assert!(v6.headers.iter().any(
            |(n, v)| *n == "Content-Security-Policy" && v.contains("form-action 'self' http:;")
        ));
    }
}
