//! What the jobs tests share: removing a test's queue from its broker.

use correlation_test_services::Service;

/// Removes a test's apalis queue from its broker when dropped: declare it before the
/// workers (or processes) that use the queue, so they are gone first.
pub(crate) struct QueueCleanup {
    /// The broker holding the queue: Redis or PostgreSQL.
    pub(crate) broker: Service,
    /// The queue's name.
    pub(crate) queue: String,
}

impl Drop for QueueCleanup {
    fn drop(&mut self) {
        let (broker, queue) = (self.broker, self.queue.clone());
        // A runtime of its own: the test's runtime may be shutting down.
        let cleaned = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|err| err.to_string())?
                .block_on(remove_queue(broker, &queue))
        })
        .join();
        if let Ok(Err(err)) = cleaned {
            eprintln!(
                "could not remove the test queue {} from {broker}: {err}",
                self.queue
            );
        }
    }
}

async fn remove_queue(broker: Service, queue: &str) -> Result<(), String> {
    match broker {
        Service::Redis => {
            let client = redis::Client::open(broker.url()).map_err(|err| err.to_string())?;
            let mut connection = client
                .get_multiplexed_async_connection()
                .await
                .map_err(|err| err.to_string())?;
            // apalis-redis keeps every key of a queue under `<queue>:`.
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(format!("{queue}:*"))
                .query_async(&mut connection)
                .await
                .map_err(|err| err.to_string())?;
            if !keys.is_empty() {
                redis::cmd("DEL")
                    .arg(keys)
                    .query_async::<()>(&mut connection)
                    .await
                    .map_err(|err| err.to_string())?;
            }
            // ...except its entry in the list of every queue that had workers.
            redis::cmd("ZREM")
                .arg("core:apalis:queues:list")
                .arg(format!("{queue}:workers"))
                .query_async::<()>(&mut connection)
                .await
                .map_err(|err| err.to_string())?;
        }
        Service::Postgres => {
            let pool = sqlx::PgPool::connect(&broker.url())
                .await
                .map_err(|err| err.to_string())?;
            // apalis-postgres stores a queue's name as its jobs' and workers' type.
            for statement in [
                "DELETE FROM apalis.jobs WHERE job_type = $1",
                "DELETE FROM apalis.workers WHERE worker_type = $1",
            ] {
                sqlx::query(statement)
                    .bind(queue)
                    .execute(&pool)
                    .await
                    .map_err(|err| err.to_string())?;
            }
        }
        other => return Err(format!("{other} holds no job queue")),
    }
    Ok(())
}
