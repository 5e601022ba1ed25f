//! What can go wrong in `gatehouse login` and `gatehouse token`, each said with what to do next.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("`{url}` is not a Gatehouse URL: {problem}; give it like https://app.example.com")]
    BadUrl { url: String, problem: String },

    #[error(
        "cannot find your config directory; set GATEHOUSE_CONFIG_DIR to where tokens may be stored"
    )]
    NoConfigDir,

    #[error("cannot start the async runtime")]
    Runtime(#[source] std::io::Error),

    #[error("cannot listen on 127.0.0.1 for the browser's sign-in redirect")]
    Listen(#[source] std::io::Error),

    #[error("No sign-in arrived within {secs} s. Run `gatehouse login --url {url}` again and finish signing in in the browser.")]
    Timeout { url: String, secs: String },

    #[error("sign-in to {url} did not finish: {}{}; run `gatehouse login --url {url}` again", description.as_deref().unwrap_or(error), paren(error, description.is_some()))]
    Denied {
        url: String,
        error: String,
        description: Option<String>,
    },

    #[error("{url} refused the sign-in code: {message} ({error}, HTTP {status}); run `gatehouse login --url {url}` again")]
    ExchangeRefused {
        url: String,
        status: u16,
        error: String,
        message: String,
    },

    #[error("cannot reach {url} to {action}")]
    Network {
        url: String,
        action: &'static str,
        #[source]
        source: reqwest::Error,
    },

    #[error("{url} answered HTTP {status} to {action}: {message} ({error}); try again later")]
    Server {
        url: String,
        action: &'static str,
        status: u16,
        error: String,
        message: String,
    },

    #[error("{url} sent an answer this client cannot read ({detail}); is it a Gatehouse with tokens enabled?")]
    BadResponse { url: String, detail: String },

    #[error(
        "Not signed in to {url} (or the session ended): run `gatehouse login --url {url}`{}",
        server_said(message)
    )]
    NotSignedIn {
        url: String,
        message: Option<String>,
    },

    #[error("cannot {action} {}", path.display())]
    StoreIo {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{} is not a valid tokens file; delete it and run `gatehouse login` again", path.display())]
    StoreCorrupt {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

fn paren(error: &str, show: bool) -> String {
    if show {
        format!(" ({error})")
    } else {
        String::new()
    }
}

fn server_said(message: &Option<String>) -> String {
    match message {
        Some(m) if !m.trim().is_empty() => format!(" (the server said: {})", m.trim()),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_signed_in_names_the_command_and_the_server_message() {
        let e = ClientError::NotSignedIn {
            url: "https://gate.example.com".into(),
            message: Some("refresh token already used".into()),
        };
        assert_eq!(
            e.to_string(),
            "Not signed in to https://gate.example.com (or the session ended): run \
             `gatehouse login --url https://gate.example.com` (the server said: refresh token already used)"
        );
    }

    #[test]
    fn timeout_message_is_actionable() {
        let e = ClientError::Timeout {
            url: "http://127.0.0.1:4180".into(),
            secs: "120".into(),
        };
        assert_eq!(
            e.to_string(),
            "No sign-in arrived within 120 s. Run `gatehouse login --url http://127.0.0.1:4180` \
             again and finish signing in in the browser."
        );
    }
}
