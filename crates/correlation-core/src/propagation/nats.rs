//! NATS (`async-nats`): the correlation ID in message headers, for core NATS and
//! JetStream alike.
//!
//! Publish with [`current_headers`] (or add the ID to headers of your own with
//! [`inject_current`]), and run each received message's handler in
//! [`message_context`]. A JetStream message dereferences to the core message, so the
//! same call serves both.
//!
//! ```no_run
//! use correlation_core::CorrelationConfig;
//! use correlation_core::propagation::nats;
//! use futures_util::StreamExt;
//!
//! # async fn handle(_message: async_nats::Message) {}
//! # async fn run(client: async_nats::Client) -> Result<(), Box<dyn std::error::Error>> {
//! let config = CorrelationConfig::default();
//!
//! // In a request handler: the message carries the request's ID.
//! client
//!     .publish_with_headers("orders.created", nats::current_headers(&config), "42".into())
//!     .await?;
//!
//! // In the consumer: each message's handler logs under the ID it carries.
//! let mut messages = client.subscribe("orders.created").await?;
//! while let Some(message) = messages.next().await {
//!     nats::message_context(&config, &message).wrap(handle(message)).await;
//! }
//! # Ok(())
//! # }
//! ```

use async_nats::{HeaderMap, Message};

use super::{Carried, PARENT_JOB_ID_HEADER, find_incoming, received_context};
use crate::{CorrelationConfig, CorrelationContext};

/// Writes the current correlation ID into `headers` under `config`'s response header
/// name and, inside a job, the job's ID under [`PARENT_JOB_ID_HEADER`], replacing any
/// values there. Returns whether an ID was written: outside a request or job there is
/// none, and the headers are left alone.
///
/// ```
/// use correlation_core::propagation::nats::inject_current;
/// use correlation_core::{CorrelationConfig, CorrelationId, sync_scope};
///
/// let config = CorrelationConfig::default();
/// let mut headers = async_nats::HeaderMap::new();
/// let id = CorrelationId::from_static("5bd6e2a7fa4a4c32bd84a5ec5a43c1d3");
/// assert!(sync_scope(id, || inject_current(&config, &mut headers)));
/// assert_eq!(headers.get("x-request-id").unwrap().as_str(), "5bd6e2a7fa4a4c32bd84a5ec5a43c1d3");
/// assert!(!inject_current(&config, &mut async_nats::HeaderMap::new()));
/// ```
pub fn inject_current(config: &CorrelationConfig, headers: &mut HeaderMap) -> bool {
    let Some(id) = crate::current() else {
        return false;
    };
    headers.insert(config.response_header_name().as_str(), id.as_str());
    if let Some(job) = crate::current_job_id() {
        headers.insert(PARENT_JOB_ID_HEADER, job.as_str());
    }
    true
}

/// New headers carrying the current context, as [`inject_current`] writes it: pass them
/// to `publish_with_headers` (core NATS or JetStream).
pub fn current_headers(config: &CorrelationConfig) -> HeaderMap {
    let mut headers = HeaderMap::new();
    inject_current(config, &mut headers);
    headers
}

/// The context to run a received message's handler in (see the
/// [module docs](super#messages)): the ID under the first of `config`'s incoming header
/// names the message carries, decided as for a request, a fresh job ID, and the
/// publishing job as the parent.
///
/// Pass a JetStream message as `&message` too: it dereferences to [`Message`].
///
/// ```
/// use correlation_core::propagation::nats::message_context;
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
/// ```
pub fn message_context(config: &CorrelationConfig, message: &Message) -> CorrelationContext {
    let headers = message.headers.as_ref();
    let find = |wanted: &str| {
        headers?.iter().find_map(|(name, values)| {
            let name: &str = name.as_ref();
            let first = values.first()?;
            name.eq_ignore_ascii_case(wanted)
                .then(|| Carried::Bytes(first.as_str().as_bytes()))
        })
    };
    received_context(
        config,
        find_incoming(config, find),
        find(PARENT_JOB_ID_HEADER),
    )
}
