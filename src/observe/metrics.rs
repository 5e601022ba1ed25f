//! The Prometheus metrics (names are public: README.md "Metrics and logs").
//!
//! One registry per process ([`metrics`]), so counters survive a config reload. Every label set
//! is created up front: the request path only does atomic increments (no lookup, no
//! allocation, no lock).

use crate::pages::{GithubRefusal, Refusal};
use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};
use std::sync::OnceLock;
use std::time::Duration;

/// The route label of requests before `[[routes]]` name one (and of Gatehouse's own endpoints).
pub const DEFAULT_ROUTE: &str = "default";

/// How the gate answered a request: the `decision` label and the access log's `decision`.
/// `allowed` and `public` for a request the access decision allowed (`auth::access::Access`),
/// `endpoint` for Gatehouse's own endpoints, and for a denied one what its refusal
/// (`pages::Refusal`) stands for ([`Decision::of_refusal`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Passed to the upstream with an identity.
    Allowed,
    /// Passed to the upstream without one (a `public` rule).
    Public,
    /// Answered by Gatehouse's own endpoints (`/oauth2/*`, `/ping`, `/ready`, JWKS).
    Endpoint,
    /// Sent to sign in (302).
    Redirected,
    /// 401: no or bad credentials.
    Unauthorized,
    /// 403 by a rule or the allow-lists.
    Forbidden,
    /// 404 by a rule with `hide = true`.
    Hidden,
    /// 400: a path or request the gate refuses to judge.
    BadRequest,
    /// 429.
    RateLimited,
    /// Anything else: 5xx from the gate itself, or the request failed before a decision.
    Error,
}

impl Decision {
    pub const ALL: [Decision; 10] = [
        Decision::Allowed,
        Decision::Public,
        Decision::Endpoint,
        Decision::Redirected,
        Decision::Unauthorized,
        Decision::Forbidden,
        Decision::Hidden,
        Decision::BadRequest,
        Decision::RateLimited,
        Decision::Error,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allowed => "allowed",
            Decision::Public => "public",
            Decision::Endpoint => "endpoint",
            Decision::Redirected => "redirected",
            Decision::Unauthorized => "unauthorized",
            Decision::Forbidden => "forbidden",
            Decision::Hidden => "hidden",
            Decision::BadRequest => "bad_request",
            Decision::RateLimited => "rate_limited",
            Decision::Error => "error",
        }
    }

    /// The decision a refusal by one of Gatehouse's own endpoints stands for: `endpoint`, but
    /// rate limiting is counted as such wherever it happens.
    pub fn of_endpoint_refusal(refusal: &Refusal) -> Decision {
        match refusal {
            Refusal::TooManyRequests { .. } => Decision::RateLimited,
            _ => Decision::Endpoint,
        }
    }

    /// The decision a refusal stands for, answered as a page (`page`: a browser is sent to
    /// sign in) or not.
    pub fn of_refusal(refusal: &Refusal, page: bool) -> Decision {
        match refusal {
            Refusal::SignInRequired { .. } if page => Decision::Redirected,
            Refusal::SignInRequired { .. } | Refusal::InvalidCredentials { .. } => {
                Decision::Unauthorized
            }
            Refusal::Forbidden { .. } | Refusal::CrossSite { .. } | Refusal::LoginFailed { .. } => {
                Decision::Forbidden
            }
            Refusal::GithubRefused { refusal, .. } if refusal.status() == 403 => {
                Decision::Forbidden
            }
            Refusal::NotFound => Decision::Hidden,
            Refusal::BadRequest { .. }
            | Refusal::BadPath { .. }
            | Refusal::LoginExpired { .. }
            | Refusal::LoginLoop { .. }
            | Refusal::HeadersTooLarge { .. } => Decision::BadRequest,
            Refusal::TooManyRequests { .. } => Decision::RateLimited,
            Refusal::UnsupportedMediaType { .. }
            | Refusal::MembershipUnconfirmed
            | Refusal::StoreUnavailable
            | Refusal::Unavailable { .. }
            | Refusal::BodyTooLarge { .. }
            | Refusal::MethodNotAllowed { .. }
            | Refusal::GithubUnavailable { .. }
            | Refusal::GatewayMisconfigured { .. }
            | Refusal::GithubRefused { .. }
            | Refusal::UpstreamUnavailable
            | Refusal::Api { .. } => Decision::Error,
        }
    }
}

