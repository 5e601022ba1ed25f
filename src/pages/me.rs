//! `/oauth2/me`: "who am I" for a person in a browser (API clients get the userinfo JSON).

use super::html::{self, escape};
use super::PagesSettings;
use crate::identity::Identity;
use crate::reply::Reply;

/// The page: avatar, login, name, email, groups, roles, when the session ends, sign-out.
pub fn me_page(pages: &PagesSettings, identity: &Identity, now: u64, sign_out_url: &str) -> Reply {
    let initial = identity
        .login
        .chars()
        .next()
        .map_or(String::new(), |c| c.to_uppercase().to_string());
    // GitHub's avatars are https; the pages' CSP admits only https: and data: images.
    let img = identity
        .avatar_url
        .as_deref()
        .filter(|u| u.starts_with("https://") || u.starts_with("data:image/"))
        .map_or_else(String::new, |u| {
            // An image that cannot load shows its ::after (the initial), not a broken icon.
            format!(
                r#"<img src="{}" alt="" width="64" height="64" referrerpolicy="no-referrer" data-initial="{}">"#,
                escape(u),
                escape(&initial)
            )
        });
    let heading = identity.name.as_deref().unwrap_or(&identity.login);
    let optional = |v: Option<&str>| match v {
        Some(v) if !v.is_empty() => escape(v),
        _ => r#"<span class="none">not shared</span>"#.to_string(),
    };
    let rows = [
        ("Login", escape(&identity.login)),
        ("Name", optional(identity.name.as_deref())),
        ("Email", optional(identity.email.as_deref())),
        ("User id", escape(&identity.user_id)),
        ("Groups", chips(&identity.groups)),
        ("Roles", chips(&identity.roles)),
        ("Session ends", expiry(identity.expires_at, now)),
    ];
    let rows: String = rows
        .iter()
        .map(|(k, v)| format!("<dt>{k}</dt><dd>{v}</dd>"))
        .collect();
    let body = format!(
        r#"<p class="app">{app}</p><div class="who"><div class="avatar" aria-hidden="true">{initial}{img}</div><div><h1>{heading}</h1><span class="note">signed in with GitHub as {login}</span></div></div><dl>{rows}</dl><div class="actions">{sign_out}{back}</div>"#,
        app = escape(&pages.app_name),
        initial = escape(&initial),
        heading = escape(heading),
        login = escape(&identity.login),
        sign_out = html::post_button(sign_out_url, "Sign out"),
        back = html::secondary_link("/", "Back to the app"),
    );
    Reply::html(200, html::layout("Who am I", &body))
}

fn chips(items: &[String]) -> String {
    if items.is_empty() {
        return r#"<span class="none">none</span>"#.to_string();
    }
    items
        .iter()
        .map(|g| format!(r#"<span class="chip">{}</span>"#, escape(g)))
        .collect()
}

/// "2025-11-25 15:09:00 UTC (in 6 days 23 hours)".
fn expiry(expires_at: u64, now: u64) -> String {
    if expires_at == 0 {
        return r#"<span class="none">not known</span>"#.to_string();
    }
    let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(expires_at);
    let stamp = humantime::format_rfc3339_seconds(when)
        .to_string()
        .replace('T', " ")
        .replace('Z', " UTC");
    let relative = match expires_at.checked_sub(now) {
        Some(left) if left > 0 => format!("in {}", rough_duration(left)),
        _ => "already ended".to_string(),
    };
    format!("{} ({})", escape(&stamp), escape(&relative))
}

/// The two largest units: "6 days 23 hours", "5 minutes", "40 seconds".
fn rough_duration(secs: u64) -> String {
    let units = [
        ("day", 86_400),
        ("hour", 3_600),
        ("minute", 60),
        ("second", 1),
    ];
    let parts: Vec<String> = units
        .iter()
        .scan(secs, |left, (name, size)| {
            let n = *left / size;
            *left %= size;
            Some((n, *name))
        })
        .skip_while(|(n, _)| *n == 0)
        .take(2)
        .filter(|(n, _)| *n > 0)
        .map(|(n, name)| format!("{n} {name}{}", if n == 1 { "" } else { "s" }))
        .collect();
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person() -> Identity {
        let mut i = Identity::github("583231", "octocat");
        i.name = Some("The <Octocat>".into());
        i.email = Some("octocat@example.com".into());
        i.avatar_url = Some("https://avatars.githubusercontent.com/u/583231?v=4".into());
        i.groups = vec!["databio".into(), "databio/core".into()];
        i.roles = vec!["viewer".into(), "admin".into()];
        i.expires_at = 1_000_000 + 7 * 86_400 - 3_600;
        i
    }

    #[test]
    fn shows_everything_escaped_with_sign_out() {
        let pages = PagesSettings {
            app_name: "Demo & Co".into(),
            ..Default::default()
        };
        let r = me_page(&pages, &person(), 1_000_000, "/oauth2/sign_out");
        let body = String::from_utf8(r.body.to_vec()).unwrap();
        for want in [
            "octocat",
            "The &lt;Octocat&gt;",
            "octocat@example.com",
            "databio/core",
            "admin",
            "in 6 days 23 hours",
            "UTC",
            "Demo &amp; Co",
            r#"action="/oauth2/sign_out""#,
            r#"<img src="https://avatars.githubusercontent.com/u/583231?v=4""#,
        ] {
            assert!(body.contains(want), "{want} missing in {body}");
        }
        assert!(!body.contains("<Octocat>"));
    }

    #[test]
    fn an_http_avatar_is_not_loaded() {
        let mut i = person();
        i.avatar_url = Some("http://tracker.example/a.png".into());
        let r = me_page(&PagesSettings::default(), &i, 0, "/oauth2/sign_out");
        let body = String::from_utf8(r.body.to_vec()).unwrap();
        assert!(!body.contains("tracker.example"));
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(rough_duration(40), "40 seconds");
        assert_eq!(rough_duration(3_600), "1 hour");
        assert_eq!(rough_duration(90_061), "1 day 1 hour");
        assert_eq!(rough_duration(3_660), "1 hour 1 minute");
    }
}
