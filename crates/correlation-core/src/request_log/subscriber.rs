//! The `tracing` side: [`RequestFilter`], a per-layer filter, and [`RequestWriter`], the
//! writer of a `tracing-subscriber` fmt layer, which together give each request its
//! raised level and its buffer.
//!
//! The filter lets an event through when the output filter does, or when the current
//! request's raised level or buffer wants it. The fmt layer then formats it, on the thread
//! that logged it and inside the request's context, and asks the writer where the line
//! goes: out at once, or, for a line only the buffer wants, into the request's buffer as
//! formatted bytes (so a flushed line keeps the time it was logged at) together with a way
//! to write it out later through the same writer.

use std::fmt;
use std::io::{self, Write};
use std::sync::Arc;

use tracing_core::callsite::DefaultCallsite;
use tracing_core::field::{FieldSet, Value};
use tracing_core::metadata::Kind;
use tracing_core::subscriber::Interest;
use tracing_core::{Dispatch, Event, Level, LevelFilter, Metadata};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::writer::EitherWriter;
use tracing_subscriber::layer::{Context, Filter};

use super::buffer::{Entry, WriteLine};
use super::logger::{is_replaying, replaying};
use super::{BufferSettings, RequestLog};
use crate::config::CorrelationConfig;
use crate::constants::LOG_TARGET;
use crate::context::with_current_log;

/// A per-layer [`Filter`] for a `tracing-subscriber` fmt layer that gives each request the
/// level its trusted caller raised it to, and keeps each request's events below the output
/// level until it fails; the `tracing` counterpart of
/// [`RequestLogger`](super::RequestLogger) (see the [module docs](super)). Its
/// [`writer`](Self::writer) wraps the layer's writer.
///
/// The output filter is in `RUST_LOG` syntax ([`parse_filters`](Self::parse_filters),
/// [`parse_env`](Self::parse_env)) or an [`env_filter::Filter`] ([`filter`](Self::filter)):
/// level and target directives, as for the `log` stack. The default writes `ERROR` only.
/// An event is written when the output filter lets it through, or when it happens inside a
/// request raised to its level; it is kept when the request's buffer keeps its level, and
/// written with the rest of the buffer if the request fails: a `5xx`, an `ERROR` event in
/// its scope, a panic under its ID (the line of
/// [`install_panic_hook`](crate::install_panic_hook), with `log` records bridged by
/// `tracing-log`, is such an event). Outside any request, the output filter alone decides.
/// With a level header or a buffer configured, the request's own span (target
/// `correlation`) is always let through, so that raised and kept lines carry the ID.
///
/// Give it the configuration the requests run with: it tells `tracing` which callsites a
/// request may want, and the most verbose level any may need.
///
/// ```
/// use std::sync::{Arc, Mutex};
///
/// use correlation_core::request_log::{LogBuffer, RequestFilter};
/// use correlation_core::{CorrelationConfig, CorrelationId, adapter};
/// use tracing_subscriber::prelude::*;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let config = CorrelationConfig::builder()
///     .log_buffer(LogBuffer::new())
///     .build()?;
///
/// // Where the lines go: here memory, usually `std::io::stdout`.
/// let out = Arc::new(Mutex::new(Vec::<u8>::new()));
/// let sink = Arc::clone(&out);
/// let make_writer = move || Lines(Arc::clone(&sink));
///
/// let filter = RequestFilter::new(&config).parse_filters("info");
/// let subscriber = tracing_subscriber::registry().with(
///     tracing_subscriber::fmt::layer()
///         .json()
///         .with_writer(filter.writer(make_writer))
///         .with_filter(filter),
/// );
/// let _default = tracing::subscriber::set_default(subscriber);
///
/// let request = adapter::request_context(&config, CorrelationId::new("req-7")?.into());
/// request.run(|| tracing::debug!("cache miss"));
/// tracing::debug!("outside any request: below the output level");
/// assert!(out.lock().unwrap().is_empty());
///
/// request.run(|| tracing::error!("the database is down"));
/// let written = String::from_utf8(out.lock().unwrap().clone())?;
/// let lines: Vec<&str> = written.lines().collect();
/// assert_eq!(lines.len(), 2);
/// assert!(lines[0].contains(r#""level":"DEBUG""#) && lines[0].contains("cache miss"));
/// assert!(lines[1].contains(r#""level":"ERROR""#) && lines[1].contains("req-7"));
/// # Ok(())
/// # }
/// # struct Lines(Arc<Mutex<Vec<u8>>>);
/// # impl std::io::Write for Lines {
/// #     fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
/// #         self.0.lock().unwrap().extend_from_slice(buf);
/// #         Ok(buf.len())
/// #     }
/// #     fn flush(&mut self) -> std::io::Result<()> { Ok(()) }
/// # }
/// ```
#[derive(Clone)]
#[must_use]
pub struct RequestFilter {
    shared: Arc<Shared>,
}