impl std::fmt::Display for Decision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `result` label of `gatehouse_logins_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginResult {
    /// `/oauth2/start` sent someone to GitHub.
    Started,
    /// Back from GitHub and admitted.
    Succeeded,
    /// Back from GitHub, but not on the allow-lists.
    Denied,
    /// The login state was missing, unknown, expired or replayed.
    FailedState,
    /// The person did not grant access at GitHub (or GitHub reported another error).
    FailedGithubRefused,
    /// GitHub refused the code (expired or already used).
    FailedCode,
    /// GitHub could not be reached, timed out or answered 5xx.
    FailedGithubUnavailable,
    /// GitHub rejected the OAuth app settings (client id/secret, callback URL, a suspended
    /// app).
    FailedMisconfigured,
    /// GitHub would not confirm the memberships the person needs (an org's app restrictions,
    /// SAML single sign-on, a missing scope, a rate limit): `gatehouse_github_refusals_total`
    /// says which.
    FailedUnconfirmed,
    /// Any other failure (unexpected answers, a session too large for cookies, a store error).
    FailedOther,
}

impl LoginResult {
    pub const ALL: [LoginResult; 10] = [
        LoginResult::Started,
        LoginResult::Succeeded,
        LoginResult::Denied,
        LoginResult::FailedState,
        LoginResult::FailedGithubRefused,
        LoginResult::FailedCode,
        LoginResult::FailedGithubUnavailable,
        LoginResult::FailedMisconfigured,
        LoginResult::FailedUnconfirmed,
        LoginResult::FailedOther,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LoginResult::Started => "started",
            LoginResult::Succeeded => "succeeded",
            LoginResult::Denied => "denied",
            LoginResult::FailedState => "failed_state",
            LoginResult::FailedGithubRefused => "failed_github_refused",
            LoginResult::FailedCode => "failed_code",
            LoginResult::FailedGithubUnavailable => "failed_github_unavailable",
            LoginResult::FailedMisconfigured => "failed_misconfigured",
            LoginResult::FailedUnconfirmed => "failed_unconfirmed",
            LoginResult::FailedOther => "failed_other",
        }
    }
}

/// Why a GitHub API call counts as an error (`gatehouse_github_errors_total{kind}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GithubErrorKind {
    /// No answer: connection refused, TLS, timeout.
    Unreachable,
    /// 5xx.
    ServerError,
    /// 429, or 403 with the rate limit exhausted.
    RateLimited,
}

impl GithubErrorKind {
    const ALL: [GithubErrorKind; 3] = [
        GithubErrorKind::Unreachable,
        GithubErrorKind::ServerError,
        GithubErrorKind::RateLimited,
    ];

    fn as_str(self) -> &'static str {
        match self {
            GithubErrorKind::Unreachable => "unreachable",
            GithubErrorKind::ServerError => "server_error",
            GithubErrorKind::RateLimited => "rate_limited",
        }
    }
}

/// The `result` label of `gatehouse_reloads_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReloadResult {
    /// The new config is in force.
    Applied,
    /// The new config was refused (invalid, or unusable); the previous one stays in force.
    Refused,
}

impl ReloadResult {
    const ALL: [ReloadResult; 2] = [ReloadResult::Applied, ReloadResult::Refused];

    fn as_str(self) -> &'static str {
        match self {
            ReloadResult::Applied => "applied",
            ReloadResult::Refused => "refused",
        }
    }
}

