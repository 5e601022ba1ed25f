//! [`Refusal`]: every reason Gatehouse answers a request itself instead of doing what was
//! asked, and [`Refusal::reply`], the one place such an answer is rendered: a page (or a
//! sign-in redirect) for a browser navigation, the JSON error shape
//! `{"error": CODE, "message": TEXT, …}` for everyone else, with the status and the headers the
//! client needs (`WWW-Authenticate`, `Retry-After`, `Allow`).
//!
//! The words, used the same way everywhere:
//! - the access decision (`auth::access`) either **allows** a request (`Access::Allow`, carrying
//!   what was [`Granted`](crate::auth::access::Granted)) or **denies** it (`Access::Deny`,
//!   carrying a [`Denied`]: a refusal and the cookies to set with it);
//! - a **refusal** says why and what the client needs; it is rendered here and nowhere else;
//! - the metrics' and access log's **decision** (`observe::Decision`) is taken from the refusal
//!   ([`Decision::of_refusal`](crate::observe::Decision::of_refusal)), never from a status code.

use super::github_refusal::GithubRefusal;
use super::html::{self, escape};
use super::login_loop::{self, LoopHint};
use crate::reply::Reply;
use serde_json::json;

/// Why Gatehouse answers a request itself, and what the client needs to hear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No credentials where an identity is needed: browsers are sent to sign in (302 to
    /// `sign_in_url`), API clients get 401 with `WWW-Authenticate` and `sign_in_url`.
    SignInRequired {
        sign_in_url: String,
    },
    /// Signed in, but no allow rule admits this login; or (`login: None`) a rule that denies
    /// everyone.
    Forbidden {
        login: Option<String>,
        sign_out_url: String,
    },
    /// `Authorization` carried a token or key Gatehouse could not accept (always JSON: 401
    /// with `WWW-Authenticate`).
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
    /// Something an API credential needs is down (the token store, an OIDC issuer's keys):
    /// 503 JSON with `error` and `Retry-After: 5`, never an allow nor a misleading 401.
    Unavailable {
        error: &'static str,
        message: &'static str,
    },
    /// Over a rate limit: 429 with `Retry-After` (whole seconds, at least 1).
    TooManyRequests {
        retry_after: u64,
    },
    /// The request header is over its budget (`limit` bytes; `cookies`: the `Cookie` header's
    /// own budget): 431.
    HeadersTooLarge {
        cookies: bool,
        limit: usize,
    },
    /// The body of a request to one of Gatehouse's endpoints is over its cap: 413 (JSON).
    BodyTooLarge {
        limit: usize,
    },
    /// The endpoint does not take this method: 405 with `Allow` (JSON).
    MethodNotAllowed {
        allow: String,
        message: String,
    },
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
    /// GitHub would not say what Gatehouse needs (an org's app restrictions, SAML single
    /// sign-on, a missing scope, a rate limit): who can fix it and, at `retry_url`, a fresh
    /// try (a new sign-in, or the same address again).
    GithubRefused {
        /// Boxed: its links would make every refusal larger.
        refusal: Box<GithubRefusal>,
        retry_url: String,
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
    /// An API endpoint's own refusal in its protocol's words (the token endpoints' OAuth error
    /// codes, session administration, the webhook): always JSON.
    Api {
        status: u16,
        error: &'static str,
        message: String,
        retry_after: Option<u64>,
    },
}

/// A denied request: the refusal, the cookies to set with it (a session that ended during its
/// re-check is cleared), and whether it is answered in JSON whatever the request looks like
/// (a refusal of an `Authorization` credential: browsers do not send those by themselves).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied {
    pub refusal: Refusal,
    pub set_cookies: Vec<String>,
    pub json_only: bool,
}

impl From<Refusal> for Denied {
    fn from(refusal: Refusal) -> Denied {
        Denied {
            refusal,
            set_cookies: Vec::new(),
            json_only: false,
        }
    }
}

impl Denied {
    /// A refusal of an API credential: answered in JSON.
    pub fn json(refusal: Refusal) -> Denied {
        Denied {
            json_only: true,
            ..Denied::from(refusal)
        }
    }

    pub fn cookies(mut self, set_cookies: impl IntoIterator<Item = String>) -> Denied {
        self.set_cookies.extend(set_cookies);
        self
    }

    /// Is it answered with a page (or a redirect) for a request whose facts say `browser`?
    pub fn as_page(&self, browser: bool) -> bool {
        browser && !self.json_only && !self.refusal.json_only()
    }

