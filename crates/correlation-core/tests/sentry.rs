//! With the `sentry` feature, every Sentry event captured while handling a request — in
//! the handler or in work spawned through core's helpers — carries the correlation ID as
//! a tag, and each request has its own hub so concurrent requests never share tags.
#![cfg(feature = "sentry")]

use correlation_core::{CorrelationConfig, CorrelationId, JobCarrier, spawn, spawn_blocking};
use sentry_core::protocol::Event;
use sentry_core::test::with_captured_events;

fn tag<'a>(event: &'a Event<'static>, name: &str) -> Option<&'a str> {
    event.tags.get(name).map(String::as_str)
}

fn message<'a>(event: &'a Event<'static>) -> &'a str {
    event.message.as_deref().unwrap_or_default()
}

#[test]
fn events_of_concurrent_requests_carry_their_own_id() {
    let events = with_captured_events(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let config = CorrelationConfig::default();
            let requests: Vec<_> = ["req-a", "req-b"]
                .into_iter()
                .map(|id| {
                    let context = correlation_core::adapter::request_context(
                        &config,
                        CorrelationId::from_static(id).into(),
                    );
                    context.wrap(async move {
                        sentry_core::capture_message(
                            &format!("handler {id}"),
                            sentry_core::Level::Error,
                        );
                        tokio::task::yield_now().await;
                        spawn(async move {
                            sentry_core::capture_message(
                                &format!("spawned {id}"),
                                sentry_core::Level::Error,
                            );
                        })
                        .await
                        .unwrap();
                        spawn_blocking(move || {
                            sentry_core::capture_message(
                                &format!("blocking {id}"),
                                sentry_core::Level::Error,
                            );
                        })
                        .await
                        .unwrap();
                    })
                })
                .collect();
            futures_join(requests).await;
        });
        sentry_core::capture_message("outside any request", sentry_core::Level::Info);
    });
    assert_eq!(events.len(), 7);
    for event in &events {
        let message = message(event);
        match message.split_once(' ') {
            Some((_, "any request")) => assert_eq!(tag(event, "transaction_id"), None),
            Some((_, id)) => assert_eq!(tag(event, "transaction_id"), Some(id), "{message}"),
            None => panic!("unexpected event {message}"),
        }
    }
}

#[test]
fn the_tag_name_is_configurable() {
    let events = with_captured_events(|| {
        let config = CorrelationConfig::builder()
            .sentry_tag("correlation_id")
            .build()
            .unwrap();
        correlation_core::adapter::request_context(
            &config,
            CorrelationId::from_static("req-c").into(),
        )
        .run(|| sentry_core::capture_message("tagged", sentry_core::Level::Error));
    });
    assert_eq!(events.len(), 1);
    assert_eq!(tag(&events[0], "correlation_id"), Some("req-c"));
    assert_eq!(tag(&events[0], "transaction_id"), None);
}

#[test]
fn events_inside_a_request_context_carry_its_tag() {
    let events = with_captured_events(|| {
        let context = correlation_core::adapter::request_context(
            &CorrelationConfig::default(),
            CorrelationId::from_static("req-e").into(),
        );
        context.run(|| sentry_core::capture_message("entered", sentry_core::Level::Error));
        sentry_core::capture_message("left", sentry_core::Level::Error);
    });
    assert_eq!(events.len(), 2);
    assert_eq!(message(&events[0]), "entered");
    assert_eq!(tag(&events[0], "transaction_id"), Some("req-e"));
    assert_eq!(tag(&events[1], "transaction_id"), None);
}

/// Polls the futures concurrently on the current task.
async fn futures_join<F: std::future::Future<Output = ()>>(futures: Vec<F>) {
    let mut futures: Vec<_> = futures.into_iter().map(Box::pin).collect();
    std::future::poll_fn(|cx| {
        futures.retain_mut(|future| future.as_mut().poll(cx).is_pending());
        if futures.is_empty() {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
}

#[test]
fn events_of_a_background_job_carry_its_correlation_id() {
    let events = with_captured_events(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let config = CorrelationConfig::default();
            // Enqueued by a request: the job carries the request's ID.
            let carrier = correlation_core::adapter::request_context(
                &config,
                CorrelationId::from_static("req-job").into(),
            )
            .run(JobCarrier::capture);
            carrier
                .into_context()
                .wrap(async {
                    sentry_core::capture_message("in the job", sentry_core::Level::Error);
                    spawn(async {
                        sentry_core::capture_message(
                            "spawned by the job",
                            sentry_core::Level::Error,
                        );
                    })
                    .await
                    .unwrap();
                })
                .await;
            // Scheduled with no ID: the configured tag carries the generated one.
            let tagged = CorrelationConfig::builder()
                .sentry_tag("correlation_id")
                .build()
                .unwrap();
            JobCarrier::new(None, None)
                .into_context_with(&tagged)
                .run(|| sentry_core::capture_message("scheduled", sentry_core::Level::Error));
        });
    });
    assert_eq!(events.len(), 3);
    for event in &events[..2] {
        assert_eq!(
            tag(event, "transaction_id"),
            Some("req-job"),
            "{}",
            message(event)
        );
        assert!(tag(event, "job_id").is_some_and(|id| id.len() == 32));
    }
    let scheduled = &events[2];
    assert_eq!(message(scheduled), "scheduled");
    assert!(tag(scheduled, "correlation_id").is_some_and(|id| id.len() == 32));
    assert_eq!(tag(scheduled, "transaction_id"), None);
}

#[test]
fn with_hop_ids_events_carry_the_hop_id_beside_the_correlation_id() {
    let config = CorrelationConfig::builder()
        .header_name("X-Correlation-ID")
        .hop_id_header("X-Request-ID")
        .validator(|id: &str| id.starts_with("req-"))
        .build()
        .unwrap();
    let mut hop = String::new();
    let events = with_captured_events(|| {
        let mut headers = http::HeaderMap::new();
        headers.insert("x-correlation-id", "req-operation".parse().unwrap());
        let decision =
            correlation_core::adapter::decide_and_update(&config, &mut headers, || None).unwrap();
        hop = decision.hop_id().expect("hop IDs are on").to_string();
        let context = correlation_core::adapter::request_context(&config, decision);
        context.run(|| sentry_core::capture_message("hop", sentry_core::Level::Error));
    });
    assert_eq!(events.len(), 1);
    assert_eq!(tag(&events[0], "transaction_id"), Some("req-operation"));
    assert_eq!(tag(&events[0], "hop_id"), Some(hop.as_str()));
}
