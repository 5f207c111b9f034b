//! The connections: accepted while fewer than `--max-connections` are open (the others wait
//! in the listener's queue, costing the process no descriptor), each served by hyper's
//! HTTP/1.1 with the header timeout, and drained on shutdown.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::ServeConfig;
use crate::metrics::{Metrics, Stage};

/// The pause after a failed `accept` (out of descriptors, a connection reset before it was
/// taken), so that a lasting failure does not spin the loop.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Serves `app` on `listener` until `shutdown` completes; then stops accepting, lets the
/// requests in flight finish and closes idle connections.
pub(crate) async fn serve<F>(
    listener: TcpListener,
    app: Router,
    config: &ServeConfig,
    metrics: Arc<Metrics>,
    shutdown: F,
) where
    F: Future<Output = ()> + Send + 'static,
{
    let slots = Arc::new(Semaphore::new(config.max_connections));
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(config.header_timeout())
        .keep_alive(true);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            biased;
            () = &mut shutdown => break,
            slot = free_slot(&slots, &metrics) => match slot {
                Some(slot) => slot,
                None => break,
            },
        };
        let stream = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => {
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        // Answers are small and written whole: no reason to hold them back.
        let _ = stream.set_nodelay(true);
        let connection =
            http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app.clone()));
        let connection = graceful.watch(connection);
        let metrics = Arc::clone(&metrics);
        tokio::spawn(async move {
            let _open = Open::new(&metrics, slot);
            if connection.await.is_err_and(|e| e.is_timeout()) {
                metrics.timed_out(Stage::Header);
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// A connection slot, waiting for one to free when all are taken (and counting the wait);
/// none once the semaphore is closed.
async fn free_slot(slots: &Arc<Semaphore>, metrics: &Metrics) -> Option<OwnedSemaphorePermit> {
    if let Ok(slot) = Arc::clone(slots).try_acquire_owned() {
        return Some(slot);
    }
    metrics
        .connection_limit_reached
        .fetch_add(1, Ordering::Relaxed);
    Arc::clone(slots).acquire_owned().await.ok()
}

/// An open connection: counted while it lives, its slot freed when it ends.
struct Open<'a> {
    metrics: &'a Metrics,
    _slot: OwnedSemaphorePermit,
}

impl<'a> Open<'a> {
    fn new(metrics: &'a Metrics, slot: OwnedSemaphorePermit) -> Self {
        metrics.connections_accepted.fetch_add(1, Ordering::Relaxed);
        metrics.connections_open.fetch_add(1, Ordering::Relaxed);
        Open {
            metrics,
            _slot: slot,
        }
    }
}

impl Drop for Open<'_> {
    fn drop(&mut self) {
        self.metrics
            .connections_open
            .fetch_sub(1, Ordering::Relaxed);
    }
}
