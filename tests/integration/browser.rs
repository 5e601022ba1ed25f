//! A real headless Chromium clicks through `gatehouse demo`: the app's address → the login
//! redirect → the mock GitHub's user picker → "Sign in as octocat" → back at the app →
//! `/oauth2/me` → "Sign out" → the signed-out (sign-in) page → its GitHub button. A PNG
//! screenshot of every step goes to `target/browser-artifacts/`.
//!
//! Chromium is driven over WebDriver by Debian's `chromedriver` (packages `chromium` and
//! `chromium-driver`; `.ci/run` installs them). When they are missing and cannot be installed
//! (no network, not root), the test says why and skips. Chromium only ever reaches loopback:
//! every other host name resolves to nothing.

use crate::common;
use crate::common::{binary, free_port, spawn_reading_stdout};

use fantoccini::{Client, ClientBuilder, Locator};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The whole walk-through, browser start included, must finish within this.
const BUDGET: Duration = Duration::from_secs(50);
/// A phone-sized window: the pages must be readable at 360 px.
const WIDTH: u32 = 360;
const HEIGHT: u32 = 780;

/// Kills what the test started, however it ends: the demo, and chromedriver's whole process
/// group (chromedriver and the Chromium it launched).
struct Processes {
    demo: Option<Child>,
    driver: Option<Child>,
}

impl Drop for Processes {
    fn drop(&mut self) {
        if let Some(mut driver) = self.driver.take() {
            // chromedriver was started as the leader of its own process group.
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", driver.id())])
                .stderr(Stdio::null())
                .status();
            let _ = driver.kill();
            let _ = driver.wait();
        }
        if let Some(mut demo) = self.demo.take() {
            let _ = demo.kill();
            let _ = demo.wait();
        }
    }
}

fn find_program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    names.iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

fn chromium_and_driver() -> Option<(PathBuf, PathBuf)> {
    Some((
        find_program(&["chromium", "chromium-browser", "google-chrome"])?,
        find_program(&["chromedriver"])?,
    ))
}

/// Run `cmd`, giving up after `limit`.
fn run_bounded(cmd: &mut Command, limit: Duration) -> bool {
    let Ok(mut child) = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn() else {
        return false;
    };
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status.success(),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(200)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
        }
    }
}

/// Chromium and chromedriver, installed from Debian's packages when missing (as root).
fn ensure_browser() -> Result<(PathBuf, PathBuf), String> {
    if let Some(found) = chromium_and_driver() {
        return Ok(found);
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0"));
    if !root || find_program(&["apt-get"]).is_none() {
        return Err("chromium/chromedriver are not installed, and this is not a root Debian machine to apt-get them on (install the packages chromium and chromium-driver)".into());
    }
    eprintln!("browser test: installing chromium and chromium-driver with apt-get …");
    let install = || {
        run_bounded(
            Command::new("apt-get")
                .args([
                    "install",
                    "-y",
                    "-qq",
                    "--no-install-recommends",
                    "chromium",
                    "chromium-driver",
                ])
                .env("DEBIAN_FRONTEND", "noninteractive"),
            Duration::from_secs(300),
        )
    };
    if !install() {
        run_bounded(
            Command::new("apt-get").args(["update", "-qq"]),
            Duration::from_secs(120),
        );
        install();
    }
    chromium_and_driver().ok_or_else(|| {
        "apt-get could not install chromium and chromium-driver (no network or no package mirror?)"
            .into()
    })
}

/// Where screenshots go: `<target dir>/browser-artifacts/`.
fn artifacts_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let dir = target.join("browser-artifacts");
    std::fs::create_dir_all(&dir).expect("create the screenshot folder");
    dir
}

async fn wait_http_ok(url: &str, limit: Duration) -> bool {
    let client = common::plain_client();
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if client
            .get(url)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// One step of the walk-through: wait for the page, check it, save a screenshot.
struct Steps<'a> {
    browser: &'a Client,
    dir: PathBuf,
    n: usize,
}

