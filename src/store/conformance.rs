//! The one suite every [`Store`] must pass (the memory store in its unit tests, Redis in
//! `tests/integration/session_store.rs`): checks by concern, each taking only that concern's
//! trait. Keys are random, so it can run against a Redis shared with other tests. Panics on the
//! first broken promise.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test suite: a broken promise panics"
)]

use super::{
    CodeGrant, CodeGrants, CodeTake, GithubTokenNotes, GithubTokenUse, ListRead, LoginIds,
    RefreshFamilies, RefreshFamily, RevocationList, SessionRecord, SessionRecords, SignInStates,
    Store, TokenOrigin, UserMark, UserRevocations, WebhookDeliveries,
};
use crate::claims::SessionClaims;
use crate::clock::unix_now;

fn claims(sub: &str, exp: u64) -> SessionClaims {
    SessionClaims {
        user_id: sub.into(),
        login: format!("user{sub}"),
        name: None,
        email: None,
        avatar_url: None,
        groups: vec!["org".into()],
        roles: vec![],
        iat: 1,
        exp,
        refreshed_at: 1,
        github_token: None,
        github_refresh: None,
        session_id: None,
    }
}

fn record(sub: &str, exp: u64) -> SessionRecord {
    SessionRecord {
        claims: claims(sub, exp),
        sealed_token: Some("sealed".into()),
        created_at: 1,
        last_seen: 1,
        ip: Some("127.0.0.1".into()),
        user_agent: Some("suite".into()),
    }
}

/// Run every check against `store`.
pub async fn run(store: &dyn Store) {
    let tag = crate::opaque::random_token();
    let key = |what: &str| format!("{what}-{tag}");
    let now = unix_now();
    store.ping().await.expect("ping");
    codes_work_once_and_expire(store, &key, now).await;
    families_advance_once_per_generation_and_revoke(store, &key, now).await;
    families_are_listed_by_user(store, &key, now).await;
    github_tokens_are_noted_by_user(store, &key, now).await;
    states_are_used_once(store, &key, now).await;
    sessions_live_list_touch_and_delete(store, &key, now).await;
    logins_map_to_ids(store, &key, now).await;
    marks_merge_and_version(store, &key, now).await;
    updates_never_recreate_sessions(store, &key, now).await;
    deliveries_are_remembered_once(store, &key, now).await;
}

async fn codes_work_once_and_expire(
    store: &(impl CodeGrants + ?Sized),
    key: &dyn Fn(&str) -> String,
    now: u64,
) {
    let grant = |expires_at| CodeGrant {
        session: claims("1", now + 100),
        client_redirect_uri: "http://127.0.0.1:1/cb".into(),
        code_challenge: Some("challenge".into()),
        expires_at,
        client_id: None,
    };
    store.put_code(&key("a"), &grant(now + 60)).await.unwrap();
    store.put_code(&key("b"), &grant(now + 1)).await.unwrap();
    match store.take_code(&key("a"), now).await.unwrap() {
        CodeTake::Granted(g) => {
            assert_eq!(g.code_challenge.as_deref(), Some("challenge"));
            assert_eq!(g.session.login, "user1");
        }
        other => panic!("first take: {other:?}"),
    }
    assert!(
        matches!(
            store.take_code(&key("a"), now).await.unwrap(),
            CodeTake::AlreadyUsed
        ),
        "a code works once and the second try is told so"
    );
    assert!(
        matches!(
            store.take_code(&key("b"), now + 1).await.unwrap(),
            CodeTake::Unknown
        ),
        "an expired code is unknown"
    );
    assert!(matches!(
        store.take_code(&key("c"), now).await.unwrap(),
        CodeTake::Unknown
    ));

    // Ending a user drops their codes not yet exchanged, and only theirs.
    let (user, other) = (key("coder"), key("other-coder"));
    let of = |user: &str| CodeGrant {
        session: claims(user, now + 100),
        ..grant(now + 60)
    };
    store.put_code(&key("d"), &of(&user)).await.unwrap();
    store.put_code(&key("e"), &of(&user)).await.unwrap();
    store.put_code(&key("f"), &of(&other)).await.unwrap();
    assert!(matches!(
        store.take_code(&key("e"), now).await.unwrap(),
        CodeTake::Granted(_)
    ));
    assert_eq!(
        store.drop_user_codes(&user, now).await.unwrap(),
        1,
        "the exchanged one was gone already"
    );
    assert!(matches!(
        store.take_code(&key("d"), now).await.unwrap(),
        CodeTake::Unknown
    ));
    assert!(matches!(
        store.take_code(&key("f"), now).await.unwrap(),
        CodeTake::Granted(_)
    ));
    assert_eq!(store.drop_user_codes(&user, now).await.unwrap(), 0);
}

