//! The correlation ID in a broker's message headers: one pair of functions for every
//! broker, over the types each broker's module implements [`MessageHeaders`] for.

use self::sealed::Carried;
use crate::{CorrelationConfig, CorrelationContext, JobId, LOG_TARGET};

/// The message header (MQTT: user property) carrying the ID of the job that published a
/// message, which becomes the parent job of the run handling it.
pub(super) const PARENT_JOB_ID_HEADER: &str = "x-parent-job-id";

/// The message header (MQTT: user property) carrying the propagated fields as a W3C
/// baggage list.
const BAGGAGE_HEADER: &str = "baggage";

/// A message, or the headers of one, that carries the correlation ID through a broker:
/// what [`inject_current`] writes to and [`message_context`] reads from.
///
/// | feature | broker | publish: write into | receive: read from |
/// |---|---|---|---|
/// | `nats` | NATS, core and JetStream (`async-nats`) | `async_nats::HeaderMap` | `async_nats::Message` (a JetStream message's `message` field) |
/// | `lapin` | RabbitMQ and other AMQP 0-9-1 brokers (`lapin`) | `lapin::BasicProperties`, `lapin::types::FieldTable` | `lapin::message::Delivery` |
/// | `mqtt` | MQTT v5 (`rumqttc`'s `v5` client): user properties | `rumqttc::v5::mqttbytes::v5::PublishProperties` | `rumqttc::v5::mqttbytes::v5::Publish` |
///
/// Each type is readable and writable alike. Header names are matched without regard to
/// ASCII case, as in HTTP. This crate implements the trait; it is sealed.
pub trait MessageHeaders: sealed::Sealed {}

/// What [`MessageHeaders`] stands for, nameable only inside this crate.
#[allow(unreachable_pub)] // public in a private module: the trait is sealed
pub(super) mod sealed {
    /// The operations behind [`MessageHeaders`](super::MessageHeaders).
    pub trait Sealed {
        /// The first value under `name`, matched without regard to ASCII case.
        fn find(&self, name: &str) -> Option<Carried<'_>>;

        /// Puts `value` under `name`, replacing any values under that name.
        fn set(&mut self, name: &str, value: &str);
    }

    /// A value found under a message header, as far as deciding the ID is concerned.
    #[derive(Debug, Clone, Copy)]
    pub enum Carried<'a> {
        /// The header's value.
        Bytes(&'a [u8]),
        /// A value that cannot be an ID at all (an AMQP number, say): it counts as
        /// invalid.
        #[cfg_attr(not(feature = "lapin"), allow(dead_code))]
        Unusable,
    }
}

impl<'a> Carried<'a> {
    fn as_bytes(self) -> Option<&'a [u8]> {
        match self {
            Carried::Bytes(bytes) => Some(bytes),
            Carried::Unusable => None,
        }
    }
}

/// Writes the current correlation ID into `headers` under `config`'s response header
/// name and, inside a job, the job's ID under `x-parent-job-id`, replacing any values
/// under those names, and the current fields under `config`'s
/// [`baggage_keys`](crate::CorrelationConfigBuilder::baggage_keys) under `baggage`,
/// merged with a list already there. Returns whether an ID was written: outside a
/// request or job there is none, and the headers are left alone.
///
/// ```
/// # #[cfg(feature = "nats")] {
/// use correlation_core::propagation::inject_current;
/// use correlation_core::{CorrelationConfig, CorrelationId, sync_scope};
///
/// let config = CorrelationConfig::default();
/// let mut headers = async_nats::HeaderMap::new();
/// let id = CorrelationId::from_static("5bd6e2a7fa4a4c32bd84a5ec5a43c1d3");
/// assert!(sync_scope(id, || inject_current(&config, &mut headers)));
/// assert_eq!(headers.get("x-request-id").unwrap().as_str(), "5bd6e2a7fa4a4c32bd84a5ec5a43c1d3");
/// assert!(!inject_current(&config, &mut async_nats::HeaderMap::new()));
/// # }
/// ```
pub fn inject_current(config: &CorrelationConfig, headers: &mut impl MessageHeaders) -> bool {
    let Some(id) = crate::current() else {
        return false;
    };
    headers.set(config.response_header_name().as_str(), id.as_str());
    if let Some(job) = crate::current_job_id() {
        headers.set(PARENT_JOB_ID_HEADER, job.as_str());
    }
    // A value under `baggage` that is not text (an AMQP number, say) is left alone.
    let list = match headers.find(BAGGAGE_HEADER) {
        None => config.outgoing_baggage(None),
        Some(carried) => carried
            .as_bytes()
            .and_then(|existing| config.outgoing_baggage(Some(existing))),
    };
    if let Some(list) = list {
        headers.set(BAGGAGE_HEADER, &list);
    }
    true
}

