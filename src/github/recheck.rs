//! Membership re-checks: when a session's memberships are older than `access.refresh_interval`,
//! ask GitHub again with the token kept in the session. One re-check per session runs at a time;
//! other requests of the same session (many tabs) wait for its result instead of asking again,
//! and a result is remembered briefly so the requests still carrying the old cookie reuse it.
//!
//! A webhook that lands while a re-check is under way asks for an answer from after it: a
//! re-check (running or done) is only shared with requests whose `not_before` it is known to
//! postdate, so the next request after the webhook starts another instead of getting the answer
//! GitHub gave before it.

use super::oauth::GithubTokens;
use super::refusal::covers;
use super::{GithubClient, GithubError, Memberships};
use crate::claims::{GithubRefresh, SessionClaims};
use crate::observe::metrics::UNREACHABLE;
use crate::observe::{metrics, RecheckOutcome, RefusedDuring};
use crate::pages::GithubRefusal;
use crate::policy::MembershipPlan;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// What GitHub said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Current login and groups; `refused`: GitHub would not say about a membership the
    /// session did not have (an org's app restrictions, single sign-on, a missing scope), so
    /// someone these groups do not admit is shown that instead of "not allowed".
    Fresh {
        login: String,
        groups: Vec<String>,
        refused: Option<GithubRefusal>,
    },
    /// The token no longer works (revoked, or the app's authorization removed): the session ends.
    Revoked,
    /// GitHub could not be asked (`None`), or would not say (`Some`: a rate limit, or a
    /// refusal that leaves a membership the session had unknown): never "removed"; the last
    /// known memberships may serve for `stale_grace`.
    Unconfirmed(Option<GithubRefusal>),
}

impl Outcome {
    /// How long (seconds) other requests of the session may reuse this outcome.
    fn reuse_for(&self) -> u64 {
        match self {
            Outcome::Fresh { refused: None, .. } | Outcome::Revoked => 30,
            // GitHub asked not to be asked again before then (at most five minutes).
            Outcome::Unconfirmed(Some(GithubRefusal::RateLimited { retry_after, .. })) => {
                (*retry_after).clamp(5, 300)
            }
            // Short, so GitHub coming back (or an owner's approval) is noticed soon, yet a
            // GitHub outage does not turn every request into a GitHub call.
            Outcome::Fresh { .. } | Outcome::Unconfirmed(_) => 5,
        }
    }
}

/// A re-check's answer: what GitHub said, when (unix seconds) it was asked, and the session's
/// renewed GitHub tokens when its expiring token was renewed (to keep in place of the old
/// ones, which GitHub has retired).
pub type Checked = (Outcome, u64, Option<GithubTokens>);

type Answer = Option<Checked>;

enum Slot {
    Running {
        rx: watch::Receiver<Answer>,
        /// Which run, so an older one finishing late never overwrites a newer one's slot.
        run: u64,
        fresh_after: u64,
    },
    Done {
        outcome: Outcome,
        at: u64,
        fresh_after: u64,
        renewed: Option<GithubTokens>,
    },
}

/// The latest revocation-list `recheck_before` a re-check started at `now` is known to
/// postdate: everything marked in an earlier second, and what its starter had already seen
/// (`not_before`). Marks are whole seconds, so one made in the same second may be later.
fn fresh_after(now: u64, not_before: u64) -> u64 {
    now.saturating_sub(1).max(not_before)
}

/// Sessions being (or just) re-checked, by [`SessionClaims::session_key`].
#[derive(Default)]
pub struct Rechecks {
    slots: Arc<Mutex<Slots>>,
    runs: std::sync::atomic::AtomicU64,
    renewals: Arc<Renewals>,
}

type Slots = HashMap<String, Slot>;

impl std::fmt::Debug for Rechecks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Rechecks")
    }
}

/// Entries kept before old results are swept out.
const SWEEP_ABOVE: usize = 10_000;

enum Role {
    Wait(watch::Receiver<Answer>, u64),
    Run(watch::Sender<Answer>, u64),
}

