//! The request-log rows against the actix adapter, with the demo's configuration.

correlation_conformance::request_log_suite!(
    correlation_conformance::servers::actix::start,
    example_actix::config
);
