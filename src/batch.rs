//! Group commit for hot write paths: callers submit one item each and wait for its result;
//! a collector task hands whatever has queued up to `run` as one batch, so one statement
//! and one commit serve many callers. A lone item goes at once (no timer, no added wait);
//! under load, items gather while the previous batches run, so batches grow with the load
//! and the cost per item falls.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::{Semaphore, mpsc, oneshot};

/// Submits items to a collector task that runs them in batches.
pub struct Batcher<I, O> {
    tx: mpsc::Sender<(I, oneshot::Sender<O>)>,
}

impl<I, O> Clone for Batcher<I, O> {
    fn clone(&self) -> Self {
        Self {
            tx: self.tx.clone(),
        }
    }
}

impl<I: Send + 'static, O: Send + 'static> Batcher<I, O> {
    /// Spawns the collector on the current runtime. `run` gets at most `max_batch` items
    /// and must return one output per item, in order; at most `in_flight` batches run at
    /// once (each holds a database connection, say).
    pub fn spawn<F, Fut>(max_batch: usize, in_flight: usize, run: F) -> Self
    where
        F: Fn(Vec<I>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Vec<O>> + Send + 'static,
    {
        let max_batch = max_batch.max(1);
        let (tx, mut rx) = mpsc::channel::<(I, oneshot::Sender<O>)>(max_batch * 64);
        let slots = Arc::new(Semaphore::new(in_flight.max(1)));
        let run = Arc::new(run);
        tokio::spawn(async move {
            loop {
                let Ok(slot) = slots.clone().acquire_owned().await else {
                    return;
                };
                let Some(first) = rx.recv().await else {
                    return;
                };
                let mut items = Vec::with_capacity(max_batch);
                let mut replies = Vec::with_capacity(max_batch);
                items.push(first.0);
                replies.push(first.1);
                while items.len() < max_batch {
                    match rx.try_recv() {
                        Ok((item, reply)) => {
                            items.push(item);
                            replies.push(reply);
                        }
                        Err(_) => break,
                    }
                }
                let run = run.clone();
                tokio::spawn(async move {
                    let outputs = run(items).await;
                    debug_assert_eq!(outputs.len(), replies.len(), "one output per item");
                    for (reply, output) in replies.into_iter().zip(outputs) {
                        let _ = reply.send(output);
                    }
                    drop(slot);
                });
            }
        });
        Self { tx }
    }

    /// Runs `item` in the next batch and returns its output; `None` if the collector is
    /// gone (its runtime is shutting down) or the batch was dropped unfinished.
    pub async fn submit(&self, item: I) -> Option<O> {
        let (reply, answer) = oneshot::channel();
        self.tx.send((item, reply)).await.ok()?;
        answer.await.ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[tokio::test]
    async fn every_caller_gets_its_own_output_and_batches_form_under_load() {
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let seen = sizes.clone();
        let batcher = Batcher::spawn(8, 1, move |items: Vec<u32>| {
            let seen = seen.clone();
            async move {
                seen.lock().unwrap().push(items.len());
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                items.into_iter().map(|i| i * 10).collect()
            }
        });
        let calls: Vec<_> = (0..40u32)
            .map(|i| {
                let b = batcher.clone();
                tokio::spawn(async move { (i, b.submit(i).await) })
            })
            .collect();
        for call in calls {
            let (i, out) = call.await.unwrap();
            assert_eq!(out, Some(i * 10), "item {i} got another item's output");
        }
        let sizes = sizes.lock().unwrap();
        assert_eq!(sizes.iter().sum::<usize>(), 40);
        assert!(
            sizes.iter().all(|&n| n <= 8),
            "a batch exceeded its limit: {sizes:?}"
        );
        assert!(
            sizes.len() < 40,
            "40 waiting callers were never batched together: {sizes:?}"
        );
    }

    #[tokio::test]
    async fn a_lone_item_is_run_without_waiting_for_company() {
        // One item and no other caller: if the collector waited for a fuller batch, this
        // would never return (the test's runtime would hang on it).
        let batcher = Batcher::spawn(64, 2, |items: Vec<u8>| async move { items });
        assert_eq!(batcher.submit(7).await, Some(7));
    }
}
