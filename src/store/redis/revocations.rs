//! The revocation list on Redis: ONE hash, `marks:list`, holding every user's mark (GitHub id →
//! mark JSON) and, in the field `#meta`, the list's epoch, version, change tag, floor and keep.
//! One key, so eviction or loss takes all of it at once: a missing `#meta` means the list is
//! gone (or was never made), never "nobody is revoked". `#meta` is shaped like a mark (with an
//! expiry in 2100) so a Gatehouse from before epochs, during a rolling upgrade, reads it as a
//! harmless line and never drops it; every change still bumps the old `marks:version` counter
//! that such a replica watches, and this one watches it too (part of the stamp).

use async_trait::async_trait;
use redis::Script;
use std::collections::HashMap;
use std::sync::LazyLock;

use super::super::{ListRead, Marks, RevocationList, StoreError, UserMark, UserRevocations};
use super::{decode, encode, unavailable, RedisStore};

/// The reserved field; GitHub ids are digits, so no user is called this.
const META: &str = "#meta";

/// Shared by the scripts (KEYS[1]: the list, KEYS[2]: the old version counter).
const PRELUDE: &str = r#"
local FIELDS = {'end_before', 'recheck_before', 'expires_at'}
-- A lost list's floor lies this many seconds ahead of now: sign-ins may be dated a second or
-- two after a revocation of their own second (and replicas' clocks differ a little), so a
-- floor of exactly now could pass over one made just before the loss. New sign-ins are dated
-- after the floor, still well within the 60 s of future a sign-in may have.
local FLOOR_AHEAD = 10
local function mark_json(m)
  return string.format('{"end_before":%d,"recheck_before":%d,"expires_at":%d}', m.end_before, m.recheck_before, m.expires_at)
end
-- Merge a mark into the user's line, field by field (the larger wins).
local function merge(user, m)
  if user == '#meta' then return end
  local old = redis.call('HGET', KEYS[1], user)
  if old then
    local ok, o = pcall(cjson.decode, old)
    if ok and type(o) == 'table' then
      for _, k in ipairs(FIELDS) do
        local v = tonumber(o[k])
        if v and v > m[k] then m[k] = v end
      end
    end
  end
  redis.call('HSET', KEYS[1], user, mark_json(m))
end
-- The list's meta; or a new epoch when it is missing: floor 0 for a list an older Gatehouse
-- kept (marks, no meta) when `adopt`, else `floor_if_lost`.
local function meta(new_epoch, floor_if_lost, adopt)
  local raw = redis.call('HGET', KEYS[1], '#meta')
  if raw then
    local ok, m = pcall(cjson.decode, raw)
    if ok and type(m) == 'table' and type(m.epoch) == 'string' then
      m.floor = tonumber(m.floor) or 0
      m.keep = tonumber(m.keep) or 0
      return m, false
    end
  elseif adopt and redis.call('HLEN', KEYS[1]) > 0 then
    return {epoch = new_epoch, version = 0, floor = 0, keep = 0}, true
  end
  return {epoch = new_epoch, version = 0, floor = floor_if_lost, keep = 0}, true
end
local function save(m, change)
  m.version = (tonumber(m.version) or 0) + 1
  redis.call('HSET', KEYS[1], '#meta', string.format('{"end_before":0,"recheck_before":0,"expires_at":4102444800,"epoch":"%s","version":%d,"change":"%s","floor":%d,"keep":%d}', m.epoch, m.version, change, m.floor, m.keep))
  redis.call('INCR', KEYS[2])
end
local function stamp()
  return (redis.call('HGET', KEYS[1], '#meta') or '') .. '|' .. (redis.call('GET', KEYS[2]) or '0')
end
"#;

/// ARGV: user, mark JSON, now, a new epoch id, a change tag. The mark is kept at least `keep`
/// (raised to what this mark asks); expired lines are dropped now and then.
static MARK_USER: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{PRELUDE}{}",
        r#"
local now = tonumber(ARGV[3])
local m = meta(ARGV[4], now + FLOOR_AHEAD, true)
local mark = cjson.decode(ARGV[2])
if mark.expires_at - now > m.keep then m.keep = mark.expires_at - now end
if mark.expires_at < now + m.keep then mark.expires_at = now + m.keep end
merge(ARGV[1], mark)
if redis.call('HLEN', KEYS[1]) > 256 then
  local all = redis.call('HGETALL', KEYS[1])
  for i = 1, #all, 2 do
    if all[i] ~= '#meta' then
      local ok, v = pcall(cjson.decode, all[i + 1])
      if not ok or type(v) ~= 'table' or (tonumber(v['expires_at']) or 0) <= now then
        redis.call('HDEL', KEYS[1], all[i])
      end
    end
  end
end
save(m, ARGV[5])
return 1"#
    ))
});

/// ARGV: the stamp the reader knows, its keep, a change tag. Returns {0} when unchanged, {2}
/// when there is no list, else {1, stamp, every field and value}.
static READ_LIST: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{PRELUDE}{}",
        r#"
local raw = redis.call('HGET', KEYS[1], '#meta')
if not raw then return {2, '', {}} end
local ok, m = pcall(cjson.decode, raw)
if not ok or type(m) ~= 'table' or type(m.epoch) ~= 'string' then return {2, '', {}} end
if (tonumber(m.keep) or 0) < tonumber(ARGV[2]) then
  m.floor = tonumber(m.floor) or 0
  m.keep = tonumber(ARGV[2])
  save(m, ARGV[3])
