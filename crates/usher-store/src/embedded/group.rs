//! Group commit: durable writes that arrive while one is being committed share the next transaction and
//! its one fsync, and each is answered only after that commit.
//!
//! A single registration used to wait for a commit of its own (about 1,250 per second on this kind of
//! disk, each holding redb's one writer for the length of an fsync). Here the first writer to find the
//! queue idle becomes its leader: on a blocking thread it takes every write queued meanwhile (up to
//! [`MAX_GROUP`]), runs them one after the other in one write transaction, commits once, and then answers
//! each; writes that queue while it commits go in the leader's next round. A lone write is committed as
//! soon as it comes, so nothing waits for a timer.
//!
//! Isolation: a write whose closure fails is answered with its error, and the transaction, which may hold
//! part of that write, is aborted; the others in the group are run again in a new transaction without it.
//! That is why a grouped write is `FnMut`: its closure must do nothing but write through the transaction
//! and return, so running it a second time is the same as running it once. A failed commit fails every
//! write of the group (none was acknowledged, so nothing is lost; the callers may retry).
//!
//! What a transaction's writes change in memory besides the database (the token index,
//! `embedded/tokens.rs`) they stage in a value of type `S` that the transaction's writes share, so a
//! later write sees an earlier one's. Each attempt at a transaction starts from an empty one, and it is
//! handed to the store's `publish` after the commit and before anyone is answered or the next group
//! begins: an aborted attempt leaves nothing in memory, and an answered write is found at once.

use std::any::Any;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use redb::{Database, WriteTransaction};
use usher_core::store::StoreError;

use super::{lock, unavailable};

/// Most writes one transaction takes; a bulk registration of 10,000 tickets is one write.
pub(super) const MAX_GROUP: usize = 256;

type Output = Box<dyn Any + Send>;
type Run<S> = Box<dyn FnMut(&WriteTransaction, &mut S) -> Result<Output, StoreError> + Send>;
type Reply = Box<dyn FnOnce(Result<Output, StoreError>) + Send>;

/// One write waiting for a transaction.
struct Queued<S> {
    run: Run<S>,
    reply: Reply,
}

#[derive(Default)]
struct Queue<S> {
    waiting: Vec<Queued<S>>,
    /// A leader is draining the queue (set and cleared under the lock, so at most one runs).
    leading: bool,
}

/// What a committed transaction's staged changes are handed to.
type Publish<S> = Arc<dyn Fn(S) + Send + Sync>;

/// The queue of grouped writes of one database, whose writes stage changes in an `S`.
pub(super) struct GroupCommit<S> {
    queue: Arc<Mutex<Queue<S>>>,
    /// Transactions committed so far.
    commits: Arc<AtomicU64>,
    publish: Publish<S>,
}

impl<S: Default + Send + 'static> GroupCommit<S> {
    /// A queue whose committed transactions hand what their writes staged to `publish`.
    pub(super) fn new(publish: impl Fn(S) + Send + Sync + 'static) -> Self {
        Self {
            queue: Arc::default(),
            commits: Arc::default(),
            publish: Arc::new(publish),
        }
    }

    /// Queues `f` for the next group and waits until the transaction that ran it has committed.
    pub(super) async fn write<T: Send + 'static>(
        &self,
        db: &Arc<Database>,
        mut f: impl FnMut(&WriteTransaction, &mut S) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (tx, rx) = tokio::sync::oneshot::channel::<Result<T, StoreError>>();
        let queued = Queued {
            run: Box::new(move |txn, staged| f(txn, staged).map(|v| Box::new(v) as Output)),
            reply: Box::new(move |r| {
                let r = r.and_then(|out| {
                    out.downcast::<T>().map(|v| *v).map_err(|_| {
                        StoreError::Unavailable("a grouped write answered another type".into())
                    })
                });
                let _ = tx.send(r);
            }),
        };
        let lead = {
            let mut q = lock(&self.queue);
            q.waiting.push(queued);
            !std::mem::replace(&mut q.leading, true)
        };
        if lead {
            let (db, queue) = (Arc::downgrade(db), Arc::clone(&self.queue));
            let commits = Arc::clone(&self.commits);
            let mut leader = Leader {
                queue,
                commits,
                publish: Arc::clone(&self.publish),
                stepped_down: false,
            };
            // dropped unrun (the runtime is shutting down), the leader fails what waits and steps down
            drop(tokio::task::spawn_blocking(move || leader.drain(&db)));
        }
        rx.await.unwrap_or_else(|_| {
            Err(StoreError::Unavailable(
                "the write was dropped before its commit".into(),
            ))
        })
    }
}

