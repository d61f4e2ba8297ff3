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
//! | `nats` | [`inject_current`], [`message_context`] | `async-nats` publishers and subscribers, core NATS and JetStream |
//! | `lapin` | [`inject_current`], [`message_context`] | RabbitMQ (AMQP 0-9-1) publishers and consumers |
//! | `mqtt` | [`inject_current`], [`message_context`] | `rumqttc` MQTT v5 publishers and subscribers |
//!
//! The outgoing header is the configuration's
//! [`response_header_name`](crate::CorrelationConfig::response_header_name) (default
//! `x-request-id`): the name this service echoes is the name its peers read. Calls made
//! outside a request (and outside a job) carry no header, so the receiving service
//! generates an ID of its own.
//!
//! # Fields as W3C baggage
//!
//! The fields under the configuration's
//! [`baggage_keys`](crate::CorrelationConfigBuilder::baggage_keys) travel with the ID: the
//! `reqwest` middleware, the `tower` layer (so tonic channels: gRPC metadata is HTTP/2
//! headers) and [`inject_current`] for the brokers write them as one W3C `baggage`
//! header (an MQTT user property, an AMQP header table entry), each value
//! percent-encoded. A `baggage` header already on the outgoing request or message, the
//! caller's own or one an OpenTelemetry propagator injected, keeps its members, and
//! ours are added for the keys it does not hold, so there is one header and each key
//! once. Calls and messages outside a request, or a request without such fields, get
//! no header from us.
//!
//! With OpenTelemetry's propagator on the same client (reqwest-tracing's middleware, a
//! tower layer calling `inject_context`), put ours after it, nearer the transport:
//! OpenTelemetry's injector replaces a `baggage` header it finds, so the one that runs
//! last decides, and ours merges.
//!
//! On the receiving side, a service reads an HTTP request's baggage from the peers its
//! [`baggage_from`](crate::CorrelationConfigBuilder::baggage_from) trusts.
//! [`message_context`] reads a message's baggage for the allow-listed keys whatever
//! `baggage_from` says, as it takes the message's correlation ID without a trust policy:
//! whoever may publish to the broker may set both, so keep the broker to your own
//! services. Jobs ([`JobCarrier`](crate::JobCarrier)) carry all of the request's fields,
//! baggage keys or not, since they stay within the service.
//!
//! # Messages
//!
//! Every broker has the same two halves, over the types listed at [`MessageHeaders`]. On
//! publish, [`inject_current`] writes the current ID under the response header name and,
//! inside a job, the job's ID under `x-parent-job-id`. On receipt, [`message_context`]
//! gives the context to run the message's handler in: every delivery is a job run of its
//! own (a fresh [`current_job_id`](crate::current_job_id), the publishing job as its
//! [`parent_job_id`](crate::parent_job_id)), under the carried correlation ID. The ID is
//! decided exactly as for an HTTP request
//! ([`CorrelationConfig::decide_value`](crate::CorrelationConfig::decide_value)): a
//! message without one gets a generated ID, and a value that fails validation is
//! replaced and reported in one `WARN` that never contains it. Header names are
//! matched without regard to ASCII case, as in HTTP.
//!
//! NATS (feature `nats`; for JetStream, publish the same way through the JetStream
//! context and pass a received message's `message` field):
//!
//! ```no_run
//! # #[cfg(feature = "nats")] {
//! use correlation_core::CorrelationConfig;
//! use correlation_core::propagation::{inject_current, message_context};
//! use futures_util::StreamExt;
//!
//! # async fn handle(_message: async_nats::Message) {}
//! # async fn run(client: async_nats::Client) -> Result<(), Box<dyn std::error::Error>> {
//! let config = CorrelationConfig::default();
//!
//! // In a request handler: the message carries the request's ID.
//! let mut headers = async_nats::HeaderMap::new();
//! inject_current(&config, &mut headers);
//! client.publish_with_headers("orders.created", headers, "42".into()).await?;
//!
//! // In the consumer: each message's handler logs under the ID it carries.
//! let mut messages = client.subscribe("orders.created").await?;
//! while let Some(message) = messages.next().await {
//!     message_context(&config, &message).wrap(handle(message)).await;
//! }
//! # Ok(())
//! # }
//! # }
//! ```
//!
//! RabbitMQ (feature `lapin`; a value of a type other than a string or byte array, a
//! number say, counts as invalid):
//!
//! ```no_run
//! # #[cfg(feature = "lapin")] {
//! use correlation_core::CorrelationConfig;
//! use correlation_core::propagation::{inject_current, message_context};
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
//! let mut properties = BasicProperties::default();
//! inject_current(&config, &mut properties);
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
//! # }
//! ```
//!
//! MQTT v5 (feature `mqtt`): user properties are MQTT 5's message headers, so this needs
//! a v5 connection (`rumqttc::v5::AsyncClient`).
//!
//! ```no_run
//! # #[cfg(feature = "mqtt")] {
//! use correlation_core::CorrelationConfig;
//! use correlation_core::propagation::{inject_current, message_context};
//! use rumqttc::v5::mqttbytes::QoS;
//! use rumqttc::v5::mqttbytes::v5::PublishProperties;
//! use rumqttc::v5::{AsyncClient, Event, EventLoop, Incoming};
//!
//! # async fn handle(_payload: &[u8]) {}
//! # async fn run(client: AsyncClient, mut events: EventLoop) -> Result<(), Box<dyn std::error::Error>> {
//! let config = CorrelationConfig::default();
//!
//! // In a request handler: the message carries the request's ID.
//! let mut properties = PublishProperties::default();
//! inject_current(&config, &mut properties);
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
//! # }
//! ```

#[cfg(feature = "apalis")]
mod apalis;
#[cfg(feature = "lapin")]
mod lapin;
#[cfg(any(feature = "nats", feature = "lapin", feature = "mqtt"))]
mod message;
#[cfg(feature = "mqtt")]
mod mqtt;
#[cfg(feature = "nats")]
mod nats;
#[cfg(feature = "reqwest")]
mod reqwest;
#[cfg(feature = "tower")]
mod tower;

#[cfg(feature = "apalis")]
#[cfg_attr(docsrs, doc(cfg(feature = "apalis")))]
pub use self::apalis::{JobContextLayer, JobContextService, correlated_task};
#[cfg(any(feature = "nats", feature = "lapin", feature = "mqtt"))]
#[cfg_attr(
    docsrs,
    doc(cfg(any(feature = "nats", feature = "lapin", feature = "mqtt")))
)]
pub use self::message::{MessageHeaders, inject_current, message_context};
#[cfg(feature = "reqwest")]
#[cfg_attr(docsrs, doc(cfg(feature = "reqwest")))]
pub use self::reqwest::PropagateCorrelationMiddleware;
#[cfg(feature = "tower")]
#[cfg_attr(docsrs, doc(cfg(feature = "tower")))]
pub use self::tower::{PropagateCorrelation, PropagateCorrelationLayer};
