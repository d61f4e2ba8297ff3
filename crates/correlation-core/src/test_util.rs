//! Test helpers only (feature `test-util`), for the tests of adapters and applications:
//! capture every `log` record together with the correlation ID (and job IDs) that were
//! current when it was logged. Not for production code: the capture is a global logger
//! that keeps every record in memory.
//!
//! ```
//! use correlation_core::{CorrelationId, sync_scope, test_util::LogCapture};
//!
//! let logs = LogCapture::install();
//! let id = CorrelationId::from_static("doc-test-id");
//! sync_scope(id, || log::info!("inside"));
//! let lines = logs.records_for("doc-test-id");
//! assert_eq!(lines.len(), 1);
//! assert_eq!(lines[0].message, "inside");
//! assert!(lines[0].rendered.contains("[doc-test-id]"));
//! ```

use std::sync::{Mutex, Once, PoisonError};

use log::{Level, Log, Metadata, Record};

use crate::context::{with_current, with_current_hop, with_current_job};
use crate::fmt::{Layout, write_record};

/// One captured log record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapturedRecord {
    /// The record's level.
    pub level: Level,
    /// The record's target.
    pub target: String,
    /// The formatted message.
    pub message: String,
    /// The correlation ID current when the record was logged.
    pub correlation_id: Option<String>,
    /// The hop ID current when the record was logged, with hop IDs on (see
    /// [`hop_id_header`](crate::CorrelationConfigBuilder::hop_id_header)).
    pub hop_id: Option<String>,
    /// The ID of the job the record was logged in, if any (see
    /// [`current_job_id`](crate::current_job_id)).
    pub job_id: Option<String>,
    /// The ID of the job that enqueued that job, if a job enqueued it (see
    /// [`parent_job_id`](crate::parent_job_id)).
    pub parent_job_id: Option<String>,
    /// The line as the crate's log format prints it, without the timestamp:
    /// `INFO  [<id>] target: message`, with `hop_id=<hop>` after the ID when there is one.
    pub rendered: String,
}

/// A global logger that keeps every record in memory.
///
/// Tests in one process share it, so look records up by correlation ID or by content
/// rather than by position.
#[derive(Debug, Default)]
pub struct LogCapture {
    records: Mutex<Vec<CapturedRecord>>,
}

static CAPTURE: LogCapture = LogCapture {
    records: Mutex::new(Vec::new()),
};
static INSTALL: Once = Once::new();

