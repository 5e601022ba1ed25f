//! Reading the admin listener's `/metrics` the way Prometheus does.

use std::collections::BTreeMap;

/// `series → value` of every sample line of a Prometheus text exposition.
pub fn parse(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_string(), value.parse().ok()?))
        })
        .collect()
}

/// Every sample `GET {admin}/metrics` answers now (`admin`: `http://host:port`).
pub async fn scrape(admin: &str) -> BTreeMap<String, f64> {
    let r = super::plain_client()
        .get(format!("{admin}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let content_type = r.headers()["content-type"].to_str().unwrap().to_string();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    parse(&r.text().await.unwrap())
}
