//! `cargo xtask browser`: a real browser reads the correlation header cross-origin.
//!
//! Starts the three demo servers (debug builds) on free ports, serves a page from another
//! origin (a tiny server on its own port), and loads it in Debian's headless `chromium`
//! with `--dump-dom`. The page's JavaScript `fetch`es each demo's `/id`, once with an
//! `X-Request-ID` it sends (a fresh UUID v4) and once without, reads
//! `response.headers.get('x-request-id')` and the body, and writes them into the DOM.
//! The checks: with the page's ID, header and body are that ID; without, the header is
//! a fresh 32-hex ID equal to the body. That proves each demo's CORS recipe allows the
//! header in requests (the preflight) and exposes it in responses.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use xshell::Shell;

use crate::server::{Framework, Output, Profile, Server};

/// The browser Debian packages (`apt-get install chromium`).
const CHROMIUM: &str = "chromium";

/// How long Chromium may take before it is killed.
const CHROMIUM_TIMEOUT: Duration = Duration::from_secs(120);

/// Whether `chromium` is on the `PATH`.
pub(crate) fn chromium_available() -> bool {
    Command::new(CHROMIUM)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// What the page reported for one demo and one request.
#[derive(Debug)]
struct Outcome {
    demo: String,
    sent: bool,
    status: String,
    header: String,
    body: String,
}

/// Runs the browser check against every demo.
pub(crate) fn run(sh: &Shell) -> anyhow::Result<()> {
    if !chromium_available() {
        bail!(
            "`{CHROMIUM}` is not installed: run `apt-get install -y chromium` \
             (Debian's package; .ci/run installs it in CI)"
        );
    }
    crate::server::build(sh, &Framework::ALL, Profile::Debug)?;
    let mut servers = Vec::new();
    for framework in Framework::ALL {
        let server = Server::start(framework, Profile::Debug, &[], Output::Collect)?;
        servers.push((framework, server, uuid::Uuid::new_v4().to_string()));
    }
    let demos: Vec<(&str, SocketAddr, &str)> = servers
        .iter()
        .map(|(framework, server, id)| (framework.name(), server.addr(), id.as_str()))
        .collect();
    let page = PageServer::start(page(&demos))?;
    eprintln!(
        "xtask: browser: page on http://{}/ calls {}",
        page.addr,
        demos
            .iter()
            .map(|(name, addr, _)| format!("{name} on {addr}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let dom = dump_dom(&format!("http://{}/", page.addr));
    drop(page);
    let checked = dom.and_then(|dom| check(&dom, &demos));
    for (framework, server, _) in servers {
        let lines = server.stop();
        if checked.is_err() {
            eprintln!("xtask: browser: the {} demo printed:", framework.name());
            for line in lines {
                eprintln!("    {line}");
            }
        }
    }
    let outcomes = checked?;
    for outcome in &outcomes {
        eprintln!(
            "xtask: browser: {:<5} {:<10} -> {} x-request-id: {} body: {}",
            outcome.demo,
            if outcome.sent { "page's ID" } else { "no ID" },
            outcome.status,
            outcome.header,
            outcome.body
        );
    }
    eprintln!("xtask: browser: Chromium read the correlation header cross-origin from every demo");
    Ok(())
}

/// The page: one `fetch` with and one without the page's ID per demo, results in
/// `<pre id="results">`, then `done` in `<p id="status">`.
fn page(demos: &[(&str, SocketAddr, &str)]) -> String {
    let mut list = String::new();
    for (name, addr, id) in demos {
        let _ = write!(list, "[\"{name}\", \"http://{addr}\", \"{id}\"], ");
    }
    format!(
        r#"<!doctype html>
<html>
<head><meta charset="utf-8"><title>correlation: cross-origin check</title></head>
<body>
<pre id="results"></pre>
<p id="status">running</p>
<script>
const demos = [{list}];
async function call(name, base, id) {{
  const lines = [];
  for (const sent of [true, false]) {{
    try {{
      const init = sent ? {{ headers: {{ "X-Request-ID": id }} }} : {{}};
      const response = await fetch(base + "/id", init);
      const header = response.headers.get("x-request-id");
      const body = await response.text();
      lines.push(["result", name, sent ? "sent" : "none", response.status, header, body].join(" "));
    }} catch (error) {{
      lines.push(["error", name, sent ? "sent" : "none", String(error)].join(" "));
    }}
  }}
  return lines;
}}
(async () => {{
  const lines = [];
  for (const [name, base, id] of demos) {{
    lines.push(...await call(name, base, id));
  }}
  document.getElementById("results").textContent = lines.join("\n");
  document.getElementById("status").textContent = "done";
}})();
</script>
</body>
</html>
"#
    )
}

/// Loads `url` in headless Chromium and returns the DOM after its scripts ran.
fn dump_dom(url: &str) -> anyhow::Result<String> {
    let profile = TempDir::new("xtask-chromium")?;
    let started = Instant::now();
    let mut chromium = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=30000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.path.display()))
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting chromium")?;
    let readers = [
        read_all(
            chromium
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
        ),
        read_all(
            chromium
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
        ),
    ];
    let status = loop {
        if let Some(status) = chromium.try_wait()? {
            break Some(status);
        }
        if started.elapsed() > CHROMIUM_TIMEOUT {
            let _ = chromium.kill();
            let _ = chromium.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(50));
    };
    let [stdout, stderr] = readers.map(|reader| {
        reader
            .and_then(|r| r.join().ok())
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default()
    });
    match status {
        None => bail!("chromium did not finish within {CHROMIUM_TIMEOUT:?}; it printed:\n{stderr}"),
        Some(status) if !status.success() || stdout.is_empty() => {
            bail!("chromium failed ({status}); it printed:\n{stderr}")
        }
        Some(_) => {
            eprintln!(
                "xtask: browser: chromium loaded the page in {:.1?}",
                started.elapsed()
            );
            Ok(stdout)
        }
    }
}

fn read_all(output: Option<Box<dyn Read + Send>>) -> Option<thread::JoinHandle<Vec<u8>>> {
    let mut output = output?;
    Some(thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = output.read_to_end(&mut bytes);
        bytes
    }))
}

