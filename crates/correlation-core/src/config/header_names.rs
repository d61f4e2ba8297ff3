//! Header names as configured: checked once at build time, and interned so that
//! writing one on every request copies a pointer.

use std::sync::{Mutex, PoisonError};

use http::HeaderName;

use super::ConfigError;

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
}
