//! With the `sentry` feature, a request's fields tag its Sentry scope, in spawned work
//! too, and never another request's.
#![cfg(feature = "sentry")]

use correlation_core::{CorrelationConfig, CorrelationId, Fields, spawn};
use sentry_core::test::with_captured_events;

#[test]
fn fields_tag_the_requests_own_scope() {
    let events = with_captured_events(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let config = CorrelationConfig::default();
            for tenant in ["acme", "globex"] {
                let id = CorrelationId::new(&format!("req-{tenant}")).unwrap();
                let context = correlation_core::adapter::request_context(&config, id.into());
                context
                    .wrap(async move {
                        assert!(Fields::insert("tenant", tenant));
                        spawn(async move {
                            sentry_core::capture_message(tenant, sentry_core::Level::Error);
                        })
                        .await
                        .unwrap();
                        assert!(Fields::remove("tenant"));
                        sentry_core::capture_message("removed", sentry_core::Level::Error);
                    })
                    .await;
            }
            sentry_core::capture_message("outside", sentry_core::Level::Error);
        });
    });
    let tags: Vec<_> = events
        .iter()
        .map(|event| {
            (
                event.message.as_deref().unwrap_or_default(),
                event.tags.get("tenant").map(String::as_str),
            )
        })
        .collect();
    assert_eq!(
        tags,
        [
            ("acme", Some("acme")),
            ("removed", None),
            ("globex", Some("globex")),
            ("removed", None),
            ("outside", None),
        ]
    );
}
