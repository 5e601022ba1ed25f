//! This process's short-lived copy of server-side session records: a session's requests within
//! [`FRESH_FOR`] of each other share one store read. Ending a session here drops it at once;
//! on other replicas a copy lives at most [`FRESH_FOR`], well within the one second a
//! revocation may take (and the revocation list ends them sooner still).

use crate::store::SessionRecord;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const FRESH_FOR: Duration = Duration::from_millis(250);
/// Records kept at most; past it, stale copies go, then everything.
const MAX_RECORDS: usize = 10_000;

#[derive(Debug, Default)]
pub struct RecordCache {
    records: Mutex<HashMap<String, (Arc<SessionRecord>, Instant)>>,
}

impl RecordCache {
    fn records(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Arc<SessionRecord>, Instant)>> {
        self.records.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The record, if a copy younger than [`FRESH_FOR`] is here.
    pub fn get(&self, key: &str) -> Option<Arc<SessionRecord>> {
        self.records()
            .get(key)
            .filter(|(_, at)| at.elapsed() < FRESH_FOR)
            .map(|(r, _)| Arc::clone(r))
    }

    /// Keep a copy read from the store at `read_at`.
    pub fn put(&self, key: &str, record: Arc<SessionRecord>, read_at: Instant) {
        let mut records = self.records();
        if records.len() >= MAX_RECORDS {
            records.retain(|_, (_, at)| at.elapsed() < FRESH_FOR);
            if records.len() >= MAX_RECORDS {
                records.clear();
            }
        }
        records.insert(key.to_string(), (record, read_at));
    }

    pub fn forget(&self, key: &str) {
        self.records().remove(key);
    }

    pub fn forget_user(&self, user_id: &str) {
        self.records().retain(|_, (r, _)| r.user_id() != user_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claims::SessionClaims;

    fn record(sub: &str) -> Arc<SessionRecord> {
        Arc::new(SessionRecord {
            claims: SessionClaims {
                user_id: sub.into(),
                login: "x".into(),
                name: None,
                email: None,
                avatar_url: None,
                groups: vec![],
                roles: vec![],
                iat: 0,
                exp: 10,
                refreshed_at: 0,
                github_token: None,
                github_refresh: None,
                session_id: None,
            },
            sealed_token: None,
            created_at: 0,
            last_seen: 0,
            ip: None,
            user_agent: None,
        })
    }

    #[test]
    fn copies_are_fresh_for_a_moment_and_forgotten_on_request() {
        let cache = RecordCache::default();
        cache.put("a", record("1"), Instant::now());
        cache.put("b", record("1"), Instant::now());
        cache.put("c", record("2"), Instant::now());
        assert!(cache.get("a").is_some());
        cache.put("old", record("3"), Instant::now() - FRESH_FOR);
        assert!(cache.get("old").is_none(), "stale copies are not served");
        cache.forget("a");
        assert!(cache.get("a").is_none());
        cache.forget_user("1");
        assert!(cache.get("b").is_none() && cache.get("c").is_some());
    }
}
