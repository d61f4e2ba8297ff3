//! Carrying the correlation ID beyond one process: onto outgoing HTTP calls and into
//! background jobs.
//!
//! Each integration is thin; the header work is
//! [`CorrelationConfig::inject_current`](crate::CorrelationConfig::inject_current) and
//! the job context is [`JobCarrier`](crate::JobCarrier).
//!
//! | feature | what | for |
//! |---|---|---|
//! | `reqwest` | [`PropagateCorrelationMiddleware`] | `reqwest-middleware` clients |
//! | `tower` | [`PropagateCorrelationLayer`] | any tower client of `http::Request` (hyper-util's `Client`, tonic channels) |
//! | `apalis` | [`JobContextLayer`], [`correlated_task`] | apalis workers and producers, any storage (SQLite, Postgres, Redis, in-memory) |
//!
//! The outgoing header is the configuration's
//! [`response_header_name`](crate::CorrelationConfig::response_header_name) (default
//! `x-request-id`): the name this service echoes is the name its peers read. Calls made
//! outside a request (and outside a job) carry no header, so the receiving service
//! generates an ID of its own.

#[cfg(feature = "apalis")]
mod apalis;
#[cfg(feature = "reqwest")]
mod reqwest;
#[cfg(feature = "tower")]
mod tower;

#[cfg(feature = "apalis")]
#[cfg_attr(docsrs, doc(cfg(feature = "apalis")))]
pub use self::apalis::{
    JobContextLayer, JobContextService, METADATA_CORRELATION_ID, METADATA_JOB_ID,
    METADATA_PARENT_JOB_ID, correlated_task,
};
#[cfg(feature = "reqwest")]
#[cfg_attr(docsrs, doc(cfg(feature = "reqwest")))]
pub use self::reqwest::PropagateCorrelationMiddleware;
#[cfg(feature = "tower")]
#[cfg_attr(docsrs, doc(cfg(feature = "tower")))]
pub use self::tower::{PropagateCorrelation, PropagateCorrelationLayer};
