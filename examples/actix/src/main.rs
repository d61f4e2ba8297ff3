//! Run with
//!
//! ```sh
//! cargo run --example actix
//! ```
//!
//! then `curl -i localhost:8080/` and watch every log line of the request carry its ID,
//! actix-web's access-log line included. `PORT` sets the port (default 8080) and
//! `RUST_LOG` the level (default `info`).

use actix_web::HttpServer;

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    env_logger::Builder::new()
        .format(correlation_core::format)
        .parse_filters(&std::env::var("RUST_LOG").unwrap_or_else(|_| "info".to_owned()))
        .init();
    // Every panic logged on one line under its request's ID (`CatchPanic` then answers 500).
    correlation_core::install_panic_hook();
    let port: u16 = match std::env::var("PORT") {
        Ok(port) => port.parse().map_err(std::io::Error::other)?,
        Err(_) => 8080,
    };
    let config = example_actix::config();
    let server =
        HttpServer::new(move || example_actix::app(config.clone())).bind(("127.0.0.1", port))?;
    for addr in server.addrs() {
        log::info!("actix demo listening on http://{addr}");
    }
    server.run().await
}
