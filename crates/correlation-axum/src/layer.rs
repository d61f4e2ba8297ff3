//! The tower [`Layer`], [`Service`] and response future.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use correlation_core::adapter::{self, REJECTION_CONTENT_TYPE, REJECTION_STATUS};
use correlation_core::{CorrelationConfig, CorrelationId, Outcome, WithCorrelation};
use http::{HeaderValue, Request, Response};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::body::CorrelationBody;

/// Gives every request a correlation ID and runs the inner service with it as the
/// current one; see the [crate docs](crate).
///
/// Works with any tower HTTP service and any body type: axum's `Router`, hyper, tonic.
#[derive(Clone, Debug, Default)]
pub struct CorrelationLayer {
    config: CorrelationConfig,
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
        Self { config }
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
        CorrelationService::new(inner, self.config.clone())
    }
}

/// The service made by [`CorrelationLayer`].
#[derive(Clone)]
pub struct CorrelationService<S> {
    inner: S,
    config: CorrelationConfig,
}

impl<S> CorrelationService<S> {
    /// Wraps `inner` with `config`.
    #[must_use]
    pub fn new(inner: S, config: CorrelationConfig) -> Self {
        Self { inner, config }
    }

    /// A [`CorrelationLayer`] with the default configuration, like
    /// [`CorrelationLayer::new`]; [`CorrelationLayer::with_config`] takes one.
    #[must_use]
    pub fn layer() -> CorrelationLayer {
        CorrelationLayer::new()
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
        let decision = adapter::decide_and_update(&self.config, request.headers_mut());
        if decision.outcome == Outcome::Rejected {
            return ResponseFuture {
                kind: Kind::Rejected {
                    id: Some(decision.id),
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
        let context = adapter::request_context(&self.config, decision.id);
        // Services that do work in `call` itself, before their future is polled, see the ID too.
        let entered = adapter::enter(&context);
        let future = self.inner.call(request);
        drop(entered);
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
            id: Option<CorrelationId>,
            config: CorrelationConfig,
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
                let context = adapter::take_context(future)
                    .expect("`ResponseFuture` polled after completion");
                if let Some(id) = context.id() {
                    adapter::echo_response_headers(config, &mut parts.headers, id);
                }
                let body = CorrelationBody::scoped(body, context);
                Poll::Ready(Ok(Response::from_parts(parts, body)))
            }
            KindProj::Skipped { future } => {
                let response = ready!(future.poll(cx))?;
                Poll::Ready(Ok(response.map(CorrelationBody::plain)))
            }
            KindProj::Rejected { id, config } => {
                let id = id.take().expect("`ResponseFuture` polled after completion");
                let mut response = Response::new(CorrelationBody::rejection());
                *response.status_mut() = REJECTION_STATUS;
                response.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    HeaderValue::from_static(REJECTION_CONTENT_TYPE),
                );
                adapter::echo_response_headers(config, response.headers_mut(), &id);
                Poll::Ready(Ok(response))
            }
        }
    }
}
