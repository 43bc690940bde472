//! The heartbeat's renewal without a script, on one Redis (directly or through Sentinel): optimistic
//! transactions over the lease's fields as `redis/heartbeat_fields.lua` keeps them, many renewals in each.
//!
//! Why: any Lua script costs redis-server ~130k instructions or more per renewal (its KEYS and ARGV
//! tables, the commands' arguments and replies turned into Lua values, string interning, the collector:
//! `scripts/experiments/renewal_floor.py`, docs/counted-session-secrets.md), where the plain commands of
//! this renewal cost ~50k. Redis's CPU is what every node shares, so that is what bounds a deployment.
//!
//! How: renewals wait in one queue, and each of [`WORKERS`] connections of the node's own takes what is
//! waiting (up to [`BATCH`], one per ticket) and runs it in two round trips:
//! 1. `WATCH` of every ticket's seats, then each lease's fields and its session index's time to live, the
//!    clock (`TIME`) and the configuration generation;
//! 2. on the node, each renewal decided ([`decide`]: the renewal by fields' two common cases, the same
//!    rules as the script, written once more here), then `MULTI`, the writes the script makes, `EXEC`.
//!
//! `EXEC` fails when anything wrote a watched seats in between (another renewal of the ticket, an admit,
//! a takeover, a revoke, an end), so each renewal still acts on what it read, as one script would. Such a
//! transaction is tried once more, then its renewals go to the script. Every case that is not one of the
//! two common ones, and a connection that fails before `EXEC` was sent, go to the script too, which
//! decides them all: nothing was written. A failure after `EXEC` was sent is reported, as a script's
//! would be. A Redis Cluster keeps the script: its client has no connection of its own to `WATCH` on.
//!
//! The queue, the workers and the handling of `EXEC`'s answer ([`Pool`], [`Step`], [`exec`]) serve the
//! admit without a script as well (`redis/admission.rs`), each kind of step with its own workers.
//!
//! One transaction per renewal would cost redis-server as much as the script: two round trips of its own
//! take more in system calls than Lua saves. Batched, a renewal costs it half the script's CPU
//! (BENCHMARKS.md, issue 16's fifteenth step).
//!
//! The node needs the session's ticket id to name the seats: a session never changes ticket, so the node
//! keeps the ids its admits, the scripts and the origin's lease checks returned
//! ([`super::cache::Owners`]); a session it has not seen takes the script.

use std::sync::Arc;

use redis::AsyncConnectionConfig;
use redis::aio::MultiplexedConnection;
use usher_core::session_secret::{ISSUED_MEMORY, RETIRED_MEMORY};

/// `redis/seats.lua`'s `ENDED_RETENTION_MS`: how long a session's end is remembered.
pub(super) const ENDED_RETENTION_MS: i64 = 3_600_000;
/// `redis/seats.lua`'s `INDEX_SLACK_MS`: how much longer than needed a rewritten session index lives.
pub(super) const INDEX_SLACK_MS: i64 = 300_000;
/// A keyed hash of a secret in the `h:` field: 64 hex digits.
const HASH_LEN: usize = 64;

/// What the node decides from a lease's fields (`heartbeat_fields.lua`'s `renew_fields`).
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Decision {
    /// Renewed: write these fields of the seats (`h:<sid>`, `t:<sid>`, `v`), the lease now expiring at
    /// `expires_at`.
    Renew {
        hot: String,
        touch: String,
        version: String,
        expires_at: i64,
        ttl_ms: i64,
    },
    /// The presented secret is none the lease knows: refused, and nothing is written (as the script).
    Wrong,
    /// Any other case (a lapsed lease, a clone, a retry past the issued memory, a lease of another form):
    /// the script decides.
    Script(Why),
}

/// Why a renewal or an admit went to the script rather than a transaction: the `reason` of
/// `usher_redis_renewals_total{way="script"}` and `usher_redis_admits_total{way="script"}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Why {
    /// A Redis Cluster: no connection of the node's own to `WATCH` on.
    Cluster,
    /// The player presented no fresh secret to issue.
    NoFreshSecret,
    /// The node has not seen the session (no admit of its own, no script's answer yet).
    UnknownSession,
    /// No connection, a read that failed, a store the node holds unusable.
    Unreachable,
    /// The session's index is gone: the script answers `unknown`.
    NoIndex,
    /// The lease lapsed and may not be revived.
    Lapsed,
    /// The presented secret is a retired one: the script records the clone.
    Clone,
    /// The presented secret is one of several issued, or a retry past the issued memory.
    Issued,
    /// A field of another shape than the renewal by fields writes.
    Shape,
    /// More steps of one ticket waiting than a worker carries to its next transaction; for an admit,
    /// also a ticket whose admits met others lately (`admission::CONTENDED`).
    Crowd,
    /// The transaction met another write twice.
    Conflict,
    /// A command was refused as it was queued (`EXECABORT`: a demoted master's `READONLY`, OOM).
    Refused,
    /// An admit of a ticket never played, or without seats yet: the script records the first play.
    FirstPlay,
    /// An admit on a database stamped below layout 3 (`seats.lua`).
    Layout,
    /// An admit with the seats' journal full: the script writes the whole hash.
    Journal,
    /// An admit that would push the ticket's list of ended sessions past its memory: the script drops
    /// the oldest.
    EndedMemory,
}

