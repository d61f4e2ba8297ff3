//! Runs the examples that promise a log line and checks that they print it
//! (`correlation_docs_check::run`).

/// Sends one `GET /` to the `app` an example builds without serving it.
macro_rules! request {
    ($app:expr) => {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime")
            .block_on(tower::ServiceExt::oneshot(
                $app,
                axum::http::Request::get("/")
                    .body(axum::body::Body::empty())
                    .expect("a request"),
            ))
            .expect("axum answers")
    };
}

include!(concat!(env!("OUT_DIR"), "/promises.rs"));

fn main() -> std::process::ExitCode {
    correlation_docs_check::run::main(SNIPPETS)
}
