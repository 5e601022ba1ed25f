//! `POST /oauth2/github/webhook`: GitHub tells Gatehouse the moment someone leaves an org or
//! team, or takes back their authorization of the app; the user's sessions are then
//! re-checked (membership changes) or ended (authorization revoked) on every replica, through
//! the revocation list in the store. A re-check reaches what is already open too: access tokens
//! issued before it ask GitHub again before their next use, and open websockets close (the app
//! got the old groups with the upgrade). Verified by `X-Hub-Signature-256` (HMAC-SHA256 with
//! `github.webhook_secret`, compared in constant time); anything unverified changes nothing.

use crate::app::App;
use crate::reply::Reply;
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

pub async fn handle(app: &App, req: &Parts, body: &[u8], now: u64) -> Reply {
    let Some(secret) = &app.settings.github.webhook_secret else {
        return reply(
            404,
            json!({"error": "not_found", "message": "webhooks are off here; set github.webhook_secret (and the same secret in the GitHub webhook) to turn them on"}),
        );
    };
    if !signature_ok(secret.expose().as_bytes(), req, body) {
        tracing::warn!(
            target: "gatehouse::audit",
            event = "webhook_refused",
            "GitHub webhook refused: missing or wrong X-Hub-Signature-256"
        );
        return reply(
            401,
            json!({"error": "bad_signature", "message": "X-Hub-Signature-256 is missing or does not match github.webhook_secret; nothing was changed"}),
        )
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
    let Ok(event) = serde_json::from_slice::<Event>(body) else {
        return reply(
            400,
            json!({"error": "bad_request", "message": "the webhook body is not the JSON GitHub sends"}),
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
        return reply(
            400,
            json!({"error": "bad_request", "message": format!("a {kind} {action} event without the user it concerns")}),
        );
    };
    let user_id = who.id.to_string();
    let result = match act {
        Act::Recheck => app.sessions.recheck_all(&user_id, now).await.map(|()| 0),
        Act::End => app.sessions.end_all(&user_id, now).await,
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
        Err(e) => {
            tracing::warn!(error = %e, login = %who.login, "GitHub webhook could not be applied: session store unavailable");
            // 503 makes GitHub show the delivery as failed, so it can be redelivered.
            reply(
                503,
                json!({"error": "store_unavailable", "message": e.to_string()}),
            )
            .header("Retry-After", "5")
        }
    }
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
