//! Framework-agnostic correlation IDs: the ID type, the per-request context, the
//! configuration every adapter shares, log formatting and propagation.
//!
//! Application authors usually depend on an adapter (`correlation-axum`,
//! `correlation-actix` or `correlation-poem`), which re-exports this crate as
//! `correlation_core` and forwards every feature of it under the same name.
//! Depend on `correlation-core` directly to write an adapter for another framework, to
//! log or propagate the ID from library code, or to carry it into background jobs.
//!
//! ```
//! use correlation_core::{CorrelationConfig, Outcome, current, scope};
//! use http::HeaderMap;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let config = CorrelationConfig::default();
//!
//! // What an adapter does for every request:
//! let mut headers = HeaderMap::new();
//! headers.insert("x-request-id", "9e6454c421d54e4aa66ab28f15576414".parse().unwrap());
//! let decision = config.decide(&headers);
//! assert_eq!(decision.outcome, Outcome::Accepted);
//!
//! let seen = scope(decision.id, async {
//!     log::info!("handling"); // the log formatter prints [9e6454c421d54e4aa66ab28f15576414]
//!     current()
//! })
//! .await;
//! assert_eq!(seen.unwrap(), "9e6454c421d54e4aa66ab28f15576414");
//!
//! // A hostile value is replaced by a fresh ID (and a warning is logged).
//! headers.insert("x-request-id", "not\ta uuid".parse().unwrap());
//! let decision = config.decide(&headers);
//! assert_eq!(decision.outcome, Outcome::Replaced);
//! assert_eq!(decision.id.len(), 32);
//! # }
//! ```
//!
//! # Usage
//!
//! - [`CorrelationId`]: an ID that is always safe to log and echo (1 to 128 bytes of
//!   visible ASCII), cheap to clone.
//! - [`CorrelationConfig`]: header names, [generator](strategy::IdGenerator),
//!   [validator](strategy::IdValidator), [transformer](strategy::IdTransformer),
//!   request-header update, response echo, what to do with invalid IDs, paths to skip.
//!   Checked when built.
//! - [`IdSource`] and [`TrustPolicy`]: where the incoming ID may come from (correlation
//!   headers, W3C `traceparent`, AWS and Google trace headers, a function of the
//!   headers), and whose incoming IDs are honoured (everyone, no one, listed networks).
//! - [`CorrelationConfig::decide`]: accept, generate or replace, with its warning.
//! - [`current`], [`scope`], [`sync_scope`], [`spawn`], [`spawn_local`],
//!   [`spawn_blocking`], [`bind_current`] and [`CorrelationFutureExt`]: the per-request
//!   context, task-local (it follows a task, not a thread), and the ways to carry it
//!   into other work.
//! - [`Fields`]: `tenant=acme user=alice` set once in a request and on every line of it
//!   after the ID (Java's MDC), bounded and escaped.
//! - [`CorrelationContext`]: what a request or a job runs in — the ID, plus the
//!   `tracing` span and the Sentry hub where those features are on; capture it and run
//!   other work in it.
//! - [`adapter`]: for authors of framework adapters, the steps of a correlation
//!   middleware and the functions for each (the request-header rules, the rejection, the
//!   request's context and the ways to enter it).
//! - [`format`](fn@format) and [`LogFormat`] (feature `env-logger`), [`CurrentId`]: the time and `[<id>]` in log lines.
//!   Control characters and bidirectional overrides in what is logged are escaped, so a
//!   record is one line whatever a client sent; [`Escaped`] does the same in a format of
//!   your own.
//! - [`CorrelationLogger`] (feature `kv`): `correlation_id` as a key-value on every record.
//! - `request_log` (feature `request-log`): debugging one request in production. A
//!   trusted caller raises one request's log level with a header
//!   ([`CorrelationConfigBuilder::log_level_header`]), and each request keeps its records
//!   below the output level, written only if it fails (`request_log::LogBuffer`); the
//!   `request_log::RequestLogger` sits between `log` and any backend, and with
//!   `tracing`, `request_log::RequestFilter` and its writer do the same for a
//!   `tracing-subscriber` fmt layer.
//! - [`install_panic_hook`]: every panic logged at `ERROR`, on one line, under the ID of
//!   the request or job that panicked.
//! - [`CorrelationConfig::inject_current`] and [`CorrelationConfig::extract`]: carry the
//!   ID over outgoing calls and queues.
//! - [`JobCarrier`], [`current_job_id`], [`parent_job_id`] and
//!   [`CurrentId::job_ids`]: background jobs get a [`JobId`] of their own and know the job
//!   that enqueued them, while the correlation ID flows from the request through every
//!   job it causes (asgi-correlation-id's Celery model).
//! - `propagation` (features `reqwest`, `tower`, `apalis`, `nats`, `lapin`, `mqtt`): a
//!   `reqwest-middleware` middleware and a tower layer that put the current ID on
//!   outgoing requests, an apalis worker layer that runs every job in the context it was
//!   enqueued with, and the ID in message brokers' headers.
//! - `test_util` (feature `test-util`): test helpers only, capturing log records with
//!   the ID they were logged under.
//!
//! # Caveats
//!
//! - The context is a task-local. Work started with a plain `tokio::spawn`,
//!   `std::thread::spawn` or `spawn_blocking` does not see it: use this crate's helpers.
//! - User callbacks (generator, validator, transformer) that panic are caught: the
//!   request is served with a generated ID. With `panic = "abort"` nothing can be caught.
//! - The rejected value of an invalid header is never logged; log lines show the new ID.
//!
//! ## Feature Flags
//!
//! | feature | enables |
//! |---|---|
//! | `env-logger` | [`format`](fn@format), and [`LogFormat`] for `env_logger::Builder::format` |
//! | `kv` | [`CorrelationLogger`], adding `correlation_id` to every `log` record |
//! | `request-log` | `request_log`: a per-request log level from trusted callers, and each request's records below the output level kept and written when it fails (`RequestLogger`, `LogBuffer`; with `tracing`, `RequestFilter`) |
//! | `serde` | `Serialize` / `Deserialize` for [`CorrelationId`], [`JobId`] and [`JobCarrier`] (validated) |
//! | `test-util` | test helpers only: [`test_util::LogCapture`], capturing log records with their ID, for your tests |
//! | `test-util-tracing` | test helpers only: [`test_util::TracingCapture`], `tracing-subscriber`'s JSON output captured in memory (turns on `test-util`) |
//! | `tracing` | a `correlation` span recording `correlation_id` around each request (see [`CorrelationContext`]), carried by the spawn helpers; with `request-log`, `request_log::RequestFilter` and `RequestWriter` for `tracing-subscriber` 0.3's fmt layer |
//! | `opentelemetry` | [`strategy::OpenTelemetryTraceId`]: the current OpenTelemetry trace ID as the generated ID (opentelemetry 0.33 with tracing-opentelemetry 0.34; turns on `tracing`) |
//! | `sentry` | a Sentry hub per request, tagged `transaction_id` (configurable), carried by the spawn helpers |
//! | `reqwest` | `propagation::PropagateCorrelationMiddleware` for `reqwest-middleware` 0.4 (reqwest 0.12) and 0.5 (reqwest 0.13) clients |
//! | `tower` | `propagation::PropagateCorrelationLayer` for tower HTTP clients (hyper-util, tonic) |
//! | `apalis` | `propagation::JobContextLayer` and `propagation::correlated_task` for apalis 1 workers and producers |
//! | `nats` | `propagation::inject_current` and `message_context` for NATS message headers (`async-nats` 0.46 to 0.51, core NATS and JetStream) |
//! | `lapin` | `propagation::inject_current` and `message_context` for the AMQP header table (`lapin` 3 and 4, RabbitMQ) |
//! | `mqtt` | `propagation::inject_current` and `message_context` for MQTT v5 user properties (`rumqttc` 0.25) |
//!
//! No feature is on by default. The `apalis` feature depends only on `apalis-core` 1,
//! which states no minimum Rust version; the storages may need a newer Rust than this
//! crate (`apalis-sqlite` 1 uses sqlx 0.9, which needs Rust 1.94).
//!
//! ## Supported Rust Versions
//!
//! The minimum supported Rust version is **1.85** (edition 2024). It may be raised in a
//! minor release, to a version at least six months old, and never in a patch release.

