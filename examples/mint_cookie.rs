//! Mint benchmark credentials for a config, offline: a session cookie (sealed with the config's
//! first session secret; with `session.store = "redis"` the session record is written to that
//! Redis, exactly as a sign-in would) and a Gatehouse access token (signed with the config's
//! `[tokens]` key). No GitHub round-trip; `bench/run.sh` uses this.
//!
//! ```text
//! cargo run --example mint_cookie -- CONFIG LOGIN USER_ID
//! ```
//!
//! Prints two shell-assignable lines: `COOKIE=<name>=<value>` and `BEARER=<jwt>`.

use gatehouse::clock::unix_now;
use gatehouse::session::SessionClaims;
use gatehouse::tokens::AccessTokens;
use std::process::ExitCode;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [config, login, id] = args.as_slice() else {
        eprintln!("usage: mint_cookie CONFIG LOGIN USER_ID");
        return ExitCode::from(2);
    };
    let settings = match gatehouse::config::load_file(config.as_ref()) {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let now = unix_now();
    let claims = SessionClaims {
        user_id: id.clone(),
        login: login.clone(),
        name: None,
        email: Some(format!("{login}@example.com")),
        avatar_url: None,
        groups: vec![],
        roles: vec![],
        iat: now,
        exp: now + settings.session.ttl.as_secs(),
        refreshed_at: now,
        github_token: None,
        github_refresh: None,
        session_id: None,
    };
    let issuer = settings
        .public_url
        .as_str()
        .trim_end_matches('/')
        .to_string();
    let tokens = AccessTokens::new(
        &settings.tokens.signing,
        &issuer,
        settings.tokens.access_ttl.as_secs(),
    );
    let rt = match gatehouse::runtime::Runtime::new(settings) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    // The same write a sign-in makes (a record in the store when sessions are server-side).
    let request = http::Request::new(()).into_parts().0;
    let cookie = match rt.sessions.create(&claims, &request, None, now).await {
        Ok(set_cookies) => set_cookies
            .first()
            .and_then(|c| c.split(';').next())
            .map(str::to_string),
        Err(e) => {
            eprintln!("could not write the session: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (Some(cookie), Ok(Ok(bearer))) = (cookie, tokens.map(|t| t.issue(&claims, "bench", now)))
    else {
        eprintln!("could not mint the credentials");
        return ExitCode::FAILURE;
    };
    println!("COOKIE={cookie}");
    println!("BEARER={bearer}");
    ExitCode::SUCCESS
}
