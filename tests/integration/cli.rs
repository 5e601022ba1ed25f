//! The command line: gen-secret, check-config, run's start-up errors, and the demo end to end.

use crate::common::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn gatehouse(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(binary());
    cmd.args(args)
        .env_remove("GH_CLIENT_ID")
        .env_remove("GH_CLIENT_SECRET")
        .env_remove("GITHUB_USERS")
        .env_remove("GATEHOUSE_SESSION_SECRET")
        .env_remove("GATEHOUSE_CONFIG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn write_config(dir: &tempfile::TempDir, text: &str) -> String {
    let path = dir.path().join("gatehouse.toml");
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

#[test]
fn gen_secret_prints_fresh_32_byte_keys() {
    let a = gatehouse(&["gen-secret"], &[]);
    let b = gatehouse(&["gen-secret"], &[]);
    assert!(a.status.success());
    let a = String::from_utf8(a.stdout).unwrap();
    let b = String::from_utf8(b.stdout).unwrap();
    assert_ne!(a, b);
    let key = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, a.trim()).unwrap();
    assert_eq!(key.len(), 32);
}

#[test]
fn check_config_lists_every_problem_with_key_and_fix() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        &dir,
        "[server]\nlisten = \"localhost\"\n[session]\nsecrets = [\"short\"]\n[access]\nallowed_users = []\n",
    );
    let out = gatehouse(&["check-config", "--config", &path], &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    for needle in [
        "github.client_id: GitHub OAuth is not configured: set github.client_id or GH_CLIENT_ID",
        "github.client_secret",
        "session.secrets[0]: is not 32 bytes of base64",
        "gatehouse gen-secret",
        "server.listen",
        "access.allowed_users: nobody is allowed in",
        "allow_any_github_user = true",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in:\n{err}");
    }
}

/// A misspelled key is named by its full path, with the key it was probably meant to be.
#[test]
fn check_config_suggests_the_key_a_misspelling_meant() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(&dir, "[access]\nallowed_user = [\"octocat\"]\n");
    let out = gatehouse(&["check-config", "--config", &path], &[]);
    assert_ne!(out.status.code(), Some(0));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("access.allowed_user: unknown key")
            && err.contains("did you mean `access.allowed_users`?"),
        "{err}"
    );
    let path = write_config(&dir, "[acces]\nallowed_users = [\"a\"]\n");
    let err =
        String::from_utf8(gatehouse(&["check-config", "--config", &path], &[]).stderr).unwrap();
    assert!(
        err.contains("acces: unknown key") && err.contains("did you mean `access`?"),
        "{err}"
    );
}

#[test]
fn check_config_names_unknown_keys_and_missing_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(&dir, "[acces]\nallowed_users = [\"a\"]\n");
    let err =
        String::from_utf8(gatehouse(&["check-config", "--config", &path], &[]).stderr).unwrap();
    assert!(err.contains("acces"), "{err}");
    let out = gatehouse(
        &["check-config", "--config", "/nonexistent/gatehouse.toml"],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("--config") && err.contains("/nonexistent/gatehouse.toml"),
        "{err}"
    );
}

/// `check-config` on a valid base config plus one GitHub Actions issuer entry with `claims`.
fn check_github_actions_issuer(claims: &str) -> (Option<i32>, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        &dir,
        &format!(
            "[github]\nclient_id = \"x\"\nclient_secret = \"y\"\n[session]\nsecrets = [\"{}\"]\n\
             [access]\nallowed_users = [\"octocat\"]\n[roles.deployer]\n\
             [[tokens.oidc_issuers]]\nissuer = \"https://token.actions.githubusercontent.com\"\n\
             audience = \"https://app.example.com\"\n\
             jwks_url = \"https://token.actions.githubusercontent.com/.well-known/jwks\"\n\
             {claims}\nroles = [\"deployer\"]\n",
            b64(&KEY_A)
        ),
    );
    let out = gatehouse(&["check-config", "--config", &path], &[]);
    let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
    (out.status.code(), text(out.stdout), text(out.stderr))
}

#[test]
fn check_config_refuses_a_github_actions_issuer_that_pins_no_repository() {
    let (code, _, stderr) = check_github_actions_issuer("claims = { ref = \"refs/heads/main\" }");
    assert_eq!(code, Some(1), "{stderr}");
    for needle in [
        "tokens.oidc_issuers[0].claims: pins no owner or repository",
        "any repository there can mint a token with any audience",
        "fix: pin yours by id, e.g. claims = { repository_owner_id = ",
        "registered again by someone else after a rename",
    ] {
        assert!(stderr.contains(needle), "missing {needle:?} in:\n{stderr}");
    }
    let (code, _, stderr) = check_github_actions_issuer("");
    assert_eq!(code, Some(1), "no claims at all: {stderr}");
}

#[test]
fn check_config_accepts_a_github_actions_issuer_pinned_to_a_repository() {
    let (code, stdout, stderr) = check_github_actions_issuer(
        "claims = { repository_owner_id = \"1234\", repository_id = \"5678\", ref = \"refs/heads/main\" }",
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("# OK:"), "{stdout}");
    assert!(!stderr.contains("warning"), "{stderr}");
    // Names alone are accepted, with a warning to pin the ids.
    let (code, stdout, stderr) =
        check_github_actions_issuer("claims = { repository = \"databio/pephub\" }");
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("# OK:"), "{stdout}");
    assert!(
        stderr.contains("warning: tokens.oidc_issuers[0].claims: pins `repository` by name only")
            && stderr.contains("repository_id"),
        "{stderr}"
    );
}

