//! Adversarial corpus: bearer access tokens. Forged, confused, mis-addressed, expired and
//! not-yet-valid tokens against a gate signing HS256 and one signing ES256. Each must be a 401
//! and never reach the app.

use crate::common::*;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use sha2::Digest;

const HMAC: [u8; 32] = [5; 32];
const SPA: &str = "http://127.0.0.1:9/spa/callback";
const VERIFIER: &str = "a-long-enough-pkce-verifier-for-the-tests-0123456789";
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

fn config(signing: &str) -> String {
    format!(
        r#"
[[rules]]
path = "/echo/public/**"
policy = "public"

[tokens]
{signing}
client_redirect_uris = ["{SPA}"]

[limits]
auth_per_minute = 0
"#
    )
}

fn challenge(verifier: &str) -> String {
    B64.encode(sha2::Sha256::digest(verifier.as_bytes()))
}

/// A genuine token pair, through the SPA sign-in and the code exchange.
async fn genuine_pair(h: &Harness) -> Value {
    let browser = browser();
    let start = browser
        .get(h.url("/oauth2/start"))
        .query(&[
            ("client_redirect_uri", SPA),
            ("code_challenge", &challenge(VERIFIER)),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(start.status(), 302);
    let callback = consent(&browser, &location(&start), "octocat").await;
    let done = browser.get(callback).send().await.unwrap();
    let code = query_of(&location(&done))["code"].clone();
    let (status, pair) = post_json(
        h,
        "/oauth2/token",
        json!({"code": code, "client_redirect_uri": SPA, "code_verifier": VERIFIER}),
    )
    .await;
    assert_eq!(status, 200, "{pair}");
    pair
}

fn claims(h: &Harness) -> Value {
    let now = now();
    json!({
        "iss": h.gate, "aud": "gatehouse", "sub": "583231", "login": "octocat",
        "groups": [], "fam": "forged-family", "iat": now, "exp": now + 600,
    })
}

fn with(mut c: Value, f: impl FnOnce(&mut Value)) -> Value {
    f(&mut c);
    c
}

fn hs(alg: Algorithm, claims: &Value, secret: &[u8]) -> String {
    jsonwebtoken::encode(&Header::new(alg), claims, &EncodingKey::from_secret(secret)).unwrap()
}

/// A token with any header JSON and an HMAC-SHA256 signature under `secret`.
fn raw_hs256(header: &str, claims: &Value, secret: &[u8]) -> String {
    use hmac::Mac;
    let signing_input = format!("{}.{}", B64.encode(header), B64.encode(claims.to_string()));
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
    mac.update(signing_input.as_bytes());
    format!(
        "{signing_input}.{}",
        B64.encode(mac.finalize().into_bytes())
    )
}

fn unsigned(header: &str, claims: &Value, signature: &str) -> String {
    format!(
        "{}.{}.{signature}",
        B64.encode(header),
        B64.encode(claims.to_string())
    )
}

struct EcKey {
    pem: String,
    public_pem: String,
    jwk: Value,
    encoding: EncodingKey,
}

fn ec_key() -> EcKey {
    use p256::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
    let secret = p256::SecretKey::random(&mut p256::elliptic_curve::rand_core::OsRng);
    let pem = secret.to_pkcs8_pem(LineEnding::LF).unwrap().to_string();
    EcKey {
        public_pem: secret
            .public_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap(),
        jwk: serde_json::from_str(&secret.public_key().to_jwk_string()).unwrap(),
        encoding: EncodingKey::from_ec_pem(pem.as_bytes()).unwrap(),
        pem,
    }
}

fn es256(key: &EcKey, claims: &Value, header: Header) -> String {
    jsonwebtoken::encode(&header, claims, &key.encoding).unwrap()
}

#[derive(Debug)]
enum Expect {
    Refused,
    Allowed,
    /// Two `Authorization` headers: apps pick different ones, so the gate refuses the request
    /// (400) rather than judge one and forward the other.
    Ambiguous,
}

struct Case {
    name: String,
    /// Header lines (each ending in CRLF) and a path.
    lines: String,
    path: String,
    expect: Expect,
}

fn bearer(token: &str) -> String {
    format!("Authorization: Bearer {token}\r\n")
}

async fn run(h: &Harness, table: &str, cases: Vec<Case>) {
    let mut failures = Vec::new();
    for case in &cases {
        let r = raw_get_with(h, &case.path, &case.lines).await;
        let user = r.json()["headers"]["x-forwarded-user"]
            .as_str()
            .map(str::to_string);
        let authorization_upstream = r.json()["headers"]["authorization"].is_string();
        let ok = match case.expect {
            Expect::Refused => r.status == 401,
            Expect::Allowed => {
                r.status == 200 && user.as_deref() == Some("octocat") && !authorization_upstream
            }
            Expect::Ambiguous => r.status == 400 && user.is_none(),
        };
        if !ok {
            failures.push(format!(
                "[{}] wanted {:?}: status {}, user {user:?}, body {}",
                case.name,
                case.expect,
                r.status,
                r.body.chars().take(300).collect::<String>()
            ));
        }
    }
    println!(
        "table {table}: {} cases tried, {} passed",
        cases.len(),
        cases.len() - failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {} cases failed in {table}:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_and_invalid_bearer_tokens_hs256() {
    let h = Harness::start(GateOptions {
        access_extra: config(&format!("hmac_secret = \"{}\"", b64(&HMAC))),
        ..GateOptions::default()
    })
    .await;
    let pair = genuine_pair(&h).await;
    let genuine = pair["access_token"].as_str().unwrap().to_string();
    let refresh = pair["refresh_token"].as_str().unwrap().to_string();
    let parts: Vec<&str> = genuine.split('.').collect();
    let base = claims(&h);
    let now = now();
    let attacker = ec_key();
    let mut cases = Vec::new();
    let mut add = |name: &str, lines: String, expect: Expect| {
        cases.push(Case {
            name: name.into(),
            lines,
            path: "/echo/x".into(),
            expect,
        })
    };

    add("control: genuine", bearer(&genuine), Expect::Allowed);
    add(
        "control: minted with the secret",
        bearer(&hs(Algorithm::HS256, &base, &HMAC)),
        Expect::Allowed,
    );
    add(
        "control: lower-case scheme",
        format!("Authorization: bearer {genuine}\r\n"),
        Expect::Allowed,
    );

    // alg none, in every spelling, with and without a signature.
    for alg in ["none", "None", "NONE", "nOnE", ""] {
        let header = format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#);
        add(
            &format!("alg {alg:?}, empty signature"),
            bearer(&unsigned(&header, &base, "")),
            Expect::Refused,
        );
        add(
            &format!("alg {alg:?}, the genuine signature"),
            bearer(&unsigned(&header, &base, parts[2])),
            Expect::Refused,
        );
    }
    add(
        "no alg at all",
        bearer(&raw_hs256(r#"{"typ":"JWT"}"#, &base, &HMAC)),
        Expect::Refused,
    );
    add(
        "alg none with the genuine header's claims",
        bearer(&format!(
            "{}.{}.",
            B64.encode(r#"{"alg":"none"}"#),
            parts[1]
        )),
        Expect::Refused,
    );

    // Algorithm confusion and wrong keys.
    add(
        "HS384 with the secret",
        bearer(&hs(Algorithm::HS384, &base, &HMAC)),
        Expect::Refused,
    );
    add(
        "HS512 with the secret",
        bearer(&hs(Algorithm::HS512, &base, &HMAC)),
        Expect::Refused,
    );
    add(
        "ES256 with an attacker's key",
        bearer(&es256(&attacker, &base, Header::new(Algorithm::ES256))),
        Expect::Refused,
    );
    add(
        "RS256 header over an HMAC signature",
        bearer(&raw_hs256(r#"{"alg":"RS256","typ":"JWT"}"#, &base, &HMAC)),
        Expect::Refused,
    );
    add(
        "PS256 header over an HMAC signature",
        bearer(&raw_hs256(r#"{"alg":"PS256"}"#, &base, &HMAC)),
        Expect::Refused,
    );
    add(
        "alg hs256 lower case",
        bearer(&raw_hs256(r#"{"alg":"hs256"}"#, &base, &HMAC)),
        Expect::Refused,
    );
    add(
        "HS256 with another secret",
        bearer(&hs(Algorithm::HS256, &base, &[6; 32])),
        Expect::Refused,
    );
    add(
        "HS256 with an empty secret",
        bearer(&hs(Algorithm::HS256, &base, b"")),
        Expect::Refused,
    );
    add(
        "HS256 with the public URL as secret",
        bearer(&hs(Algorithm::HS256, &base, h.gate.as_bytes())),
        Expect::Refused,
    );
    add(
        "HS256 with the session key",
        bearer(&hs(Algorithm::HS256, &base, &KEY_A)),
        Expect::Refused,
    );
    add(
        "HS256 with the base64 text of the secret",
        bearer(&hs(Algorithm::HS256, &base, b64(&HMAC).as_bytes())),
        Expect::Refused,
    );
    let mut jwk_header = Header::new(Algorithm::ES256);
    jwk_header.jwk = Some(serde_json::from_value(attacker.jwk.clone()).unwrap());
    add(
        "ES256 with the attacker's key embedded (jwk)",
        bearer(&es256(&attacker, &base, jwk_header)),
        Expect::Refused,
    );
    let mut jku_header = Header::new(Algorithm::ES256);
    jku_header.jku = Some("http://127.0.0.1:9/jwks.json".into());
    add(
        "ES256 with a jku to the attacker's keys",
        bearer(&es256(&attacker, &base, jku_header)),
        Expect::Refused,
    );
    add(
        "kid path traversal, empty secret",
        bearer(&raw_hs256(
            r#"{"alg":"HS256","kid":"../../../../dev/null"}"#,
            &base,
            b"",
        )),
        Expect::Refused,
    );
    add(
        "x5u header",
        bearer(&raw_hs256(
            r#"{"alg":"HS256","x5u":"http://127.0.0.1:9/cert"}"#,
            &base,
            &[6; 32],
        )),
        Expect::Refused,
    );

    // Claims: who it is for, who made it, when it is valid.
    for (name, c) in [
        (
            "aud another service",
            with(base.clone(), |c| c["aud"] = json!("other")),
        ),
        (
            "aud a list without us",
            with(base.clone(), |c| c["aud"] = json!(["other", "more"])),
        ),
        (
            "aud missing",
            with(base.clone(), |c| {
                c.as_object_mut().unwrap().remove("aud");
            }),
        ),
        ("aud empty", with(base.clone(), |c| c["aud"] = json!(""))),
        (
            "aud upper case",
            with(base.clone(), |c| c["aud"] = json!("GATEHOUSE")),
        ),
        (
            "iss another gate",
            with(base.clone(), |c| c["iss"] = json!("https://evil.example")),
        ),
        (
            "iss with a trailing slash",
            with(base.clone(), |c| c["iss"] = json!(format!("{}/", h.gate))),
        ),
        (
            "iss missing",
            with(base.clone(), |c| {
                c.as_object_mut().unwrap().remove("iss");
            }),
        ),
        (
            "iss as a list",
            with(base.clone(), |c| c["iss"] = json!([h.gate.clone()])),
        ),
        (
            "expired a second ago",
            with(base.clone(), |c| {
                c["iat"] = json!(now - 900);
                c["exp"] = json!(now - 1);
            }),
        ),
        (
            "expired long ago",
            with(base.clone(), |c| {
                c["iat"] = json!(1);
                c["exp"] = json!(2);
            }),
        ),
        ("exp zero", with(base.clone(), |c| c["exp"] = json!(0))),
        (
            "exp missing",
            with(base.clone(), |c| {
                c.as_object_mut().unwrap().remove("exp");
            }),
        ),
        (
            "exp as a string",
            with(base.clone(), |c| c["exp"] = json!((now + 600).to_string())),
        ),
        ("exp negative", with(base.clone(), |c| c["exp"] = json!(-1))),
        (
            "not valid before an hour from now (nbf)",
            with(base.clone(), |c| c["nbf"] = json!(now + 3600)),
        ),
        (
            "not valid before a minute from now (nbf)",
            with(base.clone(), |c| c["nbf"] = json!(now + 60)),
        ),
        (
            "issued an hour in the future (iat)",
            with(base.clone(), |c| {
                c["iat"] = json!(now + 3600);
                c["exp"] = json!(now + 4200);
            }),
        ),
        (
            "sub missing",
            with(base.clone(), |c| {
                c.as_object_mut().unwrap().remove("sub");
            }),
        ),
        (
            "login missing",
            with(base.clone(), |c| {
                c.as_object_mut().unwrap().remove("login");
            }),
        ),
        (
            "fam missing",
            with(base.clone(), |c| {
                c.as_object_mut().unwrap().remove("fam");
            }),
        ),
        ("claims an array", json!([1, 2, 3])),
    ] {
        add(
            &format!("claims: {name}"),
            bearer(&hs(Algorithm::HS256, &c, &HMAC)),
            Expect::Refused,
        );
    }

    // Tampering and shape.
    let forged_payload =
        B64.encode(with(base.clone(), |c| c["login"] = json!("admin")).to_string());
    add(
        "payload swapped, signature kept",
        bearer(&format!("{}.{forged_payload}.{}", parts[0], parts[2])),
        Expect::Refused,
    );
    add(
        "signature stripped",
        bearer(&format!("{}.{}.", parts[0], parts[1])),
        Expect::Refused,
    );
    add(
        "signature of another token",
        bearer(&format!(
            "{}.{}.{}",
            parts[0],
            B64.encode(base.to_string()),
            parts[2]
        )),
        Expect::Refused,
    );
    add(
        "signature truncated",
        bearer(&genuine[..genuine.len() - 2]),
        Expect::Refused,
    );
    add(
        "padding added",
        bearer(&format!("{genuine}==")),
        Expect::Refused,
    );
    add(
        "four parts",
        bearer(&format!("{genuine}.AAAA")),
        Expect::Refused,
    );
    add(
        "two parts",
        bearer(&format!("{}.{}", parts[0], parts[1])),
        Expect::Refused,
    );
    add(
        "empty bearer",
        "Authorization: Bearer \r\n".into(),
        Expect::Refused,
    );
    add("bearer of dots", bearer(".."), Expect::Refused);
    add(
        "refresh token as a bearer",
        bearer(&refresh),
        Expect::Refused,
    );
    add(
        "session cookie as a bearer",
        bearer(&mint(KEY_A, &claims_for("octocat", 583231))),
        Expect::Refused,
    );
    add(
        "token scheme with the access token",
        format!("Authorization: token {genuine}\r\n"),
        Expect::Refused,
    );

    // Where the token is carried.
    add(
        "token as the session cookie",
        format!("Cookie: _gatehouse={genuine}\r\n"),
        Expect::Refused,
    );
    add(
        "token in X-Access-Token",
        format!("X-Access-Token: {genuine}\r\n"),
        Expect::Refused,
    );
    add(
        "token in X-Forwarded-Access-Token",
        format!("X-Forwarded-Access-Token: {genuine}\r\n"),
        Expect::Refused,
    );
    add(
        "token in Proxy-Authorization",
        format!("Proxy-Authorization: Bearer {genuine}\r\n"),
        Expect::Refused,
    );
    add(
        "forged first, genuine second",
        format!("{}{}", bearer("not-a-token"), bearer(&genuine)),
        Expect::Ambiguous,
    );
    add(
        "genuine first, forged second",
        format!(
            "{}{}",
            bearer(&genuine),
            bearer(&hs(Algorithm::HS256, &base, &[6; 32]))
        ),
        Expect::Ambiguous,
    );
    cases.push(Case {
        name: "token in the query string".into(),
        lines: String::new(),
        path: format!("/echo/x?access_token={genuine}"),
        expect: Expect::Refused,
    });

    run(&h, "bearer/HS256 gate", cases).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_and_invalid_bearer_tokens_es256() {
    let ours = ec_key();
    let keys = tempfile::tempdir().unwrap();
    let key_file = keys.path().join("signing.pem");
    std::fs::write(&key_file, &ours.pem).unwrap();
    let h = Harness::start(GateOptions {
        access_extra: config(&format!(
            "signing_alg = \"ES256\"\nsigning_key_file = {:?}",
            key_file.display().to_string()
        )),
        ..GateOptions::default()
    })
    .await;
    let pair = genuine_pair(&h).await;
    let genuine = pair["access_token"].as_str().unwrap().to_string();
    assert_eq!(
        jsonwebtoken::decode_header(&genuine).unwrap().alg,
        Algorithm::ES256
    );
    let base = claims(&h);
    let attacker = ec_key();
    let public_pem = ours.public_pem.clone();
    let mut cases = Vec::new();
    let mut add = |name: &str, token: String, expect: Expect| {
        cases.push(Case {
            name: name.into(),
            lines: bearer(&token),
            path: "/echo/x".into(),
            expect,
        })
    };
    add("control: genuine", genuine.clone(), Expect::Allowed);
    add(
        "control: minted with our key",
        es256(&ours, &base, Header::new(Algorithm::ES256)),
        Expect::Allowed,
    );
    add(
        "HS256 with the public key PEM as secret",
        hs(Algorithm::HS256, &base, public_pem.as_bytes()),
        Expect::Refused,
    );
    add(
        "HS256 with the public key PEM, no final newline",
        hs(Algorithm::HS256, &base, public_pem.trim_end().as_bytes()),
        Expect::Refused,
    );
    add(
        "HS256 with the public key's x coordinate",
        hs(
            Algorithm::HS256,
            &base,
            ours.jwk["x"].as_str().unwrap().as_bytes(),
        ),
        Expect::Refused,
    );
    add(
        "HS384 with the public key PEM",
        hs(Algorithm::HS384, &base, public_pem.as_bytes()),
        Expect::Refused,
    );
    add(
        "ES256 with an attacker's key",
        es256(&attacker, &base, Header::new(Algorithm::ES256)),
        Expect::Refused,
    );
    let mut jwk_header = Header::new(Algorithm::ES256);
    jwk_header.jwk = Some(serde_json::from_value(attacker.jwk.clone()).unwrap());
    add(
        "ES256 with the attacker's key embedded (jwk)",
        es256(&attacker, &base, jwk_header),
        Expect::Refused,
    );
    let genuine_parts: Vec<&str> = genuine.split('.').collect();
    add(
        "ES384 header over a genuine ES256 signature",
        format!(
            "{}.{}.{}",
            B64.encode(r#"{"alg":"ES384","typ":"JWT"}"#),
            genuine_parts[1],
            genuine_parts[2]
        ),
        Expect::Refused,
    );
    add(
        "alg none",
        unsigned(r#"{"alg":"none"}"#, &base, ""),
        Expect::Refused,
    );
    add(
        "expired, our key",
        es256(
            &ours,
            &with(base.clone(), |c| c["exp"] = json!(now() - 1)),
            Header::new(Algorithm::ES256),
        ),
        Expect::Refused,
    );
    add(
        "not yet valid (nbf), our key",
        es256(
            &ours,
            &with(base.clone(), |c| c["nbf"] = json!(now() + 3600)),
            Header::new(Algorithm::ES256),
        ),
        Expect::Refused,
    );
    add(
        "wrong aud, our key",
        es256(
            &ours,
            &with(base.clone(), |c| c["aud"] = json!("other")),
            Header::new(Algorithm::ES256),
        ),
        Expect::Refused,
    );
    add(
        "wrong iss, our key",
        es256(
            &ours,
            &with(base.clone(), |c| c["iss"] = json!("https://evil.example")),
            Header::new(Algorithm::ES256),
        ),
        Expect::Refused,
    );
    // The signed identity the app receives is ES256 from this gate too, but not a credential.
    let client = browser();
    h.sign_in(&client, "octocat", "/").await;
    let (_, seen) = echo(&client, h.url("/echo"), &[]).await;
    let assertion = upstream_header(&seen, "x-gatehouse-jwt-assertion")
        .unwrap()
        .to_string();
    add(
        "the upstream identity assertion as a bearer",
        assertion,
        Expect::Refused,
    );
    run(&h, "bearer/ES256 gate", cases).await;
}