    /// The answer, for a request whose facts say `browser`.
    pub fn reply(self, browser: bool) -> Reply {
        let page = self.as_page(browser);
        self.refusal.reply(page).cookies(self.set_cookies)
    }
}

impl Refusal {
    /// An API endpoint's own refusal, in its protocol's words, without `Retry-After`.
    pub fn api(status: u16, error: &'static str, message: impl Into<String>) -> Refusal {
        Refusal::Api {
            status,
            error,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 503 `store_unavailable` for an API endpoint (session administration, the webhook),
    /// naming the store's error; retried after 5 s (GitHub redelivers a failed webhook).
    pub fn api_store_unavailable(e: &impl std::fmt::Display) -> Refusal {
        Refusal::Api {
            status: 503,
            error: "store_unavailable",
            message: e.to_string(),
            retry_after: Some(5),
        }
    }

    /// The status it is answered with (a browser sent to sign in gets 302 instead of 401).
    pub fn status(&self) -> u16 {
        match self {
            Refusal::SignInRequired { .. } | Refusal::InvalidCredentials { .. } => 401,
            Refusal::Forbidden { .. } | Refusal::LoginFailed { .. } | Refusal::CrossSite { .. } => {
                403
            }
            Refusal::UnsupportedMediaType { .. } => 415,
            Refusal::LoginExpired { .. }
            | Refusal::BadPath { .. }
            | Refusal::BadRequest { .. }
            | Refusal::LoginLoop { .. } => 400,
            Refusal::MembershipUnconfirmed
            | Refusal::StoreUnavailable
            | Refusal::Unavailable { .. } => 503,
            Refusal::TooManyRequests { .. } => 429,
            Refusal::HeadersTooLarge { .. } => 431,
            Refusal::BodyTooLarge { .. } => 413,
            Refusal::MethodNotAllowed { .. } => 405,
            Refusal::GithubUnavailable { .. } | Refusal::UpstreamUnavailable => 502,
            Refusal::GatewayMisconfigured { .. } => 500,
            Refusal::GithubRefused { refusal, .. } => refusal.status(),
            Refusal::NotFound => 404,
            Refusal::Api { status, .. } => *status,
        }
    }

    /// Refusals only API clients meet: always answered in JSON.
    fn json_only(&self) -> bool {
        matches!(
            self,
            Refusal::InvalidCredentials { .. }
                | Refusal::Unavailable { .. }
                | Refusal::BodyTooLarge { .. }
                | Refusal::MethodNotAllowed { .. }
                | Refusal::Api { .. }
        )
    }

    /// The JSON `error` code.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::SignInRequired { .. } => "unauthorized",
            Refusal::InvalidCredentials { .. } => "invalid_token",
            Refusal::Forbidden { .. } => "forbidden",
            Refusal::LoginExpired { .. } => "login_expired",
            Refusal::BadPath { .. } => "bad_path",
            Refusal::CrossSite { .. } => "cross_site_request",
            Refusal::UnsupportedMediaType { .. } => "unsupported_media_type",
            Refusal::BadRequest { .. } => "invalid_request",
            Refusal::MembershipUnconfirmed => "membership_unconfirmed",
            Refusal::StoreUnavailable => "store_unavailable",
            Refusal::Unavailable { error, .. } => error,
            Refusal::TooManyRequests { .. } => "rate_limited",
            Refusal::HeadersTooLarge { .. } => "headers_too_large",
            Refusal::BodyTooLarge { .. } => "body_too_large",
            Refusal::MethodNotAllowed { .. } => "method_not_allowed",
            Refusal::LoginFailed { .. } => "login_failed",
            Refusal::GithubUnavailable { .. } => "github_unavailable",
            Refusal::GatewayMisconfigured { .. } => "gateway_misconfigured",
            Refusal::GithubRefused { refusal, .. } => refusal.code(),
            Refusal::UpstreamUnavailable => "upstream_unavailable",
            Refusal::NotFound => "not_found",
            Refusal::LoginLoop { .. } => "login_loop",
            Refusal::Api { error, .. } => error,
        }
    }

