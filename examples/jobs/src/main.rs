//! Run with
//!
//! ```sh
//! cargo run -p example-jobs
//! ```
//!
//! then `curl -X POST localhost:8080/jobs` and watch the request's ID flow through job 1,
//! job 2 and job 3 (an apalis worker), each line showing `[<parent>-<current>]`, and back
//! into this service through job 3's outgoing call to `/whoami`.
//!
//! - `JOBS_DATABASE_URL`: the queue's storage, `sqlite:...` (default `sqlite::memory:`),
//!   `redis://...` or `postgres://...`.
//! - `JOBS_QUEUE`: the queue's name in that storage (default `example-jobs`).
//! - `JOBS_NEXT_QUEUE` (workers): the queue a job enqueues the next job of its chain on
//!   (default: its own). Two workers whose queues point at each other run each chain
//!   across both processes, one job each in turn.
//! - `JOBS_ROLE`: `both` (default) runs the web service and a worker in this process;
//!   `web` only the web service; `worker` only a worker, which calls the web service at
//!   `JOBS_WEB_URL` (e.g. `http://127.0.0.1:8080`). Run one `web` and any number of
//!   `worker` processes on the same Redis or PostgreSQL queue.
//! - `PORT` sets the port (default 8080), `RUST_LOG` the level (default `info`).
//!
//! The web service prints `listening on http://<address>` on stdout once it accepts
//! connections; logs go to stderr. With `JOBS_DEMO_ONESHOT=1` (role `both` only) the demo
//! listens on a free port, sends one request to itself, waits for job 3, and exits (0 on
//! success, 1 if the chain did not finish within 30 seconds).

use std::process::ExitCode;
use std::time::Duration;

use correlation_core::CorrelationConfig;
use example_jobs::{ChainDone, DEFAULT_QUEUE_NAME, JobDeps, Queue, app, run_worker};
use tokio::sync::{mpsc, watch};

/// What this process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Web,
    Worker,
    Both,
}

impl Role {
    fn from_env() -> Result<Self, String> {
        match std::env::var("JOBS_ROLE").as_deref() {
            Err(std::env::VarError::NotPresent) | Ok("both") => Ok(Self::Both),
            Ok("web") => Ok(Self::Web),
            Ok("worker") => Ok(Self::Worker),
            Ok(other) => Err(format!(
                "JOBS_ROLE must be web, worker or both, not {:?}",
                other.escape_default().to_string()
            )),
            Err(std::env::VarError::NotUnicode(_)) => {
                Err("JOBS_ROLE must be web, worker or both".to_owned())
            }
        }
    }
}

