//! Test-control endpoints under `/_mock/`. NOT part of GitHub: they let tests change the
//! world while the gate runs (revoke a membership, make GitHub fail, count calls).
//!
//! - `POST   /_mock/orgs/{org}[?name=Display+Name]` create an org (GitHub login rules; logins
//!   are unique across users and orgs) → 200 `{"login", "id", "name"}`; 409 if the login is taken
//! - `POST   /_mock/orgs/{org}/teams/{team}[?name=Display+Name]` create a team (`team` is the
//!   slug) in an existing org → 200 `{"org", "slug", "id", "name"}`; 409 if it exists, 404 if no org
//! - `POST   /_mock/orgs/{org}/members/{login}?state=active|pending&role=member|admin`
//! - `DELETE /_mock/orgs/{org}/members/{login}` (also removes the user from the org's teams)
//! - `POST   /_mock/orgs/{org}/teams/{team}/members/{login}` (user must be an org member)
//! - `DELETE /_mock/orgs/{org}/teams/{team}/members/{login}`
//! - `POST   /_mock/users/{login}/tokens?scopes=read:user,user:email,read:org` a personal
//!   access token (`ghp_…`) for the user, as GitHub's settings page would make one
//! - `POST   /_mock/fail?status=502[&oauth=true]` every REST call (and with `oauth=true` the
//!   token endpoint too) answers that status; `status=0` heals. Other faults with `mode=`:
//!   `mode=status&status=500`, `mode=slow&delay_ms=5000` (wait, then answer normally),
//!   `mode=late&delay_ms=5000` (answer as things stand on arrival, sent that much later),
//!   `mode=malformed` (200 with a cut-off JSON body), `mode=drop` (the connection closes
//!   before a complete response), `mode=truncate` (headers and part of the body, then the
//!   connection is cut), `mode=off` (heal). `scope=rest|oauth|all` picks the REST API,
//!   the OAuth token endpoint or both (default `rest`; `oauth=true` means `all`)
//!   `mode=rate_limit&limit=primary|secondary[&status=403|429][&wait=N]` GitHub's rate
//!   limit on every REST call (primary: `x-ratelimit-remaining: 0`, reset in `wait` s,
//!   default 60; secondary: `retry-after: wait` when given, none otherwise; status default 403),
//!   `mode=authorize_error&error=redirect_uri_mismatch|application_suspended|access_denied`
//!   the authorize step sends that error to the app's callback
//! - `POST   /_mock/orgs/{org}/policy?oauth_app_restrictions=true|false&saml_sso=true|false`
//!   an org's settings (omitted ones are left as they are)
//! - `POST   /_mock/orgs/{org}/approved_apps/{client_id}` an owner approves an OAuth app for an
//!   org with OAuth App access restrictions; `DELETE` takes the approval back
//! - `POST   /_mock/orgs/{org}/installations/{client_id}` install a GitHub App (a client id
//!   starting with `Iv`) on the org with Members: read, so its user tokens see the org's
//!   memberships; `DELETE` uninstalls it
//! - `POST   /_mock/clock?advance=SECS` move the mock's clock ahead: GitHub App user tokens
//!   (8 hours) and refresh tokens (about 6 months) expire by it
//! - `POST   /_mock/users/{login}?id=N[&name=..&email=..&verified=false]` create a user with
//!   that primary email (default `{login}@example.com`, verified) → 200 `{"login", "id"}`;
//!   409 if the login or id is taken
//! - `POST   /_mock/codes/expire` expire every outstanding authorization code now
//! - `GET    /_mock/stats` → `{"api_requests": N, "tokens": N, "codes": N}`

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::data::{Email, Member, MemberState, Org, OrgRole, Team, User};
use super::scopes::Scopes;
use super::state::{FailMode, FailScope, Failure, Shared, TokenGrant};
use super::validate::{is_valid_login, is_valid_team_slug};

pub(super) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/_mock/orgs/{org}", post(create_org))
        .route("/_mock/orgs/{org}/teams/{team}", post(create_team))
        .route(
            "/_mock/orgs/{org}/members/{login}",
            post(add_member).delete(remove_member),
        )
        .route(
            "/_mock/orgs/{org}/teams/{team}/members/{login}",
            post(add_team_member).delete(remove_team_member),
        )
        .route("/_mock/users/{login}", post(create_user))
        .route("/_mock/users/{login}/tokens", post(personal_token))
        .route("/_mock/orgs/{org}/policy", post(org_policy))
        .route(
            "/_mock/orgs/{org}/approved_apps/{client_id}",
            post(approve_app).delete(unapprove_app),
        )
        .route(
            "/_mock/orgs/{org}/installations/{client_id}",
            post(install_app).delete(uninstall_app),
        )
        .route("/_mock/clock", post(advance_clock))
        .route("/_mock/fail", post(fail))
        .route("/_mock/codes/expire", post(expire_codes))
        .route("/_mock/stats", get(stats))
}

