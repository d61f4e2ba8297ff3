//! Carrying the correlation ID beyond one process: onto outgoing HTTP calls, into
//! background jobs and through message brokers.
//!
//! Each integration is thin; the header work is
//! [`CorrelationConfig::inject_current`](crate::CorrelationConfig::inject_current) and
//! the job context is [`JobCarrier`](crate::JobCarrier).
//!
//! | feature | what | for |
//! |---|---|---|
//! | `reqwest` | [`PropagateCorrelationMiddleware`] | `reqwest-middleware` clients |
//! | `tower` | [`PropagateCorrelationLayer`] | any tower client of `http::Request` (hyper-util's `Client`, tonic channels) |
//! | `apalis` | [`JobContextLayer`], [`correlated_task`] | apalis workers and producers, any storage (SQLite, Postgres, Redis, in-memory) |
//! | `nats` | [`nats`](mod@nats) | `async-nats` publishers and subscribers, core NATS and JetStream |
//! | `lapin` | [`lapin`](mod@lapin) | RabbitMQ (AMQP 0-9-1) publishers and consumers |
//! | `mqtt` | [`mqtt`](mod@mqtt) | `rumqttc` MQTT v5 publishers and subscribers |
//!
//! The outgoing header is the configuration's
//! [`response_header_name`](crate::CorrelationConfig::response_header_name) (default
//! `x-request-id`): the name this service echoes is the name its peers read. Calls made
//! outside a request (and outside a job) carry no header, so the receiving service
//! generates an ID of its own.
//!
//! # Messages
//!
//! The broker modules have the same two halves. On publish, `inject_current` writes the
//! current ID under the response header name and, inside a job, the job's ID under
//! [`PARENT_JOB_ID_HEADER`]. On receipt, `message_context` gives the context to run the
//! message's handler in: every delivery is a job run of its own (a fresh
//! [`current_job_id`](crate::current_job_id), the publishing job as its
//! [`parent_job_id`](crate::parent_job_id)), under the carried correlation ID. The ID is
//! decided exactly as for an HTTP request ([`CorrelationConfig::decide_value`]): a
//! message without one gets a generated ID, and a value that fails validation is
//! replaced and reported in one `WARN` that never contains it. Header names are
//! matched without regard to ASCII case, as in HTTP.

#[cfg(any(feature = "nats", feature = "lapin", feature = "mqtt"))]
use crate::{CorrelationConfig, CorrelationContext, JobId, LOG_TARGET};

#[cfg(feature = "apalis")]
mod apalis;
#[cfg(feature = "lapin")]
#[cfg_attr(docsrs, doc(cfg(feature = "lapin")))]
pub mod lapin;
#[cfg(feature = "mqtt")]
#[cfg_attr(docsrs, doc(cfg(feature = "mqtt")))]
pub mod mqtt;
#[cfg(feature = "nats")]
#[cfg_attr(docsrs, doc(cfg(feature = "nats")))]
pub mod nats;
#[cfg(feature = "reqwest")]
mod reqwest;
#[cfg(feature = "tower")]
mod tower;

#[cfg(feature = "apalis")]
#[cfg_attr(docsrs, doc(cfg(feature = "apalis")))]
pub use self::apalis::{
    JobContextLayer, JobContextService, METADATA_CORRELATION_ID, METADATA_JOB_ID,
    METADATA_PARENT_JOB_ID, correlated_task,
};
#[cfg(feature = "reqwest")]
#[cfg_attr(docsrs, doc(cfg(feature = "reqwest")))]
pub use self::reqwest::PropagateCorrelationMiddleware;
#[cfg(feature = "tower")]
#[cfg_attr(docsrs, doc(cfg(feature = "tower")))]
pub use self::tower::{PropagateCorrelation, PropagateCorrelationLayer};

/// The message header (MQTT: user property) carrying the ID of the job that published a
/// message, which becomes the parent job of the run handling it.
#[cfg(any(feature = "nats", feature = "lapin", feature = "mqtt"))]
#[cfg_attr(
    docsrs,
    doc(cfg(any(feature = "nats", feature = "lapin", feature = "mqtt")))
)]
pub const PARENT_JOB_ID_HEADER: &str = "x-parent-job-id";

/// A value found under a message header, as far as deciding the ID is concerned.
#[cfg(any(feature = "nats", feature = "lapin", feature = "mqtt"))]
#[derive(Debug, Clone, Copy)]
enum Carried<'a> {
    /// The header's value.
    Bytes(&'a [u8]),
    /// A value that cannot be an ID at all (an AMQP number, say): it counts as invalid.
    #[cfg_attr(not(feature = "lapin"), allow(dead_code))]
    Unusable,
}

#[cfg(any(feature = "nats", feature = "lapin", feature = "mqtt"))]
impl Carried<'_> {
    fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Carried::Bytes(bytes) => Some(bytes),
            Carried::Unusable => None,
        }
    }
}

