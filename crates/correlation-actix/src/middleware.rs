//! The [`Transform`] (`Correlation`), its service, its response future and the error wrapper.

use std::cell::Cell;
use std::fmt;
use std::future::{Future, Ready, ready};
use std::net::IpAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, ready};

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::{Error, HttpResponse, ResponseError};
use correlation_core::adapter::{self, FirstValue, Rejection, RequestHeaders};
use correlation_core::{CorrelationConfig, CorrelationId, Outcome, WithCorrelation};
use pin_project_lite::pin_project;

use crate::body::CorrelationBody;

/// The correlation ID middleware for actix-web: register it with
/// `App::new().wrap(Correlation::default())`; see the [crate docs](crate).
///
/// This is the configuration and the [`Transform`]; actix builds one
/// [`CorrelationMiddleware`] from it per worker. Cheap to clone and `Send`, so it can be
/// built once outside `HttpServer::new` and cloned into the app factory.
#[derive(Clone, Debug)]
pub struct Correlation {
    config: CorrelationConfig,
    peer_address: PeerAddress,
}

/// Finds the connection's peer address of a request, for the trust policy.
pub type PeerAddress = fn(&ServiceRequest) -> Option<IpAddr>;

/// The peer address actix-web records for a TCP connection.
fn actix_peer_addr(request: &ServiceRequest) -> Option<IpAddr> {
    request.peer_addr().map(|address| address.ip())
}

/// What the error log says when the peer address is missing.
const PEER_ADDRESS_FIX: &str = "actix-web gives it for TCP connections only; serve the app over TCP, or tell the middleware where the address is with `Correlation::peer_address`";

impl Default for Correlation {
    fn default() -> Self {
        Self::with_config(CorrelationConfig::default())
    }
}

impl Correlation {
    /// The middleware with the default configuration: `X-Request-ID`, UUID v4, strict validation.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The middleware with `config`, the configuration every adapter shares.
    #[must_use]
    pub fn with_config(config: CorrelationConfig) -> Self {
        Self {
            config,
            peer_address: actix_peer_addr,
        }
    }

    /// Where the connection's peer address is found, for a
    /// [`TrustPolicy::FromPeers`](correlation_core::TrustPolicy::FromPeers): by default
    /// [`ServiceRequest::peer_addr`], which actix-web gives for TCP connections. An app
    /// served on a Unix socket, or whose own outer middleware records the address (a
    /// proxy-protocol layer), says where. Without an address such a policy answers `500`
    /// and logs an error; it never trusts silently.
    ///
    /// ```
    /// use std::net::IpAddr;
    /// use actix_web::HttpMessage;
    /// use correlation_actix::{Correlation, CorrelationConfig, TrustPolicy};
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

impl<S, B> Transform<S, ServiceRequest> for Correlation
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
    B: MessageBody,
{
    type Response = ServiceResponse<CorrelationBody<B>>;
    type Error = Error;
    type Transform = CorrelationMiddleware<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(CorrelationMiddleware {
            service: Rc::new(service),
            config: Rc::new(ActixConfig::new(self.config.clone())),
            peer_address: self.peer_address,
        }))
    }
}

/// The configuration with the header names and the rejection's status converted once to
/// actix's own types.
///
/// actix-web 4 uses `http` 0.2 types while core uses `http` 1: they are converted here,
/// once per worker, and never per request.
struct ActixConfig {
    config: CorrelationConfig,
    /// The incoming names in priority order, in both `http` versions (a lookup in actix's
    /// map by a name of the other version would parse it anew); never empty (core's
    /// builder checks it).
    names: Box<[(correlation_core::http::HeaderName, HeaderName)]>,
    /// The name written on responses.
    response: HeaderName,
    /// The name the hop ID is written under on responses, when hop IDs are on and
    /// responses echo the IDs.
    hop: Option<HeaderName>,
    rejection_status: StatusCode,
    peer_unavailable_status: StatusCode,
}

