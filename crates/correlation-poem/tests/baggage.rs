//! W3C baggage over real HTTP under poem: a trusted peer's allow-listed members become
//! the request's fields; an untrusted peer's are ignored; a malformed member is left out
//! with one WARN that never shows it.
// The server and the clients start outside any request on purpose.
#![allow(clippy::disallowed_methods)]

use std::net::SocketAddr;

use correlation_poem::correlation_core::test_util::{CapturedRecord, LogCapture};
use correlation_poem::correlation_core::{Fields, TrustPolicy};
use correlation_poem::{Correlation, CorrelationConfig};
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::{EndpointExt, Route, get, handler};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;

#[handler]
fn fields() -> String {
    log::info!("handler");
    Fields::current().to_string()
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

/// The same requests as the axum test: allowed keys from a trusted peer, two headers as
/// one list; nothing from an untrusted one; a malformed member warned about once.
async fn check(address: SocketAddr, logs: &LogCapture) {
    let (id, body) = send(
        address,
        [127, 0, 0, 1],
        &["tenant=acme;ttl=30, plan=pro", "user=Alice%20Smith"],
    )
    .await;
    assert_eq!(body, r#"tenant=acme user="Alice Smith""#);
    let (handler, warnings) = lines(logs, &id);
    assert_eq!(
        handler[0].rendered,
        format!(r#"INFO  [{id}] tenant=acme user="Alice Smith" baggage: handler"#)
    );
    assert!(warnings.is_empty(), "{warnings:?}");
    assert!(logs.records_containing("plan").is_empty());

    let (id, body) = send(address, [127, 0, 0, 2], &["tenant=acme,user=alice"]).await;
    assert_eq!(body, "");
    let (handler, _) = lines(logs, &id);
    assert_eq!(
        handler[0].rendered,
        format!("INFO  [{id}] baggage: handler")
    );

    let (id, body) = send(address, [127, 0, 0, 1], &["tenant=a%0Ab,s3cr3t-no-equals"]).await;
    assert_eq!(body, r#"tenant="a\nb""#);
    let (_, warnings) = lines(logs, &id);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(logs.records_containing("s3cr3t").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_peers_baggage_becomes_fields() {
    let logs = LogCapture::install();
    let config = CorrelationConfig::builder()
        .baggage_keys(["tenant", "user"])
        .baggage_from(TrustPolicy::from_peers(["127.0.0.1/32"]).unwrap())
        .build()
        .unwrap();
    let app = Route::new()
        .at("/", get(fields))
        .with(Correlation::with_config(config));
    let acceptor = TcpListener::bind("127.0.0.1:0")
        .into_acceptor()
        .await
        .unwrap();
    let address = *acceptor.local_addr()[0].as_socket_addr().unwrap();
    tokio::spawn(poem::Server::new_with_acceptor(acceptor).run(app));
    check(address, logs).await;
}
