//! Log formatting: the ready-made `env_logger` format, its line layout, and the escaping
//! that keeps every record on one line whatever text a client managed to put in it.

mod escape;
#[cfg(any(feature = "env-logger", feature = "test-util"))]
mod layout;
#[cfg(feature = "env-logger")]
mod log_format;
#[cfg(any(feature = "env-logger", feature = "request-log", test))]
pub(crate) mod time;

#[cfg(feature = "kv")]
pub(crate) use escape::EscapeDetector;
pub use escape::Escaped;
pub(crate) use escape::{needs_escaping, write_escaped};
#[cfg(any(feature = "env-logger", feature = "test-util"))]
pub(crate) use layout::{Layout, write_record};
#[cfg(feature = "env-logger")]
pub use log_format::{LogFormat, format};
