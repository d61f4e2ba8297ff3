//! The [`JobId`] of a background job run, and the pair of job IDs (its own and its
//! parent's) that the per-request context holds inside a job.

use std::fmt;
use std::str::FromStr;

use crate::id::{CorrelationId, InvalidCorrelationId};
use crate::strategy::UuidV4;

/// The ID of one job run: a random UUID v4 as 32 lowercase hex characters.
///
/// It obeys the same safety rules as a [`CorrelationId`] (1 to 128 bytes of visible
/// ASCII), so a value read back from a queue is always safe to log. Cloning is cheap (a
/// reference count); [`generate`](Self::generate) allocates once.
///
/// ```
/// use correlation_core::JobId;
///
/// let id = JobId::generate();
/// assert_eq!(id.len(), 32);
/// assert!(id.as_str().bytes().all(|b| b.is_ascii_hexdigit()));
/// assert_ne!(id, JobId::generate());
/// assert!("not a job id".parse::<JobId>().is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(transparent))]
pub struct JobId(CorrelationId);

impl JobId {
    /// A new random job ID (UUID v4, 32 lowercase hex characters).
    #[must_use]
    pub fn generate() -> Self {
        Self(UuidV4::new_id())
    }

    /// Copies `value` into a job ID after checking the safety rules.
    pub fn new(value: &str) -> Result<Self, InvalidCorrelationId> {
        CorrelationId::new(value).map(Self)
    }

    /// The ID as a string slice.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// Length of the ID in bytes (always at least 1).
    #[allow(clippy::len_without_is_empty)] // an ID is never empty
    pub fn len(&self) -> usize {
        self.0.len()
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("JobId").field(&self.as_str()).finish()
    }
}

impl AsRef<str> for JobId {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq<str> for JobId {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for JobId {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl FromStr for JobId {
    type Err = InvalidCorrelationId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

/// The job IDs of a running job: its own and its parent's.
#[derive(Clone, Debug)]
pub(crate) struct JobIds {
    pub(crate) current: JobId,
    pub(crate) parent: Option<JobId>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_ids_obey_the_safety_rules() {
        assert!(JobId::new("").is_err());
        assert!(JobId::new("has space").is_err());
        assert_eq!(JobId::new("job-1").unwrap(), "job-1");
        assert_eq!(format!("{:>7}", JobId::new("ab").unwrap()), "     ab");
    }
}