fn problem(status: StatusCode, msg: String) -> Response {
    (status, Json(json!({ "message": msg }))).into_response()
}

#[derive(Deserialize)]
struct NameQuery {
    name: Option<String>,
}

async fn create_org(
    State(shared): State<Arc<Shared>>,
    Path(org): Path<String>,
    Query(q): Query<NameQuery>,
) -> Response {
    if !is_valid_login(&org) {
        return problem(
            StatusCode::BAD_REQUEST,
            format!("`{org}` is not a valid GitHub org login; use letters, digits and single inner hyphens (max 39 characters)"),
        );
    }
    let mut st = shared.lock();
    if let Some(existing) = st.org(&org) {
        return problem(
            StatusCode::CONFLICT,
            format!("org `{}` already exists", existing.login),
        );
    }
    if let Some(user) = st.user_by_login(&org) {
        return problem(
            StatusCode::CONFLICT,
            format!(
                "`{}` is a user; GitHub logins are unique across users and orgs",
                user.login
            ),
        );
    }
    // Above every id in use, users and orgs share one id space as on GitHub.
    let id = st
        .users
        .iter()
        .map(|u| u.id)
        .chain(st.orgs.iter().map(|o| o.id))
        .max()
        .unwrap_or(0)
        .max(9_000_000)
        + 1;
    st.orgs.push(Org {
        login: org.clone(),
        id,
        name: q.name.clone(),
        description: None,
        members: Vec::new(),
        teams: Vec::new(),
        oauth_app_restrictions: false,
        approved_apps: Vec::new(),
        saml_sso: false,
        installed_apps: Vec::new(),
    });
    Json(json!({ "login": org, "id": id, "name": q.name })).into_response()
}

async fn create_team(
    State(shared): State<Arc<Shared>>,
    Path((org, team)): Path<(String, String)>,
    Query(q): Query<NameQuery>,
) -> Response {
    if !is_valid_team_slug(&team) {
        return problem(
            StatusCode::BAD_REQUEST,
            format!("`{team}` is not a valid team slug; use lowercase letters, digits and hyphens (e.g. \"core-devs\")"),
        );
    }
    let mut st = shared.lock();
    // Team ids are unique across all orgs.
    let id = st
        .orgs
        .iter()
        .flat_map(|o| o.teams.iter().map(|t| t.id))
        .max()
        .unwrap_or(0)
        .max(9_000_000)
        + 1;
    let Some(org_entry) = st.org_mut(&org) else {
        return problem(
            StatusCode::NOT_FOUND,
            format!("no org `{org}`; create it with POST /_mock/orgs/{org}"),
        );
    };
    if org_entry.team(&team).is_some() {
        return problem(
            StatusCode::CONFLICT,
            format!("team `{team}` already exists in `{}`", org_entry.login),
        );
    }
    org_entry.teams.push(Team {
        slug: team.clone(),
        name: q.name.clone(),
        id,
        description: None,
        members: Vec::new(),
    });
    Json(json!({ "org": org_entry.login, "slug": team, "id": id, "name": q.name.as_deref().unwrap_or(&team) }))
        .into_response()
}

#[derive(Deserialize)]
struct MemberQuery {
    state: Option<String>,
    role: Option<String>,
}

async fn add_member(
    State(shared): State<Arc<Shared>>,
    Path((org, login)): Path<(String, String)>,
    Query(q): Query<MemberQuery>,
) -> Response {
    let state = q
        .state
        .as_deref()
        .map_or(Some(MemberState::Active), MemberState::parse);
    let role = q
        .role
        .as_deref()
        .map_or(Some(OrgRole::Member), OrgRole::parse);
    let (Some(state), Some(role)) = (state, role) else {
        return problem(
            StatusCode::BAD_REQUEST,
            "use state=active|pending and role=member|admin".into(),
        );
    };
    let mut st = shared.lock();
    let Some(login) = st.user_by_login(&login).map(|u| u.login.clone()) else {
        return problem(
            StatusCode::NOT_FOUND,
            format!("no user `{login}`; add it to the users file"),
        );
    };
    let Some(org_entry) = st.org_mut(&org) else {
        return problem(
            StatusCode::NOT_FOUND,
            format!("no org `{org}`; add it to the users file"),
        );
    };
    org_entry
        .members
        .retain(|m| !m.login.eq_ignore_ascii_case(&login));
    org_entry.members.push(Member {
        login: login.clone(),
        state,
        role,
    });
    Json(json!({ "org": org_entry.login, "login": login, "state": state.as_str(), "role": role.as_str() }))
        .into_response()
}

