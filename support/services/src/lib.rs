//! The local services the integration tests run against, and one rule for a service that
//! is not running.
//!
//! A test that needs a service starts with [`Service::require`]:
//!
//! ```no_run
//! use correlation_test_services::Service;
//!
//! let Some(redis) = Service::Redis.require() else { return };
//! let url = redis.url(); // redis://127.0.0.1:6379
//! ```
//!
//! When the service accepts connections, the test runs against it. When it does not, the
//! test fails with a message naming the service and how to start it, unless the service is
//! listed in `CORRELATION_SKIP_SERVICES` (comma-separated names, as [`Service::name`] spells
//! them): then it prints a notice and returns, so the test passes without running.
//! `cargo xtask ci` sets that variable for the services it finds missing on a developer's
//! machine, with a notice for each; it never does when `CI` is set, so in CI a missing
//! service fails the run.

use std::fmt;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// The environment variable listing services whose tests are skipped when unreachable.
pub const SKIP_VARIABLE: &str = "CORRELATION_SKIP_SERVICES";

/// How long one connection attempt may take: the services are on this machine.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// A service the integration tests use, at its standard local address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// PostgreSQL, trust authentication, database `test`, user `postgres`.
    Postgres,
    /// Redis.
    Redis,
    /// RabbitMQ (AMQP 0-9-1), user `guest`, password `guest`.
    RabbitMq,
    /// NATS with JetStream.
    Nats,
    /// Mosquitto (MQTT 3.1.1 and 5).
    Mosquitto,
}

impl Service {
    /// Every service, in the order `cargo xtask ci` reports them.
    pub const ALL: [Service; 5] = [
        Service::Postgres,
        Service::Redis,
        Service::RabbitMq,
        Service::Nats,
        Service::Mosquitto,
    ];

    /// The name used in messages and in [`SKIP_VARIABLE`].
    pub fn name(self) -> &'static str {
        match self {
            Service::Postgres => "postgres",
            Service::Redis => "redis",
            Service::RabbitMq => "rabbitmq",
            Service::Nats => "nats",
            Service::Mosquitto => "mosquitto",
        }
    }

    /// The address it listens on.
    pub fn addr(self) -> SocketAddr {
        let port = match self {
            Service::Postgres => 5432,
            Service::Redis => 6379,
            Service::RabbitMq => 5672,
            Service::Nats => 4222,
            Service::Mosquitto => 1883,
        };
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    /// The URL a client connects with.
    pub fn url(self) -> String {
        let addr = self.addr();
        match self {
            Service::Postgres => format!("postgres://postgres@{addr}/test"),
            Service::Redis => format!("redis://{addr}"),
            Service::RabbitMq => format!("amqp://guest:guest@{addr}/%2f"),
            Service::Nats => format!("nats://{addr}"),
            Service::Mosquitto => format!("mqtt://{addr}"),
        }
    }

    /// How a developer gets it (Debian's packages, as on our machines).
    pub fn install_hint(self) -> &'static str {
        match self {
            Service::Postgres => {
                "apt-get install -y postgresql, then create the database: createdb -U postgres test"
            }
            Service::Redis => "apt-get install -y redis-server",
            Service::RabbitMq => "apt-get install -y rabbitmq-server",
            Service::Nats => "apt-get install -y nats-server, started with -js (JetStream)",
            Service::Mosquitto => "apt-get install -y mosquitto",
        }
    }

    /// Whether it accepts TCP connections now.
    pub fn is_reachable(self) -> bool {
        TcpStream::connect_timeout(&self.addr(), CONNECT_TIMEOUT).is_ok()
    }

    /// The service if it is reachable; `None` (after a notice on stderr) if it is not and
    /// [`SKIP_VARIABLE`] lists it.
    ///
    /// # Panics
    ///
    /// When it is not reachable and not listed: the message names the service, its
    /// address and how to install it.
    pub fn require(self) -> Option<Self> {
        if self.is_reachable() {
            return Some(self);
        }
        let skipped = std::env::var(SKIP_VARIABLE).unwrap_or_default();
        if skipped.split(',').any(|name| name.trim() == self.name()) {
            eprintln!(
                "skipped: {self} is not reachable at {} ({SKIP_VARIABLE} lists it)",
                self.addr()
            );
            return None;
        }
        panic!(
            "{self} is not reachable at {}: this test needs it running ({}); \
             without it, set {SKIP_VARIABLE}={} to skip it",
            self.addr(),
            self.install_hint(),
            self.name()
        );
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Service::Postgres => "PostgreSQL",
            Service::Redis => "Redis",
            Service::RabbitMq => "RabbitMQ",
            Service::Nats => "NATS",
            Service::Mosquitto => "Mosquitto",
        })
    }
}

/// A name unique to this test process and call, for queues, subjects, key prefixes and
/// schemas, so concurrent runs never share broker state.
pub fn unique_name(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.subsec_nanos());
    format!(
        "{prefix}_{}_{nanos}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

#[cfg(test)]
mod tests {
    use super::{Service, unique_name};

    #[test]
    fn unique_names_differ_within_a_process() {
        assert_ne!(unique_name("queue"), unique_name("queue"));
        assert!(unique_name("queue").starts_with("queue_"));
    }

    #[test]
    fn every_service_has_its_own_port_and_name() {
        let mut ports: Vec<u16> = Service::ALL.iter().map(|s| s.addr().port()).collect();
        ports.dedup();
        assert_eq!(ports.len(), Service::ALL.len());
        assert!(Service::ALL.iter().all(|s| !s.name().contains(',')));
    }
}