/// The one thread committing groups; steps down when the queue is empty, or when dropped (a panic or a
/// shutdown), failing whatever still waits so that no caller waits forever.
struct Leader<S> {
    queue: Arc<Mutex<Queue<S>>>,
    commits: Arc<AtomicU64>,
    publish: Publish<S>,
    /// Left the queue to the next leader (which may already be running: its queue is not ours to fail).
    stepped_down: bool,
}

impl<S: Default> Leader<S> {
    fn drain(&mut self, db: &Weak<Database>) {
        loop {
            let group: Vec<Queued<S>> = {
                let mut q = lock(&self.queue);
                if q.waiting.is_empty() {
                    q.leading = false;
                    self.stepped_down = true;
                    return;
                }
                let n = q.waiting.len().min(MAX_GROUP);
                q.waiting.drain(..n).collect()
            };
            let Some(open) = db.upgrade() else {
                // the store is gone: nothing to commit into
                send(failed(group, "the store was closed"));
                continue;
            };
            let (committed, answers) = commit(&open, group, &*self.publish);
            // the database is let go of before anyone is answered: an answered caller may close the
            // store and open its file again at once, which redb refuses while any handle is alive
            drop(open);
            if committed {
                self.commits.fetch_add(1, Ordering::Relaxed);
            }
            send(answers);
        }
    }
}

impl<S> Drop for Leader<S> {
    fn drop(&mut self) {
        if self.stepped_down {
            return;
        }
        let orphans = {
            let mut q = lock(&self.queue);
            q.leading = false;
            std::mem::take(&mut q.waiting)
        };
        send(failed(
            orphans,
            "the store's writer stopped before this write",
        ));
    }
}

/// An answer owed to a write, sent once the database is let go of.
type Answer = (Reply, Result<Output, StoreError>);

/// Runs `group` in one transaction; a write that fails is answered alone and the others run again
/// without it. What the committed writes staged goes to `publish`. Returns whether a transaction was
/// committed, and the answers.
fn commit<S: Default>(
    db: &Database,
    mut group: Vec<Queued<S>>,
    publish: &dyn Fn(S),
) -> (bool, Vec<Answer>) {
    let mut answers: Vec<Answer> = Vec::with_capacity(group.len());
    loop {
        let txn = match db.begin_write() {
            Ok(t) => t,
            Err(e) => {
                answers.extend(failed(group, &message(unavailable(e))));
                return (false, answers);
            }
        };
        let mut outputs = Vec::with_capacity(group.len());
        let mut staged = S::default();
        let mut broke = None;
        for (i, w) in group.iter_mut().enumerate() {
            match (w.run)(&txn, &mut staged) {
                Ok(out) => outputs.push(out),
                Err(e) => {
                    broke = Some((i, e));
                    break;
                }
            }
        }
        if let Some((i, e)) = broke {
            drop(outputs);
            // the transaction may hold part of the failed write: nothing of it is committed
            if let Err(abort) = txn.abort() {
                tracing::warn!(error = %abort, "aborting a grouped write transaction failed");
            }
            let bad = group.remove(i);
            answers.push((bad.reply, Err(e)));
            if group.is_empty() {
                return (false, answers);
            }
            continue;
        }
        return match txn.commit() {
            Ok(()) => {
                publish(staged);
                for (w, out) in group.into_iter().zip(outputs) {
                    answers.push((w.reply, Ok(out)));
                }
                (true, answers)
            }
            Err(e) => {
                drop(outputs);
                answers.extend(failed(group, &message(unavailable(e))));
                (false, answers)
            }
        };
    }
}

fn message(e: StoreError) -> String {
    match e {
        StoreError::Unavailable(m) => m,
        other => other.to_string(),
    }
}

/// Every write of `group` answered `Unavailable(msg)`.
fn failed<S>(group: Vec<Queued<S>>, msg: &str) -> Vec<Answer> {
    group
        .into_iter()
        .map(|w| (w.reply, Err(StoreError::Unavailable(msg.to_owned()))))
        .collect()
}

fn send(answers: Vec<Answer>) {
    for (reply, result) in answers {
        reply(result);
    }
}

impl<S> GroupCommit<S> {
    /// Transactions committed so far.
    #[cfg(test)]
    pub(super) fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use redb::TableDefinition;

