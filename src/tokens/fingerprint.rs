//! Fingerprints of the config entries that vouch for machine credentials (`[[api_keys]]`,
//! `[[tokens.oidc_issuers]]`): what a websocket opened with one is bound to, so a reload that
//! removes or changes the entry ends it. Digests of the entry (name, key hash, roles, issuer
//! rules), never of a key.

use super::TokenService;
use sha2::{Digest, Sha256};

/// SHA-256 over length-prefixed fields, so no two different entries share a fingerprint.
fn digest<'a>(fields: impl IntoIterator<Item = &'a [u8]>) -> [u8; 32] {
    let mut h = Sha256::new();
    for field in fields {
        h.update((field.len() as u64).to_be_bytes());
        h.update(field);
    }
    h.finalize().into()
}

impl TokenService {
    /// The fingerprint of API key entry `name` as configured now.
    pub fn api_key_fingerprint(&self, name: &str) -> Option<[u8; 32]> {
        let entry = self.settings.api_keys.iter().find(|e| e.name == name)?;
        let roles = (entry.roles.len() as u64).to_be_bytes();
        let head = [
            b"api_key".as_slice(),
            entry.name.as_bytes(),
            &entry.salt,
            &entry.hash,
            &roles,
        ];
        Some(digest(
            head.into_iter()
                .chain(entry.roles.iter().map(|r| r.as_bytes())),
        ))
    }

    /// The fingerprint of OIDC issuer entry `index` as configured now.
    pub fn oidc_issuer_fingerprint(&self, index: usize) -> Option<[u8; 32]> {
        let o = self.settings.oidc_issuers.get(index)?;
        let leeway = o.leeway.as_secs().to_be_bytes();
        let counts = [o.claims.len() as u64, o.roles.len() as u64].map(u64::to_be_bytes);
        let head = [
            b"oidc_issuer".as_slice(),
            o.issuer.as_bytes(),
            o.audience.as_bytes(),
            o.jwks_url.as_str().as_bytes(),
            &leeway,
            &counts[0],
            &counts[1],
        ];
        let claims = o
            .claims
            .iter()
            .flat_map(|(k, v)| [k.as_bytes(), v.as_bytes()]);
        let roles = o.roles.iter().map(|r| r.as_bytes());
        Some(digest(head.into_iter().chain(claims).chain(roles)))
    }

    /// Is an OIDC issuer entry with this fingerprint configured now (wherever in the list)?
    pub fn has_oidc_issuer(&self, fingerprint: &[u8; 32]) -> bool {
        (0..self.settings.oidc_issuers.len())
            .any(|i| self.oidc_issuer_fingerprint(i).as_ref() == Some(fingerprint))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    fn service(extra: &str) -> TokenService {
        let text = format!(
            r#"
[github]
client_id = "id"
client_secret = "secret"
[session]
secrets = ["AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="]
[access]
allowed_users = ["octocat"]
[roles.deployer]
[roles.viewer2]
{extra}
"#
        );
        let settings = crate::config::load_str(&text, "t", &|_| None).unwrap();
        let policy = crate::policy::from_config(&settings.config).unwrap();
        TokenService::new(
            &settings,
            &policy.roles,
            std::sync::Arc::new(MemoryStore::default()),
        )
        .unwrap()
    }

    fn key(name: &str, hash: &str, roles: &str) -> String {
        format!("[[api_keys]]\nname = \"{name}\"\nhash = \"{hash}\"\nroles = [{roles}]\n")
    }

    #[test]
    fn an_api_key_entry_changed_in_any_way_has_another_fingerprint() {
        let (_, hash) = super::super::api_keys::new_key();
        let (_, other) = super::super::api_keys::new_key();
        let before = service(&key("ci", &hash, "\"deployer\""));
        let fp = before.api_key_fingerprint("ci").unwrap();
        assert_eq!(before.api_key_fingerprint("nope"), None);
        let same = service(&key("ci", &hash, "\"deployer\""));
        assert_eq!(
            same.api_key_fingerprint("ci"),
            Some(fp),
            "a reload as it was"
        );
        for changed in [
            key("ci", &other, "\"deployer\""),
            key("ci", &hash, "\"deployer\", \"viewer2\""),
            key("ci", &hash, ""),
            key("cd", &hash, "\"deployer\""),
        ] {
            assert_ne!(
                service(&changed).api_key_fingerprint("ci"),
                Some(fp),
                "{changed}"
            );
        }
    }

    #[test]
    fn an_oidc_issuer_is_found_by_its_fingerprint_wherever_it_is_listed() {
        let issuer = |aud: &str| {
            format!("[[tokens.oidc_issuers]]\nissuer = \"https://ci.example\"\naudience = \"{aud}\"\njwks_url = \"https://ci.example/jwks\"\nroles = [\"deployer\"]\n")
        };
        let one = service(&issuer("a"));
        let fp = one.oidc_issuer_fingerprint(0).unwrap();
        assert!(one.has_oidc_issuer(&fp));
        let both = service(&format!("{}{}", issuer("b"), issuer("a")));
        assert!(both.has_oidc_issuer(&fp), "moved to second place");
        assert!(
            !service(&issuer("b")).has_oidc_issuer(&fp),
            "another audience"
        );
    }
}
