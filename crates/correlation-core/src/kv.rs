//! A [`log::Log`] wrapper that adds the correlation ID to every record as a key-value,
//! for structured and JSON `log` backends.

use std::borrow::Cow;
use std::fmt::Write as _;

use log::kv::{Error, Key, Source, ToValue, Value, VisitSource};
use log::{Log, Metadata, Record};

use crate::constants::HOP_ID_KEY;
use crate::context::with_current_context;
use crate::fields::Fields;
use crate::fmt::{EscapeDetector, Escaped, needs_escaping};

/// The key under which [`CorrelationLogger`] adds the ID.
pub(crate) const CORRELATION_ID_KEY: &str = "correlation_id";

/// Wraps any [`log::Log`] and adds `correlation_id` to every record logged while a
/// correlation ID is current (log's `kv` feature), then `hop_id` when the request has a
/// [hop ID](crate::CorrelationConfigBuilder::hop_id_header), then the request's
/// [`Fields`]. Records outside a request pass through.
///
/// The wrapped logger sees the message, the target and every key and value with control
/// characters and bidirectional overrides escaped (see [`Escaped`]), so that a plain-text
/// backend writes each record on one line whatever a client put in it. Values with
/// nothing to escape are passed on as they are, numbers and structured values keeping
/// their type; [`unescaped`](Self::unescaped) turns escaping off.
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
    escape: bool,
}

impl<L: Log> CorrelationLogger<L> {
    /// Wraps `inner`, adding the ID under the key `correlation_id`.
    pub fn new(inner: L) -> Self {
        Self {
            inner,
            key: CORRELATION_ID_KEY,
            escape: true,
        }
    }

    /// Uses another key than `correlation_id`.
    #[must_use]
    pub fn key(mut self, key: &'static str) -> Self {
        self.key = key;
        self
    }

    /// Passes the message, the target and the key-values on as they are, for backends
    /// that escape them themselves or applications that log multi-line text on purpose.
    /// (A JSON backend escapes line breaks, but not bidirectional overrides or C1
    /// controls, and a reader that decodes the JSON sees the raw text again.)
    #[must_use]
    pub fn unescaped(mut self) -> Self {
        self.escape = false;
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
        if !self.escape {
            return self.log_with_id(record);
        }
        let target = if needs_escaping(record.target()) {
            Cow::Owned(Escaped(record.target()).to_string())
        } else {
            Cow::Borrowed(record.target())
        };
        let pairs = EscapedPairs::of(record.key_values());
        let key_values: &dyn Source = match &pairs {
            Some(pairs) => pairs,
            None => record.key_values(),
        };
        self.log_with_id(
            &record
                .to_builder()
                .args(format_args!("{}", Escaped(record.args())))
                .target(&target)
                .key_values(key_values)
                .build(),
        );
    }

    fn flush(&self) {
        self.inner.flush();
    }
}

impl<L: Log> CorrelationLogger<L> {
    fn log_with_id(&self, record: &Record<'_>) {
        with_current_context(|context| match context.and_then(|context| context.id()) {
            None => self.inner.log(record),
            Some(id) => {
                let hop = context.and_then(crate::CorrelationContext::hop_id);
                let snapshot = Fields::current();
                let fields: Vec<(&str, Cow<'_, str>)> = snapshot
                    .iter()
                    .map(|(key, value)| {
                        let value = if self.escape && needs_escaping(value) {
                            Cow::Owned(Escaped(value).to_string())
                        } else {
                            Cow::Borrowed(value)
                        };
                        (key, value)
                    })
                    .collect();
                let source = WithId {
                    first: record.key_values(),
                    key: self.key,
                    id: id.as_str(),
                    hop: hop.map(crate::CorrelationId::as_str),
                    fields: &fields,
                };
                self.inner
                    .log(&record.to_builder().key_values(&source).build());
            }
        });
    }
}

/// A key or a value: the original, or its escaped text.
enum Text<T> {
    Kept(T),
    Escaped(String),
}

/// A record's key-values with those that need it escaped; built only when one does.
struct EscapedPairs<'a> {
    pairs: Vec<(Text<Key<'a>>, Text<Value<'a>>)>,
}

