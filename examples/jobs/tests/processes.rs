//! The demo as separate processes on a real broker, as it runs in production: one web
//! process and two worker processes on the same Redis or PostgreSQL queue, each logging
//! to its own stderr.
//!
//! - a request's chain of jobs runs across the two workers, and every line each process
//!   logs for it carries the request's ID; each job's lines carry its own job ID and its
//!   parent's;
//! - a job that fails and is retried (by the broker, possibly in the other worker) logs
//!   every attempt under the same correlation ID, job ID and parent job ID.
//!
//! Each test uses its own queue (`unique_name`) and removes it from the broker at the end.
// Tests start tasks outside any request on purpose.
#![allow(clippy::disallowed_methods)]

mod support;

use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::Duration;

use correlation_core::strategy::{IdValidator, StrictUuidV4};
use correlation_test_services::{Service, unique_name};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

use support::QueueCleanup;

/// The demo binary, built by cargo before the tests run.
const DEMO: &str = env!("CARGO_BIN_EXE_jobs");

/// How long a process may take to start, or a chain to finish.
const WAIT: Duration = Duration::from_secs(30);

/// One line a demo process logged, in the layout of `LogFormat::with_job_ids`:
/// `<time> INFO  [<id>] [<parent>-<current>] <target>: <message>`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Line {
    /// `web`, `worker-1` or `worker-2`.
    process: &'static str,
    level: String,
    correlation_id: Option<String>,
    parent_job_id: Option<String>,
    job_id: Option<String>,
    target: String,
    message: String,
}

impl Line {
    fn parse(process: &'static str, raw: &str) -> Option<Self> {
        let absent = |value: &str| (value != "-").then(|| value.to_owned());
        let (time, rest) = raw.split_once(' ')?;
        // UTC RFC 3339, to the second: `2026-12-05T13:05:39Z`.
        if !(time.len() == 20 && time.as_bytes()[10] == b'T' && time.ends_with('Z')) {
            return None;
        }
        let (level, rest) = rest.split_once(' ')?;
        let rest = rest.trim_start().strip_prefix('[')?;
        let (id, rest) = rest.split_once("] [")?;
        let (jobs, rest) = rest.split_once("] ")?;
        let (target, message) = rest.split_once(": ")?;
        // Job IDs are hex, so the first `-` separates them; `--<current>` has no parent.
        let (parent, current) = match jobs.strip_prefix("--") {
            Some(current) => (None, absent(current)),
            None => {
                let (parent, current) = jobs.split_once('-')?;
                (absent(parent), absent(current))
            }
        };
        Some(Self {
            process,
            level: level.to_owned(),
            correlation_id: absent(id),
            parent_job_id: parent,
            job_id: current,
            target: target.to_owned(),
            message: message.to_owned(),
        })
    }

    fn is_demo(&self) -> bool {
        self.target == "example_jobs"
    }

    fn job_ids(&self) -> (Option<&str>, Option<&str>) {
        (self.parent_job_id.as_deref(), self.job_id.as_deref())
    }
}

/// A demo process; killed when dropped, whatever the test's outcome.
struct DemoProcess {
    child: Child,
}

impl Drop for DemoProcess {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// One web process and two worker processes on a queue of their own, and what they logged.
struct System {
    // Fields drop in order: the processes go before their queues are removed.
    _processes: Vec<DemoProcess>,
    _cleanup: [QueueCleanup; 2],
    web_url: String,
    incoming: mpsc::UnboundedReceiver<(&'static str, String)>,
    lines: Vec<Line>,
    raw: Vec<String>,
}

impl System {
    /// Starts the processes on `broker`; `None` when the broker is unavailable and listed
    /// in `CORRELATION_SKIP_SERVICES`.
    async fn start(broker: Service) -> Option<Self> {
        let broker = broker.require()?;
        // The web process enqueues on `queue`; worker 1 runs it and enqueues each next
        // job on `other`, which worker 2 runs and enqueues back on `queue`: every chain
        // runs across both processes, whatever their speed.
        let queue = unique_name("example_jobs");
        let other = unique_name("example_jobs");
        let cleanup = [queue.clone(), other.clone()].map(|queue| QueueCleanup { broker, queue });
        let (sender, mut incoming) = mpsc::unbounded_channel();
        let mut web = spawn("web", &[("JOBS_ROLE", "web")], broker, &queue, &sender);
        let stdout = web.child.stdout.take().expect("stdout is piped");
        let mut processes = vec![web];
        let mut stdout = BufReader::new(stdout).lines();
        let announced = tokio::time::timeout(WAIT, stdout.next_line()).await;
        let web_url = match announced {
            Ok(Ok(Some(line))) => line
                .strip_prefix("listening on ")
                .unwrap_or_else(|| panic!("the web process printed {line:?}, not its address"))
                .to_owned(),
            other => {
                let mut logged = Vec::new();
                while let Ok((_, line)) = incoming.try_recv() {
                    logged.push(line);
                }
                panic!(
                    "the web process did not print its address within {WAIT:?} ({other:?}); \
                     it logged:\n{}",
                    logged.join("\n")
                )
            }
        };
        for (name, runs, next) in [("worker-1", &queue, &other), ("worker-2", &other, &queue)] {
            let env = [
                ("JOBS_ROLE", "worker"),
                ("JOBS_WEB_URL", web_url.as_str()),
                ("JOBS_NEXT_QUEUE", next.as_str()),
            ];
            processes.push(spawn(name, &env, broker, runs, &sender));
        }
        Some(Self {
            _processes: processes,
            _cleanup: cleanup,
            web_url,
            incoming,
            lines: Vec::new(),
            raw: Vec::new(),
        })
    }

