//! Run with
//!
//! ```sh
//! cargo run --example jobs
//! ```
//!
//! then `curl -X POST localhost:8080/jobs` and watch the request's ID flow through job 1,
//! job 2 and job 3 (an apalis worker on SQLite), each line showing `[<parent>-<current>]`,
//! and back into this service through job 3's outgoing call to `/whoami`.
//!
//! `PORT` sets the port (default 8080), `RUST_LOG` the level (default `info`) and
//! `JOBS_DATABASE_URL` the SQLite database (default in memory). With
//! `JOBS_DEMO_ONESHOT=1` the demo sends one request to itself, waits for job 3, and
//! exits (0 on success, 1 if the chain did not finish within 30 seconds).

use std::process::ExitCode;
use std::time::Duration;

use correlation_core::{CorrelationConfig, LogFormat};
use example_jobs::{JobDeps, app, run_worker, sqlite_queue};
use tokio::sync::{mpsc, watch};

#[tokio::main]
async fn main() -> Result<ExitCode, Box<dyn std::error::Error>> {
    let format = LogFormat::new().with_job_ids().job_id_length(8);
    env_logger::Builder::new()
        .format(move |buf, record| format.format(buf, record))
        // sqlx logs every polling query at `info` once `log` is on.
        .parse_filters(&std::env::var("RUST_LOG").unwrap_or_else(|_| "info,sqlx=warn".to_owned()))
        .init();
    let oneshot = std::env::var("JOBS_DEMO_ONESHOT").is_ok_and(|value| value == "1");
    let port = match std::env::var("PORT") {
        Ok(port) => port,
        Err(_) if oneshot => "0".to_owned(),
        Err(_) => "8080".to_owned(),
    };
    let database =
        std::env::var("JOBS_DATABASE_URL").unwrap_or_else(|_| "sqlite::memory:".to_owned());

    let config = CorrelationConfig::default();
    let queue = sqlite_queue(&database).await?;
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    let addr = listener.local_addr()?;
    log::info!("jobs demo listening on http://{addr}, queue on {database}");

    let (stop, stopped) = watch::channel(false);
    let wait_for_stop = |mut stopped: watch::Receiver<bool>| async move {
        let _ = stopped.wait_for(|stop| *stop).await;
    };
    let (done, mut finished) = mpsc::unbounded_channel();
    let deps = JobDeps::new(
        queue.clone(),
        config.clone(),
        format!("http://{addr}"),
        done,
    );
    #[allow(clippy::disallowed_methods)] // nothing to carry: the worker starts outside any request
    let worker = tokio::spawn(run_worker(
        "jobs-demo",
        queue.clone(),
        deps,
        wait_for_stop(stopped.clone()),
    ));
    #[allow(clippy::disallowed_methods)]
    let server = tokio::spawn(
        axum::serve(listener, app(config, queue))
            .with_graceful_shutdown(wait_for_stop(stopped))
            .into_future(),
    );

    let code = if oneshot {
        let response = reqwest::Client::new()
            .post(format!("http://{addr}/jobs"))
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
        match waited {
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
        }
    } else {
        tokio::signal::ctrl_c().await?;
        ExitCode::SUCCESS
    };
    let _ = stop.send(true);
    server.await??;
    worker.await??;
    Ok(code)
}