#[test]
fn check_config_accepts_env_only_secrets_and_masks_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(&dir, "[access]\nallowed_users = [\"octocat\"]\n");
    let key = b64(&KEY_A);
    let out = gatehouse(
        &["check-config", "--config", &path],
        &[
            ("GH_CLIENT_ID", "cid-123"),
            ("GH_CLIENT_SECRET", "very-secret-value"),
            ("GATEHOUSE_SESSION_SECRET", &key),
        ],
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("cid-123") && stdout.contains("OK"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("very-secret-value") && !stdout.contains(&key),
        "{stdout}"
    );
}

#[test]
fn run_refuses_a_bad_config_and_a_busy_port_quickly() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(&dir, "");
    let out = gatehouse(&["run", "--config", &path], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .contains("github.client_id"));

    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap();
    let path = write_config(
        &dir,
        &format!(
            "[server]\nlisten = \"{addr}\"\n[github]\nclient_id = \"x\"\nclient_secret = \"y\"\n[session]\nsecrets = [\"{}\"]\n[access]\nallowed_users = [\"a\"]\n",
            b64(&KEY_A)
        ),
    );
    let started = Instant::now();
    let out = gatehouse(&["run", "--config", &path], &[]);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("server.listen") && err.contains(&addr.to_string()),
        "{err}"
    );
}

/// `gatehouse demo`: the mock GitHub, demo app and gate from one command, clicked through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_serves_a_working_sign_in() {
    let port = free_port();
    let log_dir = tempfile::tempdir().unwrap();
    let log_path = log_dir.path().join("demo.log");
    let (mut child, lines) = spawn_reading_stdout(
        Command::new(binary())
            .args(["demo", "--listen", &format!("127.0.0.1:{port}")])
            .stderr(std::fs::File::create(&log_path).unwrap()),
    );
    let mock_url = std::iter::from_fn(|| lines.recv_timeout(Duration::from_secs(20)).ok())
        .find_map(|l| {
            let rest = l.trim().strip_prefix("mock GitHub")?.to_string();
            rest.split_whitespace().next().map(str::to_string)
        })
        .expect("demo prints the mock GitHub URL");
    let gate = format!("http://127.0.0.1:{port}");
    let client = browser();
    let mut ready = false;
    for _ in 0..200 {
        if client.get(format!("{gate}/ping")).send().await.is_ok() {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready, "demo gate did not start: {:?}", child.try_wait());

    // Browser: app → start → mock GitHub page → pick octocat → callback → app.
    let r = navigate(&client, format!("{gate}/")).await;
    assert_eq!(r.status(), 302);
    let start = client
        .get(format!("{gate}{}", location(&r)))
        .send()
        .await
        .unwrap();
    let authorize = location(&start);
    assert!(authorize.starts_with(&mock_url), "{authorize}");
    let page = get_text(&client, &authorize).await;
    assert!(page.contains("Sign in as octocat"), "{page}");
    let callback = consent(&client, &authorize, "octocat").await;
    let back = client.get(callback).send().await.unwrap();
    assert_eq!(back.status(), 302);
    assert_eq!(location(&back), "/");
    let app = navigate(&client, format!("{gate}/")).await;
    assert_eq!(app.status(), 200);
    let html = app.text().await.unwrap();
    assert!(
        html.contains("octocat")
            && html.contains("X-Forwarded-User")
            && html.contains("databio/core"),
        "{html}"
    );
    // The demo's rules: octocat is the admin; /public needs nobody; others' namespaces are
    // read-only.
    let admin = navigate(&client, format!("{gate}/admin/x")).await;
    assert_eq!(admin.status(), 200);
    assert!(admin.text().await.unwrap().contains("viewer,admin"));
    let public = navigate(&plain_client(), format!("{gate}/public/x")).await;
    assert_eq!(public.status(), 200);
    let write = client
        .post(format!("{gate}/monalisa/x"))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(write.status(), 403);

    let _ = child.kill();
    let _ = child.wait();
    // A demo starts clean: nothing in it is the user's to fix.
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(log.contains("INFO"), "the demo logs: {log}");
    assert!(
        !log.contains("WARN") && !log.contains("ERROR"),
        "the demo warns: {log}"
    );
}

/// `gatehouse mock-github` for users' own CI: prints its URLs and enforces GitHub's rules.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mock_github_command_serves_oauth_and_api() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users.toml");
    std::fs::write(
        &users,
        "[[users]]\nlogin = \"ci-bot\"\nid = 99\nemails = [{ email = \"ci@example.com\", primary = true, verified = true }]\n",
    )
    .unwrap();
    let (mut child, rx) = spawn_reading_stdout(
        Command::new(binary())
            .args([
                "mock-github",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--users",
            ])
            .arg(&users)
            .args(["--client-id", "cid", "--client-secret", "csecret"])
            .stderr(Stdio::null()),
    );
    let first = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("mock-github prints its URL");
    assert!(first.contains(&format!("127.0.0.1:{port}")), "{first}");

    let base = format!("http://127.0.0.1:{port}");
    let page = get_text(
        &plain_client(),
        format!(
            "{base}/login/oauth/authorize?client_id=cid&redirect_uri=http://127.0.0.1:4180/oauth2/callback&scope=read:user&state=s"
        ),
    )
    .await;
    assert!(page.contains("Sign in as ci-bot"), "{page}");
    // GitHub refuses REST calls without a User-Agent; so does the mock.
    gatehouse::install_crypto_provider();
    let r = reqwest::Client::new()
        .get(format!("{base}/api/v3/user"))
        .bearer_auth("gho_whatever")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let _ = child.kill();
    let _ = child.wait();
}
