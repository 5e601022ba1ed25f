//! A best-effort look, once, at the Redis settings revocations depend on (the manual's
//! operations/redis page): without persistence a restart loses or rolls back the revocation list, and an
//! eviction policy may drop it or other keys. Gatehouse then fails closed (SECURITY.md
//! "Revocation guarantees"), so this only warns; `INFO` may be refused (managed Redis), and
//! then nothing is said.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// `field:value` from `INFO` text.
fn info_field<'a>(info: &'a str, field: &str) -> Option<&'a str> {
    info.lines().find_map(|line| {
        line.strip_prefix(field)
            .and_then(|rest| rest.strip_prefix(':'))
            .map(str::trim)
    })
}

/// What is unsafe in `INFO persistence` + `INFO memory` output, in words (empty: nothing).
pub(super) fn problems(info: &str) -> Vec<String> {
    let mut found = Vec::new();
    if info_field(info, "aof_enabled") == Some("0") {
        found.push(
            "appendonly is off: a Redis restart loses the revocation list (or, with RDB \
             snapshots, rolls it back), and Gatehouse then has to sign users out; set \
             `appendonly yes`"
                .to_string(),
        );
    }
    let limited = info_field(info, "maxmemory").is_some_and(|m| m != "0");
    match info_field(info, "maxmemory_policy") {
        Some(policy) if limited && policy.starts_with("allkeys-") => found.push(format!(
            "maxmemory-policy {policy} can evict the revocation list (everyone is then signed \
             out) and sessions; set `maxmemory-policy noeviction`"
        )),
        Some(policy) if limited && policy.starts_with("volatile-") => found.push(format!(
            "maxmemory-policy {policy} can evict sessions, codes and used sign-in states early \
             (the revocation list has no expiry and stays); `noeviction` is recommended"
        )),
        _ => {}
    }
    found
}

/// Look, and warn once if anything is unsafe. `checked` is cleared when Redis could not be
/// reached, so a later call looks again (a refusal counts as looked).
pub(super) async fn warn_if_unsafe(mut conn: super::Conn, checked: Arc<AtomicBool>) {
    let mut info = String::new();
    for section in ["persistence", "memory"] {
        match redis::cmd("INFO")
            .arg(section)
            .query_async::<String>(&mut conn)
            .await
        {
            Ok(text) => info.push_str(&text),
            Err(e) if e.is_io_error() || e.is_timeout() || e.is_connection_dropped() => {
                checked.store(false, Ordering::Relaxed);
                return;
            }
            Err(e) => tracing::debug!(error = %e, "Redis refused INFO {section}"),
        }
    }
    let found = problems(&info);
    if !found.is_empty() {
        tracing::warn!(
            problems = %found.join("; "),
            "Redis settings put revocations at risk (docs: operations/redis.md, Redis settings)"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::problems;

    #[test]
    fn persistence_and_eviction_are_judged_from_info() {
        let safe = "aof_enabled:1\r\nmaxmemory:0\r\nmaxmemory_policy:allkeys-lru\r\n";
        assert!(problems(safe).is_empty(), "no limit: nothing is evicted");
        let risky = "aof_enabled:0\r\nmaxmemory:1048576\r\nmaxmemory_policy:allkeys-lru\r\n";
        let found = problems(risky);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].contains("appendonly") && found[1].contains("allkeys-lru"));
        let volatile = "aof_enabled:1\r\nmaxmemory:1048576\r\nmaxmemory_policy:volatile-lru\r\n";
        assert!(problems(volatile)[0].contains("stays"));
        assert!(problems("").is_empty(), "INFO refused: nothing to say");
        let ok = "aof_enabled:1\r\nmaxmemory:1048576\r\nmaxmemory_policy:noeviction\r\n";
        assert!(problems(ok).is_empty());
    }
}
