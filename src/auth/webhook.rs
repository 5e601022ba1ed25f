//! `POST /oauth2/github/webhook`: GitHub tells Gatehouse the moment someone leaves an org or
//! team, or takes back their authorization of the app; the user's sessions are then
//! re-checked (membership changes) or ended (authorization revoked) on every replica, through
//! the revocation list in the store. A re-check reaches what is already open too: access tokens
//! issued before it ask GitHub again before their next use, and open websockets close (the app
//! got the old groups with the upgrade). Verified by `X-Hub-Signature-256` (HMAC-SHA256 with
//! `github.webhook_secret`, or `github.webhook_secret_previous` during a rotation, compared in
//! constant time); anything unverified changes nothing.
//!
//! Replays: each delivery's `X-GitHub-Delivery` id is remembered (in the store, so every
//! replica knows it) for [`REMEMBER_FOR`], and a repeat is answered 200 without acting. The id
//! is not covered by the signature, so a captured delivery could come back under a new id: the
//! body of every delivery that ends sessions is remembered too, and a repeat of it only asks
//! for a re-check (GitHub itself then says whether the authorization is gone), never ends the
//! user's sessions again.

use crate::pages::Refusal;
use crate::reply::Reply;
use crate::runtime::Runtime;
use hmac::{Hmac, Mac};
use http::request::Parts;
use serde::Deserialize;
use serde_json::json;
use sha2::Sha256;

#[derive(Deserialize)]
struct Account {
    login: String,
    id: u64,
}

#[derive(Deserialize)]
struct OrgMembership {
    user: Option<Account>,
}

/// The parts of the events Gatehouse acts on.
#[derive(Deserialize)]
struct Event {
    action: Option<String>,
    /// `organization` events.
    membership: Option<OrgMembership>,
    /// `membership` (team) events.
    member: Option<Account>,
    sender: Option<Account>,
}

/// What to do to a user's sessions.
enum Act {
    Recheck,
    End,
}

fn reply(status: u16, body: serde_json::Value) -> Reply {
    Reply::json(status, &body)
}

/// A refusal of a delivery (GitHub shows it as failed).
fn refuse(status: u16, error: &'static str, message: impl Into<String>) -> Reply {
    Refusal::api(status, error, message).reply(false)
}

/// How long deliveries are remembered against replays. GitHub redelivers for 3 days; a
/// captured delivery is worth replaying for as long as the user signs in, so longer.
const REMEMBER_FOR: u64 = 30 * 24 * 3600;

/// The `X-GitHub-Delivery` id (GitHub sends a GUID with every delivery), if it looks like one.
fn delivery_id(req: &Parts) -> Option<&str> {
    let id = req.headers.get("x-github-delivery")?.to_str().ok()?.trim();
    let ok = !id.is_empty()
        && id.len() <= 64
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    ok.then_some(id)
}

fn store_unavailable(e: &crate::store::StoreError) -> Reply {
    tracing::warn!(error = %e, "GitHub webhook could not be applied: session store unavailable");
    // 503 makes GitHub show the delivery as failed, so it can be redelivered.
    Refusal::api_store_unavailable(&e).reply(false)
}

