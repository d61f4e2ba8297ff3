//! The trust policy under actix-web: the peer address from `peer_addr`, and a request
//! refused with `500` and an error when there is none, never trusted silently.

use std::net::SocketAddr;

use actix_web::http::StatusCode;
use actix_web::{App, test, web};
use correlation_actix::correlation_core::test_util::LogCapture;
use correlation_actix::{Correlation, CorrelationConfig, CorrelationId, TrustPolicy};

const INCOMING: &str = "3758c31e11774540ba330109c405579a";

fn trusting_localhost() -> CorrelationConfig {
    CorrelationConfig::builder()
        .trust(TrustPolicy::from_peers(["127.0.0.1/32"]).unwrap())
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

#[actix_web::test]
async fn peer_addr_decides_whom_to_trust_and_its_absence_refuses() {
    let logs = LogCapture::install();
    let app = test::init_service(
        App::new()
            .wrap(Correlation::with_config(trusting_localhost()))
            .route(
                "/",
                web::get().to(|id: CorrelationId| async move { id.to_string() }),
            ),
    )
    .await;

    let trusted = test::call_service(&app, request(Some([127, 0, 0, 1])).to_request()).await;
    assert_eq!(trusted.headers().get("x-request-id").unwrap(), INCOMING);
    assert_eq!(test::read_body(trusted).await, INCOMING);

    let untrusted = test::call_service(&app, request(Some([127, 0, 0, 2])).to_request()).await;
    let id = untrusted
        .headers()
        .get("x-request-id")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert_ne!(id, INCOMING);
    assert_eq!(test::read_body(untrusted).await, id.as_bytes());

    let refused = test::call_service(&app, request(None).to_request()).await;
    assert_eq!(refused.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(refused.headers().get("x-request-id").is_none());
    assert!(
        test::read_body(refused).await.is_empty(),
        "the handler did not run"
    );
    let errors = logs.records_containing("peer address is not available");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].level, log::Level::Error);
    assert!(errors[0].message.contains("serve the app over TCP"));
}