/// Parses the page's results out of the dumped DOM and checks each demo's two calls.
fn check(dom: &str, demos: &[(&str, SocketAddr, &str)]) -> anyhow::Result<Vec<Outcome>> {
    if !dom.contains(r#"<p id="status">done</p>"#) {
        bail!("the page's script did not finish; the DOM was:\n{dom}");
    }
    let results = dom
        .split_once(r#"<pre id="results">"#)
        .and_then(|(_, rest)| rest.split_once("</pre>"))
        .map(|(results, _)| results)
        .context("no results in the DOM")?;
    let mut outcomes = Vec::new();
    let mut problems = Vec::new();
    for line in results.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        match fields.as_slice() {
            ["result", demo, sent, status, header, body] => outcomes.push(Outcome {
                demo: (*demo).to_owned(),
                sent: *sent == "sent",
                status: (*status).to_owned(),
                header: (*header).to_owned(),
                body: (*body).to_owned(),
            }),
            _ => problems.push(format!("the page reported: {line}")),
        }
    }
    for (name, _, id) in demos {
        for sent in [true, false] {
            let label = if sent {
                "with the page's ID"
            } else {
                "without an ID"
            };
            let Some(outcome) = outcomes
                .iter()
                .find(|outcome| outcome.demo == *name && outcome.sent == sent)
            else {
                problems.push(format!("{name}, {label}: no result"));
                continue;
            };
            if outcome.status != "200" {
                problems.push(format!("{name}, {label}: status {}", outcome.status));
            }
            let fresh = outcome.header.len() == 32
                && outcome
                    .header
                    .bytes()
                    .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
            if sent && outcome.header != *id {
                problems.push(format!(
                    "{name}, {label}: the page read x-request-id {:?}, expected {id}",
                    outcome.header
                ));
            }
            if !sent && !fresh {
                problems.push(format!(
                    "{name}, {label}: the page read x-request-id {:?}, expected 32 hex digits",
                    outcome.header
                ));
            }
            if outcome.body != outcome.header {
                problems.push(format!(
                    "{name}, {label}: the body {:?} differs from the header {:?}",
                    outcome.body, outcome.header
                ));
            }
        }
    }
    if !problems.is_empty() {
        bail!("the browser check failed:\n  {}", problems.join("\n  "));
    }
    Ok(outcomes)
}

/// A server for one HTML page on 127.0.0.1, on a port of its own: the page's origin.
/// Stops when dropped, with its runtime.
struct PageServer {
    addr: SocketAddr,
    _runtime: tokio::runtime::Runtime,
}

impl PageServer {
    fn start(html: String) -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_io()
            .build()?;
        let listener = runtime.block_on(tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))?;
        let addr = listener.local_addr()?;
        let html = Bytes::from(html);
        runtime.spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let html = html.clone();
                let page = service_fn(move |request| page_or_404(request, html.clone()));
                let connection = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), page);
                tokio::spawn(connection);
            }
        });
        Ok(Self {
            addr,
            _runtime: runtime,
        })
    }
}

/// The page for `/`, 404 for anything else (such as a favicon).
async fn page_or_404(
    request: Request<hyper::body::Incoming>,
    html: Bytes,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (status, content_type, body) = match request.uri().path() {
        "/" | "/index.html" => (StatusCode::OK, "text/html; charset=utf-8", html),
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain",
            Bytes::from_static(b"not found\n"),
        ),
    };
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    Ok(response)
}

/// A new, empty directory under the system's temporary directory, removed on drop.
struct TempDir {
    path: PathBuf,
}

impl TempDir {
    fn new(prefix: &str) -> anyhow::Result<Self> {
        let path = std::env::temp_dir().join(format!("{prefix}-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(Self { path })
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
