//! The ready-made [`env_logger`] format that prints `[<id>]` on every line.

use std::borrow::Cow;
use std::io::{self, Write};

use env_logger::TimestampPrecision;
use env_logger::fmt::style::Style;

use super::{Layout, write_record};
use crate::display::DEFAULT_MISSING;

/// Formats a record as `2026-12-05T13:05:39Z INFO  [<id>] target: message`, with `[-]`
/// outside a request, on exactly one line: control characters and bidirectional overrides
/// in the target and the message are escaped (see [`Escaped`](crate::Escaped)).
///
/// The timestamp is UTC RFC 3339 to the second and the level is coloured on a terminal,
/// as in env_logger's default format; [`LogFormat`] changes the precision or leaves the
/// timestamp out. Pass it to [`env_logger::Builder::format`]:
///
/// ```
/// env_logger::Builder::new()
///     .format(correlation_core::format)
///     .parse_filters("info")
///     .try_init()
///     .ok();
/// log::info!("started"); // 2026-12-05T13:05:39Z INFO  [-] rust_out: started
/// ```
pub fn format(buf: &mut env_logger::fmt::Formatter, record: &log::Record<'_>) -> io::Result<()> {
    let layout = Layout {
        level_style: buf.default_level_style(record.level()),
        ..Layout::DEFAULT
    };
    write_record(buf, record, layout)
}

/// The format of [`format`](fn@format) with options: another timestamp precision or none,
/// a truncated ID, another default text, the job IDs, and (for text no client controls)
/// no escaping.
///
/// ```
/// use correlation_core::LogFormat;
/// use env_logger::TimestampPrecision;
///
/// let format = LogFormat::new()
///     .timestamp(Some(TimestampPrecision::Millis))
///     .id_length(8)
///     .missing("no-request");
/// env_logger::Builder::new()
///     .format(move |buf, record| format.format(buf, record))
///     .try_init()
///     .ok();
/// log::info!("started"); // 2026-12-05T13:05:39.123Z INFO  [no-request] rust_out: started
/// ```
#[derive(Debug, Clone)]
pub struct LogFormat {
    timestamp: Option<TimestampPrecision>,
    id_length: Option<usize>,
    job_ids: bool,
    hop_id: bool,
    job_id_length: Option<usize>,
    missing: Cow<'static, str>,
    escape: bool,
}

impl Default for LogFormat {
    fn default() -> Self {
        Self::new()
    }
}

impl LogFormat {
    /// The default format: the time to the second, whole ID, `-` when there is none,
    /// control characters escaped.
    pub fn new() -> Self {
        Self {
            timestamp: Some(TimestampPrecision::Seconds),
            id_length: None,
            job_ids: false,
            hop_id: false,
            job_id_length: None,
            missing: Cow::Borrowed(DEFAULT_MISSING),
            escape: true,
        }
    }