/// What the filter and its writers share.
#[derive(Clone)]
struct Shared {
    output: env_filter::Filter,
    /// The configured buffer, for the callsites and levels requests may want.
    buffer: Option<Arc<BufferSettings>>,
    level_header: bool,
}

impl RequestFilter {
    /// A filter for the requests `config` makes, with an output filter that writes `ERROR`
    /// only.
    pub fn new(config: &CorrelationConfig) -> Self {
        Self {
            shared: Arc::new(Shared {
                output: env_filter::Builder::new().build(),
                buffer: config.log_buffer_settings().cloned(),
                level_header: config.log_level_header().is_some(),
            }),
        }
    }

    /// The output filter from `RUST_LOG`-style directives (`info`, `warn,my_app=debug`):
    /// an invalid directive is reported on stderr and ignored, as env_logger does.
    pub fn parse_filters(self, directives: &str) -> Self {
        self.filter(env_filter::Builder::new().parse(directives).build())
    }

    /// The output filter from the environment variable `variable` (say `RUST_LOG`), if it
    /// is set; the filter so far otherwise.
    pub fn parse_env(self, variable: &str) -> Self {
        match std::env::var(variable) {
            Ok(directives) => self.parse_filters(&directives),
            Err(_) => self,
        }
    }

    /// The output filter, built elsewhere.
    pub fn filter(mut self, filter: env_filter::Filter) -> Self {
        Arc::make_mut(&mut self.shared).output = filter;
        self
    }

    /// `make_writer` (`std::io::stdout`, a non-blocking writer, any [`MakeWriter`]),
    /// wrapped to keep the lines of a request that only its buffer wants; give it to the
    /// same fmt layer as this filter. It uses the output filter as it is now: make it
    /// once the filter is complete.
    pub fn writer<M>(&self, make_writer: M) -> RequestWriter<M>
    where
        M: for<'w> MakeWriter<'w> + Send + Sync + 'static,
    {
        RequestWriter {
            inner: Arc::new(make_writer),
            shared: Arc::clone(&self.shared),
        }
    }
}

impl Shared {
    fn output(&self, metadata: &log::Metadata<'_>) -> bool {
        self.output.enabled(metadata)
    }

    /// Whether requests keep or raise anything, and so need their span.
    fn per_request(&self) -> bool {
        self.level_header || self.buffer.is_some()
    }

    fn is_request_span(&self, metadata: &Metadata<'_>) -> bool {
        metadata.is_span() && metadata.target() == LOG_TARGET && self.per_request()
    }
}

impl<S> Filter<S> for RequestFilter {
    fn enabled(&self, metadata: &Metadata<'_>, _: &Context<'_, S>) -> bool {
        if is_replaying() {
            return true;
        }
        let shared = &*self.shared;
        let log_metadata = log_metadata(metadata);
        shared.output(&log_metadata)
            || shared.is_request_span(metadata)
            || with_current_log(|log| log.is_some_and(|log| log.admits(&log_metadata)))
    }

    fn callsite_enabled(&self, metadata: &'static Metadata<'static>) -> Interest {
        let shared = &*self.shared;
        let log_metadata = log_metadata(metadata);
        if shared.output(&log_metadata) || shared.is_request_span(metadata) {
            Interest::always()
        } else if shared.level_header
            || shared
                .buffer
                .as_ref()
                .is_some_and(|buffer| buffer.filter.enabled(&log_metadata))
        {
            Interest::sometimes()
        } else {
            Interest::never()
        }
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        let shared = &*self.shared;
        let mut max = shared.output.filter();
        if let Some(buffer) = &shared.buffer {
            max = max.max(buffer.max_level());
        }
        if shared.level_header {
            max = log::LevelFilter::Trace;
        }
        if shared.per_request() {
            // The request's own span.
            max = max.max(log::LevelFilter::Info);
        }
        Some(level_filter(max))
    }
}