pub async fn handle(rt: &Runtime, req: &Parts, body: &[u8], now: u64) -> Reply {
    let Some(secret) = &rt.settings.github.webhook_secret else {
        return refuse(404, "not_found", "webhooks are off here; set github.webhook_secret (and the same secret in the GitHub webhook) to turn them on");
    };
    // During a rotation of the webhook's secret GitHub signs with one of two: either will do.
    let previous = rt.settings.github.webhook_secret_previous.as_ref();
    let signed =
        |secret: &crate::config::Secret| signature_ok(secret.expose().as_bytes(), req, body);
    if !(signed(secret) || previous.is_some_and(signed)) {
        tracing::warn!(
            target: "gatehouse::audit",
            event = "webhook_refused",
            "GitHub webhook refused: missing or wrong X-Hub-Signature-256"
        );
        return refuse(401, "bad_signature", "X-Hub-Signature-256 is missing or does not match github.webhook_secret; nothing was changed")
        .header("WWW-Authenticate", "HMAC-SHA256");
    }
    let kind = req
        .headers
        .get("x-github-event")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if kind == "ping" {
        return reply(200, json!({"ok": true, "event": "ping"}));
    }
    // GitHub always sends one; without it a replay could not be told apart.
    let Some(delivery) = delivery_id(req) else {
        tracing::warn!(
            target: "gatehouse::audit",
            event = "webhook_refused",
            "GitHub webhook refused: missing or malformed X-GitHub-Delivery"
        );
        return refuse(
            400,
            "bad_request",
            "X-GitHub-Delivery is missing or is not a delivery id; nothing was changed",
        );
    };
    let Ok(event) = serde_json::from_slice::<Event>(body) else {
        return refuse(
            400,
            "bad_request",
            "the webhook body is not the JSON GitHub sends",
        );
    };
    let action = event.action.as_deref().unwrap_or("");
    let (act, who) = match (kind, action) {
        ("organization", "member_removed") => (Act::Recheck, event.membership.and_then(|m| m.user)),
        ("membership", "removed") => (Act::Recheck, event.member),
        ("github_app_authorization", "revoked") => (Act::End, event.sender),
        _ => {
            return reply(
                202,
                json!({"ok": true, "event": kind, "action": action, "ignored": true}),
            )
        }
    };
    let Some(who) = who else {
        return refuse(
            400,
            "bad_request",
            format!("a {kind} {action} event without the user it concerns"),
        );
    };
    let user_id = who.id.to_string();
    let store = rt.sessions.store.as_ref();
    let until = now.saturating_add(REMEMBER_FOR);
    let delivery_key = format!("id:{delivery}");
    match store.remember_delivery(&delivery_key, until, now).await {
        Ok(true) => {}
        Ok(false) => {
            tracing::info!(
                target: "gatehouse::audit",
                event = "webhook_repeated",
                github_event = kind,
                action,
                login = %who.login,
                user_id = %user_id,
                delivery,
                "GitHub webhook delivery seen before (a redelivery or a replay): nothing done"
            );
            // 2xx, so GitHub does not retry it.
            return reply(
                200,
                json!({"ok": true, "event": kind, "action": action, "repeated": true}),
            );
        }
        Err(e) => return store_unavailable(&e),
    }
    let mut remembered = vec![delivery_key];
    let act = match act {
        Act::End => {
            let body_key = format!("body:{}", body_digest(body));
            match store.remember_delivery(&body_key, until, now).await {
                Ok(true) => {
                    remembered.push(body_key);
                    Act::End
                }
                Ok(false) => {
                    tracing::warn!(
                        target: "gatehouse::audit",
                        event = "webhook_repeated",
                        github_event = kind,
                        action,
                        login = %who.login,
                        user_id = %user_id,
                        delivery,
                        "GitHub webhook repeats an earlier delivery under a new id: re-checking the user's sessions with GitHub instead of ending them"
                    );
                    Act::Recheck
                }
                Err(e) => return forget(rt, &remembered, store_unavailable(&e)).await,
            }
        }
        act => act,
    };
    let result = match act {
        Act::Recheck => rt.sessions.recheck_all(&user_id, now).await.map(|()| 0),
        Act::End => super::sign_ins::end_user(rt, &user_id, now)
            .await
            .map(|e| e.sessions),
    };
    let done = match act {
        Act::Recheck => "rechecked",
        Act::End => "ended",
    };
    match result {
        Ok(sessions) => {
            tracing::info!(
                target: "gatehouse::audit",
                event = "webhook",
                github_event = kind,
                action,
                login = %who.login,
                user_id = %user_id,
                sessions = done,
                "GitHub webhook: sessions {done}"
            );
            let mut body = json!({"ok": true, "event": kind, "action": action, "user": who.login, "sessions": done});
            if let Act::End = act {
                body["records_deleted"] = json!(sessions);
            }
            reply(200, body)
        }
        Err(e) => forget(rt, &remembered, store_unavailable(&e)).await,
    }
}

/// A delivery that was not applied is forgotten again, so GitHub's redelivery of it counts.
async fn forget(rt: &Runtime, remembered: &[String], answer: Reply) -> Reply {
    for key in remembered {
        if let Err(e) = rt.sessions.store.forget_delivery(key).await {
            tracing::warn!(error = %e, "could not forget a webhook delivery that was not applied");
        }
    }
    answer
}

/// SHA-256 of a delivery's body, base64url: what it said, whatever id it came under.
fn body_digest(body: &[u8]) -> String {
    use base64::Engine;
    use sha2::Digest;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(body))
}

/// `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>`, checked in constant time.
fn signature_ok(secret: &[u8], req: &Parts, body: &[u8]) -> bool {
    let Some(sent) = req
        .headers
        .get("x-hub-signature-256")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("sha256="))
        .and_then(decode_hex)
    else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&sent).is_ok()
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if text.len() != 64 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(signature: Option<&str>) -> Parts {
        let mut b = http::Request::builder()
            .method("POST")
            .uri("/oauth2/github/webhook");
        if let Some(s) = signature {
            b = b.header("x-hub-signature-256", s);
        }
        b.body(()).unwrap().into_parts().0
    }

    fn sign(secret: &[u8], body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
        mac.update(body);
        let hex: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("sha256={hex}")
    }

    #[test]
    fn only_the_right_signature_of_the_exact_body_passes() {
        let (secret, body) = (b"It's a Secret to Everybody", b"Hello, World!");
        // GitHub's documented example.
        let good = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert_eq!(sign(secret, body), good);
        assert!(signature_ok(secret, &parts(Some(good)), body));
        assert!(!signature_ok(secret, &parts(Some(good)), b"Hello, World?"));
        assert!(!signature_ok(b"other", &parts(Some(good)), body));
        assert!(!signature_ok(secret, &parts(None), body));
        assert!(!signature_ok(secret, &parts(Some("sha1=abc")), body));
        assert!(!signature_ok(secret, &parts(Some(&good[..70])), body));
        assert!(!signature_ok(secret, &parts(Some("sha256=zz")), body));
    }
}
