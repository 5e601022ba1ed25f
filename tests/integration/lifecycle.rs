//! Living with a running gate: SIGHUP reloads the config under load without a failed request
//! (an invalid config, or one changing a key only a restart applies, is refused and the old one
//! kept) and without ending a session, even one in this process's memory; SIGTERM lets requests
//! in flight finish, up to `server.shutdown_grace`, then exits 0. Upgrades: upgrade.rs.

use crate::common::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn config_path(h: &Harness) -> std::path::PathBuf {
    h.dir.path().join("gatehouse.toml")
}

/// Rewrite the gate's config file with `edit`.
fn edit_config(h: &Harness, edit: impl FnOnce(String) -> String) {
    let path = config_path(h);
    let text = std::fs::read_to_string(&path).unwrap();
    let new = edit(text.clone());
    assert_ne!(new, text, "the edit changed nothing");
    std::fs::write(&path, new).unwrap();
}

/// Wait until the gate's log holds `needle` `times` times.
async fn wait_log(h: &Harness, needle: &str, times: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while h.log().matches(needle).count() < times {
        assert!(
            Instant::now() < deadline,
            "no {needle:?} (x{times}) in the log:\n{}",
            h.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn status_of(client: &reqwest::Client, url: &str, cookie: &str) -> u16 {
    client
        .get(url)
        .header("cookie", cookie)
        .header("accept", "application/json")
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_under_load_without_failed_requests() {
    let h = Harness::start(GateOptions::default()).await;
    let octocat = format!("_gatehouse={}", mint(KEY_A, &claims_for("octocat", 583231)));
    let hubot = format!("_gatehouse={}", mint(KEY_A, &claims_for("hubot", 2)));
    let url = h.url("/echo");

    // 4 clients × continuous GETs on kept-alive connections for about 3 s.
    let stop = Arc::new(AtomicBool::new(false));
    // (user, status) for every answer; transport errors separately.
    let answers = Arc::new(Mutex::new(Vec::<(&'static str, u16)>::new()));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut tasks = Vec::new();
    for i in 0..4 {
        let (stop, answers, failures) = (stop.clone(), answers.clone(), failures.clone());
        let (url, octocat, hubot) = (url.clone(), octocat.clone(), hubot.clone());
        tasks.push(tokio::spawn(async move {
            let client = plain_client();
            let mut n = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let (user, cookie) = if (n + i) % 2 == 0 {
                    ("octocat", &octocat)
                } else {
                    ("hubot", &hubot)
                };
                n += 1;
                let sent = client
                    .get(&url)
                    .header("cookie", cookie)
                    .header("accept", "application/json")
                    .send()
                    .await;
                match sent {
                    Ok(r) => {
                        let status = r.status().as_u16();
                        match r.bytes().await {
                            Ok(_) => answers.lock().unwrap().push((user, status)),
                            Err(e) => failures.lock().unwrap().push(format!("body: {e:?}")),
                        }
                    }
                    Err(e) => failures.lock().unwrap().push(format!("{e:?}")),
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    edit_config(&h, |c| {
        c.replace(
            r#"allowed_users = ["OctoCat", "monalisa", "hubot"]"#,
            r#"allowed_users = ["OctoCat", "monalisa"]"#,
        )
    });
    let reload_sent = Instant::now();
    signal(&h.child, libc::SIGHUP);
    wait_log(&h, "config reloaded", 1).await;
    let reload_took = reload_sent.elapsed();
    tokio::time::sleep(Duration::from_millis(2000)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }

    let failures = failures.lock().unwrap().clone();
    let answers = answers.lock().unwrap().clone();
    assert!(
        failures.is_empty(),
        "{} failed requests during the reload: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert!(
        answers.len() > 200,
        "only {} requests in 3 s",
        answers.len()
    );
    let odd: Vec<_> = answers
        .iter()
        .filter(|(user, status)| !(*status == 200 || (*user == "hubot" && *status == 403)))
        .collect();
    assert!(
        odd.is_empty(),
        "unexpected answers: {:?}",
        &odd[..odd.len().min(5)]
    );
    // Before the reload hubot got in; after it, not (and the switch happened under load).
    let hubot_statuses: Vec<u16> = answers
        .iter()
        .filter(|(u, _)| *u == "hubot")
        .map(|(_, s)| *s)
        .collect();
    assert_eq!(hubot_statuses.first(), Some(&200));
    assert_eq!(hubot_statuses.last(), Some(&403));
    eprintln!(
        "{} requests, 0 failed; reload applied {reload_took:?} after SIGHUP",
        answers.len()
    );

    let client = plain_client();
    assert_eq!(status_of(&client, &url, &octocat).await, 200);
    assert_eq!(status_of(&client, &url, &hubot).await, 403);

    // An invalid config is refused with its problems logged; the last good one stays.
    let good = std::fs::read_to_string(config_path(&h)).unwrap();
    edit_config(&h, |c| {
        c.replace(
            r#"allowed_users = ["OctoCat", "monalisa"]"#,
            "allowed_users = []\nallowed_orgs = [\"not a valid org!\"]",
        )
    });
    signal(&h.child, libc::SIGHUP);
    wait_log(&h, "config reload refused", 1).await;
    let log = h.log();
    assert!(
        log.contains("allowed_orgs"),
        "the problem is not named:\n{log}"
    );
    assert_eq!(status_of(&client, &url, &octocat).await, 200);
    assert_eq!(status_of(&client, &url, &hubot).await, 403);
    // Broken TOML too.
    std::fs::write(config_path(&h), "[server\nlisten = ").unwrap();
    signal(&h.child, libc::SIGHUP);
    wait_log(&h, "config reload refused", 2).await;
    assert!(h.log().contains("not valid TOML"), "{}", h.log());
    assert_eq!(status_of(&client, &url, &octocat).await, 200);

    // A key read only at start changed: all of the file is refused (nothing of it applies), the
    // log names the key and says a restart is needed.
    std::fs::write(
        config_path(&h),
        good.replace(
            r#"allowed_users = ["OctoCat", "monalisa"]"#,
            r#"allowed_users = ["OctoCat", "monalisa", "hubot"]"#,
        )
        .replace("threads = 2", "threads = 1"),
    )
    .unwrap();
    signal(&h.child, libc::SIGHUP);
    wait_log(&h, "config reload refused", 3).await;
    let log = h.log();
    assert!(
        log.contains("server.threads changed, which needs a restart"),
        "no restart line:\n{log}"
    );
    assert_eq!(status_of(&client, &url, &hubot).await, 403);
    // With the running value back, the rest applies.
    std::fs::write(
        config_path(&h),
        good.replace(
            r#"allowed_users = ["OctoCat", "monalisa"]"#,
            r#"allowed_users = ["OctoCat", "monalisa", "hubot"]"#,
        ),
    )
    .unwrap();
    signal(&h.child, libc::SIGHUP);
    wait_log(&h, "config reloaded", 2).await;
    assert_eq!(status_of(&client, &url, &hubot).await, 200);
}

/// One request with the session cookie `value`: its status.
async fn with_session(h: &Harness, value: &str) -> u16 {
    get_with_session(&h.url("/echo"), value)
        .await
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_keeps_memory_sessions_and_refuses_a_store_change() {
    // Sessions in this process's memory, sealed with a key made at start (no store_secrets);
    // membership re-checks every second, so a session only lasts if its GitHub token (sealed in
    // the record) can still be read after the reload.
    let opts = GateOptions {
        allowed_users: vec![],
        access_extra: "allowed_orgs = [\"databio\"]\nrefresh_interval = \"1s\"".into(),
        session_extra: "store = \"memory\"".into(),
        ..GateOptions::default()
    };
    let h = Harness::start(opts).await;
    let mona = session_of(&h, "monalisa").await;
    assert_eq!(with_session(&h, &mona).await, 200);

    edit_config(&h, |c| c.replace("timeout = \"3s\"", "timeout = \"4s\""));
    signal(&h.child, libc::SIGHUP);
    wait_log(&h, "config reloaded", 1).await;
    // Past refresh_interval: the re-check asks GitHub with the token from the record.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let before = h.mock.api_request_count();
    assert_eq!(with_session(&h, &mona).await, 200, "{}", h.log());
    assert!(
        h.mock.api_request_count() > before,
        "no re-check after the reload"
    );

    // A reload cannot move sessions to another store: refused, named, and the old one serves.
    edit_config(&h, |c| {
        c.replace("store = \"memory\"", "store = \"cookie\"")
    });
    signal(&h.child, libc::SIGHUP);
    wait_log(&h, "config reload refused", 1).await;
    let log = h.log();
    assert!(
        log.contains("session.store changed, which needs a restart"),
        "{log}"
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(with_session(&h, &mona).await, 200, "{}", h.log());
    eprintln!("memory-store session kept across a reload; store change refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_requests_in_flight_finish_then_exits_zero() {
    let opts = GateOptions {
        upstream: Some(slow_upstream().await),
        ..GateOptions::default()
    };
    let mut h = Harness::start_with_server(opts, "shutdown_grace = \"5s\"").await;
    let cookie = format!("_gatehouse={}", mint(KEY_A, &claims_for("octocat", 583231)));
    let client = plain_client();
    let request = {
        let (client, url, cookie) = (client.clone(), h.url("/slow?ms=2000"), cookie.clone());
        tokio::spawn(async move {
            let r = client.get(url).header("cookie", cookie).send().await?;
            let status = r.status().as_u16();
            Ok::<_, reqwest::Error>((status, r.text().await?, Instant::now()))
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let term_at = Instant::now();
    signal(&h.child, libc::SIGTERM);
    let (status, body, answered_at) = request
        .await
        .unwrap()
        .expect("the request in flight finishes");
    assert_eq!((status, body.as_str()), (200, "done"));
    let (exit, exited_at) = h.wait_exit(Duration::from_secs(5 + 3)).await;
    assert!(exit.success(), "exit status {exit:?}; log:\n{}", h.log());
    // It exits once drained, not at the end of shutdown_grace.
    let after_answer = exited_at.saturating_duration_since(answered_at);
    assert!(
        after_answer < Duration::from_millis(1500),
        "exited {after_answer:?} after the last answer"
    );
    eprintln!(
        "answered {:?} after SIGTERM, exited {:?} after SIGTERM",
        answered_at - term_at,
        exited_at - term_at
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_exits_at_once_when_idle_and_cuts_requests_past_the_grace() {
    // Idle: nothing to wait for.
    let mut h = Harness::start(GateOptions::default()).await;
    let term_at = Instant::now();
    signal(&h.child, libc::SIGTERM);
    let (exit, exited_at) = h.wait_exit(Duration::from_secs(3)).await;
    assert!(exit.success(), "{exit:?}");
    assert!(
        exited_at - term_at < Duration::from_millis(1500),
        "{:?}",
        exited_at - term_at
    );

    // A request longer than shutdown_grace is ended when the grace is over; still exit 0.
    let opts = GateOptions {
        upstream: Some(slow_upstream().await),
        ..GateOptions::default()
    };
    let mut h = Harness::start_with_server(opts, "shutdown_grace = \"1s\"").await;
    let cookie = format!("_gatehouse={}", mint(KEY_A, &claims_for("octocat", 583231)));
    let request = {
        let (client, url) = (plain_client(), h.url("/slow?ms=6000"));
        tokio::spawn(async move {
            let r = client.get(url).header("cookie", cookie).send().await?;
            r.text().await
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let term_at = Instant::now();
    signal(&h.child, libc::SIGTERM);
    let (exit, exited_at) = h.wait_exit(Duration::from_secs(1 + 4)).await;
    assert!(exit.success(), "{exit:?}; log:\n{}", h.log());
    assert!(
        exited_at - term_at < Duration::from_secs(4),
        "{:?}",
        exited_at - term_at
    );
    let cut = request.await.unwrap();
    assert!(!matches!(cut.as_deref(), Ok("done")), "{cut:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_keeps_rate_limit_budgets_unless_the_quotas_change() {
    let h = Harness::start(GateOptions {
        access_extra: "\n[limits]\nauth_per_minute = 6\nburst = 3\n".into(),
        ..GateOptions::default()
    })
    .await;
    let client = plain_client();
    let start = || async {
        let r = client.get(h.url("/oauth2/start?rd=/")).send().await;
        r.unwrap().status().as_u16()
    };
    for _ in 0..3 {
        assert_eq!(start().await, 302);
    }
    assert_eq!(start().await, 429);
    // A reload is no way around a budget spent.
    edit_config(&h, |c| c.replace("timeout = \"3s\"", "timeout = \"4s\""));
    signal(&h.child, libc::SIGHUP);
    wait_log(&h, "config reloaded", 1).await;
    assert_eq!(start().await, 429);
    // New quotas: budgets by them, from scratch.
    edit_config(&h, |c| c.replace("burst = 3", "burst = 4"));
    signal(&h.child, libc::SIGHUP);
    wait_log(&h, "config reloaded", 2).await;
    assert_eq!(start().await, 302);
}