    fn message(&self) -> String {
        match self {
            Refusal::SignInRequired { .. } => {
                "Sign-in required: send a session cookie from a GitHub sign-in.".into()
            }
            Refusal::Forbidden {
                login: Some(login), ..
            } => format!(
                "You are signed in as {login}, but that account is not allowed here. Sign out and sign in with another account, or ask the owner of this app for access."
            ),
            Refusal::Forbidden { login: None, .. } => {
                "This address is closed to everyone. If you think you should reach it, ask the owner of this app.".into()
            }
            Refusal::InvalidCredentials { reason, .. } => format!(
                "The credentials in the Authorization header were refused: {reason}. Get a new token (or check the API key) and try again."
            ),
            Refusal::BadRequest { reason } => format!(
                "This request was refused: {reason}. Check the link or the program that sent it, then try again."
            ),
            Refusal::CrossSite { reason } => format!(
                "This request was refused because another site made it ({reason}). Gatehouse signs people in and out only for requests from this site's own pages; go back to the app and use its buttons. Scripts and command-line tools send no Origin header and are not affected."
            ),
            Refusal::UnsupportedMediaType { expected } => format!(
                "This endpoint takes a body of type {expected}; send it with that Content-Type header (parameters such as `; charset=utf-8` are fine)."
            ),
            Refusal::BadPath { reason } => format!(
                "This address was refused: {reason}. Check the link, or open the app's start page."
            ),
            Refusal::MembershipUnconfirmed => {
                "Your GitHub memberships are due a re-check and GitHub has not answered for a while, so access cannot be confirmed. Try again in a few minutes.".into()
            }
            Refusal::StoreUnavailable => {
                "The session store is unavailable, so your session cannot be checked right now and nothing was let through. Try again in a moment; if this lasts, tell the site's operator that Gatehouse cannot reach its session store (Redis).".into()
            }
            Refusal::Unavailable { message, .. } => (*message).into(),
            Refusal::TooManyRequests { retry_after } => format!(
                "Too many attempts from your address. Wait {retry_after} second{} and try again.",
                if *retry_after == 1 { "" } else { "s" }
            ),
            Refusal::HeadersTooLarge {
                cookies: true,
                limit,
            } => format!(
                "Your browser sent more than {} KiB of cookies for this site. Clear this site's cookies and try again.",
                limit / 1024
            ),
            Refusal::HeadersTooLarge {
                cookies: false,
                limit,
            } => format!(
                "The request's headers are larger than the {limit} bytes this site accepts. If this keeps happening, clear this site's cookies."
            ),
            Refusal::BodyTooLarge { limit } => {
                format!("request bodies to this endpoint are limited to {limit} bytes")
            }
            Refusal::MethodNotAllowed { message, .. } | Refusal::Api { message, .. } => {
                message.clone()
            }
            Refusal::LoginExpired { .. } => {
                "Your sign-in attempt expired (it must finish within 10 minutes), was already used, or was started in another browser or tab that has since finished. Sign in again. If this keeps happening, check that your browser accepts cookies from this site.".into()
            }
            Refusal::LoginFailed { reason, .. } => {
                format!("GitHub sign-in did not complete: {reason}. Sign in again, and approve access when GitHub asks.")
            }
            Refusal::GithubUnavailable { .. } => {
                "GitHub could not be reached to finish signing you in. Wait a moment and try again.".into()
            }
            Refusal::GatewayMisconfigured { error } => format!(
                "GitHub rejected this site's sign-in settings ({error}). Nothing you can do will fix this: please tell the site's operator, who should {}",
                match error.as_str() {
                    "redirect_uri_mismatch" => "make the callback URL registered for the OAuth app at GitHub match this site's own (server.public_url followed by the callback path, /oauth2/callback by default).",
                    "application_suspended" => "check the OAuth app at GitHub: GitHub has suspended it, and only its owner (with GitHub Support) can restore it.",
                    _ => "check github.client_id, github.client_secret and the callback URL registered at GitHub.",
                }
            ),
            Refusal::GithubRefused { refusal, .. } => refusal.message(),
            Refusal::UpstreamUnavailable => {
                "The app behind this gate did not answer. Try again in a moment; if it keeps happening, tell the app's operator.".into()
            }
            Refusal::NotFound => {
                "There is nothing at this address. Check the link, or go to the app's start page.".into()
            }
            Refusal::LoginLoop { hints, .. } => login_loop::message(hints),
        }
    }