#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod adapter;
mod baggage;
mod config;
mod constants;
mod context;
mod display;
mod fields;
mod fmt;
mod id;
mod job;
mod job_id;
#[cfg(feature = "kv")]
mod kv;
mod panic_hook;
#[cfg(any(
    feature = "apalis",
    feature = "reqwest",
    feature = "tower",
    feature = "nats",
    feature = "lapin",
    feature = "mqtt"
))]
#[cfg_attr(
    docsrs,
    doc(cfg(any(
        feature = "apalis",
        feature = "reqwest",
        feature = "tower",
        feature = "nats",
        feature = "lapin",
        feature = "mqtt"
    )))
)]
pub mod propagation;
#[cfg(feature = "request-log")]
#[cfg_attr(docsrs, doc(cfg(feature = "request-log")))]
pub mod request_log;
pub mod strategy;
#[cfg(feature = "test-util")]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
pub mod test_util;
mod trace_context;
mod trust;

pub use config::{
    ConfigError, CorrelationConfig, CorrelationConfigBuilder, IdSource, OnInvalid, Outcome,
};
pub use constants::LOG_TARGET;
pub use context::{
    CorrelationContext, CorrelationFutureExt, WithCorrelation, bind_current, current, scope, spawn,
    spawn_blocking, spawn_local, sync_scope,
};
pub use display::CurrentId;
pub use fields::Fields;
pub use fmt::Escaped;
#[cfg(feature = "env-logger")]
#[cfg_attr(docsrs, doc(cfg(feature = "env-logger")))]
pub use fmt::{LogFormat, format};
pub use id::{CorrelationId, InvalidCorrelationId};
pub use job::{JobCarrier, current_job_id, parent_job_id};
pub use job_id::JobId;
#[cfg(feature = "kv")]
#[cfg_attr(docsrs, doc(cfg(feature = "kv")))]
pub use kv::CorrelationLogger;
pub use panic_hook::{PANIC_LOG_TARGET, install_panic_hook};
pub use trust::{InvalidNetwork, TrustPolicy};

