//! Outgoing calls over real sockets: the `reqwest-middleware` middleware and the tower
//! layer (around hyper-util's client) put the current ID on every request, under the
//! configured name, and nothing outside a request.
// Tests start tasks and threads outside any request on purpose.
#![allow(clippy::disallowed_methods)]

use std::net::SocketAddr;

use correlation_core::propagation::{
    PropagateCorrelation, PropagateCorrelationLayer, PropagateCorrelationMiddleware,
};
use correlation_core::{CorrelationConfig, CorrelationId, Fields, adapter, scope};
use http::Request;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tower::{Layer, ServiceExt};

const ID: &str = "2f8e6d4c0b9a4e1f8d7c6b5a4f3e2d1c";

/// A tiny HTTP/1.1 server that answers every request with the values of `header` it
/// received, joined by `,` (`none` when there is none), one request per connection.
async fn echo_server(header: &'static str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0_u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let request = String::from_utf8_lossy(&request);
                let values: Vec<&str> = request
                    .lines()
                    .filter_map(|line| line.split_once(':'))
                    .filter(|(name, _)| name.eq_ignore_ascii_case(header))
                    .map(|(_, value)| value.trim())
                    .collect();
                let body = if values.is_empty() {
                    "none".to_owned()
                } else {
                    values.join(",")
                };
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
            });
        }
    });
    addr
}

fn id() -> CorrelationId {
    CorrelationId::from_static(ID)
}

/// `GET url` through `client`; the body.
async fn get_text(client: ClientWithMiddleware, url: String) -> String {
    let response = client.get(url).send().await.unwrap();
    response.text().await.unwrap()
}

type HyperClient = Client<HttpConnector, Empty<bytes::Bytes>>;

/// `GET http://addr/` through the tower layer around hyper-util's client; the body.
async fn tower_get(client: PropagateCorrelation<HyperClient>, addr: SocketAddr) -> String {
    let request = Request::get(format!("http://{addr}/"))
        .body(Empty::new())
        .unwrap();
    let response = client.oneshot(request).await.unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(body.to_vec()).unwrap()
}

#[tokio::test]
async fn reqwest_middleware_sends_the_current_id_and_nothing_outside() {
    let addr = echo_server("x-request-id").await;
    let client = ClientBuilder::new(reqwest_middleware::reqwest::Client::new())
        .with(PropagateCorrelationMiddleware::new())
        .build();
    let url = format!("http://{addr}/");

    let inside = scope(id(), get_text(client.clone(), url.clone())).await;
    assert_eq!(inside, ID);

    let outside = get_text(client.clone(), url.clone()).await;
    assert_eq!(outside, "none");

    // A header the caller set is replaced: exactly one value leaves.
    let replaced = scope(id(), async {
        let request = client.get(&url).header("x-request-id", "stale-value");
        request.send().await.unwrap().text().await.unwrap()
    })
    .await;
    assert_eq!(replaced, ID);

    // Work spawned with the crate's helper carries the ID to its calls too.
    let task = get_text(client.clone(), url.clone());
    let handle = correlation_core::sync_scope(id(), || correlation_core::spawn(task));
    let spawned = handle.await.unwrap();
    assert_eq!(spawned, ID);
}

#[tokio::test]
async fn reqwest_middleware_uses_the_configured_header_name() {
    let addr = echo_server("x-correlation-id").await;
    let config = CorrelationConfig::builder()
        .incoming_header_names(["X-Request-ID"])
        .response_header_name("X-Correlation-ID")
        .build()
        .unwrap();
    let client = ClientBuilder::new(reqwest_middleware::reqwest::Client::new())
        .with(PropagateCorrelationMiddleware::with_config(config))
        .build();
    let seen = scope(id(), get_text(client, format!("http://{addr}/"))).await;
    assert_eq!(seen, ID);
}

#[tokio::test]
async fn tower_layer_around_hyper_util_sends_the_current_id_and_nothing_outside() {
    let addr = echo_server("x-request-id").await;
    let hyper: HyperClient = Client::builder(TokioExecutor::new()).build_http();
    let client = PropagateCorrelationLayer::new().layer(hyper);

    let inside = scope(id(), tower_get(client.clone(), addr)).await;
    assert_eq!(inside, ID);
    let outside = tower_get(client, addr).await;
    assert_eq!(outside, "none");
}

/// A configuration sending `tenant` and `user` as baggage.
fn baggage_config() -> CorrelationConfig {
    CorrelationConfig::builder()
        .baggage_keys(["tenant", "user"])
        .build()
        .unwrap()
}

/// Sets two baggage keys' fields and one that stays in this service.
fn set_fields() {
    assert!(Fields::insert("tenant", "acme corp"));
    assert!(Fields::insert("user", "alice"));
    assert!(Fields::insert("card", "4242"));
}

#[tokio::test]
async fn both_clients_send_the_baggage_keys_fields_merged_into_the_callers_baggage() {
    let addr = echo_server("baggage").await;
    let client = ClientBuilder::new(reqwest_middleware::reqwest::Client::new())
        .with(PropagateCorrelationMiddleware::with_config(baggage_config()))
        .build();
    let sent = scope(id(), async {
        set_fields();
        let response = client
            .get(format!("http://{addr}/"))
            .header("baggage", "region=eu")
            .header("baggage", "user=set-by-caller")
            .send()
            .await
            .unwrap();
        response.text().await.unwrap()
    })
    .await;
    // One header: the caller's members, then ours for the keys it did not set.
    assert_eq!(sent, "region=eu,user=set-by-caller,tenant=acme%20corp");

    let hyper: HyperClient = Client::builder(TokioExecutor::new()).build_http();
    let client = PropagateCorrelationLayer::with_config(baggage_config()).layer(hyper);
    let sent = scope(id(), async {
        set_fields();
        tower_get(client.clone(), addr).await
    })
    .await;
    assert_eq!(sent, "tenant=acme%20corp,user=alice");
    // No fields, no header.
    assert_eq!(scope(id(), tower_get(client, addr)).await, "none");
}

/// A request's context as an adapter makes it, with hop IDs on: its correlation ID is
/// [`ID`], sent by the caller.
fn hop_request(config: &CorrelationConfig) -> correlation_core::CorrelationContext {
    let mut headers = http::HeaderMap::new();
    headers.insert("x-correlation-id", ID.parse().unwrap());
    let decision = adapter::decide_and_update(config, &mut headers, || None).unwrap();
    adapter::request_context(config, decision)
}

#[tokio::test]
async fn with_hop_ids_on_outgoing_calls_carry_the_correlation_id_not_the_hop_id() {
    let config = CorrelationConfig::builder()
        .header_name("X-Correlation-ID")
        .hop_id_header("X-Request-ID")
        .build()
        .unwrap();
    let correlation = echo_server("x-correlation-id").await;
    let hop = echo_server("x-request-id").await;
    let reqwest = ClientBuilder::new(reqwest_middleware::reqwest::Client::new())
        .with(PropagateCorrelationMiddleware::with_config(config.clone()))
        .build();
    let hyper: HyperClient = Client::builder(TokioExecutor::new()).build_http();
    let tower = PropagateCorrelationLayer::with_config(config.clone()).layer(hyper);

    let context = hop_request(&config);
    assert!(context.hop_id().is_some());
    let seen = context
        .wrap(async {
            [
                get_text(reqwest.clone(), format!("http://{correlation}/")).await,
                get_text(reqwest, format!("http://{hop}/")).await,
                tower_get(tower.clone(), correlation).await,
                tower_get(tower, hop).await,
            ]
        })
        .await;
    assert_eq!(seen, [ID, "none", ID, "none"]);
}
