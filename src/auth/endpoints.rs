//! The endpoint table: each of Gatehouse's own endpoints declared once ([`ENDPOINTS`]), with
//! everything the gate does before its handler runs. Which paths are Gatehouse's
//! ([`own_endpoint`], [`super::is_own_path`]), the body cap the gate reads a request up to
//! ([`Endpoint::max_body`]), the sign-in rate limit, the same-origin and body-type check of
//! state-changing requests, CORS, and the 405 answer with its `Allow` header all come from
//! here; [`answer`] runs them in that order and then the handler.
//!
//! Adding an endpoint: a row in [`ENDPOINTS`], a [`Handler`] variant, and its arm in [`answer`].
//! The table is data ([`endpoints`]), so the endpoint reference in the docs is generated from
//! it.

use super::facts::{DenyAs, RequestFacts};
use super::same_origin::{self, Takes};
use super::{
    admin, callback, client_confirm, handoff, metadata, sign_out, small, start, token, webhook,
};
use crate::observe::Decision;
use crate::pages::{Denied, Refusal};
use crate::reply::Reply;
use crate::runtime::Runtime;
use http::Method;

/// Where the public keys of the upstream assertion and of ES256 access tokens are published.
pub const JWKS_PATH: &str = "/.well-known/jwks.json";

/// The body cap of most endpoints (JSON and forms are small).
const SMALL_BODY: usize = 64 * 1024;

/// Which code answers an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handler {
    Ping,
    Ready,
    Jwks,
    Metadata,
    Start,
    Authorize,
    Callback,
    Handoff,
    SignIn,
    Confirm,
    SignOut,
    Webhook,
    Admin,
    Userinfo,
    Me,
    ForwardAuth,
    Token,
    Refresh,
    Revoke,
    Pat,
}

/// One of Gatehouse's own endpoints.
#[derive(Debug)]
pub struct Endpoint {
    /// The path: under `server.proxy_prefix` when [`Endpoint::prefixed`] (`/start` is
    /// `/oauth2/start` with the default prefix), else as it is.
    pub path: &'static str,
    pub prefixed: bool,
    /// The path names a family: every path that starts with it (`/admin/…`).
    pub family: bool,
    /// The methods it takes (the `Allow` header of its 405 answer).
    pub methods: &'static [&'static str],
    /// The handler takes any method and answers wrong ones itself (the probes answer every
    /// method; session administration checks the admin role first).
    pub any_method: bool,
    /// Counts against the per-address sign-in and token rate limit (`limits.auth_per_minute`).
    pub rate_limited: bool,
    /// The largest request body the gate reads for it (413 past it).
    pub max_body: usize,
    /// Answers the configured token clients' origins with CORS (and their preflights).
    pub cors: bool,
    /// A state-changing request (any method but GET, HEAD and OPTIONS) must come from this
    /// site, and a POST must carry this body type. `None`: not checked (read-only probes; the
    /// webhook is signed instead, and no browser sends it).
    pub same_origin: Option<Takes>,
    /// Refusals are always JSON (API endpoints: no page, no sign-in redirect).
    pub api: bool,
    /// The 405 message; empty: "METHOD is not allowed here".
    pub wrong_method: &'static str,
    /// One line for the docs.
    pub description: &'static str,
    pub handler: Handler,
}

impl Endpoint {
    /// The path as served under `prefix` (`server.proxy_prefix`).
    pub fn path_under(&self, prefix: &str) -> String {
        let family = if self.family { "…" } else { "" };
        match self.prefixed {
            true => format!("{prefix}{}{family}", self.path),
            false => format!("{}{family}", self.path),
        }
    }

    fn takes(&self, method: &Method) -> bool {
        self.any_method || self.methods.contains(&method.as_str())
    }
}

/// A defaults-filled row (a GET page or redirect), so each row says only what differs.
const GET: Endpoint = Endpoint {
    path: "",
    prefixed: true,
    family: false,
    methods: &["GET", "HEAD"],
    any_method: false,
    rate_limited: false,
    max_body: SMALL_BODY,
    cors: false,
    same_origin: Some(Takes::Ignored),
    api: false,
    wrong_method: "",
    description: "",
    handler: Handler::Ping,
};

/// A probe at the root: any method, no checks.
const PROBE: Endpoint = Endpoint {
    prefixed: false,
    any_method: true,
    same_origin: None,
    ..GET
};