impl Why {
    const ALL: [Why; 16] = [
        Why::Cluster,
        Why::NoFreshSecret,
        Why::UnknownSession,
        Why::Unreachable,
        Why::NoIndex,
        Why::Lapsed,
        Why::Clone,
        Why::Issued,
        Why::Shape,
        Why::Crowd,
        Why::Conflict,
        Why::Refused,
        Why::FirstPlay,
        Why::Layout,
        Why::Journal,
        Why::EndedMemory,
    ];

    fn label(self) -> &'static str {
        match self {
            Why::Cluster => "cluster",
            Why::NoFreshSecret => "no_fresh_secret",
            Why::UnknownSession => "unknown_session",
            Why::Unreachable => "unreachable",
            Why::NoIndex => "no_index",
            Why::Lapsed => "lapsed",
            Why::Clone => "clone",
            Why::Issued => "issued",
            Why::Shape => "shape",
            Why::Crowd => "crowd",
            Why::Conflict => "conflict",
            Why::Refused => "refused",
            Why::FirstPlay => "first_play",
            Why::Layout => "layout",
            Why::Journal => "journal",
            Why::EndedMemory => "ended_memory",
        }
    }
}

/// The lease steps the node decides in transactions, counted each by the way it went.
#[derive(Clone, Copy)]
pub(super) enum Kind {
    /// `usher_redis_renewals_total`
    Renewal,
    /// `usher_redis_admits_total`
    Admit,
}

impl Kind {
    fn metric(self) -> &'static str {
        match self {
            Kind::Renewal => "usher_redis_renewals_total",
            Kind::Admit => "usher_redis_admits_total",
        }
    }
}

/// `usher_redis_renewals_total` and `usher_redis_admits_total`: one counter per way a step went, each
/// registered the first time it is counted (so `/metrics` lists the ways this node has seen).
pub(super) fn count(kind: Kind, way: Option<Why>) {
    use std::sync::OnceLock;
    static TRANSACTION: [OnceLock<metrics::Counter>; 2] = [const { OnceLock::new() }; 2];
    static SCRIPT: [[OnceLock<metrics::Counter>; Why::ALL.len()]; 2] =
        [const { [const { OnceLock::new() }; Why::ALL.len()] }; 2];
    match way {
        None => TRANSACTION[kind as usize]
            .get_or_init(|| metrics::counter!(kind.metric(), "way" => "transaction")),
        // a reason missing from `Why::ALL` (the test below fails then) is still counted, uncached
        Some(why) => match SCRIPT[kind as usize].get(why as usize) {
            Some(counter) => counter.get_or_init(|| script_counter(kind, why)),
            None => return script_counter(kind, why).increment(1),
        },
    }
    .increment(1);
}

fn script_counter(kind: Kind, why: Why) -> metrics::Counter {
    metrics::counter!(kind.metric(), "way" => "script", "reason" => why.label())
}

/// The lease's fields as read: the `h:` field (`renewed_at,expires_at,ttl_ms,prev,issued,retired`), the
/// `t:` field (`seq,at,first`) and the seats' version.
pub(super) struct Fields<'a> {
    pub(super) hot: &'a str,
    pub(super) touch: Option<&'a str>,
    pub(super) version: i64,
}

/// What the player presented: its secret's keyed hash and the fresh one to issue, as hex; the time after
/// which a lapsed lease may still be revived (usher-core lease.rs `Presented::revive_since`).
pub(super) struct Renewal<'a> {
    pub(super) presented: &'a str,
    pub(super) fresh: &'a str,
    pub(super) revive_since: Option<i64>,
}

/// A list of whole hashes `len` bytes long: empty, or hashes separated by single spaces.
fn hash_list(len: usize) -> bool {
    len == 0 || (len + 1).is_multiple_of(HASH_LEN + 1)
}

