//! The poem [`Middleware`] and the [`Endpoint`] it wraps around the application.

use std::fmt;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use correlation_core::adapter::{self, Decision, Rejection};
use correlation_core::{CorrelationConfig, CorrelationContext, Outcome};
use pin_project_lite::pin_project;
use poem::{Endpoint, IntoResponse, Middleware, Request, Response, Result};

use crate::body;

/// Gives every request a correlation ID and runs the inner endpoint with it as the
/// current one; see the [crate docs](crate).
///
/// Register it with `.with(Correlation::default())` as the **last** `.with` call, so
/// that it is the outermost middleware.
///
/// ```
/// use correlation_poem::{Correlation, CorrelationConfig};
/// use poem::{EndpointExt, Route, get, handler};
///
/// #[handler]
/// fn index() -> &'static str {
///     "hello"
/// }
///
/// let config = CorrelationConfig::builder().header_name("X-Correlation-ID").build()?;
/// let app = Route::new().at("/", get(index)).with(Correlation::with_config(config));
/// # let _ = app;
/// # Ok::<(), correlation_poem::correlation_core::ConfigError>(())
/// ```
#[derive(Clone, Debug)]
pub struct Correlation {
    config: CorrelationConfig,
    peer_address: PeerAddress,
}

/// Finds the connection's peer address of a request, for the trust policy.
pub type PeerAddress = fn(&Request) -> Option<IpAddr>;

/// The peer address poem records for a TCP connection; `None` for any other listener
/// (a Unix socket, a custom address).
fn poem_remote_addr(request: &Request) -> Option<IpAddr> {
    request
        .remote_addr()
        .as_socket_addr()
        .map(|address| address.ip())
}

/// What the error log says when the peer address is missing.
const PEER_ADDRESS_FIX: &str = "poem gives it for TCP listeners only; serve the app over TCP, or tell the middleware where the address is with `Correlation::peer_address`";

impl Default for Correlation {
    fn default() -> Self {
        Self::with_config(CorrelationConfig::default())
    }
}

impl Correlation {
    /// The middleware with the default configuration: `X-Request-ID`, UUID v4, strict
    /// validation, request header updated, response header echoed.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The middleware with `config`, the configuration every adapter shares.
    #[must_use]
    pub fn with_config(config: CorrelationConfig) -> Self {
        Self {
            config,
            peer_address: poem_remote_addr,
        }
    }

    /// Where the connection's peer address is found, for a
    /// [`TrustPolicy::FromPeers`](correlation_core::TrustPolicy::FromPeers): by default
    /// [`Request::remote_addr`], a socket address for poem's TCP listeners. An app
    /// served on a Unix socket, or whose own outer middleware records the address (a
    /// proxy-protocol layer), says where. Without an address such a policy answers `500`
    /// and logs an error; it never trusts silently.
    ///
    /// ```
    /// use std::net::IpAddr;
    /// use correlation_poem::{Correlation, CorrelationConfig, TrustPolicy};
    ///
    /// /// Put in the extensions by the application's own connection middleware.
    /// #[derive(Clone)]
    /// struct ClientAddress(IpAddr);
    ///
    /// let config = CorrelationConfig::builder()
    ///     .trust(TrustPolicy::from_peers(["10.0.0.0/8"])?)
    ///     .build()?;
    /// let correlation = Correlation::with_config(config).peer_address(|request| {
    ///     request.extensions().get::<ClientAddress>().map(|client| client.0)
    /// });
    /// # let _ = correlation;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn peer_address(mut self, find: PeerAddress) -> Self {
        self.peer_address = find;
        self
    }

    /// The configuration in use.
    pub fn config(&self) -> &CorrelationConfig {
        &self.config
    }
}

impl From<CorrelationConfig> for Correlation {
    fn from(config: CorrelationConfig) -> Self {
        Self::with_config(config)
    }
}

impl<E: Endpoint> Middleware<E> for Correlation {
    type Output = CorrelationEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        CorrelationEndpoint {
            inner,
            config: self.config.clone(),
            peer_address: self.peer_address,
        }
    }
}

/// The endpoint made by [`Correlation`]: wraps the application's endpoint.
#[derive(Clone)]
pub struct CorrelationEndpoint<E> {
    inner: E,
    config: CorrelationConfig,
    peer_address: PeerAddress,
}

impl<E> CorrelationEndpoint<E> {
    /// Wraps `inner` with `config`; usually made by `.with(Correlation::...)`.
    #[must_use]
    pub fn new(inner: E, config: CorrelationConfig) -> Self {
        Self {
            inner,
            config,
            peer_address: poem_remote_addr,
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &CorrelationConfig {
        &self.config
    }

    /// The inner endpoint.
    pub fn get_ref(&self) -> &E {
        &self.inner
    }

    /// The inner endpoint, mutably.
    pub fn get_mut(&mut self) -> &mut E {
        &mut self.inner
    }

    /// Unwraps the inner endpoint.
    pub fn into_inner(self) -> E {
        self.inner
    }
}

impl<E> fmt::Debug for CorrelationEndpoint<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CorrelationEndpoint")
            .field("inner", &std::any::type_name::<E>())
            .field("config", &self.config)
            .finish()
    }
}

