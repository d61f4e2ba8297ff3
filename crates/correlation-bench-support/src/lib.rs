//! Support for the workspace's benchmarks and allocation tests; not published.
//!
//! - [`shared_bytes`] and [`shared_header_value`]: request header values over
//!   reference-counted bytes, as hyper and actix parse them, so a bench or an allocation
//!   count sees what a server sees.
//! - [`Stack`], [`time`], [`prepare`] and [`instructions`]: what the adapter benches share,
//!   each adapter's stacks timed by criterion and counted by gungraun.
//! - [`floor`]: the building blocks of the *floor* middleware each adapter bench writes
//!   in its own framework: the least work that gives every request a validated or new
//!   ID, scoped around the handler and the body, and echoed.
//!
//! ```
//! use correlation_bench_support::{floor, shared_header_value};
//!
//! let value = shared_header_value("3758c31e-1177-4540-ba33-0109c405579a");
//! assert!(floor::is_uuid_v4(value.as_bytes()));
//! assert!(floor::is_uuid_v4(&floor::new_id_bytes()));
//! ```

use bytes::Bytes;
use http::HeaderValue;

pub mod floor;
mod stack;

pub use stack::{CASES, INCOMING_ID, REQUESTS, STACKS, Stack, instructions, prepare, time};

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
