//! What the browser brought back to `http://127.0.0.1:PORT/callback`: a code for this sign-in,
//! the gate's refusal, a forged or stale redirect (no `state` or another), or nothing usable.

use url::form_urlencoded;

/// Longest `error` code and `error_description` shown; the rest is cut.
const MAX_ERROR: usize = 64;
const MAX_DESCRIPTION: usize = 300;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallbackOutcome {
    /// `code` with the expected `state`.
    Code(String),
    /// `error` (and maybe `error_description`) with the expected `state`, made printable.
    Denied {
        error: String,
        description: Option<String>,
    },
    /// No `state`, or another one: not an answer to this login (any local program or web page
    /// that finds the port can send one). Answer 400 and keep waiting.
    StateMismatch,
    /// Our `state` but neither `code` nor `error`: answer 400 and keep waiting.
    Incomplete,
}

/// Judge the query string of a callback request against the `state` this login sent. Only an
/// answer carrying that `state` can end the login, a refusal as much as a code.
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
    if state.as_deref() != Some(expected_state) {
        return CallbackOutcome::StateMismatch;
    }
    let error = error.map(|e| super::printable(&e, MAX_ERROR));
    if let Some(error) = error.filter(|e| !e.is_empty()) {
        return CallbackOutcome::Denied {
            error,
            description: description
                .map(|d| super::printable(&d, MAX_DESCRIPTION))
                .filter(|d| !d.is_empty()),
        };
    }
    match code.filter(|c| !c.is_empty()) {
        Some(code) => CallbackOutcome::Code(code),
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
            parse_callback("error=server_error&state=S1", "S1"),
            CallbackOutcome::Denied {
                error: "server_error".into(),
                description: None
            }
        );
    }

    #[test]
    fn an_error_without_our_state_is_not_an_answer() {
        for query in [
            "error=access_denied",
            "error=access_denied&error_description=x",
            "error=access_denied&state=",
            "error=access_denied&state=S2",
        ] {
            assert_eq!(
                parse_callback(query, "S1"),
                CallbackOutcome::StateMismatch,
                "{query}"
            );
        }
    }

    #[test]
    fn error_text_is_printable_and_bounded() {
        let long = "x".repeat(1000);
        let query = format!(
            "error=access%1B%5B2J_denied&error_description=a%0D%0Ab%1B%5D0%3Bt%07%E2%80%AE{long}&state=S1"
        );
        let CallbackOutcome::Denied { error, description } = parse_callback(&query, "S1") else {
            panic!("denied expected");
        };
        assert_eq!(error, "access[2J_denied");
        let description = description.unwrap();
        assert!(description.starts_with("ab]0;tx"), "{description}");
        assert!(!description.chars().any(char::is_control));
        assert!(description.chars().count() <= MAX_DESCRIPTION + 1);
    }

    #[test]
    fn callback_without_code_or_error_is_incomplete() {
        assert_eq!(parse_callback("", "S1"), CallbackOutcome::StateMismatch);
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
