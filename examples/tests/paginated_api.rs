//! The `paginated-api` service over real HTTP on loopback: paging while another client
//! writes loses or duplicates no unchanged user; bad cursors get 400; bad bodies 4xx.

use examples::api::{serve, AppState, PageJson, BODY_LIMIT};
use examples::backend::Backend;
use examples::users::{metadata_v1, sample_user};
use fdb_records::cursor::ContinuationCodec;
use fdb_records::kv::Database;
use fdb_records::store::{RecordStore, RecordStoreError};
use foundationdb_tuple::Subspace;
use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SEEDED: i64 = 300;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// One HTTP/1.1 request on a fresh connection (`Connection: close`): status and body.
async fn request(addr: SocketAddr, method: &str, path: &str, body: Option<&[u8]>) -> (u16, String) {
    request_with(addr, method, path, body, Some("application/json")).await
}

async fn request_with(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&[u8]>,
    content_type: Option<&str>,
) -> (u16, String) {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
        if let Some(body) = body {
            if let Some(ct) = content_type {
                head.push_str(&format!("Content-Type: {ct}\r\n"));
            }
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).await.expect("write head");
        if let Some(body) = body {
            // The server may answer (413) and close before reading all of a big body.
            let _ = stream.write_all(body).await;
        }
        let mut raw = Vec::new();
        let _ = stream.read_to_end(&mut raw).await;
        raw
    };
    let raw = tokio::time::timeout(REQUEST_TIMEOUT, exchange)
        .await
        .expect("request timed out");
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, rest) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head: {text:?}"));
    let status: u16 = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    (status, body)
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&tail[..n]);
        rest = &tail[n + 2..];
    }
    out
}