async fn remove_member(
    State(shared): State<Arc<Shared>>,
    Path((org, login)): Path<(String, String)>,
) -> Response {
    let mut st = shared.lock();
    let Some(org_entry) = st.org_mut(&org) else {
        return problem(StatusCode::NOT_FOUND, format!("no org `{org}`"));
    };
    if org_entry.member(&login).is_none() {
        return problem(
            StatusCode::NOT_FOUND,
            format!("`{login}` is not a member of `{org}`"),
        );
    }
    org_entry
        .members
        .retain(|m| !m.login.eq_ignore_ascii_case(&login));
    for team in &mut org_entry.teams {
        team.members.retain(|m| !m.eq_ignore_ascii_case(&login));
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn add_team_member(
    State(shared): State<Arc<Shared>>,
    Path((org, team, login)): Path<(String, String, String)>,
) -> Response {
    let mut st = shared.lock();
    let Some(org_entry) = st.org_mut(&org) else {
        return problem(StatusCode::NOT_FOUND, format!("no org `{org}`"));
    };
    let Some(login) = org_entry.member(&login).map(|m| m.login.clone()) else {
        return problem(
            StatusCode::NOT_FOUND,
            format!("`{login}` is not a member of `{org}`; add it first"),
        );
    };
    let Some(team_entry) = org_entry
        .teams
        .iter_mut()
        .find(|t| t.slug.eq_ignore_ascii_case(&team))
    else {
        return problem(
            StatusCode::NOT_FOUND,
            format!("no team `{team}` in `{org}`"),
        );
    };
    if !team_entry
        .members
        .iter()
        .any(|m| m.eq_ignore_ascii_case(&login))
    {
        team_entry.members.push(login);
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn remove_team_member(
    State(shared): State<Arc<Shared>>,
    Path((org, team, login)): Path<(String, String, String)>,
) -> Response {
    let mut st = shared.lock();
    let team_entry = st.org_mut(&org).and_then(|o| {
        o.teams
            .iter_mut()
            .find(|t| t.slug.eq_ignore_ascii_case(&team))
    });
    let Some(team_entry) = team_entry else {
        return problem(
            StatusCode::NOT_FOUND,
            format!("no team `{team}` in `{org}`"),
        );
    };
    team_entry
        .members
        .retain(|m| !m.eq_ignore_ascii_case(&login));
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize)]
struct PolicyQuery {
    oauth_app_restrictions: Option<bool>,
    saml_sso: Option<bool>,
}

async fn org_policy(
    State(shared): State<Arc<Shared>>,
    Path(org): Path<String>,
    Query(q): Query<PolicyQuery>,
) -> Response {
    let mut st = shared.lock();
    let Some(org_entry) = st.org_mut(&org) else {
        return problem(StatusCode::NOT_FOUND, format!("no org `{org}`"));
    };
    if let Some(on) = q.oauth_app_restrictions {
        org_entry.oauth_app_restrictions = on;
    }
    if let Some(on) = q.saml_sso {
        org_entry.saml_sso = on;
    }
    Json(json!({
        "org": org_entry.login,
        "oauth_app_restrictions": org_entry.oauth_app_restrictions,
        "approved_apps": org_entry.approved_apps,
        "saml_sso": org_entry.saml_sso,
    }))
    .into_response()
}

async fn approve_app(
    State(shared): State<Arc<Shared>>,
    Path((org, client_id)): Path<(String, String)>,
) -> Response {
    let mut st = shared.lock();
    let Some(org_entry) = st.org_mut(&org) else {
        return problem(StatusCode::NOT_FOUND, format!("no org `{org}`"));
    };
    if !org_entry.approved_apps.contains(&client_id) {
        org_entry.approved_apps.push(client_id);
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn unapprove_app(
    State(shared): State<Arc<Shared>>,
    Path((org, client_id)): Path<(String, String)>,
) -> Response {
    let mut st = shared.lock();
    let Some(org_entry) = st.org_mut(&org) else {
        return problem(StatusCode::NOT_FOUND, format!("no org `{org}`"));
    };
    org_entry.approved_apps.retain(|c| *c != client_id);
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize)]
struct FailQuery {
    status: Option<u16>,
    #[serde(default)]
    oauth: bool,
    mode: Option<String>,
    delay_ms: Option<u64>,
    scope: Option<String>,
    limit: Option<String>,
    wait: Option<u64>,
    error: Option<String>,
}

/// The errors `mode=authorize_error` can send, as GitHub spells them.
const AUTHORIZE_ERRORS: [&str; 3] = [
    "redirect_uri_mismatch",
    "application_suspended",
    "access_denied",
];

/// The longest `mode=slow` / `mode=late` delay: ten minutes.
const MAX_DELAY_MS: u64 = 600_000;

const FAIL_USAGE: &str = "use ?status=100..599 (status=0 heals), or mode=status&status=N, \
     mode=slow&delay_ms=N, mode=late&delay_ms=N, mode=malformed, mode=drop, mode=truncate, \
     mode=rate_limit&limit=primary|secondary[&status=403|429][&wait=N], \
     mode=authorize_error&error=redirect_uri_mismatch|application_suspended|access_denied or \
     mode=off; scope=rest|oauth|all (default rest; oauth=true means all)";

async fn fail(State(shared): State<Arc<Shared>>, Query(q): Query<FailQuery>) -> Response {
    let scope = match (q.scope.as_deref(), q.oauth) {
        _ if q.mode.as_deref() == Some("authorize_error") => FailScope::Authorize,
        (None, false) | (Some("rest"), false) => FailScope::Rest,
        (None, true) | (Some("all"), _) => FailScope::All,
        (Some("oauth"), _) => FailScope::OAuth,
        _ => return problem(StatusCode::BAD_REQUEST, FAIL_USAGE.into()),
    };
    let mode = match (q.mode.as_deref(), q.status, q.delay_ms) {
        (None | Some("status"), Some(0), _) | (Some("off"), _, _) => None,
        (None | Some("status"), Some(status @ 100..=599), _) => Some(FailMode::Status(status)),
        (Some("slow"), _, Some(ms @ 0..=MAX_DELAY_MS)) => {
            Some(FailMode::Slow(Duration::from_millis(ms)))
        }
        (Some("late"), _, Some(ms @ 0..=MAX_DELAY_MS)) => {
            Some(FailMode::Late(Duration::from_millis(ms)))
        }
        (Some("malformed"), _, _) => Some(FailMode::Malformed),
        (Some("drop"), _, _) => Some(FailMode::Drop),
        (Some("truncate"), _, _) => Some(FailMode::Truncate),
        (Some("rate_limit"), None | Some(403 | 429), _) => Some(FailMode::RateLimit {
            secondary: match q.limit.as_deref() {
                None | Some("primary") => false,
                Some("secondary") => true,
                Some(_) => return problem(StatusCode::BAD_REQUEST, FAIL_USAGE.into()),
            },
            status: q.status.unwrap_or(403),
            wait: q.wait,
        }),
        (Some("authorize_error"), _, _) => {
            match AUTHORIZE_ERRORS
                .into_iter()
                .find(|e| Some(*e) == q.error.as_deref())
            {
                Some(error) => Some(FailMode::AuthorizeError(error)),
                None => return problem(StatusCode::BAD_REQUEST, FAIL_USAGE.into()),
            }
        }
        _ => return problem(StatusCode::BAD_REQUEST, FAIL_USAGE.into()),
    };
    let failure = mode.map(|mode| Failure { mode, scope });
    shared.lock().failure = failure;
    let mode_name = match mode {
        None => "off",
        Some(FailMode::Status(_)) => "status",
        Some(FailMode::Slow(_)) => "slow",
        Some(FailMode::Late(_)) => "late",
        Some(FailMode::Malformed) => "malformed",
        Some(FailMode::Drop) => "drop",
        Some(FailMode::Truncate) => "truncate",
        Some(FailMode::RateLimit { .. }) => "rate_limit",
        Some(FailMode::AuthorizeError(_)) => "authorize_error",
    };
    let scope_name = match scope {
        FailScope::Rest => "rest",
        FailScope::OAuth => "oauth",
        FailScope::All => "all",
        FailScope::Authorize => "authorize",
    };
    Json(json!({
        "status": q.status,
        "oauth": failure.is_some_and(|f| f.hits_oauth()),
        "mode": mode_name,
        "delay_ms": q.delay_ms.filter(|_| matches!(mode_name, "slow" | "late")),
        "scope": scope_name,
    }))
    .into_response()
}

async fn install_app(
    State(shared): State<Arc<Shared>>,
    Path((org, client_id)): Path<(String, String)>,
) -> Response {
    let mut st = shared.lock();
    let Some(org_entry) = st.org_mut(&org) else {
        return problem(StatusCode::NOT_FOUND, format!("no org `{org}`"));
    };
    if !org_entry.installed_apps.contains(&client_id) {
        org_entry.installed_apps.push(client_id);
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn uninstall_app(
    State(shared): State<Arc<Shared>>,
    Path((org, client_id)): Path<(String, String)>,
) -> Response {
    let mut st = shared.lock();
    let Some(org_entry) = st.org_mut(&org) else {
        return problem(StatusCode::NOT_FOUND, format!("no org `{org}`"));
    };
    org_entry.installed_apps.retain(|c| *c != client_id);
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize)]
struct ClockQuery {
    advance: u64,
}

async fn advance_clock(State(shared): State<Arc<Shared>>, Query(q): Query<ClockQuery>) -> Response {
    let mut st = shared.lock();
    st.clock_offset = st.clock_offset.saturating_add(q.advance);
    Json(json!({ "now": st.now() })).into_response()
}

async fn expire_codes(State(shared): State<Arc<Shared>>) -> Response {
    let now = Instant::now();
    for grant in shared.lock().codes.values_mut() {
        grant.expires = now;
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn stats(State(shared): State<Arc<Shared>>) -> Json<serde_json::Value> {
    let (tokens, codes) = {
        let st = shared.lock();
        (st.tokens.len(), st.codes.len())
    };
    Json(json!({
        "api_requests": shared.api_requests.load(Ordering::Relaxed),
        "tokens": tokens,
        "codes": codes,
    }))
}

#[derive(Deserialize)]
struct TokenQuery {
    scopes: Option<String>,
}

async fn personal_token(
    State(shared): State<Arc<Shared>>,
    Path(login): Path<String>,
    Query(q): Query<TokenQuery>,
) -> Response {
    let mut st = shared.lock();
    let Some(user_id) = st.user_by_login(&login).map(|u| u.id) else {
        return problem(StatusCode::NOT_FOUND, format!("no user `{login}`"));
    };
    let scopes = Scopes::parse(Some(
        q.scopes
            .as_deref()
            .unwrap_or("read:user,user:email,read:org"),
    ));
    let token = st.issue_token(TokenGrant {
        client_id: String::new(),
        user_id,
        scopes,
        sso_orgs: Vec::new(),
        expires_at: None,
    });
    let token = format!("ghp_{}", token.trim_start_matches("gho_"));
    // Re-key under the PAT prefix GitHub uses for personal tokens.
    if let Some(grant) = st
        .tokens
        .remove(&format!("gho_{}", token.trim_start_matches("ghp_")))
    {
        st.tokens.insert(token.clone(), grant);
    }
    Json(json!({ "token": token, "login": login })).into_response()
}

#[derive(Deserialize)]
struct UserQuery {
    id: Option<u64>,
    name: Option<String>,
    email: Option<String>,
    verified: Option<bool>,
}

async fn create_user(
    State(shared): State<Arc<Shared>>,
    Path(login): Path<String>,
    Query(q): Query<UserQuery>,
) -> Response {
    if !is_valid_login(&login) {
        return problem(
            StatusCode::BAD_REQUEST,
            format!("`{login}` is not a valid GitHub login; use letters, digits and single inner hyphens (max 39 characters)"),
        );
    }
    let Some(id) = q.id.filter(|id| *id > 0) else {
        return problem(
            StatusCode::BAD_REQUEST,
            "give the user a numeric id: ?id=N (N > 0)".into(),
        );
    };
    let mut st = shared.lock();
    let taken = st.user_by_login(&login).is_some() || st.org(&login).is_some();
    if taken {
        return problem(
            StatusCode::CONFLICT,
            format!("the login `{login}` is taken; GitHub logins are unique across users and orgs"),
        );
    }
    if st.users.iter().any(|u| u.id == id) || st.orgs.iter().any(|o| o.id == id) {
        return problem(StatusCode::CONFLICT, format!("the id {id} is taken"));
    }
    let email = q
        .email
        .clone()
        .unwrap_or_else(|| format!("{}@example.com", login.to_ascii_lowercase()));
    st.users.push(User {
        login: login.clone(),
        id,
        name: q.name.clone(),
        avatar_url: None,
        public_email: None,
        site_admin: false,
        emails: vec![Email {
            email,
            primary: true,
            verified: q.verified.unwrap_or(true),
            visibility: None,
        }],
    });
    Json(json!({ "login": login, "id": id })).into_response()
}
