//! A [`log::Log`] wrapper that adds the correlation ID to every record as a key-value,
//! for structured and JSON `log` backends.

use log::kv::{Error, Key, Source, Value, VisitSource};
use log::{Log, Metadata, Record};

use crate::context::with_current;

/// The key under which [`CorrelationLogger`] adds the ID.
pub const CORRELATION_ID_KEY: &str = "correlation_id";

/// Wraps any [`log::Log`] and adds `correlation_id` to every record logged while a
/// correlation ID is current (log's `kv` feature). Records outside a request pass through.
///
/// ```
/// use correlation_core::CorrelationLogger;
///
/// let backend = env_logger::Builder::new().parse_filters("info").build();
/// let max_level = backend.filter();
/// CorrelationLogger::new(backend).init(max_level).ok();
/// ```
#[derive(Debug)]
pub struct CorrelationLogger<L> {
    inner: L,
    key: &'static str,
}

impl<L: Log> CorrelationLogger<L> {
    /// Wraps `inner`, adding the ID under the key `correlation_id`.
    pub fn new(inner: L) -> Self {
        Self {
            inner,
            key: CORRELATION_ID_KEY,
        }
    }

    /// Uses another key than `correlation_id`.
    #[must_use]
    pub fn key(mut self, key: &'static str) -> Self {
        self.key = key;
        self
    }

    /// The wrapped logger.
    pub fn get_ref(&self) -> &L {
        &self.inner
    }

    /// Installs this logger as the global logger with `max_level`.
    pub fn init(self, max_level: log::LevelFilter) -> Result<(), log::SetLoggerError>
    where
        L: Send + Sync + 'static,
    {
        log::set_boxed_logger(Box::new(self))?;
        log::set_max_level(max_level);
        Ok(())
    }
}

impl<L: Log> Log for CorrelationLogger<L> {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        self.inner.enabled(metadata)
    }

    fn log(&self, record: &Record<'_>) {
        with_current(|id| match id {
            None => self.inner.log(record),
            Some(id) => {
                let source = WithId {
                    first: record.key_values(),
                    key: self.key,
                    id: id.as_str(),
                };
                self.inner
                    .log(&record.to_builder().key_values(&source).build());
            }
        });
    }

    fn flush(&self) {
        self.inner.flush();
    }
}

/// The record's own key-values followed by the correlation ID.
struct WithId<'a> {
    first: &'a dyn Source,
    key: &'static str,
    id: &'a str,
}

impl Source for WithId<'_> {
    fn visit<'kvs>(&'kvs self, visitor: &mut dyn VisitSource<'kvs>) -> Result<(), Error> {
        self.first.visit(visitor)?;
        visitor.visit_pair(Key::from_str(self.key), Value::from(self.id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CorrelationId, sync_scope};
    use std::sync::Mutex;

    #[derive(Default)]
    struct Collect(Mutex<Vec<Vec<(String, String)>>>);

    impl Log for Collect {
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            true
        }
        fn log(&self, record: &Record<'_>) {
            struct Pairs(Vec<(String, String)>);
            impl<'kvs> VisitSource<'kvs> for Pairs {
                fn visit_pair(&mut self, key: Key<'kvs>, value: Value<'kvs>) -> Result<(), Error> {
                    self.0.push((key.to_string(), value.to_string()));
                    Ok(())
                }
            }
            let mut pairs = Pairs(Vec::new());
            record.key_values().visit(&mut pairs).unwrap();
            self.0.lock().unwrap().push(pairs.0);
        }
        fn flush(&self) {}
    }

    #[test]
    fn adds_the_id_after_the_records_own_pairs() {
        let logger = CorrelationLogger::new(Collect::default());
        let kvs: &[(&str, &str)] = &[("user", "42")];
        let record = |logger: &CorrelationLogger<Collect>| {
            logger.log(
                &Record::builder()
                    .args(format_args!("hello"))
                    .key_values(&kvs)
                    .build(),
            );
        };
        record(&logger);
        sync_scope(CorrelationId::from_static("abc"), || record(&logger));
        let seen = logger.get_ref().0.lock().unwrap().clone();
        let pair = |k: &str, v: &str| (k.to_owned(), v.to_owned());
        assert_eq!(seen[0], vec![pair("user", "42")]);
        assert_eq!(
            seen[1],
            vec![pair("user", "42"), pair("correlation_id", "abc")]
        );
    }
}
