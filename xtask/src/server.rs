//! Building and starting the demo servers (`cargo run --example axum|actix|poem`), shared
//! by the `demo`, `browser`, `load` and `soak` tasks.

use std::io::{BufRead, BufReader, Read};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use xshell::{Shell, cmd};

/// The demo servers, one per adapter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Framework {
    Axum,
    Actix,
    Poem,
}

impl Framework {
    /// Every demo, in the order the tasks run them.
    pub(crate) const ALL: [Self; 3] = [Self::Axum, Self::Actix, Self::Poem];

    /// The example's name, as in `cargo run --example <name>`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Axum => "axum",
            Self::Actix => "actix",
            Self::Poem => "poem",
        }
    }
}

impl FromStr for Framework {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> anyhow::Result<Self> {
        match s {
            "axum" => Ok(Self::Axum),
            "actix" => Ok(Self::Actix),
            "poem" => Ok(Self::Poem),
            other => bail!("unknown framework {other:?}: expected axum, actix or poem"),
        }
    }
}

/// The cargo profile a demo is built with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Profile {
    Debug,
    Release,
}

impl Profile {
    fn dir(self) -> &'static str {
        match self {
            Self::Debug => "debug",
            Self::Release => "release",
        }
    }
}

/// Builds the demos of `frameworks` with one `cargo build --locked` call.
pub(crate) fn build(sh: &Shell, frameworks: &[Framework], profile: Profile) -> anyhow::Result<()> {
    let mut args = Vec::new();
    for framework in frameworks {
        args.push("--example");
        args.push(framework.name());
    }
    if profile == Profile::Release {
        args.push("--release");
    }
    cmd!(sh, "cargo build --locked {args...}").run()?;
    Ok(())
}

/// Where cargo puts the built demo binary.
fn binary(framework: Framework, profile: Profile) -> PathBuf {
    target_dir()
        .join(profile.dir())
        .join("examples")
        .join(framework.name())
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::project_root().join("target"))
}

/// A port on 127.0.0.1 that was free a moment ago.
pub(crate) fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

/// What happens to a running demo's standard output and error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Output {
    /// Kept line by line, returned by [`Server::stop`].
    Collect,
    /// Thrown away (long runs that would otherwise keep every log line).
    Discard,
}

/// A demo server running on 127.0.0.1; killed when stopped or dropped.
#[derive(Debug)]
pub(crate) struct Server {
    child: Child,
    addr: SocketAddr,
    readers: Vec<thread::JoinHandle<()>>,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// Starts the built demo of `framework` on a free port with `RUST_LOG=info` unless
    /// `env` says otherwise, and waits until it accepts connections.
    pub(crate) fn start(
        framework: Framework,
        profile: Profile,
        env: &[(&str, &str)],
        output: Output,
    ) -> anyhow::Result<Self> {
        let binary = binary(framework, profile);
        let port = free_port()?;
        let (stdout, stderr) = match output {
            Output::Collect => (Stdio::piped(), Stdio::piped()),
            Output::Discard => (Stdio::null(), Stdio::null()),
        };
        let mut child = Command::new(&binary)
            .env("PORT", port.to_string())
            .env("RUST_LOG", "info")
            .env("RUST_BACKTRACE", "0")
            .envs(env.iter().copied())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let lines = Arc::new(Mutex::new(Vec::new()));
        let readers = [
            collect_lines(
                child
                    .stdout
                    .take()
                    .map(|s| Box::new(s) as Box<dyn Read + Send>),
                &lines,
            ),
            collect_lines(
                child
                    .stderr
                    .take()
                    .map(|s| Box::new(s) as Box<dyn Read + Send>),
                &lines,
            ),
        ];
        let mut server = Self {
            child,
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            readers: readers.into_iter().flatten().collect(),
            lines,
        };
        if let Err(err) = server.wait_until_listening() {
            let lines = server.stop();
            bail!(
                "{err:#}; the {} demo printed:\n{}",
                framework.name(),
                lines.join("\n")
            );
        }
        Ok(server)
    }

    /// The server's address, `127.0.0.1:<port>`.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The server's process ID.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the server and returns the lines it printed (none with [`Output::Discard`]).
    pub(crate) fn stop(mut self) -> Vec<String> {
        self.kill();
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        self.lines.lock().map(|l| l.clone()).unwrap_or_default()
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn wait_until_listening(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                bail!("the demo server exited ({status}) before listening");
            }
            if TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            thread::sleep(Duration::from_millis(50));
        }
        bail!(
            "the demo server did not listen on {} within 60 s",
            self.addr
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

fn collect_lines(
    output: Option<Box<dyn Read + Send>>,
    lines: &Arc<Mutex<Vec<String>>>,
) -> Option<thread::JoinHandle<()>> {
    let output = output?;
    let lines = Arc::clone(lines);
    Some(thread::spawn(move || {
        for line in BufReader::new(output).lines().map_while(Result::ok) {
            if let Ok(mut lines) = lines.lock() {
                lines.push(line);
            }
        }
    }))
}

/// The resident memory of process `pid` in KiB (`VmRSS` in `/proc/<pid>/status`).
pub(crate) fn resident_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no VmRSS in /proc/{pid}/status"))
}
