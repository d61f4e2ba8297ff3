//! The trust policy under actix-web: the peer address from `peer_addr` (or where the
//! middleware is told to look), and a request refused with `500` and an error naming the
//! fix when there is none, never trusted silently.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};

use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::{App, HttpMessage, test, web};
use correlation_actix::correlation_core::test_util::LogCapture;
use correlation_actix::{Correlation, CorrelationConfig, CorrelationId, TrustPolicy};

const INCOMING: &str = "3758c31e11774540ba330109c405579a";

fn trusting(network: &str) -> CorrelationConfig {
    CorrelationConfig::builder()
        .trust(TrustPolicy::from_peers([network]).unwrap())
        .build()
        .unwrap()
}

fn request(peer: Option<[u8; 4]>) -> test::TestRequest {
    let request = test::TestRequest::get()
        .uri("/")
        .insert_header(("x-request-id", INCOMING));
    match peer {
        Some(peer) => request.peer_addr(SocketAddr::from((peer, 4000))),
        None => request,
    }
}

/// Sends `request` through `correlation` around a handler answering with its ID; with
/// `client`, an outer middleware first records it as [`ClientAddress`].
async fn call(
    correlation: Correlation,
    client: Option<[u8; 4]>,
    request: test::TestRequest,
) -> ServiceResponse {
    let app = test::init_service(
        App::new()
            .wrap(correlation)
            .wrap_fn(move |request, service| {
                if let Some(client) = client {
                    request
                        .extensions_mut()
                        .insert(ClientAddress(IpAddr::from(client)));
                }
                service.call(request)
            })
            .route(
                "/",
                web::get().to(|id: CorrelationId| async move { id.to_string() }),
            ),
    )
    .await;
    test::call_service(&app, request.to_request())
        .await
        .map_into_boxed_body()
}

fn echoed(response: &ServiceResponse) -> String {
    response
        .headers()
        .get("x-request-id")
        .expect("the response echoes an ID")
        .to_str()
        .unwrap()
        .to_owned()
}

/// The client's address, as an application's own connection middleware records it.
#[derive(Clone, Copy)]
struct ClientAddress(IpAddr);

fn client_address(request: &ServiceRequest) -> Option<IpAddr> {
    request
        .extensions()
        .get::<ClientAddress>()
        .map(|client| client.0)
}

#[actix_web::test]
async fn peer_addr_decides_whom_to_trust() {
    let correlation = || Correlation::with_config(trusting("127.0.0.1/32"));
    let trusted = call(correlation(), None, request(Some([127, 0, 0, 1]))).await;
    assert_eq!(echoed(&trusted), INCOMING);
    assert_eq!(test::read_body(trusted).await, INCOMING);

    let untrusted = call(correlation(), None, request(Some([127, 0, 0, 2]))).await;
    let id = echoed(&untrusted);
    assert_ne!(id, INCOMING);
    assert_eq!(test::read_body(untrusted).await, id.as_bytes());
}

/// Asserts that the request was refused before the handler, with no ID.
async fn assert_refused(response: ServiceResponse) {
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(response.headers().get("x-request-id").is_none());
    assert!(
        test::read_body(response).await.is_empty(),
        "the handler did not run"
    );
}

#[actix_web::test]
async fn without_an_address_the_request_is_refused_with_the_fix_in_the_log() {
    let logs = LogCapture::install();
    let errors = || logs.records_containing("peer address is not available");
    let refused = call(
        Correlation::with_config(trusting("127.0.0.1/32")),
        None,
        request(None),
    )
    .await;
    assert_refused(refused).await;
    let logged = errors();
    assert_eq!(logged.len(), 1, "{logged:?}");
    assert_eq!(logged[0].level, log::Level::Error);
    assert!(logged[0].message.contains("serve the app over TCP"));
    assert!(logged[0].message.contains("`Correlation::peer_address`"));

    // An override that finds nothing refuses too, whatever the connection's address.
    let refused = call(
        Correlation::with_config(trusting("10.0.0.0/8")).peer_address(client_address),
        None,
        request(Some([10, 1, 2, 3])),
    )
    .await;
    assert_refused(refused).await;
    assert_eq!(errors().len(), 2);
}

#[actix_web::test]
async fn the_middleware_can_be_told_where_the_peer_address_is() {
    let correlation =
        || Correlation::with_config(trusting("10.0.0.0/8")).peer_address(client_address);
    // The connection's own address is not asked: the override decides.
    let trusted = call(
        correlation(),
        Some([10, 1, 2, 3]),
        request(Some([192, 0, 2, 7])),
    )
    .await;
    assert_eq!(echoed(&trusted), INCOMING);
    assert_eq!(test::read_body(trusted).await, INCOMING);

    let untrusted = call(
        correlation(),
        Some([192, 0, 2, 7]),
        request(Some([10, 1, 2, 3])),
    )
    .await;
    let id = echoed(&untrusted);
    assert_ne!(id, INCOMING);
    assert_eq!(test::read_body(untrusted).await, id.as_bytes());
}

#[actix_web::test]
async fn the_peer_address_is_asked_only_when_the_trust_policy_lists_peers() {
    static ASKED: AtomicUsize = AtomicUsize::new(0);
    fn counted(request: &ServiceRequest) -> Option<IpAddr> {
        ASKED.fetch_add(1, Ordering::Relaxed);
        client_address(request)
    }

    let response = call(
        Correlation::default().peer_address(counted),
        Some([10, 1, 2, 3]),
        request(None),
    )
    .await;
    assert_eq!(echoed(&response), INCOMING);
    assert_eq!(ASKED.load(Ordering::Relaxed), 0);

    let response = call(
        Correlation::with_config(trusting("10.0.0.0/8")).peer_address(counted),
        Some([10, 1, 2, 3]),
        request(None),
    )
    .await;
    assert_eq!(echoed(&response), INCOMING);
    assert_eq!(ASKED.load(Ordering::Relaxed), 1);
}