async fn families_advance_once_per_generation_and_revoke(
    store: &(impl RefreshFamilies + ?Sized),
    key: &dyn Fn(&str) -> String,
    now: u64,
) {
    let id = key("family");
    let f = RefreshFamily {
        generation: 1,
        secret_hash: "h1".into(),
        session: claims("1", now + 100),
        expires_at: now + 100,
        mac_key: String::new(),
        origin: TokenOrigin::CodeExchange,
        issued_at: now,
        client_id: Some("cli".into()),
    };
    store.put_family(&id, &f).await.unwrap();
    let next = RefreshFamily {
        generation: 2,
        secret_hash: "h2".into(),
        ..f.clone()
    };
    assert!(store.advance_family(&id, 1, &next).await.unwrap());
    assert!(
        !store.advance_family(&id, 1, &next).await.unwrap(),
        "two refreshes with the same token cannot both win"
    );
    let got = store.family(&id, now).await.unwrap().expect("family");
    assert_eq!((got.generation, got.secret_hash.as_str()), (2, "h2"));
    assert!(
        store.family(&id, now + 100).await.unwrap().is_none(),
        "expired"
    );
    assert!(!store.advance_family(&key("none"), 1, &next).await.unwrap());
    store.revoke_family(&id, now + 100).await.unwrap();
    assert!(store.family(&id, now).await.unwrap().is_none());
    assert!(store.is_revoked(&id, now).await.unwrap());
    assert!(!store.is_revoked(&id, now + 100).await.unwrap());
    assert!(!store.is_revoked(&key("other"), now).await.unwrap());
}

async fn states_are_used_once(
    store: &(impl SignInStates + ?Sized),
    key: &dyn Fn(&str) -> String,
    now: u64,
) {
    assert!(store
        .consume_state(&key("s1"), now + 600, now)
        .await
        .unwrap());
    assert!(
        !store
            .consume_state(&key("s1"), now + 600, now)
            .await
            .unwrap(),
        "replay"
    );
    assert!(store
        .consume_state(&key("s2"), now + 600, now)
        .await
        .unwrap());
}

