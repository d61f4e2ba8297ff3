//! Test helpers for adapters and applications: capture every `log` record together with
//! the correlation ID (and job IDs) that were current when it was logged.
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

use std::sync::{Mutex, OnceLock, PoisonError};

use bytes::Bytes;
use http::HeaderValue;
use log::{Level, Log, Metadata, Record};

use crate::context::{with_current, with_current_job};
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
    /// The ID of the job the record was logged in, if any (see
    /// [`current_job_id`](crate::current_job_id)).
    pub job_id: Option<String>,
    /// The ID of the job that enqueued that job, if a job enqueued it (see
    /// [`parent_job_id`](crate::parent_job_id)).
    pub parent_job_id: Option<String>,
    /// The line as the crate's log format prints it: `INFO  [<id>] target: message`.
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

static CAPTURE: OnceLock<LogCapture> = OnceLock::new();

impl LogCapture {
    /// Installs the capture as the global logger (once per process; later calls return
    /// the same capture) and enables every level.
    ///
    /// # Panics
    ///
    /// Panics if another global logger was installed first.
    pub fn install() -> &'static LogCapture {
        let mut installed_now = false;
        let capture = CAPTURE.get_or_init(|| {
            installed_now = true;
            LogCapture::default()
        });
        if installed_now {
            log::set_logger(capture).expect("another global logger is already installed");
            log::set_max_level(log::LevelFilter::Trace);
        }
        capture
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
        let (job_id, parent_job_id) = with_current_job(|job| match job {
            Some(job) => (
                Some(job.current.as_str().to_owned()),
                job.parent.as_ref().map(|parent| parent.as_str().to_owned()),
            ),
            None => (None, None),
        });
        let mut rendered = Vec::new();
        // Writing into a Vec cannot fail.
        let _ = write_record(&mut rendered, record, Layout::DEFAULT);
        let mut rendered = String::from_utf8_lossy(&rendered).into_owned();
        rendered.truncate(rendered.trim_end_matches('\n').len());
        self.lock().push(CapturedRecord {
            level: record.level(),
            target: record.target().to_owned(),
            message,
            correlation_id,
            job_id,
            parent_job_id,
            rendered,
        });
    }

    fn flush(&self) {}
}

#[cfg(feature = "test-util-tracing")]
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

/// Bytes that are already reference-counted, like those hyper and actix slice out of
/// their read buffers: cloning them is a count increment and never allocates. (A `Bytes`
/// made from a `Vec` allocates its shared buffer on its first clone, once, which would
/// land in whichever middleware clones it first.)
pub fn shared_bytes(value: &str) -> Bytes {
    let bytes = Bytes::from(value.as_bytes().to_vec());
    drop(bytes.clone());
    bytes
}

/// A request header value over [`shared_bytes`], as hyper parses it.
///
/// # Panics
///
/// If `value` is not a valid header value: test input should be.
pub fn shared_header_value(value: &str) -> HeaderValue {
    HeaderValue::from_maybe_shared(shared_bytes(value)).expect("a valid header value")
}

/// What an adapter bench binary was asked to do, read from its environment: the two
/// modes beside criterion that the adapter benches share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BenchMode {
    /// `CORRELATION_PROFILE=<stack>/<case>` (case `with-id`, the default, or `no-id`):
    /// send `requests` requests (`CORRELATION_PROFILE_REQUESTS`, default 10 000) through
    /// one stack, for a profiler.
    Profile {
        /// The stack's name.
        stack: String,
        /// Whether requests carry a valid incoming ID.
        with_id: bool,
        /// How many requests to send.
        requests: u32,
    },
    /// `CORRELATION_INTERLEAVED_ROUNDS=<n>`: time all stacks in `n` interleaved rounds
    /// (see [`interleaved_rounds`]).
    Interleaved {
        /// The number of rounds.
        rounds: usize,
    },
    /// Neither variable set: run criterion.
    Criterion,
}

