//! A request's buffer: its records below the output level, oldest first, bounded in
//! records and bytes, written out once when the request fails.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

use log::kv::{self, Key, Value, VisitSource};
use log::{Level, Log, Metadata, Record};

use super::BufferSettings;
use crate::constants::LOG_TARGET;
use crate::fmt::time::with_record_time;

/// Writes a formatted line out: the `tracing` layer's writer.
pub(crate) type WriteLine = Arc<dyn Fn(&[u8]) + Send + Sync>;

/// One kept record and when it was logged.
pub(crate) struct Entry {
    logged_at: SystemTime,
    kind: Kind,
}

enum Kind {
    /// A `log` record, rebuilt and passed to the logger when written out.
    Log(Box<LogEntry>),
    /// A line its stack has already formatted (the `tracing` writer's), and how to write it.
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    Formatted { bytes: Vec<u8>, write: WriteLine },
}

/// A `log` record's parts, owned.
struct LogEntry {
    level: Level,
    target: Box<str>,
    module_path: Option<Box<str>>,
    file: Option<Box<str>>,
    line: Option<u32>,
    message: Box<str>,
    key_values: Box<[(Box<str>, Box<str>)]>,
}

impl Entry {
    /// `record`, logged now; its key-values are kept as text.
    pub(crate) fn from_record(record: &Record<'_>) -> Self {
        struct Collect(Vec<(Box<str>, Box<str>)>);
        impl<'kvs> VisitSource<'kvs> for Collect {
            fn visit_pair(&mut self, key: Key<'kvs>, value: Value<'kvs>) -> Result<(), kv::Error> {
                self.0.push((key.as_str().into(), value.to_string().into()));
                Ok(())
            }
        }
        let mut key_values = Collect(Vec::new());
        // `Collect` never fails; a source that does loses only its later pairs.
        let _ = record.key_values().visit(&mut key_values);
        Self {
            logged_at: SystemTime::now(),
            kind: Kind::Log(Box::new(LogEntry {
                level: record.level(),
                target: record.target().into(),
                module_path: record.module_path().map(Into::into),
                file: record.file().map(Into::into),
                line: record.line(),
                message: record.args().to_string().into(),
                key_values: key_values.0.into_boxed_slice(),
            })),
        }
    }

    /// A line already formatted, logged now, that `write` writes out.
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    pub(crate) fn formatted(bytes: Vec<u8>, write: WriteLine) -> Self {
        Self {
            logged_at: SystemTime::now(),
            kind: Kind::Formatted { bytes, write },
        }
    }

    /// The bytes it counts against the buffer's bound: its text and a fixed overhead.
    fn size(&self) -> usize {
        let text = match &self.kind {
            Kind::Log(entry) => {
                entry.target.len()
                    + entry.module_path.as_deref().map_or(0, str::len)
                    + entry.file.as_deref().map_or(0, str::len)
                    + entry.message.len()
                    + entry
                        .key_values
                        .iter()
                        .map(|(key, value)| key.len() + value.len())
                        .sum::<usize>()
                    + size_of::<LogEntry>()
            }
            Kind::Formatted { bytes, .. } => bytes.len(),
        };
        size_of::<Self>() + text
    }

    /// Writes it out, `log` records into `sink`, with the time it was logged as the
    /// record's time.
    pub(crate) fn write_out(&self, sink: &dyn Log) {
        with_record_time(self.logged_at, || match &self.kind {
            Kind::Log(entry) => {
                let key_values: Vec<(&str, &str)> = entry
                    .key_values
                    .iter()
                    .map(|(key, value)| (&**key, &**value))
                    .collect();
                sink.log(
                    &Record::builder()
                        .level(entry.level)
                        .target(&entry.target)
                        .module_path(entry.module_path.as_deref())
                        .file(entry.file.as_deref())
                        .line(entry.line)
                        .key_values(&key_values)
                        .args(format_args!("{}", entry.message))
                        .build(),
                );
            }
            Kind::Formatted { bytes, write } => write(bytes),
        });
    }
}

/// One request's buffer.
pub(crate) struct RequestBuffer {
    settings: Arc<BufferSettings>,
    state: Mutex<State>,
    /// The subscriber current when the request began: the notice of a flush of
    /// formatted lines is its event.
    #[cfg(feature = "tracing")]
    dispatch: tracing_core::Dispatch,
}

