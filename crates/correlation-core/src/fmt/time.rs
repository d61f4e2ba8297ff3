//! When a record happened: now, or, while a buffered record is written out later, the
//! moment it was logged; and how the format prints it.

use std::cell::Cell;
use std::time::SystemTime;

thread_local! {
    /// Set while a buffered record is replayed, so the format prints when it was logged.
    static REPLAYED_AT: Cell<Option<SystemTime>> = const { Cell::new(None) };
}

/// The time to print for the record being written on this thread.
#[cfg(any(feature = "env-logger", test))]
pub(crate) fn record_time() -> SystemTime {
    REPLAYED_AT.get().unwrap_or_else(SystemTime::now)
}

/// Runs `f`, in which [`record_time`] is `logged_at`: for writing a buffered record out.
#[cfg(any(feature = "request-log", test))]
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

/// Writes [`record_time`] as RFC 3339 in UTC, `2026-12-05T13:05:39Z`, with the fractional
/// digits of `precision` (`.123`, `.123456`, `.123456789`), as env_logger's default
/// format does.
#[cfg(feature = "env-logger")]
pub(crate) fn write_record_time(
    out: &mut impl std::fmt::Write,
    precision: env_logger::TimestampPrecision,
) -> std::fmt::Result {
    use env_logger::TimestampPrecision::{Micros, Millis, Nanos, Seconds};
    use jiff::Timestamp;

    let time = record_time();
    // Only a clock set past the year 9999 (or before -9999) is outside jiff's range.
    let time = Timestamp::try_from(time).unwrap_or(if time < SystemTime::UNIX_EPOCH {
        Timestamp::MIN
    } else {
        Timestamp::MAX
    });
    match precision {
        Seconds => write!(out, "{time:.0}"),
        Millis => write!(out, "{time:.3}"),
        Micros => write!(out, "{time:.6}"),
        Nanos => write!(out, "{time:.9}"),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_replayed_time_holds_inside_the_closure_only_and_nests() {
        let logged_at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let earlier = SystemTime::UNIX_EPOCH + Duration::from_secs(10);
        let before = SystemTime::now();
        with_record_time(logged_at, || {
            assert_eq!(record_time(), logged_at);
            with_record_time(earlier, || assert_eq!(record_time(), earlier));
            assert_eq!(record_time(), logged_at);
        });
        assert!(record_time() >= before);
    }

    #[test]
    fn the_replayed_time_is_restored_after_a_panic() {
        let logged_at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let before = SystemTime::now();
        let panicked = std::panic::catch_unwind(|| with_record_time(logged_at, || panic!()));
        assert!(panicked.is_err());
        assert!(record_time() >= before);
    }

    #[cfg(feature = "env-logger")]
    #[test]
    fn writes_rfc_3339_in_utc_at_each_precision() {
        use env_logger::TimestampPrecision::{Micros, Millis, Nanos, Seconds};

        let at = SystemTime::UNIX_EPOCH + Duration::new(1_796_475_939, 123_456_789);
        let written = |precision| {
            let mut text = String::new();
            with_record_time(at, || write_record_time(&mut text, precision)).unwrap();
            text
        };
        assert_eq!(written(Seconds), "2026-12-05T13:05:39Z");
        assert_eq!(written(Millis), "2026-12-05T13:05:39.123Z");
        assert_eq!(written(Micros), "2026-12-05T13:05:39.123456Z");
        assert_eq!(written(Nanos), "2026-12-05T13:05:39.123456789Z");

        let whole_second = SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_475_939);
        let mut text = String::new();
        with_record_time(whole_second, || write_record_time(&mut text, Millis)).unwrap();
        assert_eq!(text, "2026-12-05T13:05:39.000Z");
    }
}