impl<'a> EscapedPairs<'a> {
    /// The escaped pairs of `source`, or `None` when nothing in it needs escaping.
    fn of(source: &'a dyn Source) -> Option<Self> {
        struct Check(bool);
        impl<'kvs> VisitSource<'kvs> for Check {
            fn visit_pair(&mut self, key: Key<'kvs>, value: Value<'kvs>) -> Result<(), Error> {
                self.0 = needs_escaping(key.as_str()) || value_needs_escaping(&value);
                // Stop at the first pair that needs it.
                if self.0 {
                    Err(Error::msg("needs escaping"))
                } else {
                    Ok(())
                }
            }
        }
        struct Collect<'a>(Vec<(Text<Key<'a>>, Text<Value<'a>>)>);
        impl<'a> VisitSource<'a> for Collect<'a> {
            fn visit_pair(&mut self, key: Key<'a>, value: Value<'a>) -> Result<(), Error> {
                let key = if needs_escaping(key.as_str()) {
                    Text::Escaped(Escaped(key.as_str()).to_string())
                } else {
                    Text::Kept(key)
                };
                let value = if value_needs_escaping(&value) {
                    Text::Escaped(Escaped(&value).to_string())
                } else {
                    Text::Kept(value)
                };
                self.0.push((key, value));
                Ok(())
            }
        }

        let mut check = Check(false);
        let _ = source.visit(&mut check);
        if !check.0 {
            return None;
        }
        let mut collect = Collect(Vec::new());
        // `Collect` never fails; a source that does loses only its later pairs.
        let _ = source.visit(&mut collect);
        Some(Self { pairs: collect.0 })
    }
}

impl Source for EscapedPairs<'_> {
    fn visit<'kvs>(&'kvs self, visitor: &mut dyn VisitSource<'kvs>) -> Result<(), Error> {
        for (key, value) in &self.pairs {
            let key = match key {
                Text::Kept(key) => key.clone(),
                Text::Escaped(key) => Key::from_str(key),
            };
            let value = match value {
                Text::Kept(value) => value.to_value(),
                Text::Escaped(value) => Value::from(value.as_str()),
            };
            visitor.visit_pair(key, value)?;
        }
        Ok(())
    }
}

/// Whether the text of `value` holds anything to escape; checked without allocating.
fn value_needs_escaping(value: &Value<'_>) -> bool {
    match value.to_borrowed_str() {
        Some(text) => needs_escaping(text),
        None => {
            let mut detector = EscapeDetector::default();
            // The detector stops the formatting with an error once it has its answer.
            let _ = write!(detector, "{value}");
            detector.found
        }
    }
}

/// The record's own key-values followed by the correlation ID, the hop ID and the
/// request's fields.
struct WithId<'a> {
    first: &'a dyn Source,
    key: &'static str,
    id: &'a str,
    hop: Option<&'a str>,
    fields: &'a [(&'a str, Cow<'a, str>)],
}

