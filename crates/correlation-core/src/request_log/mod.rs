//! Debugging one request in production (feature `request-log`): a level raised for one
//! request by a trusted caller, and a request's records below the output level kept in a
//! buffer of its own and written, in order and with their own timestamps, only if it
//! fails.
//!
//! Three parts work together:
//!
//! - [`CorrelationConfigBuilder::log_level_header`](crate::CorrelationConfigBuilder::log_level_header):
//!   a header (say `X-Debug-Log: debug`) that raises the level of the request carrying
//!   it, honoured only from the peers a [`TrustPolicy`](crate::TrustPolicy) of its own
//!   trusts.
//! - [`CorrelationConfigBuilder::log_buffer`](crate::CorrelationConfigBuilder::log_buffer)
//!   with a [`LogBuffer`]: each request keeps its records at the buffer level (default
//!   `DEBUG`) that the output level leaves out. They are written when the request fails —
//!   a `5xx` response, a panic under its ID or a record at `ERROR` in its scope — and
//!   dropped when it ends otherwise.
//! - What does both for your logging stack:
//!   - `log`: [`RequestLogger`], a logger between `log` and any backend (env_logger, a
//!     JSON logger).
//!   - `tracing` (with the `tracing` feature too): `RequestFilter`, the per-layer filter
//!     of a `tracing-subscriber` fmt layer (text or `.json()`), and the writer it wraps
//!     for that layer, `RequestWriter`. Kept lines are kept formatted, so a flushed line
//!     shows the time it was logged at. `log` records bridged by `tracing-log` are
//!     events like any other.
//!
//! Both read the output filter in `RUST_LOG` syntax. Everything the request's ID covers is
//! covered: the handler, the spawn helpers, blocking closures, the response body. A job
//! run in [`JobCarrier::into_context_with`](crate::JobCarrier::into_context_with) (as
//! the apalis layer with a configuration does) has a buffer of its own, written when it
//! fails as a request's is (the apalis layer also writes it when the task returns an
//! `Err`), and runs at the level of the request that enqueued it when that request's
//! configuration says so
//! ([`log_level_into_jobs`](crate::CorrelationConfigBuilder::log_level_into_jobs)). A
//! record logged outside any request goes to the output filter alone, as it would
//! without this module.
//!
//! With `log`:
//!
//! ```
//! use correlation_core::adapter;
//! use correlation_core::request_log::{LogBuffer, RequestLogger};
//! use correlation_core::test_util::LogCapture;
//! use correlation_core::{CorrelationConfig, CorrelationId, TrustPolicy};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = CorrelationConfig::builder()
//!     .log_level_header("X-Debug-Log", TrustPolicy::from_peers(["127.0.0.1/32"])?)
//!     .log_buffer(LogBuffer::new().level("debug"))
//!     .build()?;
//!
//! // Any `log::Log` backend that lets every record through: env_logger, a JSON logger,
//! // here a capture.
//! let backend: &'static LogCapture = Box::leak(Box::default());
//! RequestLogger::new(backend).parse_filters("info").init(&config)?;
//!
//! // What the backend wrote under a request's ID.
//! let written = || -> Vec<String> {
//!     let records = backend.records().into_iter();
//!     records.filter(|r| r.correlation_id.is_some()).map(|r| r.message).collect()
//! };
//!
//! // Two requests: one succeeds, one fails.
//! let ok = adapter::request_context(&config, CorrelationId::new("req-ok")?.into());
//! let failed = adapter::request_context(&config, CorrelationId::new("req-failed")?.into());
//! ok.run(|| log::debug!("cache hit"));
//! failed.run(|| log::debug!("cache miss"));
//! assert!(written().is_empty());
//!
//! failed.run(|| log::error!("the database is down"));
//! drop(ok);
//! assert_eq!(written(), ["cache miss", "the database is down"]);
//! # Ok(())
//! # }
//! ```
//!
//! With `tracing`, the same configuration and a fmt layer (see `RequestFilter` for one
//! that asserts what it prints):
//!
//! ```
//! # #[cfg(feature = "tracing")]
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use correlation_core::request_log::{LogBuffer, RequestFilter};
//! use correlation_core::{CorrelationConfig, TrustPolicy};
//! use tracing_subscriber::prelude::*;
//!
//! let config = CorrelationConfig::builder()
//!     .log_level_header("X-Debug-Log", TrustPolicy::from_peers(["127.0.0.1/32"])?)
//!     .log_buffer(LogBuffer::new().level("debug"))
//!     .build()?;
//! let filter = RequestFilter::new(&config).parse_env("RUST_LOG");
//! tracing_subscriber::registry()
//!     .with(
//!         tracing_subscriber::fmt::layer()
//!             .json()
//!             .with_writer(filter.writer(std::io::stdout))
//!             .with_filter(filter),
//!     )
//!     .init();
//! # Ok(())
//! # }
//! # #[cfg(not(feature = "tracing"))]
//! # fn main() {}
//! ```

