//! Display helpers that print the current correlation ID in log lines.

use std::fmt;

use crate::context::with_current;

/// The text shown when no correlation ID is set, as in `INFO  [-] app: started`.
pub const DEFAULT_MISSING: &str = "-";

/// Displays the current correlation ID, or a default when there is none, for people who
/// write their own log format closure.
///
/// The ID is read when the value is formatted, not when it is created.
///
/// ```
/// use correlation_core::{CorrelationId, CurrentId, sync_scope};
///
/// assert_eq!(format!("[{}]", CurrentId::new()), "[-]");
/// let id = CorrelationId::from_static("773fa6885e0a4e6c9a8ce3a6e09b8c8d");
/// let line = sync_scope(id, || format!("[{}]", CurrentId::new().length(9)));
/// assert_eq!(line, "[773fa6885]");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct CurrentId<'a> {
    length: Option<usize>,
    missing: &'a str,
}

impl Default for CurrentId<'static> {
    fn default() -> Self {
        Self::new()
    }
}

impl CurrentId<'static> {
    /// Shows the whole ID, or `-` when there is none.
    pub const fn new() -> Self {
        Self {
            length: None,
            missing: DEFAULT_MISSING,
        }
    }
}

impl<'a> CurrentId<'a> {
    /// Shows only the first `length` characters (display only; the ID itself is whole).
    #[must_use]
    pub const fn length(mut self, length: usize) -> Self {
        self.length = Some(length);
        self
    }

    /// Shows `missing` when there is no ID.
    #[must_use]
    pub fn missing<'b>(self, missing: &'b str) -> CurrentId<'b> {
        CurrentId {
            length: self.length,
            missing,
        }
    }

    #[cfg(any(feature = "env-logger", feature = "test-util"))]
    pub(crate) fn with_length(length: Option<usize>, missing: &'a str) -> Self {
        Self { length, missing }
    }
}

impl fmt::Display for CurrentId<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        with_current(|id| match id {
            None => f.write_str(self.missing),
            Some(id) => {
                let shown = match self.length {
                    // IDs are ASCII, so any byte index is a character boundary.
                    Some(length) if length < id.len() => &id.as_str()[..length],
                    _ => id.as_str(),
                };
                f.write_str(shown)
            }
        })
    }
}

#[cfg(any(feature = "env-logger", feature = "test-util"))]
/// Writes `record` as `LEVEL [<id>] target: message` plus a newline: the one layout the
/// env_logger format and the test capture share.
pub(crate) fn write_record(
    out: &mut impl std::io::Write,
    record: &log::Record<'_>,
    id_length: Option<usize>,
    missing: &str,
) -> std::io::Result<()> {
    writeln!(
        out,
        "{:<5} [{}] {}: {}",
        record.level(),
        CurrentId::with_length(id_length, missing),
        record.target(),
        record.args()
    )
}
