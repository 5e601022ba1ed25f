// The whole loader (sections, then roles and rules), as `run` and `check-config` use it.
use crate::runtime::load_str;

const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

fn env_with<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
    move |name| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    }
}

fn minimal() -> String {
    format!(
        r#"
[github]
client_id = "id"
client_secret = "secret"
[session]
secrets = ["{KEY}"]
[access]
allowed_users = ["OctoCat"]
"#
    )
}

fn problems(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Vec<String> {
    match load_str(text, "test.toml", env) {
        Ok(_) => vec![],
        Err(e) => e.problems.iter().map(|p| p.to_string()).collect(),
    }
}

#[test]
fn minimal_config_loads_with_defaults() {
    let s = load_str(&minimal(), "t", &|_| None).unwrap();
    assert_eq!(s.listen.to_string(), "127.0.0.1:4180");
    assert_eq!(s.access.allowed_users, vec!["octocat"]);
    assert_eq!(s.session.ttl.as_secs(), 7 * 24 * 3600);
    assert!(!s.session.secure, "http public_url means no Secure");
    assert_eq!(s.github.scopes, vec!["read:user", "user:email"]);
    assert_eq!(s.github.api_url.as_str(), "https://api.github.com/");
}

#[test]
fn environment_fills_github_and_users() {
    let text = format!("[session]\nsecrets = [\"{KEY}\"]\n");
    let env = env_with(&[
        ("GH_CLIENT_ID", "cid"),
        ("GH_CLIENT_SECRET", "csecret"),
        ("GITHUB_USERS", "alice, bob\ncarol"),
    ]);
    let s = load_str(&text, "t", &env).unwrap();
    assert_eq!(s.github.client_id, "cid");
    assert_eq!(s.github.client_secret.expose(), "csecret");
    assert_eq!(s.access.allowed_users, vec!["alice", "bob", "carol"]);
}

#[test]
fn missing_everything_lists_every_problem_with_its_key() {
    let found = problems("", &|_| None);
    let joined = found.join("\n");
    assert!(joined.contains("github.client_id: GitHub OAuth is not configured: set github.client_id or GH_CLIENT_ID"), "{joined}");
    assert!(joined.contains("github.client_secret"), "{joined}");
    assert!(
        joined.contains("session.secrets") && joined.contains("gatehouse gen-secret"),
        "{joined}"
    );
    assert!(
        joined.contains("access.allowed_users") && joined.contains("allow_any_github_user"),
        "{joined}"
    );
    assert!(found.len() >= 4);
}

#[test]
fn bad_secret_says_how_to_make_one() {
    let text = minimal().replace(KEY, "too-short");
    let joined = problems(&text, &|_| None).join("\n");
    assert!(
        joined.contains("session.secrets[0]: is not 32 bytes of base64"),
        "{joined}"
    );
    assert!(joined.contains("gatehouse gen-secret"), "{joined}");
}

#[test]
fn org_only_allow_list_is_valid_and_adds_read_org() {
    let text = minimal().replace(
        "allowed_users = [\"OctoCat\"]",
        "allowed_orgs = [\"databio\"]",
    );
    let s = load_str(&text, "t", &|_| None).unwrap();
    let rt = crate::runtime::Runtime::new(s).unwrap();
    assert!(rt.github.scopes().contains(&"read:org".to_string()));
}

#[test]
fn allow_any_must_be_explicit() {
    let text = minimal().replace(
        "allowed_users = [\"OctoCat\"]",
        "allow_any_github_user = true",
    );
    assert!(load_str(&text, "t", &|_| None).is_ok());
}

#[test]
fn unknown_keys_and_bad_values_name_the_key() {
    let joined = problems(&(minimal() + "\n[server]\nlisten = \"nowhere\"\n"), &|_| {
        None
    })
    .join("\n");
    assert!(joined.contains("server.listen"), "{joined}");
    let joined = problems(
        &minimal().replace("[access]", "[access]\nallowed_userz = []"),
        &|_| None,
    )
    .join("\n");
    assert!(joined.contains("allowed_userz"), "{joined}");
    let joined = problems(&(minimal() + "\n[upstream]\nurl = \"ftp://x\"\n"), &|_| {
        None
    })
    .join("\n");
    assert!(joined.contains("upstream.url"), "{joined}");
}

#[test]
fn unset_variable_is_named_in_the_problem() {
    let text = minimal().replace("\"id\"", "\"${GH_APP_ID}\"");
    let joined = problems(&text, &|_| None).join("\n");
    assert!(
        joined.contains("github.client_id") && joined.contains("GH_APP_ID"),
        "{joined}"
    );
}

#[test]
fn https_public_url_makes_cookies_secure_unless_overridden() {
    let text = minimal() + "\n[server]\npublic_url = \"https://app.example.com\"\n";
    assert!(load_str(&text, "t", &|_| None).unwrap().session.secure);
    let text = text.replace("[session]", "[session]\ncookie_secure = false");
    assert!(!load_str(&text, "t", &|_| None).unwrap().session.secure);
}

#[test]
fn secrets_never_appear_in_debug_output() {
    let s = load_str(&minimal(), "t", &|_| None).unwrap();
    let shown = format!("{s:?}");
    assert!(
        !shown.contains(KEY) && !shown.contains("\"secret\""),
        "{shown}"
    );
}

const STORE_KEY: &str = "AwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwM=";

fn with_session(extra: &str) -> String {
    minimal().replace(
        &format!("secrets = [\"{KEY}\"]\n"),
        &format!("secrets = [\"{KEY}\"]\n{extra}\n"),
    )
}

#[test]
fn redis_store_loads_with_its_keys_and_from_the_environment() {
    let text = with_session(&format!(
        "store = \"redis\"\nredis_url = \"redis://:pw@10.0.0.5:6379/2\"\nstore_secrets = [\"{STORE_KEY}\"]"
    ));
    let s = load_str(&text, "t", &|_| None).unwrap();
    let store = &s.session.store;
    assert!(store.server_side);
    let redis = store.redis.as_ref().expect("redis options");
    assert_eq!(redis.url.as_deref(), Some("redis://:pw@10.0.0.5:6379/2"));
    assert_eq!(redis.timeout, std::time::Duration::from_millis(500));
    assert_eq!(redis.prefix, "gatehouse:");
    assert_eq!(store.keys.len(), 1);
    assert!(
        !format!("{redis:?}").contains("pw"),
        "the URL's password is never printed"
    );

    let env = env_with(&[
        ("GATEHOUSE_REDIS_URL", "rediss://cache.internal:6380"),
        ("GATEHOUSE_STORE_SECRET", STORE_KEY),
        ("GH_WEBHOOK_SECRET", "hook"),
    ]);
    let s = load_str(&with_session("store = \"redis\""), "t", &env).unwrap();
    assert_eq!(
        s.session.store.redis.as_ref().unwrap().url.as_deref(),
        Some("rediss://cache.internal:6380")
    );
    assert_eq!(s.session.store.keys.len(), 1);
    assert_eq!(
        s.github.webhook_secret.as_ref().map(|w| w.expose()),
        Some("hook")
    );

    let cookie = load_str(&minimal(), "t", &|_| None).unwrap();
    assert!(!cookie.session.store.server_side && cookie.session.store.redis.is_none());
    assert!(cookie.github.webhook_secret.is_none() && !cookie.github.revoke_on_sign_out);
    let memory = load_str(&with_session("store = \"memory\""), "t", &|_| None).unwrap();
    assert!(memory.session.store.server_side && memory.session.store.redis.is_none());
}

#[test]
fn store_mistakes_name_the_key_and_the_fix() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "store = \"redis\"",
            "session.redis_url",
            "GATEHOUSE_REDIS_URL",
        ),
        (
            "store = \"redis\"\nredis_url = \"redis://127.0.0.1:6379\"",
            "session.store_secrets",
            "gatehouse gen-secret",
        ),
        (
            &format!(
                "store = \"redis\"\nredis_url = \"redis://127.0.0.1\"\nstore_secrets = [\"{KEY}\"]"
            ),
            "session.store_secrets[0]: is also a session secret",
            "not the same as session.secrets",
        ),
        (
            "redis_url = \"http://:hunter2@127.0.0.1:6379\"",
            "session.redis_url",
            "redis://[:PASSWORD@]HOST:PORT",
        ),
        (
            "sentinel_urls = [\"redis://10.0.0.1:26379\"]",
            "session.sentinel_master",
            "sentinel monitor",
        ),
        (
            "sentinel_master = \"mymaster\"",
            "session.sentinel_urls",
            "list the sentinels",
        ),
        (
            "redis_cluster_urls = [\"redis://10.0.0.1:7000\", \"rediss://10.0.0.2:7000\"]",
            "session.redis_cluster_urls",
            "rediss:// for every node",
        ),
        (
            "redis_cluster_urls = [\"redis://10.0.0.1:7000\"]\nredis_url = \"redis://10.0.0.1:6379\"",
            "session.redis_cluster_urls",
            "keep only redis_cluster_urls",
        ),
        (
            "redis_cluster_urls = [\"http://10.0.0.1:7000\"]",
            "session.redis_cluster_urls[0]",
            "redis://",
        ),
        (
            "store = \"memory\"\nredis_url = \"redis://127.0.0.1:6379\"",
            "session.store",
            "store = \"redis\"",
        ),
        (
            "redis_url = \"redis://127.0.0.1:6379\"\nredis_timeout = \"0s\"",
            "session.redis_timeout",
            "500ms",
        ),
        (
            "redis_url = \"rediss://127.0.0.1:6379\"\nredis_ca_file = \"/nonexistent/ca.pem\"",
            "session.redis_ca_file",
            "PEM",
        ),
        (
            "store = \"mongo\"",
            "`mongo`",
            "`cookie`, `memory`, `redis`",
        ),
    ];
    for (extra, key, fix) in cases {
        let joined = problems(&with_session(extra), &|_| None).join("\n");
        assert!(joined.contains(key), "{extra}: expected {key} in\n{joined}");
        assert!(
            joined.contains(fix),
            "{extra}: expected the fix {fix:?} in\n{joined}"
        );
        assert!(
            !joined.contains("hunter2"),
            "a password was printed: {joined}"
        );
    }
}

