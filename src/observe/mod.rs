//! Operating Gatehouse: Prometheus metrics, the admin listener that serves them, and the log
//! subscriber (pretty or JSON). Access-log lines go to target `gatehouse::access`, written in
//! batches off the request path ([`log_buffer`]); audit events (sign-in, sign-out, refusals by
//! rule, token refusals and revocations) go to `gatehouse::audit`, both at INFO. No log line may
//! carry a secret: paths are logged without their query, and tokens, codes, states and cookies
//! never.

pub mod admin;
pub mod escape;
pub mod log_buffer;
pub mod logs;
pub mod metrics;

pub use crate::config::LogFormat;
pub use metrics::{
    metrics, ClientSecretUsed, Decision, ErrorCause, LoginResult, RecheckOutcome, RefusedDuring,
    ReloadResult, RequestCounters, DEFAULT_ROUTE,
};
