//! What the broker tests (`nats`, `lapin`, `mqtt`) share: the request ID they publish
//! under, and the assertions on what a consumer logged.

use correlation_core::strategy::{IdValidator, StrictUuidV4};
use correlation_core::test_util::{CapturedRecord, LogCapture};
use correlation_core::{CorrelationConfig, CorrelationId, Fields};

/// The ID of the request the tests publish from.
pub(crate) fn request_id() -> CorrelationId {
    CorrelationId::from_static("5bd6e2a7fa4a4c32bd84a5ec5a43c1d3")
}

/// The one `handled <payload>` line the consumer logged for `payload`.
pub(crate) fn handled(logs: &LogCapture, payload: &str) -> CapturedRecord {
    let message = format!("handled {payload}");
    let records = logs.filtered(|record| record.message == message);
    assert_eq!(records.len(), 1, "{message}: {records:?}");
    records.into_iter().next().unwrap()
}

/// Asserts that the message `payload` was handled under the request's ID, as a job of its
/// own (a fresh job ID) whose parent is `parent`: the publishing job, or none when a
/// request published it.
pub(crate) fn assert_handled_as_a_job_of(logs: &LogCapture, payload: &str, parent: Option<&str>) {
    let record = handled(logs, payload);
    assert_eq!(
        record.correlation_id.as_deref(),
        Some(request_id().as_str())
    );
    assert!(
        record.job_id.as_deref().is_some_and(is_v4_hex),
        "{record:?}"
    );
    assert_eq!(record.parent_job_id.as_deref(), parent);
    assert_ne!(record.job_id.as_deref(), parent);
}

/// The three messages of the "fresh and hostile" tests, handled: `carried` under the
/// request's ID; `bare`, sent without one, under a fresh ID; `hostile`, whose carried
/// value contained `hostile-value`, under another fresh ID, with exactly one warning and
/// the value in no line of ours. `library` is the client library's log target, whose own
/// trace logging may print whole protocol frames, headers included, when its level is on
/// (as here: the capture takes every level); the promise is about the lines this crate and
/// the application write.
pub(crate) fn assert_carried_fresh_and_replaced(
    logs: &LogCapture,
    [carried, bare, hostile]: [&str; 3],
    library: &str,
) {
    assert_eq!(
        handled(logs, carried).correlation_id.as_deref(),
        Some(request_id().as_str())
    );
    // Never the previous message's ID, never a placeholder.
    let fresh = handled(logs, bare).correlation_id.unwrap();
    assert!(is_v4_hex(&fresh), "{fresh}");
    assert_ne!(fresh, request_id().as_str());

    let replaced = handled(logs, hostile).correlation_id.unwrap();
    assert!(is_v4_hex(&replaced), "{replaced}");
    assert_ne!(replaced, fresh);
    let warnings = logs.filtered(|record| {
        record.level == log::Level::Warn && record.correlation_id.as_deref() == Some(&replaced)
    });
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    let leaked: Vec<_> = logs
        .records_containing("hostile-value")
        .into_iter()
        .filter(|record| !record.target.starts_with(library))
        .collect();
    assert!(leaked.is_empty(), "{leaked:?}");
}

/// Whether `id` is what the default generator makes: a UUID v4 as 32 hex digits.
pub(crate) fn is_v4_hex(id: &str) -> bool {
    id.len() == 32 && StrictUuidV4.is_valid(id)
}

/// The configuration publishers and consumers share: `tenant` and `user` travel as
/// baggage.
pub(crate) fn baggage_config() -> CorrelationConfig {
    CorrelationConfig::builder()
        .baggage_keys(["tenant", "user"])
        .build()
        .unwrap()
}

/// Sets the fields the baggage tests publish with: two baggage keys, and one that stays
/// in the publisher.
pub(crate) fn set_baggage_fields() {
    assert!(Fields::insert("tenant", "acme corp"));
    assert!(Fields::insert("user", "alice"));
    assert!(Fields::insert("card", "4242"));
}

/// Asserts that the consumer handled `payload` with the publisher's baggage fields, next
/// to the ID, and that `card`, which is not a baggage key, stayed behind.
pub(crate) fn assert_handled_with_baggage(logs: &LogCapture, payload: &str) {
    let record = handled(logs, payload);
    assert_eq!(
        record.correlation_id.as_deref(),
        Some(request_id().as_str())
    );
    assert!(
        record
            .rendered
            .contains(r#"tenant="acme corp" user=alice "#),
        "{record:?}"
    );
    assert!(!record.rendered.contains("4242"), "{record:?}");
}