/// Which client secret GitHub took for a code exchange
/// (`gatehouse_github_client_secret_total{secret}`): during a rotation, `previous` at zero
/// for long enough means the old secret can be deleted at GitHub.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientSecretUsed {
    /// `github.client_secret`.
    Current,
    /// `github.client_secret_previous`.
    Previous,
}

impl ClientSecretUsed {
    const ALL: [ClientSecretUsed; 2] = [ClientSecretUsed::Current, ClientSecretUsed::Previous];

    fn as_str(self) -> &'static str {
        match self {
            ClientSecretUsed::Current => "current",
            ClientSecretUsed::Previous => "previous",
        }
    }
}

/// When GitHub refused (`gatehouse_github_refusals_total{during}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusedDuring {
    /// A browser or client sign-in, a token refresh, a presented GitHub token.
    SignIn,
    /// A session's (or access token's) membership re-check.
    Recheck,
}

impl RefusedDuring {
    const ALL: [RefusedDuring; 2] = [RefusedDuring::SignIn, RefusedDuring::Recheck];

    fn as_str(self) -> &'static str {
        match self {
            RefusedDuring::SignIn => "sign_in",
            RefusedDuring::Recheck => "recheck",
        }
    }
}

/// Why the gate itself answered with a 5xx (`gatehouse_errors_total{cause}`): what to look at
/// first when the error ratio climbs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCause {
    /// The session store (Redis) did not answer.
    Store,
    /// GitHub could not be reached or answered 5xx.
    Github,
    /// A membership re-check could not be made, so access could not be confirmed.
    Membership,
    /// The upstream app could not be reached or failed mid-response.
    Upstream,
    /// The gate's own configuration is wrong (an operator must fix it).
    Misconfigured,
    /// Anything else: overload, a body or method Gatehouse refuses with 5xx, a bug.
    Other,
}

impl ErrorCause {
    const ALL: [ErrorCause; 6] = [
        ErrorCause::Store,
        ErrorCause::Github,
        ErrorCause::Membership,
        ErrorCause::Upstream,
        ErrorCause::Misconfigured,
        ErrorCause::Other,
    ];

    fn as_str(self) -> &'static str {
        match self {
            ErrorCause::Store => "store",
            ErrorCause::Github => "github",
            ErrorCause::Membership => "membership",
            ErrorCause::Upstream => "upstream",
            ErrorCause::Misconfigured => "misconfigured",
            ErrorCause::Other => "other",
        }
    }

    /// The cause of a refusal answered with a 5xx; `None` for the 4xx ones (the client's doing).
    pub fn of_refusal(refusal: &Refusal) -> Option<ErrorCause> {
        if refusal.status() < 500 {
            return None;
        }
        Some(match refusal {
            Refusal::StoreUnavailable => ErrorCause::Store,
            Refusal::GithubUnavailable { .. } | Refusal::GithubRefused { .. } => ErrorCause::Github,
            Refusal::MembershipUnconfirmed => ErrorCause::Membership,
            Refusal::UpstreamUnavailable => ErrorCause::Upstream,
            Refusal::GatewayMisconfigured { .. } => ErrorCause::Misconfigured,
            _ => ErrorCause::Other,
        })
    }
}

/// What a membership re-check found (`gatehouse_membership_rechecks_total{outcome, reason}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecheckOutcome {
    /// GitHub answered; no membership was lost.
    Confirmed,
    /// GitHub answered; at least one membership the session had is gone.
    Removed,
    /// GitHub no longer accepts the token: the session ends.
    Ended,
    /// GitHub could not be asked (`reason = "unreachable"`) or would not say (a
    /// [`GithubRefusal::reason`]): the last known memberships serve within `stale_grace`.
    Unconfirmed(&'static str),
}

/// The `reason` of an unconfirmed re-check that GitHub did not answer at all.
pub const UNREACHABLE: &str = "unreachable";

