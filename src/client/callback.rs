//! What the browser brought back to `http://127.0.0.1:PORT/callback`: a code for this sign-in,
//! the gate's refusal, a forged or stale redirect (wrong `state`), or nothing usable.

use url::form_urlencoded;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallbackOutcome {
    /// `code` with the expected `state`.
    Code(String),
    /// `error` (and maybe `error_description`), with the expected `state` or none at all.
    Denied {
        error: String,
        description: Option<String>,
    },
    /// A `state` other than ours, or a code without any `state`.
    StateMismatch,
    /// Neither `code` nor `error`: not a sign-in redirect; answer 400 and keep waiting.
    Incomplete,
}

/// Judge the query string of a callback request against the `state` this login sent.
pub fn parse_callback(query: &str, expected_state: &str) -> CallbackOutcome {
    let mut code = None;
    let mut state = None;
    let mut error = None;
    let mut description = None;
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        let slot = match key.as_ref() {
            "code" => &mut code,
            "state" => &mut state,
            "error" => &mut error,
            "error_description" => &mut description,
            _ => continue,
        };
        // The first value counts; a repeated parameter cannot override it.
        slot.get_or_insert_with(|| value.into_owned());
    }
    let state_matches = state.as_deref() == Some(expected_state);
    if state.is_some() && !state_matches {
        return CallbackOutcome::StateMismatch;
    }
    if let Some(error) = error.filter(|e| !e.is_empty()) {
        return CallbackOutcome::Denied {
            error,
            description: description.filter(|d| !d.trim().is_empty()),
        };
    }
    match code.filter(|c| !c.is_empty()) {
        Some(code) if state_matches => CallbackOutcome::Code(code),
        Some(_) => CallbackOutcome::StateMismatch,
        None => CallbackOutcome::Incomplete,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callback_with_our_state_yields_the_code() {
        assert_eq!(
            parse_callback("code=abc%2F1&state=S1", "S1"),
            CallbackOutcome::Code("abc/1".into())
        );
    }

    #[test]
    fn callback_state_mismatch_is_refused() {
        assert_eq!(
            parse_callback("code=abc&state=other", "S1"),
            CallbackOutcome::StateMismatch
        );
        assert_eq!(
            parse_callback("code=abc", "S1"),
            CallbackOutcome::StateMismatch
        );
        assert_eq!(
            parse_callback("error=access_denied&state=other", "S1"),
            CallbackOutcome::StateMismatch
        );
    }

    #[test]
    fn callback_error_param_is_reported() {
        assert_eq!(
            parse_callback(
                "error=access_denied&error_description=octocat+is+not+allowed&state=S1",
                "S1"
            ),
            CallbackOutcome::Denied {
                error: "access_denied".into(),
                description: Some("octocat is not allowed".into())
            }
        );
        assert_eq!(
            parse_callback("error=server_error", "S1"),
            CallbackOutcome::Denied {
                error: "server_error".into(),
                description: None
            }
        );
    }

    #[test]
    fn callback_without_code_or_error_is_incomplete() {
        assert_eq!(parse_callback("", "S1"), CallbackOutcome::Incomplete);
        assert_eq!(
            parse_callback("state=S1", "S1"),
            CallbackOutcome::Incomplete
        );
    }

    #[test]
    fn callback_first_value_wins() {
        assert_eq!(
            parse_callback("state=S1&code=a&code=b&state=S2", "S1"),
            CallbackOutcome::Code("a".into())
        );
    }
}