async fn sessions_live_list_touch_and_delete(
    store: &(impl SessionRecords + ?Sized),
    key: &dyn Fn(&str) -> String,
    now: u64,
) {
    let user = key("user");
    let other = key("other-user");
    let (k1, k2, k3) = (key("s1"), key("s2"), key("s3"));
    store
        .put_session(&k1, &record(&user, now + 100))
        .await
        .unwrap();
    store
        .put_session(&k2, &record(&user, now + 100))
        .await
        .unwrap();
    store
        .put_session(&k3, &record(&other, now + 100))
        .await
        .unwrap();

    let counted = store.count_sessions(now).await.unwrap();
    assert!(
        counted >= 3,
        "at least this suite's three sessions: {counted}"
    );
    assert!(
        store.count_sessions(now + 100).await.unwrap() <= counted - 3,
        "expired sessions are not counted"
    );
    let got = store.session(&k1, now).await.unwrap().expect("stored");
    assert_eq!(got, record(&user, now + 100), "a record reads back whole");
    assert!(
        store.session(&k1, now + 100).await.unwrap().is_none(),
        "expired"
    );
    assert!(store.session(&key("nope"), now).await.unwrap().is_none());

    store.touch_session(&k1, now + 5).await.unwrap();
    assert_eq!(
        store.session(&k1, now).await.unwrap().unwrap().last_seen,
        now + 5
    );
    store.touch_session(&key("gone"), now).await.unwrap();
    assert!(
        store.session(&key("gone"), now).await.unwrap().is_none(),
        "touch never re-creates"
    );

    let mut listed: Vec<String> = store
        .user_sessions(&user, now)
        .await
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    listed.sort();
    let mut want = vec![k1.clone(), k2.clone()];
    want.sort();
    assert_eq!(listed, want, "a user's sessions, and only theirs");

    let deleted = store.delete_session(&k2).await.unwrap().expect("was there");
    assert_eq!(deleted.user_id(), user);
    assert!(store.delete_session(&k2).await.unwrap().is_none());
    assert!(store.session(&k2, now).await.unwrap().is_none());
    assert_eq!(store.user_sessions(&user, now).await.unwrap().len(), 1);

    assert_eq!(store.delete_user_sessions(&user).await.unwrap(), 1);
    assert!(store.session(&k1, now).await.unwrap().is_none());
    assert!(store.user_sessions(&user, now).await.unwrap().is_empty());
    assert!(
        store.session(&k3, now).await.unwrap().is_some(),
        "other users keep theirs"
    );
    assert_eq!(store.delete_user_sessions(&user).await.unwrap(), 0);
    let before = store.count_sessions(now).await.unwrap();
    store.delete_session(&k3).await.unwrap();
    assert_eq!(store.count_sessions(now).await.unwrap(), before - 1);
}

async fn logins_map_to_ids(
    store: &(impl LoginIds + ?Sized),
    key: &dyn Fn(&str) -> String,
    now: u64,
) {
    let login = key("login").to_ascii_lowercase();
    assert_eq!(store.user_id_for(&login).await.unwrap(), None);
    store.remember_login(&login, "42", now + 100).await.unwrap();
    assert_eq!(
        store.user_id_for(&login).await.unwrap().as_deref(),
        Some("42")
    );
    store.remember_login(&login, "43", now + 100).await.unwrap();
    assert_eq!(
        store.user_id_for(&login).await.unwrap().as_deref(),
        Some("43"),
        "a login that changed hands maps to its new owner"
    );
}

async fn read_list(store: &(impl UserRevocations + ?Sized), now: u64) -> RevocationList {
    match store.revocation_list("", 0, now).await.unwrap() {
        ListRead::Current(list) => list,
        // A store that starts empty (Redis): the first reader makes the list.
        ListRead::Missing => store
            .republish(&RevocationList::default(), false, 0, now)
            .await
            .unwrap(),
        ListRead::Unchanged => panic!("an empty stamp is never current"),
    }
}