/// Re-exported so adapters and users name the same `http` types.
pub use http;

/// Defines an adapter's `CorrelationId` handler extractor: a newtype around
/// [`CorrelationId`] (each framework's extractor trait can only be implemented on a type of
/// the adapter's own), with `into_inner`, `Deref`, `Display` and comparisons with strings.
/// The attributes given (its docs) go on the struct. For this crate family's adapters.
#[doc(hidden)]
#[macro_export]
macro_rules! __correlation_id_extractor {
    ($(#[$meta:meta])*) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub struct CorrelationId(pub $crate::CorrelationId);

        impl CorrelationId {
            /// The core ID, to store or pass on (for example to
            /// [`with_correlation_id`](correlation_core::CorrelationFutureExt::with_correlation_id)).
            pub fn into_inner(self) -> $crate::CorrelationId {
                self.0
            }

            /// The ID this service made for the request's hop, beside its correlation ID,
            /// when the configuration has a
            /// [hop ID header](correlation_core::CorrelationConfigBuilder::hop_id_header);
            /// `None` with hop IDs off. Read from the request the handler runs for, as
            /// [`CorrelationContext::current_hop_id`](correlation_core::CorrelationContext::current_hop_id)
            /// does.
            pub fn hop_id(&self) -> ::std::option::Option<$crate::CorrelationId> {
                $crate::CorrelationContext::current_hop_id()
            }
        }

        impl ::std::ops::Deref for CorrelationId {
            type Target = $crate::CorrelationId;

            fn deref(&self) -> &Self::Target {
                &self.0
            }
        }

        impl ::std::fmt::Display for CorrelationId {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                ::std::fmt::Display::fmt(&self.0, f)
            }
        }

        impl ::std::cmp::PartialEq<&str> for CorrelationId {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl ::std::cmp::PartialEq<str> for CorrelationId {
            fn eq(&self, other: &str) -> bool {
                self.0 == *other
            }
        }

        impl ::std::convert::From<CorrelationId> for $crate::CorrelationId {
            fn from(id: CorrelationId) -> Self {
                id.0
            }
        }
    };
}