impl<E: Endpoint> Endpoint for CorrelationEndpoint<E> {
    type Output = Response;

    fn call(&self, mut request: Request) -> impl Future<Output = Result<Response>> + Send {
        let config = &self.config;
        if config.is_skipped(request.uri().path()) {
            return ResponseFuture {
                kind: Kind::Skipped {
                    future: self.inner.call(request),
                },
                context: None,
                config,
            };
        }
        // Read before the headers are borrowed mutably, and only when a trust policy asks.
        let peer = if config.needs_peer_address() {
            (self.peer_address)(&request)
        } else {
            None
        };
        let decision = match adapter::decide_and_update(config, request.headers_mut(), || peer) {
            Ok(decision) => decision,
            Err(unavailable) => {
                unavailable.log(PEER_ADDRESS_FIX);
                return ResponseFuture {
                    kind: Kind::PeerUnavailable,
                    context: None,
                    config,
                };
            }
        };
        if decision.outcome == Outcome::Rejected {
            return ResponseFuture {
                kind: Kind::Rejected {
                    response: Some(rejection(config, &decision)),
                },
                context: None,
                config,
            };
        }
        let context = adapter::request_context(config, decision);
        // Work the inner endpoint does before returning its future sees the ID.
        let future = context.run(|| self.inner.call(request));
        ResponseFuture {
            kind: Kind::Scoped { future },
            context: Some(context),
            config,
        }
    }
}

pin_project! {
    /// The future of [`CorrelationEndpoint::call`]. `context` (the request's ID, and
    /// its span and Sentry hub with those features) is set unless the path is skipped
    /// or the request rejected.
    ///
    /// It holds the context itself rather than wrapping the inner future with
    /// `CorrelationContext::wrap` as the other adapters do: poem's endpoint returns the
    /// handler's output or error, and turning it into a response (user code that may
    /// log) must run inside the scope too, in the same entry as the poll.
    struct ResponseFuture<'a, F> {
        #[pin]
        kind: Kind<F>,
        context: Option<CorrelationContext>,
        config: &'a CorrelationConfig,
    }

    impl<F> PinnedDrop for ResponseFuture<'_, F> {
        // A request dropped before completion (the client went away) drops the inner
        // future inside the scope, so what its destructors log carries the ID.
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            let mut kind = this.kind;
            if let (Some(context), KindProj::Scoped { .. }) =
                (this.context, kind.as_mut().project())
            {
                context.run(|| kind.set(Kind::Done));
            }
        }
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F> {
        Scoped { #[pin] future: F },
        Skipped { #[pin] future: F },
        Rejected { response: Option<Response> },
        PeerUnavailable,
        Done,
    }
}

impl<F, T> Future for ResponseFuture<'_, F>
where
    F: Future<Output = Result<T>>,
    T: IntoResponse,
{
    type Output = Result<Response>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut kind = this.kind;
        let Some(context) = this.context.as_mut() else {
            return match kind.as_mut().project() {
                KindProj::Skipped { future } => future
                    .poll(cx)
                    .map(|result| result.map(IntoResponse::into_response)),
                KindProj::Rejected { response } => match response.take() {
                    Some(response) => Poll::Ready(Ok(response)),
                    None => panic!("`ResponseFuture` polled after completion"),
                },
                KindProj::PeerUnavailable => {
                    kind.set(Kind::Done);
                    Poll::Ready(Ok(rejection_response(Rejection::PeerAddressUnavailable)))
                }
                _ => panic!("`ResponseFuture` polled after completion"),
            };
        };
        // Polling the inner future and turning its output or error into a response
        // (which may run user code): all with the ID, in one scope per poll.
        let response = context.run(|| {
            let KindProj::Scoped { future } = kind.as_mut().project() else {
                panic!("`ResponseFuture` polled after completion");
            };
            future.poll(cx).map(|output| match output {
                Ok(output) => output.into_response(),
                Err(err) => err.into_response(),
            })
        });
        let Poll::Ready(mut response) = response else {
            return Poll::Pending;
        };
        // The inner future has finished (its locals were dropped inside the scope): the
        // context moves on to the body, and dropping this future needs no scope.
        if let Some(context) = this.context.take() {
            adapter::response_status(&context, response.status().as_u16());
            if let Some(id) = context.id() {
                let hop_id = context.hop_id();
                adapter::echo_response_headers(this.config, response.headers_mut(), id, hop_id);
            }
            let streamed = body::scoped(response.take_body(), context);
            response.set_body(streamed);
        }
        Poll::Ready(Ok(response))
    }
}

/// The `400 Bad Request` of a rejected ID, carrying the new one (and the hop ID, when
/// hop IDs are on).
fn rejection(config: &CorrelationConfig, decision: &Decision) -> Response {
    let mut response = rejection_response(Rejection::InvalidId);
    let (id, hop_id) = (&decision.id, decision.hop_id());
    adapter::echo_response_headers(config, response.headers_mut(), id, hop_id);
    response
}

/// The response for `rejection`.
fn rejection_response(rejection: Rejection) -> Response {
    let mut response = Response::builder().status(rejection.status());
    if let Some(content_type) = rejection.content_type() {
        response = response.content_type(content_type);
    }
    response.body(rejection.body())
}
