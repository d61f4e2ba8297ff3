//! Header names as configured: checked once, when the configuration is built.

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
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_and_lowercased() {
        let first = parse_header_name("X-Trace-Token").unwrap();
        let again = parse_header_name("x-trace-token").unwrap();
        assert_eq!(first, "x-trace-token");
        assert_eq!(first, again);

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
