//! Membership re-checks: when a session's memberships are older than `access.refresh_interval`,
//! ask GitHub again with the token kept in the session. One re-check per session runs at a time;
//! other requests of the same session (many tabs) wait for its result instead of asking again,
//! and a result is remembered briefly so the requests still carrying the old cookie reuse it.

use crate::app::App;
use crate::github::{GithubClient, GithubError};
use crate::policy::MembershipPlan;
use crate::session::SessionClaims;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// What GitHub said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Current login and groups.
    Fresh { login: String, groups: Vec<String> },
    /// The token no longer works (revoked, or the app's authorization removed): the session ends.
    Revoked,
    /// GitHub could not be asked; the last known memberships may serve for `stale_grace`.
    Unavailable,
}

impl Outcome {
    /// How long (seconds) other requests of the session may reuse this outcome.
    fn reuse_for(&self) -> u64 {
        match self {
            Outcome::Fresh { .. } | Outcome::Revoked => 30,
            // Short, so GitHub coming back is noticed soon, yet a GitHub outage does not turn
            // every request into a GitHub call.
            Outcome::Unavailable => 5,
        }
    }
}

enum Slot {
    Running(watch::Receiver<Option<(Outcome, u64)>>),
    Done { outcome: Outcome, at: u64 },
}

/// Sessions being (or just) re-checked, by [`SessionClaims::session_key`].
#[derive(Default)]
pub struct Rechecks {
    slots: Arc<Mutex<Slots>>,
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
    Wait(watch::Receiver<Option<(Outcome, u64)>>),
    Run(watch::Sender<Option<(Outcome, u64)>>),
}

impl Rechecks {
    /// Re-check `claims` (whose memberships are due), or join the re-check already running.
    /// Only answers from after `not_before` are reused (a revocation asked for a fresh one).
    /// Returns what GitHub said and when it was asked; `None` when GitHub has not answered
    /// within `patience` (the re-check goes on in the background, and a later request of the
    /// session gets its answer).
    pub async fn run(
        &self,
        app: &App,
        claims: &SessionClaims,
        now: u64,
        not_before: u64,
        patience: Option<Duration>,
    ) -> Option<(Outcome, u64)> {
        let key = claims.session_key();
        let deadline = patience.map(|p| tokio::time::Instant::now() + p);
        loop {
            let mut rx = match self.join_or_start(&key, claims.refreshed_at.max(not_before), now) {
                Ok(outcome) => return Some(outcome),
                Err(Role::Wait(rx)) => rx,
                Err(Role::Run(tx)) => {
                    let rx = tx.subscribe();
                    self.start(app, claims, key.clone(), tx, now);
                    rx
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
            forget_running(&self.slots, &key);
        }
    }

    /// Ask GitHub in a task of its own, so the answer is kept even when no request waits
    /// for it any more.
    fn start(
        &self,
        app: &App,
        claims: &SessionClaims,
        key: String,
        tx: watch::Sender<Option<(Outcome, u64)>>,
        now: u64,
    ) {
        let github = Arc::clone(&app.github);
        let plan = app.settings.policy.membership.clone();
        let claims = claims.clone();
        let slots = Arc::clone(&self.slots);
        tokio::spawn(async move {
            let mut guard = RunGuard {
                slots,
                key,
                finished: false,
            };
            let outcome = ask_github(&github, &plan, &claims).await;
            let mut slots = guard.slots.lock().unwrap_or_else(|p| p.into_inner());
            slots.insert(
                guard.key.clone(),
                Slot::Done {
                    outcome: outcome.clone(),
                    at: now,
                },
            );
            drop(slots);
            guard.finished = true;
            let _ = tx.send(Some((outcome, now)));
        });
    }

    /// A result is reused only by requests whose cookie predates it (tabs that have not seen
    /// the refreshed cookie yet); a cookie carrying that result is due again after the
    /// refresh interval like any other.
    fn join_or_start(
        &self,
        key: &str,
        refreshed_at: u64,
        now: u64,
    ) -> Result<(Outcome, u64), Role> {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        match slots.get(key) {
            Some(Slot::Done { outcome, at })
                if refreshed_at < *at && now < at + outcome.reuse_for() =>
            {
                return Ok((outcome.clone(), *at))
            }
            Some(Slot::Running(rx)) => return Err(Role::Wait(rx.clone())),
            _ => {}
        }
        if slots.len() >= SWEEP_ABOVE {
            slots.retain(|_, slot| match slot {
                Slot::Running(_) => true,
                Slot::Done { outcome, at } => now < *at + outcome.reuse_for(),
            });
        }
        let (tx, rx) = watch::channel(None);
        slots.insert(key.to_string(), Slot::Running(rx));
        Err(Role::Run(tx))
    }
}

fn forget_running(slots: &Mutex<Slots>, key: &str) {
    let mut slots = slots.lock().unwrap_or_else(|p| p.into_inner());
    if matches!(slots.get(key), Some(Slot::Running(_))) {
        slots.remove(key);
    }
}

/// Clears a re-check's slot if its task ends without an answer (a panic), so the next
/// request starts another instead of waiting on it forever.
struct RunGuard {
    slots: Arc<Mutex<Slots>>,
    key: String,
    finished: bool,
}

impl Drop for RunGuard {
    fn drop(&mut self) {
        if !self.finished {
            forget_running(&self.slots, &self.key);
        }
    }
}

async fn ask_github(
    github: &GithubClient,
    plan: &MembershipPlan,
    claims: &SessionClaims,
) -> Outcome {
    let Some(token) = claims.ght.as_deref() else {
        return Outcome::Revoked;
    };
    let user = github.user(token);
    let groups = github.memberships(token, &claims.login, plan);
    match futures_util::try_join!(user, groups) {
        Ok((user, groups)) if user.id.to_string() == claims.sub => {
            tracing::info!(login = %user.login, "memberships re-checked");
            Outcome::Fresh {
                login: user.login,
                groups,
            }
        }
        Ok((user, _)) => {
            tracing::warn!(login = %user.login, "re-check: the token belongs to another user; ending the session");
            Outcome::Revoked
        }
        Err(GithubError::Status { status: 401, .. }) => {
            tracing::info!(login = %claims.login, "re-check: GitHub no longer accepts the token; ending the session");
            Outcome::Revoked
        }
        Err(e) => {
            tracing::warn!(login = %claims.login, error = %e, "re-check failed; keeping the last known memberships within access.stale_grace");
            Outcome::Unavailable
        }
    }
}
