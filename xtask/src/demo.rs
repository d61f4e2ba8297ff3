//! `cargo xtask demo [axum|actix|poem]`: builds and starts a demo server, sends it a
//! handful of concurrent requests (with a valid ID, without one, with a hostile one, with
//! a W3C `traceparent` only),
//! stops it, and prints its log lines grouped by correlation ID.

use std::net::SocketAddr;
use std::thread;
use std::time::Duration;

use anyhow::{Context, bail};
use xshell::Shell;

pub(crate) use crate::server::Framework;
use crate::server::{Output, Profile, Server};

/// The request the demo sends: what it shows, where, and the raw correlation header.
struct DemoRequest {
    label: &'static str,
    path: &'static str,
    id: Option<&'static str>,
    /// A W3C `traceparent` the caller sends; its trace ID becomes the request's ID when no
    /// `x-request-id` is sent.
    traceparent: Option<&'static str>,
}

/// The trace ID of [`TRACEPARENT`].
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

const HOSTILE_ID: &str = "<script>alert(1)</script>\t'; DROP TABLE logs; --";

const REQUESTS: &[DemoRequest] = &[
    DemoRequest {
        label: "no ID",
        path: "/",
        id: None,
        traceparent: None,
    },
    DemoRequest {
        label: "no ID",
        path: "/",
        id: None,
        traceparent: None,
    },
    DemoRequest {
        label: "valid ID",
        path: "/spawn",
        id: Some("3758c31e-1177-4540-ba33-0109c405579a"),
        traceparent: None,
    },
    DemoRequest {
        label: "valid ID",
        path: "/blocking",
        id: Some("9e6454c421d54e4aa66ab28f15576414"),
        traceparent: Some(TRACEPARENT),
    },
    DemoRequest {
        label: "hostile ID",
        path: "/",
        id: Some(HOSTILE_ID),
        traceparent: None,
    },
    DemoRequest {
        label: "traceparent",
        path: "/",
        id: None,
        traceparent: Some(TRACEPARENT),
    },
    DemoRequest {
        label: "no ID",
        path: "/error",
        id: None,
        traceparent: None,
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
        crate::server::build(sh, &[self.framework], Profile::Debug)?;
        let server = Server::start(self.framework, Profile::Debug, &[], Output::Collect)?;
        eprintln!("xtask: started the {name} demo on {}", server.addr());
        let outcome = exercise(server.addr());
        let lines = server.stop();
        let responses = outcome?;
        report(&responses, &lines)
    }
}

/// What one demo request got back.
struct DemoResponse {
    request: &'static DemoRequest,
    status: u16,
    id: String,
}

fn exercise(addr: SocketAddr) -> anyhow::Result<Vec<DemoResponse>> {
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let senders: Vec<_> = REQUESTS
        .iter()
        .map(|request| {
            let client = client.clone();
            thread::spawn(move || send(&client, addr, request))
        })
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

fn send(
    client: &reqwest::blocking::Client,
    addr: SocketAddr,
    request: &'static DemoRequest,
) -> anyhow::Result<DemoResponse> {
    let mut builder = client.get(format!("http://{addr}{}", request.path));
    if let Some(id) = request.id {
        builder = builder.header("x-request-id", id);
    }
    if let Some(traceparent) = request.traceparent {
        builder = builder.header("traceparent", traceparent);
    }
    let response = builder
        .send()
        .with_context(|| format!("GET {}", request.path))?;
    let id = response
        .headers()
        .get("x-request-id")
        .and_then(|id| id.to_str().ok())
        .with_context(|| format!("no x-request-id on the response to {}", request.path))?
        .to_owned();
    Ok(DemoResponse {
        request,
        status: response.status().as_u16(),
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
        let expected = match response.request {
            DemoRequest { id: Some(id), .. } if *id != HOSTILE_ID => Some(*id),
            DemoRequest {
                id: None,
                traceparent: Some(_),
                ..
            } => Some(TRACE_ID),
            _ => None,
        };
        if let Some(expected) = expected
            && response.id != expected
        {
            bail!(
                "GET {} ({}) got the ID {} instead of {expected}",
                response.request.path,
                response.request.label,
                response.id
            );
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
    println!(
        "Every request's lines share its ID; a caller's traceparent gave its trace ID, and the hostile ID was replaced and never logged."
    );
    Ok(())
}
