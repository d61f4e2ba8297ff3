//! For authors of framework adapters: the steps of a correlation middleware, and the
//! functions for each. Applications do not need this module: they use an adapter
//! (`correlation-axum`, `correlation-actix`, `correlation-poem`) and the crate root.
//!
//! # How an adapter is built
//!
//! An adapter is a framework's middleware holding a [`CorrelationConfig`], and for every
//! request it does the following, in this order.
//!
//! 1. **Skip.** If [`CorrelationConfig::is_skipped`] says so for the request's path, call
//!    the inner service untouched: no ID, no header, no scope.
//! 2. **Decide and update the request.** On an `http` 1 [`HeaderMap`],
//!    [`decide_and_update`] does it all. On another header map, implement
//!    [`RequestHeaders`] for a wrapper of it and call [`decide_request`]: it returns the
//!    [`Decision`] and a [`RequestHeaderPlan`], which the adapter applies to its own map
//!    — write the final ID under the first incoming name, remove the others — with
//!    nothing but type conversion. The rules themselves live here only. When the plan
//!    says [`id_is_incoming`](RequestHeaderPlan::id_is_incoming), the value the adapter
//!    found is the ID: keep it, in the framework's type, for the echo; otherwise
//!    [`CorrelationId::to_bytes`](crate::CorrelationId::to_bytes) gives the bytes for a
//!    header value of the framework's type. Both take a
//!    function giving the connection's peer address, called only when the
//!    [`TrustPolicy`](crate::TrustPolicy) needs it (an adapter whose request cannot be
//!    borrowed while its headers are updated reads the address beforehand, when
//!    [`CorrelationConfig::needs_peer_address`] says so); when the framework has none to give,
//!    they return [`PeerAddressUnavailable`]: answer
//!    [`Rejection::PeerAddressUnavailable`] without calling the inner service, and log
//!    why with [`PeerAddressUnavailable::log`], naming the framework's fix. Never trust
//!    silently.
//! 3. **Reject.** If the outcome is [`Outcome::Rejected`](crate::Outcome::Rejected),
//!    answer [`Rejection::InvalidId`] without calling the inner service, with the echoed
//!    header.
//! 4. **Enter the scope around the inner service.** Make the request's context from its
//!    decision with [`request_context`] (the ID, plus the `tracing` span, the Sentry hub
//!    and the raised log level and log buffer with those features). Build the inner service's future inside [`CorrelationContext::run`], so
//!    that work done in the inner `call` itself sees the ID, then wrap the future with
//!    [`CorrelationContext::wrap`] so every poll runs inside the context.
//! 5. **Status and echo.** When the response head is ready, tell the context its status
//!    with [`response_status`] (a `5xx` writes out the request's log buffer, with the
//!    `request-log` feature), and [`echo_response_headers`] puts exactly one header with
//!    the final ID on it (replacing any the handler set), unless the configuration turns
//!    echo off. A framework that turns errors into responses later tells the error's
//!    status. With a [hop ID header](crate::CorrelationConfigBuilder::hop_id_header),
//!    pass the context's [`hop_id`](CorrelationContext::hop_id) (a rejection's
//!    [`Decision::hop_id`]) and the response carries it under that name too, by the same
//!    rules; an adapter over another header map writes it under
//!    [`hop_id_header_name`](CorrelationConfig::hop_id_header_name) where it writes the
//!    correlation header.
//! 6. **Carry the scope into the body.** Take the context back from the finished future
//!    with [`WithCorrelation::take_context`](crate::WithCorrelation::take_context) (a
//!    move, not a clone) and enter it for every poll of the response body, and for its
//!    drop, with [`CorrelationContext::run`]. The rule: a body is scoped unless it is already bytes in memory. A known size is not enough:
//!    a middleware inside ours may wrap bytes in a body that logs as it is read and
//!    keeps their exact size (tower-http's `TraceLayer` writes its end-of-stream line
//!    during the last poll). Skip the scope only where the framework hands the bytes
//!    over (actix-web's `MessageBody::try_into_bytes`); where it cannot say (any tower
//!    body, poem's boxed `Body`), scope every body with something left to read.
//!
//! The three adapters of this crate family follow these steps; read
//! `correlation-axum`'s `middleware.rs` for the shortest complete one.
//!
//! # The same thing in each framework
//!
//! The adapters use one name for one thing, and the framework's own word for how it is
//! registered:
//!
//! | | `correlation-axum` (tower) | `correlation-actix` | `correlation-poem` |
//! |---|---|---|---|
//! | what the application registers | `CorrelationLayer` (a `Layer`) | `Correlation` (a `Transform`) | `Correlation` (a `Middleware`) |
//! | made with | `new()`, `with_config(config)`, `From<CorrelationConfig>`, `Default`; `config()` | the same | the same |
//! | the service it wraps around the inner one | `CorrelationService<S>` | `CorrelationMiddleware<S>` | `CorrelationEndpoint<E>` |
//! | that service's accessors | `new(inner, config)`, `config()`, `get_ref()`, `get_mut()`, `into_inner()` | `config()`, `get_ref()`: actix builds it through the `Transform` and shares the inner service (`Rc`) with its futures | `new(inner, config)`, `config()`, `get_ref()`, `get_mut()`, `into_inner()` |
//! | its response future | `ResponseFuture<F>` | `ResponseFuture<F>` | none to name: `Endpoint::call` returns `impl Future` |
//! | the response body, scoped | `CorrelationBody<B>` | `CorrelationBody<B>` | none to name: poem's one `Body` type |
//! | the handler extractor | `CorrelationId` | `CorrelationId` | `CorrelationId` |
//! | its rejection (`500`, naming the missing middleware) | `MissingCorrelation` | `MissingCorrelation` | `MissingCorrelation` |
//! | where the peer address comes from, by default | axum's `ConnectInfo<SocketAddr>` | the connection (`ServiceRequest::peer_addr`) | the connection (`Request::remote_addr`) |
//! | saying where else it is | `peer_address(PeerAddress)`, a `fn(&Extensions)` | `peer_address(PeerAddress)`, a `fn(&ServiceRequest)` | `peer_address(PeerAddress)`, a `fn(&Request)` |
//! | only in this framework | | `CorrelatedError` (actix turns errors into responses after every middleware has returned); `CorrelationRootSpanBuilder` (feature `tracing-actix-web`) | |
//!
//! Each re-exports this crate as `correlation_core`, and [`CorrelationConfig`],
//! [`IdSource`](crate::IdSource), [`OnInvalid`](crate::OnInvalid),
//! [`Outcome`](crate::Outcome) and [`TrustPolicy`](crate::TrustPolicy) at its root.
//!
//! ```
//! use std::collections::HashMap;
//!
//! use correlation_core::adapter::{self, FirstValue, RequestHeaders};
//! use correlation_core::http::HeaderName;
//! use correlation_core::{CorrelationConfig, Outcome, current};
//!
//! // A framework's own header map, keyed by lowercase names.
//! struct FrameworkHeaders(HashMap<String, Vec<Vec<u8>>>);
//!
//! impl RequestHeaders for FrameworkHeaders {
//!     fn first_value(&self, name: &HeaderName) -> Option<FirstValue<'_>> {
//!         let values = self.0.get(name.as_str())?;
//!         Some(FirstValue::from_bytes(values.first()?, values.len() == 1))
//!     }
//! }
//!
//! let config = CorrelationConfig::builder()
//!     .incoming_header_names(["X-Correlation-ID", "X-Request-ID"])
//!     .build()?;
//!
//! // The second name, alone.
//! let headers = FrameworkHeaders(HashMap::from([(
//!     "x-request-id".to_owned(),
//!     vec![b"9e6454c4-21d5-4e4a-a66a-b28f15576414".to_vec()],
//! )]));
//! let peer = || None; // the trust policy is `Always`: never asked
//! let (decision, plan) = adapter::decide_request(&config, &headers, peer)?;
//! assert_eq!(decision.outcome, Outcome::Accepted);
//! // Write it under the first name, remove the others.
//! assert!(plan.write_id() && plan.remove_others());
//! // Found under another name than the first: the echo converts the ID.
//! assert!(!plan.id_is_incoming());
//!
//! let context = adapter::request_context(&config, decision);
//! let seen = context.run(current);
//! assert_eq!(seen.unwrap(), "9e6454c4-21d5-4e4a-a66a-b28f15576414");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::net::IpAddr;

