//! Header names as configured: checked once at build time, and interned so that
//! writing one on every request copies a pointer.

use std::sync::{Mutex, PoisonError};

use http::HeaderName;

use super::ConfigError;
use crate::constants::DEFAULT_HEADER_NAME;

/// Header names that must never carry a correlation ID: rewriting them would break
/// framing, routing, authentication or cookies.
const FORBIDDEN_HEADER_NAMES: &[&str] = &[
    "authorization",
    "connection",
    "content-length",
    "content-type",
    "cookie",
    "host",
    "proxy-authorization",
    "set-cookie",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

pub(super) fn parse_header_name(name: &str) -> Result<HeaderName, ConfigError> {
    let parsed = HeaderName::from_bytes(name.as_bytes()).map_err(|source| {
        ConfigError::InvalidHeaderName {
            name: name.to_owned(),
            source,
        }
    })?;
    if FORBIDDEN_HEADER_NAMES.contains(&parsed.as_str()) {
        return Err(ConfigError::ForbiddenHeaderName {
            name: name.to_owned(),
        });
    }
    Ok(interned(&parsed))
}

/// The same name over a `'static` string, which has no reference count: the clone for
/// every header write is then a plain copy, not a count that every core writes. Each
/// distinct name is kept once for the process: a handful of short strings.
fn interned(name: &HeaderName) -> HeaderName {
    static NAMES: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());
    let mut names = NAMES.lock().unwrap_or_else(PoisonError::into_inner);
    let text = match names.iter().find(|known| **known == name.as_str()) {
        Some(known) => known,
        None => {
            let kept: &'static str = Box::leak(name.as_str().into());
            names.push(kept);
            kept
        }
    };
    // A parsed name's text is a valid lowercase name, which `from_static` accepts.
    HeaderName::from_static(text)
}

/// The default name as a constant: each use builds it in place.
const DEFAULT_NAME: HeaderName = HeaderName::from_static(DEFAULT_HEADER_NAME);

/// A header name the middleware writes on every request, and a note of whether it is the
/// default one.
pub(super) struct WrittenName {
    name: HeaderName,
    is_default: bool,
}

impl WrittenName {
    pub(super) fn new(name: HeaderName) -> Self {
        Self {
            is_default: name == DEFAULT_NAME,
            name,
        }
    }

    pub(super) fn name(&self) -> &HeaderName {
        &self.name
    }

    /// The name to insert into a header map. The default one is made from a constant, in
    /// place: a clone calls through the name's `Bytes` vtable, and moving what it returned
    /// into the map's key stalls the CPU on the bytes just written (store forwarding), a
    /// cost the adapters' benches show in time against their floors.
    #[inline]
    pub(super) fn to_insert(&self) -> HeaderName {
        if self.is_default {
            DEFAULT_NAME
        } else {
            self.name.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_lowercased_and_kept_once() {
        let first = parse_header_name("X-Trace-Token").unwrap();
        let again = parse_header_name("x-trace-token").unwrap();
        assert_eq!(first, "x-trace-token");
        // Both are the one interned text.
        assert!(std::ptr::eq(first.as_str(), again.as_str()));

        assert!(matches!(
            parse_header_name("Cookie"),
            Err(ConfigError::ForbiddenHeaderName { name }) if name == "Cookie"
        ));
        assert!(matches!(
            parse_header_name("bad name"),
            Err(ConfigError::InvalidHeaderName { .. })
        ));
    }

    #[test]
    fn a_written_name_is_the_configured_one_default_or_not() {
        for configured in ["X-Request-ID", "x-request-id", "X-Correlation-ID"] {
            let written = WrittenName::new(parse_header_name(configured).unwrap());
            assert_eq!(
                written.to_insert(),
                configured.to_ascii_lowercase().as_str()
            );
            assert_eq!(written.to_insert(), *written.name());
            assert_eq!(
                written.is_default,
                configured.eq_ignore_ascii_case("x-request-id")
            );
        }
    }
}