impl fmt::Debug for RequestFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestFilter")
            .field("output", &self.shared.output)
            .field("buffer", &self.shared.buffer)
            .field("level_header", &self.shared.level_header)
            .finish()
    }
}

/// The writer of a fmt layer filtered by a [`RequestFilter`], made by
/// [`RequestFilter::writer`]: a line the output filter or the request's raised level lets
/// through goes to the wrapped writer at once; a line only the request's buffer wants is
/// kept, formatted (with the time it was logged at), and written through the wrapped
/// writer, for its level and target, if the request fails. An `ERROR` line of a request
/// first writes out what its buffer holds. Each fmt layer with a writer of its own keeps
/// its own line of a record, and each counts against the request's bound.
///
/// ```
/// use correlation_core::CorrelationConfig;
/// use correlation_core::request_log::{LogBuffer, RequestFilter};
/// use tracing_subscriber::fmt::writer::MakeWriterExt;
/// use tracing_subscriber::prelude::*;
///
/// let config = CorrelationConfig::builder().log_buffer(LogBuffer::new()).build()?;
/// let filter = RequestFilter::new(&config).parse_env("RUST_LOG");
/// // Warnings and errors to stderr, the rest to stdout; flushed lines go where their
/// // level sends them.
/// let writer = std::io::stderr
///     .with_max_level(tracing::Level::WARN)
///     .or_else(std::io::stdout);
/// let layer = tracing_subscriber::fmt::layer()
///     .with_writer(filter.writer(writer))
///     .with_filter(filter);
/// tracing_subscriber::registry().with(layer).init();
/// # Ok::<(), correlation_core::ConfigError>(())
/// ```
pub struct RequestWriter<M> {
    inner: Arc<M>,
    shared: Arc<Shared>,
}

impl<M> fmt::Debug for RequestWriter<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestWriter")
            .field("inner", &std::any::type_name::<M>())
            .field("output", &self.shared.output)
            .finish()
    }
}

/// Where a line goes.
enum Route {
    Write,
    Keep,
}

impl<M> RequestWriter<M>
where
    M: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    fn route(&self, metadata: &Metadata<'_>) -> Route {
        if is_replaying() || metadata.is_span() {
            return Route::Write;
        }
        let log_metadata = log_metadata(metadata);
        let output = self.shared.output(&log_metadata);
        let error = *metadata.level() == Level::ERROR;
        if output && !error {
            return Route::Write;
        }
        with_current_log(|log| {
            let Some(log) = log else {
                return Route::Write;
            };
            if error {
                log.flush_to_logger();
            }
            if output || log_metadata.level() <= log.raised() {
                return Route::Write;
            }
            match log.buffer() {
                Some(buffer) if buffer.keeps(&log_metadata) && !buffer.is_flushed() => Route::Keep,
                // Let through by a filter other than ours, or written since the request
                // failed.
                _ => Route::Write,
            }
        })
    }

    /// Writes a kept line of `metadata`'s level and target out through the wrapped writer.
    fn write_line(&self, metadata: &Metadata<'_>) -> WriteLine {
        let inner = Arc::clone(&self.inner);
        let level = *metadata.level();
        let target: Box<str> = metadata.target().into();
        Arc::new(move |bytes: &[u8]| {
            let metadata = flushed_metadata(level, &target);
            // As the fmt layer does with a line it cannot write, by default: nothing.
            let _ = inner.make_writer_for(&metadata).write_all(bytes);
        })
    }
}

