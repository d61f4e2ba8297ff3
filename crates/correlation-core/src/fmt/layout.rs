//! The one line layout shared by the env_logger format and the test capture.

use std::fmt::{self, Write as _};
use std::io;

#[cfg(feature = "env-logger")]
use env_logger::{TimestampPrecision, fmt::style::Style};

use super::escape::{EscapingWriter, write_escaped};
use crate::constants::HOP_ID_KEY;
use crate::context::with_current_hop;
use crate::display::{CurrentId, CurrentJobIds, DEFAULT_MISSING};
use crate::fields::Fields;

/// How [`write_record`] lays out a line.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Layout<'a> {
    /// The record's time first, in UTC, at this precision (none when `None`).
    #[cfg(feature = "env-logger")]
    pub(crate) timestamp: Option<TimestampPrecision>,
    /// How the level is styled: plain, or env_logger's colours on a terminal.
    #[cfg(feature = "env-logger")]
    pub(crate) level_style: Style,
    /// Characters of the correlation ID shown (all when `None`).
    pub(crate) id_length: Option<usize>,
    /// Whether `[<parent>-<current>]` follows the correlation ID.
    pub(crate) job_ids: bool,
    /// Whether `hop_id=<hop>` follows the IDs, when the request has a hop ID.
    pub(crate) hop_id: bool,
    /// Characters of each job ID shown (all when `None`).
    pub(crate) job_id_length: Option<usize>,
    /// Shown for each absent ID.
    pub(crate) missing: &'a str,
    /// Whether the target and the message are escaped (see [`Escaped`](super::Escaped)).
    pub(crate) escape: bool,
}

impl Layout<'static> {
    /// `LEVEL [<id>] target: message`, whole ID, `-` when absent, escaped, plain, no time:
    /// the test capture's.
    pub(crate) const UNTIMED: Self = Self {
        #[cfg(feature = "env-logger")]
        timestamp: None,
        #[cfg(feature = "env-logger")]
        level_style: Style::new(),
        id_length: None,
        job_ids: false,
        hop_id: false,
        job_id_length: None,
        missing: DEFAULT_MISSING,
        escape: true,
    };

    /// `<time> LEVEL [<id>] target: message`, the time to the second: the format's.
    #[cfg(feature = "env-logger")]
    pub(crate) const DEFAULT: Self = Self {
        timestamp: Some(TimestampPrecision::Seconds),
        ..Self::UNTIMED
    };
}

/// Writes `record` as `<time> LEVEL [<id>] target: message` (or, with job IDs,
/// `<time> LEVEL [<id>] [<parent>-<current>] target: message`) plus a newline, the time
/// as [`record_time`](super::time::record_time) gives it, the request's hop ID when asked
/// for and there is one, and the request's [fields](Fields), escaped, before the target:
/// `[<id>] hop_id=<hop> tenant=acme target: message`.
///
/// The target and the message are escaped on the fly while they are written, so with
/// escaping on the record is exactly one line, and a message with nothing to escape costs
/// a scan and no allocation.
pub(crate) fn write_record(
    out: &mut impl io::Write,
    record: &log::Record<'_>,
    layout: Layout<'_>,
) -> io::Result<()> {
    let mut sink = IoSink { out, error: None };
    match write_line(&mut sink, record, layout) {
        Ok(()) => Ok(()),
        Err(fmt::Error) => Err(sink
            .error
            .unwrap_or_else(|| io::Error::other("a value in the log record failed to format"))),
    }
}

fn write_line(
    out: &mut impl fmt::Write,
    record: &log::Record<'_>,
    layout: Layout<'_>,
) -> fmt::Result {
    #[cfg(feature = "env-logger")]
    {
        if let Some(precision) = layout.timestamp {
            super::time::write_record_time(out, precision)?;
            out.write_char(' ')?;
        }
        let style = layout.level_style;
        write!(out, "{style}{:<5}{style:#}", record.level())?;
    }
    #[cfg(not(feature = "env-logger"))]
    write!(out, "{:<5}", record.level())?;
    let id = CurrentId::with_length(layout.id_length, layout.missing);
    write!(out, " [{id}] ")?;
    if layout.job_ids {
        let jobs = CurrentJobIds::with_length(layout.job_id_length, layout.missing);
        write!(out, "[{jobs}] ")?;
    }
    if layout.hop_id {
        with_current_hop(|hop| match hop {
            // IDs are ASCII, so any byte index is a character boundary.
            Some(hop) => match layout.id_length {
                Some(length) if length < hop.len() => {
                    write!(out, "{HOP_ID_KEY}={} ", &hop.as_str()[..length])
                }
                _ => write!(out, "{HOP_ID_KEY}={hop} "),
            },
            None => Ok(()),
        })?;
    }
    let fields = Fields::current();
    if !fields.is_empty() {
        write!(out, "{fields} ")?;
    }
    if layout.escape {
        write_escaped(out, record.target())?;
        out.write_str(": ")?;
        match record.args().as_str() {
            Some(message) => write_escaped(out, message)?,
            None => write!(EscapingWriter(&mut *out), "{}", record.args())?,
        }
    } else {
        write!(out, "{}: {}", record.target(), record.args())?;
    }
    out.write_char('\n')
}

/// Adapts an [`io::Write`] to [`fmt::Write`], keeping the I/O error that `fmt` cannot carry.
struct IoSink<'a, W> {
    out: &'a mut W,
    error: Option<io::Error>,
}

impl<W: io::Write> fmt::Write for IoSink<'_, W> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        self.out.write_all(text.as_bytes()).map_err(|error| {
            self.error = Some(error);
            fmt::Error
        })
    }
}