async fn marks_merge_and_version(
    store: &(impl UserRevocations + ?Sized),
    key: &dyn Fn(&str) -> String,
    now: u64,
) {
    let user = key("marked");
    let first = read_list(store, now).await;
    assert!(!first.epoch.is_empty() && !first.stamp.is_empty());
    assert!(
        matches!(
            store.revocation_list(&first.stamp, 0, now).await.unwrap(),
            ListRead::Unchanged
        ),
        "unchanged list"
    );
    let mark = |end_before, recheck_before| UserMark {
        end_before,
        recheck_before,
        expires_at: now + 100,
    };
    store.mark_user(&user, mark(0, now)).await.unwrap();
    let ListRead::Current(second) = store.revocation_list(&first.stamp, 0, now).await.unwrap()
    else {
        panic!("changed")
    };
    assert_ne!(first.stamp, second.stamp);
    assert_eq!(first.epoch, second.epoch, "same life of the list");
    let got = second.marks[&user];
    assert_eq!((got.end_before, got.recheck_before), (0, now));
    assert!(got.expires_at >= now + 100);
    store.mark_user(&user, mark(now, now - 1)).await.unwrap();
    let ListRead::Current(third) = store.revocation_list(&second.stamp, 0, now).await.unwrap()
    else {
        panic!("changed")
    };
    let got = third.marks[&user];
    assert_eq!(
        (got.end_before, got.recheck_before),
        (now, now),
        "marks merge, never weaken"
    );
    let far = now + 1_000_000_000;
    let later = read_list(store, far).await;
    assert!(
        !later.marks.contains_key(&user),
        "expired marks are dropped"
    );

    // The longest lifetime a reader declares is kept for later marks.
    let keep = third.keep.max(100) + 5_000;
    let ListRead::Current(raised) = store
        .revocation_list(&third.stamp, keep, now)
        .await
        .unwrap()
    else {
        panic!("raising keep is a change")
    };
    assert_eq!(raised.keep, keep);
    let short = key("short-lived");
    store.mark_user(&short, mark(now, 0)).await.unwrap();
    let list = read_list(store, now).await;
    assert!(
        list.marks[&short].expires_at >= now + keep,
        "a mark lives as long as the longest session any replica makes"
    );

    // Putting a copy back restores what the list lacks and never weakens what it has.
    let returned = key("returned");
    let mut copy = list.clone();
    copy.marks.insert(returned.clone(), mark(now - 5, 0));
    copy.marks.insert(user.clone(), mark(1, 1));
    let after = store.republish(&copy, true, 0, now).await.unwrap();
    assert_eq!(after.epoch, list.epoch);
    assert_eq!(after.floor, list.floor, "same epoch: the floor stays");
    assert_ne!(after.stamp, list.stamp);
    assert_eq!(after.marks[&returned].end_before, now - 5);
    assert_eq!(after.marks[&user].end_before, now);
    // A copy of another epoch that vouches may lower the floor; one that does not, cannot.
    let other = RevocationList {
        epoch: key("older-epoch"),
        floor: after.floor.saturating_sub(1),
        ..RevocationList::default()
    };
    let kept = store.republish(&other, false, 0, now).await.unwrap();
    assert_eq!(kept.floor, after.floor);
    let lowered = store.republish(&other, true, 0, now).await.unwrap();
    assert_eq!(lowered.floor, other.floor);
}

async fn updates_never_recreate_sessions(
    store: &(impl SessionRecords + ?Sized),
    key: &dyn Fn(&str) -> String,
    now: u64,
) {
    let (user, k) = (key("updated-user"), key("updated"));
    assert!(
        !store
            .update_session(&k, &record(&user, now + 100))
            .await
            .unwrap(),
        "nothing to update"
    );
    assert!(store.session(&k, now).await.unwrap().is_none());
    store
        .put_session(&k, &record(&user, now + 100))
        .await
        .unwrap();
    let mut changed = record(&user, now + 50);
    changed.claims.groups = vec!["other".into()];
    changed.last_seen = 7;
    assert!(store.update_session(&k, &changed).await.unwrap());
    assert_eq!(store.session(&k, now).await.unwrap(), Some(changed.clone()));
    assert_eq!(store.user_sessions(&user, now).await.unwrap().len(), 1);
    store.delete_session(&k).await.unwrap();
    assert!(
        !store.update_session(&k, &changed).await.unwrap(),
        "a deleted session stays deleted"
    );
    assert!(store.session(&k, now).await.unwrap().is_none());
    assert!(store.user_sessions(&user, now).await.unwrap().is_empty());
}