impl BenchMode {
    /// Reads the mode from the environment.
    ///
    /// # Panics
    ///
    /// If `CORRELATION_INTERLEAVED_ROUNDS` is not a number: a bench run that cannot do
    /// what it was asked should stop, not fall back to another mode.
    pub fn from_env() -> Self {
        if let Ok(target) = std::env::var("CORRELATION_PROFILE") {
            let (stack, case) = target.split_once('/').unwrap_or((&target, "with-id"));
            let requests = std::env::var("CORRELATION_PROFILE_REQUESTS")
                .ok()
                .and_then(|n| n.parse().ok())
                .unwrap_or(10_000);
            return Self::Profile {
                stack: stack.to_owned(),
                with_id: case == "with-id",
                requests,
            };
        }
        match std::env::var("CORRELATION_INTERLEAVED_ROUNDS") {
            Ok(rounds) => Self::Interleaved {
                rounds: rounds.parse().expect("a number of rounds"),
            },
            Err(_) => Self::Criterion,
        }
    }
}

/// Times every `stack` × `case` pair in interleaved rounds and prints, per pair, the
/// fastest and the median round in nanoseconds per request.
///
/// `run_batch(stack, case)` serves one batch of requests through stack number `stack` for
/// case number `case` and returns how many it served. Round 0 only warms up. On a machine
/// shared with other work, the fastest of many short interleaved rounds is far steadier
/// than one long run per stack, since interference hits every stack alike.
pub fn interleaved_rounds(
    stacks: &[&str],
    cases: &[&str],
    rounds: usize,
    mut run_batch: impl FnMut(usize, usize) -> u32,
) {
    let mut samples = vec![Vec::with_capacity(rounds); stacks.len() * cases.len()];
    for round in 0..=rounds {
        for stack in 0..stacks.len() {
            for case in 0..cases.len() {
                let start = std::time::Instant::now();
                let served = run_batch(stack, case).max(1);
                let per_request = start.elapsed().as_nanos() as f64 / f64::from(served);
                if round > 0 {
                    samples[stack * cases.len() + case].push(per_request);
                }
            }
        }
    }
    println!("stack/case: fastest round, median round (ns per request)");
    for (stack, stack_name) in stacks.iter().enumerate() {
        for (case, case_name) in cases.iter().enumerate() {
            let mut times = samples[stack * cases.len() + case].clone();
            times.sort_by(f64::total_cmp);
            match (times.first(), times.get(times.len() / 2)) {
                (Some(fastest), Some(median)) => {
                    println!("{stack_name}/{case_name}: {fastest:.0}, {median:.0}");
                }
                _ => println!("{stack_name}/{case_name}: no rounds"),
            }
        }
    }
    print_paired_overheads(stacks, cases, &samples);
}

/// Prints, per case, each stack's overhead over the first stack and, for each stack
/// whose name starts with `correlation`, the ratio of its overhead to that of the stack
/// listed right after it (its peer), as medians of per-round values: pairing the stacks
/// of one round cancels the drift between rounds (a machine that changes speed), which
/// a ratio of separate medians keeps.
fn print_paired_overheads(stacks: &[&str], cases: &[&str], samples: &[Vec<f64>]) {
    if stacks.len() < 2 {
        return;
    }
    let median = |mut values: Vec<f64>| {
        values.sort_by(f64::total_cmp);
        values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
    };
    let at = |stack: usize, case: usize| &samples[stack * cases.len() + case];
    println!("paired per round (medians): overhead over {}", stacks[0]);
    for (case, case_name) in cases.iter().enumerate() {
        for (stack, stack_name) in stacks.iter().enumerate().skip(1) {
            let overheads = at(stack, case)
                .iter()
                .zip(at(0, case))
                .map(|(time, base)| time - base)
                .collect();
            println!("{stack_name}/{case_name}: {:.0} ns", median(overheads));
        }
        let pairs = stacks.iter().zip(stacks.iter().skip(1)).enumerate();
        for (ours, (ours_name, peer_name)) in pairs.skip(1) {
            if !ours_name.starts_with("correlation") {
                continue;
            }
            let ratios = at(ours, case)
                .iter()
                .zip(at(ours + 1, case))
                .zip(at(0, case))
                .map(|((ours, peer), base)| (ours - base) / (peer - base))
                .collect();
            println!("{ours_name}÷{peer_name}/{case_name}: {:.2}", median(ratios));
        }
    }
}