#[tokio::main]
async fn main() -> Result<ExitCode, Box<dyn std::error::Error + Send + Sync>> {
    let format = correlation_core::LogFormat::new().with_job_ids();
    env_logger::Builder::new()
        .format(move |buf, record| format.format(buf, record))
        // sqlx logs every polling query at `info` once `log` is on.
        .parse_filters(&std::env::var("RUST_LOG").unwrap_or_else(|_| "info,sqlx=warn".to_owned()))
        .init();
    // A job that panics is logged on one line under its correlation and job IDs.
    correlation_core::install_panic_hook();
    let role = Role::from_env()?;
    let oneshot = std::env::var("JOBS_DEMO_ONESHOT").is_ok_and(|value| value == "1");
    if oneshot && role != Role::Both {
        return Err("JOBS_DEMO_ONESHOT=1 needs JOBS_ROLE=both (or no JOBS_ROLE)".into());
    }
    let web_url = std::env::var("JOBS_WEB_URL").ok();
    if role == Role::Worker && web_url.is_none() {
        return Err("JOBS_ROLE=worker needs JOBS_WEB_URL, the web service's base URL".into());
    }
    let port = match std::env::var("PORT") {
        Ok(port) => port,
        Err(_) if oneshot => "0".to_owned(),
        Err(_) => "8080".to_owned(),
    };
    let database =
        std::env::var("JOBS_DATABASE_URL").unwrap_or_else(|_| "sqlite::memory:".to_owned());
    let queue_name = std::env::var("JOBS_QUEUE").unwrap_or_else(|_| DEFAULT_QUEUE_NAME.to_owned());

    let config = CorrelationConfig::default();
    let (queue, next_queue) = match std::env::var("JOBS_NEXT_QUEUE") {
        Ok(next) => {
            let [queue, next] = Queue::connect_all(&database, [&queue_name, &next]).await?;
            (queue, next)
        }
        Err(_) => {
            let queue = Queue::connect(&database, &queue_name).await?;
            (queue.clone(), queue)
        }
    };

    let (stop, stopped) = watch::channel(false);
    let wait_for_stop = |mut stopped: watch::Receiver<bool>| async move {
        let _ = stopped.wait_for(|stop| *stop).await;
    };

    let mut server = None;
    let mut base_url = web_url;
    if role != Role::Worker {
        let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
        let addr = listener.local_addr()?;
        log::info!(
            "jobs demo listening on http://{addr}, queue {queue_name} on {}",
            queue.kind()
        );
        // On stdout, for whoever started this process and needs the port.
        println!("listening on http://{addr}");
        base_url.get_or_insert_with(|| format!("http://{addr}"));
        #[allow(clippy::disallowed_methods)] // nothing to carry: the server is not in a request
        let serving = tokio::spawn(
            axum::serve(listener, app(config.clone(), queue.clone()))
                .with_graceful_shutdown(wait_for_stop(stopped.clone()))
                .into_future(),
        );
        server = Some(serving);
    }

    let (done, mut finished) = mpsc::unbounded_channel();
    let mut worker = None;
    if role != Role::Web {
        let base_url = base_url.clone().unwrap_or_default();
        let name = format!("jobs-demo-{}", std::process::id());
        log::info!(
            "worker {name} on queue {queue_name} ({}), calling {base_url}",
            queue.kind()
        );
        let deps = JobDeps::new(next_queue, config, base_url, done);
        #[allow(clippy::disallowed_methods)]
        // nothing to carry: the worker starts outside any request
        let working =
            tokio::spawn(
                async move { run_worker(&name, queue, deps, wait_for_stop(stopped)).await },
            );
        worker = Some(working);
    }

    let code = match (oneshot, base_url) {
        (true, Some(base_url)) => oneshot_request(&base_url, &mut finished).await?,
        _ => {
            tokio::signal::ctrl_c().await?;
            ExitCode::SUCCESS
        }
    };
    let _ = stop.send(true);
    if let Some(server) = server {
        server.await??;
    }
    if let Some(worker) = worker {
        worker.await??;
    }
    Ok(code)
}

/// Sends `POST /jobs` to this process and waits for its chain's last job.
async fn oneshot_request(
    base_url: &str,
    finished: &mut mpsc::UnboundedReceiver<ChainDone>,
) -> Result<ExitCode, Box<dyn std::error::Error + Send + Sync>> {
    let response = reqwest::Client::new()
        .post(format!("{base_url}/jobs"))
        .send()
        .await?;
    let id = response.text().await?;
    log::info!("oneshot: POST /jobs answered with ID {id}; waiting for job 3");
    let waited = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(chain) = finished.recv().await {
            if chain.correlation_id == id.as_str() {
                return Some(chain);
            }
        }
        None
    })
    .await;
    Ok(match waited {
        Ok(Some(chain)) if chain.whoami == id => {
            log::info!("oneshot: job 3 finished under {id}, and /whoami saw the same ID");
            ExitCode::SUCCESS
        }
        Ok(Some(chain)) => {
            log::error!("oneshot: /whoami saw {} instead of {id}", chain.whoami);
            ExitCode::FAILURE
        }
        Ok(None) | Err(_) => {
            log::error!("oneshot: job 3 did not finish within 30 seconds");
            ExitCode::FAILURE
        }
    })
}
