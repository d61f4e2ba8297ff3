//! Writes the README's poem examples and correlation-poem's doc examples out as this crate's
//! doc tests and as the modules of its `promises` test.

fn main() {
    correlation_docs_check::generate("poem");
}