    /// `POST /jobs?<query>` with `id` as the incoming correlation ID; checks the answer.
    async fn enqueue(&self, id: &str, query: &str) {
        let response = reqwest::Client::new()
            .post(format!("{}/jobs?{query}", self.web_url))
            .header("x-request-id", id)
            .timeout(WAIT)
            .send()
            .await
            .expect("POST /jobs");
        assert_eq!(response.status(), 202);
        assert_eq!(response.text().await.unwrap(), id);
    }

    /// Collects log lines until `done` holds for them; panics, with every line logged so
    /// far, if that takes longer than [`WAIT`].
    async fn wait_until(&mut self, what: &str, done: impl Fn(&[Line]) -> bool) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while !done(&self.lines) {
            match tokio::time::timeout_at(deadline, self.incoming.recv()).await {
                Ok(Some((process, raw))) => {
                    if let Some(line) = Line::parse(process, &raw) {
                        self.lines.push(line);
                    }
                    self.raw.push(format!("{process}: {raw}"));
                }
                Ok(None) => panic!(
                    "{what}: never, every process has exited; they logged:\n{}",
                    self.raw.join("\n")
                ),
                Err(_) => panic!(
                    "{what}: not within {WAIT:?}; the processes logged:\n{}",
                    self.raw.join("\n")
                ),
            }
        }
    }

    /// Waits for every line the chain of `of` jobs under `id` logs, in whichever process
    /// (each process's lines arrive through a pipe of their own, in no common order), each
    /// job running `attempts` times.
    async fn wait_for_chain(&mut self, id: &str, of: u32, attempts: usize) {
        let mut expected = vec![
            (format!("view: enqueueing job 1 of {of}"), 1),
            ("whoami: called with our ID".to_owned(), 1),
            (format!("job {of} of {of} done: /whoami saw {id}"), 1),
        ];
        for step in 1..=of {
            expected.push((format!("job {step} of {of} running"), attempts));
            for failed in 1..attempts {
                expected.push((
                    format!("job {step} of {of} failing attempt {failed} on purpose"),
                    1,
                ));
            }
            if step < of {
                expected.push((format!("job {step} of {of} enqueued job {}", step + 1), 1));
            }
        }
        self.wait_until(&format!("the chain under {id} finished"), |lines| {
            expected.iter().all(|(message, count)| {
                let logged = lines.iter().filter(|line| {
                    line.correlation_id.as_deref() == Some(id) && &line.message == message
                });
                logged.count() >= *count
            })
        })
        .await;
    }

    /// The demo's lines logged under `id` with `message`.
    fn lines(&self, id: &str, message: &str) -> Vec<&Line> {
        self.lines
            .iter()
            .filter(|line| line.correlation_id.as_deref() == Some(id) && line.message == message)
            .collect()
    }