/// A POST endpoint taking JSON, for programs.
const POST_JSON: Endpoint = Endpoint {
    methods: &["POST"],
    same_origin: Some(Takes::Json),
    wrong_method: "POST JSON",
    ..GET
};

/// A POST endpoint taking an OAuth form (or the older JSON), for programs.
const POST_FORM: Endpoint = Endpoint {
    methods: &["POST"],
    same_origin: Some(Takes::FormOrJson),
    api: true,
    wrong_method: "POST a form",
    ..GET
};

/// Every endpoint of Gatehouse's own.
pub static ENDPOINTS: [Endpoint; 20] = [
    Endpoint {
        path: "/ping",
        description: "Liveness: `OK` while the process serves.",
        handler: Handler::Ping,
        ..PROBE
    },
    Endpoint {
        path: "/ready",
        description: "Readiness: 200 when the session store answers, else 503.",
        handler: Handler::Ready,
        ..PROBE
    },
    Endpoint {
        path: JWKS_PATH,
        description: "The public keys (JWKS) of the identity assertion sent upstream and of ES256 access tokens: every configured key, the signing one first.",
        handler: Handler::Jwks,
        ..PROBE
    },
    Endpoint {
        path: metadata::METADATA_PATH,
        description: "OAuth 2.0 authorization server metadata (RFC 8414): the authorize, token and revocation endpoints and what they accept.",
        handler: Handler::Metadata,
        ..PROBE
    },
    Endpoint {
        path: "/start",
        rate_limited: true,
        description: "Starts a GitHub sign-in (`rd`: where to land after; a program's `client_redirect_uri` with PKCE).",
        handler: Handler::Start,
        ..GET
    },
    Endpoint {
        path: "/authorize",
        rate_limited: true,
        description: "The OAuth 2.0 authorization endpoint (RFC 6749 with PKCE): `response_type=code`, `client_id`, `redirect_uri`, `state`, `code_challenge`; a GitHub sign-in whose code goes to the client.",
        handler: Handler::Authorize,
        ..GET
    },
    Endpoint {
        path: "/callback",
        rate_limited: true,
        description: "Where GitHub sends the browser back: checks the sign-in state, sets the session.",
        handler: Handler::Callback,
        ..GET
    },
    Endpoint {
        path: "/handoff",
        rate_limited: true,
        description: "On another host of the routes: trades the one-time code the public host's callback sent for a session on this host.",
        handler: Handler::Handoff,
        ..GET
    },
    Endpoint {
        path: "/sign_in",
        description: "The sign-in page.",
        handler: Handler::SignIn,
        ..GET
    },
    Endpoint {
        path: "/confirm",
        methods: &["POST"],
        rate_limited: true,
        same_origin: Some(Takes::FormOrJson),
        wrong_method: "confirm a client sign-in with the button on its page (a POST)",
        description: "The person confirms a sign-in for a program on their computer (the confirmation page's button).",
        handler: Handler::Confirm,
        ..GET
    },
    Endpoint {
        path: "/sign_out",
        methods: &["GET", "HEAD", "POST"],
        same_origin: Some(Takes::FormOrJson),
        description: "Signs out (`everywhere=1`, by POST: every session and token of the user).",
        handler: Handler::SignOut,
        ..GET
    },
    Endpoint {
        path: "/github/webhook",
        methods: &["POST"],
        max_body: 1024 * 1024,
        same_origin: None,
        api: true,
        wrong_method: "GitHub delivers webhooks with POST",
        description: "GitHub's webhook (signed): memberships changed or authorization revoked.",
        handler: Handler::Webhook,
        ..GET
    },
    Endpoint {
        path: "/admin/",
        family: true,
        methods: &["GET", "DELETE"],
        any_method: true,
        api: true,
        description: "Session administration for the admin role: list (GET sessions?user=) and revoke (DELETE).",
        handler: Handler::Admin,
        ..GET
    },
    Endpoint {
        path: "/userinfo",
        api: true,
        description: "The signed-in identity as JSON (401 when signed out).",
        handler: Handler::Userinfo,
        ..GET
    },
    Endpoint {
        path: "/me",
        description: "\"Who am I\": a page for browsers, the userinfo JSON for programs.",
        handler: Handler::Me,
        ..GET
    },
    Endpoint {
        path: "/auth",
        api: true,
        description: "Forward-auth for a proxy in front (nginx `auth_request`, Traefik, Caddy): 202 or 401/403; behind Caddy or Traefik, a browser gets a sign-in redirect or a page.",
        handler: Handler::ForwardAuth,
        ..GET
    },
    Endpoint {
        path: "/token",
        rate_limited: true,
        cors: true,
        description: "The OAuth 2.0 token endpoint: `grant_type=authorization_code` (a one-time code and its PKCE verifier) or `refresh_token` (rotates it), as a form or JSON; errors per RFC 6749 section 5.2.",
        handler: Handler::Token,
        ..POST_FORM
    },
    Endpoint {
        path: "/refresh",
        rate_limited: true,
        cors: true,
        description: "Rotates a refresh token (memberships are asked of GitHub again).",
        handler: Handler::Refresh,
        ..POST_JSON
    },
    Endpoint {
        path: "/revoke",
        rate_limited: true,
        cors: true,
        description: "OAuth 2.0 token revocation (RFC 7009): ends the sign-in a refresh or access token belongs to; 200 for any token.",
        handler: Handler::Revoke,
        ..POST_FORM
    },
    Endpoint {
        path: "/pat",
        rate_limited: true,
        description: "Trades a GitHub personal access token for a session and tokens.",
        handler: Handler::Pat,
        ..POST_JSON
    },
];