/// `renew_fields` of `heartbeat_fields.lua`, on the node: the same cases, the same fields written. `now`
/// is Redis's clock (or the test clock), read in the same round trip as the fields.
pub(super) fn decide(fields: &Fields<'_>, renewal: &Renewal<'_>, now: i64) -> Decision {
    let mut parts = fields.hot.splitn(6, ',');
    let (Some(renewed), Some(expires), Some(ttl), Some(prev), Some(issued), Some(retired)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Decision::Script(Why::Shape);
    };
    let (Ok(_), Ok(expires_at), Ok(ttl_ms)) = (
        renewed.parse::<i64>(),
        expires.parse::<i64>(),
        ttl.parse::<i64>(),
    ) else {
        return Decision::Script(Why::Shape);
    };
    if retired.contains(',') {
        return Decision::Script(Why::Shape);
    }
    // lapsed, and not revivable (lapsed before the time the player may still revive it from)
    if expires_at <= now && renewal.revive_since.is_none_or(|s| expires_at <= s) {
        return Decision::Script(Why::Lapsed);
    }
    let (presented, fresh) = (renewal.presented, renewal.fresh);
    if presented.len() != HASH_LEN
        || fresh.len() != HASH_LEN
        || !(prev.is_empty() || prev.len() == HASH_LEN)
        || issued.is_empty()
        || !hash_list(issued.len())
        || !hash_list(retired.len())
    {
        return Decision::Script(Why::Shape);
    }
    // SecretChain::check's order: issued, previous, retired
    let (prev, issued, retired) = if issued == presented {
        // current, the only one issued: it becomes the previous, the previous retires
        let retired = if prev.is_empty() {
            retired.to_owned()
        } else {
            // the newest RETIRED_MEMORY - 1 retired hashes, then the previous
            let keep = retired.len().min((RETIRED_MEMORY - 1) * (HASH_LEN + 1) - 1);
            if keep > 0 {
                format!("{} {prev}", &retired[retired.len() - keep..])
            } else {
                prev.to_owned()
            }
        };
        (presented, fresh.to_owned(), retired)
    } else if issued.contains(presented) {
        // one of several issued: the script retires the others in their order
        return Decision::Script(Why::Issued);
    } else if prev == presented {
        // the previous (a retry of a lost answer): one more is issued beside the current ones
        if (issued.len() + 1) / (HASH_LEN + 1) >= ISSUED_MEMORY {
            return Decision::Script(Why::Issued);
        }
        (prev, format!("{issued} {fresh}"), retired.to_owned())
    } else if retired.contains(presented) {
        // a retired one (a clone): the script records it
        return Decision::Script(Why::Clone);
    } else {
        return Decision::Wrong;
    };
    let Some(version) = fields.version.checked_add(1) else {
        return Decision::Script(Why::Shape);
    };
    // the first renewal's time since the last whole write stays (seats.lua load_seats)
    let first = match fields.touch {
        None => now.to_string(),
        Some(t) => match t.split(',').collect::<Vec<_>>()[..] {
            [_, _, first] => first.to_owned(),
            _ => return Decision::Script(Why::Shape),
        },
    };
    let expires_at = now + ttl_ms;
    Decision::Renew {
        hot: format!("{now},{expires_at},{ttl_ms},{prev},{issued},{retired}"),
        touch: format!("{version},{now},{first}"),
        version: version.to_string(),
        expires_at,
        ttl_ms,
    }
}

/// One renewal for a [`Pool`]'s batch: the keys the store names, what the player presented.
pub(super) struct Job {
    /// The ticket's seats (`seats:{ticket id}`), watched.
    pub(super) seats: String,
    /// The session's index (`session:{id}`).
    pub(super) index: String,
    /// The prefix of the show's live set (`live:`), the show id read with the lease follows it.
    pub(super) live: String,
    pub(super) session: String,
    pub(super) ticket: String,
    /// The configuration generation's key, and the test clock's (`None`: Redis's `TIME`): the same for
    /// every job of a node, so a batch reads them once, by its first job's names.
    pub(super) generation: String,
    pub(super) clock: Option<String>,
    pub(super) presented: String,
    pub(super) fresh: String,
    pub(super) revive_since: Option<i64>,
}

/// How a [`Job`] ended.
#[derive(Debug)]
pub(super) enum Outcome {
    Renewed {
        expires_at: i64,
        show_id: String,
        generation: i64,
    },
    Wrong {
        show_id: String,
        generation: i64,
    },
    /// Nothing was written: the script decides.
    Script(Why),
    /// The transaction was sent and its answer lost: the renewal may have been written.
    Failed(redis::RedisError),
}

