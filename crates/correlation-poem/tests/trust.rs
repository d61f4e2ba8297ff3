//! The trust policy under poem: the peer address from `remote_addr` (or where the
//! middleware is told to look), and a request refused with `500` and an error naming the
//! fix when there is none, never trusted silently.

use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};

use correlation_poem::correlation_core::test_util::LogCapture;
use correlation_poem::{Correlation, CorrelationConfig, CorrelationId, TrustPolicy};
use poem::http::StatusCode;
use poem::{Endpoint, EndpointExt, Request, Response, Route, get, handler};

const INCOMING: &str = "3758c31e11774540ba330109c405579a";

#[handler]
fn answer_id(id: CorrelationId) -> String {
    id.to_string()
}

fn trusting(network: &str) -> CorrelationConfig {
    CorrelationConfig::builder()
        .trust(TrustPolicy::from_peers([network]).unwrap())
        .build()
        .unwrap()
}

/// The client's address, as an application's own connection middleware records it.
#[derive(Clone, Copy)]
struct ClientAddress(IpAddr);

fn client_address(request: &Request) -> Option<IpAddr> {
    request
        .extensions()
        .get::<ClientAddress>()
        .map(|client| client.0)
}

/// Sends a request with an incoming ID through `correlation` around a handler answering
/// with its ID; with `client`, an outer middleware first records it as [`ClientAddress`].
/// A request made in memory has no socket address (`RemoteAddr` is "unknown").
async fn call(correlation: Correlation, client: Option<[u8; 4]>) -> Response {
    let app = Route::new()
        .at("/", get(answer_id))
        .with(correlation)
        .before(move |mut request: Request| async move {
            if let Some(client) = client {
                request
                    .extensions_mut()
                    .insert(ClientAddress(IpAddr::from(client)));
            }
            Ok(request)
        });
    let request = Request::builder()
        .uri_str("/")
        .header("x-request-id", INCOMING)
        .finish();
    app.call(request).await.unwrap()
}

fn echoed(response: &Response) -> String {
    response
        .headers()
        .get("x-request-id")
        .expect("the response echoes an ID")
        .to_str()
        .unwrap()
        .to_owned()
}

async fn body(response: Response) -> String {
    response.into_body().into_string().await.unwrap()
}

/// Asserts that the request was refused before the handler, with no ID.
async fn assert_refused(response: Response) {
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(response.headers().get("x-request-id").is_none());
    assert!(body(response).await.is_empty(), "the handler did not run");
}

#[tokio::test]
async fn without_an_address_the_request_is_refused_with_the_fix_in_the_log() {
    let logs = LogCapture::install();
    let errors = || logs.records_containing("peer address is not available");
    assert_refused(call(Correlation::with_config(trusting("127.0.0.1/32")), None).await).await;
    let logged = errors();
    assert_eq!(logged.len(), 1, "{logged:?}");
    assert_eq!(logged[0].level, log::Level::Error);
    assert!(logged[0].message.contains("TCP listeners only"));
    assert!(logged[0].message.contains("`Correlation::peer_address`"));

    // An override that finds nothing refuses too.
    let correlation = Correlation::with_config(trusting("10.0.0.0/8")).peer_address(client_address);
    assert_refused(call(correlation, None).await).await;
    assert_eq!(errors().len(), 2);
}

#[tokio::test]
async fn the_middleware_can_be_told_where_the_peer_address_is() {
    let correlation =
        || Correlation::with_config(trusting("10.0.0.0/8")).peer_address(client_address);
    let trusted = call(correlation(), Some([10, 1, 2, 3])).await;
    assert_eq!(echoed(&trusted), INCOMING);
    assert_eq!(body(trusted).await, INCOMING);

    let untrusted = call(correlation(), Some([192, 0, 2, 7])).await;
    let id = echoed(&untrusted);
    assert_ne!(id, INCOMING);
    assert_eq!(body(untrusted).await, id);
}

#[tokio::test]
async fn the_peer_address_is_asked_only_when_the_trust_policy_lists_peers() {
    static ASKED: AtomicUsize = AtomicUsize::new(0);
    fn counted(request: &Request) -> Option<IpAddr> {
        ASKED.fetch_add(1, Ordering::Relaxed);
        client_address(request)
    }

    let response = call(
        Correlation::default().peer_address(counted),
        Some([10, 1, 2, 3]),
    )
    .await;
    assert_eq!(echoed(&response), INCOMING);
    assert_eq!(ASKED.load(Ordering::Relaxed), 0);

    let correlation = Correlation::with_config(trusting("10.0.0.0/8")).peer_address(counted);
    let response = call(correlation, Some([10, 1, 2, 3])).await;
    assert_eq!(echoed(&response), INCOMING);
    assert_eq!(ASKED.load(Ordering::Relaxed), 1);
}
