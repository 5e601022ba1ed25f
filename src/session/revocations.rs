//! This process's copy of the revocation list (see [`crate::store::UserMark`]), kept fresh
//! from the store: at most one read every [`FRESH_FOR`], which requests then share, so every
//! replica sees a revocation well within a second without a store call per request.

use crate::store::{Marks, Store, StoreError, UserMark};
use arc_swap::ArcSwap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// How long a copy serves before the next request reads the list again.
const FRESH_FOR: Duration = Duration::from_millis(250);
/// How long an old copy may still serve while the store cannot be read; after that, requests
/// that need the list fail closed.
const STALE_LIMIT: Duration = Duration::from_secs(3);
/// After a failed read, wait this long before trying again (a down store is not hammered).
const RETRY_AFTER: Duration = Duration::from_millis(250);

#[derive(Debug)]
struct Copy {
    version: u64,
    marks: Marks,
    read_at: Instant,
}

#[derive(Debug)]
pub struct Revocations {
    copy: ArcSwap<Copy>,
    /// One read at a time; when it fails, the time it failed.
    reading: Mutex<Option<Instant>>,
}

impl Default for Revocations {
    fn default() -> Self {
        Revocations {
            copy: ArcSwap::from_pointee(Copy {
                version: 0,
                marks: Marks::new(),
                // Never read: the first request reads.
                read_at: Instant::now() - STALE_LIMIT - FRESH_FOR,
            }),
            reading: Mutex::new(None),
        }
    }
}

impl Revocations {
    /// The user's mark, from a copy no older than [`FRESH_FOR`] (or a bit older while the
    /// store is failing, up to [`STALE_LIMIT`]; past that, `Err`).
    pub async fn mark(
        &self,
        store: &dyn Store,
        user_id: &str,
    ) -> Result<Option<UserMark>, StoreError> {
        let copy = self.copy.load();
        if copy.read_at.elapsed() < FRESH_FOR {
            return Ok(copy.marks.get(user_id).copied());
        }
        drop(copy);
        self.refresh(store).await?;
        Ok(self.latest(user_id))
    }

    /// The user's mark in the copy at hand, however old (for checks that cannot wait).
    pub fn latest(&self, user_id: &str) -> Option<UserMark> {
        self.copy.load().marks.get(user_id).copied()
    }

    /// Apply a mark this process just wrote, without waiting for the next read.
    pub fn note(&self, user_id: &str, mark: UserMark) {
        let copy = self.copy.load();
        let mut marks = copy.marks.clone();
        let merged = marks.get(user_id).map_or(mark, |old| old.merge(mark));
        marks.insert(user_id.to_string(), merged);
        self.copy.store(Arc::new(Copy {
            version: copy.version,
            marks,
            read_at: copy.read_at,
        }));
    }

    async fn refresh(&self, store: &dyn Store) -> Result<(), StoreError> {
        let mut failed_at = self.reading.lock().await;
        let copy = self.copy.load_full();
        // Someone else read it while this request waited.
        if copy.read_at.elapsed() < FRESH_FOR {
            return Ok(());
        }
        let recently_failed = failed_at.is_some_and(|t| t.elapsed() < RETRY_AFTER);
        let result = if recently_failed {
            Err(StoreError::Unavailable(
                "the revocation list could not be read".into(),
            ))
        } else {
            store.marks(copy.version, crate::session::unix_now()).await
        };
        match result {
            Ok(fresh) => {
                *failed_at = None;
                let (version, marks) = fresh.unwrap_or_else(|| (copy.version, copy.marks.clone()));
                self.copy.store(Arc::new(Copy {
                    version,
                    marks,
                    read_at: Instant::now(),
                }));
                Ok(())
            }
            Err(e) => {
                if !recently_failed {
                    *failed_at = Some(Instant::now());
                }
                if copy.read_at.elapsed() < STALE_LIMIT {
                    Ok(())
                } else {
                    Err(e)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    #[tokio::test]
    async fn a_mark_written_to_the_store_is_seen_after_at_most_one_fresh_period() {
        let store = MemoryStore::default();
        let list = Revocations::default();
        assert_eq!(list.mark(&store, "1").await.unwrap(), None);
        let mark = UserMark {
            end_before: 5,
            recheck_before: 0,
            expires_at: u64::MAX,
        };
        store.mark_user("1", mark).await.unwrap();
        tokio::time::sleep(FRESH_FOR).await;
        assert_eq!(list.mark(&store, "1").await.unwrap(), Some(mark));
        list.note("2", mark);
        assert_eq!(list.latest("2"), Some(mark), "local marks apply at once");
    }
}