/// How many connections of its own a node runs transactions on per kind of step (renewals, admits),
/// each running one batch at a time.
pub(super) const WORKERS: usize = 4;
/// The most steps one transaction carries.
pub(super) const BATCH: usize = 32;

/// A lease step a [`Pool`] decides on the node in a transaction of a batch: a renewal ([`Job`]) or an
/// admit (`redis/admission.rs`); [`super::Workers`] has a pool of each.
pub(super) trait Step: Sized + Send + 'static {
    type Outcome: Send + 'static;
    /// The most steps a worker carries to its next transaction because another step of the same seats
    /// was in this one (the others go to the script).
    const CARRIED: usize;
    /// The ticket's seats the step writes (one step per seats in a transaction).
    fn seats(&self) -> &str;
    /// The outcome that leaves the step to the script, nothing written.
    fn script(why: Why) -> Self::Outcome;
    /// Runs one transaction of `jobs` (one per seats), answering each, or gives back the ones to try
    /// again (`last`: there is no again).
    fn attempt(
        con: &mut MultiplexedConnection,
        jobs: Vec<Queued<Self>>,
        last: bool,
    ) -> impl std::future::Future<Output = Attempt<Self>> + Send;
}

/// A step waiting for a worker, and where its outcome goes.
pub(super) type Queued<S> = (S, tokio::sync::oneshot::Sender<<S as Step>::Outcome>);

/// One kind of step's queue and [`WORKERS`] workers.
pub(super) struct Pool<S: Step> {
    queue: tokio::sync::mpsc::Sender<Queued<S>>,
}

/// How long a worker whose connection could not be opened leaves its steps to the script before it
/// tries again.
const RECONNECT: std::time::Duration = std::time::Duration::from_secs(1);

/// How many steps may wait for a worker; more wait to be queued.
const QUEUED: usize = 4_096;

impl<S: Step> Pool<S> {
    pub(super) fn new(client: redis::Client, config: AsyncConnectionConfig) -> Self {
        let (queue, waiting) = tokio::sync::mpsc::channel::<Queued<S>>(QUEUED);
        let waiting = Arc::new(tokio::sync::Mutex::new(waiting));
        for _ in 0..WORKERS {
            let (client, config, waiting) = (client.clone(), config.clone(), Arc::clone(&waiting));
            tokio::spawn(async move {
                let mut con: Option<MultiplexedConnection> = None;
                let mut failed: Option<std::time::Instant> = None;
                // steps of seats that another step of the last batch held
                let mut carried: Vec<Queued<S>> = Vec::new();
                loop {
                    let mut taken = std::mem::take(&mut carried);
                    if taken.is_empty() {
                        let mut waiting = waiting.lock().await;
                        let Some(first) = waiting.recv().await else {
                            return;
                        };
                        taken.push(first);
                        take_waiting(&mut waiting, &mut taken);
                    } else if let Ok(mut waiting) = waiting.try_lock() {
                        // never wait for the queue with steps in hand: the worker holding it waits
                        // for new steps, which may be waiting on these
                        take_waiting(&mut waiting, &mut taken);
                    }
                    // one step per seats: two in one transaction would both act on what was read before
                    // either; up to S::CARRIED others wait for this worker's next transaction, and past
                    // them the script decides (a crowd of one session's copies must not hold up the
                    // others')
                    let mut seats = std::collections::HashSet::with_capacity(taken.len());
                    let (batch, mut later): (Vec<Queued<S>>, Vec<Queued<S>>) = taken
                        .into_iter()
                        .partition(|(job, _)| seats.insert(job.seats().to_owned()));
                    for (_, reply) in later.split_off(later.len().min(S::CARRIED)) {
                        let _ = reply.send(S::script(Why::Crowd));
                    }
                    carried = later;
                    // a connection, unless the last try failed less than RECONNECT ago: while Redis
                    // is unreachable the script answers at once, and only one batch a second waits for
                    // a connection to time out
                    if con.is_none() && failed.is_none_or(|at| at.elapsed() >= RECONNECT) {
                        con = client
                            .get_multiplexed_async_connection_with_config(&config)
                            .await
                            .ok();
                        failed = con.is_none().then(std::time::Instant::now);
                    }
                    let Some(c) = con.as_mut() else {
                        // no connection: the script decides (and reports Redis unreachable)
                        for (_, reply) in batch {
                            let _ = reply.send(S::script(Why::Unreachable));
                        }
                        continue;
                    };
                    if !run(c, batch).await {
                        // the connection may hold a watch or a transaction: a new one next time
                        con = None;
                    }
                }
            });
        }
        Self { queue }
    }

