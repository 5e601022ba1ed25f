//! Every page and JSON error a person or a script can meet, each saying what happened and what
//! to do next. Pages are self-contained HTML (inline CSS, no external fonts or scripts).

mod client_confirm;
mod html;
mod login_loop;
mod me;
mod sign_out;

pub use client_confirm::{client_confirm_page, ClientConfirm};
pub use html::escape;
pub use login_loop::LoopHint;
pub use me::me_page;
pub use sign_out::sign_out_everywhere_page;

pub use crate::config::PagesSettings;
use crate::reply::Reply;
use serde_json::json;

/// Everything that can stop a request, rendered for browsers (HTML) or API clients (JSON).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// No or invalid credentials from an API client.
    SignInRequired {
        sign_in_url: String,
    },
    /// Signed in, but no allow rule admits this login; or (`login: None`) a rule that denies
    /// everyone.
    Forbidden {
        login: Option<String>,
        sign_out_url: String,
    },
    /// `Authorization` carried a token or key Gatehouse could not accept.
    InvalidCredentials {
        reason: String,
        basic: bool,
    },
    /// A request Gatehouse cannot act on (a bad parameter).
    BadRequest {
        reason: String,
    },
    /// A state-changing request that another site made (its `Origin` or `Sec-Fetch-Site`).
    CrossSite {
        reason: String,
    },
    /// A body of another type than the endpoint takes (`expected`).
    UnsupportedMediaType {
        expected: &'static str,
    },
    /// The path uses an encoding upstreams read differently, or is malformed.
    BadPath {
        reason: String,
    },
    /// Memberships are due a re-check, GitHub has not answered for longer than `stale_grace`.
    MembershipUnconfirmed,
    /// The session store (Redis) cannot be reached, so no session can be checked.
    StoreUnavailable,
    /// `state` missing, unknown, reused or expired.
    LoginExpired {
        start_url: String,
    },
    /// GitHub refused or the person cancelled at GitHub.
    LoginFailed {
        reason: String,
        start_url: String,
    },
    /// GitHub could not be reached during sign-in.
    GithubUnavailable {
        start_url: String,
    },
    /// GitHub rejected this gate's own OAuth settings: only the operator can fix it.
    GatewayMisconfigured {
        error: String,
    },
    /// The protected app did not answer.
    UpstreamUnavailable,
    NotFound,
    /// The same browser keeps coming back to sign-in without its session cookie arriving:
    /// `hints` are the causes Gatehouse could see (empty: none for certain).
    LoginLoop {
        hints: Vec<LoopHint>,
        start_url: String,
    },
}

impl Failure {
    pub fn status(&self) -> u16 {
        match self {
            Failure::SignInRequired { .. } | Failure::InvalidCredentials { .. } => 401,
            Failure::Forbidden { .. } | Failure::LoginFailed { .. } | Failure::CrossSite { .. } => {
                403
            }
            Failure::UnsupportedMediaType { .. } => 415,
            Failure::LoginExpired { .. }
            | Failure::BadPath { .. }
            | Failure::BadRequest { .. }
            | Failure::LoginLoop { .. } => 400,
            Failure::MembershipUnconfirmed | Failure::StoreUnavailable => 503,
            Failure::GithubUnavailable { .. } | Failure::UpstreamUnavailable => 502,
            Failure::GatewayMisconfigured { .. } => 500,
            Failure::NotFound => 404,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Failure::SignInRequired { .. } => "unauthorized",
            Failure::InvalidCredentials { .. } => "invalid_token",
            Failure::Forbidden { .. } => "forbidden",
            Failure::LoginExpired { .. } => "login_expired",
            Failure::BadPath { .. } => "bad_path",
            Failure::CrossSite { .. } => "cross_site_request",
            Failure::UnsupportedMediaType { .. } => "unsupported_media_type",
            Failure::BadRequest { .. } => "invalid_request",
            Failure::MembershipUnconfirmed => "membership_unconfirmed",
            Failure::StoreUnavailable => "store_unavailable",
            Failure::LoginFailed { .. } => "login_failed",
            Failure::GithubUnavailable { .. } => "github_unavailable",
            Failure::GatewayMisconfigured { .. } => "gateway_misconfigured",
            Failure::UpstreamUnavailable => "upstream_unavailable",
            Failure::NotFound => "not_found",
            Failure::LoginLoop { .. } => "login_loop",
        }
    }