async fn families_are_listed_by_user(
    store: &(impl RefreshFamilies + ?Sized),
    key: &dyn Fn(&str) -> String,
    now: u64,
) {
    let (user, other) = (key("fam-user"), key("fam-other"));
    let family = |sub: &str, expires_at| RefreshFamily {
        generation: 1,
        secret_hash: "h1".into(),
        session: claims(sub, now + 100),
        expires_at,
        mac_key: String::new(),
        origin: TokenOrigin::Pat,
        issued_at: now,
        client_id: None,
    };
    let (f1, f2, f3) = (key("uf1"), key("uf2"), key("uf3"));
    store
        .put_family(&f1, &family(&user, now + 100))
        .await
        .unwrap();
    store
        .put_family(&f2, &family(&user, now + 1))
        .await
        .unwrap();
    store
        .put_family(&f3, &family(&other, now + 100))
        .await
        .unwrap();
    let listed = |at: u64| {
        let user = user.clone();
        async move {
            let mut got: Vec<(String, u64, TokenOrigin)> = store
                .user_families(&user, at)
                .await
                .unwrap()
                .into_iter()
                .map(|(id, f)| (id, f.generation, f.origin))
                .collect();
            got.sort_by(|a, b| a.0.cmp(&b.0));
            got
        }
    };
    let mut both = vec![
        (f1.clone(), 1, TokenOrigin::Pat),
        (f2.clone(), 1, TokenOrigin::Pat),
    ];
    both.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        listed(now).await,
        both,
        "a user's families, and only theirs"
    );
    assert_eq!(
        listed(now + 1).await,
        vec![(f1.clone(), 1, TokenOrigin::Pat)],
        "expired families are not listed"
    );
    let next = RefreshFamily {
        generation: 2,
        ..family(&user, now + 100)
    };
    assert!(store.advance_family(&f1, 1, &next).await.unwrap());
    store.revoke_family(&f2, now + 100).await.unwrap();
    assert_eq!(
        listed(now).await,
        vec![(f1.clone(), 2, TokenOrigin::Pat)],
        "a refresh keeps the family listed; a revoked one is gone"
    );
    store.revoke_family(&f1, now + 100).await.unwrap();
    assert!(listed(now).await.is_empty());
    assert_eq!(store.user_families(&other, now).await.unwrap().len(), 1);
    assert!(store
        .user_families(&key("nobody"), now)
        .await
        .unwrap()
        .is_empty());
    store.revoke_family(&f3, now + 100).await.unwrap();
}

async fn github_tokens_are_noted_by_user(
    store: &(impl GithubTokenNotes + ?Sized),
    key: &dyn Fn(&str) -> String,
    now: u64,
) {
    let (user, other) = (key("gh-user"), key("gh-other"));
    let seen = |checked_at, expires_at| GithubTokenUse {
        checked_at,
        expires_at,
    };
    store
        .note_github_token(&user, "t1", seen(now, now + 100))
        .await
        .unwrap();
    store
        .note_github_token(&user, "t2", seen(now, now + 1))
        .await
        .unwrap();
    store
        .note_github_token(&other, "t3", seen(now, now + 100))
        .await
        .unwrap();
    let listed = |at: u64| {
        let user = user.clone();
        async move {
            let mut got = store.user_github_tokens(&user, at).await.unwrap();
            got.sort_by(|a, b| a.0.cmp(&b.0));
            got
        }
    };
    assert_eq!(
        listed(now).await,
        vec![
            ("t1".to_string(), seen(now, now + 100)),
            ("t2".to_string(), seen(now, now + 1))
        ],
        "a user's tokens, and only theirs"
    );
    assert_eq!(
        listed(now + 1).await,
        vec![("t1".to_string(), seen(now, now + 100))],
        "expired notes are not listed"
    );
    store
        .note_github_token(&user, "t1", seen(now + 5, now + 105))
        .await
        .unwrap();
    assert_eq!(
        listed(now + 1).await,
        vec![("t1".to_string(), seen(now + 5, now + 105))],
        "a later note of the same token replaces it"
    );
    assert!(store
        .user_github_tokens(&key("nobody"), now)
        .await
        .unwrap()
        .is_empty());
}

async fn deliveries_are_remembered_once(
    store: &(impl WebhookDeliveries + ?Sized),
    key: &dyn Fn(&str) -> String,
    now: u64,
) {
    let id = key("delivery");
    assert!(store.remember_delivery(&id, now + 600, now).await.unwrap());
    assert!(
        !store.remember_delivery(&id, now + 600, now).await.unwrap(),
        "a repeat"
    );
    assert!(store
        .remember_delivery(&key("other-delivery"), now + 600, now)
        .await
        .unwrap());
    store.forget_delivery(&id).await.unwrap();
    assert!(
        store.remember_delivery(&id, now + 600, now).await.unwrap(),
        "forgotten: remembered anew"
    );
    store.forget_delivery(&key("never-seen")).await.unwrap();
}
