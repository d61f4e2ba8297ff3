//! The trust policy under poem: the peer address from `remote_addr`, and a request
//! refused with `500` and an error when it is not a socket address, never trusted
//! silently.

use correlation_poem::correlation_core::test_util::LogCapture;
use correlation_poem::{Correlation, CorrelationConfig, CorrelationId, TrustPolicy};
use poem::http::StatusCode;
use poem::{Endpoint, EndpointExt, Request, Route, get, handler};

const INCOMING: &str = "3758c31e11774540ba330109c405579a";

#[handler]
fn id(id: CorrelationId) -> String {
    id.to_string()
}

#[tokio::test]
async fn without_a_socket_address_the_request_is_refused_with_an_error() {
    let logs = LogCapture::install();
    let config = CorrelationConfig::builder()
        .trust(TrustPolicy::from_peers(["127.0.0.1/32"]).unwrap())
        .build()
        .unwrap();
    let app = Route::new()
        .at("/", get(id))
        .with(Correlation::with_config(config));
    // A request made in memory has no socket address (`RemoteAddr` is "unknown").
    let request = Request::builder()
        .uri_str("/")
        .header("x-request-id", INCOMING)
        .finish();
    let response = app.call(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(response.headers().get("x-request-id").is_none());
    assert!(response.into_body().into_string().await.unwrap().is_empty());
    let errors = logs.records_containing("peer address is not available");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].level, log::Level::Error);
    assert!(errors[0].message.contains("TCP listeners only"));
}
