//! tracing-actix-web's `TracingLogger` with [`CorrelationRootSpanBuilder`]: the root span's
//! `request_id` is the correlation ID, so no line carries two different request IDs.
#![cfg(feature = "tracing-actix-web")]

use actix_web::{App, test, web};
use correlation_actix::correlation_core::test_util::TracingCapture;
use correlation_actix::{Correlation, CorrelationRootSpanBuilder};
use tracing_actix_web::TracingLogger;

async fn index() -> &'static str {
    tracing::info!("inside the root span");
    "ok"
}

/// Every `request_id` and `correlation_id` recorded by the spans around `message`'s events.
fn ids_around(capture: &TracingCapture, message: &str) -> Vec<Vec<String>> {
    capture
        .events()
        .into_iter()
        .filter(|event| event.message == message)
        .map(|event| {
            event.json["spans"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|span| [&span["request_id"], &span["correlation_id"]])
                .filter_map(|value| value.as_str().map(str::to_owned))
                .collect()
        })
        .collect()
}

#[actix_web::test]
async fn the_root_span_records_the_correlation_id_as_its_request_id() {
    let capture = TracingCapture::install();
    let app = test::init_service(
        App::new()
            .route("/", web::get().to(index))
            .wrap(TracingLogger::<CorrelationRootSpanBuilder>::new())
            .wrap(Correlation::default()),
    )
    .await;

    let mut ids = Vec::new();
    for incoming in [
        Some("3758c31e-1177-4540-ba33-0109c405579a"),
        None,
        Some("evil\tvalue"),
    ] {
        let mut request = test::TestRequest::get().uri("/");
        if let Some(incoming) = incoming {
            request = request.insert_header(("x-request-id", incoming));
        }
        let response = test::call_service(&app, request.to_request()).await;
        let id = response
            .headers()
            .get("x-request-id")
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        test::read_body(response).await;
        ids.push(id);
    }
    assert_eq!(ids[0], "3758c31e-1177-4540-ba33-0109c405579a");

    let recorded = ids_around(capture, "inside the root span");
    assert_eq!(recorded.len(), 3, "one event per request: {recorded:?}");
    for (id, around) in ids.iter().zip(&recorded) {
        assert!(
            !around.is_empty(),
            "the root span records the ID: {around:?}"
        );
        assert!(
            around.iter().all(|seen| seen == id),
            "every ID around the event is the response's {id}: {around:?}"
        );
    }
}
