//! The names every part of this crate family shares: the log target, the default header
//! name, the default Sentry tag and the hop ID's key.

/// The log target of every message this crate family emits.
pub const LOG_TARGET: &str = "correlation";

/// The default header name, as in asgi-correlation-id and tower-http.
pub(crate) const DEFAULT_HEADER_NAME: &str = "x-request-id";

/// The default Sentry tag name holding the correlation ID (asgi-correlation-id's name).
pub(crate) const DEFAULT_SENTRY_TAG: &str = "transaction_id";

/// The key a request's hop ID is shown under: in the log format, as a key-value, as a
/// `tracing` field and as a Sentry tag.
pub(crate) const HOP_ID_KEY: &str = "hop_id";