    /// Prints the time with the fractional digits of `precision`
    /// (`2026-12-05T13:05:39.123Z` with [`Millis`](TimestampPrecision::Millis)), or, with
    /// `None`, no time at all, as env_logger's `Builder::format_timestamp` does.
    ///
    /// A line written out of a request's log buffer shows when it was logged, not when
    /// it was written.
    ///
    /// ```
    /// use correlation_core::LogFormat;
    /// use env_logger::TimestampPrecision;
    ///
    /// let record = log::Record::builder()
    ///     .level(log::Level::Info)
    ///     .target("app")
    ///     .args(format_args!("started"))
    ///     .build();
    /// let mut line = Vec::new();
    /// LogFormat::new()
    ///     .timestamp(Some(TimestampPrecision::Micros))
    ///     .write(&mut line, &record)?;
    /// // 2026-12-05T13:05:39.123456Z INFO  [-] app: started
    /// let line = String::from_utf8(line)?;
    /// let (time, rest) = line.split_once(' ').unwrap();
    /// assert_eq!((time.len(), &time[19..20], &time[26..]), (27, ".", "Z"));
    /// assert_eq!(rest, "INFO  [-] app: started\n");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn timestamp(mut self, precision: Option<TimestampPrecision>) -> Self {
        self.timestamp = precision;
        self
    }

    /// Leaves the time out, for collectors that stamp each line themselves (journald,
    /// Docker and Kubernetes log drivers, syslog): `INFO  [<id>] target: message`. The
    /// same as [`timestamp(None)`](Self::timestamp).
    #[must_use]
    pub fn without_timestamp(self) -> Self {
        self.timestamp(None)
    }

    /// Shows only the first `length` characters of the ID, like asgi-correlation-id's
    /// `uuid_length`. Display only: headers and the context keep the whole ID.
    #[must_use]
    pub fn id_length(mut self, length: usize) -> Self {
        self.id_length = Some(length);
        self
    }

    /// Shows `missing` instead of `-` for every absent ID (correlation, parent or
    /// current job).
    #[must_use]
    pub fn missing(mut self, missing: impl Into<Cow<'static, str>>) -> Self {
        self.missing = missing.into();
        self
    }

    /// Adds the job IDs after the correlation ID: `[<id>] [<parent>-<current>]`, with
    /// the default shown for each absent one (`[---]` outside a job).
    ///
    /// ```
    /// use correlation_core::{JobCarrier, LogFormat};
    ///
    /// let record = log::Record::builder()
    ///     .level(log::Level::Info)
    ///     .target("worker")
    ///     .args(format_args!("sent"))
    ///     .build();
    /// let format = LogFormat::new()
    ///     .without_timestamp()
    ///     .with_job_ids()
    ///     .id_length(6)
    ///     .job_id_length(4);
    /// let mut line = Vec::new();
    /// format.write(&mut line, &record)?;
    /// assert_eq!(line, b"INFO  [-] [---] worker: sent\n");
    ///
    /// let context = JobCarrier::default().into_context();
    /// let mut line = Vec::new();
    /// context.run(|| format.write(&mut line, &record))?;
    /// let id = &context.id().unwrap().as_str()[..6];
    /// let job = &context.job_id().unwrap().as_str()[..4];
    /// assert_eq!(String::from_utf8(line)?, format!("INFO  [{id}] [--{job}] worker: sent\n"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn with_job_ids(mut self) -> Self {
        self.job_ids = true;
        self
    }

    /// Adds the request's hop ID after the IDs, like a field, when it has one:
    /// `[<id>] hop_id=<hop> tenant=acme target: message`. Lines without a hop ID (hop
    /// IDs off, outside a request, in a job) are written as before. The hop ID is cut to
    /// [`id_length`](Self::id_length) too. See
    /// [`hop_id_header`](crate::CorrelationConfigBuilder::hop_id_header).
    ///
    /// ```
    /// use correlation_core::{CorrelationConfig, LogFormat, adapter};
    /// use correlation_core::http::HeaderMap;
    ///
    /// let record = log::Record::builder()
    ///     .level(log::Level::Info)
    ///     .target("app")
    ///     .args(format_args!("paid"))
    ///     .build();
    /// let format = LogFormat::new().without_timestamp().with_hop_id();
    /// let config = CorrelationConfig::builder().hop_id_header("X-Hop-ID").build()?;
    /// let (decision, _) = adapter::decide_request(&config, &HeaderMap::new(), || None)?;
    /// let context = adapter::request_context(&config, decision);
    /// let mut line = Vec::new();
    /// context.run(|| format.write(&mut line, &record))?;
    /// let (id, hop) = (context.id().unwrap(), context.hop_id().unwrap());
    /// assert_eq!(String::from_utf8(line)?, format!("INFO  [{id}] hop_id={hop} app: paid\n"));
    ///
    /// let mut line = Vec::new();
    /// format.write(&mut line, &record)?;
    /// assert_eq!(line, b"INFO  [-] app: paid\n");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn with_hop_id(mut self) -> Self {
        self.hop_id = true;
        self
    }

    /// Shows only the first `length` characters of each job ID (display only). Used
    /// with [`with_job_ids`](Self::with_job_ids).
    #[must_use]
    pub fn job_id_length(mut self, length: usize) -> Self {
        self.job_id_length = Some(length);
        self
    }

    /// Writes the target and the message as they are, line breaks and control characters
    /// included, for applications that log multi-line text on purpose.
    ///
    /// By default they are escaped, so that one record is one line: a message that
    /// carries text from a client (a query string, a WebSocket message, a user name)
    /// could otherwise forge whole lines under another request's ID, or send escape
    /// sequences to the terminal. Use this only when no client-controlled text is logged.
    ///
    /// ```
    /// use correlation_core::LogFormat;
    ///
    /// let record = log::Record::builder()
    ///     .level(log::Level::Info)
    ///     .target("report")
    ///     .args(format_args!("totals:\n  a: 1"))
    ///     .build();
    /// let format = LogFormat::new().without_timestamp();
    /// let mut line = Vec::new();
    /// format.write(&mut line, &record)?;
    /// assert_eq!(line, b"INFO  [-] report: totals:\\n  a: 1\n");
    ///
    /// let mut lines = Vec::new();
    /// format.unescaped().write(&mut lines, &record)?;
    /// assert_eq!(lines, b"INFO  [-] report: totals:\n  a: 1\n");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[must_use]
    pub fn unescaped(mut self) -> Self {
        self.escape = false;
        self
    }

    /// Formats one record; use it inside the closure given to `env_logger::Builder::format`.
    /// The level is coloured as in env_logger's default format when env_logger writes to
    /// a terminal, and plain otherwise.
    pub fn format(
        &self,
        buf: &mut env_logger::fmt::Formatter,
        record: &log::Record<'_>,
    ) -> io::Result<()> {
        let level_style = buf.default_level_style(record.level());
        write_record(buf, record, self.layout(level_style))
    }

    /// Formats one record into any writer, with the same layout as [`format`](Self::format),
    /// always plain.
    pub fn write(&self, out: &mut impl Write, record: &log::Record<'_>) -> io::Result<()> {
        write_record(out, record, self.layout(Style::new()))
    }

    fn layout(&self, level_style: Style) -> Layout<'_> {
        Layout {
            timestamp: self.timestamp,
            level_style,
            id_length: self.id_length,
            job_ids: self.job_ids,
            hop_id: self.hop_id,
            job_id_length: self.job_id_length,
            missing: &self.missing,
            escape: self.escape,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::fmt::time::with_record_time;
    use crate::{CorrelationId, JobCarrier, sync_scope};

    /// 2026-12-05T13:05:39.123456789Z.
    fn logged_at() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::new(1_796_475_939, 123_456_789)
    }

    /// The line `format` writes, without its timestamp.
    fn render(format: &LogFormat, message: &str) -> String {
        render_timed(&format.clone().without_timestamp(), message)
    }

    #[test]
    fn fields_follow_the_ids_escaped_on_one_line() {
        let format = LogFormat::new();
        let line = sync_scope(CorrelationId::from_static("req-1"), || {
            assert!(crate::Fields::insert("tenant", "acme"));
            assert!(crate::Fields::insert(
                "user",
                "eve\r\nINFO  [req-2] forged\u{1b}[2J"
            ));
            render(&format, "paid")
        });
        assert_eq!(
            line,
            r#"INFO  [req-1] tenant=acme user="eve\r\nINFO  [req-2] forged\u{1b}[2J" my_app::views: paid"#
                .to_owned()
                + "\n"
        );
        let jobs = JobCarrier::default().into_context();
        let line = jobs.run(|| {
            assert!(crate::Fields::insert("tenant", "acme"));
            render(
                &format.clone().with_job_ids().id_length(3).job_id_length(2),
                "sent",
            )
        });
        let job = &jobs.job_id().unwrap().as_str()[..2];
        let id = &jobs.id().unwrap().as_str()[..3];
        assert_eq!(
            line,
            format!("INFO  [{id}] [--{job}] tenant=acme my_app::views: sent\n")
        );
        assert_eq!(
            render(&format, "outside"),
            "INFO  [-] my_app::views: outside\n"
        );
    }

    #[test]
    fn the_hop_id_follows_the_ids_like_a_field_when_asked_for() {
        let config = crate::CorrelationConfig::builder()
            .hop_id_header("X-Hop-ID")
            .generator(|| "hop-4f2a9c")
            .build()
            .unwrap();
        let (decision, _) =
            crate::adapter::decide_request(&config, &http::HeaderMap::new(), || None).unwrap();
        let context = crate::adapter::request_context(&config, decision);
        let format = LogFormat::new().with_hop_id();
        let line = context.run(|| {
            assert!(crate::Fields::insert("tenant", "acme"));
            render(&format, "paid")
        });
        assert_eq!(
            line,
            "INFO  [hop-4f2a9c] hop_id=hop-4f2a9c tenant=acme my_app::views: paid\n"
        );
        let short = context.run(|| render(&format.clone().id_length(3), "paid"));
        assert_eq!(
            short,
            "INFO  [hop] hop_id=hop tenant=acme my_app::views: paid\n"
        );
        // Without the option, and where there is no hop ID, lines are as before.
        let plain = context.run(|| render(&LogFormat::new(), "paid"));
        assert_eq!(
            plain,
            "INFO  [hop-4f2a9c] tenant=acme my_app::views: paid\n"
        );
        let job = JobCarrier::default().into_context();
        let id = job.id().unwrap().clone();
        assert_eq!(
            job.run(|| render(&format, "sent")),
            format!("INFO  [{id}] my_app::views: sent\n")
        );
    }

    /// The line `format` writes for a record logged at [`logged_at`].
    fn render_timed(format: &LogFormat, message: &str) -> String {
        let mut out = Vec::new();
        with_record_time(logged_at(), || {
            format.write(
                &mut out,
                &log::Record::builder()
                    .level(log::Level::Info)
                    .target("my_app::views")
                    .args(format_args!("{message}"))
                    .build(),
            )
        })
        .unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn prints_the_time_first_to_the_second_by_default() {
        assert_eq!(
            render_timed(&LogFormat::new(), "hi"),
            "2026-12-05T13:05:39Z INFO  [-] my_app::views: hi\n"
        );
        assert_eq!(
            render_timed(&LogFormat::default(), "hi"),
            render_timed(
                &LogFormat::new().timestamp(Some(TimestampPrecision::Seconds)),
                "hi"
            )
        );
    }

    #[test]
    fn prints_the_time_at_each_precision_or_not_at_all() {
        let at = |precision| render_timed(&LogFormat::new().timestamp(precision), "hi");
        assert_eq!(
            at(Some(TimestampPrecision::Millis)),
            "2026-12-05T13:05:39.123Z INFO  [-] my_app::views: hi\n"
        );
        assert_eq!(
            at(Some(TimestampPrecision::Micros)),
            "2026-12-05T13:05:39.123456Z INFO  [-] my_app::views: hi\n"
        );
        assert_eq!(
            at(Some(TimestampPrecision::Nanos)),
            "2026-12-05T13:05:39.123456789Z INFO  [-] my_app::views: hi\n"
        );
        assert_eq!(at(None), "INFO  [-] my_app::views: hi\n");
        assert_eq!(
            render_timed(&LogFormat::new().without_timestamp(), "hi"),
            "INFO  [-] my_app::views: hi\n"
        );
    }

    #[test]
    fn prints_the_current_time_outside_a_replay() {
        let before = jiff::Timestamp::now();
        let mut out = Vec::new();
        LogFormat::new()
            .timestamp(Some(TimestampPrecision::Nanos))
            .write(
                &mut out,
                &log::Record::builder()
                    .level(log::Level::Info)
                    .args(format_args!("now"))
                    .build(),
            )
            .unwrap();
        let after = jiff::Timestamp::now();
        let line = String::from_utf8(out).unwrap();
        let (time, rest) = line.split_once(' ').unwrap();
        let time: jiff::Timestamp = time.parse().unwrap();
        assert!(before <= time && time <= after, "{line}");
        assert_eq!(rest, "INFO  [-] : now\n");
    }

    /// A pipe for env_logger that keeps what it is given.
    #[derive(Clone, Default)]
    struct Pipe(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl Pipe {
        /// An env_logger logger writing every level through `format` into this pipe.
        fn logger(&self, format: LogFormat, style: env_logger::WriteStyle) -> env_logger::Logger {
            env_logger::Builder::new()
                .format(move |buf, record| format.format(buf, record))
                .filter_level(log::LevelFilter::Trace)
                .write_style(style)
                .target(env_logger::Target::Pipe(Box::new(self.clone())))
                .build()
        }

        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    impl Write for Pipe {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().write(bytes)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn log_to(logger: &dyn log::Log, level: log::Level, message: &str) {
        logger.log(
            &log::Record::builder()
                .level(level)
                .target("app")
                .args(format_args!("{message}"))
                .build(),
        );
    }

    #[test]
    fn colours_the_level_as_env_logger_does_when_it_writes_styles() {
        use env_logger::WriteStyle::{Always, Never};

        let written = |style, level| {
            let pipe = Pipe::default();
            log_to(
                &pipe.logger(LogFormat::new().without_timestamp(), style),
                level,
                "hi",
            );
            pipe.text()
        };
        assert_eq!(
            written(Always, log::Level::Info),
            "\u{1b}[32mINFO \u{1b}[0m [-] app: hi\n"
        );
        assert_eq!(
            written(Always, log::Level::Error),
            "\u{1b}[1m\u{1b}[31mERROR\u{1b}[0m [-] app: hi\n"
        );
        assert_eq!(written(Never, log::Level::Info), "INFO  [-] app: hi\n");
    }

    /// A request's buffered lines, written out when it fails, show when they were logged.
    #[cfg(feature = "request-log")]
    #[test]
    fn a_buffered_line_shows_when_it_was_logged() {
        use crate::request_log::{LogBuffer, RequestLogger};

        let config = crate::CorrelationConfig::builder()
            .log_buffer(LogBuffer::new())
            .build()
            .unwrap();
        let pipe = Pipe::default();
        let format = LogFormat::new().timestamp(Some(TimestampPrecision::Nanos));
        let logger = RequestLogger::new(pipe.logger(format, env_logger::WriteStyle::Never))
            .parse_filters("info");
        let request = crate::adapter::request_context(
            &config,
            CorrelationId::from_static("req-buffered").into(),
        );
        request.run(|| log_to(&logger, log::Level::Debug, "looked up the user"));
        assert_eq!(pipe.text(), "");
        let between = jiff::Timestamp::now();
        request.run(|| log_to(&logger, log::Level::Error, "the bank said no"));

        let text = pipe.text();
        let lines: Vec<(jiff::Timestamp, &str)> = text
            .lines()
            .map(|line| {
                let (time, rest) = line.split_once(' ').unwrap();
                (time.parse().unwrap(), rest)
            })
            .collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!(lines[0].1, "DEBUG [req-buffered] app: looked up the user");
        assert_eq!(lines[1].1, "ERROR [req-buffered] app: the bank said no");
        assert!(lines[0].0 <= between && between <= lines[1].0, "{text}");
    }

    #[test]
    fn prints_the_default_outside_a_request() {
        assert_eq!(
            render(&LogFormat::new(), "hi"),
            "INFO  [-] my_app::views: hi\n"
        );
        assert_eq!(
            render(&LogFormat::new().missing("none"), "hi"),
            "INFO  [none] my_app::views: hi\n"
        );
    }

    #[test]
    fn prints_the_current_id_truncated_on_request() {
        let id = CorrelationId::from_static("773fa6885e0a4e6c9a8ce3a6e09b8c8d");
        let whole = sync_scope(id.clone(), || render(&LogFormat::new(), "message"));
        assert_eq!(
            whole,
            "INFO  [773fa6885e0a4e6c9a8ce3a6e09b8c8d] my_app::views: message\n"
        );
        let short = sync_scope(id, || render(&LogFormat::new().id_length(9), "message"));
        assert_eq!(short, "INFO  [773fa6885] my_app::views: message\n");
    }

    #[test]
    fn prints_the_job_chain_with_the_default_wherever_an_id_is_absent() {
        let format = LogFormat::new().with_job_ids();
        assert_eq!(
            render(&format, "boot"),
            "INFO  [-] [---] my_app::views: boot\n"
        );
        let id = CorrelationId::from_static("773fa6885e0a4e6c9a8ce3a6e09b8c8d");
        // A request: its ID, no job IDs.
        let in_request = sync_scope(id.clone(), || render(&format, "view"));
        assert_eq!(
            in_request,
            "INFO  [773fa6885e0a4e6c9a8ce3a6e09b8c8d] [---] my_app::views: view\n"
        );
        // A job the request enqueued: no parent.
        let job_1 = JobCarrier::new(Some(id.clone()), None).into_context();
        let current_1 = job_1.job_id().unwrap().clone();
        assert_eq!(
            job_1.run(|| render(&format, "job 1")),
            format!(
                "INFO  [773fa6885e0a4e6c9a8ce3a6e09b8c8d] [--{current_1}] my_app::views: job 1\n"
            )
        );
        // A job that job 1 enqueued, shortened and with another default.
        let job_2 = job_1.run(JobCarrier::capture).into_context();
        let current_2 = job_2.job_id().unwrap().clone();
        let short = format.clone().id_length(5).job_id_length(6).missing("none");
        assert_eq!(
            job_2.run(|| render(&short, "job 2")),
            format!(
                "INFO  [773fa] [{}-{}] my_app::views: job 2\n",
                &current_1.as_str()[..6],
                &current_2.as_str()[..6]
            )
        );
        // After a job ends, nothing is left.
        assert_eq!(
            render(&short, "done"),
            "INFO  [none] [none-none] my_app::views: done\n"
        );
    }

    #[test]
    fn escapes_target_and_message_in_every_layout() {
        let record = |message: &str| {
            let mut out = Vec::new();
            let formats = [
                LogFormat::new(),
                LogFormat::new().with_job_ids(),
                LogFormat::new().without_timestamp(),
            ];
            for format in &formats {
                with_record_time(logged_at(), || {
                    format.write(
                        &mut out,
                        &log::Record::builder()
                            .level(log::Level::Warn)
                            .target("evil\ntarget")
                            .args(format_args!("{message}"))
                            .build(),
                    )
                })
                .unwrap();
            }
            String::from_utf8(out).unwrap()
        };
        assert_eq!(
            record("a\r\nERROR [x] b\u{7}\u{9b}\u{2067}"),
            "2026-12-05T13:05:39Z WARN  [-] evil\\ntarget: a\\r\\nERROR [x] b\\u{7}\\u{9b}\\u{2067}\n\
             2026-12-05T13:05:39Z WARN  [-] [---] evil\\ntarget: a\\r\\nERROR [x] b\\u{7}\\u{9b}\\u{2067}\n\
             WARN  [-] evil\\ntarget: a\\r\\nERROR [x] b\\u{7}\\u{9b}\\u{2067}\n"
        );
    }
}
