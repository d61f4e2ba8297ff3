//! `cargo xtask demo [axum|actix|poem]`: builds and starts a demo server, sends it a
//! handful of concurrent requests (with a valid ID, without one, with a hostile one),
//! stops it, and prints its log lines grouped by correlation ID.

use std::io::{BufRead, BufReader, Read, Write};
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
#[derive(Clone, Copy, Debug)]
pub(crate) enum Framework {
    Axum,
    Actix,
    Poem,
}

impl Framework {
    fn name(self) -> &'static str {
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

/// The request the demo sends: what it shows, where, and the raw correlation header.
struct DemoRequest {
    label: &'static str,
    path: &'static str,
    id: Option<&'static str>,
}

const HOSTILE_ID: &str = "<script>alert(1)</script>\t'; DROP TABLE logs; --";

const REQUESTS: &[DemoRequest] = &[
    DemoRequest {
        label: "no ID",
        path: "/",
        id: None,
    },
    DemoRequest {
        label: "no ID",
        path: "/",
        id: None,
    },
    DemoRequest {
        label: "valid ID",
        path: "/spawn",
        id: Some("3758c31e-1177-4540-ba33-0109c405579a"),
    },
    DemoRequest {
        label: "valid ID",
        path: "/blocking",
        id: Some("9e6454c421d54e4aa66ab28f15576414"),
    },
    DemoRequest {
        label: "hostile ID",
        path: "/",
        id: Some(HOSTILE_ID),
    },
    DemoRequest {
        label: "no ID",
        path: "/error",
        id: None,
    },
];

/// Runs one demo server end to end.
pub(crate) struct Demo {
    framework: Framework,
}

impl Demo {
    pub(crate) fn new(framework: Framework) -> Self {
        Self { framework }
    }

    pub(crate) fn run(&self, sh: &Shell) -> anyhow::Result<()> {
        let name = self.framework.name();
        cmd!(sh, "cargo build --locked --example {name}").run()?;
        let binary = target_dir().join("debug/examples").join(name);
        let port = free_port()?;
        eprintln!("xtask: starting the {name} demo on 127.0.0.1:{port}");
        let mut server = Command::new(&binary)
            .env("PORT", port.to_string())
            .env("RUST_LOG", "info")
            .env("RUST_BACKTRACE", "0")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let lines = Arc::new(Mutex::new(Vec::new()));
        let readers = [
            collect_lines(
                server
                    .stdout
                    .take()
                    .map(|s| Box::new(s) as Box<dyn Read + Send>),
                &lines,
            ),
            collect_lines(
                server
                    .stderr
                    .take()
                    .map(|s| Box::new(s) as Box<dyn Read + Send>),
                &lines,
            ),
        ];
        let outcome = exercise(port);
        stop(&mut server);
        for reader in readers.into_iter().flatten() {
            let _ = reader.join();
        }
        let responses = outcome?;
        let lines = lines.lock().map(|l| l.clone()).unwrap_or_default();
        report(&responses, &lines)
    }
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::project_root().join("target"))
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
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

fn stop(server: &mut Child) {
    let _ = server.kill();
    let _ = server.wait();
}

/// What one demo request got back.
struct DemoResponse {
    request: &'static DemoRequest,
    status: u16,
    id: String,
}

fn exercise(port: u16) -> anyhow::Result<Vec<DemoResponse>> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    wait_until_listening(addr)?;
    let senders: Vec<_> = REQUESTS
        .iter()
        .map(|request| thread::spawn(move || send(addr, request)))
        .collect();
    let mut responses = Vec::new();
    for sender in senders {
        let response = sender
            .join()
            .map_err(|_| anyhow::anyhow!("a request thread panicked"))??;
        responses.push(response);
    }
    // Let the server flush the lines of work that finishes after its response.
    thread::sleep(Duration::from_millis(300));
    Ok(responses)
}

fn wait_until_listening(addr: SocketAddr) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        thread::sleep(Duration::from_millis(100));
    }
    bail!("the demo server did not listen on {addr} within 60 s")
}

fn send(addr: SocketAddr, request: &'static DemoRequest) -> anyhow::Result<DemoResponse> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut head = format!(
        "GET {} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n",
        request.path
    );
    if let Some(id) = request.id {
        head.push_str(&format!("x-request-id: {id}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .with_context(|| format!("no status line in the response to {}", request.path))?;
    let id = text
        .lines()
        .take_while(|line| !line.is_empty())
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("x-request-id")
                .then(|| value.trim().to_owned())
        })
        .with_context(|| format!("no x-request-id on the response to {}", request.path))?;
    Ok(DemoResponse {
        request,
        status,
        id,
    })
}

/// The ID a log line shows between its first pair of brackets.
fn line_id(line: &str) -> Option<&str> {
    let start = line.find(" [")? + 2;
    let end = start + line[start..].find(']')?;
    Some(&line[start..end])
}

fn report(responses: &[DemoResponse], lines: &[String]) -> anyhow::Result<()> {
    println!("\nResponses:");
    for response in responses {
        println!(
            "  GET {:<10} {:<11} -> {}  x-request-id: {}",
            response.request.path, response.request.label, response.status, response.id
        );
    }
    let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
    for line in lines {
        let Some(id) = line_id(line) else { continue };
        match groups.iter_mut().find(|(group, _)| *group == id) {
            Some((_, members)) => members.push(line),
            None => groups.push((id, vec![line])),
        }
    }
    println!("\nServer log lines, grouped by correlation ID:");
    for (id, members) in &groups {
        let title = if *id == "-" {
            "outside any request".to_owned()
        } else {
            id.to_string()
        };
        println!("\n  [{title}]");
        for line in members {
            println!("    {line}");
        }
    }
    println!();
    if lines.iter().any(|line| line.contains("<script>")) {
        bail!("the hostile ID reached a log line");
    }
    for response in responses {
        if response.id.contains("<script>") {
            bail!("the hostile ID was echoed");
        }
        if !groups.iter().any(|(id, _)| *id == response.id) {
            bail!(
                "no log line carries the ID {} of GET {}",
                response.id,
                response.request.path
            );
        }
    }
    if !groups.iter().any(|(id, _)| *id == "-") {
        bail!("the start-up line outside any request (`[-]`) is missing");
    }
    println!("Every request's lines share its ID; the hostile ID was replaced and never logged.");
    Ok(())
}
