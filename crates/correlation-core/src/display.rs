//! Display helpers that print the current correlation ID (and job IDs) in log lines.
//! The line layout built from them lives in [`crate::fmt`].

use std::fmt;

use crate::context::{with_current, with_current_hop, with_current_job};

/// The text shown when no correlation ID is set, as in `INFO  [-] app: started`.
pub(crate) const DEFAULT_MISSING: &str = "-";

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

    /// Displays the current job's parent and own IDs instead, as `<parent>-<current>`,
    /// with this one's length and default for each that is absent, for log formats that
    /// trace chains of jobs (asgi-correlation-id's
    /// `[%(celery_parent_id)s-%(celery_current_id)s]`).
    ///
    /// Outside a job, including after a job ends, it shows `---`; in a job a request
    /// enqueued, `--<current>`. The IDs are read when the value is formatted.
    ///
    /// ```
    /// use correlation_core::{CurrentId, JobCarrier, JobId};
    ///
    /// assert_eq!(format!("[{}]", CurrentId::new().job_ids()), "[---]");
    /// let parent = JobId::new("3f2a").unwrap();
    /// let context = JobCarrier::new(None, Some(parent)).into_context();
    /// let line = context.run(|| format!("[{}]", CurrentId::new().length(4).job_ids()));
    /// let current = &context.job_id().unwrap().as_str()[..4];
    /// assert_eq!(line, format!("[3f2a-{current}]"));
    /// ```
    #[must_use]
    pub fn job_ids(self) -> impl fmt::Display + Copy + 'a {
        CurrentJobIds::with_length(self.length, self.missing)
    }

    /// Displays the current request's hop ID instead: the ID this service made for the
    /// request beside its correlation ID, when the configuration has a
    /// [hop ID header](crate::CorrelationConfigBuilder::hop_id_header); with this one's
    /// length, and its default outside a request or with hop IDs off. Read when the value
    /// is formatted.
    ///
    /// ```
    /// use correlation_core::{CorrelationConfig, CurrentId, adapter};
    ///
    /// let config = CorrelationConfig::builder().hop_id_header("X-Hop-ID").build()?;
    /// let (decision, _) = adapter::decide_request(&config, &correlation_core::http::HeaderMap::new(), || None)?;
    /// let context = adapter::request_context(&config, decision);
    /// let line = context.run(|| format!("[{}] [{}]", CurrentId::new(), CurrentId::new().hop_id()));
    /// let (id, hop) = (context.id().unwrap(), context.hop_id().unwrap());
    /// assert_eq!(line, format!("[{id}] [{hop}]"));
    /// assert_eq!(format!("[{}]", CurrentId::new().hop_id()), "[-]");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn hop_id(self) -> impl fmt::Display + Copy + 'a {
        CurrentHopId {
            length: self.length,
            missing: self.missing,
        }
    }

    #[cfg(any(feature = "env-logger", feature = "test-util"))]
    pub(crate) fn with_length(length: Option<usize>, missing: &'a str) -> Self {
        Self { length, missing }
    }
}

impl fmt::Display for CurrentId<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        with_current(|id| write_shown(f, id.map(|id| id.as_str()), self.length, self.missing))
    }
}

/// The current request's hop ID: what [`CurrentId::hop_id`] displays.
#[derive(Debug, Clone, Copy)]
struct CurrentHopId<'a> {
    length: Option<usize>,
    missing: &'a str,
}

impl fmt::Display for CurrentHopId<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        with_current_hop(|hop| {
            write_shown(f, hop.map(|hop| hop.as_str()), self.length, self.missing)
        })
    }
}

/// The current job's parent and own IDs as `<parent>-<current>`: what
/// [`CurrentId::job_ids`] displays.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CurrentJobIds<'a> {
    length: Option<usize>,
    missing: &'a str,
}

impl<'a> CurrentJobIds<'a> {
    pub(crate) const fn with_length(length: Option<usize>, missing: &'a str) -> Self {
        Self { length, missing }
    }
}

impl fmt::Display for CurrentJobIds<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        with_current_job(|job| {
            let parent = job.and_then(|job| job.parent.as_ref());
            let current = job.map(|job| &job.current);
            write_shown(f, parent.map(|id| id.as_str()), self.length, self.missing)?;
            f.write_str("-")?;
            write_shown(f, current.map(|id| id.as_str()), self.length, self.missing)
        })
    }
}

/// Writes `id` cut to `length` characters, or `missing` when there is none.
fn write_shown(
    f: &mut fmt::Formatter<'_>,
    id: Option<&str>,
    length: Option<usize>,
    missing: &str,
) -> fmt::Result {
    match id {
        None => f.write_str(missing),
        // IDs are ASCII, so any byte index is a character boundary.
        Some(id) => match length {
            Some(length) if length < id.len() => f.write_str(&id[..length]),
            _ => f.write_str(id),
        },
    }
}
