//! The ready-made [`env_logger`] format that prints `[<id>]` on every line.

use std::borrow::Cow;
use std::io::{self, Write};

use super::{Layout, write_record};
use crate::display::DEFAULT_MISSING;

/// Formats a record as `INFO  [<id>] target: message`, with `[-]` outside a request, on
/// exactly one line: control characters and bidirectional overrides in the target and the
/// message are escaped (see [`Escaped`](crate::Escaped)).
///
/// Pass it to [`env_logger::Builder::format`]:
///
/// ```
/// env_logger::Builder::new()
///     .format(correlation_core::format)
///     .parse_filters("info")
///     .try_init()
///     .ok();
/// log::info!("started"); // INFO  [-] rust_out: started
/// ```
pub fn format(buf: &mut env_logger::fmt::Formatter, record: &log::Record<'_>) -> io::Result<()> {
    write_record(buf, record, Layout::DEFAULT)
}

/// The format of [`format`](fn@format) with options: a truncated ID, another default text, the
/// job IDs, and (for text no client controls) no escaping.
///
/// ```
/// use correlation_core::LogFormat;
///
/// let format = LogFormat::new().id_length(8).missing("no-request");
/// env_logger::Builder::new()
///     .format(move |buf, record| format.format(buf, record))
///     .try_init()
///     .ok();
/// ```
#[derive(Debug, Clone)]
pub struct LogFormat {
    id_length: Option<usize>,
    job_ids: bool,
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
    /// The default format: whole ID, `-` when there is none, control characters escaped.
    pub fn new() -> Self {
        Self {
            id_length: None,
            job_ids: false,
            job_id_length: None,
            missing: Cow::Borrowed(DEFAULT_MISSING),
            escape: true,
        }
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
    /// let format = LogFormat::new().with_job_ids().id_length(6).job_id_length(4);
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
    /// let mut line = Vec::new();
    /// LogFormat::new().write(&mut line, &record)?;
    /// assert_eq!(line, b"INFO  [-] report: totals:\\n  a: 1\n");
    ///
    /// let mut lines = Vec::new();
    /// LogFormat::new().unescaped().write(&mut lines, &record)?;
    /// assert_eq!(lines, b"INFO  [-] report: totals:\n  a: 1\n");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[must_use]
    pub fn unescaped(mut self) -> Self {
        self.escape = false;
        self
    }

    /// Formats one record; use it inside the closure given to `env_logger::Builder::format`.
    pub fn format(
        &self,
        buf: &mut env_logger::fmt::Formatter,
        record: &log::Record<'_>,
    ) -> io::Result<()> {
        write_record(buf, record, self.layout())
    }

    /// Formats one record into any writer, with the same layout as [`format`](Self::format).
    pub fn write(&self, out: &mut impl Write, record: &log::Record<'_>) -> io::Result<()> {
        write_record(out, record, self.layout())
    }

    fn layout(&self) -> Layout<'_> {
        Layout {
            id_length: self.id_length,
            job_ids: self.job_ids,
            job_id_length: self.job_id_length,
            missing: &self.missing,
            escape: self.escape,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CorrelationId, JobCarrier, sync_scope};

    fn render(format: &LogFormat, message: &str) -> String {
        let mut out = Vec::new();
        format
            .write(
                &mut out,
                &log::Record::builder()
                    .level(log::Level::Info)
                    .target("my_app::views")
                    .args(format_args!("{message}"))
                    .build(),
            )
            .unwrap();
        String::from_utf8(out).unwrap()
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
            let formats = [LogFormat::new(), LogFormat::new().with_job_ids()];
            for format in &formats {
                format
                    .write(
                        &mut out,
                        &log::Record::builder()
                            .level(log::Level::Warn)
                            .target("evil\ntarget")
                            .args(format_args!("{message}"))
                            .build(),
                    )
                    .unwrap();
            }
            String::from_utf8(out).unwrap()
        };
        assert_eq!(
            record("a\r\nERROR [x] b\u{7}\u{9b}\u{2067}"),
            "WARN  [-] evil\\ntarget: a\\r\\nERROR [x] b\\u{7}\\u{9b}\\u{2067}\n\
             WARN  [-] [---] evil\\ntarget: a\\r\\nERROR [x] b\\u{7}\\u{9b}\\u{2067}\n"
        );
    }
}