async fn start() -> (SocketAddr, Backend) {
    let backend = Backend::open("paginated-api-test").expect("open");
    let subspace = Subspace::from(("api-test",));
    let metadata = metadata_v1().expect("metadata");
    backend
        .db
        .run(|tx, _| {
            let (metadata, subspace) = (metadata.clone(), subspace.clone());
            async move {
                let store = RecordStore::open(&tx, subspace, metadata).await?;
                for id in 0..SEEDED {
                    store.save_record(&sample_user(id)).await?;
                }
                Ok::<_, RecordStoreError>(())
            }
        })
        .await
        .expect("seed");
    let state = Arc::new(AppState {
        db: backend.db.clone(),
        metadata,
        subspace,
        codec: ContinuationCodec::signed(b"test key"),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { serve(listener, state).await });
    (addr, backend)
}

/// Pages through `query` to the end; every item's id, in order.
async fn page_all(addr: SocketAddr, query: &str, limit: usize) -> Vec<i64> {
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..1_000 {
        let mut path = format!("/users?limit={limit}{query}");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let (status, body) = request(addr, "GET", &path, None).await;
        assert_eq!(status, 200, "{path}: {body}");
        let page: PageJson = serde_json::from_str(&body).expect("page json");
        assert!(page.items.len() <= limit);
        ids.extend(page.items.iter().map(|u| u.id.expect("id")));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return ids,
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    panic!("more than 1000 pages");
}

fn user_json(id: i64, city: &str) -> Vec<u8> {
    serde_json::json!({"id": id, "email": format!("w{id}@example.com"), "name": format!("W {id}"), "tier": 1, "city": city})
        .to_string()
        .into_bytes()
}

/// Ids the writer touches: updated (moved to Paris), deleted, or created.
fn touched(id: i64) -> bool {
    id % 7 == 3 || id % 11 == 5 || id >= SEEDED
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_while_writing_loses_and_duplicates_nothing_unchanged() {
    let (addr, _backend) = start().await;
    let writer = tokio::spawn(async move {
        let mut ops = 0;
        for id in 0..SEEDED {
            if id % 7 == 3 {
                let (s, b) = request(
                    addr,
                    "PUT",
                    &format!("/users/{id}"),
                    Some(&user_json(id, "Paris")),
                )
                .await;
                assert_eq!(s, 200, "{b}");
                ops += 1;
            }
            if id % 11 == 5 {
                let (s, b) = request(addr, "DELETE", &format!("/users/{id}"), None).await;
                assert_eq!(s, 204, "{b}");
                ops += 1;
            }
            if id % 5 == 0 {
                let new = SEEDED + id;
                let (s, b) = request(addr, "POST", "/users", Some(&user_json(new, "Paris"))).await;
                assert_eq!(s, 201, "{b}");
                ops += 1;
            }
        }
        ops
    });
    let (all, paris) = tokio::join!(page_all(addr, "", 17), page_all(addr, "&city=Paris", 7));
    let ops = writer.await.expect("writer");
    assert!(ops > 50);

    for (name, ids, expected) in [
        (
            "all users",
            &all,
            (0..SEEDED)
                .filter(|id| !touched(*id))
                .collect::<BTreeSet<_>>(),
        ),
        (
            "Paris",
            &paris,
            (0..SEEDED)
                .filter(|id| !touched(*id) && sample_user(*id).address.unwrap().city == "Paris")
                .collect(),
        ),
    ] {
        let mut counts: HashMap<i64, usize> = HashMap::new();
        for id in ids.iter() {
            *counts.entry(*id).or_default() += 1;
        }
        assert!(
            counts.values().all(|n| *n == 1),
            "{name}: an id came back twice"
        );
        assert!(
            ids.windows(2).all(|w| w[0] < w[1]),
            "{name}: not in id order"
        );
        let got: BTreeSet<i64> = ids.iter().copied().collect();
        let missing: Vec<_> = expected.difference(&got).collect();
        assert!(
            missing.is_empty(),
            "{name}: unchanged users lost: {missing:?}"
        );
    }
    // After the writer: exactly the final state.
    let final_all = page_all(addr, "", 50).await;
    let expected_final: Vec<i64> = (0..SEEDED)
        .filter(|id| id % 11 != 5)
        .chain((0..SEEDED).filter(|id| id % 5 == 0).map(|id| SEEDED + id))
        .collect();
    assert_eq!(final_all, expected_final);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tampered_and_foreign_cursors_get_400() {
    let (addr, _backend) = start().await;
    let first = |query: &'static str| async move {
        let (s, body) = request(addr, "GET", &format!("/users?limit=3{query}"), None).await;
        assert_eq!(s, 200, "{body}");
        let page: PageJson = serde_json::from_str(&body).unwrap();
        page.next_cursor.expect("more pages")
    };
    let paris = first("&city=Paris").await;
    let all = first("").await;
    let tier = first("&tier=1").await;

    let mut tampered: Vec<char> = paris.chars().collect();
    let mid = tampered.len() / 2;
    tampered[mid] = if tampered[mid] == 'A' { 'B' } else { 'A' };
    let tampered: String = tampered.into_iter().collect();

    for (what, path) in [
        ("garbage", "/users?cursor=not-a-cursor".to_string()),
        ("empty", "/users?cursor=".to_string()),
        ("tampered", format!("/users?city=Paris&cursor={tampered}")),
        (
            "truncated",
            format!("/users?city=Paris&cursor={}", &paris[..paris.len() / 2]),
        ),
        (
            "city cursor on the all-users list",
            format!("/users?cursor={paris}"),
        ),
        (
            "city cursor for another city",
            format!("/users?city=Oslo&cursor={paris}"),
        ),
        (
            "all-users cursor on the city list",
            format!("/users?city=Paris&cursor={all}"),
        ),
        (
            "tier cursor on the city list",
            format!("/users?city=Paris&cursor={tier}"),
        ),
        ("huge", format!("/users?cursor={}", "A".repeat(100_000))),
        ("limit 0", "/users?limit=0".to_string()),
        ("limit too big", "/users?limit=100000".to_string()),
        ("unknown parameter", "/users?colour=red".to_string()),
    ] {
        let (status, body) = request(addr, "GET", &path, None).await;
        assert!((400..500).contains(&status), "{what}: {status} {body}");
        if what != "huge" {
            assert_eq!(status, 400, "{what}: {body}");
            let json: serde_json::Value =
                serde_json::from_str(&body).unwrap_or_else(|_| panic!("{what}: not JSON: {body}"));
            assert!(
                json["error"].as_str().is_some_and(|m| !m.is_empty()),
                "{what}: {body}"
            );
        }
    }
    // The good cursors still work.
    let (s, _) = request(
        addr,
        "GET",
        &format!("/users?city=Paris&limit=3&cursor={paris}"),
        None,
    )
    .await;
    assert_eq!(s, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_oversize_bodies_get_4xx_and_the_server_survives() {
    let (addr, _backend) = start().await;
    let big = format!(
        "{{\"id\": 9999, \"email\": \"x\", \"name\": \"{}\", \"city\": \"Oslo\"}}",
        "x".repeat(BODY_LIMIT * 4)
    );
    let cases: Vec<(&str, &str, String, Option<&str>, u16)> = vec![
        (
            "not JSON",
            "/users",
            "{not json".into(),
            Some("application/json"),
            400,
        ),
        (
            "wrong type",
            "/users",
            r#"{"id":"one","email":"a","name":"b"}"#.into(),
            Some("application/json"),
            422,
        ),
        (
            "unknown field",
            "/users",
            r#"{"id":1,"email":"a","name":"b","x":1}"#.into(),
            Some("application/json"),
            422,
        ),
        (
            "no id",
            "/users",
            r#"{"email":"a","name":"b"}"#.into(),
            Some("application/json"),
            422,
        ),
        (
            "bad tier",
            "/users",
            r#"{"id":5000,"email":"a","name":"b","tier":9}"#.into(),
            Some("application/json"),
            422,
        ),
        (
            "duplicate id",
            "/users",
            r#"{"id":1,"email":"a","name":"b"}"#.into(),
            Some("application/json"),
            409,
        ),
        (
            "no content type",
            "/users",
            r#"{"id":5001,"email":"a","name":"b"}"#.into(),
            None,
            415,
        ),
        ("oversize", "/users", big, Some("application/json"), 413),
        (
            "update of a missing user",
            "/users/123456",
            r#"{"email":"a","name":"b"}"#.into(),
            Some("application/json"),
            404,
        ),
        (
            "id mismatch",
            "/users/1",
            r#"{"id":2,"email":"a","name":"b"}"#.into(),
            Some("application/json"),
            422,
        ),
        (
            "bad path id",
            "/users/abc",
            r#"{"email":"a","name":"b"}"#.into(),
            Some("application/json"),
            400,
        ),
    ];
    for (what, path, body, content_type, expected) in cases {
        let method = if path == "/users" { "POST" } else { "PUT" };
        let (status, response) =
            request_with(addr, method, path, Some(body.as_bytes()), content_type).await;
        assert_eq!(status, expected, "{what}: {response}");
    }
    let (s, body) = request(addr, "DELETE", "/users/777777", None).await;
    assert_eq!(s, 404, "{body}");
    // Still serving, and nothing was written by the failed requests.
    let (s, body) = request(addr, "GET", "/users/1", None).await;
    assert_eq!(s, 200, "{body}");
    let (s, _) = request(addr, "GET", "/users/9999", None).await;
    assert_eq!(s, 404);
    let (s, _) = request(addr, "GET", "/users/5001", None).await;
    assert_eq!(s, 404);
}
