//! A panic hook that logs every panic, on one line, under the correlation ID of the
//! request or job it happened in.

use std::any::Any;
use std::panic::{self, PanicHookInfo};
use std::sync::Once;

use crate::fmt::Escaped;

/// The `log` target of the line [`install_panic_hook`] writes.
pub const PANIC_LOG_TARGET: &str = "panic";

/// Installs a panic hook that logs each panic at `ERROR` through [`log`], on one line,
/// under the correlation ID current where it panicked, then runs the hook that was
/// installed before (the standard one, which prints to stderr, or Sentry's).
///
/// A handler's panic happens inside the request's context, so the line carries the
/// request's ID, as do panics in work started with [`spawn`](crate::spawn),
/// [`spawn_blocking`](crate::spawn_blocking) and [`bind_current`](crate::bind_current),
/// and in jobs run inside [`JobCarrier::into_context`](crate::JobCarrier::into_context)
/// or [`CorrelationContext::run`](crate::CorrelationContext::run). The line reads
/// `panicked at <file>:<line>:<column>: <message>`, with the message
/// escaped (see [`Escaped`]) so that a multi-line or hostile message stays on one line;
/// its target is [`PANIC_LOG_TARGET`]. Outside any context it shows no ID (`[-]`).
///
/// Call it once at start-up, after installing the logger and any other panic hook
/// (Sentry's integration installs one when its client starts) so that they are chained.
/// Later calls do nothing, so the panic is never logged twice. The hook runs for every
/// panic, including those caught by a framework's panic-catching middleware; with
/// `panic = "abort"` it still logs before the process ends. (A logger that panics while
/// logging the panic makes Rust abort the process, as any panic inside a panic hook does.)
///
/// ```
/// use correlation_core::{CorrelationId, install_panic_hook, sync_scope};
/// use correlation_core::test_util::LogCapture;
///
/// let logs = LogCapture::install();
/// install_panic_hook();
/// let id = CorrelationId::from_static("773fa6885e0a4e6c9a8ce3a6e09b8c8d");
/// let caught = std::panic::catch_unwind(|| {
///     sync_scope(id, || panic!("no such user:\n{}", "bob"));
/// });
/// assert!(caught.is_err());
///
/// let lines = logs.records_for("773fa6885e0a4e6c9a8ce3a6e09b8c8d");
/// assert_eq!(lines.len(), 1);
/// assert_eq!(lines[0].level, log::Level::Error);
/// assert!(lines[0].message.ends_with(r": no such user:\nbob"));
/// ```
pub fn install_panic_hook() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            log_panic(info);
            previous(info);
        }));
    });
}

fn log_panic(info: &PanicHookInfo<'_>) {
    let message = payload_text(info.payload());
    match info.location() {
        Some(location) => log::error!(
            target: PANIC_LOG_TARGET,
            "{}",
            Escaped(format_args!("panicked at {location}: {message}"))
        ),
        None => log::error!(
            target: PANIC_LOG_TARGET,
            "{}",
            Escaped(format_args!("panicked: {message}"))
        ),
    }
}

/// The panic's message: `panic!` gives a `&str` or a `String`; `panic_any` anything.
fn payload_text(payload: &(dyn Any + Send)) -> &str {
    match payload.downcast_ref::<&str>() {
        Some(text) => text,
        None => payload
            .downcast_ref::<String>()
            .map_or("Box<dyn Any>", String::as_str),
    }
}
