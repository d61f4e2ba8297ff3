//! The conformance table against the poem adapter.

correlation_conformance::conformance_suite!(
    correlation_conformance::servers::poem::start,
    example_poem::config
);