/// The context to run a received message's handler in (see the
/// [module docs](super#messages)): the ID under the first of `config`'s incoming header
/// names the message carries, decided as for a request, a fresh job ID, the publishing
/// job as the parent, and the fields its `baggage` header holds under `config`'s
/// [`baggage_keys`](crate::CorrelationConfigBuilder::baggage_keys) (a malformed member
/// left out with one `WARN` that never shows it).
///
/// The correlation ID goes through the request decision, so a missing one is generated
/// and an invalid one replaced with its `WARN`; an unusable parent job ID is dropped with
/// a `WARN`, as the apalis layer does. Of several values under one name, the first
/// counts.
///
/// ```
/// # #[cfg(feature = "nats")] {
/// use correlation_core::propagation::message_context;
/// use correlation_core::CorrelationConfig;
///
/// let mut headers = async_nats::HeaderMap::new();
/// headers.insert("X-Request-ID", "5bd6e2a7fa4a4c32bd84a5ec5a43c1d3");
/// let message = async_nats::Message {
///     subject: "orders.created".into(),
///     reply: None,
///     payload: "42".into(),
///     headers: Some(headers),
///     status: None,
///     description: None,
///     length: 0,
/// };
/// let config = CorrelationConfig::default();
/// let context = message_context(&config, &message);
/// assert_eq!(context.id().unwrap(), "5bd6e2a7fa4a4c32bd84a5ec5a43c1d3");
/// assert!(context.job_id().is_some());
///
/// let bare = async_nats::Message { headers: None, ..message };
/// assert_eq!(message_context(&config, &bare).id().unwrap().len(), 32);
/// # }
/// ```
pub fn message_context(
    config: &CorrelationConfig,
    message: &impl MessageHeaders,
) -> CorrelationContext {
    let correlation_id = config
        .incoming_header_names()
        .iter()
        .find_map(|name| message.find(name.as_str()));
    received_context(
        config,
        correlation_id,
        message.find(PARENT_JOB_ID_HEADER),
        message.find(BAGGAGE_HEADER),
    )
}

/// The context a received message's handler runs in, from the values it carries under
/// the configuration's first incoming header name present (`correlation_id`) and under
/// the parent-job header.
fn received_context(
    config: &CorrelationConfig,
    correlation_id: Option<Carried<'_>>,
    parent_job_id: Option<Carried<'_>>,
    baggage: Option<Carried<'_>>,
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
    if let (Some(allowed), Some(carried)) = (config.baggage(), baggage) {
        let (fields, left_out) = match carried.as_bytes() {
            Some(list) => allowed.fields([list]),
            None => (
                crate::Fields::default(),
                Some("the baggage header is not text"),
            ),
        };
        fields.set_in(&context);
        if let Some(left_out) = left_out {
            context.run(|| {
                log::warn!(target: LOG_TARGET, "Left part of the baggage header out: {left_out}");
            });
        }
    }
    context
}