impl ActixConfig {
    fn new(config: CorrelationConfig) -> Self {
        Self {
            rejection_status: actix_status(Rejection::InvalidId.status()),
            peer_unavailable_status: actix_status(Rejection::PeerAddressUnavailable.status()),
            names: config
                .incoming_header_names()
                .iter()
                .map(|name| (name.clone(), actix_name(name)))
                .collect(),
            response: actix_name(config.response_header_name()),
            hop: config
                .hop_id_header_name()
                .filter(|_| config.echo_response_header())
                .map(actix_name),
            config,
        }
    }
}

/// Converts a status code of `http` 1 to actix's `http` 0.2 type.
fn actix_status(status: correlation_core::http::StatusCode) -> StatusCode {
    StatusCode::from_u16(status.as_u16())
        .expect("http 0.2 accepts every status code http 1 accepts")
}

/// Actix's request headers as core's sources read them. Remembers the last value found
/// under an incoming ID header, so that an accepted ID is put back on the request (and
/// echoed) as that very value; not one found under another name (a trace context, the log
/// level header), which core may read after the ID's.
struct ActixHeaders<'a> {
    map: &'a header::HeaderMap,
    config: &'a ActixConfig,
    found: Cell<Option<&'a HeaderValue>>,
}

impl<'a> ActixHeaders<'a> {
    fn first(
        &self,
        mut values: std::slice::Iter<'a, HeaderValue>,
        remember: bool,
    ) -> Option<FirstValue<'a>> {
        let first = values.next()?;
        if remember {
            self.found.set(Some(first));
        }
        Some(FirstValue::from_bytes(
            first.as_bytes(),
            values.next().is_none(),
        ))
    }
}

impl RequestHeaders for ActixHeaders<'_> {
    // Asked by core's decision for each source on every request.
    #[inline]
    fn first_value(&self, name: &correlation_core::http::HeaderName) -> Option<FirstValue<'_>> {
        match self.config.names.iter().find(|(known, _)| known == name) {
            Some((_, actix)) => self.first(self.map.get_all(actix), true),
            // A trace-context or custom source's header, or the log level header: looked
            // up by the request's own name, since actix's map would allocate an `http` 0.2
            // name for it.
            None => {
                let actix = self.map.keys().find(|key| key.as_str() == name.as_str())?;
                self.first(self.map.get_all(actix), false)
            }
        }
    }

    // Asked for the `baggage` header, whose repeated values make one list.
    fn each_value<'s>(
        &'s self,
        name: &correlation_core::http::HeaderName,
        each: &mut dyn FnMut(&'s [u8]),
    ) {
        if let Some(actix) = self.map.keys().find(|key| key.as_str() == name.as_str()) {
            for value in self.map.get_all(actix) {
                each(value.as_bytes());
            }
        }
    }
}

/// Converts a header name of `http` 1 to actix's `http` 0.2 type.
fn actix_name(name: &correlation_core::http::HeaderName) -> HeaderName {
    // Both `http` versions accept exactly the same (lowercase token) header names.
    HeaderName::from_bytes(name.as_str().as_bytes())
        .expect("http 0.2 accepts every header name http 1 accepts")
}

/// The service built by [`Correlation`]: gives every request an ID and runs the inner
/// service with it as the current one.
///
/// actix builds it through the [`Transform`] and shares the inner service with the
/// response futures, so it has no constructor, and gives the inner service by reference
/// only.
pub struct CorrelationMiddleware<S> {
    service: Rc<S>,
    config: Rc<ActixConfig>,
    peer_address: PeerAddress,
}

impl<S> CorrelationMiddleware<S> {
    /// The configuration in use.
    pub fn config(&self) -> &CorrelationConfig {
        &self.config.config
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.service
    }
}

impl<S> fmt::Debug for CorrelationMiddleware<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CorrelationMiddleware")
            .field("service", &std::any::type_name::<S>())
            .field("config", &self.config.config)
            .finish()
    }
}