use std::sync::Arc;

use log::{Level, LevelFilter, Log, Record};

use crate::config::ConfigError;

mod buffer;
mod logger;
#[cfg(feature = "tracing")]
mod subscriber;

pub(crate) use buffer::RequestBuffer;
pub use logger::RequestLogger;
#[cfg(feature = "tracing")]
#[cfg_attr(docsrs, doc(cfg(feature = "tracing")))]
pub use subscriber::{RequestFilter, RequestWriter};

use buffer::Entry;

/// The most records a request keeps by default.
const DEFAULT_MAX_RECORDS: usize = 1000;

/// The most bytes a request's kept records take by default.
const DEFAULT_MAX_BYTES: usize = 256 * 1024;

/// What each request keeps of its records below the output level, for
/// [`CorrelationConfigBuilder::log_buffer`](crate::CorrelationConfigBuilder::log_buffer).
///
/// - [`level`](Self::level): which records are kept, in `RUST_LOG` directive syntax
///   (default `debug`; `warn,my_app=trace` keeps more of one crate). A record the output
///   filter writes anyway is written, not kept.
/// - [`max_records`](Self::max_records) (default 1000) and
///   [`max_bytes`](Self::max_bytes) (default 256 KiB): the bound per request. Past it the
///   oldest records go, and the flush starts with a line (target `correlation`) saying
///   how many. The bytes counted are the record's text (message, target, module, file,
///   key-values; with `tracing`, the formatted line) plus a fixed overhead per record, so
///   a request never holds much more than `max_bytes` of memory for its records.
///
/// Invalid directives fail [`build`](crate::CorrelationConfigBuilder::build).
///
/// ```
/// use correlation_core::CorrelationConfig;
/// use correlation_core::request_log::LogBuffer;
///
/// let config = CorrelationConfig::builder()
///     .log_buffer(LogBuffer::new().level("info,my_app=debug").max_records(500))
///     .build()?;
/// # let _ = config;
/// let invalid = CorrelationConfig::builder().log_buffer(LogBuffer::new().level("my_app=loud"));
/// assert!(invalid.build().is_err());
/// # Ok::<(), correlation_core::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct LogBuffer {
    level: String,
    max_records: usize,
    max_bytes: usize,
}

impl Default for LogBuffer {
    fn default() -> Self {
        Self {
            level: "debug".to_owned(),
            max_records: DEFAULT_MAX_RECORDS,
            max_bytes: DEFAULT_MAX_BYTES,
        }
    }
}

impl LogBuffer {
    /// A buffer keeping `DEBUG` and above, at most 1000 records and 256 KiB per request.
    pub fn new() -> Self {
        Self::default()
    }

    /// Which records are kept, in `RUST_LOG` directive syntax (default `debug`).
    pub fn level(mut self, directives: impl Into<String>) -> Self {
        self.level = directives.into();
        self
    }

    /// The most records a request keeps (default 1000; at least 1).
    pub fn max_records(mut self, max: usize) -> Self {
        self.max_records = max;
        self
    }

    /// The most bytes a request's kept records take (default 256 KiB; at least 1).
    pub fn max_bytes(mut self, max: usize) -> Self {
        self.max_bytes = max;
        self
    }

    /// The checked settings every request's buffer shares.
    pub(crate) fn check(self) -> Result<BufferSettings, ConfigError> {
        let mut builder = env_filter::Builder::new();
        builder
            .try_parse(&self.level)
            .map_err(|err| ConfigError::InvalidLogBufferLevel {
                directives: self.level.clone(),
                reason: err.to_string(),
            })?;
        let filter = builder.build();
        if filter.filter() == LevelFilter::Off {
            return Err(ConfigError::InvalidLogBufferLevel {
                directives: self.level,
                reason: "it keeps no record".to_owned(),
            });
        }
        if self.max_records == 0 || self.max_bytes == 0 {
            return Err(ConfigError::ZeroLogBufferBound);
        }
        Ok(BufferSettings {
            filter,
            max_records: self.max_records,
            max_bytes: self.max_bytes,
        })
    }
}