impl<'a, M> MakeWriter<'a> for RequestWriter<M>
where
    M: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    type Writer = EitherWriter<<M as MakeWriter<'a>>::Writer, Box<dyn Write + 'a>>;

    fn make_writer(&'a self) -> Self::Writer {
        EitherWriter::A(self.inner.make_writer())
    }

    fn make_writer_for(&'a self, metadata: &Metadata<'_>) -> Self::Writer {
        match self.route(metadata) {
            Route::Write => EitherWriter::A(self.inner.make_writer_for(metadata)),
            Route::Keep => EitherWriter::B(Box::new(Kept {
                bytes: Vec::new(),
                write: self.write_line(metadata),
            })),
        }
    }
}

/// A line only the request's buffer wants: its bytes, pushed into the current request's
/// buffer once the fmt layer has written them (it drops the writer inside the request's
/// context, on the thread that logged the line).
struct Kept {
    bytes: Vec<u8>,
    write: WriteLine,
}

impl Write for Kept {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for Kept {
    fn drop(&mut self) {
        if self.bytes.is_empty() {
            return;
        }
        let entry = Entry::formatted(std::mem::take(&mut self.bytes), Arc::clone(&self.write));
        let refused = with_current_log(|log| match log.and_then(RequestLog::buffer) {
            Some(buffer) => buffer.push(entry).err(),
            None => Some(entry),
        });
        // The request failed in the meantime: its lines are written from now on.
        if let Some(entry) = refused {
            entry.write_out(log::logger());
        }
    }
}

/// Writes the line saying how many of a request's records its buffer dropped, as an
/// `INFO` event of target `correlation` dispatched to `dispatch` (the request's
/// subscriber) directly: a flush on an `ERROR` happens while that event is being
/// dispatched, when `tracing`'s own macros would reach no subscriber.
pub(super) fn write_notice(dispatch: &Dispatch, message: fmt::Arguments<'_>) {
    let metadata = &NOTICE_METADATA;
    replaying(|| {
        if !dispatch.enabled(metadata) {
            return;
        }
        let fields = metadata.fields();
        let Some(field) = fields.field("message") else {
            return;
        };
        let values = [(&field, Some(&message as &dyn Value))];
        dispatch.event(&Event::new(metadata, &fields.value_set(&values)));
    });
}

/// The subscriber of the caller, for the notice of a flush.
pub(super) fn current_dispatch() -> Dispatch {
    tracing_core::dispatcher::get_default(Dispatch::clone)
}

/// The callsite of the notice, and the identity of the metadata a kept line is written
/// out with.
static NOTICE: DefaultCallsite = DefaultCallsite::new(&NOTICE_METADATA);

static NOTICE_METADATA: Metadata<'static> = Metadata::new(
    "log buffer",
    LOG_TARGET,
    Level::INFO,
    Some(file!()),
    Some(line!()),
    Some(module_path!()),
    FieldSet::new(&["message"], tracing_core::identify_callsite!(&NOTICE)),
    Kind::EVENT,
);

/// The metadata a kept line is written out with: its level and target, for a writer that
/// picks its destination by them.
fn flushed_metadata(level: Level, target: &str) -> Metadata<'_> {
    Metadata::new(
        "buffered record",
        target,
        level,
        None,
        None,
        None,
        FieldSet::new(&[], tracing_core::identify_callsite!(&NOTICE)),
        Kind::EVENT,
    )
}

/// `tracing` metadata as the `log` metadata the directives are matched against.
fn log_metadata<'a>(metadata: &Metadata<'a>) -> log::Metadata<'a> {
    log::Metadata::builder()
        .level(log_level(*metadata.level()))
        .target(metadata.target())
        .build()
}

fn log_level(level: Level) -> log::Level {
    match level {
        Level::ERROR => log::Level::Error,
        Level::WARN => log::Level::Warn,
        Level::INFO => log::Level::Info,
        Level::DEBUG => log::Level::Debug,
        _ => log::Level::Trace,
    }
}

fn level_filter(filter: log::LevelFilter) -> LevelFilter {
    match filter {
        log::LevelFilter::Off => LevelFilter::OFF,
        log::LevelFilter::Error => LevelFilter::ERROR,
        log::LevelFilter::Warn => LevelFilter::WARN,
        log::LevelFilter::Info => LevelFilter::INFO,
        log::LevelFilter::Debug => LevelFilter::DEBUG,
        log::LevelFilter::Trace => LevelFilter::TRACE,
    }
}
