//! The per-request decision: who is asking, and may they in.

use crate::app::App;
use crate::identity::Identity;
use crate::pages::Failure;
use crate::reply::Reply;
use http::request::Parts;

pub enum Access {
    Allow(Identity),
    Deny(Reply),
}

/// `browser` chooses between a login redirect and a 401 for anonymous requests.
pub fn check(app: &App, req: &Parts, now: u64, browser: bool) -> Access {
    let Some(identity) = app.identity(&req.headers, now) else {
        let rd = req.uri.path_and_query().map_or("/", |pq| pq.as_str());
        let start_url = app.start_url(rd);
        return Access::Deny(if browser {
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
            .reply(browser),
        );
    }
    Access::Allow(identity)
}
