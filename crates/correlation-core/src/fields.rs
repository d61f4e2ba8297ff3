//! Fields on every line: `tenant=acme user=alice` next to the ID on every record of a
//! request, like Java's MDC. See [`Fields`].

use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use crate::context::{with_current_context, with_current_fields};
use crate::fmt::{needs_escaping, write_escaped};

/// Keys the crate writes itself, which a field may not shadow.
const RESERVED_KEYS: [&str; 5] = [
    "correlation_id",
    crate::constants::HOP_ID_KEY,
    "job_id",
    "parent_job_id",
    "fields",
];

/// Fields on every line: `tenant=acme user=alice` next to the ID on every record of a
/// request, like Java's MDC. The associated functions act on the current request; a
/// value of the type is a copy of a request's fields at one moment.
///
/// Application code, a handler or an authentication middleware inside the correlation
/// middleware, [`insert`](Self::insert)s a field into the current request's context.
/// From then on every record of that request carries it: in nested calls, in tasks and
/// blocking closures started with [`spawn`](crate::spawn),
/// [`spawn_blocking`](crate::spawn_blocking) and the other helpers, and while the
/// response body streams.
///
/// - The `log` format ([`format`](crate::format), [`LogFormat`](crate::LogFormat)) prints
///   them after the ID: `[<id>] tenant=acme user=alice target: message`. A value with a
///   space, `"`, `=`, `\`, a control character or nothing in it is quoted
///   (`user="Alice \"A\" Smith"`), and control characters are escaped like any
///   client-controlled text, so a record stays one line.
/// - [`CorrelationLogger`](crate::CorrelationLogger) (`kv` feature) adds each as a
///   key-value after `correlation_id`.
/// - With the `tracing` feature, the request's span records them all as one `fields`
///   value, `tenant=acme user=alice`, each time one is set. (tracing-subscriber's JSON
///   formatter keeps the latest value; its text formatter shows each value recorded.)
/// - With the `sentry` feature, the request's Sentry scope tags each.
///
/// Fields under the configuration's
/// [`baggage_keys`](crate::CorrelationConfigBuilder::baggage_keys) travel on to other
/// services as W3C baggage, and arrive from trusted ones
/// ([`baggage_from`](crate::CorrelationConfigBuilder::baggage_from)).
///
/// Fields belong to the request, not to a task: the request's context and every context
/// started from it share them, so a field set in a spawned task is seen by the request
/// too. Setting a key again replaces its value. A request that never sets a field pays
/// nothing for them: its context holds no map and its lines are written as before.
///
/// # Bounds
///
/// A request holds at most [`MAX_COUNT`](Self::MAX_COUNT) fields; a key is 1 to
/// [`MAX_KEY_LEN`](Self::MAX_KEY_LEN) ASCII letters, digits, `_`, `-` or `.` (and not
/// `correlation_id`, `hop_id`, `job_id`, `parent_job_id` or `fields`), and a value at most
/// [`MAX_VALUE_LEN`](Self::MAX_VALUE_LEN) bytes of text. Past them
/// [`insert`](Self::insert) stores nothing and returns `false`, and the first refusal of
/// a request logs one `WARN` (never the value), so a request's fields never take more
/// than a few kilobytes, whatever a client sends.
///
/// ```
/// use correlation_core::{CorrelationId, Fields, scope};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// scope(CorrelationId::from_static("req-1"), async {
///     assert!(Fields::insert("tenant", "acme"));
///     assert!(Fields::insert("user", 42));
///     log::info!("paid"); // INFO  [req-1] tenant=acme user=42 app: paid
///
///     let task = correlation_core::spawn(async { Fields::current().to_string() });
///     assert_eq!(task.await.unwrap(), "tenant=acme user=42");
///
///     assert!(!Fields::insert("not a key", "x"));
///     assert_eq!(Fields::current().get("tenant"), Some("acme"));
/// })
/// .await;
///
/// // Outside a request there is nowhere to put a field.
/// assert!(!Fields::insert("tenant", "acme"));
/// assert!(Fields::current().is_empty());
/// # }
/// ```
#[derive(Clone, Default)]
pub struct Fields(Option<Arc<[Pair]>>);