impl Rechecks {
    /// Re-check `claims` (whose memberships are due), or join the re-check already running.
    /// Only answers from after `not_before` are reused (a revocation asked for a fresh one).
    /// Returns what GitHub said and when it was asked; `None` when GitHub has not answered
    /// within `patience` (the re-check goes on in the background, and a later request of the
    /// session gets its answer).
    pub async fn run(
        &self,
        github: &Arc<GithubClient>,
        plan: &MembershipPlan,
        claims: &SessionClaims,
        now: u64,
        not_before: u64,
        patience: Option<Duration>,
    ) -> Option<Checked> {
        let key = claims.session_key();
        let deadline = patience.map(|p| tokio::time::Instant::now() + p);
        loop {
            let (mut rx, run) = match self.join_or_start(&key, claims.refreshed_at, not_before, now)
            {
                Ok(outcome) => return Some(outcome),
                Err(Role::Wait(rx, run)) => (rx, run),
                Err(Role::Run(tx, run)) => {
                    let rx = tx.subscribe();
                    self.start(github, plan, claims, key.clone(), (tx, run), now);
                    (rx, run)
                }
            };
            let answer = match deadline {
                Some(at) => match tokio::time::timeout_at(at, rx.wait_for(Option::is_some)).await {
                    Ok(answer) => answer.map(|v| v.clone()),
                    Err(_) => return None,
                },
                None => rx.wait_for(Option::is_some).await.map(|v| v.clone()),
            };
            if let Ok(Some(answer)) = answer {
                return Some(answer);
            }
            // The re-check ended without an answer (it cannot, short of a panic): again.
            forget_running(&self.slots, &key, run);
        }
    }

    /// Renew `claims`' GitHub token in place when it has expired or is about to (GitHub Apps),
    /// one renewal at a time per session, shared with the re-checks. GitHub refusing the
    /// renewal is a 401 (the sign-in is over), as for a token it no longer accepts.
    pub async fn renew_if_due(
        &self,
        github: &GithubClient,
        claims: &mut SessionClaims,
        now: u64,
    ) -> Result<(), GithubError> {
        let Some(refresh) = claims
            .github_refresh
            .clone()
            .filter(|r| renewal_due(r, now))
        else {
            return Ok(());
        };
        let tokens = match self
            .renewals
            .renew(github, &claims.session_key(), &refresh, now)
            .await
        {
            Err(GithubError::OAuth { error, .. }) => {
                return Err(GithubError::Status {
                    call: "the token renewal",
                    status: 401,
                    message: error,
                })
            }
            other => other?,
        };
        tracing::info!(login = %claims.login, "renewed the sign-in's GitHub token");
        tokens.keep_in(claims);
        Ok(())
    }

    /// Ask GitHub in a task of its own, so the answer is kept even when no request waits
    /// for it any more.
    fn start(
        &self,
        github: &Arc<GithubClient>,
        plan: &MembershipPlan,
        claims: &SessionClaims,
        key: String,
        (tx, run): (watch::Sender<Answer>, u64),
        now: u64,
    ) {
        let github = Arc::clone(github);
        let plan = plan.clone();
        let claims = claims.clone();
        let slots = Arc::clone(&self.slots);
        let renewals = Arc::clone(&self.renewals);
        tokio::spawn(async move {
            let mut guard = RunGuard {
                slots,
                key,
                run,
                finished: false,
            };
            let (outcome, renewed) = ask_github(&github, &renewals, &plan, &claims, now).await;
            let mut slots = guard.slots.lock().unwrap_or_else(|p| p.into_inner());
            // Kept only while this run still holds the slot: a newer run (a webhook asked for
            // an answer from after this one started) owns it otherwise.
            if let Some(slot) = slots.get_mut(&guard.key) {
                if let Slot::Running {
                    run: current,
                    fresh_after,
                    ..
                } = *slot
                {
                    if current == run {
                        *slot = Slot::Done {
                            outcome: outcome.clone(),
                            at: now,
                            fresh_after,
                            renewed: renewed.clone(),
                        };
                    }
                }
            }
            drop(slots);
            guard.finished = true;
            let _ = tx.send(Some((outcome, now, renewed)));
        });
    }