/// The context a received message's handler runs in, from the values a message carries
/// under the configuration's first incoming header name present (`correlation_id`) and
/// under [`PARENT_JOB_ID_HEADER`].
///
/// The correlation ID goes through the request decision, so a missing one is generated
/// and an invalid one replaced with its `WARN`; an unusable parent job ID is dropped with
/// a `WARN`, as the apalis layer does.
#[cfg(any(feature = "nats", feature = "lapin", feature = "mqtt"))]
fn received_context(
    config: &CorrelationConfig,
    correlation_id: Option<Carried<'_>>,
    parent_job_id: Option<Carried<'_>>,
) -> CorrelationContext {
    // A value `http` cannot hold (a control character, say) is at least as invalid as
    // one it can: the tab stands in for it, which no validator accepts because it breaks
    // the safety rules, so the decision replaces it and warns.
    let invalid = http::HeaderValue::from_static("\t");
    let incoming = correlation_id.map(|carried| {
        carried
            .as_bytes()
            .and_then(|bytes| http::HeaderValue::from_bytes(bytes).ok())
            .unwrap_or_else(|| invalid.clone())
    });
    let decision = config.decide_value(incoming.as_ref());
    let parent = parent_job_id.map(|carried| {
        carried
            .as_bytes()
            .and_then(|bytes| std::str::from_utf8(bytes).ok())
            .and_then(|value| JobId::new(value).ok())
    });
    let context = crate::JobCarrier::new(Some(decision.id), parent.clone().flatten())
        .into_context_with(config);
    if matches!(parent, Some(None)) {
        context.run(|| {
            log::warn!(
                target: LOG_TARGET,
                "Message header {PARENT_JOB_ID_HEADER} held an unusable job ID; it was ignored"
            );
        });
    }
    context
}

/// The first of the configuration's incoming header names that `find` finds, so a
/// message is read like a request.
#[cfg(any(feature = "nats", feature = "lapin", feature = "mqtt"))]
fn find_incoming<'a>(
    config: &CorrelationConfig,
    mut find: impl FnMut(&str) -> Option<Carried<'a>>,
) -> Option<Carried<'a>> {
    config
        .incoming_header_names()
        .iter()
        .find_map(|name| find(name.as_str()))
}

#[cfg(all(test, any(feature = "nats", feature = "lapin", feature = "mqtt")))]
mod tests {
    use super::*;
    use crate::OnInvalid;
    use crate::strategy::{IdValidator, StrictUuidV4};
    use crate::test_util::LogCapture;

    const ID: &str = "5bd6e2a7fa4a4c32bd84a5ec5a43c1d3";

    fn is_v4_hex(id: &str) -> bool {
        id.len() == 32 && StrictUuidV4.is_valid(id)
    }

    fn warnings_under(logs: &LogCapture, id: &str) -> usize {
        logs.filtered(|r| r.level == log::Level::Warn && r.correlation_id.as_deref() == Some(id))
            .len()
    }

    #[test]
    fn a_carried_id_and_parent_are_used_and_each_run_gets_its_own_job_id() {
        let config = CorrelationConfig::default();
        let parent = JobId::generate();
        let carried = Some(Carried::Bytes(ID.as_bytes()));
        let parent_bytes = Some(Carried::Bytes(parent.as_str().as_bytes()));
        let first = received_context(&config, carried, parent_bytes);
        let second = received_context(&config, carried, parent_bytes);
        assert_eq!(first.id().unwrap(), ID);
        assert_eq!(first.parent_job_id(), Some(&parent));
        assert_ne!(first.job_id(), second.job_id());
    }

    #[test]
    fn values_no_header_can_hold_and_non_strings_are_replaced_with_one_warning() {
        let logs = LogCapture::install();
        let config = CorrelationConfig::default();
        for carried in [
            Carried::Bytes(b"control-chars\r\n\x1b[2J"),
            Carried::Bytes(b"\xff\xfe"),
            Carried::Unusable,
        ] {
            let context = received_context(&config, Some(carried), None);
            let id = context.id().unwrap().as_str();
            assert!(is_v4_hex(id), "{id}");
            assert_eq!(warnings_under(logs, id), 1, "{carried:?}");
        }
        assert!(logs.records_containing("control-chars").is_empty());
    }

    #[test]
    fn an_unusable_parent_is_dropped_with_a_warning_and_rejecting_configs_still_run() {
        let logs = LogCapture::install();
        let config = CorrelationConfig::builder()
            .on_invalid(OnInvalid::Reject)
            .build()
            .unwrap();
        let carried = Some(Carried::Bytes(b"not a uuid"));
        let context = received_context(&config, carried, Some(Carried::Bytes(b"a b")));
        let id = context.id().unwrap().as_str();
        assert!(is_v4_hex(id), "{id}");
        assert_eq!(context.parent_job_id(), None);
        // One for the replaced ID, one for the dropped parent.
        assert_eq!(warnings_under(logs, id), 2);
    }
}