#[cfg(test)]
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
        let first = received_context(&config, carried, parent_bytes, None);
        let second = received_context(&config, carried, parent_bytes, None);
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
            let context = received_context(&config, Some(carried), None, None);
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
        let context = received_context(&config, carried, Some(Carried::Bytes(b"a b")), None);
        let id = context.id().unwrap().as_str();
        assert!(is_v4_hex(id), "{id}");
        assert_eq!(context.parent_job_id(), None);
        // One for the replaced ID, one for the dropped parent.
        assert_eq!(warnings_under(logs, id), 2);
    }

    /// Injects inside a job, and returns the job's ID.
    fn inject_in_a_job(headers: &mut impl MessageHeaders) -> String {
        let config = CorrelationConfig::default();
        let context = crate::JobCarrier::new(Some(crate::CorrelationId::from_static(ID)), None)
            .into_context();
        assert!(context.run(|| inject_current(&config, headers)));
        assert!(!inject_current(&config, headers), "outside any context");
        context.job_id().unwrap().as_str().to_owned()
    }

    /// What a receiver finds in `headers` after injection inside a job: the ID and the
    /// job as the parent.
    fn assert_received(headers: &impl MessageHeaders, job: &str) {
        let context = message_context(&CorrelationConfig::default(), headers);
        assert_eq!(context.id().unwrap(), ID);
        assert_eq!(context.parent_job_id().unwrap().as_str(), job);
    }

    #[cfg(feature = "nats")]
    #[test]
    fn nats_headers_and_messages_carry_the_id_and_the_parent_job() {
        let mut headers = async_nats::HeaderMap::new();
        let job = inject_in_a_job(&mut headers);
        assert_eq!(headers.get("x-request-id").unwrap().as_str(), ID);
        assert_received(&headers, &job);

        let mut message = async_nats::Message {
            subject: "orders.created".into(),
            reply: None,
            payload: "42".into(),
            headers: None,
            status: None,
            description: None,
            length: 0,
        };
        let job = inject_in_a_job(&mut message);
        assert_received(&message, &job);
    }

    #[cfg(feature = "lapin")]
    #[test]
    fn amqp_header_tables_hold_long_strings_and_other_properties_are_kept() {
        use ::lapin::BasicProperties;
        use ::lapin::types::{AMQPValue, FieldTable};

        let mut table = FieldTable::default();
        let job = inject_in_a_job(&mut table);
        assert_eq!(
            table.inner()["x-request-id"],
            AMQPValue::LongString(ID.into())
        );
        assert_received(&table, &job);

        let mut properties = BasicProperties::default().with_content_type("text/plain".into());
        let job = inject_in_a_job(&mut properties);
        assert_eq!(
            properties.content_type().as_ref().unwrap().as_str(),
            "text/plain"
        );
        assert_received(&properties, &job);
    }

    #[cfg(feature = "mqtt")]
    #[test]
    fn mqtt_user_properties_replace_pairs_of_the_same_name_in_any_case() {
        use rumqttc::v5::mqttbytes::QoS;
        use rumqttc::v5::mqttbytes::v5::{Publish, PublishProperties};

        let mut properties = PublishProperties::default();
        properties
            .user_properties
            .push(("X-Request-ID".into(), "stale".into()));
        properties
            .user_properties
            .push(("other".into(), "kept".into()));
        let job = inject_in_a_job(&mut properties);
        assert_eq!(
            properties.user_properties,
            [
                ("other".to_owned(), "kept".to_owned()),
                ("x-request-id".to_owned(), ID.to_owned()),
                (PARENT_JOB_ID_HEADER.to_owned(), job.clone()),
            ]
        );
        assert_received(&properties, &job);

        let mut publish = Publish::new("orders/created", QoS::AtLeastOnce, "42", None);
        let job = inject_in_a_job(&mut publish);
        assert_received(&publish, &job);
    }

    #[cfg(feature = "nats")]
    #[test]
    fn messages_carry_the_baggage_keys_fields_merged_into_the_publishers_baggage() {
        let config = CorrelationConfig::builder()
            .baggage_keys(["tenant", "user"])
            .build()
            .unwrap();
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("baggage", "user=set-by-caller");
        let published = crate::sync_scope(crate::CorrelationId::from_static(ID), || {
            assert!(crate::Fields::insert("tenant", "acme corp"));
            assert!(crate::Fields::insert("user", "alice"));
            assert!(crate::Fields::insert("secret", "x"));
            inject_current(&config, &mut headers)
        });
        assert!(published);
        assert_eq!(
            headers.get("baggage").unwrap().as_str(),
            "user=set-by-caller,tenant=acme%20corp"
        );
        let context = message_context(&config, &headers);
        assert_eq!(
            context.run(|| crate::Fields::current().to_string()),
            r#"user=set-by-caller tenant="acme corp""#
        );
        // Without baggage keys, a message's baggage is not read.
        let context = message_context(&CorrelationConfig::default(), &headers);
        assert!(context.run(crate::Fields::current).is_empty());
    }
}
