//! The per-request decision: who is asking, and may they in.

use super::client_kind::is_browser_navigation;
use crate::app::App;
use crate::identity::Identity;
use crate::pages::Failure;
use crate::reply::Reply;
use http::request::Parts;

pub enum Access {
    Allow(Identity),
    Deny(Reply),
}

/// How to answer someone who may not pass.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum DenyAs {
    /// Login redirect or page for browser navigations, JSON for API clients.
    Negotiate,
    /// Always JSON and 401/403 (userinfo, forward-auth).
    Api,
}

pub fn check(app: &App, req: &Parts, now: u64, deny_as: DenyAs) -> Access {
    // Decided only on the way out: admitted requests never pay for it.
    let browser = || deny_as == DenyAs::Negotiate && is_browser_navigation(req);
    let Some(identity) = app.identity(&req.headers, now) else {
        let rd = req.uri.path_and_query().map_or("/", |pq| pq.as_str());
        let start_url = app.start_url(rd);
        return Access::Deny(if browser() {
            Reply::redirect(start_url)
        } else {
            Failure::SignInRequired {
                sign_in_url: start_url,
            }
            .reply(false)
        });
    };
    if !app.admission.admits(&identity) {
        return Access::Deny(
            Failure::Forbidden {
                login: identity.login,
                sign_out_url: format!("{}/sign_out", app.settings.proxy_prefix),
            }
            .reply(browser()),
        );
    }
    Access::Allow(identity)
}
