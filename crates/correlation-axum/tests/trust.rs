//! The trust policy under axum: the peer address from `ConnectInfo` (or where the layer is
//! told to look), and a request refused with `500` and an error naming the fix when it is
//! missing, never trusted silently.

use std::net::{IpAddr, SocketAddr};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::routing::get;
use correlation_axum::correlation_core::test_util::LogCapture;
use correlation_axum::{CorrelationConfig, CorrelationId, CorrelationLayer, TrustPolicy};
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

const INCOMING: &str = "3758c31e11774540ba330109c405579a";

fn trusting_localhost() -> CorrelationConfig {
    CorrelationConfig::builder()
        .trust(TrustPolicy::from_peers(["127.0.0.1/32"]).unwrap())
        .build()
        .unwrap()
}

fn app(layer: CorrelationLayer) -> Router {
    Router::new()
        .route("/", get(|id: CorrelationId| async move { id.to_string() }))
        .layer(layer)
}

fn request(peer: Option<[u8; 4]>) -> Request<Body> {
    let mut request = Request::get("/")
        .header("x-request-id", INCOMING)
        .body(Body::empty())
        .unwrap();
    if let Some(peer) = peer {
        request
            .extensions_mut()
            .insert(ConnectInfo(SocketAddr::from((peer, 4000))));
    }
    request
}

async fn body(response: http::Response<Body>) -> String {
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[tokio::test]
async fn connect_info_decides_whom_to_trust() {
    let app = app(CorrelationLayer::with_config(trusting_localhost()));
    let trusted = app
        .clone()
        .oneshot(request(Some([127, 0, 0, 1])))
        .await
        .unwrap();
    assert_eq!(trusted.headers()["x-request-id"], INCOMING);
    assert_eq!(body(trusted).await, INCOMING);

    let untrusted = app.oneshot(request(Some([127, 0, 0, 2]))).await.unwrap();
    let id = untrusted.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_ne!(id, INCOMING);
    assert_eq!(body(untrusted).await, id);
}

#[tokio::test]
async fn without_connect_info_the_request_is_refused_with_the_fix_in_the_log() {
    let logs = LogCapture::install();
    let app = app(CorrelationLayer::with_config(trusting_localhost()));
    let response = app.oneshot(request(None)).await.unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(response.headers().get("x-request-id").is_none());
    assert_eq!(body(response).await, "", "the handler did not run");
    let errors = logs.records_containing("into_make_service_with_connect_info");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].level, log::Level::Error);
    assert!(
        errors[0]
            .message
            .contains("`CorrelationLayer::peer_address`")
    );
}

#[tokio::test]
async fn the_layer_can_be_told_where_the_peer_address_is() {
    #[derive(Clone)]
    struct ClientAddress(IpAddr);

    let layer = CorrelationLayer::with_config(trusting_localhost())
        .peer_address(|extensions| extensions.get::<ClientAddress>().map(|client| client.0));
    let mut request = request(None);
    request
        .extensions_mut()
        .insert(ClientAddress(IpAddr::from([127, 0, 0, 1])));
    let response = app(layer).oneshot(request).await.unwrap();
    assert_eq!(response.headers()["x-request-id"], INCOMING);
}
