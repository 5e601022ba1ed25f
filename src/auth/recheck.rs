//! Membership re-checks: when a session's memberships are older than `access.refresh_interval`,
//! ask GitHub again with the token kept in the session. One re-check per session runs at a time;
//! other requests of the same session (many tabs) wait for its result instead of asking again,
//! and a result is remembered briefly so the requests still carrying the old cookie reuse it.

use crate::app::App;
use crate::github::GithubError;
use crate::session::SessionClaims;
use std::collections::HashMap;
use std::sync::Mutex;
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
    slots: Mutex<HashMap<String, Slot>>,
}

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
    /// Returns what GitHub said and when it was asked.
    pub async fn run(
        &self,
        app: &App,
        claims: &SessionClaims,
        now: u64,
        not_before: u64,
    ) -> (Outcome, u64) {
        let key = claims.session_key();
        loop {
            match self.join_or_start(&key, claims.refreshed_at.max(not_before), now) {
                Ok(outcome) => return outcome,
                Err(Role::Wait(mut rx)) => {
                    if let Ok(v) = rx.wait_for(Option::is_some).await {
                        if let Some(answer) = v.clone() {
                            return answer;
                        }
                    }
                    // The request running it went away before finishing: try again.
                    self.forget_running(&key);
                }
                Err(Role::Run(tx)) => {
                    let guard = RunGuard {
                        rechecks: self,
                        key: &key,
                        finished: false,
                    };
                    let outcome = ask_github(app, claims).await;
                    self.finish(guard, outcome.clone(), now);
                    let _ = tx.send(Some((outcome.clone(), now)));
                    return (outcome, now);
                }
            }
        }
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

    fn finish(&self, mut guard: RunGuard, outcome: Outcome, now: u64) {
        guard.finished = true;
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots.insert(guard.key.to_string(), Slot::Done { outcome, at: now });
    }

    fn forget_running(&self, key: &str) {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        if matches!(slots.get(key), Some(Slot::Running(_))) {
            slots.remove(key);
        }
    }
}

/// Clears a re-check's slot if the request running it is dropped midway (client gone).
struct RunGuard<'a> {
    rechecks: &'a Rechecks,
    key: &'a str,
    finished: bool,
}

impl Drop for RunGuard<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.rechecks.forget_running(self.key);
        }
    }
}

async fn ask_github(app: &App, claims: &SessionClaims) -> Outcome {
    let Some(token) = claims.ght.as_deref() else {
        return Outcome::Revoked;
    };
    let plan = &app.settings.policy.membership;
    let user = app.github.user(token);
    let groups = app.github.memberships(token, &claims.login, plan);
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