impl<S, B> Service<ServiceRequest> for CorrelationMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
    B: MessageBody,
{
    type Response = ServiceResponse<CorrelationBody<B>>;
    type Error = Error;
    type Future = ResponseFuture<S::Future>;

    forward_ready!(service);

    fn call(&self, mut request: ServiceRequest) -> Self::Future {
        let actix = &*self.config;
        let config = &actix.config;
        if config.is_skipped(request.path()) {
            return ResponseFuture {
                kind: Kind::Skipped {
                    future: self.service.call(request),
                },
            };
        }

        // Core's rules over actix's own map...
        let headers = ActixHeaders {
            map: request.headers(),
            config: actix,
            found: Cell::new(None),
        };
        // Core asks for the address only when the trust policy needs it.
        let peer = || (self.peer_address)(&request);
        let (decision, plan) = match adapter::decide_request(config, &headers, peer) {
            Ok(decided) => decided,
            Err(unavailable) => {
                unavailable.log(PEER_ADDRESS_FIX);
                return ResponseFuture {
                    kind: Kind::PeerUnavailable {
                        request: Some(request),
                        config: Rc::clone(&self.config),
                    },
                };
            }
        };
        let id = &decision.id;
        // ...and the final ID as an actix value: the incoming one when it is the ID.
        let value = match headers.found.get() {
            Some(incoming) if plan.id_is_incoming() || incoming.as_bytes() == id.as_bytes() => {
                incoming.clone()
            }
            _ => actix_value(id),
        };
        let echo = config.echo_response_header();

        if decision.outcome == Outcome::Rejected {
            return ResponseFuture {
                kind: Kind::Rejected {
                    request: Some(request),
                    value: echo.then_some(value),
                    hop: actix.hop.as_ref().and(decision.hop_id()).map(actix_value),
                    config: Rc::clone(&self.config),
                },
            };
        }

        // ...then the plan, applied with actix's names. The value goes to the request, the
        // echo or both: a copy only for both.
        if plan.remove_others() {
            let headers = request.headers_mut();
            for (_, name) in &actix.names[1..] {
                headers.remove(name);
            }
        }
        let echo = if plan.write_id() {
            let echo = echo.then(|| value.clone());
            request
                .headers_mut()
                .insert(actix.names[0].1.clone(), value);
            echo
        } else {
            echo.then_some(value)
        };

        // The inner service's `call` (where actix starts extracting handler arguments)
        // and its future both run with the ID.
        let context = adapter::request_context(config, decision);
        let future = context.run(|| self.service.call(request));
        ResponseFuture {
            kind: Kind::Scoped {
                future: context.wrap(future),
                value: echo,
                config: Rc::clone(&self.config),
            },
        }
    }
}

/// The ID as an actix header value, over the bytes [`CorrelationId::to_bytes`] gives.
#[inline]
fn actix_value(id: &CorrelationId) -> HeaderValue {
    HeaderValue::from_maybe_shared(id.to_bytes())
        .expect("a correlation id is always a valid header value")
}

/// The hop ID header a response echoes under `name`: the name and the request's hop ID.
fn hop_header(
    name: &HeaderName,
    context: Option<&correlation_core::CorrelationContext>,
) -> Option<(HeaderName, HeaderValue)> {
    let hop = context?.hop_id()?;
    Some((name.clone(), actix_value(hop)))
}

pin_project! {
    /// The response future of [`CorrelationMiddleware`]; `F` is the inner service's future.
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
            value: Option<HeaderValue>,
            config: Rc<ActixConfig>,
        },
        Skipped {
            #[pin]
            future: F,
        },
        Rejected {
            request: Option<ServiceRequest>,
            value: Option<HeaderValue>,
            hop: Option<HeaderValue>,
            config: Rc<ActixConfig>,
        },
        PeerUnavailable {
            request: Option<ServiceRequest>,
            config: Rc<ActixConfig>,
        },
    }
}

impl<F> fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("future", &std::any::type_name::<F>())
            .finish_non_exhaustive()
    }
}

