//! The flush's writer: one thread of its own that runs at a lower scheduling priority than the rest of
//! the process (nice [`NICE`], on Linux), so that the background flush takes the CPU the request
//! workers leave rather than competing with them.
//!
//! Why: on a saturated node the flush (encoding the changed tickets, redb's B-tree inserts, the commit)
//! shared the cores with the workers as an equal, and every millisecond it ran on a core was a
//! millisecond of queued requests: the embedded store's p99 at 256 connections was that contention, not
//! its lock (BENCHMARKS.md, "the embedded p99"). A niced thread still gets the CPU whenever a worker
//! waits, and a small share under full load, so the flush goes on, later.
//!
//! The thread holds no lock a request needs while it runs: the flush copies its piece under the
//! runtime's lock on the caller's side and hands the writer owned copies. It does hold redb's write
//! transaction, which registrations' group commits wait for; a flush piece is bounded
//! (`FLUSH_PIECE` tickets), so such a wait is too.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc;

use usher_core::store::StoreError;

/// The writer thread's nice value: 10 gets about a tenth of a core's time against a busy worker at 0
/// (the kernel's weights: 110 against 1024), and all of an idle one.
pub(super) const NICE: i32 = 10;

type Job = Box<dyn FnOnce() + Send>;

/// A thread that runs jobs one at a time, in order, at nice [`NICE`].
pub(super) struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl Writer {
    /// Starts the thread. It ends once the writer is dropped and the jobs sent before are done.
    pub(super) fn start() -> Result<Self, StoreError> {
        let (jobs, queue) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("usher-flush".into())
            .spawn(move || {
                lower_priority();
                while let Ok(job) = queue.recv() {
                    // a job that panics fails its caller (its answer is dropped), not the jobs after it
                    let _ = std::panic::catch_unwind(AssertUnwindSafe(job));
                }
            })
            .map_err(|e| StoreError::Unavailable(format!("flush writer thread: {e}")))?;
        Ok(Self { jobs })
    }

    /// Runs `f` on the writer thread and waits for its answer.
    pub(super) async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (answer, answered) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Box::new(move || {
                let _ = answer.send(f());
            }))
            .map_err(|_| StoreError::Unavailable("the flush writer thread has stopped".into()))?;
        answered
            .await
            .map_err(|_| StoreError::Unavailable("a flush write panicked".into()))?
    }
}

/// Lowers the calling thread's priority to nice [`NICE`] (Linux: each thread has its own nice value).
/// A failure only leaves it at the process's priority, as every thread was before.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::process::setpriority_process(Some(rustix::thread::gettid()), NICE) {
        tracing::debug!(error = %e, "flush writer thread keeps its priority");
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[tokio::test]
    async fn jobs_run_in_order_at_the_lower_priority_and_a_panic_fails_only_its_own() {
        let w = Writer::start().unwrap();
        let nice = w
            .run(|| {
                let tid = rustix::thread::gettid();
                rustix::process::getpriority_process(Some(tid))
                    .map_err(|e| StoreError::Unavailable(e.to_string()))
            })
            .await
            .unwrap();
        assert_eq!(nice, NICE);
        let err = w.run::<()>(|| panic!("a failing write")).await.unwrap_err();
        assert!(err.to_string().contains("panicked"), "{err}");
        let order = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let runs: Vec<_> = (0..3)
            .map(|i| {
                let order = std::sync::Arc::clone(&order);
                w.run(move || {
                    order.lock().unwrap().push(i);
                    Ok(i)
                })
            })
            .collect();
        assert_eq!(
            futures::future::try_join_all(runs).await.unwrap(),
            [0, 1, 2]
        );
        assert_eq!(*order.lock().unwrap(), [0, 1, 2]);
    }
}