    /// A result is reused only by requests whose cookie predates it (tabs that have not seen
    /// the refreshed cookie yet); a cookie carrying that result is due again after the
    /// refresh interval like any other. A re-check, running or done, serves only requests
    /// whose `not_before` it postdates; for the others a new one starts (and takes the slot).
    fn join_or_start(
        &self,
        key: &str,
        refreshed_at: u64,
        not_before: u64,
        now: u64,
    ) -> Result<Checked, Role> {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        match slots.get(key) {
            Some(Slot::Done {
                outcome,
                at,
                fresh_after,
                renewed,
            }) if refreshed_at < *at
                && not_before <= *fresh_after
                && now < at + outcome.reuse_for() =>
            {
                return Ok((outcome.clone(), *at, renewed.clone()))
            }
            Some(Slot::Running {
                rx,
                run,
                fresh_after,
            }) if not_before <= *fresh_after => return Err(Role::Wait(rx.clone(), *run)),
            _ => {}
        }
        if slots.len() >= SWEEP_ABOVE {
            slots.retain(|_, slot| match slot {
                Slot::Running { .. } => true,
                Slot::Done { outcome, at, .. } => now < *at + outcome.reuse_for(),
            });
        }
        let (tx, rx) = watch::channel(None);
        let run = self.runs.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        slots.insert(
            key.to_string(),
            Slot::Running {
                rx,
                run,
                fresh_after: fresh_after(now, not_before),
            },
        );
        Err(Role::Run(tx, run))
    }
}

/// Forget run `run` of a re-check if it still holds `key`'s slot.
fn forget_running(slots: &Mutex<Slots>, key: &str, run: u64) {
    let mut slots = slots.lock().unwrap_or_else(|p| p.into_inner());
    if matches!(slots.get(key), Some(Slot::Running { run: current, .. }) if *current == run) {
        slots.remove(key);
    }
}

/// Clears a re-check's slot if its task ends without an answer (a panic), so the next
/// request starts another instead of waiting on it forever.
struct RunGuard {
    slots: Arc<Mutex<Slots>>,
    key: String,
    run: u64,
    finished: bool,
}

impl Drop for RunGuard {
    fn drop(&mut self) {
        if !self.finished {
            forget_running(&self.slots, &self.key, self.run);
        }
    }
}

/// Renew an expiring GitHub token this long before it expires, so a re-check never presents
/// one GitHub is about to refuse.
const RENEW_BEFORE_SECS: u64 = 300;

/// Ask GitHub about the session, renewing its GitHub token first when it has expired or is
/// about to (GitHub Apps), or when GitHub refuses it (GitHub's clock ahead of ours). Returns
/// the renewed tokens with the outcome, whatever it is: GitHub has retired the old ones.
async fn ask_github(
    github: &GithubClient,
    renewals: &Renewals,
    plan: &MembershipPlan,
    claims: &SessionClaims,
    now: u64,
) -> (Outcome, Option<GithubTokens>) {
    let Some(token) = claims.github_token.as_deref() else {
        metrics().recheck(RecheckOutcome::Ended);
        return (Outcome::Revoked, None);
    };
    let refresh = claims.github_refresh.as_ref();
    let due = refresh.is_some_and(|r| renewal_due(r, now));
    let (renewed, asked) = match (refresh, due) {
        (Some(refresh), true) => match renew(github, renewals, claims, refresh, now).await {
            Ok(tokens) => {
                let asked = check(github, plan, claims, &tokens.access_token).await;
                (Some(tokens), asked)
            }
            Err(outcome) => return (outcome, None),
        },
        _ => (None, check(github, plan, claims, token).await),
    };
    match (asked, refresh, &renewed) {
        (Ok(outcome), ..) => (outcome, renewed),
        // Refused before its time: renew once and ask again.
        (Err(Unauthorized), Some(refresh), None) => {
            match renew(github, renewals, claims, refresh, now).await {
                Ok(tokens) => {
                    let outcome = check(github, plan, claims, &tokens.access_token)
                        .await
                        .unwrap_or_else(|Unauthorized| ended(claims));
                    (outcome, Some(tokens))
                }
                Err(outcome) => (outcome, None),
            }
        }
        (Err(Unauthorized), ..) => (ended(claims), renewed),
    }
}

/// GitHub answered 401: the token does not work (any more).
struct Unauthorized;

