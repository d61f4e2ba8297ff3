//! The ready-made [`env_logger`] format that prints `[<id>]` on every line.

use std::borrow::Cow;
use std::io::{self, Write};

use crate::display::{DEFAULT_MISSING, write_record};

/// Formats a record as `INFO  [<id>] target: message`, with `[-]` outside a request.
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
    write_record(buf, record, None, DEFAULT_MISSING)
}

/// The format of [`format`] with options: a truncated ID and another default text.
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
    missing: Cow<'static, str>,
}

impl Default for LogFormat {
    fn default() -> Self {
        Self::new()
    }
}

impl LogFormat {
    /// The default format: whole ID, `-` when there is none.
    pub fn new() -> Self {
        Self {
            id_length: None,
            missing: Cow::Borrowed(DEFAULT_MISSING),
        }
    }

    /// Shows only the first `length` characters of the ID, like asgi-correlation-id's
    /// `uuid_length`. Display only: headers and the context keep the whole ID.
    #[must_use]
    pub fn id_length(mut self, length: usize) -> Self {
        self.id_length = Some(length);
        self
    }

    /// Shows `missing` instead of `-` when there is no ID.
    #[must_use]
    pub fn missing(mut self, missing: impl Into<Cow<'static, str>>) -> Self {
        self.missing = missing.into();
        self
    }

    /// Formats one record; use it inside the closure given to `env_logger::Builder::format`.
    pub fn format(
        &self,
        buf: &mut env_logger::fmt::Formatter,
        record: &log::Record<'_>,
    ) -> io::Result<()> {
        write_record(buf, record, self.id_length, &self.missing)
    }

    /// Formats one record into any writer, with the same layout as [`format`](Self::format).
    pub fn write(&self, out: &mut impl Write, record: &log::Record<'_>) -> io::Result<()> {
        write_record(out, record, self.id_length, &self.missing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CorrelationId, sync_scope};

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
}
