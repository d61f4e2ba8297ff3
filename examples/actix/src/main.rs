//! Run with
//!
//! ```sh
//! cargo run --example actix
//! ```
//!
//! then `curl -i localhost:8080/` and watch every log line of the request carry its ID,
//! actix-web's access-log line included. `PORT` sets the port (default 8080) and
//! `RUST_LOG` the level (default `info`). `curl localhost:8080/error` also writes the DEBUG
//! lines the failed request kept, and `curl -H 'X-Debug-Log: debug' localhost:8080/` writes
//! those of a request that succeeds; `curl -H 'baggage: tenant=acme' localhost:8080/` puts
//! `tenant=acme` on its lines.

use actix_web::HttpServer;
use correlation_core::request_log::RequestLogger;

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let config = example_actix::config();
    // env_logger writes every record it is given, in our format; `RequestLogger` decides
    // which: INFO and above (or what `RUST_LOG` says), a request's DEBUG lines when it
    // fails, and everything of a request its caller raised.
    let backend = env_logger::Builder::new()
        .format(correlation_core::format)
        .filter_level(log::LevelFilter::Trace)
        .build();
    RequestLogger::new(backend)
        .parse_filters("info")
        .parse_env("RUST_LOG")
        .init(&config)
        .map_err(std::io::Error::other)?;
    // Every panic logged on one line under its request's ID (`CatchPanic` then answers 500).
    correlation_core::install_panic_hook();
    let port: u16 = match std::env::var("PORT") {
        Ok(port) => port.parse().map_err(std::io::Error::other)?,
        Err(_) => 8080,
    };
    let server =
        HttpServer::new(move || example_actix::app(config.clone())).bind(("127.0.0.1", port))?;
    for addr in server.addrs() {
        log::info!("actix demo listening on http://{addr}");
    }
    server.run().await
}
