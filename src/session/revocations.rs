//! This process's copy of the revocation list (see [`crate::store::UserMark`]), kept fresh
//! from the store: at most one read every [`FRESH_FOR`], which requests then share, so every
//! replica sees a revocation well within a second without a store call per request.
//!
//! The copy also guards the list against the store losing it (SECURITY.md "Revocation
//! guarantees"). It remembers the list's epoch and stamp; a read that finds the list missing,
//! in another epoch, or without marks the copy holds (writes rolled back) puts the copy's marks
//! back ([`UserRevocations::republish`]). A copy read just before the loss vouches for the lost list, so
//! the new epoch keeps the old floor; otherwise the floor is now (plus a few seconds), and every sign-in from before
//! it is over: what cannot be confirmed is refused.

use crate::store::{ListRead, RevocationList, StoreError, UserMark, UserRevocations};
use arc_swap::ArcSwap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// How long a copy serves before the next request reads the list again.
const FRESH_FOR: Duration = Duration::from_millis(250);
/// How long an old copy may still serve while the store cannot be read; after that, requests
/// that need the list fail closed.
const STALE_LIMIT: Duration = Duration::from_secs(3);
/// After a failed read, wait this long before trying again (a down store is not hammered).
const RETRY_AFTER: Duration = Duration::from_millis(250);
/// A copy vouches for a lost list when it was read at most this long before the store stopped
/// answering, or before the loss was found: only revocations made in that window can be lost.
const VOUCH_FOR: Duration = Duration::from_secs(1);
/// Marks about to expire are not missed (replicas' clocks differ a little).
const CLOCK_SLACK: u64 = 60;

#[derive(Debug)]
struct Copy {
    list: RevocationList,
    /// When the store last confirmed it.
    read_at: Instant,
}

#[derive(Debug, Default)]
struct Reading {
    /// When the last read failed (reads pause for [`RETRY_AFTER`]).
    failed_at: Option<Instant>,
    /// The first failure since the last good read.
    failing_since: Option<Instant>,
}

#[derive(Debug)]
pub struct Revocations {
    copy: ArcSwap<Copy>,
    /// One read at a time.
    reading: Mutex<Reading>,
    /// How long this process needs marks kept (its longest `session.ttl` plus a margin; a
    /// config reload only raises it).
    keep: AtomicU64,
}

impl Default for Revocations {
    fn default() -> Self {
        Revocations {
            copy: ArcSwap::from_pointee(Copy {
                list: RevocationList::default(),
                // Never read: the first request reads.
                read_at: Instant::now() - STALE_LIMIT - FRESH_FOR,
            }),
            reading: Mutex::default(),
            keep: AtomicU64::new(0),
        }
    }
}

impl Revocations {
    /// The user's mark (the list's floor included), from a copy no older than `FRESH_FOR`
    /// (or a bit older while the store is failing, up to `STALE_LIMIT`; past that, `Err`).
    pub async fn mark(
        &self,
        store: &(impl UserRevocations + ?Sized),
        user_id: &str,
    ) -> Result<Option<UserMark>, StoreError> {
        let copy = self.copy.load();
        if copy.read_at.elapsed() < FRESH_FOR {
            return Ok(copy.list.mark(user_id));
        }
        drop(copy);
        self.refresh(store).await?;
        Ok(self.latest(user_id))
    }

    /// The user's mark (the floor included) in the copy at hand, however old (for checks that
    /// cannot wait).
    pub fn latest(&self, user_id: &str) -> Option<UserMark> {
        self.copy.load().list.mark(user_id)
    }

    /// Marks must be kept at least `secs` (this process's session lifetime plus a margin).
    pub fn keep_at_least(&self, secs: u64) {
        self.keep.fetch_max(secs, Ordering::Relaxed);
    }

    /// How long this process needs marks kept: its own need, or the longest any replica
    /// declared to the list, whichever is longer.
    pub fn keep(&self) -> u64 {
        self.keep
            .load(Ordering::Relaxed)
            .max(self.copy.load().list.keep)
    }

