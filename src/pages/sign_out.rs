//! The confirmation before signing out everywhere: a GET (a link, an image, another site) must
//! never end every session, so it only shows this page, whose button posts the request.

use super::html::{self, escape};
use crate::reply::Reply;

/// The page for `GET {action}?everywhere=1[&rd=…]`: nothing has changed yet; the button posts
/// `everywhere=1` (and `rd`) back to `action`. `revokes_github`: the sign-out also revokes the
/// app's access at GitHub (`github.revoke_on_sign_out`).
pub fn sign_out_everywhere_page(action: &str, rd: Option<&str>, revokes_github: bool) -> Reply {
    let mut fields = vec![("everywhere", "1")];
    if let Some(rd) = rd {
        fields.push(("rd", rd));
    }
    let github = if revokes_github {
        " GitHub will also forget that you allowed this app, and ask again at your next sign-in."
    } else {
        ""
    };
    let body = format!(
        r#"<h1>Sign out everywhere?</h1><p>This ends every session of your account here, in every browser and on every device, and every access and refresh token issued to it.{github} Nothing has changed yet.</p><div class="actions">{confirm}{cancel}</div>"#,
        github = escape(github),
        confirm = html::post_form(action, &fields, "Sign out everywhere"),
        cancel = html::secondary_link("/", "Cancel"),
    );
    Reply::html(200, html::layout("Sign out everywhere?", &body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_button_posts_everywhere_and_the_escaped_target() {
        let r = sign_out_everywhere_page("/oauth2/sign_out", Some("/a?b=1&c=\"x\""), true);
        assert_eq!(r.status, 200);
        let html = String::from_utf8(r.body.to_vec()).unwrap();
        assert!(html.contains(r#"<form method="post" action="/oauth2/sign_out">"#));
        assert!(html.contains(r#"name="everywhere" value="1""#));
        assert!(html.contains(r#"name="rd" value="/a?b=1&amp;c=&quot;x&quot;""#));
        assert!(html.contains("GitHub will also forget"));
        let plain = sign_out_everywhere_page("/oauth2/sign_out", None, false);
        let html = String::from_utf8(plain.body.to_vec()).unwrap();
        assert!(!html.contains(r#"name="rd""#) && !html.contains("GitHub will"));
    }
}
