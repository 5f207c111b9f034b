//! The scoring thread: it takes the jobs the HTTP handlers queue, scores prediction jobs in
//! batches (one forward pass over the rows of several requests), and runs explanations,
//! generation and recommendations one by one.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::time::Instant;

use sora_jobs::explain::{ExplainRequest, Explanation};
use sora_jobs::{Batch, GenerateRequest, Generated, Input, Model, Outputs, UserItems};
use tokio::sync::{mpsc, oneshot};

use crate::ServeConfig;
use crate::metrics::Metrics;
use crate::request::ApiError;

/// What the scoring thread answers with.
pub(crate) type Reply<T> = oneshot::Sender<Result<T, ApiError>>;

/// A piece of a streamed answer.
#[derive(Debug)]
pub(crate) enum Piece {
    /// Text as it is written.
    Text(String),
    /// The end of the text.
    Done(Generated),
    /// Generation failed.
    Failed(ApiError),
}

/// Work for the scoring thread.
pub(crate) enum Job {
    Predict {
        batch: Batch,
        reply: Reply<Outputs>,
    },
    Explain {
        input: Input,
        request: Box<ExplainRequest>,
        reply: Reply<Explanation>,
    },
    Generate {
        request: GenerateRequest,
        pieces: mpsc::UnboundedSender<Piece>,
    },
    Recommend {
        users: Vec<String>,
        top: usize,
        because: usize,
        reply: Reply<Vec<UserItems>>,
    },
}

/// Counts a predict request as arriving until it is queued or rejected (dropped).
pub(crate) struct Arriving<'a>(&'a AtomicUsize);

impl<'a> Arriving<'a> {
    pub(crate) fn new(counter: &'a AtomicUsize) -> Self {
        counter.fetch_add(1, Ordering::AcqRel);
        Arriving(counter)
    }
}

impl Drop for Arriving<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Runs `f`, turning a panic inside it (a bug, not bad input: rows are checked before they are
/// queued) into an error for the requests concerned, so the scoring thread keeps serving.
pub(crate) fn guarded<T>(f: impl FnOnce() -> Result<T, ApiError>) -> Result<T, ApiError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        let why = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        Err(ApiError::internal(format!(
            "the model failed on these rows: {why}"
        )))
    })
}

/// The scoring loop; returns when every handle on the queue is gone.
pub(crate) fn score_loop(
    model: &Arc<dyn Model>,
    queue: &Receiver<Job>,
    config: &ServeConfig,
    metrics: &Metrics,
    arriving: &AtomicUsize,
) {
    let failed = |e: &ApiError| {
        if e.status.is_server_error() {
            metrics.scoring_errors.fetch_add(1, Ordering::Relaxed);
        }
    };
    let mut pending: Option<Job> = None;
    loop {
        let job = match pending.take() {
            Some(job) => job,
            None => match queue.recv() {
                Ok(job) => job,
                Err(_) => return,
            },
        };
        match job {
            Job::Explain {
                input,
                request,
                reply,
            } => {
                let result = guarded(|| {
                    model
                        .explain(&input, &request)
                        .map_err(|e| ApiError::from_job(&e))
                });
                if let Err(e) = &result {
                    failed(e);
                }
                let _ = reply.send(result);
            }
            Job::Recommend {
                users,
                top,
                because,
                reply,
            } => {
                let result = guarded(|| {
                    model
                        .recommend(&users, top, because)
                        .map_err(|e| ApiError::from_job(&e))
                });
                if let Err(e) = &result {
                    failed(e);
                }
                let _ = reply.send(result);
            }
            Job::Generate { request, pieces } => {
                let result = guarded(|| {
                    let mut on_piece = |piece: &str| {
                        // A client that went away ends nothing but its own stream.
                        let _ = pieces.send(Piece::Text(piece.to_string()));
                    };
                    model
                        .generate(&request, &mut on_piece)
                        .map_err(|e| ApiError::from_job(&e))
                });
                let _ = pieces.send(match result {
                    Ok(done) => {
                        metrics
                            .tokens_generated
                            .fetch_add(done.tokens as u64, Ordering::Relaxed);
                        Piece::Done(done)
                    }
                    Err(e) => {
                        failed(&e);
                        Piece::Failed(e)
                    }
                });
            }
            Job::Predict { batch, reply } => {
                let mut total = batch.len();
                let mut jobs = vec![(batch, reply)];
                let deadline = Instant::now() + config.batch_window();
                while total < config.max_batch_rows {
                    // Wait only while other requests are on their way to the queue; a lone
                    // request is scored at once.
                    let remaining = deadline.checked_duration_since(Instant::now());
                    let next = match remaining {
                        Some(wait) if !wait.is_zero() && arriving.load(Ordering::Acquire) > 0 => {
                            queue.recv_timeout(wait)
                        }
                        _ => queue.try_recv().map_err(|e| match e {
                            TryRecvError::Empty => RecvTimeoutError::Timeout,
                            TryRecvError::Disconnected => RecvTimeoutError::Disconnected,
                        }),
                    };
                    match next {
                        Ok(Job::Predict { batch, reply }) => {
                            total += batch.len();
                            jobs.push((batch, reply));
                        }
                        Ok(other) => {
                            pending = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                metrics.batch(total);
                let (batches, replies): (Vec<Batch>, Vec<_>) = jobs.into_iter().unzip();
                let sizes: Vec<usize> = batches.iter().map(Batch::len).collect();
                let joined = Batch::join(batches);
                match guarded(|| model.score(&joined).map_err(|e| ApiError::from_job(&e))) {
                    Ok(outputs) => {
                        let mut start = 0;
                        for (reply, n) in replies.into_iter().zip(sizes) {
                            let _ = reply.send(Ok(outputs.rows(start..start + n)));
                            start += n;
                        }
                    }
                    Err(e) => {
                        failed(&e);
                        for reply in replies {
                            let _ = reply.send(Err(e.clone()));
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_while_scoring_becomes_an_error() {
        let r: Result<(), ApiError> = guarded(|| panic!("shape mismatch"));
        assert_eq!(
            r,
            Err(ApiError::internal(
                "the model failed on these rows: shape mismatch"
            ))
        );
        assert_eq!(guarded(|| Ok(3)), Ok(3));
    }
}
