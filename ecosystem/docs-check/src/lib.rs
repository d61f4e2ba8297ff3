//! The check that every Rust example of the README and of an adapter's crate docs works
//! when pasted into an application that depends on that adapter alone.
//!
//! Each of `ecosystem/docs-axum`, `docs-actix` and `docs-poem` is such an application: it
//! depends on one adapter (never on `correlation-core`) and on the crates the documents
//! tell a user to add. Its build script calls [`generate`], which finds the examples and
//! writes them out twice:
//!
//! - as doc tests of that application, so `cargo test -p correlation-docs-<adapter>`
//!   compiles each one (and runs those rustdoc runs) with exactly that application's
//!   crates in scope: an example that names `correlation_core::` without going through the
//!   adapter fails to compile there;
//! - the examples that promise a log line (`// prints: <line>`) as modules of the
//!   application's `promises` test, whose `main` is [`run::main`]: it runs each of them in a
//!   process of its own and fails unless the promised line is printed.
//!
//! A README example goes to the application of the one adapter it names. See
//! CONTRIBUTING.md ("Examples that work when pasted") for the rules an example follows.

mod extract;
pub mod run;

pub use extract::generate;
