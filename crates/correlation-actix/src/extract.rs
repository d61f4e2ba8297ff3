//! The handler extractor and its error.

use std::fmt;
use std::future::{Ready, ready};
use std::ops::Deref;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest, ResponseError};

/// The request's correlation ID, as a handler argument.
///
/// Reads the ID that [`Correlation`](crate::Correlation) made current (no request
/// extension, no allocation); fails with [`MissingCorrelationMiddleware`] (500) when the
/// middleware is not installed or skipped the path. Take `Option<CorrelationId>` where a
/// missing middleware is fine.
///
/// ```
/// use actix_web::{App, test, web};
/// use correlation_actix::{Correlation, CorrelationId};
///
/// async fn handler(id: CorrelationId) -> String {
///     id.to_string()
/// }
///
/// # #[actix_web::main]
/// # async fn main() {
/// let app = test::init_service(
///     App::new().route("/", web::get().to(handler)).wrap(Correlation::default()),
/// )
/// .await;
/// let request = test::TestRequest::get().uri("/").to_request();
/// let response = test::call_service(&app, request).await;
/// let header = response.headers().get("x-request-id").cloned().unwrap();
/// assert_eq!(test::read_body(response).await, header.as_bytes());
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CorrelationId(pub correlation_core::CorrelationId);

impl CorrelationId {
    /// The core ID, to store or pass on (for example to
    /// [`with_correlation_id`](correlation_core::CorrelationFutureExt::with_correlation_id)).
    pub fn into_inner(self) -> correlation_core::CorrelationId {
        self.0
    }
}

impl Deref for CorrelationId {
    type Target = correlation_core::CorrelationId;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl fmt::Display for CorrelationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl PartialEq<&str> for CorrelationId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl PartialEq<str> for CorrelationId {
    fn eq(&self, other: &str) -> bool {
        self.0 == *other
    }
}

impl From<CorrelationId> for correlation_core::CorrelationId {
    fn from(id: CorrelationId) -> Self {
        id.0
    }
}

impl FromRequest for CorrelationId {
    type Error = MissingCorrelationMiddleware;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(_req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        ready(
            correlation_core::current()
                .map(CorrelationId)
                .ok_or(MissingCorrelationMiddleware { _private: () }),
        )
    }
}

/// Error of the [`CorrelationId`] extractor: no correlation ID is current, because
/// [`Correlation`](crate::Correlation) is not registered around the handler with `.wrap`
/// (or the path is skipped). Turns into `500 Internal Server Error`.
#[derive(Debug)]
pub struct MissingCorrelationMiddleware {
    _private: (),
}

impl fmt::Display for MissingCorrelationMiddleware {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "missing correlation id: is `correlation_actix::Correlation` registered with `.wrap` around this handler?",
        )
    }
}

impl std::error::Error for MissingCorrelationMiddleware {}

impl ResponseError for MissingCorrelationMiddleware {
    fn status_code(&self) -> StatusCode {
        StatusCode::INTERNAL_SERVER_ERROR
    }
}