/// The session ends: GitHub no longer accepts its token.
fn ended(claims: &SessionClaims) -> Outcome {
    tracing::info!(login = %claims.login, "re-check: GitHub no longer accepts the token; ending the session");
    metrics().recheck(RecheckOutcome::Ended);
    Outcome::Revoked
}

fn renewal_due(refresh: &GithubRefresh, now: u64) -> bool {
    now.saturating_add(RENEW_BEFORE_SECS) >= refresh.expires_at
}

/// Renew the session's GitHub token, or the outcome when GitHub will not: a refusal
/// (the refresh token expired, was used or revoked) ends the session; GitHub out of reach
/// leaves the memberships unconfirmed.
async fn renew(
    github: &GithubClient,
    renewals: &Renewals,
    claims: &SessionClaims,
    refresh: &GithubRefresh,
    now: u64,
) -> Result<GithubTokens, Outcome> {
    match renewals
        .renew(github, &claims.session_key(), refresh, now)
        .await
    {
        Ok(tokens) => {
            tracing::info!(login = %claims.login, "re-check: renewed the session's GitHub token");
            Ok(tokens)
        }
        Err(GithubError::OAuth { error, .. }) => {
            tracing::info!(login = %claims.login, error = %error, "re-check: GitHub refused to renew the token; ending the session");
            metrics().recheck(RecheckOutcome::Ended);
            Err(Outcome::Revoked)
        }
        Err(e) => {
            tracing::warn!(login = %claims.login, error = %e, "re-check: could not renew the GitHub token; keeping the last known memberships within access.stale_grace");
            metrics().recheck(RecheckOutcome::Unconfirmed(UNREACHABLE));
            Err(Outcome::Unconfirmed(None))
        }
    }
}

/// Who the token belongs to and the memberships the policy asks about.
async fn check(
    github: &GithubClient,
    plan: &MembershipPlan,
    claims: &SessionClaims,
    token: &str,
) -> Result<Outcome, Unauthorized> {
    let user = github.user(token);
    let memberships = github.memberships(token, &claims.login, plan);
    Ok(match futures_util::try_join!(user, memberships) {
        Ok((user, memberships)) if user.id.to_string() == claims.user_id => {
            answered(claims, user.login, memberships)
        }
        Ok((user, _)) => {
            tracing::warn!(login = %user.login, "re-check: the token belongs to another user; ending the session");
            metrics().recheck(RecheckOutcome::Ended);
            Outcome::Revoked
        }
        Err(GithubError::Status { status: 401, .. }) => return Err(Unauthorized),
        Err(GithubError::Refused(refusal)) => unconfirmed(claims, refusal),
        Err(e) => {
            tracing::warn!(login = %claims.login, error = %e, "re-check failed; keeping the last known memberships within access.stale_grace");
            metrics().recheck(RecheckOutcome::Unconfirmed(UNREACHABLE));
            Outcome::Unconfirmed(None)
        }
    })
}

/// GitHub token renewals, one at a time per session: GitHub retires a refresh token at its
/// first use, so a second renewal with it (a re-check a webhook started while another ran)
/// would be refused and end the session. The last renewal is remembered with the refresh
/// token it used, so one that waited for it takes its result instead of asking again.
#[derive(Default)]
struct Renewals(Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<Renewed>>>>>);

struct Renewed {
    used: String,
    tokens: GithubTokens,
}

impl Renewals {
    async fn renew(
        &self,
        github: &GithubClient,
        key: &str,
        refresh: &GithubRefresh,
        now: u64,
    ) -> Result<GithubTokens, GithubError> {
        let cell = {
            let mut cells = self.0.lock().unwrap_or_else(|p| p.into_inner());
            if cells.len() >= SWEEP_ABOVE {
                // Idle sessions' memories only serve renewals that overlap: drop them.
                cells.retain(|_, cell| Arc::strong_count(cell) > 1);
            }
            Arc::clone(cells.entry(key.to_string()).or_default())
        };
        let mut last = cell.lock().await;
        if let Some(done) = last.as_ref().filter(|done| done.used == refresh.token) {
            return Ok(done.tokens.clone());
        }
        let tokens = github.refresh_token(&refresh.token, now).await?;
        *last = Some(Renewed {
            used: refresh.token.clone(),
            tokens: tokens.clone(),
        });
        Ok(tokens)
    }
}

