//! The request log under actix-web: a `5xx` response (or an error that becomes one)
//! writes out the request's buffered `DEBUG` lines, a `200` drops them.

use actix_web::http::StatusCode;
use actix_web::{App, HttpResponse, test, web};
use correlation_actix::correlation_core::request_log::{LogBuffer, RequestLogger};
use correlation_actix::correlation_core::test_util::LogCapture;
use correlation_actix::{Correlation, CorrelationConfig};

#[actix_web::test]
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
    let app = test::init_service(
        App::new()
            .wrap(Correlation::with_config(config))
            .route(
                "/fail",
                web::get().to(|| async {
                    log::debug!("fail detail");
                    HttpResponse::ServiceUnavailable().finish()
                }),
            )
            .route(
                "/error",
                web::get().to(|| async {
                    log::debug!("error detail");
                    Err::<HttpResponse, _>(actix_web::error::ErrorInternalServerError("broken"))
                }),
            )
            .route(
                "/ok",
                web::get().to(|| async {
                    log::debug!("ok detail");
                    HttpResponse::Ok().finish()
                }),
            ),
    )
    .await;
    for (path, status, kept) in [
        (
            "/fail",
            StatusCode::SERVICE_UNAVAILABLE,
            vec!["fail detail"],
        ),
        (
            "/error",
            StatusCode::INTERNAL_SERVER_ERROR,
            vec!["error detail"],
        ),
        ("/ok", StatusCode::OK, vec![]),
    ] {
        let response =
            test::call_service(&app, test::TestRequest::get().uri(path).to_request()).await;
        assert_eq!(response.status(), status);
        let id = response
            .headers()
            .get("x-request-id")
            .unwrap()
            .to_str()
            .unwrap();
        let lines: Vec<_> = capture
            .records_for(id)
            .into_iter()
            .map(|record| record.message)
            .collect();
        assert_eq!(lines, kept, "{path}");
    }
}
