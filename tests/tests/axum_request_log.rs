//! The request-log rows against the axum adapter, with the demo's configuration.

correlation_conformance::request_log_suite!(
    correlation_conformance::servers::axum::start,
    example_axum::config
);
