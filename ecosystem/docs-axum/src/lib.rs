//! An axum application that depends on `correlation-axum` alone among our crates, with what the
//! documents tell a user to add beside it. It has no code of its own: its doc tests are the
//! README's axum examples and `correlation-axum`'s doc examples, which its build script copies here, so
//! each compiles with exactly this application's crates in scope
//! (`cargo test -p correlation-docs-axum`). Its `promises` test runs those that promise a
//! log line and checks the line is printed. See `correlation_docs_check`.

// An unused import in an example is one a reader pastes for nothing.
#![doc(test(attr(deny(unused_imports))))]

/// The examples, one item each, named after the file and line they are written at.
#[cfg(doctest)]
pub mod examples {
    include!(concat!(env!("OUT_DIR"), "/doctests.rs"));
}