    /// Runs `job` through a batch; the script's outcome when the workers are gone.
    pub(super) async fn run(&self, job: S) -> S::Outcome {
        let (reply, outcome) = tokio::sync::oneshot::channel();
        if self.queue.send((job, reply)).await.is_err() {
            return S::script(Why::Unreachable);
        }
        outcome
            .await
            .unwrap_or_else(|_| S::script(Why::Unreachable))
    }
}

/// Adds what is waiting to `taken`, up to [`BATCH`].
fn take_waiting<S: Step>(
    waiting: &mut tokio::sync::mpsc::Receiver<Queued<S>>,
    taken: &mut Vec<Queued<S>>,
) {
    while taken.len() < BATCH {
        match waiting.try_recv() {
            Ok(job) => taken.push(job),
            Err(_) => break,
        }
    }
}

/// Runs one batch on `con` (one step per seats), answering every job; false when the connection is to be
/// dropped. A transaction that met another write is tried once more with the steps it carried (their
/// seats read again): the write that met it was most likely one ticket's, and the others' would otherwise
/// all go to the script.
async fn run<S: Step>(con: &mut MultiplexedConnection, mut batch: Vec<Queued<S>>) -> bool {
    for last in [false, true] {
        match S::attempt(con, batch, last).await {
            Attempt::Done(keep) => return keep,
            Attempt::Again(retry) => batch = retry,
        }
    }
    true
}

/// How one transaction of a batch ended.
pub(super) enum Attempt<S: Step> {
    /// Every job answered; whether the connection can serve again.
    Done(bool),
    /// It met another write: these steps are to be tried again.
    Again(Vec<Queued<S>>),
}

impl Step for Job {
    type Outcome = Outcome;
    /// A player's retry may meet its own renewal in a batch: it waits for the next.
    const CARRIED: usize = BATCH / 4;

    fn seats(&self) -> &str {
        &self.seats
    }

    fn script(why: Why) -> Outcome {
        Outcome::Script(why)
    }

    fn attempt(
        con: &mut MultiplexedConnection,
        jobs: Vec<Queued<Self>>,
        last: bool,
    ) -> impl std::future::Future<Output = Attempt<Self>> + Send {
        attempt(con, jobs, last)
    }
}

async fn attempt(
    con: &mut MultiplexedConnection,
    jobs: Vec<Queued<Job>>,
    last: bool,
) -> Attempt<Job> {
    let first = &jobs[0].0;
    let mut read = redis::Pipeline::with_capacity(2 * jobs.len() + 3);
    let watch = read.add_command(sized(
        "WATCH",
        1 + jobs.len(),
        jobs.iter().map(|(j, _)| j.seats.len()).sum(),
    ));
    for (job, _) in &jobs {
        watch.arg(&job.seats);
    }
    read.ignore();
    for (job, _) in &jobs {
        let session = job.session.as_str();
        read.add_command(sized("HMGET", 6, job.seats.len() + 2 * session.len() + 16))
            .arg(&job.seats)
            .arg("show_id")
            .arg(Joined("h:", session))
            .arg(Joined("t:", session))
            .arg("v");
        read.add_command(sized("PTTL", 2, job.index.len()))
            .arg(&job.index);
    }
    match &first.clock {
        Some(key) => read.cmd("GET").arg(key),
        None => read.cmd("TIME"),
    };
    read.cmd("GET").arg(&first.generation);
    // an error here (a lease of the JSON layout, a lost connection) writes nothing: the script decides
    let replies: Vec<redis::Value> = match read.query_async(con).await {
        Ok(replies) => replies,
        Err(_) => {
            for (_, reply) in jobs {
                let _ = reply.send(Outcome::Script(Why::Unreachable));
            }
            return Attempt::Done(false);
        }
    };
    let parsed = parse_reads(&replies, jobs.len());
    let mut write = redis::Pipeline::with_capacity(3 * jobs.len());
    write.atomic();
    let mut writing = Vec::new();
    for (n, (job, reply)) in jobs.into_iter().enumerate() {
        let Some(((fields, index_ttl), now, generation)) =
            parsed.as_ref().map(|(f, now, g)| (&f[n], *now, *g))
        else {
            let _ = reply.send(Outcome::Script(Why::Shape));
            continue;
        };
        // a session whose index is gone is unknown to the script
        let ([Some(show_id), Some(hot), touch, Some(version)], false) =
            (&fields[..], *index_ttl == -2)
        else {
            let why = if *index_ttl == -2 {
                Why::NoIndex
            } else {
                Why::Shape
            };
            let _ = reply.send(Outcome::Script(why));
            continue;
        };
        let Ok(version) = version.parse::<i64>() else {
            let _ = reply.send(Outcome::Script(Why::Shape));
            continue;
        };
        let fields = Fields {
            hot,
            touch: touch.as_deref(),
            version,
        };
        let renewal = Renewal {
            presented: &job.presented,
            fresh: &job.fresh,
            revive_since: job.revive_since,
        };
        match decide(&fields, &renewal, now) {
            Decision::Script(why) => {
                let _ = reply.send(Outcome::Script(why));
            }
            Decision::Wrong => {
                let _ = reply.send(Outcome::Wrong {
                    show_id: show_id.clone(),
                    generation,
                });
            }
            Decision::Renew {
                hot,
                touch,
                version,
                expires_at,
                ttl_ms,
            } => {
                let session = job.session.as_str();
                write
                    .add_command(sized(
                        "HSET",
                        8,
                        job.seats.len() + 2 * session.len() + hot.len() + touch.len() + 40,
                    ))
                    .arg(&job.seats)
                    .arg(Joined("h:", session))
                    .arg(hot)
                    .arg(Joined("t:", session))
                    .arg(touch)
                    .arg("v")
                    .arg(version);
                write
                    .add_command(sized(
                        "ZADD",
                        4,
                        job.live.len() + show_id.len() + session.len() + 24,
                    ))
                    .arg(Joined(&job.live, show_id))
                    .arg(expires_at)
                    .arg(session);
                // seats.lua index_session: rewritten only once its time to live runs short
                if *index_ttl < ttl_ms + ENDED_RETENTION_MS {
                    write
                        .cmd("SET")
                        .arg(&job.index)
                        .arg(&job.ticket)
                        .arg("PX")
                        .arg(ttl_ms + ENDED_RETENTION_MS + INDEX_SLACK_MS);
                }
                let renewed = Outcome::Renewed {
                    expires_at,
                    show_id: show_id.clone(),
                    generation,
                };
                writing.push((job, reply, renewed));
            }
        }
    }
    exec(con, write, writing, last, Outcome::Failed).await
}