    /// The one line logged under `id` with `message`.
    fn line(&self, id: &str, message: &str) -> &Line {
        let lines = self.lines(id, message);
        assert_eq!(lines.len(), 1, "{message:?} under {id}: {lines:#?}");
        lines[0]
    }
}

/// Starts the demo binary as `process`, its stderr forwarded line by line to `sink`.
fn spawn(
    process: &'static str,
    env: &[(&str, &str)],
    broker: Service,
    queue: &str,
    sink: &mpsc::UnboundedSender<(&'static str, String)>,
) -> DemoProcess {
    let mut command = Command::new(DEMO);
    command
        .env("JOBS_DATABASE_URL", broker.url())
        .env("JOBS_QUEUE", queue)
        .env("PORT", "0")
        .env("RUST_LOG", "info,sqlx=warn")
        .env_remove("JOBS_DEMO_ONESHOT")
        .env_remove("JOBS_WEB_URL")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command
        .spawn()
        .unwrap_or_else(|err| panic!("could not start {DEMO} as {process}: {err}"));
    let stderr = child.stderr.take().expect("stderr is piped");
    let sink = sink.clone();
    tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if sink.send((process, line)).is_err() {
                break;
            }
        }
    });
    DemoProcess { child }
}

fn is_v4_hex(id: Option<&str>) -> bool {
    id.is_some_and(|id| id.len() == 32 && StrictUuidV4.is_valid(id))
}

/// A request ID (a UUID v4, as the default configuration accepts) of our own for chain
/// `n`, so that the test knows it in advance.
fn request_id(n: u32) -> String {
    let id = format!("{:08x}0a1b4{n:03x}8c3d9e2f0a6b4d5e", std::process::id());
    assert!(is_v4_hex(Some(&id)), "{id}");
    id
}

/// Checks the chain of `of` jobs under `id`: the web process logged the view and the last
/// job's `/whoami` call under `id` and no job IDs; each job's lines, in a worker process,
/// carry `id`, a job ID of its own and, as parent, the previous job's ID. Returns the
/// job IDs, in order.
fn check_chain(system: &System, id: &str, of: u32) -> Vec<String> {
    for message in [
        format!("view: enqueueing job 1 of {of}"),
        "whoami: called with our ID".to_owned(),
    ] {
        let line = system.line(id, &message);
        assert_eq!(line.process, "web", "{line:?}");
        assert_eq!(line.job_ids(), (None, None), "{line:?}");
    }
    let mut job_ids: Vec<String> = Vec::new();
    for step in 1..=of {
        let running = system.line(id, &format!("job {step} of {of} running"));
        assert_ne!(running.process, "web", "{running:?}");
        assert!(is_v4_hex(running.job_id.as_deref()), "{running:?}");
        assert_eq!(
            running.parent_job_id.as_ref(),
            job_ids.last(),
            "job {step}'s parent is job {}: {running:?}",
            step - 1
        );
        let next = match step < of {
            true => format!("job {step} of {of} enqueued job {}", step + 1),
            false => format!("job {of} of {of} done: /whoami saw {id}"),
        };
        let next = system.line(id, &next);
        assert_eq!(
            (next.process, next.job_ids()),
            (running.process, running.job_ids())
        );
        job_ids.push(running.job_id.clone().unwrap());
    }
    let distinct: BTreeSet<_> = job_ids.iter().collect();
    assert_eq!(distinct.len(), job_ids.len(), "job IDs repeat: {job_ids:?}");
    job_ids
}

/// Chains from several requests at once, across the workers; every line of the demo in
/// every process belongs to one of them and carries its IDs.
async fn chains_run_across_worker_processes(broker: Service) {
    let Some(mut system) = System::start(broker).await else {
        return;
    };
    let (chains, of) = (4, 3);
    let ids: Vec<String> = (0..chains).map(request_id).collect();
    for id in &ids {
        system.enqueue(id, &format!("of={of}")).await;
    }
    for id in &ids {
        system.wait_for_chain(id, of, 1).await;
    }

    let mut jobs = Vec::new();
    for id in &ids {
        for job_id in check_chain(&system, id, of) {
            jobs.push((id.clone(), job_id));
        }
    }
    // Nothing of the demo is logged without the IDs of the chain it belongs to.
    for line in system.lines.iter().filter(|line| line.is_demo()) {
        let id = line.correlation_id.clone().unwrap_or_default();
        assert!(ids.contains(&id), "a line outside every chain: {line:?}");
        if let Some(job_id) = &line.job_id {
            assert!(
                jobs.contains(&(id, job_id.clone())),
                "a job of another chain: {line:?}"
            );
        }
    }
    // The workers hand each next job to each other's queue: every chain crosses processes.
    for id in &ids {
        let workers: Vec<_> = (1..=of)
            .map(|step| {
                system
                    .line(id, &format!("job {step} of {of} running"))
                    .process
            })
            .collect();
        assert_eq!(workers, ["worker-1", "worker-2", "worker-1"], "chain {id}");
    }
}

