//! The request log under poem: a `5xx` response writes out the request's buffered
//! `DEBUG` lines, a `200` drops them.

use correlation_poem::correlation_core::request_log::{LogBuffer, RequestLogger};
use correlation_poem::correlation_core::test_util::LogCapture;
use correlation_poem::{Correlation, CorrelationConfig};
use poem::http::StatusCode;
use poem::{Endpoint, EndpointExt, Request, Route, get, handler};

#[handler]
fn fail() -> StatusCode {
    log::debug!("fail detail");
    StatusCode::SERVICE_UNAVAILABLE
}

#[handler]
fn ok() -> &'static str {
    log::debug!("ok detail");
    "ok"
}

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
    let app = Route::new()
        .at("/fail", get(fail))
        .at("/ok", get(ok))
        .with(Correlation::with_config(config));
    for (path, status, kept) in [
        (
            "/fail",
            StatusCode::SERVICE_UNAVAILABLE,
            vec!["fail detail"],
        ),
        ("/ok", StatusCode::OK, vec![]),
    ] {
        let response = app
            .call(Request::builder().uri_str(path).finish())
            .await
            .unwrap();
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