impl RecheckOutcome {
    fn labels(self) -> (&'static str, &'static str) {
        match self {
            RecheckOutcome::Confirmed => ("confirmed", ""),
            RecheckOutcome::Removed => ("removed", ""),
            RecheckOutcome::Ended => ("ended", ""),
            RecheckOutcome::Unconfirmed(reason) => ("unconfirmed", reason),
        }
    }

    /// Every label pair, created up front.
    fn all() -> impl Iterator<Item = (&'static str, &'static str)> {
        [
            RecheckOutcome::Confirmed,
            RecheckOutcome::Removed,
            RecheckOutcome::Ended,
        ]
        .into_iter()
        .chain(
            std::iter::once(UNREACHABLE)
                .chain(GithubRefusal::REASONS)
                .map(RecheckOutcome::Unconfirmed),
        )
        .map(RecheckOutcome::labels)
    }
}

/// `gatehouse_requests_total` for one route, one counter per decision, ready to increment.
#[derive(Clone)]
pub struct RequestCounters {
    by_decision: [IntCounter; Decision::ALL.len()],
}

impl RequestCounters {
    #[inline]
    pub fn record(&self, decision: Decision) {
        self.by_decision[decision as usize].inc();
    }
}

pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    logins: [IntCounter; LoginResult::ALL.len()],
    github_duration: Histogram,
    github_errors: [IntCounter; GithubErrorKind::ALL.len()],
    github_refusals: IntCounterVec,
    rechecks: IntCounterVec,
    client_secrets: [IntCounter; ClientSecretUsed::ALL.len()],
    upstream_duration: Histogram,
    sessions_active: OnceLock<IntGauge>,
    default_requests: RequestCounters,
    reloads: [IntCounter; ReloadResult::ALL.len()],
    errors: [IntCounter; ErrorCause::ALL.len()],
    refresh_reuse: IntCounter,
    ready: IntGauge,
    certificate_expiry: OnceLock<IntGaugeVec>,
}

/// The process's metrics.
pub fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

const GITHUB_BUCKETS: &[f64] = &[0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];
const UPSTREAM_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