    use super::*;

    const T: TableDefinition<&str, u64> = TableDefinition::new("t");

    fn db() -> (tempfile::TempDir, Arc<Database>) {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = Database::create(dir.path().join("g.redb")).expect("database");
        (dir, Arc::new(db))
    }

    fn read(db: &Database, key: &str) -> Option<u64> {
        let r = db.begin_read().expect("read");
        let t = match r.open_table(T) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return None,
            Err(e) => panic!("{e}"),
        };
        t.get(key).expect("get").map(|v| v.value())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_writes_share_transactions_and_each_is_committed_when_answered() {
        let (_dir, db) = db();
        let group = Arc::new(GroupCommit::<()>::new(|()| {}));
        let mut tasks = Vec::new();
        for i in 0..400_u64 {
            let (group, db) = (Arc::clone(&group), Arc::clone(&db));
            tasks.push(tokio::spawn(async move {
                let key = format!("k{i}");
                let k = key.clone();
                group
                    .write(&db, move |txn, _| {
                        let mut t = txn.open_table(T).map_err(unavailable)?;
                        t.insert(k.as_str(), i).map_err(unavailable)?;
                        Ok(i)
                    })
                    .await
                    .expect("write");
                // answered only after its commit: a read sees it at once
                assert_eq!(read(&db, &key), Some(i));
            }));
        }
        for t in tasks {
            t.await.expect("task");
        }
        let commits = group.commits();
        assert!(
            commits < 400,
            "400 concurrent writes took {commits} transactions: none was shared"
        );
        assert!(commits >= 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_failing_write_is_answered_alone_and_leaves_nothing_while_the_others_commit() {
        let (_dir, db) = db();
        let group = Arc::new(GroupCommit::<()>::new(|()| {}));
        let mut tasks = Vec::new();
        for i in 0..200_u64 {
            let (group, db) = (Arc::clone(&group), Arc::clone(&db));
            tasks.push(tokio::spawn(async move {
                let k = format!("k{i}");
                let r = group
                    .write(&db, move |txn, _| {
                        let mut t = txn.open_table(T).map_err(unavailable)?;
                        t.insert(k.as_str(), i).map_err(unavailable)?;
                        // every tenth write fails after writing: its half must not be committed
                        if i % 10 == 3 {
                            return Err(StoreError::Corrupt(format!("write {i} refused")));
                        }
                        Ok(())
                    })
                    .await;
                (i, r)
            }));
        }
        for t in tasks {
            let (i, r) = t.await.expect("task");
            let key = format!("k{i}");
            if i % 10 == 3 {
                assert!(
                    matches!(&r, Err(StoreError::Corrupt(m)) if m == &format!("write {i} refused")),
                    "{i}: {r:?}"
                );
                assert_eq!(read(&db, &key), None, "{i}'s partial write was committed");
            } else {
                assert!(r.is_ok(), "{i}: {r:?}");
                assert_eq!(read(&db, &key), Some(i));
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn what_writes_stage_is_published_after_their_commit_and_never_for_a_failed_write() {
        let (_dir, db) = db();
        let published = Arc::new(Mutex::new(Vec::<u64>::new()));
        let sink = Arc::clone(&published);
        let group = Arc::new(GroupCommit::<Vec<u64>>::new(move |staged| {
            lock(&sink).extend(staged);
        }));
        let mut tasks = Vec::new();
        for i in 0..200_u64 {
            let (group, db, published) =
                (Arc::clone(&group), Arc::clone(&db), Arc::clone(&published));
            tasks.push(tokio::spawn(async move {
                let r = group
                    .write(&db, move |txn, staged: &mut Vec<u64>| {
                        let mut t = txn.open_table(T).map_err(unavailable)?;
                        t.insert(format!("k{i}").as_str(), i).map_err(unavailable)?;
                        staged.push(i);
                        if i % 10 == 3 {
                            return Err(StoreError::Corrupt(format!("write {i} refused")));
                        }
                        Ok(())
                    })
                    .await;
                // an answered write is published already
                assert_eq!(r.is_ok(), lock(&published).contains(&i), "{i}: {r:?}");
            }));
        }
        for t in tasks {
            t.await.expect("task");
        }
        let mut all = lock(&published).clone();
        all.sort_unstable();
        let expected: Vec<u64> = (0..200).filter(|i| i % 10 != 3).collect();
        assert_eq!(
            all, expected,
            "published once each, and only the committed ones"
        );
    }
}
