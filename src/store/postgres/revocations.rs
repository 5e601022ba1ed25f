//! The revocation list in PostgreSQL: one row of `revocation_meta` (the list's epoch, version,
//! floor and keep) and a row per user in `revocation_marks`. No meta row means the list is
//! gone (or was never made), never "nobody is revoked". Writers take a transaction-scoped
//! advisory lock, so changes are serialised; each bumps the version, and the stamp replicas
//! poll is `epoch:version` (one primary-key read; the marks are read only when it changed).

use async_trait::async_trait;
use deadpool_postgres::GenericClient;

use super::super::{ListRead, Marks, RevocationList, StoreError, UserMark, UserRevocations};
use super::{int, secs, CallError, PostgresStore};

/// A lost list's floor lies this many seconds ahead of now (as on Redis: sign-ins may be dated
/// a second or two after a revocation of their own second, and replicas' clocks differ).
const FLOOR_AHEAD: u64 = 10;

struct Meta {
    epoch: String,
    version: i64,
    floor: u64,
    keep: u64,
}

impl Meta {
    fn new(floor: u64) -> Meta {
        Meta {
            epoch: crate::opaque::random_token(),
            version: 0,
            floor,
            keep: 0,
        }
    }

    fn stamp(&self) -> String {
        format!("{}:{}", self.epoch, self.version)
    }
}

async fn read_meta(c: &impl GenericClient) -> Result<Option<Meta>, tokio_postgres::Error> {
    let st = c
        .prepare_cached("SELECT epoch, version, floor, keep FROM revocation_meta")
        .await?;
    Ok(c.query_opt(&st, &[]).await?.map(|row| Meta {
        epoch: row.get(0),
        version: row.get(1),
        floor: secs(row.get(2)),
        keep: secs(row.get(3)),
    }))
}

/// The meta row, with the list locked for this transaction's changes.
async fn lock_meta(c: &impl GenericClient) -> Result<Option<Meta>, tokio_postgres::Error> {
    c.execute(
        "SELECT pg_advisory_xact_lock(4712, hashtext(current_schema()))",
        &[],
    )
    .await?;
    read_meta(c).await
}

/// Write the meta row, one version on.
async fn save_meta(c: &impl GenericClient, meta: &mut Meta) -> Result<(), tokio_postgres::Error> {
    meta.version += 1;
    let st = c
        .prepare_cached(
            "INSERT INTO revocation_meta (one, epoch, version, floor, keep) \
             VALUES (true, $1, $2, $3, $4) ON CONFLICT (one) DO UPDATE SET \
             epoch = EXCLUDED.epoch, version = EXCLUDED.version, floor = EXCLUDED.floor, \
             keep = EXCLUDED.keep",
        )
        .await?;
    c.execute(
        &st,
        &[
            &meta.epoch,
            &meta.version,
            &int(meta.floor),
            &int(meta.keep),
        ],
    )
    .await?;
    Ok(())
}

/// Merge a mark into the user's line, field by field (the larger wins).
async fn merge(
    c: &impl GenericClient,
    user_id: &str,
    mark: UserMark,
) -> Result<(), tokio_postgres::Error> {
    let st = c
        .prepare_cached(
            "INSERT INTO revocation_marks (user_id, end_before, recheck_before, expires_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (user_id) DO UPDATE SET \
             end_before = GREATEST(revocation_marks.end_before, EXCLUDED.end_before), \
             recheck_before = GREATEST(revocation_marks.recheck_before, EXCLUDED.recheck_before), \
             expires_at = GREATEST(revocation_marks.expires_at, EXCLUDED.expires_at)",
        )
        .await?;
    c.execute(
        &st,
        &[
            &user_id,
            &int(mark.end_before),
            &int(mark.recheck_before),
            &int(mark.expires_at),
        ],
    )
    .await?;
    Ok(())
}

/// The list as it is: `meta` and the marks live at `now`.
async fn read_list(
    c: &impl GenericClient,
    meta: &Meta,
    now: u64,
) -> Result<RevocationList, tokio_postgres::Error> {
    let st = c
        .prepare_cached(
            "SELECT user_id, end_before, recheck_before, expires_at FROM revocation_marks \
             WHERE expires_at > $1",
        )
        .await?;
    let marks: Marks = c
        .query(&st, &[&int(now)])
        .await?
        .into_iter()
        .map(|row| {
            let mark = UserMark {
                end_before: secs(row.get(1)),
                recheck_before: secs(row.get(2)),
                expires_at: secs(row.get(3)),
            };
            (row.get(0), mark)
        })
        .collect();
    Ok(RevocationList {
        epoch: meta.epoch.clone(),
        stamp: meta.stamp(),
        floor: meta.floor,
        keep: meta.keep,
        marks,
    })
}

#[async_trait]
impl UserRevocations for PostgresStore {
    async fn mark_user(&self, user_id: &str, mark: UserMark) -> Result<(), StoreError> {
        let now = crate::clock::unix_now();
        self.call(|mut c| async move {
            let tx = c.transaction().await?;
            let mut meta = lock_meta(&tx)
                .await?
                .unwrap_or_else(|| Meta::new(now + FLOOR_AHEAD));
            meta.keep = meta.keep.max(mark.expires_at.saturating_sub(now));
            let mark = UserMark {
                expires_at: mark.expires_at.max(now.saturating_add(meta.keep)),
                ..mark
            };
            merge(&tx, user_id, mark).await?;
            save_meta(&tx, &mut meta).await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    async fn revocation_list(
        &self,
        known_stamp: &str,
        keep: u64,
        now: u64,
    ) -> Result<ListRead, StoreError> {
        self.call(|mut c| async move {
            let Some(mut meta) = read_meta(&c).await? else {
                return Ok(ListRead::Missing);
            };
            if meta.keep < keep {
                // Raise the keep this replica needs (rare: once per longer `session.ttl`).
                let tx = c.transaction().await?;
                match lock_meta(&tx).await? {
                    Some(mut locked) => {
                        if locked.keep < keep {
                            locked.keep = keep;
                            save_meta(&tx, &mut locked).await?;
                        }
                        tx.commit().await?;
                        meta = locked;
                    }
                    None => return Ok(ListRead::Missing),
                }
            }
            if meta.stamp() == known_stamp {
                return Ok(ListRead::Unchanged);
            }
            Ok::<_, CallError>(ListRead::Current(read_list(&c, &meta, now).await?))
        })
        .await
    }

    async fn republish(
        &self,
        copy: &RevocationList,
        vouch: bool,
        keep: u64,
        now: u64,
    ) -> Result<RevocationList, StoreError> {
        let vouch = vouch && !copy.epoch.is_empty();
        self.call(|mut c| async move {
            let tx = c.transaction().await?;
            let mut meta = match lock_meta(&tx).await? {
                Some(mut meta) => {
                    // A copy of another epoch that vouches may lower the floor to its own.
                    if meta.epoch != copy.epoch && vouch && copy.floor < meta.floor {
                        meta.floor = copy.floor;
                    }
                    meta
                }
                None => Meta::new(if vouch { copy.floor } else { now + FLOOR_AHEAD }),
            };
            meta.keep = meta.keep.max(keep).max(copy.keep);
            for (user, mark) in copy.marks.iter().filter(|(_, m)| m.expires_at > now) {
                merge(&tx, user, *mark).await?;
            }
            save_meta(&tx, &mut meta).await?;
            let list = read_list(&tx, &meta, now).await?;
            tx.commit().await?;
            Ok(list)
        })
        .await
    }
}