impl Metrics {
    #[allow(
        clippy::expect_used,
        reason = "constant names and labels: a failure is a bug"
    )]
    fn new() -> Metrics {
        // Names and labels are constants: a failure here is a programming error.
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "gatehouse_requests_total",
                "Requests by route and by how the gate answered them.",
            ),
            &["route", "decision"],
        )
        .expect("requests metric");
        let logins = IntCounterVec::new(
            Opts::new(
                "gatehouse_logins_total",
                "Browser and client sign-ins through GitHub, by result.",
            ),
            &["result"],
        )
        .expect("logins metric");
        let github_duration = Histogram::with_opts(
            HistogramOpts::new(
                "gatehouse_github_request_duration_seconds",
                "Time GitHub's REST API took to answer (until the response headers).",
            )
            .buckets(GITHUB_BUCKETS.to_vec()),
        )
        .expect("github histogram");
        let github_errors = IntCounterVec::new(
            Opts::new(
                "gatehouse_github_errors_total",
                "GitHub REST calls that failed: unreachable, 5xx or rate-limited.",
            ),
            &["kind"],
        )
        .expect("github errors metric");
        let github_refusals = IntCounterVec::new(
            Opts::new(
                "gatehouse_github_refusals_total",
                "Times GitHub would not confirm a person's access, by reason (access_restricted, sso_required, scope_missing, rate_limited, secondary_rate_limited) and during what (sign_in, recheck).",
            ),
            &["reason", "during"],
        )
        .expect("github refusals metric");
        let rechecks = IntCounterVec::new(
            Opts::new(
                "gatehouse_membership_rechecks_total",
                "Membership re-checks by outcome (confirmed, removed, ended, unconfirmed) and, for unconfirmed ones, reason.",
            ),
            &["outcome", "reason"],
        )
        .expect("rechecks metric");
        let client_secrets = IntCounterVec::new(
            Opts::new(
                "gatehouse_github_client_secret_total",
                "Code exchanges GitHub accepted, by the client secret it took.",
            ),
            &["secret"],
        )
        .expect("client secret metric");
        let upstream_duration = Histogram::with_opts(
            HistogramOpts::new(
                "gatehouse_upstream_duration_seconds",
                "Time from choosing the upstream to its response headers (connect included).",
            )
            .buckets(UPSTREAM_BUCKETS.to_vec()),
        )
        .expect("upstream histogram");
        let build_info = IntGaugeVec::new(
            Opts::new(
                "gatehouse_build_info",
                "Always 1; the labels say which Gatehouse build is running.",
            ),
            &["version"],
        )
        .expect("build info metric");
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        let reloads = IntCounterVec::new(
            Opts::new(
                "gatehouse_reloads_total",
                "Config reloads (SIGHUP), by result: applied, or refused with the previous config kept.",
            ),
            &["result"],
        )
        .expect("reloads metric");
        let errors = IntCounterVec::new(
            Opts::new(
                "gatehouse_errors_total",
                "Requests the gate itself answered with a 5xx, by cause.",
            ),
            &["cause"],
        )
        .expect("errors metric");
        let refresh_reuse = IntCounter::new(
            "gatehouse_refresh_token_reuse_total",
            "Refresh tokens presented again after use (a copied token): each revoked its whole sign-in.",
        )
        .expect("refresh reuse metric");
        let ready = IntGauge::new(
            "gatehouse_ready",
            "1 when the gate can serve (what /ready says, checked at each scrape), else 0.",
        )
        .expect("ready metric");
        ready.set(1);
        for collector in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(logins.clone()),
            Box::new(github_duration.clone()),
            Box::new(github_errors.clone()),
            Box::new(github_refusals.clone()),
            Box::new(rechecks.clone()),
            Box::new(client_secrets.clone()),
            Box::new(upstream_duration.clone()),
            Box::new(build_info),
            Box::new(reloads.clone()),
            Box::new(errors.clone()),
            Box::new(refresh_reuse.clone()),
            Box::new(ready.clone()),
            Box::new(crate::store::errors_counter().clone()),
        ] {
            registry
                .register(collector)
                .expect("metric names are unique");
        }
        for reason in GithubRefusal::REASONS {
            for during in RefusedDuring::ALL {
                github_refusals.with_label_values(&[reason, during.as_str()]);
            }
        }
        for (outcome, reason) in RecheckOutcome::all() {
            rechecks.with_label_values(&[outcome, reason]);
        }
        let default_requests = RequestCounters {
            by_decision: Decision::ALL
                .map(|d| requests.with_label_values(&[DEFAULT_ROUTE, d.as_str()])),
        };
        Metrics {
            default_requests,
            logins: LoginResult::ALL.map(|r| logins.with_label_values(&[r.as_str()])),
            github_errors: GithubErrorKind::ALL
                .map(|k| github_errors.with_label_values(&[k.as_str()])),
            github_refusals,
            rechecks,
            client_secrets: ClientSecretUsed::ALL
                .map(|c| client_secrets.with_label_values(&[c.as_str()])),
            registry,
            requests,
            github_duration,
            upstream_duration,
            sessions_active: OnceLock::new(),
            reloads: ReloadResult::ALL.map(|r| reloads.with_label_values(&[r.as_str()])),
            errors: ErrorCause::ALL.map(|c| errors.with_label_values(&[c.as_str()])),
            refresh_reuse,
            ready,
            certificate_expiry: OnceLock::new(),
        }
    }

    /// The request counters of route `default` (every request until routes have their own).
    #[inline]
    pub fn requests(&self) -> &RequestCounters {
        &self.default_requests
    }

    /// The request counters of one route; every decision's series exists from now on (at 0).
    /// Call once per route at start, not per request.
    pub fn requests_for(&self, route: &str) -> RequestCounters {
        RequestCounters {
            by_decision: Decision::ALL
                .map(|d| self.requests.with_label_values(&[route, d.as_str()])),
        }
    }

    #[inline]
    pub fn login(&self, result: LoginResult) {
        self.logins[result as usize].inc();
    }

    /// One GitHub REST call and its outcome, `took` after it was sent.
    pub fn github_call(&self, took: Duration, outcome: Result<&reqwest::Response, ()>) {
        let response = match outcome {
            Ok(response) => response,
            Err(()) => return self.github_error(GithubErrorKind::Unreachable),
        };
        self.github_duration.observe(took.as_secs_f64());
        let status = response.status().as_u16();
        let exhausted = || {
            response
                .headers()
                .get("x-ratelimit-remaining")
                .is_some_and(|v| v.as_bytes() == b"0")
        };
        match status {
            429 => self.github_error(GithubErrorKind::RateLimited),
            403 if exhausted() => self.github_error(GithubErrorKind::RateLimited),
            s if s >= 500 => self.github_error(GithubErrorKind::ServerError),
            _ => {}
        }
    }

    pub fn github_error(&self, kind: GithubErrorKind) {
        self.github_errors[kind as usize].inc();
    }

    /// GitHub would not confirm someone's access (not on the request path: at sign-in or a
    /// re-check, so the label lookup is fine).
    pub fn github_refusal(&self, refusal: &GithubRefusal, during: RefusedDuring) {
        self.github_refusals
            .with_label_values(&[refusal.reason(), during.as_str()])
            .inc();
    }

    /// One membership re-check's outcome (once per re-check, however many requests wait).
    pub fn recheck(&self, outcome: RecheckOutcome) {
        let (outcome, reason) = outcome.labels();
        self.rechecks.with_label_values(&[outcome, reason]).inc();
    }

    pub fn client_secret_used(&self, secret: ClientSecretUsed) {
        self.client_secrets[secret as usize].inc();
    }

    #[inline]
    pub fn upstream(&self, took: Duration) {
        self.upstream_duration.observe(took.as_secs_f64());
    }

    pub fn reload(&self, result: ReloadResult) {
        self.reloads[result as usize].inc();
    }

    /// A 5xx the gate answered itself.
    pub fn error(&self, cause: ErrorCause) {
        self.errors[cause as usize].inc();
    }

    /// Count `refusal` if it is one of the gate's own 5xx.
    pub fn refused(&self, refusal: &Refusal) {
        if let Some(cause) = ErrorCause::of_refusal(refusal) {
            self.error(cause);
        }
    }

    pub fn refresh_token_reused(&self) {
        self.refresh_reuse.inc();
    }

    /// `gatehouse_ready`, as the last check found it.
    pub fn set_ready(&self, ready: bool) {
        self.ready.set(i64::from(ready));
    }

    /// `gatehouse_tls_certificate_expiry_timestamp_seconds{listener}`: when the certificate a
    /// TLS listener serves stops being valid (Unix seconds). Absent without TLS.
    #[allow(clippy::expect_used, reason = "a constant name: a failure is a bug")]
    pub fn certificate_expires(&self, listener: &str, not_after: i64) {
        self.certificate_expiry
            .get_or_init(|| {
                let gauge = IntGaugeVec::new(
                    Opts::new(
                        "gatehouse_tls_certificate_expiry_timestamp_seconds",
                        "When the certificate a TLS listener serves expires (Unix seconds).",
                    ),
                    &["listener"],
                )
                .expect("certificate expiry metric");
                // Only fails when registered twice, which the OnceLock prevents.
                let _ = self.registry.register(Box::new(gauge.clone()));
                gauge
            })
            .with_label_values(&[listener])
            .set(not_after);
    }

    /// `gatehouse_sessions_active`, for a session store that can count its sessions. The cookie
    /// store cannot (sessions live only in browsers), so with it the gauge is never created and
    /// the metric is absent rather than a misleading 0.
    #[allow(clippy::expect_used, reason = "a constant name: a failure is a bug")]
    pub fn sessions_active(&self) -> &IntGauge {
        self.sessions_active.get_or_init(|| {
            let gauge = IntGauge::new(
                "gatehouse_sessions_active",
                "Sessions the session store holds that have not expired.",
            )
            .expect("sessions gauge");
            // Only fails when registered twice, which the OnceLock prevents.
            let _ = self.registry.register(Box::new(gauge.clone()));
            gauge
        })
    }

    /// Everything in Prometheus text format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = Vec::with_capacity(8 * 1024);
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::warn!(error = %e, "cannot encode the metrics");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

