//! The [`Transform`] (`Correlation`), its service, its response future and the error wrapper.

use std::fmt;
use std::future::{Future, Ready, ready};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, ready};

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::{Error, HttpResponse, ResponseError};
use bytes::Bytes;
use correlation_core::{
    CorrelationConfig, CorrelationId, DEFAULT_HEADER_NAME, Outcome, WithCorrelation,
};
use pin_project_lite::pin_project;

use crate::body::CorrelationBody;

/// The correlation ID middleware for actix-web: register it with
/// `App::new().wrap(Correlation::default())`; see the [crate docs](crate).
///
/// This is the configuration and the [`Transform`]; actix builds one
/// [`CorrelationMiddleware`] from it per worker. Cheap to clone and `Send`, so it can be
/// built once outside `HttpServer::new` and cloned into the app factory.
#[derive(Clone, Debug, Default)]
pub struct Correlation {
    config: CorrelationConfig,
}

impl Correlation {
    /// The middleware with the default configuration: `X-Request-ID`, UUID v4, strict validation.
    pub fn new() -> Self {
        Self::default()
    }

    /// The middleware with `config`, the configuration every adapter shares.
    pub fn with_config(config: CorrelationConfig) -> Self {
        Self { config }
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
            state: Rc::new(State::new(self.config.clone())),
        }))
    }
}

/// The configuration with the header names converted once to actix's own header types.
///
/// actix-web 4 uses `http` 0.2 header types while core uses `http` 1: the names are
/// converted here, once per worker, and never per request.
struct State {
    config: CorrelationConfig,
    /// The incoming names in priority order; never empty (core's builder checks it).
    incoming: Box<[HeaderName]>,
    response: HeaderName,
}

impl State {
    fn new(config: CorrelationConfig) -> Self {
        Self {
            incoming: config
                .incoming_header_names()
                .iter()
                .map(actix_name)
                .collect(),
            response: actix_name(config.response_header_name()),
            config,
        }
    }
}

/// Converts a header name of `http` 1 to actix's `http` 0.2 type.
fn actix_name(name: &correlation_core::http::HeaderName) -> HeaderName {
    if name.as_str() == DEFAULT_HEADER_NAME {
        // Static bytes: cloning it per request touches no reference count.
        return HeaderName::from_static(DEFAULT_HEADER_NAME);
    }
    // Both `http` versions accept exactly the same (lowercase token) header names.
    HeaderName::from_bytes(name.as_str().as_bytes())
        .expect("http 0.2 accepts every header name http 1 accepts")
}

/// The service built by [`Correlation`]: gives every request an ID and runs the inner
/// service with it as the current one.
pub struct CorrelationMiddleware<S> {
    service: Rc<S>,
    state: Rc<State>,
}

