//! `/oauth2/sign_out[?rd=PATH]`: end this session (its server-side record too). Ending every
//! session and token of the user on every replica (`everywhere=1`) takes a POST from this site
//! (checked by the dispatcher); a GET asking for it only shows a page whose button posts it.
//! With `github.revoke_on_sign_out`, the GitHub token is revoked at GitHub too.

use super::facts::RequestFacts;
use super::query_param;
use super::redirect::safe_redirect;
use super::same_origin;
use crate::pages::{sign_out_everywhere_page, Refusal};
use crate::reply::Reply;
use crate::runtime::Runtime;
use http::request::Parts;
use http::Method;

/// What the sign-out was asked to do: from the query, and for a POST also from its body (a
/// form, or JSON such as `{"everywhere": true, "rd": "/bye"}`), which wins.
struct Asked {
    rd: Option<String>,
    everywhere: bool,
}

fn yes(value: &str) -> bool {
    value == "1" || value.eq_ignore_ascii_case("true")
}

impl Asked {
    fn read(req: &Parts, body: &[u8]) -> Result<Asked, Refusal> {
        let mut asked = Asked {
            rd: query_param(req, "rd"),
            everywhere: query_param(req, "everywhere").is_some_and(|v| yes(&v)),
        };
        if body.is_empty() {
            return Ok(asked);
        }
        let fields: Vec<(String, String)> = if same_origin::body_is_json(req) {
            let object: serde_json::Map<String, serde_json::Value> =
                serde_json::from_slice(body).map_err(|e| Refusal::BadRequest {
                    reason: format!("the body is not a JSON object ({e})"),
                })?;
            object
                .into_iter()
                .filter_map(|(k, v)| match v {
                    serde_json::Value::String(s) => Some((k, s)),
                    serde_json::Value::Bool(_) | serde_json::Value::Number(_) => {
                        Some((k, v.to_string()))
                    }
                    _ => None,
                })
                .collect()
        } else {
            url::form_urlencoded::parse(body).into_owned().collect()
        };
        for (name, value) in fields {
            match name.as_str() {
                "rd" => asked.rd = Some(value),
                "everywhere" => asked.everywhere = yes(&value),
                _ => {}
            }
        }
        Ok(asked)
    }
}

/// Lands on `rd`, or on the sign-in page (landing on `/` would sign the person straight back
/// in through GitHub). The cookie is cleared whatever happens; when the server side could not
/// be told, the person is told so (503) instead of being shown a sign-out that did not happen.
pub async fn sign_out(rt: &Runtime, facts: &RequestFacts<'_>, body: &[u8], now: u64) -> Reply {
    let req = facts.req;
    let asked = match Asked::read(req, body) {
        Ok(asked) => asked,
        // A body is sent by a program (a form's is always readable).
        Err(refusal) => return refusal.reply(false),
    };
    let prefix = &rt.settings.proxy_prefix;
    let rd = asked
        .rd
        .as_deref()
        .map(|rd| safe_redirect(Some(rd), &rt.settings.public_url, prefix));
    let everywhere = asked.everywhere;
    if everywhere && req.method != Method::POST {
        return sign_out_everywhere_page(
            &format!("{prefix}/sign_out"),
            rd.as_deref(),
            rt.settings.github.revoke_on_sign_out,
        );
    }
    let target = rd.unwrap_or_else(|| format!("{prefix}/sign_in"));
    let clear = rt.sessions.clear(&req.headers);
    let ended = match rt.sessions.read(&req.headers, now).await {
        Ok(ended) => ended,
        Err(e) => {
            return super::credentials::store_unavailable(&e)
                .reply(facts.browser)
                .cookies(clear)
        }
    };
    let Some(claims) = ended else {
        return Reply::redirect(target).cookies(clear);
    };
    let result = if everywhere {
        super::sign_ins::end_user(rt, &claims.user_id, now)
            .await
            .map(|_| ())
    } else {
        rt.sessions.end(&claims).await
    };
    tracing::info!(
        target: "gatehouse::audit",
        event = "logout",
        login = %claims.login,
        user_id = %claims.user_id,
        everywhere,
        "signed out{}", if everywhere { " everywhere" } else { "" }
    );
    if rt.settings.github.revoke_on_sign_out {
        if let Some(token) = &claims.github_token {
            match rt.github.revoke_token(token).await {
                Ok(()) => tracing::info!(
                    target: "gatehouse::audit",
                    event = "github_token_revoked",
                    login = %claims.login,
                    "GitHub token revoked at sign-out"
                ),
                Err(e) => {
                    tracing::warn!(error = %e, login = %claims.login, "could not revoke the GitHub token at sign-out")
                }
            }
        }
    }
    match result {
        Ok(()) => Reply::redirect(target).cookies(clear),
        Err(e) => super::credentials::store_unavailable(&e)
            .reply(facts.browser)
            .cookies(clear),
    }
}
