//! The conformance table against the axum adapter.

correlation_conformance::conformance_suite!(
    correlation_conformance::servers::axum::start,
    example_axum::config
);