/// `minimal()` plus one OIDC issuer entry (`claims` as inline TOML, or none).
fn with_oidc_issuer(issuer: &str, claims: Option<&str>) -> String {
    let claims = claims.map_or(String::new(), |c| format!("claims = {c}\n"));
    format!(
        "{}[[tokens.oidc_issuers]]\nissuer = \"{issuer}\"\naudience = \"https://app.example.com\"\njwks_url = \"https://keys.example.com/jwks\"\n{claims}",
        minimal()
    )
}

fn warnings(text: &str) -> Vec<String> {
    match load_str(text, "t", &|_| None) {
        Ok(s) => s.warnings.iter().map(|w| w.to_string()).collect(),
        Err(e) => panic!("should load: {e}"),
    }
}

#[test]
fn github_actions_issuers_must_pin_an_owner_or_repository() {
    for issuer in [
        "https://token.actions.githubusercontent.com",
        "https://token.actions.githubusercontent.com/",
        "https://token.actions.githubusercontent.com/acme-enterprise",
        "https://Token.Actions.GithubUserContent.com",
        "https://ghe.example.com/_services/token",
        "https://ghe.example.com/_services/token/",
        "https://token.actions.acme.ghe.com",
    ] {
        for claims in [
            None,
            Some(r#"{ ref = "refs/heads/main" }"#),
            Some(r#"{ repository_id = " " }"#),
        ] {
            let found = problems(&with_oidc_issuer(issuer, claims), &|_| None);
            assert_eq!(found.len(), 1, "{issuer} {claims:?}: {found:?}");
            let p = &found[0];
            assert!(
                p.starts_with("tokens.oidc_issuers[0].claims: pins no owner or repository")
                    && p.contains("any repository there can mint a token")
                    && p.contains("repository_owner_id")
                    && p.contains("registered again"),
                "{p}"
            );
        }
    }
}

#[test]
fn github_actions_issuers_pinned_by_id_load_quietly_by_name_with_a_warning() {
    let iss = "https://token.actions.githubusercontent.com";
    for claims in [
        r#"{ repository_owner_id = "123456" }"#,
        r#"{ repository_id = "789", ref = "refs/heads/main" }"#,
        r#"{ repository = "databio/pephub", repository_id = "789" }"#,
    ] {
        assert_eq!(
            warnings(&with_oidc_issuer(iss, Some(claims))),
            Vec::<String>::new(),
            "{claims}"
        );
    }
    for claims in [
        r#"{ repository = "databio/pephub" }"#,
        r#"{ repository_owner = "databio" }"#,
    ] {
        let found = warnings(&with_oidc_issuer(iss, Some(claims)));
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with("tokens.oidc_issuers[0].claims: pins `repository")
                && found[0].contains("by name only")
                && found[0].contains("repository_id"),
            "{}",
            found[0]
        );
    }
}

#[test]
fn other_issuers_without_claims_load_with_a_warning() {
    let found = warnings(&with_oidc_issuer("https://login.example.com", None));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("tokens.oidc_issuers[0].claims: is empty, so every token")
            && found[0].contains("https://login.example.com")
            && found[0].contains("fix: "),
        "{}",
        found[0]
    );
    // A GitHub-looking path on another host, or a look-alike host, is just another issuer.
    for issuer in [
        "https://example.com/token.actions.githubusercontent.com",
        "https://token.actions.githubusercontent.com.evil.example",
    ] {
        assert_eq!(
            warnings(&with_oidc_issuer(issuer, None)).len(),
            1,
            "{issuer}"
        );
    }
    assert!(warnings(&with_oidc_issuer(
        "https://login.example.com",
        Some(r#"{ tid = "t1" }"#)
    ))
    .is_empty());
    assert!(warnings(&minimal()).is_empty());
}

#[test]
fn the_default_assertion_audience_never_holds_user_info() {
    let text = format!(
        "{}\n[upstream]\nurl = \"http://app:hunter2@127.0.0.1:8080\"\n",
        minimal()
    );
    let s = load_str(&text, "t", &|_| None).unwrap();
    assert_eq!(s.assertion.audience, "http://127.0.0.1:8080");
}

#[test]
fn key_lists_take_the_singular_keys_as_aliases_but_not_both() {
    use p256::pkcs8::{EncodePrivateKey, LineEnding};
    let dir = tempfile::tempdir().unwrap();
    let pem = p256::SecretKey::from_slice(&[5u8; 32])
        .unwrap()
        .to_pkcs8_pem(LineEnding::LF)
        .unwrap();
    let path = dir.path().join("key.pem");
    std::fs::write(&path, pem.as_bytes()).unwrap();
    let missing = dir.path().join("missing.pem");
    let with = |tokens: &str, upstream: &str| {
        format!(
            "{}[tokens]\nsigning_alg = \"ES256\"\n{tokens}\n[upstream]\n{upstream}\n",
            minimal()
        )
    };
    let one = format!("signing_key_file = {path:?}");
    let many = format!("signing_key_files = [{path:?}, {path:?}]");
    let assertion_one = format!("assertion_key_file = {path:?}");
    let assertion_many = format!("assertion_key_files = [{path:?}]");
    let s = load_str(&with(&one, &assertion_one), "t.toml", &env_with(&[])).unwrap();
    assert!(matches!(&s.tokens.signing, crate::config::AccessSigning::Es256(p) if p.len() == 1));
    assert_eq!(s.assertion.key_pems.len(), 1);
    let s = load_str(&with(&many, &assertion_many), "t.toml", &env_with(&[])).unwrap();
    assert!(matches!(&s.tokens.signing, crate::config::AccessSigning::Es256(p) if p.len() == 2));
    let both = problems(&with(&format!("{one}\n{many}"), ""), &env_with(&[]));
    assert!(
        both.iter().any(|p| p
            .starts_with("tokens.signing_key_file: is set together with tokens.signing_key_files")),
        "{both:?}"
    );
    let unreadable = problems(
        &with(&format!("signing_key_files = [{path:?}, {missing:?}]"), ""),
        &env_with(&[]),
    );
    assert!(
        unreadable
            .iter()
            .any(|p| p.starts_with("tokens.signing_key_files[1]: cannot read")),
        "{unreadable:?}"
    );
    let none = problems(&with("", ""), &env_with(&[]));
    assert!(
        none.iter()
            .any(|p| p.starts_with("tokens.signing_key_files: signing_alg")),
        "{none:?}"
    );
}

#[test]
fn each_session_secret_derives_its_own_access_token_key_in_order() {
    const OTHER: &str = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";
    let keys = |secrets: &str| {
        let text = minimal().replace(&format!("secrets = [\"{KEY}\"]"), secrets);
        match load_str(&text, "t.toml", &env_with(&[]))
            .unwrap()
            .tokens
            .signing
        {
            crate::config::AccessSigning::Hs256(keys) => keys,
            other => panic!("{other:?}"),
        }
    };
    let one = keys(&format!("secrets = [\"{KEY}\"]"));
    let added = keys(&format!("secrets = [\"{KEY}\", \"{OTHER}\"]"));
    let promoted = keys(&format!("secrets = [\"{OTHER}\", \"{KEY}\"]"));
    assert_eq!(one.len(), 1);
    assert_eq!((&added[0], &added[1]), (&promoted[1], &promoted[0]));
    assert_eq!(
        one[0], added[0],
        "the first secret's key is the one earlier versions derived"
    );
    assert!(!added
        .iter()
        .any(|k| k.as_slice() == crate::config::keys::decode_key(KEY).unwrap()));
}