/// GitHub answered: fresh memberships, unless it would not say about one the session had
/// (then that membership is unknown, not gone).
fn answered(claims: &SessionClaims, login: String, memberships: Memberships) -> Outcome {
    let Memberships { groups, refused } = memberships;
    let lost: Vec<&String> = claims
        .groups
        .iter()
        .filter(|g| !groups.contains(g))
        .collect();
    if let Some(refusal) = refused.iter().find(|r| lost.iter().any(|g| covers(r, g))) {
        return unconfirmed(claims, refusal.clone());
    }
    let outcome = match (refused.first(), lost.is_empty()) {
        (Some(refusal), _) => {
            metrics().github_refusal(refusal, RefusedDuring::Recheck);
            tracing::warn!(login = %claims.login, reason = refusal.reason(), org = refusal.org().unwrap_or("-"), "re-check: GitHub would not confirm a membership the session did not have");
            RecheckOutcome::Unconfirmed(refusal.reason())
        }
        (None, true) => RecheckOutcome::Confirmed,
        (None, false) => RecheckOutcome::Removed,
    };
    metrics().recheck(outcome);
    tracing::info!(login = %login, "memberships re-checked");
    Outcome::Fresh {
        login,
        groups,
        refused: refused.into_iter().next(),
    }
}

/// GitHub would not say (a rate limit, or a refusal about a membership the session had):
/// counted, logged, and never taken for "removed".
fn unconfirmed(claims: &SessionClaims, refusal: GithubRefusal) -> Outcome {
    metrics().github_refusal(&refusal, RefusedDuring::Recheck);
    metrics().recheck(RecheckOutcome::Unconfirmed(refusal.reason()));
    tracing::warn!(
        login = %claims.login,
        reason = refusal.reason(),
        org = refusal.org().unwrap_or("-"),
        retry_after = refusal.retry_after().unwrap_or(0),
        "re-check not confirmed: GitHub would not answer ({}); keeping the last known memberships within access.stale_grace",
        refusal.reason()
    );
    Outcome::Unconfirmed(Some(refusal))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(r: Result<Checked, Role>) -> &'static str {
        match r {
            Ok(_) => "reuse",
            Err(Role::Wait(..)) => "wait",
            Err(Role::Run(..)) => "run",
        }
    }

    /// Finish the running re-check in `key`'s slot as its task would.
    fn finish(rechecks: &Rechecks, key: &str, at: u64) {
        let mut slots = rechecks.slots.lock().unwrap();
        let Some(Slot::Running { fresh_after, .. }) = slots.get(key) else {
            panic!("nothing running");
        };
        let fresh_after = *fresh_after;
        slots.insert(
            key.into(),
            Slot::Done {
                outcome: Outcome::Revoked,
                at,
                fresh_after,
                renewed: None,
            },
        );
    }

    #[test]
    fn a_recheck_serves_only_requests_whose_mark_it_postdates() {
        let r = Rechecks::default();
        // Due by the refresh interval at 100 (no mark): one runs, the others wait for it.
        assert_eq!(role(r.join_or_start("s", 10, 0, 100)), "run");
        assert_eq!(role(r.join_or_start("s", 10, 0, 100)), "wait");
        assert_eq!(
            role(r.join_or_start("s", 10, 99, 100)),
            "wait",
            "marked before"
        );
        // A webhook marked 100 (the re-check's own second, maybe after it started): another.
        assert_eq!(role(r.join_or_start("s", 10, 100, 100)), "run");
        assert_eq!(
            role(r.join_or_start("s", 10, 100, 100)),
            "wait",
            "started after 100"
        );
        finish(&r, "s", 100);
        assert_eq!(role(r.join_or_start("s", 10, 100, 101)), "reuse");
        assert_eq!(
            role(r.join_or_start("s", 10, 101, 101)),
            "run",
            "a later mark"
        );
        assert_eq!(
            role(r.join_or_start("t", 10, 0, 100)),
            "run",
            "another session"
        );
    }

    #[test]
    fn a_fresh_after_bound_is_the_second_before_or_the_mark_seen() {
        assert_eq!(fresh_after(100, 0), 99);
        assert_eq!(fresh_after(100, 100), 100);
        assert_eq!(fresh_after(0, 0), 0);
    }
}
