//! Starts the poem demo app.

use correlation_core::CorrelationConfig;
use poem::listener::{Acceptor, Listener, TcpListener};

use crate::TestServer;

/// Serves `example_poem::app(config)` on `127.0.0.1:0` on the test's tokio runtime.
///
/// Installs `correlation_core::install_panic_hook`, as the demo's `main` does.
pub async fn start(config: CorrelationConfig) -> TestServer {
    correlation_core::install_panic_hook();
    let acceptor = TcpListener::bind("127.0.0.1:0")
        .into_acceptor()
        .await
        .unwrap();
    let addr = acceptor.local_addr()[0]
        .as_socket_addr()
        .copied()
        .expect("a TCP listener has a socket address");
    // The server task itself runs outside any request.
    #[allow(clippy::disallowed_methods)]
    let server = tokio::spawn(async move {
        poem::Server::new_with_acceptor(acceptor)
            .run(example_poem::app(config))
            .await
            .unwrap();
    });
    TestServer::new(addr, move || server.abort())
}
