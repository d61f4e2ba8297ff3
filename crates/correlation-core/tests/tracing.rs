//! With the `tracing` feature, every `tracing` event of a request — and every `log` record
//! bridged by `tracing-log` — carries `correlation_id` from the request span, in nested
//! calls, spawned tasks and blocking closures alike.
#![cfg(all(feature = "test-util-tracing", feature = "tracing"))]
// Tests start tasks outside any request on purpose.
#![allow(clippy::disallowed_methods)]

use correlation_core::test_util::TracingCapture;
use correlation_core::{CorrelationConfig, CorrelationId, spawn, spawn_blocking};

fn nested_function() {
    tracing::info!("nested call");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_of_a_request_carries_the_correlation_id() {
    let capture = TracingCapture::install();
    let config = CorrelationConfig::default();
    let requests = (0..4).map(|n| {
        let id = CorrelationId::new(&format!("trace-{n}")).unwrap();
        let context = correlation_core::adapter::request_context(&config, id.into());
        context.wrap(async move {
            tracing::info!("handler {n}");
            log::info!("bridged {n}");
            nested_function();
            spawn(async move { tracing::info!("spawned {n}") })
                .await
                .unwrap();
            spawn_blocking(move || tracing::info!("blocking {n}"))
                .await
                .unwrap();
        })
    });
    let handles: Vec<_> = requests.map(tokio::spawn).collect();
    for handle in handles {
        handle.await.unwrap();
    }
    for n in 0..4 {
        for prefix in ["handler", "bridged", "spawned", "blocking"] {
            let found = capture.events_starting_with(&format!("{prefix} {n}"));
            assert_eq!(found.len(), 1, "{prefix} {n}");
            assert_eq!(
                found[0].correlation_id.as_deref(),
                Some(format!("trace-{n}").as_str())
            );
            assert_eq!(found[0].json["spans"][0]["name"], "correlation");
        }
    }
    let mut ids: Vec<_> = capture
        .events_starting_with("nested call")
        .into_iter()
        .map(|event| event.correlation_id.unwrap())
        .collect();
    ids.sort();
    assert_eq!(ids, ["trace-0", "trace-1", "trace-2", "trace-3"]);
}

#[tokio::test]
async fn events_outside_a_request_have_no_request_span() {
    let capture = TracingCapture::install();
    tracing::info!("outside marker");
    let found = capture.events_starting_with("outside marker");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].correlation_id, None);
    assert!(
        found[0]
            .json
            .get("spans")
            .is_none_or(|spans| spans.as_array().is_some_and(Vec::is_empty))
    );
}

#[tokio::test]
async fn events_inside_a_request_context_carry_its_span() {
    let capture = TracingCapture::install();
    let context = correlation_core::adapter::request_context(
        &CorrelationConfig::default(),
        CorrelationId::from_static("entered-1").into(),
    );
    context.run(|| tracing::info!("entered marker"));
    tracing::info!("left marker");
    let found = capture.events_starting_with("entered marker");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].correlation_id.as_deref(), Some("entered-1"));
    assert_eq!(found[0].json["spans"][0]["name"], "correlation");
    assert_eq!(
        capture.events_starting_with("left marker")[0].correlation_id,
        None
    );
}