#[derive(Default)]
struct State {
    entries: VecDeque<Entry>,
    /// The bytes `entries` count.
    bytes: usize,
    /// How many records went to make room, and when the last of them was logged.
    dropped: usize,
    last_dropped_at: Option<SystemTime>,
    /// Written out: the request has failed, and its records are written from now on.
    flushed: bool,
    /// Some record was a formatted line: the notice of a flush is a `tracing` event.
    #[cfg(feature = "tracing")]
    formatted: bool,
}

impl RequestBuffer {
    pub(crate) fn new(settings: Arc<BufferSettings>) -> Self {
        Self {
            settings,
            state: Mutex::default(),
            #[cfg(feature = "tracing")]
            dispatch: super::subscriber::current_dispatch(),
        }
    }

    /// Whether the buffer keeps records with `metadata` (its level directives).
    pub(crate) fn keeps(&self, metadata: &Metadata<'_>) -> bool {
        self.settings.filter.enabled(metadata)
    }

    /// Keeps `entry`, making room by dropping the oldest; gives it back once the buffer
    /// has been written out, for the caller to write it now.
    pub(crate) fn push(&self, entry: Entry) -> Result<(), Entry> {
        let size = entry.size();
        let mut state = self.lock();
        if state.flushed {
            return Err(entry);
        }
        #[cfg(feature = "tracing")]
        if matches!(entry.kind, Kind::Formatted { .. }) {
            state.formatted = true;
        }
        let settings = &*self.settings;
        if size > settings.max_bytes {
            // Alone past the bound: it goes at once.
            state.note_dropped(entry.logged_at);
            return Ok(());
        }
        while state.entries.len() >= settings.max_records || state.bytes + size > settings.max_bytes
        {
            let Some(oldest) = state.entries.pop_front() else {
                break;
            };
            state.bytes -= oldest.size();
            state.note_dropped(oldest.logged_at);
        }
        state.bytes += size;
        state.entries.push_back(entry);
        Ok(())
    }

    /// Whether the buffer has been written out (the request has failed).
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    pub(crate) fn is_flushed(&self) -> bool {
        self.lock().flushed
    }

    /// Writes out what it holds, once: a line saying how many records were dropped, if
    /// any, then the records in the order they were logged, each with its own time. From
    /// then on [`push`](Self::push) gives records back, to be written at once.
    ///
    /// The line about dropped records is a record for `sink`, or, when the records were
    /// formatted lines, an event for the request's `tracing` subscriber.
    pub(crate) fn flush(&self, sink: &dyn Log) {
        let (entries, dropped, last_dropped_at, formatted) = {
            let mut state = self.lock();
            if state.flushed {
                return;
            }
            let state = std::mem::replace(
                &mut *state,
                State {
                    flushed: true,
                    ..State::default()
                },
            );
            #[cfg(feature = "tracing")]
            let formatted = state.formatted;
            #[cfg(not(feature = "tracing"))]
            let formatted = false;
            (
                state.entries,
                state.dropped,
                state.last_dropped_at,
                formatted,
            )
        };
        // Written outside the lock: a logger that logs while writing comes back here.
        if let Some(at) = last_dropped_at {
            let notice = Dropped {
                dropped,
                settings: &self.settings,
            };
            #[cfg(feature = "tracing")]
            if formatted {
                super::subscriber::write_notice(&self.dispatch, format_args!("{notice}"));
            }
            if !formatted {
                with_record_time(at, || {
                    sink.log(
                        &Record::builder()
                            .level(Level::Info)
                            .target(LOG_TARGET)
                            .args(format_args!("{notice}"))
                            .build(),
                    );
                });
            }
        }
        for entry in &entries {
            entry.write_out(sink);
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The line a flush starts with when records were dropped.
struct Dropped<'a> {
    dropped: usize,
    settings: &'a BufferSettings,
}

impl std::fmt::Display for Dropped<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} earlier records of this request were dropped from its log buffer, which keeps at most {} records and {} bytes",
            self.dropped, self.settings.max_records, self.settings.max_bytes
        )
    }
}

impl State {
    fn note_dropped(&mut self, logged_at: SystemTime) {
        self.dropped += 1;
        self.last_dropped_at = Some(logged_at);
    }
}

impl std::fmt::Debug for RequestBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.lock();
        f.debug_struct("RequestBuffer")
            .field("records", &state.entries.len())
            .field("bytes", &state.bytes)
            .field("dropped", &state.dropped)
            .field("flushed", &state.flushed)
            .finish()
    }
}