end
local s = stamp()
if s == ARGV[1] then return {0, '', {}} end
return {1, s, redis.call('HGETALL', KEYS[1])}"#
    ))
});

/// ARGV: the copy's epoch, vouch (1/0), the copy's floor, keep, now, a new epoch id, a change
/// tag, the copy's marks (JSON object). Returns {1, stamp, every field and value}.
static REPUBLISH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{PRELUDE}{}",
        r#"
local now = tonumber(ARGV[5])
local vouch = ARGV[2] == '1' and ARGV[1] ~= ''
local copy_floor = tonumber(ARGV[3])
local m, created = meta(ARGV[6], vouch and copy_floor or now + FLOOR_AHEAD, ARGV[1] == '')
if not created and m.epoch ~= ARGV[1] and vouch and copy_floor < m.floor then
  m.floor = copy_floor
end
if tonumber(ARGV[4]) > m.keep then m.keep = tonumber(ARGV[4]) end
local ok, marks = pcall(cjson.decode, ARGV[8])
if ok and type(marks) == 'table' then
  for user, mark in pairs(marks) do
    if type(mark) == 'table' and (tonumber(mark.expires_at) or 0) > now then
      merge(user, {end_before = tonumber(mark.end_before) or 0, recheck_before = tonumber(mark.recheck_before) or 0, expires_at = tonumber(mark.expires_at)})
    end
  end
end
save(m, ARGV[7])
return {1, stamp(), redis.call('HGETALL', KEYS[1])}"#
    ))
});

/// What `#meta` says (its other fields are for the scripts).
#[derive(serde::Deserialize)]
struct Meta {
    epoch: String,
    #[serde(default)]
    floor: u64,
    #[serde(default)]
    keep: u64,
}

/// A list from a script's answer: the stamp and the hash's fields and values, flat.
fn parse_list(stamp: String, flat: Vec<String>, now: u64) -> Result<RevocationList, StoreError> {
    let mut list = RevocationList {
        stamp,
        ..RevocationList::default()
    };
    let mut fields = flat.into_iter();
    while let (Some(field), Some(value)) = (fields.next(), fields.next()) {
        if field == META {
            let meta: Meta = decode(&value)?;
            (list.epoch, list.floor, list.keep) = (meta.epoch, meta.floor, meta.keep);
            continue;
        }
        let mark: UserMark = decode(&value)?;
        if mark.expires_at > now {
            list.marks.insert(field, mark);
        }
    }
    if list.epoch.is_empty() {
        return Err(unavailable("the revocation list in Redis has no epoch"));
    }
    Ok(list)
}

impl RedisStore {
    fn list_keys(&self) -> (String, String) {
        (self.key("marks", "list"), self.key("marks", "version"))
    }
}

#[async_trait]
impl UserRevocations for RedisStore {
    async fn mark_user(&self, user_id: &str, mark: UserMark) -> Result<(), StoreError> {
        let (list, version) = self.list_keys();
        let (id, json, now) = (
            user_id.to_string(),
            encode(&mark)?,
            crate::clock::unix_now(),
        );
        let (epoch, change) = (crate::opaque::random_token(), crate::opaque::random_token());
        self.call(|mut c| async move {
            MARK_USER
                .key(list)
                .key(version)
                .arg(id)
                .arg(json)
                .arg(now)
                .arg(epoch)
                .arg(change)
                .invoke_async::<i64>(&mut c)
                .await
        })
        .await
        .map(drop)
    }

    async fn revocation_list(
        &self,
        known_stamp: &str,
        keep: u64,
        now: u64,
    ) -> Result<ListRead, StoreError> {
        let (list, version) = self.list_keys();
        let (known, change) = (known_stamp.to_string(), crate::opaque::random_token());
        let (status, stamp, flat): (i64, String, Vec<String>) = self
            .call(|mut c| async move {
                READ_LIST
                    .key(list)
                    .key(version)
                    .arg(known)
                    .arg(keep)
                    .arg(change)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        match status {
            0 => Ok(ListRead::Unchanged),
            2 => Ok(ListRead::Missing),
            _ => parse_list(stamp, flat, now).map(ListRead::Current),
        }
    }

    async fn republish(
        &self,
        copy: &RevocationList,
        vouch: bool,
        keep: u64,
        now: u64,
    ) -> Result<RevocationList, StoreError> {
        let (list, version) = self.list_keys();
        let live: Marks = copy
            .marks
            .iter()
            .filter(|(_, m)| m.expires_at > now)
            .map(|(k, v)| (k.clone(), *v))
            .collect::<HashMap<_, _>>();
        let marks = encode(&live)?;
        let (epoch, floor, copy_keep) = (copy.epoch.clone(), copy.floor, copy.keep);
        let (new_epoch, change) = (crate::opaque::random_token(), crate::opaque::random_token());
        let (_, stamp, flat): (i64, String, Vec<String>) = self
            .call(|mut c| async move {
                REPUBLISH
                    .key(list)
                    .key(version)
                    .arg(epoch)
                    .arg(if vouch { 1 } else { 0 })
                    .arg(floor)
                    .arg(keep.max(copy_keep))
                    .arg(now)
                    .arg(new_epoch)
                    .arg(change)
                    .arg(marks)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        parse_list(stamp, flat, now)
    }
}
