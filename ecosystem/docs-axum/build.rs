//! Writes the README's axum examples and correlation-axum's doc examples out as this crate's
//! doc tests and as the modules of its `promises` test.

fn main() {
    correlation_docs_check::generate("axum");
}
