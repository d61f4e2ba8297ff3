//! RabbitMQ and other AMQP 0-9-1 brokers (`lapin`): the correlation ID in the message's
//! header table.
//!
//! Publish with [`with_current`] around the message's properties (or add the ID to a
//! header table of your own with [`inject_current`]), and run each delivery's handler in
//! [`message_context`].
//!
//! ```no_run
//! use correlation_core::CorrelationConfig;
//! use correlation_core::propagation::lapin::{message_context, with_current};
//! use futures_util::StreamExt;
//! use lapin::BasicProperties;
//! use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicPublishOptions};
//! use lapin::types::FieldTable;
//!
//! # async fn handle(_data: &[u8]) {}
//! # async fn run(channel: lapin::Channel) -> Result<(), Box<dyn std::error::Error>> {
//! let config = CorrelationConfig::default();
//!
//! // In a request handler: the message carries the request's ID.
//! let properties = with_current(&config, BasicProperties::default());
//! channel
//!     .basic_publish("".into(), "emails".into(), BasicPublishOptions::default(), b"42", properties)
//!     .await?;
//!
//! // In the consumer: each delivery's handler logs under the ID it carries.
//! let options = BasicConsumeOptions::default();
//! let mut deliveries = channel
//!     .basic_consume("emails".into(), "mailer".into(), options, FieldTable::default())
//!     .await?;
//! while let Some(delivery) = deliveries.next().await {
//!     let delivery = delivery?;
//!     message_context(&config, &delivery).wrap(handle(&delivery.data)).await;
//!     delivery.ack(BasicAckOptions::default()).await?;
//! }
//! # Ok(())
//! # }
//! ```

use ::lapin::BasicProperties;
use ::lapin::message::Delivery;
use ::lapin::types::{AMQPValue, FieldTable, LongString};

use super::{Carried, PARENT_JOB_ID_HEADER, find_incoming, received_context};
use crate::{CorrelationConfig, CorrelationContext};

/// Writes the current correlation ID into `headers` under `config`'s response header
/// name and, inside a job, the job's ID under [`PARENT_JOB_ID_HEADER`], as long strings,
/// replacing any values there. Returns whether an ID was written: outside a request or
/// job there is none, and the table is left alone.
///
/// ```
/// use correlation_core::propagation::lapin::inject_current;
/// use correlation_core::{CorrelationConfig, CorrelationId, sync_scope};
/// use lapin::types::{AMQPValue, FieldTable};
///
/// let config = CorrelationConfig::default();
/// let mut headers = FieldTable::default();
/// let id = CorrelationId::from_static("5bd6e2a7fa4a4c32bd84a5ec5a43c1d3");
/// assert!(sync_scope(id, || inject_current(&config, &mut headers)));
/// assert_eq!(
///     headers.inner()["x-request-id"],
///     AMQPValue::LongString("5bd6e2a7fa4a4c32bd84a5ec5a43c1d3".into())
/// );
/// assert!(!inject_current(&config, &mut FieldTable::default()));
/// ```
pub fn inject_current(config: &CorrelationConfig, headers: &mut FieldTable) -> bool {
    let Some(id) = crate::current() else {
        return false;
    };
    let long_string = |value: &str| AMQPValue::LongString(LongString::from(value));
    headers.insert(
        config.response_header_name().as_str().into(),
        long_string(id.as_str()),
    );
    if let Some(job) = crate::current_job_id() {
        headers.insert(PARENT_JOB_ID_HEADER.into(), long_string(job.as_str()));
    }
    true
}

/// `properties` with the current context added to their headers, as [`inject_current`]
/// writes it (other headers are kept): pass them to `basic_publish`.
pub fn with_current(config: &CorrelationConfig, properties: BasicProperties) -> BasicProperties {
    let mut headers = properties.headers().clone().unwrap_or_default();
    if inject_current(config, &mut headers) {
        properties.with_headers(headers)
    } else {
        properties
    }
}

/// The context to run a delivery's handler in (see the [module docs](super#messages)):
/// the ID under the first of `config`'s incoming header names the delivery carries,
/// decided as for a request, a fresh job ID, and the publishing job as the parent.
///
/// A string (long or short) or byte-array value is read as the ID; a value of another
/// type (a number, say) counts as invalid and is replaced.
pub fn message_context(config: &CorrelationConfig, delivery: &Delivery) -> CorrelationContext {
    let headers = delivery.properties.headers().as_ref();
    let find = |wanted: &str| {
        headers?
            .inner()
            .iter()
            .find(|(name, _)| name.as_str().eq_ignore_ascii_case(wanted))
            .map(|(_, value)| match value {
                AMQPValue::LongString(value) => Carried::Bytes(value.as_bytes()),
                AMQPValue::ShortString(value) => Carried::Bytes(value.as_str().as_bytes()),
                AMQPValue::ByteArray(value) => Carried::Bytes(value.as_slice()),
                _ => Carried::Unusable,
            })
    };
    received_context(
        config,
        find_incoming(config, find),
        find(PARENT_JOB_ID_HEADER),
    )
}