impl<S> CorrelationMiddleware<S> {
    /// The configuration in use.
    pub fn config(&self) -> &CorrelationConfig {
        &self.state.config
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
            .field("config", &self.state.config)
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
    type Future = ResponseFuture<S, S::Future>;

    forward_ready!(service);

    fn call(&self, mut request: ServiceRequest) -> Self::Future {
        let state = &*self.state;
        let config = &state.config;
        if config.is_skipped(request.path()) {
            return ResponseFuture {
                kind: Kind::Skipped {
                    future: self.service.call(request),
                },
            };
        }

        // The first incoming name present decides, and of its values the first one.
        let incoming = state.incoming.iter().enumerate().find_map(|(index, name)| {
            let mut values = request.headers().get_all(name);
            let first = values.next()?;
            Some(Incoming {
                value: first.clone(),
                in_place: index == 0 && values.len() == 0,
            })
        });
        let decision = config.decide_value(
            incoming
                .as_ref()
                .map(|incoming| http_value(incoming.value.as_bytes()))
                .as_ref(),
        );
        let id = decision.id;
        let (value, in_place) = match incoming {
            // Accepted as is: the incoming value serves the request and the response.
            Some(incoming) if incoming.value.as_bytes() == id.as_bytes() => {
                (incoming.value, incoming.in_place)
            }
            _ => (actix_value(&id), false),
        };

        if decision.outcome == Outcome::Rejected {
            return ResponseFuture {
                kind: Kind::Rejected {
                    request: Some(request),
                    value: config.echo_response_header().then_some(value),
                    state: Rc::clone(&self.state),
                },
            };
        }

        // Core's `update_request_headers` on actix's own header map: exactly one header
        // with the final ID, under the first incoming name.
        let others = &state.incoming[1..];
        if config.update_request_header() && !(in_place && others.is_empty()) {
            let headers = request.headers_mut();
            for name in others {
                headers.remove(name);
            }
            if !in_place {
                headers.insert(state.incoming[0].clone(), value.clone());
            }
        }

        // The inner service is called on the first poll, inside the scope: its `call`
        // (where middleware may already log) and its future both run with the ID, at the
        // cost of one scope entry per poll.
        let context = config.request_context(id);
        ResponseFuture {
            kind: Kind::Scoped {
                future: context.wrap(Call {
                    pending: Some((Rc::clone(&self.service), request)),
                    future: None,
                }),
                value: config.echo_response_header().then_some(value),
                state: Rc::clone(&self.state),
            },
        }
    }
}

/// The first value of the first incoming header present.
struct Incoming {
    value: HeaderValue,
    /// Found under the first incoming name, alone: the request already holds exactly
    /// the header an accepted ID needs.
    in_place: bool,
}

/// The incoming value as core's `http` 1 header value: its bytes are copied once into a
/// buffer that the ID then shares (actix-web 4's `http` 0.2 values cannot lend theirs).
fn http_value(incoming: &[u8]) -> correlation_core::http::HeaderValue {
    let bytes = if incoming.len() <= 64 {
        Bytes::from_owner(IdBuf::<64>::new(incoming))
    } else if incoming.len() <= CorrelationId::MAX_LEN {
        Bytes::from_owner(IdBuf::<{ CorrelationId::MAX_LEN }>::new(incoming))
    } else {
        // Too long to be accepted anyway: core replaces it.
        Bytes::copy_from_slice(incoming)
    };
    // actix parsed it as a header value, and both `http` versions accept the same
    // bytes; the fallback (a space, which core rejects) keeps this total.
    correlation_core::http::HeaderValue::from_maybe_shared(bytes)
        .unwrap_or(correlation_core::http::HeaderValue::from_static(" "))
}

/// Up to `N` bytes held inline, so sharing them costs one allocation.
struct IdBuf<const N: usize> {
    len: usize,
    buf: [u8; N],
}

impl<const N: usize> IdBuf<N> {
    fn new(bytes: &[u8]) -> Self {
        let mut buf = [0; N];
        buf[..bytes.len()].copy_from_slice(bytes);
        Self {
            len: bytes.len(),
            buf,
        }
    }
}

impl<const N: usize> AsRef<[u8]> for IdBuf<N> {
    fn as_ref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// The ID as an actix header value, sharing the ID's bytes.
fn actix_value(id: &CorrelationId) -> HeaderValue {
    HeaderValue::from_maybe_shared(Bytes::from_owner(id.clone()))
        .expect("a correlation id is always a valid header value")
}

pin_project! {
    /// Calls the inner service when first polled, then drives the future it returns.
    struct Call<S, F> {
        pending: Option<(Rc<S>, ServiceRequest)>,
        #[pin]
        future: Option<F>,
    }
}

impl<S> Future for Call<S, S::Future>
where
    S: Service<ServiceRequest>,
{
    type Output = Result<S::Response, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if let Some((service, request)) = this.pending.take() {
            this.future.set(Some(service.call(request)));
        }
        this.future
            .as_pin_mut()
            .expect("ResponseFuture polled after completion")
            .poll(cx)
    }
}

pin_project! {
    /// The response future of [`CorrelationMiddleware`]; `F` is the inner service's future.
    pub struct ResponseFuture<S, F> {
        #[pin]
        kind: Kind<S, F>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<S, F> {
        Scoped {
            #[pin]
            future: WithCorrelation<Call<S, F>>,
            value: Option<HeaderValue>,
            state: Rc<State>,
        },
        Skipped {
            #[pin]
            future: F,
        },
        Rejected {
            request: Option<ServiceRequest>,
            value: Option<HeaderValue>,
            state: Rc<State>,
        },
    }
}

impl<S, F> fmt::Debug for ResponseFuture<S, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("service", &std::any::type_name::<S>())
            .field("future", &std::any::type_name::<F>())
            .finish_non_exhaustive()
    }
}

impl<S, B> Future for ResponseFuture<S, S::Future>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
    B: MessageBody,
{
    type Output = Result<ServiceResponse<CorrelationBody<B>>, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Scoped {
                mut future,
                value,
                state,
            } => {
                let result = ready!(future.as_mut().poll(cx));
                // The future is done: its context moves on to the body.
                let context = future
                    .take_context()
                    .expect("ResponseFuture polled after completion");
                Poll::Ready(match result {
                    Ok(response) => {
                        let mut response =
                            response.map_body(|_, body| CorrelationBody::scoped(body, context));
                        if let Some(value) = value.take() {
                            response.headers_mut().insert(state.response.clone(), value);
                        }
                        Ok(response)
                    }
                    Err(error) => Err(match (value.take(), context.id()) {
                        (Some(value), Some(id)) => CorrelatedError {
                            error,
                            id: id.clone(),
                            name: state.response.clone(),
                            value,
                        }
                        .into(),
                        _ => error,
                    }),
                })
            }
            KindProj::Skipped { future } => {
                let response = ready!(future.poll(cx))?;
                Poll::Ready(Ok(response.map_body(|_, body| CorrelationBody::plain(body))))
            }
            KindProj::Rejected {
                request,
                value,
                state,
            } => {
                let request = request
                    .take()
                    .expect("ResponseFuture polled after completion");
                let mut response =
                    HttpResponse::with_body(StatusCode::BAD_REQUEST, CorrelationBody::rejection());
                let headers = response.headers_mut();
                headers.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; charset=utf-8"),
                );
                if let Some(value) = value.take() {
                    headers.insert(state.response.clone(), value);
                }
                Poll::Ready(Ok(request.into_response(response)))
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
        response
            .headers_mut()
            .insert(self.name.clone(), self.value.clone());
        response
    }
}