impl LogCapture {
    /// Installs the capture as the global logger (once per process; later calls return
    /// the same capture) and enables every level. Tests running in parallel may all call
    /// it: each call returns once the capture is the logger, so nothing logged after it
    /// is lost.
    ///
    /// # Panics
    ///
    /// Panics if another global logger was installed first.
    pub fn install() -> &'static LogCapture {
        // Every caller waits until the logger is in place: tests start in parallel, and
        // one that logged while another was still installing would lose its records.
        INSTALL.call_once(|| {
            log::set_logger(&CAPTURE).expect("another global logger is already installed");
            log::set_max_level(log::LevelFilter::Trace);
        });
        &CAPTURE
    }

    /// Every record so far.
    pub fn records(&self) -> Vec<CapturedRecord> {
        self.lock().clone()
    }

    /// The records logged inside the job run whose ID is `job_id`.
    pub fn records_for_job(&self, job_id: &str) -> Vec<CapturedRecord> {
        self.filtered(|record| record.job_id.as_deref() == Some(job_id))
    }

    /// The records logged under `id`.
    pub fn records_for(&self, id: &str) -> Vec<CapturedRecord> {
        self.filtered(|record| record.correlation_id.as_deref() == Some(id))
    }

    /// The records whose rendered line contains `needle`, under any ID or none.
    pub fn records_containing(&self, needle: &str) -> Vec<CapturedRecord> {
        self.filtered(|record| record.rendered.contains(needle))
    }

    /// The records matching `keep`.
    pub fn filtered(&self, keep: impl Fn(&CapturedRecord) -> bool) -> Vec<CapturedRecord> {
        self.lock().iter().filter(|r| keep(r)).cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<CapturedRecord>> {
        self.records.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Log for LogCapture {
    fn enabled(&self, _metadata: &Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &Record<'_>) {
        let message = record.args().to_string();
        let correlation_id = with_current(|id| id.map(|id| id.as_str().to_owned()));
        let hop_id = with_current_hop(|hop| hop.map(|hop| hop.as_str().to_owned()));
        let (job_id, parent_job_id) = with_current_job(|job| match job {
            Some(job) => (
                Some(job.current.as_str().to_owned()),
                job.parent.as_ref().map(|parent| parent.as_str().to_owned()),
            ),
            None => (None, None),
        });
        let mut rendered = Vec::new();
        // Writing into a Vec cannot fail.
        let layout = Layout {
            hop_id: true,
            ..Layout::UNTIMED
        };
        let _ = write_record(&mut rendered, record, layout);
        let mut rendered = String::from_utf8_lossy(&rendered).into_owned();
        rendered.truncate(rendered.trim_end_matches('\n').len());
        self.lock().push(CapturedRecord {
            level: record.level(),
            target: record.target().to_owned(),
            message,
            correlation_id,
            hop_id,
            job_id,
            parent_job_id,
            rendered,
        });
    }

    fn flush(&self) {}
}

#[cfg(feature = "test-util-tracing")]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util-tracing")))]
pub use tracing_capture::{TracingCapture, TracingEvent};

#[cfg(feature = "test-util-tracing")]
mod tracing_capture {
    use std::io::Write;
    use std::sync::{Arc, Mutex, OnceLock, PoisonError};

    use serde_json::Value;
    use tracing_subscriber::fmt::MakeWriter;

    /// One event of `tracing-subscriber`'s JSON output.
    #[derive(Debug, Clone)]
    pub struct TracingEvent {
        /// The event's message.
        pub message: String,
        /// The event's target.
        pub target: String,
        /// The `correlation_id` recorded by the innermost span that has one.
        pub correlation_id: Option<String>,
        /// The whole JSON line.
        pub json: Value,
    }

    /// Installs `tracing-subscriber`'s JSON formatter (span list on, INFO and above) as the
    /// global subscriber, writing into memory, and bridges `log` records with `tracing-log`,
    /// so tests can assert on the `correlation_id` every event carries.
    ///
    /// One per process: it takes both the global `tracing` subscriber and the global `log`
    /// logger, so it cannot share a test binary with [`LogCapture`](super::LogCapture).
    #[derive(Debug, Clone, Default)]
    pub struct TracingCapture {
        buffer: Arc<Mutex<Vec<u8>>>,
    }

    static CAPTURE: OnceLock<TracingCapture> = OnceLock::new();

    impl TracingCapture {
        /// Installs the capture (once per process; later calls return the same one).
        ///
        /// # Panics
        ///
        /// Panics if another global subscriber or logger was installed first.
        pub fn install() -> &'static TracingCapture {
            CAPTURE.get_or_init(|| {
                let capture = TracingCapture::default();
                tracing_log::LogTracer::init().expect("another global logger is installed");
                let subscriber = tracing_subscriber::fmt()
                    .json()
                    .with_span_list(true)
                    .with_max_level(tracing::Level::INFO)
                    .with_writer(capture.clone())
                    .finish();
                tracing::subscriber::set_global_default(subscriber)
                    .expect("another global subscriber is installed");
                capture
            })
        }

        /// Every event so far, parsed.
        pub fn events(&self) -> Vec<TracingEvent> {
            let bytes = self.lock().clone();
            String::from_utf8_lossy(&bytes)
                .lines()
                .filter_map(|line| serde_json::from_str::<Value>(line).ok())
                .map(|json| TracingEvent {
                    message: json["fields"]["message"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    target: json["target"].as_str().unwrap_or_default().to_owned(),
                    correlation_id: json["spans"].as_array().and_then(|spans| {
                        spans
                            .iter()
                            .rev()
                            .find_map(|span| span["correlation_id"].as_str().map(str::to_owned))
                    }),
                    json,
                })
                .collect()
        }

        /// The messages of the events recorded under `id`, in order.
        pub fn messages_for(&self, id: &str) -> Vec<String> {
            self.events()
                .into_iter()
                .filter(|event| event.correlation_id.as_deref() == Some(id))
                .map(|event| event.message)
                .collect()
        }

        /// The events whose message starts with `prefix`.
        pub fn events_starting_with(&self, prefix: &str) -> Vec<TracingEvent> {
            self.events()
                .into_iter()
                .filter(|event| event.message.starts_with(prefix))
                .collect()
        }

        /// Asserts that each of `expected` was recorded exactly once under `id`; the
        /// failure lists what was recorded under it.
        ///
        /// # Panics
        ///
        /// When one of the messages is missing or repeated.
        pub fn assert_each_once_under(&self, id: &str, expected: &[&str]) {
            let mine = self.messages_for(id);
            for expected in expected {
                let count = mine.iter().filter(|message| message == expected).count();
                assert_eq!(count, 1, "{expected:?} under {id}: {mine:?}");
            }
        }

        /// Asserts that exactly `count` events start with `prefix`, all recorded under
        /// `id`: what a streamed body logs.
        ///
        /// # Panics
        ///
        /// When the count differs or one of them carries another ID or none.
        pub fn assert_events_under(&self, prefix: &str, count: usize, id: &str) {
            let events = self.events_starting_with(prefix);
            assert_eq!(events.len(), count, "{prefix:?} events: {events:?}");
            for event in &events {
                assert_eq!(event.correlation_id.as_deref(), Some(id), "{event:?}");
            }
        }

        fn lock(&self) -> std::sync::MutexGuard<'_, Vec<u8>> {
            self.buffer.lock().unwrap_or_else(PoisonError::into_inner)
        }
    }

    impl Write for TracingCapture {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.lock().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for TracingCapture {
        type Writer = TracingCapture;

        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }
}
