//! Runs the examples that promise a log line and checks that they print it
//! (`correlation_docs_check::run`).

/// Sends one `GET /` to the `app` an example builds without serving it.
macro_rules! request {
    ($app:expr) => {
        actix_web::rt::System::new().block_on(async {
            let app = actix_web::test::init_service($app).await;
            let request = actix_web::test::TestRequest::get().uri("/").to_request();
            actix_web::test::call_service(&app, request).await
        })
    };
}

include!(concat!(env!("OUT_DIR"), "/promises.rs"));

fn main() -> std::process::ExitCode {
    correlation_docs_check::run::main(SNIPPETS)
}