    /// The answer: a page (`page`, for a browser navigation; a sign-in redirect where one is
    /// needed) or JSON. Refusals only API clients meet are JSON either way.
    pub fn reply(&self, page: bool) -> Reply {
        let page = page && !self.json_only();
        let status = self.status();
        let reply = match self {
            Refusal::SignInRequired { sign_in_url } if page => {
                return Reply::redirect(sign_in_url.clone())
            }
            _ if page => Reply::html(status, self.page()),
            _ => {
                let message = self.message();
                // RFC 6749 §5.2's name for the same text, which OAuth libraries read.
                let description = oauth_description(&message);
                let mut body = json!({"error": self.code(), "error_description": description, "message": message});
                match self {
                    Refusal::SignInRequired { sign_in_url } => {
                        body["sign_in_url"] = json!(sign_in_url)
                    }
                    Refusal::UnsupportedMediaType { expected } => {
                        body["expected"] = json!(expected)
                    }
                    Refusal::LoginLoop { hints, .. } => {
                        body["hints"] = json!(hints.iter().map(LoopHint::code).collect::<Vec<_>>())
                    }
                    Refusal::TooManyRequests { retry_after } => {
                        body["retry_after"] = json!(retry_after)
                    }
                    Refusal::GithubRefused { refusal, retry_url } => {
                        refusal.json_fields(&mut body);
                        body["retry_url"] = json!(retry_url);
                    }
                    _ => {}
                }
                Reply::json(status, &body)
            }
        };
        match self {
            Refusal::SignInRequired { .. } => {
                reply.header("WWW-Authenticate", r#"Bearer realm="gatehouse""#)
            }
            Refusal::MembershipUnconfirmed => reply.header("Retry-After", "30"),
            Refusal::StoreUnavailable | Refusal::Unavailable { .. } => {
                reply.header("Retry-After", "5")
            }
            Refusal::TooManyRequests { retry_after } => {
                reply.header("Retry-After", retry_after.to_string())
            }
            Refusal::Api {
                retry_after: Some(secs),
                ..
            } => reply.header("Retry-After", secs.to_string()),
            Refusal::GithubRefused { refusal, .. } => match refusal.retry_after() {
                Some(secs) => reply.header("Retry-After", secs.to_string()),
                None => reply,
            },
            Refusal::MethodNotAllowed { allow, .. } => reply.header("Allow", allow.clone()),
            Refusal::InvalidCredentials { basic: true, .. } => {
                reply.header("WWW-Authenticate", r#"Basic realm="gatehouse""#)
            }
            Refusal::InvalidCredentials { basic: false, .. } => reply.header(
                "WWW-Authenticate",
                r#"Bearer realm="gatehouse", error="invalid_token""#,
            ),
            _ => reply,
        }
    }

    fn page(&self) -> String {
        let message = escape(&self.message());
        let start_page = || html::button_link("/", "Start page");
        let try_again = || html::button_link("", "Try again");
        match self {
            Refusal::SignInRequired { sign_in_url } => html::page(
                "Sign in required",
                &message,
                &html::button_link(sign_in_url, "Sign in with GitHub"),
            ),
            Refusal::Forbidden {
                login: Some(_),
                sign_out_url,
            } => html::page(
                "Access denied",
                &message,
                &html::post_button(sign_out_url, "Sign out"),
            ),
            Refusal::Forbidden { login: None, .. } => {
                html::page("Access denied", &message, &start_page())
            }
            Refusal::InvalidCredentials { .. } => {
                html::page("Credentials refused", &message, &start_page())
            }
            Refusal::BadRequest { .. } | Refusal::UnsupportedMediaType { .. } => {
                html::page("Request refused", &message, &start_page())
            }
            Refusal::CrossSite { .. } => {
                html::page("Request from another site refused", &message, &start_page())
            }
            Refusal::BadPath { .. } => html::page("Address refused", &message, &start_page()),
            Refusal::MembershipUnconfirmed => {
                html::page("Cannot confirm access", &message, &try_again())
            }
            Refusal::StoreUnavailable => {
                html::page("Session store unavailable", &message, &try_again())
            }
            Refusal::Unavailable { .. } => html::page("Unavailable", &message, &try_again()),
            Refusal::TooManyRequests { .. } => html::page("Too many attempts", &message, ""),
            Refusal::HeadersTooLarge { .. } => html::page("Request too large", &message, ""),
            Refusal::BodyTooLarge { .. }
            | Refusal::MethodNotAllowed { .. }
            | Refusal::Api { .. } => html::page("Request refused", &message, &start_page()),
            Refusal::LoginExpired { start_url }
            | Refusal::LoginFailed { start_url, .. }
            | Refusal::GithubUnavailable { start_url } => html::page(
                match self {
                    Refusal::LoginExpired { .. } => "Sign-in expired",
                    Refusal::LoginFailed { .. } => "Sign-in failed",
                    _ => "GitHub is unreachable",
                },
                &message,
                &html::button_link(start_url, "Sign in again"),
            ),
            Refusal::UpstreamUnavailable => html::page(
                "App unavailable",
                &message,
                &html::button_link("/", "Try again"),
            ),
            Refusal::GatewayMisconfigured { .. } => {
                html::page("Sign-in is misconfigured", &message, "")
            }
            Refusal::GithubRefused { refusal, retry_url } => refusal.page(retry_url),
            Refusal::NotFound => html::page("Not found", &message, &start_page()),
            Refusal::LoginLoop { hints, start_url } => login_loop::page(hints, start_url),
        }
    }
}

/// `text` within what RFC 6749 §5.2 allows in `error_description` (printable ASCII without `"`
/// and `\`): anything else becomes `?` (typographic quotes and dashes become ASCII ones).
fn oauth_description(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\u{2018}' | '\u{2019}' | '\u{201c}' | '\u{201d}' | '"' => '\'',
            '\u{2013}' | '\u{2014}' => '-',
            '\u{2026}' => '.',
            '\\' => '/',
            c if (' '..='~').contains(&c) => c,
            _ => '?',
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn error_descriptions_stay_within_rfc_6749_characters() {
        let out = oauth_description("“GitHub” says — don’t\\retry… é\n\"x\"");
        assert_eq!(out, "'GitHub' says - don't/retry. ??'x'");
        assert!(out
            .chars()
            .all(|c| (' '..='~').contains(&c) && c != '"' && c != '\\'));
    }

    use super::*;

    #[test]
    fn api_401_has_www_authenticate_and_json() {
        let r = Refusal::SignInRequired {
            sign_in_url: "/oauth2/start".into(),
        }
        .reply(false);
        assert_eq!(r.status, 401);
        assert!(r.headers.iter().any(|(n, _)| *n == "WWW-Authenticate"));
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["error"], "unauthorized");
        assert_eq!(v["sign_in_url"], "/oauth2/start");
        // A browser is sent to sign in instead.
        let r = Refusal::SignInRequired {
            sign_in_url: "/oauth2/start".into(),
        }
        .reply(true);
        assert_eq!(r.status, 302);
        assert!(r.headers.contains(&("Location", "/oauth2/start".into())));
    }

    #[test]
    fn forbidden_page_names_login_escaped() {
        let r = Refusal::Forbidden {
            login: Some("<script>".into()),
            sign_out_url: "/oauth2/sign_out".into(),
        }
        .reply(true);
        let body = String::from_utf8(r.body.to_vec()).unwrap();
        assert!(body.contains("&lt;script&gt;") && !body.contains("<script>"));
        assert!(body.contains("Sign out"));
    }

    #[test]
    fn limits_answers_say_what_to_do() {
        let r = Refusal::TooManyRequests { retry_after: 7 }.reply(false);
        assert_eq!(r.status, 429);
        assert!(r.headers.contains(&("Retry-After", "7".into())));
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body["error"], "rate_limited");
        assert_eq!(body["retry_after"], 7);
        let page = Refusal::TooManyRequests { retry_after: 1 }.reply(true);
        let text = std::str::from_utf8(&page.body).unwrap();
        assert!(text.contains("Wait 1 second and"), "{text}");
        assert!(text.contains("Too many attempts"), "{text}");
        let r = Refusal::HeadersTooLarge {
            cookies: true,
            limit: 16 * 1024,
        }
        .reply(true);
        assert_eq!(r.status, 431);
        assert!(std::str::from_utf8(&r.body).unwrap().contains("cookies"));
        let r = Refusal::HeadersTooLarge {
            cookies: false,
            limit: 4096,
        }
        .reply(false);
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body["error"], "headers_too_large");
    }

    #[test]
    fn api_only_refusals_are_json_for_browsers_too() {
        let denied = Denied::from(Refusal::MethodNotAllowed {
            allow: "POST".into(),
            message: "GET is not allowed here".into(),
        });
        assert!(!denied.as_page(true));
        let r = denied.reply(true);
        assert_eq!(r.status, 405);
        assert!(r.headers.contains(&("Allow", "POST".into())));
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body["error"], "method_not_allowed");
        let throttled = Denied::json(Refusal::TooManyRequests { retry_after: 2 });
        assert!(!throttled.as_page(true));
        let r = Denied::from(Refusal::StoreUnavailable)
            .cookies(["a=; Max-Age=0".to_string()])
            .reply(true);
        assert_eq!(r.status, 503);
        assert!(r.headers.contains(&("Set-Cookie", "a=; Max-Age=0".into())));
        assert!(r.headers.contains(&("Retry-After", "5".into())));
    }
}
