//! The handler extractor and its error.

use std::fmt;
use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest, ResponseError};

correlation_core::__correlation_id_extractor! {
    /// The request's correlation ID, as a handler argument.
    ///
    /// Reads the ID that [`Correlation`](crate::Correlation) made current (no request
    /// extension, no allocation); fails with [`MissingCorrelation`] (500) when the
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
}

impl FromRequest for CorrelationId {
    type Error = MissingCorrelation;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(_req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        ready(
            correlation_core::current()
                .map(CorrelationId)
                .ok_or(MissingCorrelation { _private: () }),
        )
    }
}

/// Error of the [`CorrelationId`] extractor: no correlation ID is current, because
/// [`Correlation`](crate::Correlation) is not registered around the handler with `.wrap`
/// (or the path is skipped). Turns into `500 Internal Server Error`.
#[derive(Debug)]
pub struct MissingCorrelation {
    _private: (),
}

impl fmt::Display for MissingCorrelation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "missing correlation id: is `correlation_actix::Correlation` registered with `.wrap` around this handler?",
        )
    }
}

impl std::error::Error for MissingCorrelation {}

impl ResponseError for MissingCorrelation {
    fn status_code(&self) -> StatusCode {
        StatusCode::INTERNAL_SERVER_ERROR
    }
}