use http::{HeaderMap, StatusCode};

use crate::config::CorrelationConfig;
pub use crate::config::{Decision, FirstValue, RequestHeaderPlan, RequestHeaders};
use crate::constants::LOG_TARGET;
use crate::context::CorrelationContext;
use crate::id::CorrelationId;
pub use crate::trust::PeerAddressUnavailable;

/// An answer the middleware gives without calling the inner service, the same in every
/// framework: each adapter builds its framework's response from these parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rejection {
    /// The incoming ID is invalid and the configuration says
    /// [`OnInvalid::Reject`](crate::OnInvalid::Reject): `400 Bad Request` with a short
    /// plain-text body. The response carries the echoed header too.
    InvalidId,
    /// The trust policy needs the connection's peer address and the framework gave none
    /// ([`PeerAddressUnavailable`]): `500 Internal Server Error` with no body.
    PeerAddressUnavailable,
}

impl Rejection {
    /// The response's status.
    #[must_use]
    pub const fn status(self) -> StatusCode {
        match self {
            Self::InvalidId => StatusCode::BAD_REQUEST,
            Self::PeerAddressUnavailable => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The response's content type, when it has a body.
    #[must_use]
    pub const fn content_type(self) -> Option<&'static str> {
        match self {
            Self::InvalidId => Some("text/plain; charset=utf-8"),
            Self::PeerAddressUnavailable => None,
        }
    }

    /// The response's body; empty when it has none.
    #[must_use]
    pub const fn body(self) -> &'static str {
        match self {
            Self::InvalidId => "invalid correlation id",
            Self::PeerAddressUnavailable => "",
        }
    }
}