/// The `Content-Type` of [`Metrics::render`].
pub const CONTENT_TYPE: &str = prometheus::TEXT_FORMAT;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_series_exists_from_the_start() {
        let text = metrics().render();
        for d in Decision::ALL {
            assert!(
                text.contains(&format!(
                    "gatehouse_requests_total{{decision=\"{d}\",route=\"default\"}}"
                )),
                "{d}: {text}"
            );
        }
        for r in LoginResult::ALL {
            assert!(
                text.contains(&format!("result=\"{}\"", r.as_str())),
                "{text}"
            );
        }
        assert!(text.contains("gatehouse_github_request_duration_seconds_bucket"));
        assert!(text.contains("gatehouse_upstream_duration_seconds_count"));
        assert!(text.contains("gatehouse_github_errors_total{kind=\"unreachable\"}"));
        assert!(
            !text.contains("gatehouse_sessions_active"),
            "cookie store: absent"
        );
    }

    #[test]
    fn counters_move() {
        let m = Metrics::new();
        let route = m.requests_for("app");
        route.record(Decision::Forbidden);
        route.record(Decision::Forbidden);
        m.login(LoginResult::FailedCode);
        let answer = http::Response::builder().status(502).body("").unwrap();
        m.github_call(
            Duration::from_millis(30),
            Ok(&reqwest::Response::from(answer)),
        );
        m.github_call(Duration::from_millis(30), Err(()));
        m.upstream(Duration::from_millis(3));
        m.sessions_active().set(4);
        let text = m.render();
        assert!(
            text.contains("gatehouse_requests_total{decision=\"forbidden\",route=\"app\"} 2"),
            "{text}"
        );
        assert!(text.contains("gatehouse_logins_total{result=\"failed_code\"} 1"));
        assert!(text.contains("gatehouse_github_errors_total{kind=\"server_error\"} 1"));
        assert!(text.contains("gatehouse_github_errors_total{kind=\"unreachable\"} 1"));
        assert!(text.contains("gatehouse_github_request_duration_seconds_count 1"));
        assert!(text.contains("gatehouse_upstream_duration_seconds_bucket{le=\"0.005\"} 1"));
        assert!(text.contains("gatehouse_sessions_active 4"));
    }

    #[test]
    fn refusals_map_to_decisions() {
        let sign_in = Refusal::SignInRequired {
            sign_in_url: "/oauth2/start".into(),
        };
        assert_eq!(Decision::of_refusal(&sign_in, true), Decision::Redirected);
        assert_eq!(
            Decision::of_refusal(&sign_in, false),
            Decision::Unauthorized
        );
        let forbidden = Refusal::Forbidden {
            login: None,
            sign_out_url: String::new(),
        };
        assert_eq!(Decision::of_refusal(&forbidden, true), Decision::Forbidden);
        assert_eq!(
            Decision::of_refusal(&Refusal::NotFound, false),
            Decision::Hidden
        );
        let bad = Refusal::BadPath {
            reason: String::new(),
        };
        assert_eq!(Decision::of_refusal(&bad, false), Decision::BadRequest);
        let limited = Refusal::TooManyRequests { retry_after: 1 };
        assert_eq!(Decision::of_refusal(&limited, false), Decision::RateLimited);
        assert_eq!(
            Decision::of_refusal(&Refusal::StoreUnavailable, true),
            Decision::Error
        );
    }
}
