//! Bodies stream through the gate both ways: a 100 MB upload and download must arrive intact
//! without the gate holding them in memory.

use crate::common::*;
use futures_util::StreamExt;
use sha2::{Digest, Sha256};

const SIZE: usize = 100 * 1024 * 1024;
const CHUNK: usize = 256 * 1024;

/// Peak resident set of a process, in KiB (Linux `VmHWM`).
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn chunk(i: usize) -> Vec<u8> {
    (0..CHUNK).map(|j| ((i * 31 + j) % 253) as u8).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_megabytes_stream_both_ways_without_buffering() {
    let h = Harness::start(GateOptions::default()).await;
    let cookie = format!("_gatehouse={}", mint(KEY_A, &claims_for("octocat", 583231)));
    let client = plain_client();
    assert_eq!(
        echo(&client, h.url("/echo"), &[("cookie", &cookie)])
            .await
            .0,
        200
    );
    let before = peak_rss_kib(h.child.id());

    // Upload: generated chunk by chunk on this side too.
    let mut expected = Sha256::new();
    for i in 0..SIZE / CHUNK {
        expected.update(chunk(i));
    }
    let expected = format!("{:x}", expected.finalize());
    let body =
        futures_util::stream::iter(0..SIZE / CHUNK).map(|i| Ok::<_, std::io::Error>(chunk(i)));
    let r = client
        .post(h.url("/upload"))
        .header("cookie", &cookie)
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", h.log());
    let got: serde_json::Value = r.json().await.unwrap();
    assert_eq!(got["bytes"].as_u64().unwrap() as usize, SIZE);
    assert_eq!(got["sha256"], expected.as_str());

    // Download: verify every byte as it arrives.
    let r = client
        .get(h.url(&format!("/download?bytes={SIZE}")))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut stream = r.bytes_stream();
    let mut offset: u64 = 0;
    while let Some(piece) = stream.next().await {
        for b in piece.unwrap() {
            assert_eq!(b, (offset % 251) as u8, "byte {offset}");
            offset += 1;
        }
    }
    assert_eq!(offset as usize, SIZE);

    let after = peak_rss_kib(h.child.id());
    let grew_mib = after.saturating_sub(before) / 1024;
    assert!(
        grew_mib < 40,
        "gate peak RSS grew {grew_mib} MiB moving 2 x 100 MiB: bodies are being buffered"
    );
}
