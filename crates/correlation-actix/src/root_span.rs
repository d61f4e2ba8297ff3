//! A root span builder for tracing-actix-web that uses the correlation ID.

use std::borrow::Cow;

use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Version;
use tracing::Span;
use tracing::field::Empty;
use tracing_actix_web::{DefaultRootSpanBuilder, RootSpanBuilder};

/// A [`RootSpanBuilder`] for tracing-actix-web's `TracingLogger` whose root span records
/// the correlation ID as `request_id` (and as `correlation_id`), so a log line never shows
/// two different request IDs.
///
/// tracing-actix-web's default root span records a `request_id` of its own, a UUID it
/// generates for every request, which differs from the correlation ID every other line
/// carries. This builder opens the same `HTTP request` span with the same fields, but with
/// the correlation ID in their place, and records the outcome as the default builder does.
///
/// The feature `tracing-actix-web` does not make that crate a dependency of yours: name it
/// in your Cargo.toml too (`tracing-actix-web = "0.7"`), and install a tracing subscriber
/// (`tracing-subscriber`), without which the span is shown nowhere. Register
/// `TracingLogger` **inside** [`Correlation`](crate::Correlation) (an earlier `.wrap`), so
/// the ID is decided before the root span opens:
///
/// ```
/// use actix_web::{App, test, web};
/// use correlation_actix::{Correlation, CorrelationRootSpanBuilder};
/// use tracing_actix_web::TracingLogger;
///
/// # #[actix_web::main]
/// # async fn main() {
/// let app = App::new()
///     .route("/", web::get().to(|| async { "hello" }))
///     .wrap(TracingLogger::<CorrelationRootSpanBuilder>::new())
///     .wrap(Correlation::default());
/// let app = test::init_service(app).await;
/// let response = test::call_service(&app, test::TestRequest::get().uri("/").to_request()).await;
/// assert!(response.headers().contains_key("x-request-id"));
/// # }
/// ```
///
/// Outside a correlated request (`TracingLogger` registered outside `Correlation`, or a
/// skipped path) the fields are left empty rather than filled with another ID.
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct CorrelationRootSpanBuilder;

impl RootSpanBuilder for CorrelationRootSpanBuilder {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let user_agent = request
            .headers()
            .get("user-agent")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default();
        let route: Cow<'static, str> = request
            .match_pattern()
            .map_or(Cow::Borrowed("default"), Cow::Owned);
        let connection = request.connection_info();
        let span = tracing::info_span!(
            "HTTP request",
            http.method = %request.method(),
            http.route = %route,
            http.flavor = flavor(request.version()),
            http.scheme = %connection.scheme(),
            http.host = %connection.host(),
            http.client_ip = connection.realip_remote_addr().unwrap_or_default(),
            http.user_agent = user_agent,
            http.target = request.uri().path_and_query().map_or("", |target| target.as_str()),
            http.status_code = Empty,
            otel.kind = "server",
            otel.status_code = Empty,
            trace_id = Empty,
            request_id = Empty,
            correlation_id = Empty,
            exception.message = Empty,
            exception.details = Empty,
        );
        if let Some(id) = correlation_core::current() {
            span.record("request_id", id.as_str());
            span.record("correlation_id", id.as_str());
        }
        span
    }

    fn on_request_end<B: actix_web::body::MessageBody>(
        span: Span,
        outcome: &Result<ServiceResponse<B>, actix_web::Error>,
    ) {
        DefaultRootSpanBuilder::on_request_end(span, outcome);
    }
}

/// The HTTP version as OpenTelemetry's `http.flavor` names it.
fn flavor(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "0.9",
        Version::HTTP_10 => "1.0",
        Version::HTTP_11 => "1.1",
        Version::HTTP_2 => "2.0",
        Version::HTTP_3 => "3.0",
        _ => "unknown",
    }
}