    /// Apply a mark this process just wrote, without waiting for the next read.
    pub fn note(&self, user_id: &str, mark: UserMark) {
        self.copy.rcu(|copy| {
            let mut list = copy.list.clone();
            merge_mark(&mut list, user_id, mark);
            Copy {
                list,
                read_at: copy.read_at,
            }
        });
    }

    async fn refresh(&self, store: &(impl UserRevocations + ?Sized)) -> Result<(), StoreError> {
        let mut reading = self.reading.lock().await;
        let copy = self.copy.load_full();
        // Someone else read it while this request waited.
        if copy.read_at.elapsed() < FRESH_FOR {
            return Ok(());
        }
        let recently_failed = reading.failed_at.is_some_and(|t| t.elapsed() < RETRY_AFTER);
        let result = if recently_failed {
            Err(StoreError::Unavailable(
                "the revocation list could not be read".into(),
            ))
        } else {
            self.sync(store, &copy, reading.failing_since).await
        };
        match result {
            Ok(fresh) => {
                *reading = Reading::default();
                let read = fresh.unwrap_or_else(|| copy.list.clone());
                let read_at = Instant::now();
                // Marks this process noted while the store was read were written before they
                // were noted, but perhaps after the read: the new copy keeps them.
                self.copy.rcu(|current| {
                    let mut list = read.clone();
                    for (user, mark) in &current.list.marks {
                        if copy.list.marks.get(user) != Some(mark) {
                            merge_mark(&mut list, user, *mark);
                        }
                    }
                    Copy { list, read_at }
                });
                Ok(())
            }
            Err(e) => {
                if !recently_failed {
                    let now = Instant::now();
                    reading.failed_at = Some(now);
                    reading.failing_since.get_or_insert(now);
                }
                if copy.read_at.elapsed() < STALE_LIMIT {
                    Ok(())
                } else {
                    Err(e)
                }
            }
        }
    }

    /// Read the list; when it was lost or lost writes, put this copy's marks back first.
    /// `None`: unchanged.
    async fn sync(
        &self,
        store: &(impl UserRevocations + ?Sized),
        copy: &Copy,
        failing_since: Option<Instant>,
    ) -> Result<Option<RevocationList>, StoreError> {
        let now = crate::clock::unix_now();
        let keep = self.keep();
        let never_read = copy.list.epoch.is_empty();
        let found = match store.revocation_list(&copy.list.stamp, keep, now).await? {
            ListRead::Unchanged => return Ok(None),
            ListRead::Current(list) if never_read => return Ok(Some(list)),
            ListRead::Current(list) => Some(list),
            ListRead::Missing => None,
        };
        let lost = match &found {
            None => "the revocation list is missing from the store",
            Some(list) if list.epoch != copy.list.epoch => {
                "the revocation list in the store was started anew"
            }
            Some(list) if lacks(list, &copy.list, now) => {
                "the revocation list in the store lost revocations this replica holds"
            }
            Some(_) => return Ok(found),
        };
        // While reads failed, nothing could be revoked either: the copy vouches for the list
        // up to when it was last read, if that was just before the store stopped answering.
        let until = failing_since.unwrap_or_else(Instant::now);
        let vouch = !never_read && until.saturating_duration_since(copy.read_at) <= VOUCH_FOR;
        let list = store.republish(&copy.list, vouch, keep, now).await?;
        tracing::warn!(
            republished = copy.list.marks.len(),
            vouched = vouch,
            floor = list.floor,
            "{lost}; this replica's copy was put back, and sign-ins at or before the floor \
             are ended (SECURITY.md: Revocation guarantees)"
        );
        Ok(Some(list))
    }
}

/// Put `mark` in `list`, merged with the user's mark there.
fn merge_mark(list: &mut RevocationList, user_id: &str, mark: UserMark) {
    let merged = list.marks.get(user_id).map_or(mark, |old| old.merge(mark));
    list.marks.insert(user_id.to_string(), merged);
}

