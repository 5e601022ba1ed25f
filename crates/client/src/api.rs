//! The gate's token endpoints: `POST /oauth2/token` (code + PKCE verifier → tokens) and
//! `POST /oauth2/refresh` (refresh token → new pair). JSON in and out.

use super::ClientError;
use serde::Deserialize;
use serde_json::json;
use std::time::Duration;

/// How long one call to the gate may take.
const TIMEOUT: Duration = Duration::from_secs(30);
/// How much of a non-JSON error body is quoted back.
const MAX_QUOTED: usize = 200;

/// A 200 answer from `/oauth2/token` or `/oauth2/refresh`.
#[derive(Clone, Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub refresh_token: String,
    #[serde(default)]
    pub token_type: Option<String>,
    /// Seconds the access token lives.
    pub expires_in: u64,
    /// Seconds the refresh token lives.
    pub refresh_expires_in: u64,
}

/// An error answer: `{"error", "message"}` (or what could be made of a non-JSON body).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub error: String,
    pub message: String,
}

/// Why a call did not produce tokens.
#[derive(Debug)]
pub enum ApiError {
    Network(reqwest::Error),
    Refused(Refusal),
    BadResponse(String),
}

/// A client for one gate, named by its origin.
pub struct GateApi {
    http: reqwest::Client,
    origin: String,
}

impl GateApi {
    pub fn new(origin: &str) -> Result<GateApi, ClientError> {
        crate::install_crypto_provider();
        let http = reqwest::Client::builder()
            .user_agent(concat!("gatehouse-cli/", env!("CARGO_PKG_VERSION")))
            .timeout(TIMEOUT)
            .connect_timeout(TIMEOUT)
            // Tokens are never posted anywhere but the gate itself.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ClientError::BadResponse {
                url: origin.to_string(),
                detail: format!("cannot set up the HTTP client: {e}"),
            })?;
        Ok(GateApi {
            http,
            origin: origin.to_string(),
        })
    }

    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Trade the sign-in `code` for tokens, proving possession of the PKCE verifier.
    pub async fn exchange(
        &self,
        code: &str,
        redirect_uri: &str,
        verifier: &str,
    ) -> Result<TokenResponse, ApiError> {
        let body = json!({
            "code": code,
            "client_redirect_uri": redirect_uri,
            "code_verifier": verifier,
        });
        self.post("/oauth2/token", &body).await
    }

    /// Trade a refresh token for a new pair (the old refresh token is used up).
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenResponse, ApiError> {
        self.post(
            "/oauth2/refresh",
            &json!({ "refresh_token": refresh_token }),
        )
        .await
    }

    async fn post(&self, path: &str, body: &serde_json::Value) -> Result<TokenResponse, ApiError> {
        let response = self
            .http
            .post(format!("{}{path}", self.origin))
            .header(reqwest::header::ACCEPT, "application/json")
            .json(body)
            .send()
            .await
            .map_err(ApiError::Network)?;
        let status = response.status().as_u16();
        let text = response.text().await.map_err(ApiError::Network)?;
        if status != 200 {
            return Err(ApiError::Refused(refusal(status, &text)));
        }
        let tokens: TokenResponse = serde_json::from_str(&text)
            .map_err(|e| ApiError::BadResponse(format!("{path} answered 200 with {e}")))?;
        if let Some(kind) = tokens.token_type.as_deref() {
            if !kind.eq_ignore_ascii_case("bearer") {
                return Err(ApiError::BadResponse(format!(
                    "{path} issued a `{kind}` token, not a Bearer token"
                )));
            }
        }
        Ok(tokens)
    }
}

/// Read an error body: the contract's `{"error","message"}`, else a quote of the text.
pub fn refusal(status: u16, body: &str) -> Refusal {
    #[derive(Deserialize)]
    struct ErrorBody {
        error: Option<String>,
        message: Option<String>,
        error_description: Option<String>,
    }
    let parsed = serde_json::from_str::<ErrorBody>(body).ok();
    // Printed to the terminal: made printable and bounded, whoever answered.
    let error = parsed
        .as_ref()
        .and_then(|b| b.error.as_deref())
        .map(|e| super::printable(e, 64))
        .filter(|e| !e.is_empty())
        .unwrap_or_else(|| format!("http_{status}"));
    let message = parsed
        .and_then(|b| b.message.or(b.error_description))
        .map(|m| super::printable(&m, MAX_QUOTED))
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| quote(body));
    Refusal {
        status,
        error,
        message,
    }
}

fn quote(body: &str) -> String {
    let quoted = super::printable(body, MAX_QUOTED);
    if quoted.is_empty() {
        "no details given".to_string()
    } else {
        quoted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_are_read_per_contract_or_quoted() {
        assert_eq!(
            refusal(
                401,
                r#"{"error":"invalid_grant","message":"refresh token already used"}"#
            ),
            Refusal {
                status: 401,
                error: "invalid_grant".into(),
                message: "refresh token already used".into()
            }
        );
        let r = refusal(502, "<html>bad gateway</html>");
        assert_eq!(r.error, "http_502");
        assert_eq!(r.message, "<html>bad gateway</html>");
        assert_eq!(refusal(500, "").message, "no details given");
        assert!(refusal(500, &"é".repeat(300)).message.ends_with('…'));
        let r = refusal(
            400,
            "{\"error\":\"e\\u001b[2J\",\"message\":\"m\\r\\nforged\\u009b\"}",
        );
        assert_eq!((r.error.as_str(), r.message.as_str()), ("e[2J", "mforged"));
    }
}