/// A command with room for `args` arguments (its name included) and about `bytes` of them: redis-rs
/// starts a command's buffers empty and grows them argument by argument, 5 to 7 allocations per command
/// of a batch (issue 16: the largest allocation site of a Redis heartbeat on the node).
fn sized(name: &str, args: usize, bytes: usize) -> redis::Cmd {
    let mut cmd = redis::Cmd::with_capacity(args, name.len() + bytes);
    cmd.arg(name);
    cmd
}

/// `prefix` and `id` as one argument, written straight into the command (no `format!`).
pub(super) struct Joined<'a>(pub(super) &'a str, pub(super) &'a str);

impl redis::ToRedisArgs for Joined<'_> {
    fn write_redis_args<W: ?Sized + redis::RedisWrite>(&self, out: &mut W) {
        use std::io::Write as _;
        let mut arg = out.writer_for_next_arg();
        // writing into the command's own buffer cannot fail
        let _ = arg.write_all(self.0.as_bytes());
        let _ = arg.write_all(self.1.as_bytes());
    }
}

impl redis::ToSingleRedisArg for Joined<'_> {}

/// Sends a batch's transaction `write` (its `MULTI`, its writes and `EXEC`) for the steps `writing`, each
/// with the outcome it has once written, and answers them: written; nothing written (a watched seats
/// written meanwhile: once more, then the script; a command refused as it was queued: the script); or
/// `failed` (the answer lost after `EXEC` was sent: the writes may have happened). Nothing to write ends
/// the watch instead.
pub(super) async fn exec<S: Step>(
    con: &mut MultiplexedConnection,
    write: redis::Pipeline,
    writing: Vec<(S, tokio::sync::oneshot::Sender<S::Outcome>, S::Outcome)>,
    last: bool,
    failed: fn(redis::RedisError) -> S::Outcome,
) -> Attempt<S> {
    if writing.is_empty() {
        // nothing to write: the watch ends here, so the connection can serve again
        return Attempt::Done(redis::cmd("UNWATCH").query_async::<()>(con).await.is_ok());
    }
    let answer_all = |writing: Vec<(S, _, _)>, outcome: &dyn Fn() -> S::Outcome, keep| {
        for (_, reply, _) in writing {
            let _ = tokio::sync::oneshot::Sender::send(reply, outcome());
        }
        Attempt::Done(keep)
    };
    match write.query_async::<redis::Value>(con).await {
        Ok(redis::Value::Array(replies))
            if !replies
                .iter()
                .any(|r| matches!(r, redis::Value::ServerError(_))) =>
        {
            for (_, reply, done) in writing {
                let _ = reply.send(done);
            }
            Attempt::Done(true)
        }
        // a write to a watched seats since the reads: nothing was written; once more, then the script
        Ok(redis::Value::Nil) if !last => Attempt::Again(
            writing
                .into_iter()
                .map(|(job, reply, _)| (job, reply))
                .collect(),
        ),
        // the same again, or a command refused as it was queued (a demoted master's READONLY, OOM:
        // EXECABORT): nothing was written, the script decides
        Ok(redis::Value::Nil) => answer_all(writing, &|| S::script(Why::Conflict), true),
        Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::ExecAbort) => {
            answer_all(writing, &|| S::script(Why::Refused), true)
        }
        // any other failure may follow writes that happened: reported, as a script's would be (a
        // renewal's retry presents the same secret: SecretChain's retry of a lost answer)
        Err(e) => answer_all(writing, &|| failed(e.clone()), false),
        Ok(other) => {
            let e = redis::RedisError::from((
                redis::ErrorKind::Parse,
                "a lease step's transaction answered",
                format!("{other:?}"),
            ));
            answer_all(writing, &|| failed(e.clone()), false)
        }
    }
}

