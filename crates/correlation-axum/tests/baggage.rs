//! W3C baggage over real HTTP under axum: a trusted peer's allow-listed members become
//! the request's fields before the handler runs; an untrusted peer's, and keys not
//! allowed, are never seen; hostile baggage leaves the request served, one WARN that
//! never shows it, and one record per line.
// The server and the clients start outside any request on purpose.
#![allow(clippy::disallowed_methods)]

use std::net::SocketAddr;

use axum::Router;
use axum::routing::get;
use correlation_axum::CorrelationLayer;
use correlation_axum::correlation_core::test_util::{CapturedRecord, LogCapture};
use correlation_axum::correlation_core::{CorrelationConfig, Fields, TrustPolicy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;

async fn handler() -> String {
    log::info!("handler");
    Fields::current().to_string()
}

/// A server trusting baggage from 127.0.0.1 for `tenant` and `user`.
async fn serve() -> SocketAddr {
    let config = CorrelationConfig::builder()
        .baggage_keys(["tenant", "user"])
        .baggage_from(TrustPolicy::from_peers(["127.0.0.1/32"]).unwrap())
        .build()
        .unwrap();
    let app = Router::new()
        .route("/", get(handler))
        .layer(CorrelationLayer::with_config(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    address
}

/// Sends `GET /` from `from` with `baggage` headers; the response's ID and its body.
async fn send(address: SocketAddr, from: [u8; 4], baggage: &[&str]) -> (String, String) {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((from, 0))).unwrap();
    let mut stream = socket.connect(address).await.unwrap();
    let mut request = String::from("GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    for value in baggage {
        request.push_str(&format!("baggage: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let id = response
        .lines()
        .find_map(|line| line.strip_prefix("x-request-id: "))
        .expect("the response echoes the ID")
        .to_owned();
    let body = response
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    (id, body)
}

/// The handler's line and the crate's warnings under `id`.
fn lines(logs: &LogCapture, id: &str) -> (Vec<CapturedRecord>, Vec<CapturedRecord>) {
    let records = logs.records_for(id);
    let handler = records
        .iter()
        .filter(|record| record.target == module_path!())
        .cloned()
        .collect();
    let warnings = records
        .into_iter()
        .filter(|record| record.level == log::Level::Warn)
        .collect();
    (handler, warnings)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_peers_allowed_keys_become_fields_on_every_line() {
    let logs = LogCapture::install();
    let address = serve().await;

    // Two headers are one list; `plan` is not allowed.
    let (id, body) = send(
        address,
        [127, 0, 0, 1],
        &["tenant=acme;ttl=30, plan=pro", "user=Alice%20Smith"],
    )
    .await;
    assert_eq!(body, r#"tenant=acme user="Alice Smith""#);
    let (handler, warnings) = lines(logs, &id);
    assert_eq!(handler.len(), 1);
    assert_eq!(
        handler[0].rendered,
        format!(r#"INFO  [{id}] tenant=acme user="Alice Smith" baggage: handler"#)
    );
    assert!(warnings.is_empty(), "{warnings:?}");
    assert!(logs.records_containing("plan").is_empty());

    // The same from a peer not trusted: nothing, silently.
    let (id, body) = send(address, [127, 0, 0, 2], &["tenant=acme,user=alice"]).await;
    assert_eq!(body, "");
    let (handler, warnings) = lines(logs, &id);
    assert_eq!(
        handler[0].rendered,
        format!("INFO  [{id}] baggage: handler")
    );
    assert!(warnings.is_empty(), "{warnings:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_baggage_is_served_escaped_and_warned_about_once_without_its_text() {
    let logs = LogCapture::install();
    let address = serve().await;

    let (id, body) = send(
        address,
        [127, 0, 0, 1],
        &[
            "tenant=evil%0D%0AINFO%20%20%5Bother%5D%20forged%1B%5B2J,missing-equals-sign",
            "user=%FF, =x, s3cr3t-member=%ZZ",
        ],
    )
    .await;
    // Decoded, then escaped by the log format, as the handler's `Fields` display shows.
    let shown = concat!(
        r#"tenant="evil\r\nINFO  [other] forged\u{1b}[2J" user="#,
        "\u{fffd}"
    );
    assert_eq!(body, shown);
    let (handler, warnings) = lines(logs, &id);
    assert_eq!(
        handler[0].rendered,
        format!("INFO  [{id}] {shown} baggage: handler")
    );
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(
        warnings[0].message,
        "Left part of the baggage header out: a baggage member is malformed or longer than 4096 bytes"
    );
    for record in logs.records() {
        assert!(
            !record.rendered.contains(['\r', '\n', '\u{1b}']),
            "{record:?}"
        );
        assert!(!record.rendered.contains("missing-equals"), "{record:?}");
        assert!(!record.rendered.contains("s3cr3t"), "{record:?}");
    }

    // Too long a list, and too many members: served, with one WARN each.
    let huge = format!("tenant={}", "x".repeat(9000));
    let (id, body) = send(address, [127, 0, 0, 1], &[&huge]).await;
    assert_eq!(body, "");
    let (_, warnings) = lines(logs, &id);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    let many: Vec<String> = (0..200).map(|n| format!("k{n}=v")).collect();
    let (id, body) = send(address, [127, 0, 0, 1], &[&many.join(","), "tenant=late"]).await;
    assert_eq!(body, "");
    let (_, warnings) = lines(logs, &id);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
}
