//! Framework-agnostic correlation IDs: the ID type, the per-request context, the
//! configuration every adapter shares, log formatting and propagation.
//!
//! Application authors usually depend on an adapter (`correlation-axum`,
//! `correlation-actix` or `correlation-poem`), which re-exports this crate as `core`.
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
//! - [`CorrelationConfig`]: header names, [generator](IdGenerator),
//!   [validator](IdValidator), [transformer](IdTransformer), request-header update,
//!   response echo, what to do with invalid IDs, paths to skip. Checked when built.
//! - [`CorrelationConfig::decide`]: accept, generate or replace, with its warning.
//! - [`current`], [`scope`], [`sync_scope`], [`spawn`], [`spawn_local`],
//!   [`spawn_blocking`], [`bind_current`] and [`CorrelationFutureExt`]: the per-request
//!   context on a tokio task-local, and the ways to carry it into other work.
//! - [`CorrelationContext`]: what an adapter runs a request in — the ID, plus the
//!   `tracing` span and the Sentry hub where those features are on.
//! - [`format`] and [`LogFormat`] (feature `env-logger`), [`CurrentId`]: `[<id>]` in log lines.
//! - [`CorrelationLogger`] (feature `kv`): `correlation_id` as a key-value on every record.
//! - [`CorrelationConfig::inject_current`] and [`CorrelationConfig::extract`]: carry the
//!   ID over outgoing calls and queues.
//!
//! # Caveats
//!
//! - The context is a tokio task-local. Work started with a plain `tokio::spawn`,
//!   `std::thread::spawn` or `spawn_blocking` does not see it: use this crate's helpers.
//! - User callbacks (generator, validator, transformer) that panic are caught: the
//!   request is served with a generated ID. With `panic = "abort"` nothing can be caught.
//! - The rejected value of an invalid header is never logged; log lines show the new ID.
//!
//! ## Feature Flags
//!
//! | feature | enables |
//! |---|---|
//! | `env-logger` | [`format`] and [`LogFormat`] for `env_logger::Builder::format` |
//! | `kv` | [`CorrelationLogger`], adding `correlation_id` to every `log` record |
//! | `serde` | `Serialize` / `Deserialize` for [`CorrelationId`] (validated) |
//! | `test-util` | [`test_util::LogCapture`], capturing log records with their ID |
//! | `tracing` | a `request` span recording `correlation_id` around each request (see [`CorrelationContext`]), carried by the spawn helpers |
//! | `sentry` | a Sentry hub per request, tagged `transaction_id` (configurable), carried by the spawn helpers |
//!
//! No feature is on by default.
//!
//! ## Supported Rust Versions
//!
//! The minimum supported Rust version is **1.85** (edition 2024). It may be raised in a
//! minor release, to a version at least six months old.

#![cfg_attr(docsrs, feature(doc_cfg))]

mod config;
mod context;
mod display;
#[cfg(feature = "env-logger")]
mod fmt;
mod id;
#[cfg(feature = "kv")]
mod kv;
pub mod strategy;
#[cfg(feature = "test-util")]
pub mod test_util;

pub use config::{
    ConfigError, CorrelationConfig, CorrelationConfigBuilder, DEFAULT_HEADER_NAME,
    DEFAULT_SENTRY_TAG, Decision, LOG_TARGET, OnInvalid, Outcome,
};
pub use context::{
    CorrelationContext, CorrelationFutureExt, WithCorrelation, bind_current, current, scope, spawn,
    spawn_blocking, spawn_local, sync_scope, with_current,
};
pub use display::{CurrentId, DEFAULT_MISSING};
#[cfg(feature = "env-logger")]
#[cfg_attr(docsrs, doc(cfg(feature = "env-logger")))]
pub use fmt::{LogFormat, format};
pub use id::{CorrelationId, InvalidCorrelationId};
#[cfg(feature = "kv")]
#[cfg_attr(docsrs, doc(cfg(feature = "kv")))]
pub use kv::{CORRELATION_ID_KEY, CorrelationLogger};
pub use strategy::{
    AnySafe, AnyUuid, HyphenatedUuidV4, IdGenerator, IdTransformer, IdValidator, StrictUuidV4,
    UuidV4, UuidV7,
};

/// Re-exported so adapters and users name the same `http` types.
pub use http;
