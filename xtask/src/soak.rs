//! `cargo xtask soak [--requests N]`: N requests (default 1,000,000) through each demo
//! (release build, logging at `info` to /dev/null) on 127.0.0.1, mixed: a valid ID
//! (a different one each time), no ID, and hostile values, over `/`, `/id`, `/header`,
//! `/spawn` and `/blocking`, sent with `reqwest`'s blocking client. Reads the server's resident memory (`VmRSS`) after a
//! warm-up of [`WARM_UP`] requests and at the end, and fails if it grew by more than
//! 5 MB, or if any response is wrong. Not part of CI.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use xshell::Shell;

use crate::server::{Framework, Output, Profile, Server, resident_kib};

/// Requests before the first memory reading.
const WARM_UP: u64 = 50_000;

/// The allowed growth of resident memory after warm-up, in KiB (5 MB).
const LIMIT_KIB: u64 = 5 * 1024;

/// Client connections, one thread each.
const CONNECTIONS: u64 = 16;

/// Requests on one connection before it is closed and a new one opened.
const REQUESTS_PER_CONNECTION: u64 = 10_000;

const PATHS: &[&str] = &["/", "/id", "/header", "/spawn", "/blocking"];

/// Values the middleware must replace; each one an HTTP parser lets through.
const HOSTILE: &[&[u8]] = &[
    b"not-a-uuid",
    b"3758c31e\t1177-4540-ba33-0109c405579a",
    b"\xff\xfe9e6454c421d54e4aa66ab28f15576414",
    b"abc%0d%0aSet-Cookie:%20x=1",
    b"<script>alert(1)</script>",
    b"{\"id\":\"1\",\"level\":\"ERROR\"}",
    b"00000000000000000000000000000000",
    b"a8098c1a-f86e-11da-bd1a-00112444be1e",
    b"1x1x1x1x1x1x1x1x1x1x1x1x1x1x1x1x",
    b"%1b[31mred%1b[0m",
];

/// Soaks every demo with `requests` requests each.
pub(crate) fn run(sh: &Shell, requests: u64) -> anyhow::Result<()> {
    if requests <= WARM_UP {
        bail!("--requests must be more than the {WARM_UP} warm-up requests");
    }
    crate::server::build(sh, &Framework::ALL, Profile::Release)?;
    let mut failures = Vec::new();
    let mut rows = Vec::new();
    for framework in Framework::ALL {
        let row = soak(framework, requests)?;
        if row.growth_kib() > LIMIT_KIB as i64 {
            failures.push(format!(
                "{}: resident memory grew by {} KiB",
                framework.name(),
                row.growth_kib()
            ));
        }
        rows.push(row);
    }
    println!(
        "\n| demo | requests | after {WARM_UP} (warm-up) | at the end | growth | requests/s |"
    );
    println!("|---|---|---|---|---|---|");
    for row in &rows {
        println!(
            "| {} | {} | {:.1} MiB | {:.1} MiB | {:+.2} MiB | {:.0} |",
            row.framework.name(),
            row.requests,
            row.warm_kib as f64 / 1024.0,
            row.end_kib as f64 / 1024.0,
            row.growth_kib() as f64 / 1024.0,
            row.requests as f64 / row.elapsed.as_secs_f64(),
        );
    }
    if !failures.is_empty() {
        bail!(
            "soak failed (limit {} KiB): {}",
            LIMIT_KIB,
            failures.join("; ")
        );
    }
    println!("\nEvery response was right and no demo grew by more than 5 MB after warm-up.");
    Ok(())
}

/// What one demo's soak measured.
#[derive(Debug)]
struct Row {
    framework: Framework,
    requests: u64,
    warm_kib: u64,
    end_kib: u64,
    elapsed: Duration,
}

impl Row {
    fn growth_kib(&self) -> i64 {
        self.end_kib as i64 - self.warm_kib as i64
    }
}