impl Source for WithId<'_> {
    fn visit<'kvs>(&'kvs self, visitor: &mut dyn VisitSource<'kvs>) -> Result<(), Error> {
        self.first.visit(visitor)?;
        visitor.visit_pair(Key::from_str(self.key), Value::from(self.id))?;
        if let Some(hop) = self.hop {
            visitor.visit_pair(Key::from_str(HOP_ID_KEY), Value::from(hop))?;
        }
        for (key, value) in self.fields {
            visitor.visit_pair(Key::from_str(key), Value::from(&**value))?;
        }
        Ok(())
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

    #[test]
    fn adds_the_hop_id_after_the_id_when_the_request_has_one() {
        let logger = CorrelationLogger::new(Collect::default());
        let config = crate::CorrelationConfig::builder()
            .hop_id_header("X-Hop-ID")
            .build()
            .unwrap();
        let (decision, _) =
            crate::adapter::decide_request(&config, &http::HeaderMap::new(), || None).unwrap();
        let context = crate::adapter::request_context(&config, decision);
        context.run(|| logger.log(&Record::builder().args(format_args!("hello")).build()));
        let seen = logger.get_ref().0.lock().unwrap().clone();
        let pair = |k: &str, v: &str| (k.to_owned(), v.to_owned());
        assert_eq!(
            seen[0],
            vec![
                pair("correlation_id", context.id().unwrap().as_str()),
                pair("hop_id", context.hop_id().unwrap().as_str()),
            ]
        );
    }

    #[test]
    fn adds_the_fields_after_the_id_escaped() {
        let logger = CorrelationLogger::new(Collect::default());
        let record = |logger: &CorrelationLogger<Collect>| {
            logger.log(&Record::builder().args(format_args!("hello")).build());
        };
        sync_scope(CorrelationId::from_static("abc"), || {
            assert!(Fields::insert("tenant", "acme"));
            assert!(Fields::insert("user", "eve\nINFO forged"));
            record(&logger);
        });
        let unescaped = CorrelationLogger::new(Collect::default()).unescaped();
        sync_scope(CorrelationId::from_static("def"), || {
            assert!(Fields::insert("user", "a\nb"));
            record(&unescaped);
        });
        let pair = |k: &str, v: &str| (k.to_owned(), v.to_owned());
        assert_eq!(
            logger.get_ref().0.lock().unwrap()[0],
            vec![
                pair("correlation_id", "abc"),
                pair("tenant", "acme"),
                pair("user", "eve\\nINFO forged"),
            ]
        );
        assert_eq!(
            unescaped.get_ref().0.lock().unwrap()[0],
            vec![pair("correlation_id", "def"), pair("user", "a\nb")]
        );
    }

    /// What the wrapped logger saw of one record: target, message and pairs as text, and
    /// the value under `count` if it kept its integer type.
    type SeenRecord = (String, String, Vec<(String, String)>, Option<u64>);

    #[derive(Default)]
    struct Seen(Mutex<Vec<SeenRecord>>);

    impl Log for Seen {
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            true
        }
        fn log(&self, record: &Record<'_>) {
            struct Pairs(Vec<(String, String)>, Option<u64>);
            impl<'kvs> VisitSource<'kvs> for Pairs {
                fn visit_pair(&mut self, key: Key<'kvs>, value: Value<'kvs>) -> Result<(), Error> {
                    if key.as_str() == "count" {
                        self.1 = value.to_u64();
                    }
                    self.0.push((key.to_string(), value.to_string()));
                    Ok(())
                }
            }
            let mut pairs = Pairs(Vec::new(), None);
            record.key_values().visit(&mut pairs).unwrap();
            self.0.lock().unwrap().push((
                record.target().to_owned(),
                record.args().to_string(),
                pairs.0,
                pairs.1,
            ));
        }
        fn flush(&self) {}
    }

    fn log_hostile(logger: &CorrelationLogger<Seen>) {
        let text = String::from("a\nINFO  [victim] app: forged \u{1b}[2K\u{202e}");
        let display = format_args!("x\ry");
        let kvs: &[(&str, Value<'_>)] = &[
            ("user", Value::from(text.as_str())),
            ("count", Value::from(7u64)),
            ("shown", Value::from_dyn_display(&display)),
            ("key\tname", Value::from("plain")),
        ];
        logger.log(
            &Record::builder()
                .target("app\u{85}target")
                .args(format_args!("message {text}"))
                .key_values(&kvs)
                .build(),
        );
    }

    #[test]
    fn the_wrapped_logger_sees_message_target_and_key_values_escaped() {
        let logger = CorrelationLogger::new(Seen::default());
        sync_scope(CorrelationId::from_static("abc"), || log_hostile(&logger));
        let seen = logger.get_ref().0.lock().unwrap().clone();
        let (target, message, pairs, count) = &seen[0];
        assert_eq!(target, r"app\u{85}target");
        assert_eq!(
            message,
            r"message a\nINFO  [victim] app: forged \u{1b}[2K\u{202e}"
        );
        let pair = |k: &str, v: &str| (k.to_owned(), v.to_owned());
        assert_eq!(
            pairs,
            &vec![
                pair("user", r"a\nINFO  [victim] app: forged \u{1b}[2K\u{202e}"),
                pair("count", "7"),
                pair("shown", r"x\ry"),
                pair(r"key\tname", "plain"),
                pair("correlation_id", "abc"),
            ]
        );
        assert_eq!(*count, Some(7), "clean values keep their type");
    }

    #[test]
    fn clean_records_pass_unchanged_and_unescaped_passes_everything_on_raw() {
        let logger = CorrelationLogger::new(Seen::default());
        let kvs: &[(&str, u64)] = &[("count", 3)];
        logger.log(
            &Record::builder()
                .target("app")
                .args(format_args!("Grüße, 東京"))
                .key_values(&kvs)
                .build(),
        );
        let raw = CorrelationLogger::new(Seen::default()).unescaped();
        log_hostile(&raw);
        let clean = logger.get_ref().0.lock().unwrap()[0].clone();
        assert_eq!(clean.0, "app");
        assert_eq!(clean.1, "Grüße, 東京");
        assert_eq!(clean.3, Some(3));
        let raw = raw.get_ref().0.lock().unwrap()[0].clone();
        assert_eq!(raw.0, "app\u{85}target");
        assert!(raw.1.contains("\nINFO  [victim]"));
        assert_eq!(
            raw.2[0].1,
            "a\nINFO  [victim] app: forged \u{1b}[2K\u{202e}"
        );
    }
}
