//! The per-user revocation list every replica reads (sign-out everywhere, admin revocations,
//! membership webhooks), with what tells one life of the list from another so a lost list is
//! noticed (SECURITY.md "Revocation guarantees").

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

use super::StoreError;

/// A line of the revocation list: every session of the user signed in at or before
/// `end_before` is over; every session whose memberships were confirmed at or before
/// `recheck_before` must ask GitHub again before its next request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserMark {
    pub end_before: u64,
    pub recheck_before: u64,
    /// When the line can be forgotten (no session it concerns can outlive it).
    pub expires_at: u64,
}

impl UserMark {
    /// The stronger of two marks for the same user.
    pub fn merge(self, other: UserMark) -> UserMark {
        UserMark {
            end_before: self.end_before.max(other.end_before),
            recheck_before: self.recheck_before.max(other.recheck_before),
            expires_at: self.expires_at.max(other.expires_at),
        }
    }
}

/// The revocation list's lines: users (GitHub ids) → their mark.
pub type Marks = HashMap<String, UserMark>;

/// The revocation list as a replica reads it: the marks, and what tells one life of the list
/// from another, so a list the store lost (a restart without persistence, `FLUSHALL`, eviction,
/// a failover that dropped writes) is noticed instead of read as "nobody is revoked".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RevocationList {
    /// Which life of the list this is: a new epoch starts when the list is found missing.
    /// Empty: never read.
    pub epoch: String,
    /// Changes with every change of the list, the epoch included (opaque: compared for
    /// equality only, so a counter that restarted cannot pass for one already seen).
    pub stamp: String,
    /// Every sign-in at or before this (unix seconds) is over, whoever it is: set when a lost
    /// list's marks could not be vouched for by any replica's copy.
    pub floor: u64,
    /// How long (seconds) a new mark is kept at least: the longest `session.ttl` (plus a
    /// margin) any replica has used with this list, so shortening the ttl, revoking and
    /// lengthening it again cannot bring a revoked session back.
    pub keep: u64,
    pub marks: Marks,
}

impl RevocationList {
    /// The user's mark with the floor applied: the floor ends everyone's older sign-ins.
    pub fn mark(&self, user_id: &str) -> Option<UserMark> {
        let floor = (self.floor > 0).then_some(UserMark {
            end_before: self.floor,
            recheck_before: 0,
            expires_at: u64::MAX,
        });
        match (self.marks.get(user_id).copied(), floor) {
            (Some(m), Some(f)) => Some(m.merge(f)),
            (m, f) => m.or(f),
        }
    }
}

/// What reading the revocation list found.
#[derive(Debug, Clone)]
pub enum ListRead {
    /// Still at the stamp the reader knows.
    Unchanged,
    Current(RevocationList),
    /// There is no list: never made, or lost. [`UserRevocations::republish`] starts a new
    /// epoch.
    Missing,
}

/// The revocation list, shared by every replica.
#[async_trait]
pub trait UserRevocations: Send + Sync {
    /// Add to the revocation list (merged with the user's existing mark). `mark.expires_at`
    /// minus now is the lifetime this replica needs; the store keeps the mark at least
    /// [`RevocationList::keep`], raised to that. A missing list gets a new epoch first, whose
    /// floor is a few seconds from now (nothing vouches for what it held).
    async fn mark_user(&self, user_id: &str, mark: UserMark) -> Result<(), StoreError>;
    /// The revocation list, unless its stamp is still `known_stamp`. `keep`: the mark lifetime
    /// this replica needs (its `session.ttl` plus a margin), raised in the list if longer.
    async fn revocation_list(
        &self,
        known_stamp: &str,
        keep: u64,
        now: u64,
    ) -> Result<ListRead, StoreError>;
    /// Merge `copy`'s live marks back into the list, atomically, after the list was found
    /// missing, in another epoch than `copy`'s, or lacking marks `copy` holds (writes lost);
    /// returns the list as it then is. A missing list gets a new epoch: floor 0 when it is a
    /// list an older Gatehouse kept (marks, no epoch) and `copy` was never read, `copy.floor`
    /// when `vouch` (the copy was read just before the loss), else now. In another epoch than
    /// `copy`'s, a vouching copy may lower the floor to its own.
    async fn republish(
        &self,
        copy: &RevocationList,
        vouch: bool,
        keep: u64,
        now: u64,
    ) -> Result<RevocationList, StoreError>;
}