/// Does `copy` hold a revocation `list` lacks (not about to expire)?
fn lacks(list: &RevocationList, copy: &RevocationList, now: u64) -> bool {
    copy.marks.iter().any(|(user, mark)| {
        mark.expires_at > now.saturating_add(CLOCK_SLACK)
            && list.marks.get(user).is_none_or(|found| {
                found.end_before < mark.end_before || found.recheck_before < mark.recheck_before
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;
    use std::sync::Arc;

    fn mark(end_before: u64) -> UserMark {
        UserMark {
            end_before,
            recheck_before: 0,
            expires_at: u64::MAX / 2,
        }
    }

    #[tokio::test]
    async fn a_mark_written_to_the_store_is_seen_after_at_most_one_fresh_period() {
        let store = MemoryStore::default();
        let list = Revocations::default();
        assert_eq!(list.mark(&store, "1").await.unwrap(), None);
        store.mark_user("1", mark(5)).await.unwrap();
        tokio::time::sleep(FRESH_FOR).await;
        assert_eq!(
            list.mark(&store, "1").await.unwrap().map(|m| m.end_before),
            Some(5)
        );
        list.note("2", mark(5));
        assert_eq!(list.latest("2"), Some(mark(5)), "local marks apply at once");
    }

    /// A store whose list reads answer what they read only when told to: a read in flight.
    #[derive(Default)]
    struct HeldReads {
        inner: MemoryStore,
        read: tokio::sync::Notify,
        answer: tokio::sync::Notify,
    }

    #[async_trait::async_trait]
    impl UserRevocations for HeldReads {
        async fn mark_user(&self, user_id: &str, mark: UserMark) -> Result<(), StoreError> {
            self.inner.mark_user(user_id, mark).await
        }
        async fn revocation_list(
            &self,
            known_stamp: &str,
            keep: u64,
            now: u64,
        ) -> Result<ListRead, StoreError> {
            let read = self.inner.revocation_list(known_stamp, keep, now).await;
            self.read.notify_one();
            self.answer.notified().await;
            read
        }
        async fn republish(
            &self,
            copy: &RevocationList,
            vouch: bool,
            keep: u64,
            now: u64,
        ) -> Result<RevocationList, StoreError> {
            self.inner.republish(copy, vouch, keep, now).await
        }
    }

    #[tokio::test]
    async fn a_mark_noted_while_a_read_is_in_flight_is_not_lost() {
        let store = Arc::new(HeldReads::default());
        let list = Arc::new(Revocations::default());
        let reader = tokio::spawn({
            let (store, list) = (Arc::clone(&store), Arc::clone(&list));
            async move { list.mark(store.as_ref(), "2").await }
        });
        // The read happened before the revocation; its answer arrives after it.
        store.read.notified().await;
        store.inner.mark_user("1", mark(5)).await.unwrap();
        list.note("1", mark(5));
        assert_eq!(list.latest("1"), Some(mark(5)));
        store.answer.notify_one();
        reader.await.unwrap().unwrap();
        assert_eq!(
            list.latest("1"),
            Some(mark(5)),
            "the replica that revoked sees it at once, whatever read was in flight"
        );
    }

    #[test]
    fn the_floor_ends_everyones_older_sign_ins() {
        let mut list = RevocationList {
            floor: 100,
            ..RevocationList::default()
        };
        assert_eq!(list.mark("1").map(|m| m.end_before), Some(100));
        list.marks.insert("1".into(), mark(50));
        list.marks.insert("2".into(), mark(150));
        assert_eq!(list.mark("1").map(|m| m.end_before), Some(100));
        assert_eq!(list.mark("2").map(|m| m.end_before), Some(150));
        list.floor = 0;
        assert_eq!(list.mark("3"), None, "no floor, no mark");
    }

    #[test]
    fn a_list_lacking_a_held_mark_is_told_apart_from_one_that_moved_on() {
        let now = 1_000;
        let mut copy = RevocationList::default();
        copy.marks.insert("1".into(), mark(10));
        let mut list = RevocationList::default();
        assert!(lacks(&list, &copy, now), "the mark is gone");
        list.marks.insert("1".into(), mark(9));
        assert!(lacks(&list, &copy, now), "the mark went back");
        list.marks.insert("1".into(), mark(11));
        assert!(!lacks(&list, &copy, now), "the mark moved on");
        let expiring = UserMark {
            expires_at: now + 1,
            ..mark(10)
        };
        copy.marks.insert("2".into(), expiring);
        assert!(!lacks(&list, &copy, now), "about to expire: not missed");
    }
}
