//! The conformance table against the actix adapter.

correlation_conformance::conformance_suite!(
    correlation_conformance::servers::actix::start,
    example_actix::config
);