impl Fields {
    /// The most fields a request holds.
    pub const MAX_COUNT: usize = 16;

    /// The longest key, in bytes (keys are ASCII).
    pub const MAX_KEY_LEN: usize = 32;

    /// The longest value, in bytes of its text.
    pub const MAX_VALUE_LEN: usize = 256;

    /// Sets the field `key` to `value`'s text in the current request's (or job's)
    /// context, replacing the value it had. Whether it was stored: not outside a request,
    /// nor past the [bounds](Self#bounds), where the first refusal in a request also logs
    /// one `WARN`.
    pub fn insert(key: &str, value: impl fmt::Display) -> bool {
        with_current_context(|context| {
            let Some(fields) = context.and_then(crate::CorrelationContext::fields_or_init) else {
                return false;
            };
            let result = check_key(key)
                .and_then(|()| bounded_text(&value))
                .and_then(|value| fields.set(key, value));
            match result {
                Ok(()) => true,
                Err(refusal) => {
                    fields.warn_once(key, refusal);
                    false
                }
            }
        })
    }

    /// Removes the field `key` from the current request's context; whether it was set.
    pub fn remove(key: &str) -> bool {
        with_current_fields(|fields| fields.is_some_and(|fields| fields.remove(key)))
    }

    /// The current request's fields as they are now (none outside a request).
    #[must_use]
    pub fn current() -> Self {
        with_current_fields(|fields| fields.map(FieldMap::snapshot)).unwrap_or_default()
    }

    /// The value of the field `key`.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&str> {
        self.iter().find(|(k, _)| *k == key).map(|(_, value)| value)
    }

    /// Each field's key and value, in the order they were first set.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(|(key, value)| (&**key, &**value))
    }

    /// Whether there are no fields.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }
}

/// The fields as the log format shows them: `tenant=acme user="Alice Smith"`.
impl fmt::Display for Fields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, (key, value)) in self.iter().enumerate() {
            if index > 0 {
                f.write_char(' ')?;
            }
            write_pair(f, key, value)?;
        }
        Ok(())
    }
}

impl PartialEq for Fields {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for Fields {}

impl Fields {
    /// The pairs that keep to the [bounds](Self#bounds), the first of a repeated key, up
    /// to the most a request holds; and whether any was left out.
    pub(crate) fn checked<K: AsRef<str>, V: AsRef<str>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> (Self, bool) {
        let mut kept: Vec<Pair> = Vec::new();
        let mut dropped = false;
        for (key, value) in pairs {
            let (key, value) = (key.as_ref(), value.as_ref());
            let usable = check_key(key).is_ok()
                && value.len() <= Self::MAX_VALUE_LEN
                && kept.len() < Self::MAX_COUNT
                && !kept.iter().any(|(k, _)| &**k == key);
            if usable {
                kept.push((key.into(), value.into()));
            } else {
                dropped = true;
            }
        }
        let fields = if kept.is_empty() {
            None
        } else {
            Some(Arc::from(kept))
        };
        (Self(fields), dropped)
    }

    /// Sets these fields in `context` (a job's, made from a carrier), so they reach its
    /// span and Sentry hub too.
    pub(crate) fn set_in(&self, context: &crate::CorrelationContext) {
        if self.is_empty() {
            return;
        }
        if let Some(map) = context.fields_or_init() {
            for (key, value) in self.iter() {
                // Already checked: nothing here is refused.
                let _ = map.set(key, value.to_owned());
            }
        }
    }

    /// The fields as a W3C baggage list, `tenant=acme,user=Alice%20Smith`.
    #[cfg(feature = "apalis")]
    pub(crate) fn to_list(&self) -> String {
        let mut list = String::new();
        for (key, value) in self.iter() {
            crate::baggage::push_member(&mut list, key, value);
        }
        list
    }