impl<F, B> Future for ResponseFuture<F>
where
    F: Future<Output = Result<ServiceResponse<B>, Error>>,
    B: MessageBody,
{
    type Output = Result<ServiceResponse<CorrelationBody<B>>, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Scoped {
                mut future,
                value,
                config,
            } => {
                let result = ready!(future.as_mut().poll(cx));
                if let Some(context) = future.context() {
                    let status = match &result {
                        Ok(response) => response.status(),
                        Err(error) => error.as_response_error().status_code(),
                    };
                    adapter::response_status(context, status.as_u16());
                }
                // Only when hop IDs are on and echo is.
                let hop = config
                    .hop
                    .as_ref()
                    .and_then(|name| hop_header(name, future.context()));
                // The future is done: its context moves on to the body, if the body needs it.
                let take_context = || {
                    future
                        .take_context()
                        .expect("`ResponseFuture` polled after completion")
                };
                Poll::Ready(match (result, value.take()) {
                    (Ok(mut response), value) => {
                        if let Some(value) = value {
                            let headers = response.headers_mut();
                            headers.insert(config.response.clone(), value);
                            if let Some((name, hop)) = hop {
                                headers.insert(name, hop);
                            }
                        }
                        Ok(
                            response
                                .map_body(|_, body| CorrelationBody::scoped(body, take_context)),
                        )
                    }
                    (Err(error), Some(value)) => match take_context().id() {
                        Some(id) => Err(CorrelatedError {
                            error,
                            id: id.clone(),
                            name: config.response.clone(),
                            value,
                            hop,
                        }
                        .into()),
                        None => Err(error),
                    },
                    (Err(error), None) => Err(error),
                })
            }
            KindProj::Skipped { future } => {
                let response = ready!(future.poll(cx))?;
                Poll::Ready(Ok(response.map_body(|_, body| CorrelationBody::plain(body))))
            }
            KindProj::Rejected {
                request,
                value,
                hop,
                config,
            } => {
                let request = request
                    .take()
                    .expect("`ResponseFuture` polled after completion");
                let mut response =
                    HttpResponse::with_body(config.rejection_status, CorrelationBody::rejection());
                let headers = response.headers_mut();
                if let Some(content_type) = Rejection::InvalidId.content_type() {
                    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
                }
                if let Some(value) = value.take() {
                    headers.insert(config.response.clone(), value);
                }
                if let (Some(name), Some(hop)) = (&config.hop, hop.take()) {
                    headers.insert(name.clone(), hop);
                }
                Poll::Ready(Ok(request.into_response(response)))
            }
            KindProj::PeerUnavailable { request, config } => {
                let request = request
                    .take()
                    .expect("`ResponseFuture` polled after completion");
                Poll::Ready(Ok(request.into_response(HttpResponse::with_body(
                    config.peer_unavailable_status,
                    CorrelationBody::empty(),
                ))))
            }
        }
    }
}

/// An error returned by the service inside [`Correlation`], carrying the correlation
/// header to the response actix makes from it.
///
/// actix-web turns an `Err` from the service stack into a response only after every
/// middleware has returned, from the error alone; and the request cannot be kept to build
/// a response in the middleware, because actix's router needs sole ownership of it. So
/// the middleware wraps such errors (actix-web-lab's `CatchPanic` reports panics this
/// way, CORS rejections too): the response is the inner error's, with exactly one
/// correlation header. Middleware registered outside [`Correlation`] that downcasts
/// errors finds this type; [`inner`](Self::inner) gives the original error.
pub struct CorrelatedError {
    error: Error,
    id: CorrelationId,
    name: HeaderName,
    value: HeaderValue,
    /// The hop ID header, when hop IDs are on.
    hop: Option<(HeaderName, HeaderValue)>,
}

impl CorrelatedError {
    /// The error the inner service returned.
    pub fn inner(&self) -> &Error {
        &self.error
    }

    /// Unwraps the error the inner service returned.
    pub fn into_inner(self) -> Error {
        self.error
    }

    /// The request's correlation ID.
    pub fn id(&self) -> &CorrelationId {
        &self.id
    }
}

impl fmt::Debug for CorrelatedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CorrelatedError")
            .field("error", &self.error)
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for CorrelatedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.error, f)
    }
}

impl std::error::Error for CorrelatedError {}

impl ResponseError for CorrelatedError {
    fn status_code(&self) -> StatusCode {
        self.error.as_response_error().status_code()
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = self.error.error_response();
        let headers = response.headers_mut();
        headers.insert(self.name.clone(), self.value.clone());
        if let Some((name, value)) = &self.hop {
            headers.insert(name.clone(), value.clone());
        }
        response
    }
}
