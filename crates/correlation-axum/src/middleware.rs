//! The tower [`Layer`], [`Service`] and response future.

use std::fmt;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use axum::extract::ConnectInfo;
use correlation_core::adapter::{self, Decision, Rejection};
use correlation_core::{CorrelationConfig, Outcome, WithCorrelation};
use http::{Extensions, HeaderValue, Request, Response};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::body::CorrelationBody;

/// Gives every request a correlation ID and runs the inner service with it as the
/// current one; see the [crate docs](crate).
///
/// Works with any tower HTTP service and any body type: axum's `Router`, hyper, tonic.
#[derive(Clone, Debug)]
pub struct CorrelationLayer {
    config: CorrelationConfig,
    peer_address: PeerAddress,
}

/// Finds the connection's peer address in a request's extensions, for the trust policy.
pub type PeerAddress = fn(&Extensions) -> Option<IpAddr>;

/// The peer address axum records when the app is served with
/// `into_make_service_with_connect_info::<SocketAddr>()`.
fn axum_connect_info(extensions: &Extensions) -> Option<IpAddr> {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(address)| address.ip())
}

/// What the error log says when the peer address is missing.
const PEER_ADDRESS_FIX: &str = "serve the app with `into_make_service_with_connect_info::<SocketAddr>()`, or tell the layer where the address is with `CorrelationLayer::peer_address`";

impl Default for CorrelationLayer {
    fn default() -> Self {
        Self::with_config(CorrelationConfig::default())
    }
}

impl CorrelationLayer {
    /// The layer with the default configuration: `X-Request-ID`, UUID v4, strict validation.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The layer with `config`, the configuration every adapter shares.
    #[must_use]
    pub fn with_config(config: CorrelationConfig) -> Self {
        Self {
            config,
            peer_address: axum_connect_info,
        }
    }

    /// Where the connection's peer address is found, for a
    /// [`TrustPolicy::FromPeers`](correlation_core::TrustPolicy::FromPeers): by default
    /// axum's `ConnectInfo<SocketAddr>`, there when the app is served with
    /// `into_make_service_with_connect_info::<SocketAddr>()`. A stack that records the
    /// address another way (tonic's `TcpConnectInfo`, a proxy-protocol layer) says where.
    /// Without an address such a policy answers `500` and logs an error; it never trusts
    /// silently.
    ///
    /// ```
    /// use std::net::IpAddr;
    /// use correlation_axum::{CorrelationConfig, CorrelationLayer, TrustPolicy};
    ///
    /// /// Put in the extensions by the application's own connection layer.
    /// #[derive(Clone)]
    /// struct ClientAddress(IpAddr);
    ///
    /// let config = CorrelationConfig::builder()
    ///     .trust(TrustPolicy::from_peers(["10.0.0.0/8"])?)
    ///     .build()?;
    /// let layer = CorrelationLayer::with_config(config)
    ///     .peer_address(|extensions| extensions.get::<ClientAddress>().map(|client| client.0));
    /// # let _ = layer;
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

impl From<CorrelationConfig> for CorrelationLayer {
    fn from(config: CorrelationConfig) -> Self {
        Self::with_config(config)
    }
}

impl<S> Layer<S> for CorrelationLayer {
    type Service = CorrelationService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CorrelationService {
            inner,
            config: self.config.clone(),
            peer_address: self.peer_address,
        }
    }
}

/// The service made by [`CorrelationLayer`].
#[derive(Clone)]
pub struct CorrelationService<S> {
    inner: S,
    config: CorrelationConfig,
    peer_address: PeerAddress,
}

impl<S> CorrelationService<S> {
    /// Wraps `inner` with `config`.
    #[must_use]
    pub fn new(inner: S, config: CorrelationConfig) -> Self {
        Self {
            inner,
            config,
            peer_address: axum_connect_info,
        }
    }

    /// A [`CorrelationLayer`] with the default configuration, like
    /// [`CorrelationLayer::new`]; [`CorrelationLayer::with_config`] takes one.
    #[must_use]
    pub fn layer() -> CorrelationLayer {
        CorrelationLayer::new()
    }