/// The first round trip's replies by job (the lease's four fields, the index's time to live), the clock
/// in milliseconds and the generation; `None` when they are not of that shape.
#[allow(clippy::type_complexity)]
fn parse_reads(
    replies: &[redis::Value],
    jobs: usize,
) -> Option<(Vec<(Vec<Option<String>>, i64)>, i64, i64)> {
    use redis::FromRedisValue;
    if replies.len() != 2 * jobs + 2 {
        return None;
    }
    let mut per_job = Vec::with_capacity(jobs);
    for pair in replies[..2 * jobs].chunks(2) {
        let fields = Vec::<Option<String>>::from_redis_value_ref(&pair[0]).ok()?;
        let ttl = i64::from_redis_value_ref(&pair[1]).ok()?;
        if fields.len() != 4 {
            return None;
        }
        per_job.push((fields, ttl));
    }
    let now = clock(&replies[2 * jobs])?;
    let generation = match &replies[2 * jobs + 1] {
        redis::Value::Nil => 0,
        other => i64::from_redis_value_ref(other).ok()?,
    };
    Some((per_job, now, generation))
}

/// The clock in milliseconds from `TIME`'s answer (seconds, microseconds), or from the test clock's key.
pub(super) fn clock(reply: &redis::Value) -> Option<i64> {
    use redis::FromRedisValue;
    match reply {
        redis::Value::Array(t) if t.len() == 2 => {
            let s = i64::from_redis_value_ref(&t[0]).ok()?;
            let us = i64::from_redis_value_ref(&t[1]).ok()?;
            s.checked_mul(1000)?.checked_add(us / 1000)
        }
        other => i64::from_redis_value_ref(other).ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(c: char) -> String {
        c.to_string().repeat(HASH_LEN)
    }

    fn renewal<'a>(presented: &'a str, fresh: &'a str) -> Renewal<'a> {
        Renewal {
            presented,
            fresh,
            revive_since: None,
        }
    }

    fn decide_on(hot: &str, touch: Option<&str>, r: &Renewal<'_>, now: i64) -> Decision {
        decide(
            &Fields {
                hot,
                touch,
                version: 7,
            },
            r,
            now,
        )
    }

    #[test]
    fn every_reason_has_its_counter_and_its_own_label() {
        let mut labels = std::collections::HashSet::new();
        for (i, why) in Why::ALL.into_iter().enumerate() {
            assert_eq!(why as usize, i, "{why:?} out of its place in Why::ALL");
            assert!(labels.insert(why.label()), "{why:?}'s label is another's");
        }
    }

    #[test]
    fn the_constants_are_the_scripts() {
        let seats = include_str!("seats.lua");
        for line in [
            format!("local ENDED_RETENTION_MS = {ENDED_RETENTION_MS}\n"),
            format!("local INDEX_SLACK_MS = {INDEX_SLACK_MS}\n"),
            format!("local ISSUED_MEMORY = {ISSUED_MEMORY}\n"),
            format!("local RETIRED_MEMORY = {RETIRED_MEMORY}\n"),
        ] {
            assert!(seats.contains(&line), "seats.lua lost {line:?}");
        }
        assert!(
            include_str!("heartbeat_fields.lua")
                .contains(&format!("local HASH_LEN = {HASH_LEN}\n"))
        );
    }

    #[test]
    fn the_current_secret_moves_the_chain_and_the_previous_retires() {
        let (a, b, c, r) = (h('a'), h('b'), h('c'), h('r'));
        let hot = format!("100,40000,35000,{a},{b},{r}");
        let Decision::Renew {
            hot,
            touch,
            version,
            expires_at,
            ttl_ms,
        } = decide_on(&hot, Some("7,100,50"), &renewal(&b, &c), 1_000)
        else {
            panic!("renewed")
        };
        assert_eq!(hot, format!("1000,36000,35000,{b},{c},{r} {a}"));
        assert_eq!((touch.as_str(), version.as_str()), ("8,1000,50", "8"));
        assert_eq!((expires_at, ttl_ms), (36_000, 35_000));
    }

    #[test]
    fn the_retired_memory_keeps_the_newest() {
        let (p, cur, fresh) = (h('p'), h('c'), h('f'));
        let retired: Vec<String> = "012345".chars().map(h).collect();
        let hot = format!("1,9000,5000,{p},{cur},{}", retired.join(" "));
        let Decision::Renew { hot, .. } = decide_on(&hot, None, &renewal(&cur, &fresh), 10) else {
            panic!("renewed")
        };
        let kept = hot.rsplit(',').next().unwrap();
        assert_eq!(kept, format!("{} {p}", retired[1..].join(" ")));
        assert!(hot.starts_with("10,5010,5000,"));
    }

    #[test]
    fn a_retry_of_the_previous_issues_one_more_until_the_memory_is_full() {
        let (p, cur, fresh) = (h('p'), h('c'), h('f'));
        let hot = format!("1,9000,5000,{p},{cur},");
        let Decision::Renew { hot, touch, .. } = decide_on(&hot, None, &renewal(&p, &fresh), 10)
        else {
            panic!("renewed")
        };
        assert_eq!(hot, format!("10,5010,5000,{p},{cur} {fresh},"));
        assert_eq!(touch, "8,10,10", "no touch field: the first renewal is now");
        // seven issued take one more; eight are the memory (ISSUED_MEMORY), and the script decides
        let seven: Vec<String> = (0..ISSUED_MEMORY - 1).map(|i| format!("{i:064}")).collect();
        let hot = format!("1,9000,5000,{p},{},", seven.join(" "));
        assert!(matches!(
            decide_on(&hot, None, &renewal(&p, &fresh), 10),
            Decision::Renew { .. }
        ));
        let full: Vec<String> = (0..ISSUED_MEMORY).map(|i| format!("{i:064}")).collect();
        let hot = format!("1,9000,5000,{p},{},", full.join(" "));
        assert_eq!(
            decide_on(&hot, None, &renewal(&p, &fresh), 10),
            Decision::Script(Why::Issued)
        );
    }

    #[test]
    fn clones_lapsed_leases_and_odd_shapes_go_to_the_script_and_strangers_are_wrong() {
        let (p, a, b, r, x, f) = (h('p'), h('a'), h('b'), h('r'), h('x'), h('f'));
        let script = |hot: &str, presented: &str, why: Why| {
            assert_eq!(
                decide_on(hot, None, &renewal(presented, &f), 10),
                Decision::Script(why),
                "{hot}"
            );
        };
        script(&format!("1,9000,5000,{p},{a} {b},{r}"), &b, Why::Issued); // one of several issued
        script(&format!("1,9000,5000,{p},{a},{r}"), &r, Why::Clone);
        script(&format!("1,10,5000,{p},{a},{r}"), &a, Why::Lapsed);
        script(&format!("1,9000,5000,{p},{a},{r},"), &a, Why::Shape); // a seventh part
        script(&format!("1,9000,x,{p},{a},{r}"), &a, Why::Shape); // not a number
        script(&format!("1,9000,5000,{p},,{r}"), &p, Why::Shape); // nothing issued
        script(&format!("1,9000,5000,{p},{a},{r}"), "short", Why::Shape);
        assert_eq!(
            decide_on(
                &format!("1,9000,5000,{p},{a},{r}"),
                None,
                &renewal(&x, &f),
                10
            ),
            Decision::Wrong
        );
        assert_eq!(
            decide_on(
                &format!("1,9000,5000,{p},{a},{r}"),
                Some("odd"),
                &renewal(&a, &f),
                10
            ),
            Decision::Script(Why::Shape)
        );
        let revived = Renewal {
            presented: &a,
            fresh: &f,
            revive_since: Some(5),
        };
        assert!(matches!(
            decide_on(&format!("1,10,5000,{p},{a},{r}"), None, &revived, 20),
            Decision::Renew {
                expires_at: 5020,
                ..
            }
        ));
    }
}