    fn message(&self) -> String {
        match self {
            Failure::SignInRequired { .. } => {
                "Sign-in required: send a session cookie from a GitHub sign-in.".into()
            }
            Failure::Forbidden {
                login: Some(login), ..
            } => format!(
                "You are signed in as {login}, but that account is not allowed here. Sign out and sign in with another account, or ask the owner of this app for access."
            ),
            Failure::Forbidden { login: None, .. } => {
                "This address is closed to everyone. If you think you should reach it, ask the owner of this app.".into()
            }
            Failure::InvalidCredentials { reason, .. } => format!(
                "The credentials in the Authorization header were refused: {reason}. Get a new token (or check the API key) and try again."
            ),
            Failure::BadRequest { reason } => format!(
                "This request was refused: {reason}. Check the link or the program that sent it, then try again."
            ),
            Failure::CrossSite { reason } => format!(
                "This request was refused because another site made it ({reason}). Gatehouse signs people in and out only for requests from this site's own pages; go back to the app and use its buttons. Scripts and command-line tools send no Origin header and are not affected."
            ),
            Failure::UnsupportedMediaType { expected } => format!(
                "This endpoint takes a body of type {expected}; send it with that Content-Type header (parameters such as `; charset=utf-8` are fine)."
            ),
            Failure::BadPath { reason } => format!(
                "This address was refused: {reason}. Check the link, or open the app's start page."
            ),
            Failure::MembershipUnconfirmed => {
                "Your GitHub memberships are due a re-check and GitHub has not answered for a while, so access cannot be confirmed. Try again in a few minutes.".into()
            }
            Failure::StoreUnavailable => {
                "The session store is unavailable, so your session cannot be checked right now and nothing was let through. Try again in a moment; if this lasts, tell the site's operator that Gatehouse cannot reach its session store (Redis).".into()
            }
            Failure::LoginExpired { .. } => {
                "Your sign-in attempt expired (it must finish within 10 minutes), was already used, or was started in another browser or tab that has since finished. Sign in again. If this keeps happening, check that your browser accepts cookies from this site.".into()
            }
            Failure::LoginFailed { reason, .. } => {
                format!("GitHub sign-in did not complete: {reason}. Sign in again, and approve access when GitHub asks.")
            }
            Failure::GithubUnavailable { .. } => {
                "GitHub could not be reached to finish signing you in. Wait a moment and try again.".into()
            }
            Failure::GatewayMisconfigured { error } => format!(
                "GitHub rejected this site's sign-in settings ({error}). Nothing you can do will fix this: please tell the site's operator, who should check github.client_id, github.client_secret and the callback URL registered at GitHub."
            ),
            Failure::UpstreamUnavailable => {
                "The app behind this gate did not answer. Try again in a moment; if it keeps happening, tell the app's operator.".into()
            }
            Failure::NotFound => {
                "There is nothing at this address. Check the link, or go to the app's start page.".into()
            }
            Failure::LoginLoop { hints, .. } => login_loop::message(hints),
        }
    }

