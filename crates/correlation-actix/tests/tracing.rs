//! With the `tracing` feature, every `tracing` event of a request carries
//! `correlation_id` (from the `correlation` span core opens for it): in the handler, nested
//! calls, spawned work, the streamed body and actix-web's `Logger` access line placed
//! inside `Correlation` (a `log` record bridged by `tracing-log`), with
//! `tracing-subscriber`'s JSON output.
#![cfg(feature = "tracing")]

use actix_web::middleware::Logger;
use actix_web::web::Bytes;
use actix_web::{App, HttpResponse, test, web};
use correlation_actix::correlation_core::test_util::TracingCapture;
use correlation_actix::{Correlation, CorrelationId};
use futures_util::StreamExt;

fn nested() {
    tracing::info!("nested call");
}

async fn index(id: CorrelationId) -> String {
    tracing::info!("handler event");
    log::info!("bridged log record");
    nested();
    correlation_actix::correlation_core::spawn_local(async { tracing::info!("spawned event") })
        .await
        .unwrap();
    id.to_string()
}

async fn streaming() -> HttpResponse {
    HttpResponse::Ok().streaming(futures_util::stream::iter(0..2).map(|n| {
        tracing::info!("streamed chunk {n}");
        Ok::<_, actix_web::Error>(Bytes::from_static(b"x"))
    }))
}

async fn call(path: &str) -> String {
    let app = test::init_service(
        App::new()
            .route("/", web::get().to(index))
            .route("/stream", web::get().to(streaming))
            .wrap(Logger::new("access %s %r"))
            .wrap(Correlation::default()),
    )
    .await;
    let response = test::call_service(&app, test::TestRequest::get().uri(path).to_request()).await;
    let id = response
        .headers()
        .get("x-request-id")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    test::read_body(response).await;
    id
}

#[actix_web::test]
async fn every_event_of_a_request_carries_the_correlation_id() {
    let capture = TracingCapture::install();
    let (first, second) = futures_util::join!(call("/"), call("/"));
    let stream = call("/stream").await;
    for id in [&first, &second] {
        capture.assert_each_once_under(
            id,
            &[
                "handler event",
                "bridged log record",
                "nested call",
                "spawned event",
            ],
        );
        let mine = capture.messages_for(id);
        assert_eq!(
            mine.iter()
                .filter(|m| m.starts_with("access 200 GET / "))
                .count(),
            1,
            "Logger's line under {id}: {mine:?}"
        );
    }
    capture.assert_events_under("streamed chunk", 2, &stream);
}
