//! The request log under axum: a `5xx` response writes out the request's buffered
//! `DEBUG` lines, a `200` drops them.

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use correlation_axum::correlation_core::request_log::{LogBuffer, RequestLogger};
use correlation_axum::correlation_core::test_util::LogCapture;
use correlation_axum::{CorrelationConfig, CorrelationLayer};
use http::{Request, StatusCode};
use tower::ServiceExt;

#[tokio::test]
async fn a_5xx_writes_the_buffer_and_a_200_drops_it() {
    let config = CorrelationConfig::builder()
        .log_buffer(LogBuffer::new())
        .build()
        .unwrap();
    let capture: &'static LogCapture = Box::leak(Box::default());
    RequestLogger::new(capture)
        .parse_filters("info")
        .init(&config)
        .unwrap();
    let app = Router::new()
        .route(
            "/fail",
            get(|| async {
                log::debug!("fail detail");
                StatusCode::SERVICE_UNAVAILABLE
            }),
        )
        .route(
            "/ok",
            get(|| async {
                log::debug!("ok detail");
                "ok"
            }),
        )
        .layer(CorrelationLayer::with_config(config));
    for (path, status, kept) in [
        (
            "/fail",
            StatusCode::SERVICE_UNAVAILABLE,
            vec!["fail detail"],
        ),
        ("/ok", StatusCode::OK, vec![]),
    ] {
        let request = Request::get(path).body(Body::empty()).unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), status);
        let id = response.headers()["x-request-id"].to_str().unwrap();
        let lines: Vec<_> = capture
            .records_for(id)
            .into_iter()
            .map(|record| record.message)
            .collect();
        assert_eq!(lines, kept, "{path}");
    }
}
