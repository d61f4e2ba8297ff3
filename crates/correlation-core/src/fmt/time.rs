//! When a record happened: now, or, while a buffered record is written out later, the
//! moment it was logged.

use std::cell::Cell;
use std::time::SystemTime;

thread_local! {
    /// Set while a buffered record is replayed, so the format prints when it was logged.
    static REPLAYED_AT: Cell<Option<SystemTime>> = const { Cell::new(None) };
}

/// The time to print for the record being written on this thread.
pub(crate) fn record_time() -> SystemTime {
    REPLAYED_AT.get().unwrap_or_else(SystemTime::now)
}

/// Runs `f`, in which [`record_time`] is `logged_at`: for writing a buffered record out.
pub(crate) fn with_record_time<R>(logged_at: SystemTime, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<SystemTime>);
    impl Drop for Restore {
        fn drop(&mut self) {
            REPLAYED_AT.set(self.0);
        }
    }
    let _restore = Restore(REPLAYED_AT.replace(Some(logged_at)));
    f()
}
