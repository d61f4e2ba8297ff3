//! Fields over real HTTP under axum: a field set in the handler is on the handler's
//! lines, a spawned task's and the streaming body's, next to the ID, and never on a
//! concurrent request's; a hostile value leaves one record per line.
// The server and the clients start outside any request on purpose.
#![allow(clippy::disallowed_methods)]

use std::convert::Infallible;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::routing::get;
use correlation_axum::CorrelationLayer;
use correlation_axum::correlation_core::test_util::LogCapture;
use correlation_axum::correlation_core::{Fields, spawn};
use tokio::sync::Barrier;

/// The tenants of the concurrent requests, percent-encoded as sent, and as each line
/// shows them.
const TENANTS: [(&str, &str); 3] = [
    ("acme", "tenant=acme"),
    ("globex", "tenant=globex"),
    (
        "evil%0D%0AINFO%20%20%5Bother%5D%20forged%1B%5B2J",
        r#"tenant="evil\r\nINFO  [other] forged\u{1b}[2J""#,
    ),
];

async fn handler(State(barrier): State<Arc<Barrier>>, RawQuery(query): RawQuery) -> Body {
    let query = query.unwrap_or_default();
    let tenant = percent_decode(query.strip_prefix("tenant=").unwrap_or_default());
    assert!(Fields::insert("tenant", &tenant));
    // Every request has set its field before any logs: they are in flight together.
    barrier.wait().await;
    log::info!("handler");
    spawn(async { log::info!("spawned") }).await.unwrap();
    Body::from_stream(futures_util::stream::once(async {
        log::info!("body");
        Ok::<_, Infallible>("streamed")
    }))
}

fn percent_decode(text: &str) -> String {
    let mut bytes = Vec::new();
    let mut rest = text.as_bytes();
    while let [first, tail @ ..] = rest {
        match (first, tail) {
            (b'%', [high, low, tail @ ..]) => {
                let hex = std::str::from_utf8(&[*high, *low]).unwrap().to_owned();
                bytes.push(u8::from_str_radix(&hex, 16).unwrap());
                rest = tail;
            }
            _ => {
                bytes.push(*first);
                rest = tail;
            }
        }
    }
    String::from_utf8(bytes).unwrap()
}

/// Sends `GET /?tenant=<tenant>` over a new connection; the response's ID and body.
fn get_tenant(address: SocketAddr, tenant: &str) -> (String, String) {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(
        stream,
        "GET /?tenant={tenant} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .expect("the server answers within 20 s");
    let id = response
        .lines()
        .find_map(|line| line.strip_prefix("x-request-id: "))
        .expect("the response echoes the ID")
        .to_owned();
    (id, response)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fields_reach_every_line_of_their_own_request_only() {
    let logs = LogCapture::install();
    let app = Router::new()
        .route("/", get(handler))
        .with_state(Arc::new(Barrier::new(TENANTS.len())))
        .layer(CorrelationLayer::new());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let clients =
        TENANTS.map(|(sent, _)| tokio::task::spawn_blocking(move || get_tenant(address, sent)));
    let mut ids = Vec::new();
    for client in clients {
        let (id, response) = client.await.unwrap();
        assert!(response.contains("streamed"), "{response}");
        ids.push(id);
    }

    for (id, (_, shown)) in ids.iter().zip(TENANTS) {
        // Only this test's own lines: with every workspace feature on, tracing's `log`
        // feature also writes the request span's lines under the ID.
        let mut records = logs.records_for(id);
        records.retain(|record| record.target == module_path!());
        let messages: Vec<_> = records.iter().map(|r| r.message.as_str()).collect();
        assert_eq!(messages, ["handler", "spawned", "body"], "{id}");
        for record in &records {
            let expected = format!("INFO  [{id}] {shown} fields: {}", record.message);
            assert_eq!(record.rendered, expected);
            assert!(!record.rendered.contains(['\r', '\n', '\u{1b}']));
        }
    }
    assert!(
        Fields::current().is_empty(),
        "nothing leaks out of the requests"
    );
}