/// The endpoint table, for documentation.
pub fn endpoints() -> &'static [Endpoint] {
    &ENDPOINTS
}

/// A path of Gatehouse's own.
#[derive(Debug, Clone, Copy)]
pub enum Own {
    Endpoint(&'static Endpoint),
    /// Under the proxy prefix, but no endpoint (404).
    Unknown,
}

impl Own {
    /// How its refusals are answered.
    pub fn deny_as(self) -> DenyAs {
        match self {
            Own::Endpoint(e) if e.api => DenyAs::Api,
            _ => DenyAs::Negotiate,
        }
    }

    /// The largest body the gate reads for it.
    pub fn max_body(self) -> usize {
        match self {
            Own::Endpoint(e) => e.max_body,
            Own::Unknown => SMALL_BODY,
        }
    }
}

/// Is `path` (as sent) one of Gatehouse's own, and which?
pub fn own_endpoint(rt: &Runtime, path: &str) -> Option<Own> {
    let root = ENDPOINTS.iter().find(|e| !e.prefixed && e.path == path);
    if let Some(endpoint) = root {
        return Some(Own::Endpoint(endpoint));
    }
    let rest = path
        .strip_prefix(rt.settings.proxy_prefix.as_str())
        .filter(|rest| rest.is_empty() || rest.starts_with('/'))?;
    let endpoint = ENDPOINTS
        .iter()
        .find(|e| e.prefixed && (rest == e.path || (e.family && rest.starts_with(e.path))));
    Some(endpoint.map_or(Own::Unknown, Own::Endpoint))
}

/// What an endpoint answered, and how it counts in the metrics.
pub struct Answered {
    pub reply: Reply,
    pub decision: Decision,
}

/// Answer a request for one of Gatehouse's own endpoints; `body` is the request body (read
/// only for POST, up to [`Own::max_body`]).
pub async fn answer(
    rt: &Runtime,
    own: Own,
    facts: &RequestFacts<'_>,
    body: &[u8],
    now: u64,
) -> Answered {
    let (endpoint, cors) = match own {
        Own::Endpoint(e) => (Some(e), e.cors),
        Own::Unknown => (None, false),
    };
    let outcome = match endpoint {
        Some(endpoint) => run(rt, endpoint, facts, body, now).await,
        None => checks(rt, None, facts, body).and_then(|()| Err(Refusal::NotFound.into())),
    };
    let (reply, decision) = match outcome {
        Ok(reply) => (reply, Decision::Endpoint),
        Err(denied) => {
            crate::observe::metrics().refused(&denied.refusal);
            let decision = Decision::of_endpoint_refusal(&denied.refusal);
            (denied.reply(facts.browser), decision)
        }
    };
    Answered {
        reply: match cors {
            true => token::with_cors(rt, facts.req, reply),
            false => reply,
        },
        decision,
    }
}

/// What the table says to check before any handler runs: the rate limit, then where a
/// state-changing request comes from and what body it carries.
fn checks(
    rt: &Runtime,
    endpoint: Option<&Endpoint>,
    facts: &RequestFacts<'_>,
    body: &[u8],
) -> Result<(), Denied> {
    let req = facts.req;
    if endpoint.is_some_and(|e| e.rate_limited) && req.method != Method::OPTIONS {
        if let Err(retry) = rt.limits.check_auth(facts.client_ip) {
            tracing::debug!(ip = ?facts.client_ip, path = req.uri.path(), "rate limited");
            return Err(Refusal::TooManyRequests {
                retry_after: retry.secs(),
            }
            .into());
        }
    }
    let takes = match endpoint {
        Some(e) => e.same_origin,
        None => Some(Takes::Ignored),
    };
    if let Some(takes) = takes.filter(|_| same_origin::changes_state(&req.method)) {
        let takes = match req.method == Method::POST {
            true => takes,
            false => Takes::Ignored,
        };
        let cors = endpoint.is_some_and(|e| e.cors);
        if let Some(refusal) = same_origin::refusal(rt, req, body, takes, cors) {
            return Err(refusal.into());
        }
    }
    Ok(())
}

async fn run(
    rt: &Runtime,
    endpoint: &'static Endpoint,
    facts: &RequestFacts<'_>,
    body: &[u8],
    now: u64,
) -> Result<Reply, Denied> {
    checks(rt, Some(endpoint), facts, body)?;
    let method = &facts.req.method;
    if endpoint.cors && *method == Method::OPTIONS {
        return Ok(Reply::empty(204));
    }
    if !endpoint.takes(method) {
        let message = match endpoint.wrong_method {
            "" => format!("{method} is not allowed here"),
            "POST JSON" => format!("{method} is not allowed here; POST JSON"),
            "POST a form" => format!("{method} is not allowed here; POST a form (or JSON)"),
            said => said.to_string(),
        };
        return Err(Refusal::MethodNotAllowed {
            allow: endpoint.methods.join(", "),
            message,
        }
        .into());
    }
    Ok(match endpoint.handler {
        Handler::Ping => Reply::text(200, "OK"),
        Handler::Ready => super::ready(rt).await,
        Handler::Jwks => super::jwks(rt),
        Handler::Metadata => metadata::metadata(rt),
        Handler::Start => start::start(rt, facts, now),
        Handler::Authorize => start::authorize(rt, facts, now),
        Handler::Callback => callback::callback(rt, facts, now).await,
        Handler::Handoff => handoff::finish(rt, facts, now).await,
        Handler::SignIn => small::sign_in(rt, facts.req),
        Handler::Confirm => client_confirm::confirm(rt, facts, body, now).await,
        Handler::SignOut => sign_out::sign_out(rt, facts, body, now).await,
        Handler::Webhook => webhook::handle(rt, facts.req, body, now).await,
        Handler::Admin => {
            let path = facts.req.uri.path();
            let under = path
                .strip_prefix(rt.settings.proxy_prefix.as_str())
                .unwrap_or_default();
            admin::handle(rt, facts, &under["/admin".len()..], now).await?
        }
        Handler::Userinfo => small::userinfo(rt, facts, now).await?,
        Handler::Me => small::me(rt, facts, now).await?,
        Handler::ForwardAuth => small::forward_auth(rt, facts, now).await?,
        Handler::Token => token::token(rt, facts.req, body, now).await,
        Handler::Refresh => token::refresh(rt, facts.req, body, now).await,
        Handler::Revoke => token::revoke(rt, facts.req, body, now).await,
        Handler::Pat => token::pat(rt, facts, body, now).await,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_is_declared_once() {
        let mut paths: Vec<(bool, &str)> = ENDPOINTS.iter().map(|e| (e.prefixed, e.path)).collect();
        paths.sort();
        paths.dedup();
        assert_eq!(paths.len(), ENDPOINTS.len());
        for e in endpoints() {
            assert!(!e.description.is_empty(), "{}", e.path);
            assert!(!e.methods.is_empty(), "{}", e.path);
            assert!(e.path.starts_with('/'), "{}", e.path);
        }
        let webhook = ENDPOINTS
            .iter()
            .find(|e| e.handler == Handler::Webhook)
            .unwrap();
        assert_eq!(webhook.path_under("/oauth2"), "/oauth2/github/webhook");
        assert_eq!(webhook.max_body, 1024 * 1024);
        let admin = ENDPOINTS
            .iter()
            .find(|e| e.handler == Handler::Admin)
            .unwrap();
        assert_eq!(admin.path_under("/auth"), "/auth/admin/…");
    }

    fn rt() -> Runtime {
        let text = r#"
[server]
public_url = "http://gate.test:4180"
[upstream]
url = "http://127.0.0.1:9"
[github]
client_id = "id"
client_secret = "secret"
[session]
secrets = ["AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="]
[access]
allowed_users = ["octocat"]
"#;
        let settings = crate::config::load_str(text, "test", &|_| None).expect("valid config");
        crate::install_crypto_provider();
        Runtime::new(settings).expect("runtime")
    }

    /// Run a future that never waits on I/O.
    fn ready<F: std::future::Future>(future: F) -> F::Output {
        let mut future = std::pin::pin!(future);
        let waker = std::task::Waker::noop();
        match future
            .as_mut()
            .poll(&mut std::task::Context::from_waker(waker))
        {
            std::task::Poll::Ready(out) => out,
            std::task::Poll::Pending => panic!("waited on I/O"),
        }
    }

    fn ask(rt: &Runtime, method: &str, path: &str) -> Answered {
        let req = http::Request::builder()
            .method(method)
            .uri(path)
            .header("host", "gate.test:4180")
            .body(())
            .unwrap()
            .into_parts()
            .0;
        let own = own_endpoint(rt, path).expect("one of Gatehouse's own paths");
        let facts = RequestFacts::read(
            rt,
            &req,
            None,
            super::super::facts::Judge::Request,
            own.deny_as(),
        );
        ready(answer(rt, own, &facts, b"", 0))
    }

    #[test]
    fn paths_are_found_in_the_table() {
        let rt = rt();
        let handler = |path: &str| match own_endpoint(&rt, path) {
            Some(Own::Endpoint(e)) => Some(Some(e.handler)),
            Some(Own::Unknown) => Some(None),
            None => None,
        };
        assert_eq!(handler("/ping"), Some(Some(Handler::Ping)));
        assert_eq!(handler(JWKS_PATH), Some(Some(Handler::Jwks)));
        assert_eq!(handler("/oauth2/start"), Some(Some(Handler::Start)));
        assert_eq!(
            handler("/oauth2/admin/sessions"),
            Some(Some(Handler::Admin))
        );
        assert_eq!(handler("/oauth2/admin"), Some(None));
        assert_eq!(handler("/oauth2/nope"), Some(None));
        assert_eq!(handler("/oauth2"), Some(None));
        assert_eq!(handler("/oauth2x/start"), None);
        assert_eq!(handler("/app"), None);
        assert!(super::super::is_own_path(&rt, "/oauth2/userinfo"));
    }

    #[test]
    fn wrong_methods_get_405_with_allow_from_the_table() {
        let rt = rt();
        let answered = ask(&rt, "DELETE", "/oauth2/userinfo");
        assert_eq!(answered.reply.status, 405);
        assert_eq!(answered.decision, Decision::Endpoint);
        assert!(answered
            .reply
            .headers
            .contains(&("Allow", "GET, HEAD".into())));
        let answered = ask(&rt, "GET", "/oauth2/token");
        assert_eq!(answered.reply.status, 405);
        assert!(answered.reply.headers.contains(&("Allow", "POST".into())));
        assert!(answered.reply.headers.contains(&("Vary", "Origin".into())));
        let body: serde_json::Value = serde_json::from_slice(&answered.reply.body).unwrap();
        assert_eq!(body["error"], "method_not_allowed");
        assert_eq!(
            body["message"],
            "GET is not allowed here; POST a form (or JSON)"
        );
        let answered = ask(&rt, "GET", "/oauth2/github/webhook");
        let body: serde_json::Value = serde_json::from_slice(&answered.reply.body).unwrap();
        assert_eq!(body["message"], "GitHub delivers webhooks with POST");
        assert_eq!(ask(&rt, "OPTIONS", "/oauth2/refresh").reply.status, 204);
        assert_eq!(ask(&rt, "POST", "/ping").reply.status, 200);
        assert_eq!(ask(&rt, "GET", "/oauth2/nope").reply.status, 404);
    }
}
