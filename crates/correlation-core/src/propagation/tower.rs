//! The tower layer for `http::Request` clients.

use std::fmt;
use std::task::{Context, Poll};

use http::Request;
use tower_layer::Layer;
use tower_service::Service;

use crate::config::CorrelationConfig;

/// A tower [`Layer`] for HTTP clients (hyper-util's legacy `Client`, a tonic channel, any
/// `Service<http::Request<B>>`) that puts the current correlation ID on every outgoing
/// request, under the configuration's response header name (default `x-request-id`),
/// replacing any value there, and the fields under the configuration's
/// [`baggage_keys`](crate::CorrelationConfigBuilder::baggage_keys) in the `baggage`
/// header, merged with one already there (see
/// [Fields as W3C baggage](super#fields-as-w3c-baggage)). Outside a request or job it
/// leaves the request alone.
///
/// The header is written when the request is handed to the service (in `call`), so
/// call the client from the task that holds the context, or carry the context with
/// [`spawn`](crate::spawn) / [`CorrelationFutureExt`](crate::CorrelationFutureExt).
///
/// ```
/// use correlation_core::propagation::PropagateCorrelationLayer;
/// use correlation_core::{CorrelationConfig, CorrelationId, scope};
/// use http::Request;
/// use tower::{Layer, ServiceExt, service_fn};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // Stands in for hyper-util's client: answers with the header it was sent.
/// let transport = service_fn(|req: Request<()>| async move {
///     Ok::<_, std::convert::Infallible>(req.headers().get("x-correlation-id").cloned())
/// });
/// let config = CorrelationConfig::builder().header_name("X-Correlation-ID").build()?;
/// let client = PropagateCorrelationLayer::with_config(config).layer(transport);
///
/// let id = CorrelationId::from_static("5bd6e2a7fa4a4c32bd84a5ec5a43c1d3");
/// let sent = scope(id, client.clone().oneshot(Request::new(()))).await?;
/// assert_eq!(sent.unwrap(), "5bd6e2a7fa4a4c32bd84a5ec5a43c1d3");
///
/// assert_eq!(client.oneshot(Request::new(())).await?, None);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct PropagateCorrelationLayer {
    config: CorrelationConfig,
}

impl PropagateCorrelationLayer {
    /// Writes the ID under `x-request-id`.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes the ID under `config`'s response header name.
    #[must_use]
    pub fn with_config(config: CorrelationConfig) -> Self {
        Self { config }
    }
}

impl From<CorrelationConfig> for PropagateCorrelationLayer {
    fn from(config: CorrelationConfig) -> Self {
        Self::with_config(config)
    }
}

impl<S> Layer<S> for PropagateCorrelationLayer {
    type Service = PropagateCorrelation<S>;

    fn layer(&self, inner: S) -> Self::Service {
        PropagateCorrelation {
            inner,
            config: self.config.clone(),
        }
    }
}

/// The service of [`PropagateCorrelationLayer`]: writes the current ID into each
/// request's headers, then calls `S`.
#[derive(Clone)]
pub struct PropagateCorrelation<S> {
    inner: S,
    config: CorrelationConfig,
}

impl<S> PropagateCorrelation<S> {
    /// Wraps `inner`, writing the ID under `config`'s response header name.
    #[must_use]
    pub fn new(inner: S, config: CorrelationConfig) -> Self {
        Self { inner, config }
    }

    /// A [`PropagateCorrelationLayer`] with the default configuration.
    #[must_use]
    pub fn layer() -> PropagateCorrelationLayer {
        PropagateCorrelationLayer::new()
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S> fmt::Debug for PropagateCorrelation<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PropagateCorrelation")
            .field("inner", &std::any::type_name::<S>())
            .field("config", &self.config)
            .finish()
    }
}

impl<S, B> Service<Request<B>> for PropagateCorrelation<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        self.config.inject_current(req.headers_mut());
        self.inner.call(req)
    }
}
