//! The conformance suite: one table of scenarios, run over real HTTP against every
//! adapter's demo server (the demo contract), with log output captured in memory.
//!
//! Each adapter has a starter in [`servers`] and a test file in `tests/` that expands
//! [`conformance_suite!`] with it, so every scenario runs once per adapter. The
//! request-log rows, which need the demos' output filter in front of the capture, run in
//! test binaries of their own (`tests/<framework>_request_log.rs`, [`request_log_suite!`]).

use std::fmt;
use std::net::SocketAddr;

pub mod client;
pub mod fields;
pub mod request_log;
pub mod scenarios;
pub mod servers;

/// A demo server listening on `127.0.0.1` with a port the OS chose; stopped on drop.
pub struct TestServer {
    /// Where the server listens.
    pub addr: SocketAddr,
    shutdown: Option<Box<dyn FnOnce() + Send>>,
}

impl TestServer {
    /// Wraps a started server; `shutdown` stops it and is called on drop.
    pub fn new(addr: SocketAddr, shutdown: impl FnOnce() + Send + 'static) -> Self {
        Self {
            addr,
            shutdown: Some(Box::new(shutdown)),
        }
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `ws://127.0.0.1:<port><path>`.
    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{path}", self.addr)
    }
}

impl fmt::Debug for TestServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            shutdown();
        }
    }
}