    /// The configuration in use.
    pub fn config(&self) -> &CorrelationConfig {
        &self.config
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S> fmt::Debug for CorrelationService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CorrelationService")
            .field("inner", &std::any::type_name::<S>())
            .field("config", &self.config)
            .finish()
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for CorrelationService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<CorrelationBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        if self.config.is_skipped(request.uri().path()) {
            return ResponseFuture {
                kind: Kind::Skipped {
                    future: self.inner.call(request),
                },
            };
        }
        // Read before the headers are borrowed mutably, and only when a trust policy asks.
        let peer = if self.config.needs_peer_address() {
            (self.peer_address)(request.extensions())
        } else {
            None
        };
        let decision =
            match adapter::decide_and_update(&self.config, request.headers_mut(), || peer) {
                Ok(decision) => decision,
                Err(unavailable) => {
                    unavailable.log(PEER_ADDRESS_FIX);
                    return ResponseFuture {
                        kind: Kind::PeerUnavailable,
                    };
                }
            };
        if decision.outcome == Outcome::Rejected {
            return ResponseFuture {
                kind: Kind::Rejected {
                    decision: Some(decision),
                    config: self.config.clone(),
                },
            };
        }
        #[cfg(feature = "tower-http")]
        request
            .extensions_mut()
            .insert(tower_http::request_id::RequestId::new(
                decision.id.to_header_value(),
            ));
        let context = adapter::request_context(&self.config, decision);
        // Services that do work in `call` itself, before their future is polled, see the ID
        // too.
        let future = context.run(|| self.inner.call(request));
        ResponseFuture {
            kind: Kind::Scoped {
                future: context.wrap(future),
                config: self.config.clone(),
            },
        }
    }
}

pin_project! {
    /// The response future of [`CorrelationService`].
    pub struct ResponseFuture<F> {
        #[pin]
        kind: Kind<F>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F> {
        Scoped {
            #[pin]
            future: WithCorrelation<F>,
            config: CorrelationConfig,
        },
        Skipped {
            #[pin]
            future: F,
        },
        Rejected {
            decision: Option<Decision>,
            config: CorrelationConfig,
        },
        PeerUnavailable,
    }
}

impl<F> fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("future", &std::any::type_name::<F>())
            .finish_non_exhaustive()
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<CorrelationBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Scoped { mut future, config } => {
                let response = ready!(future.as_mut().poll(cx))?;
                let (mut parts, body) = response.into_parts();
                // The future is done: its context moves on to the body.
                let context = future
                    .take_context()
                    .expect("`ResponseFuture` polled after completion");
                adapter::response_status(&context, parts.status.as_u16());
                if let Some(id) = context.id() {
                    let hop_id = context.hop_id();
                    adapter::echo_response_headers(config, &mut parts.headers, id, hop_id);
                }
                let body = CorrelationBody::scoped(body, context);
                Poll::Ready(Ok(Response::from_parts(parts, body)))
            }
            KindProj::Skipped { future } => {
                let response = ready!(future.poll(cx))?;
                Poll::Ready(Ok(response.map(CorrelationBody::plain)))
            }
            KindProj::Rejected { decision, config } => {
                let decision = decision
                    .take()
                    .expect("`ResponseFuture` polled after completion");
                let mut response = rejection_response(Rejection::InvalidId);
                let (id, hop_id) = (&decision.id, decision.hop_id());
                adapter::echo_response_headers(config, response.headers_mut(), id, hop_id);
                Poll::Ready(Ok(response))
            }
            KindProj::PeerUnavailable => {
                Poll::Ready(Ok(rejection_response(Rejection::PeerAddressUnavailable)))
            }
        }
    }
}

/// The response for `rejection`.
fn rejection_response<B>(rejection: Rejection) -> Response<CorrelationBody<B>> {
    let mut response = Response::new(CorrelationBody::rejection(rejection));
    *response.status_mut() = rejection.status();
    if let Some(content_type) = rejection.content_type() {
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static(content_type),
        );
    }
    response
}
