//! MQTT v5 (`rumqttc`'s `v5` client): the correlation ID in a message's user properties.
//!
//! User properties are MQTT 5's message headers: any number of UTF-8 key-value pairs on
//! a `PUBLISH`, forwarded by the broker to every subscriber. MQTT 3.1.1 has no place for
//! them, so this needs a v5 connection (`rumqttc::v5::AsyncClient`).
//!
//! Publish with [`current_properties`] (or add the ID to properties of your own with
//! [`inject_current`]), and run each received `PUBLISH`'s handler in
//! [`message_context`].
//!
//! ```no_run
//! use correlation_core::CorrelationConfig;
//! use correlation_core::propagation::mqtt::{current_properties, message_context};
//! use rumqttc::v5::mqttbytes::QoS;
//! use rumqttc::v5::{AsyncClient, Event, EventLoop, Incoming};
//!
//! # async fn handle(_payload: &[u8]) {}
//! # async fn run(client: AsyncClient, mut events: EventLoop) -> Result<(), Box<dyn std::error::Error>> {
//! let config = CorrelationConfig::default();
//!
//! // In a request handler: the message carries the request's ID.
//! let properties = current_properties(&config);
//! client
//!     .publish_with_properties("orders/created", QoS::AtLeastOnce, false, "42", properties)
//!     .await?;
//!
//! // In the subscriber: each message's handler logs under the ID it carries.
//! loop {
//!     if let Event::Incoming(Incoming::Publish(publish)) = events.poll().await? {
//!         message_context(&config, &publish).wrap(handle(&publish.payload)).await;
//!     }
//! }
//! # }
//! ```

use rumqttc::v5::mqttbytes::v5::{Publish, PublishProperties};

use super::{Carried, PARENT_JOB_ID_HEADER, find_incoming, received_context};
use crate::{CorrelationConfig, CorrelationContext};

/// Writes the current correlation ID into `properties` as the user property named by
/// `config`'s response header name and, inside a job, the job's ID as
/// [`PARENT_JOB_ID_HEADER`], replacing any pairs with those names (in any ASCII case).
/// Returns whether an ID was written: outside a request or job there is none, and the
/// properties are left alone.
///
/// ```
/// use correlation_core::propagation::mqtt::inject_current;
/// use correlation_core::{CorrelationConfig, CorrelationId, sync_scope};
/// use rumqttc::v5::mqttbytes::v5::PublishProperties;
///
/// let config = CorrelationConfig::default();
/// let mut properties = PublishProperties::default();
/// properties.user_properties.push(("X-Request-ID".into(), "stale".into()));
/// let id = CorrelationId::from_static("5bd6e2a7fa4a4c32bd84a5ec5a43c1d3");
/// assert!(sync_scope(id, || inject_current(&config, &mut properties)));
/// assert_eq!(
///     properties.user_properties,
///     [("x-request-id".to_owned(), "5bd6e2a7fa4a4c32bd84a5ec5a43c1d3".to_owned())]
/// );
/// assert!(!inject_current(&config, &mut PublishProperties::default()));
/// ```
pub fn inject_current(config: &CorrelationConfig, properties: &mut PublishProperties) -> bool {
    let Some(id) = crate::current() else {
        return false;
    };
    let name = config.response_header_name().as_str();
    let job = crate::current_job_id();
    let pairs = &mut properties.user_properties;
    let replaced = |key: &str| {
        key.eq_ignore_ascii_case(name)
            || (job.is_some() && key.eq_ignore_ascii_case(PARENT_JOB_ID_HEADER))
    };
    pairs.retain(|(key, _)| !replaced(key));
    pairs.push((name.to_owned(), id.as_str().to_owned()));
    if let Some(job) = job {
        pairs.push((PARENT_JOB_ID_HEADER.to_owned(), job.as_str().to_owned()));
    }
    true
}

/// New properties carrying the current context, as [`inject_current`] writes it: pass
/// them to `publish_with_properties`.
pub fn current_properties(config: &CorrelationConfig) -> PublishProperties {
    let mut properties = PublishProperties::default();
    inject_current(config, &mut properties);
    properties
}

/// The context to run a received `PUBLISH`'s handler in (see the
/// [module docs](super#messages)): the ID under the first of `config`'s incoming header
/// names the message carries as a user property, decided as for a request, a fresh job
/// ID, and the publishing job as the parent. Of several pairs with one name, the first
/// counts.
///
/// ```
/// use correlation_core::propagation::mqtt::message_context;
/// use correlation_core::CorrelationConfig;
/// use rumqttc::v5::mqttbytes::QoS;
/// use rumqttc::v5::mqttbytes::v5::{Publish, PublishProperties};
///
/// let properties = PublishProperties {
///     user_properties: vec![("x-request-id".into(), "5bd6e2a7fa4a4c32bd84a5ec5a43c1d3".into())],
///     ..Default::default()
/// };
/// let publish = Publish::new("orders/created", QoS::AtLeastOnce, "42", Some(properties));
/// let config = CorrelationConfig::default();
/// let context = message_context(&config, &publish);
/// assert_eq!(context.id().unwrap(), "5bd6e2a7fa4a4c32bd84a5ec5a43c1d3");
///
/// let bare = Publish::new("orders/created", QoS::AtLeastOnce, "42", None);
/// assert_eq!(message_context(&config, &bare).id().unwrap().len(), 32);
/// ```
pub fn message_context(config: &CorrelationConfig, publish: &Publish) -> CorrelationContext {
    let pairs = publish
        .properties
        .as_ref()
        .map_or(&[][..], |properties| &properties.user_properties);
    let find = |wanted: &str| {
        pairs
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(wanted))
            .map(|(_, value)| Carried::Bytes(value.as_bytes()))
    };
    received_context(
        config,
        find_incoming(config, find),
        find(PARENT_JOB_ID_HEADER),
    )
}
