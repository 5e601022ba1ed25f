//! The access log through the running gate: lines are written in batches off the request path
//! (at most ~100 ms late), every request gets exactly one whole line in both formats, and a gate
//! stopped by SIGTERM has written every line before it exits.

use crate::common::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The `path` of each access line in `log`, checking that each line is whole: one JSON object
/// (`json`) or one `path=` and one `latency_ms=` on the line (text).
fn access_paths(log: &str, json: bool) -> Vec<String> {
    log.lines()
        .filter(|l| l.contains("gatehouse::access"))
        .map(|line| {
            if json {
                let v: Value = serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("not one JSON object ({e}): {line}"));
                assert!(v["latency_ms"].is_number(), "{line}");
                v["path"].as_str().unwrap_or_default().to_string()
            } else {
                assert_eq!(line.matches(" path=").count(), 1, "{line}");
                assert_eq!(line.matches(" latency_ms=").count(), 1, "{line}");
                let start = line.find(" path=\"").map(|i| i + 7).unwrap_or(line.len());
                let rest = &line[start..];
                rest[..rest.find('"').unwrap_or(rest.len())].to_string()
            }
        })
        .collect()
}

/// How many access lines each path has.
fn counts(paths: Vec<String>) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for p in paths {
        *counts.entry(p).or_default() += 1;
    }
    counts
}

/// Send `n` requests to `/echo/n{i}` from 4 clients at once, half with a session (proxied),
/// half anonymous (answered by the gate), each path once; the paths.
async fn send_requests(h: &Harness, n: usize) -> Vec<String> {
    let cookie = format!("_gatehouse={}", mint(KEY_A, &claims_for("octocat", 583231)));
    let tasks: Vec<_> = (0..4)
        .map(|t| {
            let client = plain_client();
            let (gate, cookie) = (h.gate.clone(), cookie.clone());
            tokio::spawn(async move {
                for i in (t..n).step_by(4) {
                    let mut req = client.get(format!("{gate}/echo/n{i}"));
                    if i % 2 == 0 {
                        req = req.header("cookie", &cookie);
                    }
                    let status = req.send().await.unwrap().status().as_u16();
                    assert!(status < 500, "{status} for /echo/n{i}");
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    (0..n).map(|i| format!("/echo/n{i}")).collect()
}

/// Every path in `sent` has exactly one access line in `log`.
fn assert_one_line_each(log: &str, json: bool, sent: &[String]) {
    let counts = counts(access_paths(log, json));
    for path in sent {
        assert_eq!(
            counts.get(path),
            Some(&1),
            "access lines for {path}:\n{log}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_gets_one_whole_access_line_soon_in_both_formats() {
    const N: usize = 400;
    for json in [false, true] {
        let access_extra = if json {
            "[log]\nformat = \"json\"".to_string()
        } else {
            String::new()
        };
        let h = Harness::start(GateOptions {
            access_extra,
            ..GateOptions::default()
        })
        .await;
        let sent = send_requests(&h, N).await;
        let answered = Instant::now();
        // Written in batches: wait, with a bound for a machine busy compiling beside the tests.
        let deadline = answered + Duration::from_secs(10);
        let mut log = h.log();
        while access_paths(&log, json).len() < N + 1 {
            assert!(
                Instant::now() < deadline,
                "{} of {} access lines after 10 s:\n{log}",
                access_paths(&log, json).len(),
                N + 1
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
            log = h.log();
        }
        eprintln!(
            "json={json}: the last of {N} access lines was written {:?} after the last answer",
            answered.elapsed()
        );
        assert_one_line_each(&log, json, &sent);
        // The readiness probe's line, and nothing more.
        assert_eq!(access_paths(&log, json).len(), N + 1, "{log}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gate_stopped_by_sigterm_has_written_every_access_line() {
    const N: usize = 200;
    let opts = GateOptions {
        upstream: Some(slow_upstream().await),
        // Only warnings and the access log: no INFO line ("SIGTERM: …", "drained: …") is
        // written at the stop, which would write the waiting access lines before it.
        env: vec![("RUST_LOG", "warn,gatehouse::access=info".to_string())],
        ..GateOptions::default()
    };
    let mut h = Harness::start_with_server(opts, "shutdown_grace = \"5s\"").await;
    let mut sent = send_requests(&h, N).await;
    // One request in flight across the signal: its line is made during the drain.
    let cookie = format!("_gatehouse={}", mint(KEY_A, &claims_for("octocat", 583231)));
    let slow = {
        let (client, url) = (plain_client(), h.url("/slow?ms=700"));
        tokio::spawn(async move {
            let r = client.get(url).header("cookie", cookie).send().await?;
            Ok::<_, reqwest::Error>(r.status().as_u16())
        })
    };
    sent.push("/slow".into());
    tokio::time::sleep(Duration::from_millis(300)).await;
    signal(&h.child, libc::SIGTERM);
    assert_eq!(slow.await.unwrap().expect("the slow request finishes"), 200);
    let (exit, _) = h.wait_exit(Duration::from_secs(8)).await;
    assert!(exit.success(), "{exit:?}; log:\n{}", h.log());
    // The process is gone: what it wrote is all there will be.
    let log = h.log();
    assert_one_line_each(&log, false, &sent);
    assert!(!log.contains("panicked"), "{log}");
}