    /// The fields of a W3C baggage [list](Self::to_list), and whether anything in it was
    /// left out (a malformed member, one past the bounds).
    #[cfg(feature = "apalis")]
    pub(crate) fn from_list(text: &str) -> (Self, bool) {
        let mut pairs = Vec::new();
        let left_out = crate::baggage::Parser::parse([text.as_bytes()], |key, value| {
            if pairs.len() <= Self::MAX_COUNT {
                pairs.push((key, value));
            }
        });
        let (fields, dropped) = Self::checked(pairs);
        (fields, left_out.is_some() || dropped)
    }

    /// These fields and, for keys they do not hold, `pairs` that keep to the
    /// [bounds](Self#bounds).
    pub(crate) fn with_missing(self, pairs: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut pairs = pairs.into_iter().peekable();
        if pairs.peek().is_none() {
            return self;
        }
        let held = self
            .iter()
            .map(|(key, value)| (key.to_owned(), value.to_owned()));
        Self::checked(held.chain(pairs).collect::<Vec<_>>()).0
    }

    /// Whether `key` may be a field's key.
    pub(crate) fn is_valid_key(key: &str) -> bool {
        check_key(key).is_ok()
    }
}

/// As a map of each key to its value, in order.
#[cfg(feature = "serde")]
impl serde::Serialize for Fields {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

/// From a map of keys to text values; pairs past the [bounds](Fields#bounds) are left
/// out, never an error.
#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for Fields {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Pairs;
        impl<'de> serde::de::Visitor<'de> for Pairs {
            type Value = Fields;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of field keys to text values")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Fields, A::Error> {
                let mut pairs = Vec::new();
                while let Some((key, value)) = map.next_entry::<String, String>()? {
                    if pairs.len() <= Fields::MAX_COUNT {
                        pairs.push((key, value));
                    }
                }
                Ok(Fields::checked(pairs).0)
            }
        }
        deserializer.deserialize_map(Pairs)
    }
}

impl fmt::Debug for Fields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// Why a field was not stored, for the `WARN`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    InvalidKey,
    ValueTooLong,
    TooMany,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::InvalidKey => {
                "a key is 1 to 32 ASCII letters, digits, `_`, `-` or `.`, and not reserved"
            }
            Self::ValueTooLong => "a value is at most 256 bytes",
            Self::TooMany => "a request holds at most 16 fields",
        })
    }
}

fn check_key(key: &str) -> Result<(), Refusal> {
    let valid = !key.is_empty()
        && key.len() <= Fields::MAX_KEY_LEN
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        && !RESERVED_KEYS.contains(&key);
    if valid {
        Ok(())
    } else {
        Err(Refusal::InvalidKey)
    }
}

/// `value`'s text, refused as soon as it grows past the bound, so a value with a huge
/// `Display` never takes more than that.
fn bounded_text(value: &impl fmt::Display) -> Result<String, Refusal> {
    struct Bounded(String);
    impl fmt::Write for Bounded {
        fn write_str(&mut self, text: &str) -> fmt::Result {
            if self.0.len() + text.len() > Fields::MAX_VALUE_LEN {
                return Err(fmt::Error);
            }
            self.0.push_str(text);
            Ok(())
        }
    }
    let mut text = Bounded(String::new());
    write!(text, "{value}").map_err(|_| Refusal::ValueTooLong)?;
    Ok(text.0)
}

/// One field: its key and its value's text, as set. Shared, so that setting one field
/// copies the others' pointers, not their text.
pub(crate) type Pair = (Arc<str>, Arc<str>);

/// A context's fields, shared by every context captured from it.
///
/// Readers take the current pairs (an `Arc` clone) and let the lock go before doing
/// anything with them, so a logger, a subscriber or a Sentry hub called while they are
/// used can log and read them again without deadlocking.
pub(crate) struct FieldMap {
    fields: Mutex<Fields>,
    warned: AtomicBool,
    // Read only where a feature records the fields somewhere else.
    #[cfg_attr(not(any(feature = "tracing", feature = "sentry")), allow(dead_code))]
    sinks: Sinks,
}

/// Where a context's fields are recorded besides its log lines.
#[derive(Default)]
pub(crate) struct Sinks {
    /// The request's (or job's) span, which declares `fields`.
    #[cfg(feature = "tracing")]
    pub(crate) span: Option<tracing::Span>,
    /// The request's (or job's) own Sentry hub.
    #[cfg(feature = "sentry")]
    pub(crate) hub: Option<Arc<sentry_core::Hub>>,
}