    pub fn reply(&self, browser: bool) -> Reply {
        let status = self.status();
        let reply = if browser {
            Reply::html(status, self.page())
        } else {
            let mut body = json!({"error": self.code(), "message": self.message()});
            if let Failure::SignInRequired { sign_in_url } = self {
                body["sign_in_url"] = json!(sign_in_url);
            }
            if let Failure::UnsupportedMediaType { expected } = self {
                body["expected"] = json!(expected);
            }
            if let Failure::LoginLoop { hints, .. } = self {
                body["hints"] = json!(hints.iter().map(LoopHint::code).collect::<Vec<_>>());
            }
            Reply::json(status, &body)
        };
        match self {
            Failure::SignInRequired { .. } => {
                reply.header("WWW-Authenticate", r#"Bearer realm="gatehouse""#)
            }
            Failure::MembershipUnconfirmed => reply.header("Retry-After", "30"),
            Failure::StoreUnavailable => reply.header("Retry-After", "5"),
            Failure::InvalidCredentials { basic: true, .. } => {
                reply.header("WWW-Authenticate", r#"Basic realm="gatehouse""#)
            }
            Failure::InvalidCredentials { basic: false, .. } => reply.header(
                "WWW-Authenticate",
                r#"Bearer realm="gatehouse", error="invalid_token""#,
            ),
            _ => reply,
        }
    }

    fn page(&self) -> String {
        let message = escape(&self.message());
        match self {
            Failure::SignInRequired { sign_in_url } => html::page(
                "Sign in required",
                &message,
                &html::button_link(sign_in_url, "Sign in with GitHub"),
            ),
            Failure::Forbidden {
                login: Some(_),
                sign_out_url,
            } => html::page(
                "Access denied",
                &message,
                &html::post_button(sign_out_url, "Sign out"),
            ),
            Failure::Forbidden { login: None, .. } => html::page(
                "Access denied",
                &message,
                &html::button_link("/", "Start page"),
            ),
            Failure::InvalidCredentials { .. } => html::page(
                "Credentials refused",
                &message,
                &html::button_link("/", "Start page"),
            ),
            Failure::BadRequest { .. } => html::page(
                "Request refused",
                &message,
                &html::button_link("/", "Start page"),
            ),
            Failure::CrossSite { .. } => html::page(
                "Request from another site refused",
                &message,
                &html::button_link("/", "Start page"),
            ),
            Failure::UnsupportedMediaType { .. } => html::page(
                "Request refused",
                &message,
                &html::button_link("/", "Start page"),
            ),
            Failure::BadPath { .. } => html::page(
                "Address refused",
                &message,
                &html::button_link("/", "Start page"),
            ),
            Failure::MembershipUnconfirmed => html::page(
                "Cannot confirm access",
                &message,
                &html::button_link("", "Try again"),
            ),
            Failure::StoreUnavailable => html::page(
                "Session store unavailable",
                &message,
                &html::button_link("", "Try again"),
            ),
            Failure::LoginExpired { start_url }
            | Failure::LoginFailed { start_url, .. }
            | Failure::GithubUnavailable { start_url } => html::page(
                match self {
                    Failure::LoginExpired { .. } => "Sign-in expired",
                    Failure::LoginFailed { .. } => "Sign-in failed",
                    _ => "GitHub is unreachable",
                },
                &message,
                &html::button_link(start_url, "Sign in again"),
            ),
            Failure::UpstreamUnavailable => html::page(
                "App unavailable",
                &message,
                &html::button_link("/", "Try again"),
            ),
            Failure::GatewayMisconfigured { .. } => {
                html::page("Sign-in is misconfigured", &message, "")
            }
            Failure::NotFound => {
                html::page("Not found", &message, &html::button_link("/", "Start page"))
            }
            Failure::LoginLoop { hints, start_url } => login_loop::page(hints, start_url),
        }
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_401_has_www_authenticate_and_json() {
        let r = Failure::SignInRequired {
            sign_in_url: "/oauth2/start".into(),
        }
        .reply(false);
        assert_eq!(r.status, 401);
        assert!(r.headers.iter().any(|(n, _)| *n == "WWW-Authenticate"));
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["error"], "unauthorized");
    }

    #[test]
    fn forbidden_page_names_login_escaped() {
        let r = Failure::Forbidden {
            login: Some("<script>".into()),
            sign_out_url: "/oauth2/sign_out".into(),
        }
        .reply(true);
        let body = String::from_utf8(r.body.to_vec()).unwrap();
        assert!(body.contains("&lt;script&gt;") && !body.contains("<script>"));
        assert!(body.contains("Sign out"));
    }
}
