//! The handler extractor and its rejection.

use std::fmt;

use axum_core::extract::{FromRequestParts, OptionalFromRequestParts};
use axum_core::response::{IntoResponse, Response};
use http::StatusCode;
use http::request::Parts;

correlation_core::__correlation_id_extractor! {
    /// The request's correlation ID, as a handler argument.
    ///
    /// Reads the ID [`CorrelationLayer`](crate::CorrelationLayer) made current; fails with
    /// [`MissingCorrelation`] (500) when the layer is not installed or skipped the path.
    /// Use `Option<CorrelationId>` where a missing layer is fine.
    ///
    /// ```
    /// use correlation_axum::{CorrelationId, CorrelationLayer};
    /// use axum::{Router, routing::get};
    ///
    /// async fn handler(id: CorrelationId) -> String {
    ///     id.to_string()
    /// }
    ///
    /// let app: Router = Router::new().route("/", get(handler)).layer(CorrelationLayer::new());
    /// ```
}

impl<S: Send + Sync> FromRequestParts<S> for CorrelationId {
    type Rejection = MissingCorrelation;

    async fn from_request_parts(_parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        correlation_core::current()
            .map(CorrelationId)
            .ok_or(MissingCorrelation { _private: () })
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for CorrelationId {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        _parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(correlation_core::current().map(CorrelationId))
    }
}

/// Rejection of the [`CorrelationId`] extractor: no correlation ID is current, because
/// [`CorrelationLayer`](crate::CorrelationLayer) is not installed around the handler (or
/// the path is skipped). Turns into `500 Internal Server Error`.
#[derive(Debug)]
pub struct MissingCorrelation {
    _private: (),
}

impl fmt::Display for MissingCorrelation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "missing correlation id: is `correlation_axum::CorrelationLayer` installed around this handler?",
        )
    }
}

impl std::error::Error for MissingCorrelation {}

impl IntoResponse for MissingCorrelation {
    fn into_response(self) -> Response {
        (StatusCode::INTERNAL_SERVER_ERROR, self.to_string()).into_response()
    }
}
