//! [`RequestLogger`]: the output filter, the raised levels and the buffers, between `log`
//! and any backend.

use std::cell::Cell;
use std::fmt;

use log::{Level, LevelFilter, Log, Metadata, Record};

use crate::config::CorrelationConfig;
use crate::context::with_current_log;

thread_local! {
    /// Set while a buffer is written out through the global logger: the records are
    /// passed to the backend as they are.
    static REPLAYING: Cell<bool> = const { Cell::new(false) };
}

/// Whether a buffer is being written out on this thread: what reaches a logger or a
/// `tracing` writer now goes straight out.
#[cfg(feature = "tracing")]
pub(super) fn is_replaying() -> bool {
    REPLAYING.get()
}

/// Runs `f`, in which records reaching a [`RequestLogger`] go straight to its backend.
pub(super) fn replaying<R>(f: impl FnOnce() -> R) -> R {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            REPLAYING.set(self.0);
        }
    }
    let _restore = Restore(REPLAYING.replace(true));
    f()
}

/// A [`log::Log`] between `log` and any backend (env_logger, a JSON logger, any
/// `log::Log`) that gives each request the level its trusted caller raised it to, and
/// keeps each request's records below the output level until it fails; see the
/// [module docs](super).
///
/// It decides what is written; the backend writes. Build the backend to let every record
/// through (for env_logger: `filter_level(LevelFilter::Trace)`, and no `RUST_LOG` of its
/// own), and give the output filter here, in `RUST_LOG` syntax
/// ([`parse_filters`](Self::parse_filters), [`parse_env`](Self::parse_env)) or as an
/// [`env_filter::Filter`] ([`filter`](Self::filter)). The default writes `ERROR` only,
/// as env_logger does without `RUST_LOG`.
///
/// For each record:
///
/// 1. The output filter lets it through: it is written. At `ERROR` inside a request
///    with a buffer, the buffer is written out first.
/// 2. Else, inside a request whose level was raised to the record's level: it is written.
/// 3. Else, inside a request with a buffer that keeps its level: it is kept (once the
///    request has failed, it is written).
/// 4. Else it is dropped. Outside any request, records meet the output filter alone.
///
/// [`init`](Self::init) installs it, with `log::max_level` at what the output filter,
/// the buffer and a level header need.
///
/// ```
/// use correlation_core::CorrelationConfig;
/// use correlation_core::request_log::{LogBuffer, RequestLogger};
///
/// let config = CorrelationConfig::builder()
///     .log_buffer(LogBuffer::new())
///     .build()?;
/// let backend = env_logger::Builder::new()
///     .filter_level(log::LevelFilter::Trace)
///     .build();
/// let logger = RequestLogger::new(backend).parse_filters("info");
/// assert_eq!(logger.max_level(&config), log::LevelFilter::Debug);
/// logger.init(&config)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct RequestLogger<L> {
    inner: L,
    filter: env_filter::Filter,
}

impl<L: Log> RequestLogger<L> {
    /// Wraps `inner`, with an output filter that writes `ERROR` only.
    pub fn new(inner: L) -> Self {
        Self {
            inner,
            filter: env_filter::Builder::new().build(),
        }
    }

    /// The output filter from `RUST_LOG`-style directives (`info`,
    /// `warn,my_app=debug`), as env_logger reads them: an invalid directive is reported
    /// on stderr and ignored.
    #[must_use]
    pub fn parse_filters(mut self, directives: &str) -> Self {
        self.filter = env_filter::Builder::new().parse(directives).build();
        self
    }

    /// The output filter from the environment variable `variable` (say `RUST_LOG`), if it
    /// is set; the filter so far otherwise.
    #[must_use]
    pub fn parse_env(self, variable: &str) -> Self {
        match std::env::var(variable) {
            Ok(directives) => self.parse_filters(&directives),
            Err(_) => self,
        }
    }

    /// The output filter, built elsewhere.
    #[must_use]
    pub fn filter(mut self, filter: env_filter::Filter) -> Self {
        self.filter = filter;
        self
    }

    /// The wrapped logger.
    pub fn get_ref(&self) -> &L {
        &self.inner
    }

    /// The `log::max_level` that `config`'s requests need: the output filter's, the
    /// buffer level's, and `TRACE` when a level header is configured.
    pub fn max_level(&self, config: &CorrelationConfig) -> LevelFilter {
        let buffer = config
            .log_buffer_settings()
            .map_or(LevelFilter::Off, |settings| settings.max_level());
        let raised = if config.log_level_header().is_some() {
            LevelFilter::Trace
        } else {
            LevelFilter::Off
        };
        self.filter.filter().max(buffer).max(raised)
    }

    /// Installs this logger as the global logger, with `log::max_level` at
    /// [`max_level`](Self::max_level) for `config`.
    ///
    /// # Errors
    ///
    /// [`log::SetLoggerError`] when a global logger is already installed.
    pub fn init(self, config: &CorrelationConfig) -> Result<(), log::SetLoggerError>
    where
        L: Send + Sync + 'static,
    {
        let max_level = self.max_level(config);
        log::set_boxed_logger(Box::new(self))?;
        log::set_max_level(max_level);
        Ok(())
    }
}

impl<L: Log> Log for RequestLogger<L> {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        self.filter.enabled(metadata)
            || with_current_log(|log| log.is_some_and(|log| log.admits(metadata)))
    }

    fn log(&self, record: &Record<'_>) {
        if REPLAYING.get() {
            return self.inner.log(record);
        }
        let output = self.filter.matches(record);
        if output && record.level() != Level::Error {
            return self.inner.log(record);
        }
        with_current_log(|log| match log {
            Some(log) => log.log(record, output, &self.inner),
            None if output => self.inner.log(record),
            None => {}
        });
    }

    fn flush(&self) {
        self.inner.flush();
    }
}

impl<L> fmt::Debug for RequestLogger<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestLogger")
            .field("inner", &std::any::type_name::<L>())
            .field("filter", &self.filter)
            .finish()
    }
}
