//! The single-process store: everything in memory, bounded, gone at restart.

use async_trait::async_trait;
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use super::{
    CodeGrant, CodeGrants, CodeTake, GithubTokenNotes, GithubTokenUse, ListRead, LoginIds,
    RefreshFamilies, RefreshFamily, RevocationList, SessionRecord, SessionRecords, SignInStates,
    Store, StoreError, UserMark, UserRevocations, WebhookDeliveries,
};

/// Bound on entries of each kind, so a flood cannot grow memory without limit.
const MAX_ENTRIES: usize = 500_000;
/// Bound on the raw GitHub tokens noted per user (each is a real token GitHub vouched for).
const MAX_TOKENS_PER_USER: usize = 64;

/// The single-process store.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Maps>,
}

#[derive(Debug, Default)]
struct Maps {
    /// `None` once used (kept until it would have expired, to say "already used").
    codes: HashMap<String, (Option<CodeGrant>, u64)>,
    families: HashMap<String, RefreshFamily>,
    /// GitHub id → its family ids (always a subset of `families`' keys).
    families_by_user: HashMap<String, HashSet<String>>,
    /// GitHub id → its noted raw GitHub tokens, by id.
    github_tokens: HashMap<String, HashMap<String, GithubTokenUse>>,
    /// Family id → until when it stays revoked.
    revoked: HashMap<String, u64>,
    /// Used sign-in states → until when they would have expired.
    states: HashMap<String, u64>,
    sessions: HashMap<String, SessionRecord>,
    /// GitHub id → its session keys.
    by_user: HashMap<String, HashSet<String>>,
    /// Lower-case login → (GitHub id, until).
    logins: HashMap<String, (String, u64)>,
    /// The revocation list. It lives exactly as long as this process, which is the only one
    /// reading it: no loss to detect, so its first epoch has floor 0 (a restart forgets
    /// revocations; SECURITY.md "Revocation guarantees").
    list: RevocationList,
    list_version: u64,
    /// Webhook deliveries seen → until when they are remembered.
    deliveries: HashMap<String, u64>,
}

impl MemoryStore {
    fn maps(&self) -> std::sync::MutexGuard<'_, Maps> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Maps {
    /// The list, with its epoch made on first use.
    fn list(&mut self) -> &mut RevocationList {
        if self.list.epoch.is_empty() {
            self.list.epoch = crate::opaque::random_token();
            self.list_changed();
        }
        &mut self.list
    }

    fn list_changed(&mut self) {
        self.list_version += 1;
        self.list.stamp = format!("{}.{}", self.list.epoch, self.list_version);
    }

    fn remove_session(&mut self, key: &str) -> Option<SessionRecord> {
        let record = self.sessions.remove(key)?;
        if let Some(keys) = self.by_user.get_mut(record.user_id()) {
            keys.remove(key);
            if keys.is_empty() {
                self.by_user.remove(record.user_id());
            }
        }
        Some(record)
    }

    fn remove_family(&mut self, id: &str) {
        let Some(family) = self.families.remove(id) else {
            return;
        };
        let user = &family.session.user_id;
        if let Some(ids) = self.families_by_user.get_mut(user) {
            ids.remove(id);
            if ids.is_empty() {
                self.families_by_user.remove(user);
            }
        }
    }
}

fn full(what: &str) -> StoreError {
    StoreError::Unavailable(format!("too many {what} in memory"))
}

#[async_trait]
impl Store for MemoryStore {
    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

#[async_trait]
impl SessionRecords for MemoryStore {
    async fn put_session(&self, key: &str, record: &SessionRecord) -> Result<(), StoreError> {
        let mut m = self.maps();
        if m.sessions.len() >= MAX_ENTRIES && !m.sessions.contains_key(key) {
            let now = crate::clock::unix_now();
            let dead: Vec<String> = m
                .sessions
                .iter()
                .filter(|(_, r)| r.expires_at() <= now)
                .map(|(k, _)| k.clone())
                .collect();
            for k in dead {
                m.remove_session(&k);
            }
            if m.sessions.len() >= MAX_ENTRIES {
                return Err(full("sessions"));
            }
        }
        m.by_user
            .entry(record.user_id().to_string())
            .or_default()
            .insert(key.to_string());
        m.sessions.insert(key.to_string(), record.clone());
        Ok(())
    }

