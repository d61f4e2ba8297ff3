//! Starts the actix demo app.

use std::sync::mpsc;
use std::thread;

use actix_web::HttpServer;
use correlation_core::CorrelationConfig;

use crate::TestServer;

/// Workers of the test server: several, so concurrent requests cross worker threads.
const WORKERS: usize = 4;

/// Serves `example_actix::app(config)` on `127.0.0.1:0` with several workers.
///
/// actix runs its own system (an arbiter per worker, each a current-thread tokio runtime
/// in a `LocalSet`), so the server lives on a thread of its own with its own
/// `actix_web::rt::System`, not on the test's tokio runtime. Dropping the returned
/// [`TestServer`] stops the server and waits for that thread.
///
/// Installs `correlation_core::install_panic_hook`, as the demo's `main` does.
pub async fn start(config: CorrelationConfig) -> TestServer {
    correlation_core::install_panic_hook();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (handle_tx, handle_rx) = mpsc::channel();
    let thread = thread::Builder::new()
        .name(format!("actix-test-server-{}", addr.port()))
        .spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let server = HttpServer::new(move || example_actix::app(config.clone()))
                    .workers(WORKERS)
                    .disable_signals()
                    .shutdown_timeout(1)
                    .listen(listener)?
                    .run();
                // The receiver waits for this; it only fails if the test is gone already.
                let _ = handle_tx.send(server.handle());
                server.await
            })
        })
        .unwrap();
    let Ok(handle) = handle_rx.recv() else {
        panic!("the actix server failed to start: {:?}", thread.join());
    };
    TestServer::new(addr, move || {
        // `stop` sends the command at once; the returned future only waits for it.
        drop(handle.stop(false));
        let _ = thread.join();
    })
}