/// Decides a request's ID from its headers (read through [`RequestHeaders`]), for a
/// connection from `peer` (asked only when the trust policy needs it), and plans the
/// request's headers.
///
/// An absent or empty value is generated silently; an invalid one is replaced (or
/// rejected) with one warning naming only the new ID, as in
/// [`CorrelationConfig::decide`]; an untrusted peer's is ignored with a `DEBUG` line.
///
/// # Errors
///
/// [`PeerAddressUnavailable`] when the trust policy lists peers and `peer` gives none.
pub fn decide_request<H: RequestHeaders>(
    config: &CorrelationConfig,
    headers: &H,
    peer: impl FnOnce() -> Option<IpAddr>,
) -> Result<(Decision, RequestHeaderPlan), PeerAddressUnavailable> {
    config.decide_request(headers, peer)
}

/// [`decide_request`] on an `http` 1 header map, with the plan applied: unless the
/// request is rejected, it leaves the request holding exactly one header with the final
/// ID.
///
/// ```
/// use correlation_core::adapter;
/// use correlation_core::http::{HeaderMap, HeaderValue};
/// use correlation_core::{CorrelationConfig, Outcome};
///
/// let config = CorrelationConfig::default();
/// let mut headers = HeaderMap::new();
/// headers.append("x-request-id", HeaderValue::from_static("not a uuid"));
/// let decision = adapter::decide_and_update(&config, &mut headers, || None)?;
/// assert_eq!(decision.outcome, Outcome::Replaced);
/// assert_eq!(headers["x-request-id"], decision.id.as_str());
/// # Ok::<(), adapter::PeerAddressUnavailable>(())
/// ```
///
/// # Errors
///
/// [`PeerAddressUnavailable`] when the trust policy lists peers and `peer` gives none.
pub fn decide_and_update(
    config: &CorrelationConfig,
    headers: &mut HeaderMap,
    peer: impl FnOnce() -> Option<IpAddr>,
) -> Result<Decision, PeerAddressUnavailable> {
    config.decide_and_update(headers, peer)
}

impl PeerAddressUnavailable {
    /// Logs, at `ERROR`, that a request was refused because the trust policy needs the
    /// connection's peer address and the framework gave none; `how_to_fix` says what the
    /// application must change.
    pub fn log(&self, how_to_fix: &str) {
        log::error!(
            target: LOG_TARGET,
            "Refused the request: the trust policy lists trusted peers, but the connection's peer address is not available; {how_to_fix}"
        );
    }
}

/// Makes the response headers carry exactly one header with the final ID, replacing
/// any the handler set, and, when the configuration has a
/// [hop ID header](crate::CorrelationConfigBuilder::hop_id_header), exactly one with
/// `hop_id` (the request's [`CorrelationContext::hop_id`], or
/// [`Decision::hop_id`] for a rejection). Does nothing when echo is turned off.
pub fn echo_response_headers(
    config: &CorrelationConfig,
    headers: &mut HeaderMap,
    id: &CorrelationId,
    hop_id: Option<&CorrelationId>,
) {
    config.echo_response_headers(headers, id, hop_id);
}

/// The context a decided request runs in: its ID, and with the `tracing` feature a
/// `correlation` span recording `correlation_id`, and with the `sentry` feature a Sentry hub
/// of its own tagged with the ID (tag name from
/// [`sentry_tag`](crate::CorrelationConfigBuilder::sentry_tag)), and with the
/// `request-log` feature the level its caller raised it to and its log buffer, where
/// configured. Work that has only an ID passes `id.into()`.
pub fn request_context(config: &CorrelationConfig, decision: Decision) -> CorrelationContext {
    config.request_context(decision)
}

/// Tells the request's context its response status, once the response head is known: a
/// `5xx` writes out the request's log buffer (feature `request-log`), as a record at
/// `ERROR` would. Does nothing for other statuses, or without a buffer.
///
/// ```
/// use correlation_core::adapter;
/// use correlation_core::CorrelationConfig;
///
/// let config = CorrelationConfig::default();
/// let context = adapter::request_context(&config, config.generate().into());
/// adapter::response_status(&context, 200);
/// ```
pub fn response_status(context: &CorrelationContext, status: u16) {
    if status >= 500 {
        context.flush_log();
    }
}
