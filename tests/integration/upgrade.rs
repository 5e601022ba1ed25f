//! In-place upgrades: `gatehouse run --upgrade` takes the listening sockets from the running
//! gate (which gets SIGQUIT) over `server.upgrade_sock`; the old process drains and exits 0,
//! and no request fails meanwhile. Without a process to take over from, `--upgrade` fails at
//! once; without a SIGQUIT it gives up after 6 s; a SIGQUIT with no new process waiting is
//! refused. In both cases the running gate keeps serving.

use crate::common::*;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A gate on the slow upstream with its upgrade socket in a private directory of its own
/// (`tempfile` makes it 0700); `shutdown_grace` as given.
async fn upgradable_gate(grace: &str) -> (Harness, tempfile::TempDir, PathBuf) {
    let run_dir = tempfile::tempdir().unwrap();
    let sock = run_dir.path().join("upgrade.sock");
    let opts = GateOptions {
        upstream: Some(slow_upstream().await),
        ..GateOptions::default()
    };
    let server = format!(
        "shutdown_grace = \"{grace}\"\nupgrade_sock = \"{}\"",
        sock.display()
    );
    let h = Harness::start_with_server(opts, &server).await;
    (h, run_dir, sock)
}

async fn wait_for_socket(sock: &Path, new: &mut Replica) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::fs::symlink_metadata(sock).is_ok_and(|m| m.file_type().is_socket()) {
        if let Some(status) = new.child.try_wait().unwrap() {
            panic!("the new process exited ({status}):\n{}", new.log());
        }
        assert!(
            Instant::now() < deadline,
            "no upgrade socket:\n{}",
            new.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What the load saw: every status, and every request that got no answer.
#[derive(Default)]
struct Seen {
    statuses: Vec<u16>,
    failures: Vec<String>,
}

/// Requests until `stop`: `client` decides whether connections are reused.
fn load(
    client: reqwest::Client,
    url: String,
    cookie: String,
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Seen>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while !stop.load(Ordering::Relaxed) {
            let sent = client.get(&url).header("cookie", &cookie).send().await;
            let outcome = match sent {
                Ok(r) => {
                    let status = r.status().as_u16();
                    r.bytes().await.map(|_| status)
                }
                Err(e) => Err(e),
            };
            let mut seen = seen.lock().unwrap();
            match outcome {
                Ok(status) => seen.statuses.push(status),
                Err(e) => seen.failures.push(format!("{e:?}")),
            }
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_hands_over_the_listeners_without_a_failed_request() {
    let (mut h, _run_dir, sock) = upgradable_gate("5s").await;
    let session = mint(KEY_A, &claims_for("octocat", 583231));
    let cookie = format!("_gatehouse={session}");
    let url = h.url("/slow?ms=0");

    // A request in flight across the switch: on the old process, answered during its drain.
    let slow = {
        let (url, cookie) = (h.url("/slow?ms=7000"), cookie.clone());
        tokio::spawn(async move {
            let r = plain_client()
                .get(url)
                .header("cookie", cookie)
                .send()
                .await?;
            let status = r.status().as_u16();
            Ok::<_, reqwest::Error>((status, r.text().await?, Instant::now()))
        })
    };
    // One client opening a new connection per request, one keeping its connection alive.
    let stop = Arc::new(AtomicBool::new(false));
    let fresh = Arc::new(Mutex::new(Seen::default()));
    let kept = Arc::new(Mutex::new(Seen::default()));
    let one_shot = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let loads = [
        load(
            one_shot,
            url.clone(),
            cookie.clone(),
            stop.clone(),
            fresh.clone(),
        ),
        load(
            plain_client(),
            url.clone(),
            cookie.clone(),
            stop.clone(),
            kept.clone(),
        ),
    ];
    tokio::time::sleep(Duration::from_millis(300)).await;

    let mut new = h.spawn_upgrade();
    wait_for_socket(&sock, &mut new).await;
    let quit_at = Instant::now();
    signal(&h.child, libc::SIGQUIT);
    // Fd hand-over, Pingora's 5 s close window, then the drain (the slow request) ≤ grace.
    let (old_exit, old_gone) = h.wait_exit(Duration::from_secs(1 + 5 + 5 + 3)).await;
    // The new process serves on alone for a while.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    stop.store(true, Ordering::Relaxed);
    for l in loads {
        l.await.unwrap();
    }

    assert!(old_exit.success(), "old process: {old_exit:?}\n{}", h.log());
    let (status, body, answered_at) = slow.await.unwrap().expect("the slow request is answered");
    assert_eq!((status, body.as_str()), (200, "done"));
    assert!(
        old_gone >= answered_at,
        "the old process left before its request in flight was answered"
    );
    for (name, seen) in [
        ("new connection per request", &fresh),
        ("kept-alive", &kept),
    ] {
        let seen = seen.lock().unwrap();
        assert!(
            seen.failures.is_empty(),
            "{name}: {} failed requests: {:?}",
            seen.failures.len(),
            &seen.failures[..seen.failures.len().min(5)]
        );
        let odd: Vec<_> = seen.statuses.iter().filter(|s| **s != 200).collect();
        assert!(odd.is_empty(), "{name}: answers other than 200: {odd:?}");
        assert!(
            seen.statuses.len() > 100,
            "{name}: only {} requests",
            seen.statuses.len()
        );
    }
    // The new process took over: it is alive, serves, and said where its sockets came from.
    assert!(new.child.try_wait().unwrap().is_none(), "{}", new.log());
    let after = get_with_session(&h.url("/slow?ms=0"), &session).await;
    assert_eq!(after.status(), 200, "{}", new.log());
    assert!(
        new.log().contains("listening sockets received"),
        "{}",
        new.log()
    );
    assert!(
        h.log().contains("SIGQUIT: handing the listening sockets"),
        "{}",
        h.log()
    );
    eprintln!(
        "upgrade: {} + {} requests, 0 failed, 0 non-200; old exited {:?} after SIGQUIT, {:?} after its last request in flight",
        fresh.lock().unwrap().statuses.len(),
        kept.lock().unwrap().statuses.len(),
        old_gone - quit_at,
        old_gone - answered_at
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_process_to_take_over_from_an_upgrade_fails_and_a_sigquit_is_refused() {
    let (h, run_dir, sock) = upgradable_gate("2s").await;

    // `--upgrade` on an address nobody listens on: a clear error at once, exit 1.
    let config = std::fs::read_to_string(h.dir.path().join("gatehouse.toml")).unwrap();
    let free = format!("127.0.0.1:{}", free_port());
    let lonely = run_dir.path().join("lonely.toml");
    std::fs::write(&lonely, config.replace(&h.gate_addr.to_string(), &free)).unwrap();
    let started = Instant::now();
    let out = std::process::Command::new(binary())
        .args(["run", "--upgrade", "--config"])
        .arg(&lonely)
        .envs(h.env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .unwrap();
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("--upgrade: nothing listens on {free}"))
            && stderr.contains("start Gatehouse without --upgrade"),
        "{stderr}"
    );
    assert!(took < Duration::from_secs(3), "took {took:?}");

    // A new process that gets no sockets (nobody sent SIGQUIT) gives up, exit 1; meanwhile and
    // after, the running gate serves.
    let session = mint(KEY_A, &claims_for("octocat", 583231));
    let mut new = h.spawn_upgrade();
    wait_for_socket(&sock, &mut new).await;
    let r = get_with_session(&h.url("/slow?ms=0"), &session).await;
    assert_eq!(r.status(), 200);
    let (exit, _) = new.wait_exit(Duration::from_secs(10)).await;
    assert_eq!(exit.code(), Some(1), "{}", new.log());
    assert!(
        new.log().contains("Giving up reading socket"),
        "{}",
        new.log()
    );
    let r = get_with_session(&h.url("/slow?ms=0"), &session).await;
    assert_eq!(r.status(), 200);

    // SIGQUIT with no new process waiting: refused after the wait, and the gate serves on.
    signal(&h.child, libc::SIGQUIT);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !h.log().contains("SIGQUIT refused") {
        assert!(Instant::now() < deadline, "{}", h.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(h.log().contains("gatehouse run --upgrade"), "{}", h.log());
    assert!(!sock.exists());
    let r = get_with_session(&h.url("/slow?ms=0"), &session).await;
    assert_eq!(r.status(), 200);
    let mut h = h;
    assert!(h.child.try_wait().unwrap().is_none(), "{}", h.log());
    eprintln!("--upgrade alone failed in {took:?}: {}", stderr.trim());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_signalled_first_takes_over_a_tls_listener_with_a_renewed_certificate() {
    let run_dir = tempfile::tempdir().unwrap();
    let sock = run_dir.path().join("upgrade.sock");
    let server = format!(
        "shutdown_grace = \"2s\"\nupgrade_sock = \"{}\"",
        sock.display()
    );
    let mut h = Harness::start_tls(GateOptions::default(), &server).await;
    let old_client = h.client_builder().build().unwrap();
    assert_eq!(
        old_client
            .get(h.url("/ping"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // The certificate is renewed in place (same paths), as Let's Encrypt does.
    let (cert, key) = self_signed_cert();
    std::fs::write(h.dir.path().join("cert.pem"), &cert).unwrap();
    std::fs::write(h.dir.path().join("key.pem"), key).unwrap();
    // SIGQUIT first, then the new process (the order of the systemd recipe): the old process
    // waits for it, serving meanwhile.
    signal(&h.child, libc::SIGQUIT);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        old_client
            .get(h.url("/ping"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let mut new = h.spawn_upgrade();
    wait_for_socket(&sock, &mut new).await;
    let (exit, _) = h.wait_exit(Duration::from_secs(1 + 5 + 2 + 3)).await;
    assert!(exit.success(), "{exit:?}\n{}", h.log());

    // Only the new certificate is trusted here: the new process serves it, on the same port.
    gatehouse::install_crypto_provider();
    let renewed = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.as_bytes()).unwrap())
        .build()
        .unwrap();
    let r = renewed.get(h.url("/ping")).send().await;
    assert_eq!(
        r.map(|r| r.status().as_u16()).ok(),
        Some(200),
        "{}",
        new.log()
    );
}