impl FieldMap {
    fn new(sinks: Sinks) -> Self {
        Self {
            fields: Mutex::new(Fields::default()),
            warned: AtomicBool::new(false),
            sinks,
        }
    }

    /// The fields as they are now, in the order they were first set.
    pub(crate) fn snapshot(&self) -> Fields {
        self.fields
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set(&self, key: &str, value: String) -> Result<(), Refusal> {
        let value: Arc<str> = value.into();
        {
            let mut fields = self.fields.lock().unwrap_or_else(PoisonError::into_inner);
            let mut next = fields.0.as_deref().unwrap_or_default().to_vec();
            match next.iter().position(|(k, _)| &**k == key) {
                Some(at) => next[at].1 = Arc::clone(&value),
                None if next.len() >= Fields::MAX_COUNT => return Err(Refusal::TooMany),
                None => next.push((key.into(), Arc::clone(&value))),
            }
            *fields = Fields(Some(next.into()));
        }
        #[cfg(feature = "sentry")]
        if let Some(hub) = &self.sinks.hub {
            hub.configure_scope(|scope| scope.set_tag(key, &*value));
        }
        self.record();
        Ok(())
    }

    fn remove(&self, key: &str) -> bool {
        {
            let mut fields = self.fields.lock().unwrap_or_else(PoisonError::into_inner);
            if fields.get(key).is_none() {
                return false;
            }
            let pairs = fields.0.as_deref().unwrap_or_default();
            let kept: Vec<Pair> = pairs.iter().filter(|(k, _)| &**k != key).cloned().collect();
            *fields = Fields((!kept.is_empty()).then(|| Arc::from(kept)));
        }
        #[cfg(feature = "sentry")]
        if let Some(hub) = &self.sinks.hub {
            hub.configure_scope(|scope| scope.remove_tag(key));
        }
        self.record();
        true
    }

    /// Records the fields as they are now into the span.
    #[cfg_attr(not(feature = "tracing"), allow(clippy::unused_self))]
    fn record(&self) {
        #[cfg(feature = "tracing")]
        if let Some(span) = &self.sinks.span {
            let text = self.snapshot().to_string();
            span.record("fields", text.as_str());
        }
    }

    /// Logs the first refusal of this request's fields, naming the key only when it is
    /// valid (an invalid key may be a client's text) and never the value.
    fn warn_once(&self, key: &str, refusal: Refusal) {
        if self.warned.swap(true, Ordering::Relaxed) {
            return;
        }
        let key = if check_key(key).is_ok() {
            key
        } else {
            "<invalid>"
        };
        log::warn!(
            target: crate::constants::LOG_TARGET,
            "field {key} not set: {refusal} (further refusals in this request are not logged)"
        );
    }
}

/// A context's fields, absent until one is set or work is started from the context.
#[derive(Clone, Default)]
pub(crate) struct FieldsCell(OnceLock<Arc<FieldMap>>);

impl FieldsCell {
    pub(crate) const fn new() -> Self {
        Self(OnceLock::new())
    }

    pub(crate) fn get(&self) -> Option<&FieldMap> {
        self.0.get().map(|fields| &**fields)
    }

    pub(crate) fn get_or_init(&self, sinks: impl FnOnce() -> Sinks) -> &FieldMap {
        self.0.get_or_init(|| Arc::new(FieldMap::new(sinks())))
    }

