//! With the `tracing` feature, a request's span records its fields as one `fields` value,
//! so every event of the request, in spawned work too, carries them.
#![cfg(all(feature = "test-util-tracing", feature = "tracing"))]
// Tests start tasks outside any request on purpose.
#![allow(clippy::disallowed_methods)]

use correlation_core::test_util::TracingCapture;
use correlation_core::{CorrelationConfig, CorrelationId, Fields, spawn, spawn_blocking};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_request_span_records_the_fields_for_every_event() {
    let capture = TracingCapture::install();
    let config = CorrelationConfig::default();
    let requests = ["acme", "globex"].map(|tenant| {
        let id = CorrelationId::new(&format!("fields-{tenant}")).unwrap();
        let context = correlation_core::adapter::request_context(&config, id.into());
        tokio::spawn(context.wrap(async move {
            tracing::info!("before {tenant}");
            assert!(Fields::insert("tenant", tenant));
            // Inside a span of the application's own, the request's span still records.
            tracing::info_span!("handler").in_scope(|| assert!(Fields::insert("user", "a b")));
            tracing::info!("handler {tenant}");
            spawn(async move { tracing::info!("spawned {tenant}") })
                .await
                .unwrap();
            spawn_blocking(move || tracing::info!("blocking {tenant}"))
                .await
                .unwrap();
        }))
    });
    for request in requests {
        request.await.unwrap();
    }
    for tenant in ["acme", "globex"] {
        let before = &capture.events_starting_with(&format!("before {tenant}"))[0];
        assert_eq!(before.json["spans"][0].get("fields"), None);
        for prefix in ["handler", "spawned", "blocking"] {
            let found = capture.events_starting_with(&format!("{prefix} {tenant}"));
            assert_eq!(found.len(), 1, "{prefix} {tenant}");
            let span = &found[0].json["spans"][0];
            assert_eq!(span["name"], "correlation");
            assert_eq!(span["correlation_id"], format!("fields-{tenant}"));
            assert_eq!(span["fields"], format!(r#"tenant={tenant} user="a b""#));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_hop_ids_the_request_span_records_the_hop_id_beside_the_correlation_id() {
    let capture = TracingCapture::install();
    let config = CorrelationConfig::builder()
        .header_name("X-Correlation-ID")
        .hop_id_header("X-Request-ID")
        .validator(|id: &str| id.starts_with("hop-span-"))
        .build()
        .unwrap();
    let mut headers = http::HeaderMap::new();
    headers.insert("x-correlation-id", "hop-span-operation".parse().unwrap());
    let decision = correlation_core::adapter::decide_and_update(&config, &mut headers, || None)
        .expect("no trust policy needs the peer address");
    let hop = decision.hop_id().expect("hop IDs are on").to_string();
    let context = correlation_core::adapter::request_context(&config, decision);
    context
        .wrap(async {
            tracing::info!("hop span handler");
            spawn(async { tracing::info!("hop span spawned") })
                .await
                .unwrap();
        })
        .await;
    for message in ["hop span handler", "hop span spawned"] {
        let found = capture.events_starting_with(message);
        assert_eq!(found.len(), 1, "{message}");
        let span = &found[0].json["spans"][0];
        assert_eq!(span["correlation_id"], "hop-span-operation", "{message}");
        assert_eq!(span["hop_id"], hop.as_str(), "{message}");
    }
}