impl Steps<'_> {
    /// Wait (up to 10 s) until the address satisfies `at`, then until the page has loaded.
    async fn wait_for(&self, what: &str, at: impl Fn(&url::Url) -> bool) -> url::Url {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let url = self.browser.current_url().await.expect("current url");
            let ready = self
                .browser
                .execute("return document.readyState", vec![])
                .await
                .ok()
                .and_then(|v| v.as_str().map(str::to_string));
            if at(&url) && ready.as_deref() == Some("complete") {
                return url;
            }
            assert!(Instant::now() < deadline, "never reached {what}; at {url}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn text(&self) -> String {
        self.browser
            .find(Locator::Css("body"))
            .await
            .expect("a body")
            .text()
            .await
            .expect("the body's text")
    }

    /// Save `NN-name.png` and return the page's visible text.
    async fn shot(&mut self, name: &str) -> String {
        self.n += 1;
        let png = self.browser.screenshot().await.expect("a screenshot");
        assert!(png.starts_with(b"\x89PNG"), "screenshots are PNG");
        let path = self.dir.join(format!("{:02}-{name}.png", self.n));
        std::fs::write(&path, png).expect("save the screenshot");
        eprintln!(
            "browser test: step {} screenshot {}",
            self.n,
            path.display()
        );
        self.text().await
    }

    /// Gatehouse's own pages fit a phone: nothing wider than the window.
    async fn assert_fits_width(&self, what: &str) {
        let widths = self
            .browser
            .execute(
                "return [document.documentElement.scrollWidth, window.innerWidth]",
                vec![],
            )
            .await
            .expect("page widths");
        let (scroll, inner) = (widths[0].as_u64().unwrap(), widths[1].as_u64().unwrap());
        assert!(
            scroll <= inner,
            "{what} is wider ({scroll} px) than the {inner} px window"
        );
    }

    async fn click(&self, xpath: &str) {
        self.browser
            .find(Locator::XPath(xpath))
            .await
            .unwrap_or_else(|e| panic!("no {xpath}: {e}"))
            .click()
            .await
            .unwrap_or_else(|e| panic!("cannot click {xpath}: {e}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_clicks_through_the_demo() {
    let started = Instant::now();
    let (chromium, chromedriver) = match ensure_browser() {
        Ok(found) => found,
        Err(why) => {
            eprintln!("SKIPPED chromium_clicks_through_the_demo: {why}");
            return;
        }
    };
    let mut procs = Processes {
        demo: None,
        driver: None,
    };

    // The demo: mock GitHub + demo app + the gate, on loopback.
    let port = free_port();
    let (demo, lines) = spawn_reading_stdout(
        Command::new(binary())
            .args(["demo", "--listen", &format!("127.0.0.1:{port}")])
            .env_remove("RUST_LOG")
            .stderr(Stdio::null()),
    );
    procs.demo = Some(demo);
    let mock_url = std::iter::from_fn(|| lines.recv_timeout(Duration::from_secs(20)).ok())
        .find_map(|l| {
            let rest = l.trim().strip_prefix("mock GitHub")?.to_string();
            rest.split_whitespace().next().map(str::to_string)
        })
        .expect("demo prints the mock GitHub URL");
    let gate = format!("http://127.0.0.1:{port}");
    assert!(
        wait_http_ok(&format!("{gate}/ping"), Duration::from_secs(20)).await,
        "the demo gate did not start"
    );

    // chromedriver on loopback, in its own process group so Chromium dies with it.
    let driver_port = free_port();
    let driver = {
        use std::os::unix::process::CommandExt;
        Command::new(&chromedriver)
            .arg(format!("--port={driver_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start chromedriver")
    };
    procs.driver = Some(driver);
    let webdriver = format!("http://127.0.0.1:{driver_port}");
    assert!(
        wait_http_ok(&format!("{webdriver}/status"), Duration::from_secs(15)).await,
        "chromedriver did not start"
    );

    let profile = tempfile::tempdir().unwrap();
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": chromium,
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-dev-shm-usage",
                "--disable-gpu",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--metrics-recording-only",
                "--hide-scrollbars",
                format!("--window-size={WIDTH},{HEIGHT}"),
                format!("--user-data-dir={}", profile.path().display()),
                // Loopback only: no host name resolves (GitHub's avatar CDN included).
                "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
            ],
        }),
    );
    // Headless windows are at least 500 px wide; emulate a 360 px phone screen instead.
    caps["goog:chromeOptions"]["mobileEmulation"] = serde_json::json!({
        "deviceMetrics": {"width": WIDTH, "height": HEIGHT, "pixelRatio": 1.0}
    });
    caps.insert("pageLoadStrategy".into(), "normal".into());

    let dir = artifacts_dir();
    eprintln!("browser test: screenshots go to {}", dir.display());
    let walk = async {
        let browser = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&webdriver)
            .await
            .expect("a Chromium session");
        let result = tokio::spawn(walk_through(
            browser.clone(),
            gate.clone(),
            mock_url.clone(),
            dir,
        ))
        .await;
        // Ends the session: chromedriver quits Chromium.
        let _ = browser.close().await;
        if let Err(e) = result {
            std::panic::resume_unwind(e.into_panic());
        }
    };
    tokio::time::timeout(BUDGET, walk)
        .await
        .expect("the browser walk-through took longer than its budget");
    drop(procs);
    eprintln!(
        "browser test: walk-through took {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

async fn walk_through(browser: Client, gate: String, mock_url: String, dir: PathBuf) {
    let mut steps = Steps {
        browser: &browser,
        dir,
        n: 0,
    };
    let on_gate = |path: &'static str| {
        let gate = gate.clone();
        move |u: &url::Url| u.as_str().starts_with(&gate) && u.path() == path
    };

    // 1. The app's address, signed out: the gate redirects to sign-in at the mock GitHub.
    browser
        .goto(&format!("{gate}/"))
        .await
        .expect("open the app");
    steps
        .wait_for("the mock GitHub user picker", |u| {
            u.as_str().starts_with(&mock_url) && u.path() == "/login/oauth/authorize"
        })
        .await;
    let text = steps.shot("mock-github-picker").await;
    assert!(text.contains("Sign in as octocat"), "{text}");

    // 2. Pick octocat: GitHub sends the browser back through the callback to the app.
    steps
        .click("//button[normalize-space()='Sign in as octocat']")
        .await;
    steps.wait_for("the app", on_gate("/")).await;
    let text = steps.shot("app-signed-in").await;
    assert!(
        text.contains("octocat") && text.contains("X-Forwarded-User"),
        "{text}"
    );

    // 3. Who am I.
    browser
        .goto(&format!("{gate}/oauth2/me"))
        .await
        .expect("open /oauth2/me");
    steps.wait_for("/oauth2/me", on_gate("/oauth2/me")).await;
    let text = steps.shot("who-am-i").await;
    for want in [
        "The Octocat",
        "octocat",
        "databio",
        "databio/core",
        "admin",
        "Session ends",
    ] {
        assert!(text.contains(want), "/oauth2/me lacks {want}: {text}");
    }
    steps.assert_fits_width("/oauth2/me").await;

    // 4. Sign out with the page's button: the signed-out page is the sign-in page.
    steps.click("//button[normalize-space()='Sign out']").await;
    steps
        .wait_for("the signed-out page", on_gate("/oauth2/sign_in"))
        .await;
    let text = steps.shot("signed-out").await;
    assert!(text.contains("Sign in with GitHub"), "{text}");
    steps.assert_fits_width("the sign-in page").await;

    // 5. Really signed out: /oauth2/me now sends the browser to sign in again.
    browser
        .goto(&format!("{gate}/oauth2/me"))
        .await
        .expect("open /oauth2/me again");
    steps
        .wait_for("the mock GitHub again", |u| {
            u.as_str().starts_with(&mock_url)
        })
        .await;
    let text = steps.shot("signed-out-me-redirects").await;
    assert!(text.contains("Sign in as octocat"), "{text}");
}
