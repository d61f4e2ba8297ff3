//! The current OpenTelemetry trace ID as the correlation ID.

use std::fmt;

use opentelemetry::baggage::BaggageExt;
use opentelemetry::trace::TraceContextExt;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::{IdGenerator, UuidV4};
use crate::id::{CorrelationId, InvalidCorrelationId};

/// A generator that uses the trace ID of the current OpenTelemetry span context as the
/// correlation ID, so logs, traces and the response header share one ID; where there is
/// none, it falls back to another generator (by default [`UuidV4`]).
///
/// The span context is the one tracing-opentelemetry gives the current `tracing` span
/// (an OpenTelemetry-instrumented tower-http `TraceLayer` or tracing-actix-web's
/// `TracingLogger` outside our middleware opens it, continuing an incoming `traceparent`
/// when its propagator is set), or else OpenTelemetry's own current context. Trace IDs are
/// 32 lowercase hex digits: pair this generator with a validator that accepts them, such as
/// [`Hex32`](crate::strategy::Hex32), when callers send them back.
///
/// ```
/// use correlation_core::CorrelationConfig;
/// use correlation_core::strategy::{Hex32, OpenTelemetryTraceId};
///
/// let config = CorrelationConfig::builder()
///     .generator(OpenTelemetryTraceId::new())
///     .validator(Hex32)
///     .build()?;
/// # Ok::<(), correlation_core::ConfigError>(())
/// ```
#[derive(Clone, Copy, Default)]
pub struct OpenTelemetryTraceId<G = UuidV4> {
    fallback: G,
}

impl OpenTelemetryTraceId {
    /// Falls back to [`UuidV4`] outside a valid span context.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }
}

impl<G: IdGenerator> OpenTelemetryTraceId<G> {
    /// Falls back to `fallback` outside a valid span context.
    #[must_use]
    pub fn with_fallback(fallback: G) -> Self {
        Self { fallback }
    }
}

/// The trace ID of the current span context, if it is valid (not all zeros).
fn current_trace_id() -> Option<String> {
    let from_tracing = tracing::Span::current().context();
    let from_tracing = from_tracing.span();
    let span_context = from_tracing.span_context();
    if span_context.is_valid() {
        return Some(span_context.trace_id().to_string());
    }
    let current = opentelemetry::Context::current();
    let span_context = current.span().span_context().clone();
    span_context
        .is_valid()
        .then(|| span_context.trace_id().to_string())
}

impl<G: IdGenerator> IdGenerator for OpenTelemetryTraceId<G> {
    fn generate(&self) -> Result<CorrelationId, InvalidCorrelationId> {
        match current_trace_id() {
            Some(trace_id) => CorrelationId::try_from(trace_id),
            None => self.fallback.generate(),
        }
    }
}

impl<G> fmt::Debug for OpenTelemetryTraceId<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenTelemetryTraceId")
            .field("fallback", &std::any::type_name::<G>())
            .finish()
    }
}

/// The values OpenTelemetry's current baggage holds under `keys`, in their order: from
/// the context tracing-opentelemetry gives the current `tracing` span first, then
/// OpenTelemetry's own current context, so that a caller's baggage extracted by an
/// OpenTelemetry propagator outside our middleware agrees with the fields.
pub(crate) fn current_baggage(keys: &[Box<str>]) -> Vec<(String, String)> {
    let contexts = [
        tracing::Span::current().context(),
        opentelemetry::Context::current(),
    ];
    keys.iter()
        .filter_map(|key| {
            let value = contexts
                .iter()
                .find_map(|context| context.baggage().get(&**key))?;
            Some((key.to_string(), value.as_str().to_owned()))
        })
        .collect()
}
