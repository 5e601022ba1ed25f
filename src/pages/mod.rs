//! Every page and JSON error a person or a script can meet, each saying what happened and what
//! to do next ([`Refusal`] is rendered in one place, `refusal.rs`). Pages are self-contained
//! HTML (inline CSS, no external fonts or scripts).

mod client_confirm;
mod github_refusal;
mod html;
mod login_loop;
mod me;
mod refusal;
mod sign_out;

pub use client_confirm::{client_confirm_page, ClientConfirm};
pub use github_refusal::GithubRefusal;
pub use html::escape;
pub use login_loop::LoopHint;
pub use me::me_page;
pub use refusal::{Denied, Refusal};
pub use sign_out::sign_out_everywhere_page;

pub use crate::config::PagesSettings;
use crate::reply::Reply;

/// The sign-in page: the app's name (and logo and note, when configured) and a GitHub button
/// that starts the login and returns to `start_url`'s `rd`.
pub fn sign_in_page(pages: &PagesSettings, start_url: &str) -> Reply {
    let name = escape(&pages.app_name);
    let logo = pages.logo_url.as_deref().map_or_else(String::new, |url| {
        format!(r#"<img class="logo" src="{}" alt="">"#, escape(url))
    });
    let custom = pages.message.as_deref().map_or_else(String::new, |m| {
        format!(r#"<p class="custom">{}</p>"#, escape(m))
    });
    let body = format!(
        r#"{logo}<p class="app">{name}</p><h1>Sign in to {name}</h1>{custom}<p>{name} is protected by Gatehouse. Sign in with your GitHub account to continue; GitHub will ask you to approve access the first time.</p><div class="actions"><a class="button" href="{start}">{mark}Sign in with GitHub</a></div><p class="note">Gatehouse reads your GitHub login, name, email and, when this app needs them, your organization and team memberships. It never sees your GitHub password.</p>"#,
        start = escape(start_url),
        mark = html::GITHUB_MARK,
    );
    Reply::html(
        200,
        html::layout(&format!("Sign in to {}", pages.app_name), &body),
    )
}