    /// A cell holding these same fields, made now if there are none yet.
    pub(crate) fn share(&self, sinks: impl FnOnce() -> Sinks) -> Self {
        let fields = self.0.get_or_init(|| Arc::new(FieldMap::new(sinks())));
        Self(OnceLock::from(Arc::clone(fields)))
    }
}

/// Writes `key=value`, the value quoted when it holds a space, `"`, `=`, `\`, anything
/// escaped, or nothing, and escaped.
pub(crate) fn write_pair(
    out: &mut (impl fmt::Write + ?Sized),
    key: &str,
    value: &str,
) -> fmt::Result {
    out.write_str(key)?;
    out.write_char('=')?;
    let quoted = value.is_empty() || value.contains([' ', '"', '=', '\\']) || needs_escaping(value);
    if !quoted {
        return out.write_str(value);
    }
    out.write_char('"')?;
    let mut rest = value;
    while let Some(at) = rest.find(['"', '\\']) {
        write_escaped(out, &rest[..at])?;
        out.write_char('\\')?;
        out.write_str(&rest[at..=at])?;
        rest = &rest[at + 1..];
    }
    write_escaped(out, rest)?;
    out.write_char('"')
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests start tasks outside any request on purpose
mod tests {
    use super::*;

    use crate::{CorrelationId, current, scope, spawn, spawn_blocking, sync_scope};

    fn id(value: &'static str) -> CorrelationId {
        CorrelationId::from_static(value)
    }

    fn get(key: &str) -> Option<String> {
        Fields::current().get(key).map(str::to_owned)
    }

    #[test]
    fn outside_a_request_nothing_is_stored() {
        assert!(!Fields::insert("tenant", "acme"));
        assert!(Fields::current().is_empty());
        assert!(!Fields::remove("tenant"));
    }

    #[test]
    fn a_field_is_set_replaced_and_removed() {
        sync_scope(id("req-1"), || {
            assert_eq!(get("tenant"), None);
            assert!(Fields::insert("tenant", "acme"));
            assert!(Fields::insert("user", 7));
            assert!(Fields::insert("tenant", "globex"));
            assert_eq!(get("tenant").as_deref(), Some("globex"));
            assert_eq!(Fields::current().to_string(), "tenant=globex user=7");
            assert_eq!(
                format!("{:?}", Fields::current()),
                r#"{"tenant": "globex", "user": "7"}"#
            );
            assert!(Fields::remove("tenant"));
            assert!(!Fields::remove("tenant"));
            assert_eq!(Fields::current().to_string(), "user=7");
        });
        assert_eq!(get("user"), None);
    }

    #[test]
    fn a_context_without_fields_holds_no_map() {
        sync_scope(id("req-1"), || {
            assert!(with_current_fields(|fields| fields.is_none()));
            assert!(Fields::current().is_empty());
            assert!(!Fields::remove("tenant"));
            assert!(with_current_fields(|fields| fields.is_none()));
        });
    }

    #[test]
    fn keys_are_checked() {
        sync_scope(id("req-1"), || {
            for key in [
                "",
                "a b",
                "line\nbreak",
                "é",
                "k=v",
                "correlation_id",
                "fields",
            ] {
                assert!(!Fields::insert(key, "x"), "{key:?}");
            }
            assert!(Fields::insert(&"k".repeat(Fields::MAX_KEY_LEN), "x"));
            assert!(!Fields::insert(&"k".repeat(Fields::MAX_KEY_LEN + 1), "x"));
            assert!(Fields::insert("user.id-2_b", "x"));
            assert_eq!(Fields::current().iter().count(), 2);
        });
    }

    #[test]
    fn the_bounds_refuse_and_keep_what_was_set() {
        sync_scope(id("req-1"), || {
            assert!(Fields::insert("long", "v".repeat(Fields::MAX_VALUE_LEN)));
            assert!(!Fields::insert(
                "long",
                "w".repeat(Fields::MAX_VALUE_LEN + 1)
            ));
            assert_eq!(get("long").unwrap(), "v".repeat(Fields::MAX_VALUE_LEN));
            for n in 1..Fields::MAX_COUNT {
                assert!(Fields::insert(&format!("k{n}"), n));
            }
            assert!(!Fields::insert("one-more", "x"));
            assert_eq!(get("one-more"), None);
            // Replacing a field of a full request is not adding one.
            assert!(Fields::insert("k1", "again"));
            assert_eq!(get("k1").as_deref(), Some("again"));
            assert_eq!(Fields::current().iter().count(), Fields::MAX_COUNT);
        });
    }

    #[test]
    fn refusals_log_one_warning_per_request_never_the_value() {
        let logs = crate::test_util::LogCapture::install();
        let warnings = |id: &str| {
            logs.records_for(id)
                .into_iter()
                .filter(|record| record.level == log::Level::Warn)
                .map(|record| record.rendered)
                .collect::<Vec<_>>()
        };
        sync_scope(id("warned-1"), || {
            assert!(!Fields::insert("bad key\nsecret-key", "x"));
            assert!(!Fields::insert("long", "secret-value".repeat(30)));
        });
        sync_scope(id("warned-2"), || {
            for n in 0..Fields::MAX_COUNT {
                assert!(Fields::insert(&format!("k{n}"), "v"));
            }
            assert!(!Fields::insert("k16", "secret-value"));
            assert!(!Fields::insert("k17", "secret-value"));
        });
        let first = warnings("warned-1");
        assert_eq!(first.len(), 1, "{first:?}");
        assert!(first[0].contains("field <invalid> not set"), "{first:?}");
        let second = warnings("warned-2");
        assert_eq!(second.len(), 1, "{second:?}");
        assert!(second[0].contains("field k16 not set: a request holds at most 16 fields"));
        assert!(!second[0].contains("secret"));
        assert!(!first[0].contains("secret"));
    }

    #[test]
    fn a_huge_display_is_refused_without_being_written_whole() {
        struct Endless;
        impl fmt::Display for Endless {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                loop {
                    f.write_str("more")?;
                }
            }
        }
        sync_scope(id("req-1"), || assert!(!Fields::insert("endless", Endless)));
    }

    #[test]
    fn values_are_quoted_and_escaped_onto_one_line() {
        sync_scope(id("req-1"), || {
            Fields::insert("plain", "acme");
            Fields::insert("spaced", "Alice Smith");
            Fields::insert("quoted", r#"say "hi" \o/"#);
            Fields::insert("hostile", "x\r\nINFO [other] forged\u{1b}[31m");
            Fields::insert("empty", "");
            let text = Fields::current().to_string();
            assert_eq!(
                text,
                r#"plain=acme spaced="Alice Smith" quoted="say \"hi\" \\o/" hostile="x\r\nINFO [other] forged\u{1b}[31m" empty="""#
            );
            assert!(!text.contains(['\r', '\n', '\u{1b}']));
        });
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fields_are_shared_with_spawned_work_both_ways() {
        let seen = scope(id("req-1"), async {
            // Spawned before any field is set: still shares the request's fields.
            let (set, go) = tokio::sync::oneshot::channel::<()>();
            let early = spawn(async move {
                go.await.unwrap();
                assert!(Fields::insert("from_task", "yes"));
                get("tenant")
            });
            assert!(Fields::insert("tenant", "acme"));
            set.send(()).unwrap();
            let early = early.await.unwrap();
            let blocking = spawn_blocking(|| (current(), get("tenant"))).await.unwrap();
            (early, blocking, get("from_task"))
        })
        .await;
        assert_eq!(seen.0.as_deref(), Some("acme"));
        assert_eq!(seen.1.0.unwrap(), "req-1");
        assert_eq!(seen.1.1.as_deref(), Some("acme"));
        assert_eq!(seen.2.as_deref(), Some("yes"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_requests_never_see_each_others_fields() {
        let requests: Vec<_> = (0..16)
            .map(|n| {
                let own = CorrelationId::new(&format!("req-{n}")).unwrap();
                tokio::spawn(scope(own, async move {
                    assert!(Fields::insert("n", n));
                    for _ in 0..10 {
                        tokio::task::yield_now().await;
                        assert_eq!(get("n"), Some(n.to_string()));
                    }
                    spawn(async { get("n") }).await.unwrap()
                }))
            })
            .collect();
        for (n, request) in requests.into_iter().enumerate() {
            assert_eq!(request.await.unwrap(), Some(n.to_string()));
        }
    }

    #[test]
    fn a_scope_inside_a_request_has_fields_of_its_own() {
        sync_scope(id("outer"), || {
            assert!(Fields::insert("tenant", "acme"));
            sync_scope(id("inner"), || assert_eq!(get("tenant"), None));
            assert_eq!(get("tenant").as_deref(), Some("acme"));
        });
    }
}
