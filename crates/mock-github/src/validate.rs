//! Reading the users/orgs/apps TOML: parsing and GitHub's rules, with errors that name the
//! TOML key and the fix.

use std::collections::HashSet;

use super::data::{MockApp, MockData, Org, User};

/// A problem in the users/orgs/apps TOML.
#[derive(Debug, thiserror::Error)]
pub enum MockError {
    #[error("mock GitHub users file is not valid TOML: {0}")]
    Toml(#[from] toml::de::Error),
    #[error("mock GitHub users file: `{key}` {problem}; fix: {fix}")]
    Invalid {
        key: String,
        problem: String,
        fix: String,
    },
}

/// Parse and validate the TOML text.
pub(super) fn parse(text: &str) -> Result<MockData, MockError> {
    let mut data: MockData = toml::from_str(text)?;
    validate(&mut data)?;
    Ok(data)
}

fn invalid(key: String, problem: impl Into<String>, fix: impl Into<String>) -> MockError {
    MockError::Invalid {
        key,
        problem: problem.into(),
        fix: fix.into(),
    }
}

/// GitHub's login rule: alphanumerics and single hyphens, not at either end, at most 39.
pub(super) fn is_valid_login(login: &str) -> bool {
    !login.is_empty()
        && login.len() <= 39
        && login.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !login.starts_with('-')
        && !login.ends_with('-')
        && !login.contains("--")
}

/// Check every rule and fill in derived org and team ids.
fn validate(data: &mut MockData) -> Result<(), MockError> {
    validate_apps(&data.apps)?;
    let mut logins = HashSet::new();
    let mut ids = HashSet::new();
    for (i, user) in data.users.iter().enumerate() {
        validate_user(i, user, &mut logins, &mut ids)?;
    }
    let mut next_id = 9_000_000_u64;
    let mut team_ids = HashSet::new();
    for (i, org) in data.orgs.iter_mut().enumerate() {
        let key = format!("orgs[{i}].login");
        if !is_valid_login(&org.login) {
            return Err(invalid(
                key,
                format!("`{}` is not a valid GitHub org login", org.login),
                "use letters, digits and single inner hyphens",
            ));
        }
        if !logins.insert(org.login.to_ascii_lowercase()) {
            return Err(invalid(
                key,
                format!("`{}` is already used by another user or org", org.login),
                "GitHub logins are unique across users and orgs (case-insensitive); rename one",
            ));
        }
        if org.id == 0 {
            next_id = fresh_id(next_id, &ids);
            org.id = next_id;
        }
        if !ids.insert(org.id) {
            return Err(invalid(
                format!("orgs[{i}].id"),
                format!("{} is already used", org.id),
                "give every user and org a unique id",
            ));
        }
        validate_members(i, org, &data.users)?;
        for (t, team) in org.teams.iter_mut().enumerate() {
            if team.id == 0 {
                next_id = fresh_id(next_id, &team_ids);
                team.id = next_id;
            }
            if !team_ids.insert(team.id) {
                return Err(invalid(
                    format!("orgs[{i}].teams[{t}].id"),
                    format!("{} is already used by another team", team.id),
                    "give every team a unique id or omit it",
                ));
            }
        }
        validate_teams(i, org)?;
    }
    Ok(())
}

fn fresh_id(mut candidate: u64, used: &HashSet<u64>) -> u64 {
    candidate += 1;
    while used.contains(&candidate) {
        candidate += 1;
    }
    candidate
}

fn validate_apps(apps: &[MockApp]) -> Result<(), MockError> {
    let mut seen = HashSet::new();
    for (i, app) in apps.iter().enumerate() {
        if app.client_id.trim().is_empty() {
            return Err(invalid(
                format!("apps[{i}].client_id"),
                "is empty",
                "set it to the client id the gate is configured with",
            ));
        }
        if !seen.insert(app.client_id.as_str()) {
            return Err(invalid(
                format!("apps[{i}].client_id"),
                format!("`{}` appears twice", app.client_id),
                "remove the duplicate [[apps]] entry",
            ));
        }
        if app.client_secret.is_empty() {
            return Err(invalid(
                format!("apps[{i}].client_secret"),
                "is empty",
                "set it to the secret the gate is configured with",
            ));
        }
        if let Err(problem) = super::redirect::check_callback(&app.callback_url) {
            return Err(invalid(
                format!("apps[{i}].callback_url"),
                problem,
                "use an absolute http(s) URL such as http://127.0.0.1:4180/oauth2/callback",
            ));
        }
    }
    Ok(())
}

fn validate_user(
    i: usize,
    user: &User,
    logins: &mut HashSet<String>,
    ids: &mut HashSet<u64>,
) -> Result<(), MockError> {
    let key = format!("users[{i}].login");
    if !is_valid_login(&user.login) {
        return Err(invalid(
            key,
            format!("`{}` is not a valid GitHub login", user.login),
            "use letters, digits and single inner hyphens (max 39 characters)",
        ));
    }
    if !logins.insert(user.login.to_ascii_lowercase()) {
        return Err(invalid(
            key,
            format!("`{}` appears twice", user.login),
            "GitHub logins are unique (case-insensitive); rename or remove one",
        ));
    }
    if user.id == 0 || !ids.insert(user.id) {
        return Err(invalid(
            format!("users[{i}].id"),
            format!("{} is zero or already used", user.id),
            "give every user a unique positive id",
        ));
    }
    if user.emails.iter().filter(|e| e.primary).count() > 1 {
        return Err(invalid(
            format!("users[{i}].emails"),
            "has more than one primary address",
            "mark at most one address `primary = true`",
        ));
    }
    for (e, email) in user.emails.iter().enumerate() {
        if !email.email.contains('@') {
            return Err(invalid(
                format!("users[{i}].emails[{e}].email"),
                format!("`{}` is not an email address", email.email),
                "use an address like name@example.com",
            ));
        }
    }
    Ok(())
}

fn validate_members(i: usize, org: &Org, users: &[User]) -> Result<(), MockError> {
    let mut seen = HashSet::new();
    for (m, member) in org.members.iter().enumerate() {
        let key = format!("orgs[{i}].members[{m}].login");
        if !users
            .iter()
            .any(|u| u.login.eq_ignore_ascii_case(&member.login))
        {
            return Err(invalid(
                key,
                format!("`{}` is not a user", member.login),
                format!(
                    "add a [[users]] entry with login = \"{}\" or remove the member",
                    member.login
                ),
            ));
        }
        if !seen.insert(member.login.to_ascii_lowercase()) {
            return Err(invalid(
                key,
                format!("`{}` appears twice in org `{}`", member.login, org.login),
                "list each member once",
            ));
        }
    }
    Ok(())
}

/// A team slug as GitHub derives it from the name: lowercase letters, digits, `-`, `_`, `.`.
pub(super) fn is_valid_team_slug(slug: &str) -> bool {
    !slug.is_empty()
        && slug
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'))
}

fn validate_teams(i: usize, org: &Org) -> Result<(), MockError> {
    let mut slugs = HashSet::new();
    for (t, team) in org.teams.iter().enumerate() {
        let key = format!("orgs[{i}].teams[{t}].slug");
        if !is_valid_team_slug(&team.slug) {
            return Err(invalid(
                key,
                format!("`{}` is not a valid team slug", team.slug),
                "use lowercase letters, digits and hyphens (e.g. \"core-devs\")",
            ));
        }
        if !slugs.insert(team.slug.as_str()) {
            return Err(invalid(
                key,
                format!("`{}` appears twice in org `{}`", team.slug, org.login),
                "give every team of an org its own slug",
            ));
        }
        for (m, login) in team.members.iter().enumerate() {
            if org.member(login).is_none() {
                return Err(invalid(format!("orgs[{i}].teams[{t}].members[{m}]"), format!("`{login}` is not a member of org `{}`", org.login), format!("add {{ login = \"{login}\" }} to orgs[{i}].members, or remove it from the team")));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_file_is_valid() {
        let data = parse(include_str!("demo_users.toml")).unwrap();
        assert!(data.users.iter().any(|u| u.login == "mallory"));
        assert!(data.orgs.iter().all(|o| o.id != 0));
    }

    #[test]
    fn errors_name_the_key() {
        let text = "[[users]]\nlogin = \"a\"\nid = 1\n[[orgs]]\nlogin = \"o\"\nmembers = [{ login = \"ghost\" }]\n";
        let err = parse(text).unwrap_err().to_string();
        assert!(err.contains("orgs[0].members[0].login"), "{err}");
        assert!(err.contains("add a [[users]] entry"), "{err}");
    }

    #[test]
    fn team_members_must_be_org_members() {
        let text = "[[users]]\nlogin = \"a\"\nid = 1\n[[orgs]]\nlogin = \"o\"\n[[orgs.teams]]\nslug = \"t\"\nmembers = [\"a\"]\n";
        let err = parse(text).unwrap_err().to_string();
        assert!(err.contains("orgs[0].teams[0].members[0]"), "{err}");
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let err = parse("[[users]]\nlogin = \"a\"\nid = 1\nemail = \"x@y\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("email"), "{err}");
    }

    #[test]
    fn logins() {
        assert!(is_valid_login("octo-cat9"));
        assert!(!is_valid_login("-octo"));
        assert!(!is_valid_login("octo--cat"));
        assert!(!is_valid_login("octo_cat"));
    }
}
