//! The handler extractor and its error.

use std::fmt;

use poem::error::ResponseError;
use poem::http::StatusCode;
use poem::{FromRequest, Request, RequestBody, Result};

correlation_core::__correlation_id_extractor! {
    /// The request's correlation ID, as a handler argument.
    ///
    /// Reads the ID that [`Correlation`](crate::Correlation) made current (no request
    /// extension is involved). Fails with [`MissingCorrelation`] (500) when the
    /// middleware is not installed around the handler or skipped the path; take
    /// `Option<CorrelationId>` where that is fine.
    ///
    /// ```
    /// use correlation_poem::{Correlation, CorrelationId};
    /// use poem::{EndpointExt, Route, get, handler, test::TestClient};
    ///
    /// #[handler]
    /// fn show(id: CorrelationId) -> String {
    ///     id.to_string()
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let app = Route::new().at("/", get(show)).with(Correlation::default());
    /// let response = TestClient::new(app)
    ///     .get("/")
    ///     .header("x-request-id", "3758c31e11774540ba330109c405579a")
    ///     .send()
    ///     .await;
    /// response.assert_text("3758c31e11774540ba330109c405579a").await;
    /// # }
    /// ```
}

impl<'a> FromRequest<'a> for CorrelationId {
    async fn from_request(_request: &'a Request, _body: &mut RequestBody) -> Result<Self> {
        match correlation_core::current() {
            Some(id) => Ok(CorrelationId(id)),
            None => Err(MissingCorrelation { _private: () }.into()),
        }
    }
}

/// The error of the [`CorrelationId`] extractor: no correlation ID is current, because
/// [`Correlation`](crate::Correlation) is not installed around the handler (or skipped
/// the path). Turns into `500 Internal Server Error`.
///
/// ```
/// use correlation_poem::CorrelationId;
/// use poem::{Route, get, handler, http::StatusCode, test::TestClient};
///
/// #[handler]
/// fn show(id: CorrelationId) -> String {
///     id.to_string()
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// // No `.with(Correlation::default())`:
/// let response = TestClient::new(Route::new().at("/", get(show))).get("/").send().await;
/// response.assert_status(StatusCode::INTERNAL_SERVER_ERROR);
/// response
///     .assert_text("missing correlation id: is `correlation_poem::Correlation` installed around this endpoint?")
///     .await;
/// # }
/// ```
#[derive(Debug)]
pub struct MissingCorrelation {
    _private: (),
}

impl fmt::Display for MissingCorrelation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "missing correlation id: is `correlation_poem::Correlation` installed around this endpoint?",
        )
    }
}

impl std::error::Error for MissingCorrelation {}

impl ResponseError for MissingCorrelation {
    fn status(&self) -> StatusCode {
        StatusCode::INTERNAL_SERVER_ERROR
    }
}