/// A raised level as a header or a job's carrier gives it: `debug` or `trace`, in any
/// case; `None` for anything else.
pub(crate) fn parse_raised_level(value: &[u8]) -> Option<LevelFilter> {
    if value.eq_ignore_ascii_case(b"debug") {
        Some(LevelFilter::Debug)
    } else if value.eq_ignore_ascii_case(b"trace") {
        Some(LevelFilter::Trace)
    } else {
        None
    }
}

/// A [`LogBuffer`], checked: what every request's buffer shares.
#[derive(Debug)]
pub(crate) struct BufferSettings {
    filter: env_filter::Filter,
    max_records: usize,
    max_bytes: usize,
}

impl BufferSettings {
    /// The most verbose level the buffer keeps for some target.
    pub(crate) fn max_level(&self) -> LevelFilter {
        self.filter.filter()
    }
}

/// What a request (or a job) carries for its logs: the level its caller raised it to,
/// and its buffer. Shared by every copy of its context, and so by the tasks it spawns.
#[derive(Debug)]
pub(crate) struct RequestLog {
    /// `Off` when not raised.
    raised: LevelFilter,
    /// Whether the jobs it enqueues take its raised level along.
    into_jobs: bool,
    buffer: Option<RequestBuffer>,
}

impl RequestLog {
    /// The request's log state, or `None` when it has neither a raised level nor a buffer
    /// (its context is then the plain ID). With `into_jobs`, the jobs it enqueues take
    /// the raised level along.
    pub(crate) fn new(
        raised: Option<LevelFilter>,
        buffer: Option<&Arc<BufferSettings>>,
        into_jobs: bool,
    ) -> Option<Self> {
        if raised.is_none() && buffer.is_none() {
            return None;
        }
        Some(Self {
            raised: raised.unwrap_or(LevelFilter::Off),
            into_jobs,
            buffer: buffer.map(|settings| RequestBuffer::new(Arc::clone(settings))),
        })
    }

    /// The raised level the jobs it enqueues take along, if it has one to give them.
    pub(crate) fn level_for_jobs(&self) -> Option<LevelFilter> {
        (self.into_jobs && self.raised != LevelFilter::Off).then_some(self.raised)
    }

    /// The level the request's caller raised it to (`Off` when not raised).
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    pub(crate) fn raised(&self) -> LevelFilter {
        self.raised
    }

    /// The request's buffer, if buffering is configured.
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    pub(crate) fn buffer(&self) -> Option<&RequestBuffer> {
        self.buffer.as_ref()
    }

    /// Routes a record of this request that the output filter writes (`output`) or not:
    /// an `ERROR` first writes out the buffer; then the record is written if the output
    /// filter or the raised level let it through, or once the request has failed and the
    /// buffer keeps its level; kept if the buffer keeps its level; dropped otherwise.
    pub(crate) fn log(&self, record: &Record<'_>, output: bool, sink: &dyn Log) {
        if record.level() == Level::Error {
            self.flush(sink);
        }
        if output || record.level() <= self.raised {
            return sink.log(record);
        }
        let Some(buffer) = &self.buffer else {
            return;
        };
        if buffer.keeps(record.metadata()) && buffer.push(Entry::from_record(record)).is_err() {
            // Flushed: the request has failed, and its records are written from now on.
            sink.log(record);
        }
    }

    /// Whether a record with `metadata` would be written or kept.
    pub(crate) fn admits(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= self.raised
            || self
                .buffer
                .as_ref()
                .is_some_and(|buffer| buffer.keeps(metadata))
    }

    /// Writes out the buffer, if any, into `sink` (see [`RequestBuffer::flush`]).
    pub(crate) fn flush(&self, sink: &dyn Log) {
        if let Some(buffer) = &self.buffer {
            buffer.flush(sink);
        }
    }

    /// Writes out the buffer, if any, into the global logger: for failures that are
    /// not a record (a `5xx` response, a job's error). Call it inside the request's
    /// context.
    pub(crate) fn flush_to_logger(&self) {
        if let Some(buffer) = &self.buffer {
            logger::replaying(|| buffer.flush(log::logger()));
        }
    }
}

#[cfg(all(test, feature = "tracing"))]
mod subscriber_tests;
#[cfg(test)]
mod tests;
