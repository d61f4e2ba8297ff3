//! The request-log rows against the poem adapter, with the demo's configuration.

correlation_conformance::request_log_suite!(
    correlation_conformance::servers::poem::start,
    example_poem::config
);