/// A chain whose every job fails its first attempt: the broker hands each job out again,
/// and every attempt logs under the same IDs.
async fn retried_jobs_keep_their_ids(broker: Service) {
    let Some(mut system) = System::start(broker).await else {
        return;
    };
    let id = request_id(0);
    let of = 2;
    system.enqueue(&id, &format!("of={of}&fail=1")).await;
    system.wait_for_chain(&id, of, 2).await;

    let mut parent = None;
    for step in 1..=of {
        let attempts = system.lines(&id, &format!("job {step} of {of} running"));
        assert_eq!(attempts.len(), 2, "job {step} ran twice: {attempts:#?}");
        let failed = system.line(
            &id,
            &format!("job {step} of {of} failing attempt 1 on purpose"),
        );
        assert_eq!(failed.level, "WARN");
        assert!(is_v4_hex(failed.job_id.as_deref()), "{failed:?}");
        assert_eq!(
            failed.parent_job_id, parent,
            "job {step}'s parent: {failed:?}"
        );
        for attempt in &attempts {
            assert_eq!(
                attempt.job_ids(),
                failed.job_ids(),
                "job {step}: {attempts:#?}"
            );
        }
        parent = failed.job_id.clone();
    }
    let done = system.line(&id, &format!("job {of} of {of} done: /whoami saw {id}"));
    assert_eq!(done.job_id, parent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_chains_run_across_two_worker_processes_under_the_requests_id() {
    chains_run_across_worker_processes(Service::Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_chains_run_across_two_worker_processes_under_the_requests_id() {
    chains_run_across_worker_processes(Service::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_retried_jobs_keep_their_correlation_and_job_ids() {
    retried_jobs_keep_their_ids(Service::Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_retried_jobs_keep_their_correlation_and_job_ids() {
    retried_jobs_keep_their_ids(Service::Postgres).await;
}

/// Runs the demo with `JOBS_DEMO_ONESHOT=1` on `url` and queue `queue`; returns whether it
/// succeeded, and what it logged.
async fn oneshot(url: &str, queue: &str, env: &[(&str, &str)]) -> (bool, String) {
    let run = Command::new(DEMO)
        .env("JOBS_DATABASE_URL", url)
        .env("JOBS_QUEUE", queue)
        .env("JOBS_DEMO_ONESHOT", "1")
        .env("RUST_LOG", "info,sqlx=warn")
        .env_remove("PORT")
        .env_remove("JOBS_ROLE")
        .env_remove("JOBS_WEB_URL")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(WAIT + Duration::from_secs(5), run)
        .await
        .unwrap_or_else(|_| panic!("the oneshot demo on {url} did not exit"))
        .unwrap_or_else(|err| panic!("could not start {DEMO}: {err}"));
    let logged = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.success(), logged)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_oneshot_demo_finishes_its_chain_on_each_storage() {
    let (ok, logged) = oneshot("sqlite::memory:", "example-jobs", &[]).await;
    assert!(ok, "on SQLite:\n{logged}");
    for broker in [Service::Redis, Service::Postgres] {
        let Some(broker) = broker.require() else {
            continue;
        };
        let queue = unique_name("example_jobs_oneshot");
        let _cleanup = QueueCleanup {
            broker,
            queue: queue.clone(),
        };
        let (ok, logged) = oneshot(&broker.url(), &queue, &[]).await;
        assert!(ok, "on {broker}:\n{logged}");
        assert!(
            logged.contains("/whoami saw the same ID"),
            "on {broker}:\n{logged}"
        );
    }
}

#[tokio::test]
async fn misconfiguration_fails_at_start_up_with_a_clear_message() {
    for (env, message) in [
        (
            [("JOBS_ROLE", "wokrer")].as_slice(),
            "JOBS_ROLE must be web, worker or both",
        ),
        (
            [("JOBS_ROLE", "web")].as_slice(),
            "JOBS_DEMO_ONESHOT=1 needs JOBS_ROLE=both",
        ),
        (
            [("JOBS_DATABASE_URL", "mysql://localhost/jobs")].as_slice(),
            "JOBS_DATABASE_URL must start with sqlite:, redis:// or postgres://",
        ),
    ] {
        let (ok, logged) = oneshot("sqlite::memory:", "example-jobs", env).await;
        assert!(!ok, "{env:?} started:\n{logged}");
        assert!(logged.contains(message), "{env:?}:\n{logged}");
    }
}
