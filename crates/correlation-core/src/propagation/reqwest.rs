//! The `reqwest-middleware` middleware.

use http::Extensions;
use reqwest_middleware::reqwest::{Request, Response};
use reqwest_middleware::{Middleware, Next, Result};

use crate::config::CorrelationConfig;

/// A [`reqwest-middleware`](reqwest_middleware) middleware that puts the current
/// correlation ID on every outgoing request, under the configuration's response header
/// name (default `x-request-id`), replacing any value there, and the fields under the
/// configuration's [`baggage_keys`](crate::CorrelationConfigBuilder::baggage_keys) in the
/// `baggage` header, merged with one already there (see
/// [Fields as W3C baggage](super#fields-as-w3c-baggage)). Outside a request or job it
/// leaves the request alone.
///
/// Middlewares run in the order they are added: add this one after reqwest-tracing's,
/// so that its `baggage` header, if any, is there to merge into.
///
/// ```
/// use correlation_core::propagation::PropagateCorrelationMiddleware;
/// use correlation_core::{CorrelationId, scope};
/// use reqwest_middleware::ClientBuilder;
/// # use reqwest_middleware::{Middleware, Next, reqwest::{Request, Response}};
/// # /// Answers every request itself with the correlation header it received.
/// # struct Echo;
/// # #[async_trait::async_trait]
/// # impl Middleware for Echo {
/// #     async fn handle(
/// #         &self,
/// #         req: Request,
/// #         _: &mut http::Extensions,
/// #         _: Next<'_>,
/// #     ) -> reqwest_middleware::Result<Response> {
/// #         let seen = req.headers().get("x-request-id").map(|v| v.to_str().unwrap().to_owned());
/// #         Ok(http::Response::new(seen.unwrap_or_else(|| "none".to_owned())).into())
/// #     }
/// # }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let client = ClientBuilder::new(reqwest_middleware::reqwest::Client::new())
///     .with(PropagateCorrelationMiddleware::new())
/// #   .with(Echo)
///     .build();
///
/// let id = CorrelationId::from_static("5bd6e2a7fa4a4c32bd84a5ec5a43c1d3");
/// let response = scope(id, client.get("http://inventory.internal/stock").send()).await?;
/// assert_eq!(response.text().await?, "5bd6e2a7fa4a4c32bd84a5ec5a43c1d3");
///
/// // Outside a request nothing is added.
/// let response = client.get("http://inventory.internal/stock").send().await?;
/// assert_eq!(response.text().await?, "none");
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct PropagateCorrelationMiddleware {
    config: CorrelationConfig,
}

impl PropagateCorrelationMiddleware {
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

impl From<CorrelationConfig> for PropagateCorrelationMiddleware {
    fn from(config: CorrelationConfig) -> Self {
        Self::with_config(config)
    }
}

#[async_trait::async_trait]
impl Middleware for PropagateCorrelationMiddleware {
    async fn handle(
        &self,
        mut req: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> Result<Response> {
        // Runs in the caller's task, so the caller's context is current here.
        self.config.inject_current(req.headers_mut());
        next.run(req, extensions).await
    }
}
