//! Runs the examples that promise a log line and checks that they print it
//! (`correlation_docs_check::run`).

/// Sends one `GET /` to the `app` an example builds without serving it.
macro_rules! request {
    ($app:expr) => {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime")
            .block_on(poem::Endpoint::get_response(
                &$app,
                poem::Request::builder()
                    .uri(poem::http::Uri::from_static("/"))
                    .finish(),
            ))
    };
}

include!(concat!(env!("OUT_DIR"), "/promises.rs"));

fn main() -> std::process::ExitCode {
    correlation_docs_check::run::main(SNIPPETS)
}