fn soak(framework: Framework, requests: u64) -> anyhow::Result<Row> {
    let name = framework.name();
    let server = Server::start(framework, Profile::Release, &[], Output::Discard)?;
    let pid = server.pid();
    eprintln!("xtask: soak: {name} demo on {} (pid {pid})", server.addr());
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    drive(server.addr(), pid, &next, WARM_UP).with_context(|| format!("{name}: warm-up"))?;
    let warm_kib = resident_kib(pid)?;
    eprintln!("xtask: soak: {name}: VmRSS after {WARM_UP} requests: {warm_kib} KiB");
    drive(server.addr(), pid, &next, requests).with_context(|| format!("{name}: soak"))?;
    let elapsed = started.elapsed();
    let end_kib = resident_kib(pid)?;
    eprintln!(
        "xtask: soak: {name}: VmRSS after {requests} requests: {end_kib} KiB \
         ({:+} KiB) in {elapsed:.0?}",
        end_kib as i64 - warm_kib as i64
    );
    drop(server);
    Ok(Row {
        framework,
        requests,
        warm_kib,
        end_kib,
        elapsed,
    })
}

/// Sends requests numbered from `next` up to `until` over [`CONNECTIONS`] connections,
/// printing the resident memory of `pid` every 100,000 requests.
fn drive(addr: SocketAddr, pid: u32, next: &Arc<AtomicU64>, until: u64) -> anyhow::Result<()> {
    let progress_every = 100_000;
    let clients: Vec<_> = (0..CONNECTIONS)
        .map(|_| {
            let next = Arc::clone(next);
            thread::spawn(move || -> anyhow::Result<()> {
                let mut connection = connect()?;
                let mut on_connection = 0;
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= until {
                        return Ok(());
                    }
                    if on_connection == REQUESTS_PER_CONNECTION {
                        connection = connect()?;
                        on_connection = 0;
                    }
                    on_connection += 1;
                    request(&connection, addr, n).with_context(|| format!("request {n}"))?;
                    if n > 0 && n % progress_every == 0 {
                        let rss = resident_kib(pid).unwrap_or_default();
                        eprintln!("xtask: soak: {n} requests, VmRSS {rss} KiB");
                    }
                }
            })
        })
        .collect();
    let mut result = Ok(());
    for client in clients {
        let outcome = client
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("a soak client thread panicked")));
        if result.is_ok() {
            result = outcome;
        }
    }
    // Requests past `until` were never sent: the next phase starts from `until`.
    next.store(until, Ordering::Relaxed);
    result
}

/// A client with one keep-alive connection, reopened by making a new client.
fn connect() -> anyhow::Result<reqwest::blocking::Client> {
    Ok(reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(1)
        .build()?)
}

/// Request `n`: its path and ID by its number, and the checks of its response.
fn request(client: &reqwest::blocking::Client, addr: SocketAddr, n: u64) -> anyhow::Result<()> {
    let path = PATHS[(n % PATHS.len() as u64) as usize];
    let valid = valid_id(n);
    let (id, sent_valid): (Option<&[u8]>, bool) = match n % 10 {
        0..=3 => (Some(valid.as_bytes()), true),
        4..=6 => (None, false),
        _ => (
            Some(HOSTILE[(n / 10 % HOSTILE.len() as u64) as usize]),
            false,
        ),
    };
    let mut request = client.get(format!("http://{addr}{path}"));
    if let Some(id) = id {
        request = request.header(
            "x-request-id",
            reqwest::header::HeaderValue::from_bytes(id)?,
        );
    }
    let response = request.send()?;
    let status = response.status();
    if status != reqwest::StatusCode::OK {
        bail!("GET {path}: status {status}");
    }
    let echoed: Vec<Vec<u8>> = response
        .headers()
        .get_all("x-request-id")
        .iter()
        .map(|value| value.as_bytes().to_vec())
        .collect();
    let body = response.bytes()?;
    let [echoed] = echoed.as_slice() else {
        bail!("GET {path}: {} x-request-id headers", echoed.len());
    };
    if sent_valid {
        if echoed.as_slice() != valid.as_bytes() {
            bail!("GET {path}: the valid ID {valid} came back as {echoed:?}");
        }
    } else if echoed.len() != 32
        || !echoed
            .iter()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        bail!("GET {path}: a generated ID is not 32 lowercase hex: {echoed:?}");
    }
    if path != "/" && body.as_ref() != echoed.as_slice() {
        bail!(
            "GET {path}: the body {:?} is not the ID {:?}",
            String::from_utf8_lossy(&body),
            String::from_utf8_lossy(echoed)
        );
    }
    Ok(())
}

/// A valid UUID v4 (hyphenated) that differs for every `n`.
fn valid_id(n: u64) -> String {
    let hex = format!("{n:032x}");
    format!(
        "{}-{}-4{}-8{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}