    async fn session(&self, key: &str, now: u64) -> Result<Option<SessionRecord>, StoreError> {
        Ok(self
            .maps()
            .sessions
            .get(key)
            .filter(|r| now < r.expires_at())
            .cloned())
    }

    async fn touch_session(&self, key: &str, last_seen: u64) -> Result<(), StoreError> {
        if let Some(r) = self.maps().sessions.get_mut(key) {
            r.last_seen = r.last_seen.max(last_seen);
        }
        Ok(())
    }

    async fn update_session(&self, key: &str, record: &SessionRecord) -> Result<bool, StoreError> {
        // Checked and replaced under one lock: a delete cannot land in between.
        let mut m = self.maps();
        match m.sessions.get_mut(key) {
            // Same key, same user: the index needs no change.
            Some(r) if r.user_id() == record.user_id() => {
                let last_seen = r.last_seen.max(record.last_seen);
                *r = SessionRecord {
                    last_seen,
                    ..record.clone()
                };
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn delete_session(&self, key: &str) -> Result<Option<SessionRecord>, StoreError> {
        Ok(self.maps().remove_session(key))
    }

    async fn user_sessions(
        &self,
        user_id: &str,
        now: u64,
    ) -> Result<Vec<(String, SessionRecord)>, StoreError> {
        let m = self.maps();
        let Some(keys) = m.by_user.get(user_id) else {
            return Ok(Vec::new());
        };
        Ok(keys
            .iter()
            .filter_map(|k| m.sessions.get(k).map(|r| (k.clone(), r.clone())))
            .filter(|(_, r)| now < r.expires_at())
            .collect())
    }

    async fn delete_user_sessions(&self, user_id: &str) -> Result<usize, StoreError> {
        let mut m = self.maps();
        let keys = m.by_user.remove(user_id).unwrap_or_default();
        Ok(keys
            .iter()
            .filter(|k| m.sessions.remove(k.as_str()).is_some())
            .count())
    }

    async fn count_sessions(&self, now: u64) -> Result<u64, StoreError> {
        let m = self.maps();
        Ok(m.sessions.values().filter(|r| now < r.expires_at()).count() as u64)
    }
}

#[async_trait]
impl SignInStates for MemoryStore {
    async fn consume_state(
        &self,
        state_hash: &str,
        until: u64,
        now: u64,
    ) -> Result<bool, StoreError> {
        let mut m = self.maps();
        if m.states.len() >= MAX_ENTRIES / 2 {
            m.states.retain(|_, exp| *exp > now);
        }
        if m.states.len() >= MAX_ENTRIES {
            return Err(full("sign-in states"));
        }
        if m.states.get(state_hash).is_some_and(|exp| *exp > now) {
            return Ok(false);
        }
        m.states.insert(state_hash.to_string(), until);
        Ok(true)
    }
}

#[async_trait]
impl LoginIds for MemoryStore {
    async fn remember_login(
        &self,
        login: &str,
        user_id: &str,
        until: u64,
    ) -> Result<(), StoreError> {
        let mut m = self.maps();
        if m.logins.len() >= MAX_ENTRIES {
            let now = crate::clock::unix_now();
            m.logins.retain(|_, (_, exp)| *exp > now);
        }
        m.logins
            .insert(login.to_string(), (user_id.to_string(), until));
        Ok(())
    }

    async fn user_id_for(&self, login: &str) -> Result<Option<String>, StoreError> {
        let now = crate::clock::unix_now();
        Ok(self
            .maps()
            .logins
            .get(login)
            .filter(|(_, until)| *until > now)
            .map(|(id, _)| id.clone()))
    }
}

#[async_trait]
impl CodeGrants for MemoryStore {
    async fn put_code(&self, code_hash: &str, grant: &CodeGrant) -> Result<(), StoreError> {
        let mut m = self.maps();
        if m.codes.len() >= MAX_ENTRIES {
            let now = crate::clock::unix_now();
            m.codes.retain(|_, (_, until)| *until > now);
            if m.codes.len() >= MAX_ENTRIES {
                return Err(full("codes"));
            }
        }
        m.codes.insert(
            code_hash.to_string(),
            (Some(grant.clone()), grant.expires_at),
        );
        Ok(())
    }

    async fn take_code(&self, code_hash: &str, now: u64) -> Result<CodeTake, StoreError> {
        let mut m = self.maps();
        Ok(match m.codes.get_mut(code_hash) {
            Some((_, until)) if now >= *until => {
                m.codes.remove(code_hash);
                CodeTake::Unknown
            }
            Some((slot, _)) => match slot.take() {
                Some(grant) => CodeTake::Granted(Box::new(grant)),
                None => CodeTake::AlreadyUsed,
            },
            None => CodeTake::Unknown,
        })
    }

    async fn drop_user_codes(&self, user_id: &str, now: u64) -> Result<usize, StoreError> {
        let mut m = self.maps();
        let mut live = 0;
        m.codes.retain(|_, (grant, until)| match grant {
            Some(g) if g.session.user_id == user_id => {
                live += usize::from(now < *until);
                false
            }
            _ => true,
        });
        Ok(live)
    }
}

#[async_trait]
impl RefreshFamilies for MemoryStore {
    async fn put_family(&self, id: &str, family: &RefreshFamily) -> Result<(), StoreError> {
        let mut m = self.maps();
        if m.families.len() >= MAX_ENTRIES {
            let now = crate::clock::unix_now();
            let dead: Vec<String> = m
                .families
                .iter()
                .filter(|(_, f)| f.expires_at <= now)
                .map(|(k, _)| k.clone())
                .collect();
            for k in dead {
                m.remove_family(&k);
            }
            if m.families.len() >= MAX_ENTRIES {
                return Err(full("refresh tokens"));
            }
        }
        // A family never changes hands, but a caller replacing one must not leave it indexed
        // under its old user.
        m.remove_family(id);
        m.families_by_user
            .entry(family.session.user_id.clone())
            .or_default()
            .insert(id.to_string());
        m.families.insert(id.to_string(), family.clone());
        Ok(())
    }

    async fn family(&self, id: &str, now: u64) -> Result<Option<RefreshFamily>, StoreError> {
        Ok(self
            .maps()
            .families
            .get(id)
            .filter(|f| now < f.expires_at)
            .cloned())
    }

    async fn advance_family(
        &self,
        id: &str,
        expected_generation: u64,
        next: &RefreshFamily,
    ) -> Result<bool, StoreError> {
        let mut m = self.maps();
        match m.families.get_mut(id) {
            Some(f) if f.generation == expected_generation => {
                *f = next.clone();
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn user_families(
        &self,
        user_id: &str,
        now: u64,
    ) -> Result<Vec<(String, RefreshFamily)>, StoreError> {
        let m = self.maps();
        let Some(ids) = m.families_by_user.get(user_id) else {
            return Ok(Vec::new());
        };
        Ok(ids
            .iter()
            .filter_map(|id| m.families.get(id).map(|f| (id.clone(), f.clone())))
            .filter(|(_, f)| now < f.expires_at)
            .collect())
    }

    async fn revoke_family(&self, id: &str, until: u64) -> Result<(), StoreError> {
        let mut m = self.maps();
        m.remove_family(id);
        if m.revoked.len() >= MAX_ENTRIES {
            let now = crate::clock::unix_now();
            m.revoked.retain(|_, u| *u > now);
        }
        m.revoked.insert(id.to_string(), until);
        Ok(())
    }

    async fn is_revoked(&self, id: &str, now: u64) -> Result<bool, StoreError> {
        Ok(self.maps().revoked.get(id).is_some_and(|u| now < *u))
    }
}

#[async_trait]
impl UserRevocations for MemoryStore {
    async fn mark_user(&self, user_id: &str, mark: UserMark) -> Result<(), StoreError> {
        let mut m = self.maps();
        let now = crate::clock::unix_now();
        let list = m.list();
        list.marks.retain(|_, mark| mark.expires_at > now);
        if list.marks.len() >= MAX_ENTRIES {
            return Err(full("revocations"));
        }
        list.keep = list.keep.max(mark.expires_at.saturating_sub(now));
        let mark = UserMark {
            expires_at: mark.expires_at.max(now.saturating_add(list.keep)),
            ..mark
        };
        let merged = list.marks.get(user_id).map_or(mark, |old| old.merge(mark));
        list.marks.insert(user_id.to_string(), merged);
        m.list_changed();
        Ok(())
    }

    async fn revocation_list(
        &self,
        known_stamp: &str,
        keep: u64,
        now: u64,
    ) -> Result<ListRead, StoreError> {
        let mut m = self.maps();
        if m.list().keep < keep {
            m.list.keep = keep;
            m.list_changed();
        }
        if m.list.stamp == known_stamp {
            return Ok(ListRead::Unchanged);
        }
        let mut list = m.list.clone();
        list.marks.retain(|_, mark| mark.expires_at > now);
        Ok(ListRead::Current(list))
    }

    async fn republish(
        &self,
        copy: &RevocationList,
        vouch: bool,
        keep: u64,
        now: u64,
    ) -> Result<RevocationList, StoreError> {
        let mut m = self.maps();
        let list = m.list();
        if vouch && !copy.epoch.is_empty() && copy.epoch != list.epoch {
            list.floor = list.floor.min(copy.floor);
        }
        list.keep = list.keep.max(keep).max(copy.keep);
        for (user, mark) in copy.marks.iter().filter(|(_, m)| m.expires_at > now) {
            let merged = list.marks.get(user).map_or(*mark, |old| old.merge(*mark));
            list.marks.insert(user.clone(), merged);
        }
        m.list_changed();
        let mut list = m.list.clone();
        list.marks.retain(|_, mark| mark.expires_at > now);
        Ok(list)
    }
}

#[async_trait]
impl WebhookDeliveries for MemoryStore {
    async fn remember_delivery(&self, id: &str, until: u64, now: u64) -> Result<bool, StoreError> {
        let mut m = self.maps();
        if m.deliveries.len() >= MAX_ENTRIES / 2 {
            m.deliveries.retain(|_, exp| *exp > now);
        }
        if m.deliveries.len() >= MAX_ENTRIES {
            return Err(full("webhook deliveries"));
        }
        if m.deliveries.get(id).is_some_and(|exp| *exp > now) {
            return Ok(false);
        }
        m.deliveries.insert(id.to_string(), until);
        Ok(true)
    }

    async fn forget_delivery(&self, id: &str) -> Result<(), StoreError> {
        self.maps().deliveries.remove(id);
        Ok(())
    }
}

#[async_trait]
impl GithubTokenNotes for MemoryStore {
    async fn note_github_token(
        &self,
        user_id: &str,
        id: &str,
        seen: GithubTokenUse,
    ) -> Result<(), StoreError> {
        let mut m = self.maps();
        let now = crate::clock::unix_now();
        if m.github_tokens.len() >= MAX_ENTRIES && !m.github_tokens.contains_key(user_id) {
            m.github_tokens.retain(|_, tokens| {
                tokens.retain(|_, t| t.expires_at > now);
                !tokens.is_empty()
            });
            if m.github_tokens.len() >= MAX_ENTRIES {
                return Err(full("GitHub token notes"));
            }
        }
        let tokens = m.github_tokens.entry(user_id.to_string()).or_default();
        if tokens.len() >= MAX_TOKENS_PER_USER && !tokens.contains_key(id) {
            tokens.retain(|_, t| t.expires_at > now);
            // Still full of live ones: the oldest answer makes way.
            if tokens.len() >= MAX_TOKENS_PER_USER {
                let oldest = tokens
                    .iter()
                    .min_by_key(|(_, t)| t.checked_at)
                    .map(|(k, _)| k.clone());
                if let Some(oldest) = oldest {
                    tokens.remove(&oldest);
                }
            }
        }
        tokens.insert(id.to_string(), seen);
        Ok(())
    }

    async fn user_github_tokens(
        &self,
        user_id: &str,
        now: u64,
    ) -> Result<Vec<(String, GithubTokenUse)>, StoreError> {
        Ok(self
            .maps()
            .github_tokens
            .get(user_id)
            .map(|tokens| {
                tokens
                    .iter()
                    .filter(|(_, t)| now < t.expires_at)
                    .map(|(id, t)| (id.clone(), *t))
                    .collect()
            })
            .unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn passes_the_store_suite() {
        super::super::conformance::run(&MemoryStore::default()).await;
    }
}
