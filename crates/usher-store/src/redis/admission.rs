//! The admit without a script, on one Redis (directly or through Sentinel): optimistic transactions over
//! the fields `redis/admit_fields.lua` reads and writes, many admits in each, as the heartbeat's renewals
//! run (`redis/renewal.rs`, whose workers, batches and retries these share).
//!
//! Why: the admit by fields costs redis-server ~410k instructions, ~85 % of them Lua's interpreter; the
//! same takeover as plain commands under `WATCH` costs ~138k (`scripts/experiments/admit_floor.py`,
//! BENCHMARKS.md, issue 16's sixteenth step). Redis's CPU is what every node shares.
//!
//! How: three round trips for a batch of admits, one per ticket:
//! 1. `WATCH` of every ticket's seats and its record; then the seats' head (`played`, `show_id`, `ls`,
//!    `jn`, `v`), the ticket's record, the length of its list of ended sessions, the layout stamp, the
//!    clock and the configuration generation;
//! 2. the fields (`l:`, `h:`, `t:`) of the leases each head's `ls` names;
//! 3. on the node, each admit decided ([`decide`]: `admit_by_fields`'s rules, written once more here),
//!    then `MULTI`, the writes the script makes, `EXEC`.
//!
//! A revoked ticket is answered from the first round trip. The node decides a new seat, a takeover
//! (newest wins) and a refusal (oldest wins) of a ticket played before; the script decides the rest, from
//! what it reads itself, nothing being written: a first play, a device re-attaching with its secret or
//! presenting a retired one, a full journal, a list of ended sessions at its memory, a layout below 3, a
//! field of another shape. `EXEC` fails when anything wrote a watched key in between; such a transaction
//! is tried once more, then its admits go to the script.

use redis::aio::MultiplexedConnection;
use serde_json::{Value, json};

use super::renewal::{Attempt, ENDED_RETENTION_MS, INDEX_SLACK_MS, Queued, Step, Why, exec};

/// `seats.lua`'s `ENDED_MEMORY`: the most ended sessions a ticket remembers.
const ENDED_MEMORY: i64 = usher_core::lease::ENDED_MEMORY as i64;
/// `seats.lua`'s `JOURNAL_MEMORY`: from this many waiting `j:` fields on, an admit writes the whole hash.
const JOURNAL_MEMORY: i64 = 64;
/// The layout whose admit is by fields (`seats.lua`, REDIS_SCHEMA 3).
const LAYOUT: i64 = 3;

/// One admit for a batch: the keys the store names, what the request asks.
pub(super) struct Job {
    /// The ticket's seats (`seats:{ticket id}`), watched.
    pub(super) seats: String,
    /// The ticket's record, watched (a revoke writes only it when nothing is seated).
    pub(super) ticket_key: String,
    /// The shard's key prefix: `ended:`, `session:` and `live:` keys follow it.
    pub(super) prefix: String,
    /// The layout stamp's key, the configuration generation's and the test clock's (`None`: Redis's
    /// `TIME`): the same for every job of a node, so a batch reads them by its first job's names.
    pub(super) schema: String,
    pub(super) generation: String,
    pub(super) clock: Option<String>,
    /// The show's door passes (`door:{show}:passes`), from which a new seat takes the ticket's.
    pub(super) passes: String,
    pub(super) ticket: String,
    pub(super) device: String,
    pub(super) label: String,
    /// The new session's id, should it be seated.
    pub(super) session: String,
    /// Seats of the ticket (at least 1) and whether the oldest session keeps its seat.
    pub(super) seats_allowed: usize,
    pub(super) oldest_wins: bool,
    pub(super) ttl_ms: i64,
    pub(super) country: String,
    pub(super) address: String,
    /// The presented secret's keyed hash as hex (`""`: none), and the fresh one to issue.
    pub(super) presented: String,
    pub(super) fresh: String,
}

impl Job {
    fn ended_list(&self) -> String {
        format!("{}:ended", self.seats)
    }
}

/// How a [`Job`] ended.
#[derive(Debug)]
pub(super) enum Outcome {
    Admitted {
        session: String,
        expires_at: i64,
        superseded: Vec<String>,
        reattached: bool,
        generation: i64,
    },
    InUse {
        retry_after_s: i64,
        generation: i64,
    },
    Revoked {
        generation: i64,
    },
    /// Nothing was written: the script decides.
    Script(Why),
    /// The transaction was sent and its answer lost: the admit may have been written.
    Failed(redis::RedisError),
}

/// The seats' head as the first round trip reads it.
pub(super) struct Head<'a> {
    pub(super) played: Option<&'a str>,
    pub(super) show_id: Option<&'a str>,
    pub(super) ls: Option<&'a str>,
    pub(super) jn: Option<&'a str>,
    pub(super) v: Option<&'a str>,
}

/// What the head says of the seats: their show, the sessions whose fields to read, the journal's length
/// and the version; the script's case otherwise (`admit_by_fields`' first checks).
pub(super) struct Seats<'a> {
    pub(super) show_id: &'a str,
    pub(super) sessions: Vec<&'a str>,
    pub(super) journal: i64,
    pub(super) version: i64,
}

pub(super) fn seats<'a>(head: &Head<'a>, layout: i64) -> Result<Seats<'a>, Why> {
    if layout < LAYOUT {
        return Err(Why::Layout);
    }
    let (Some(_), Some(show_id), Some(ls)) = (head.played, head.show_id, head.ls) else {
        return Err(Why::FirstPlay);
    };
    let number = |f: Option<&str>| f.unwrap_or("0").parse::<i64>().map_err(|_| Why::Shape);
    let (journal, version) = (number(head.jn)?, number(head.v)?);
    if journal >= JOURNAL_MEMORY {
        return Err(Why::Journal);
    }
    let sessions: Vec<&str> = if ls.is_empty() {
        Vec::new()
    } else {
        ls.split(' ').collect()
    };
    let mut seen = std::collections::HashSet::with_capacity(sessions.len());
    if sessions.iter().any(|s| s.is_empty() || !seen.insert(*s)) {
        return Err(Why::Shape);
    }
    Ok(Seats {
        show_id,
        sessions,
        journal,
        version,
    })
}

/// A lease as its fields hold it (`l:`, `h:`, `t:`).
struct Lease<'a> {
    session: &'a str,
    /// The `l:` field as read.
    fixed: Value,
    n: i64,
    device: String,
    label: String,
    created_at: i64,
    renewed_at: i64,
    expires_at: i64,
    previous: &'a str,
    issued: &'a str,
    retired: &'a str,
    /// Its renewal since the last whole write (`seq,at,first`), `seq` as written.
    touch: Option<(&'a str, i64, i64)>,
}

fn lease<'a>(
    session: &'a str,
    fixed: &str,
    hot: &'a str,
    touch: Option<&'a str>,
) -> Option<Lease<'a>> {
    let fixed: Value = serde_json::from_str(fixed).ok()?;
    if fixed.get("session_id")?.as_str()? != session {
        return None;
    }
    let (n, device, label, created_at) = (
        fixed.get("n")?.as_i64()?,
        fixed.get("device_id")?.as_str()?.to_owned(),
        fixed.get("device_label")?.as_str()?.to_owned(),
        fixed.get("created_at")?.as_i64()?,
    );
    let mut parts = hot.splitn(6, ',');
    let mut number = || parts.next()?.parse::<i64>().ok();
    let (renewed_at, expires_at, _ttl) = (number()?, number()?, number()?);
    let (previous, issued, retired) = (parts.next()?, parts.next()?, parts.next()?);
    if retired.contains(',') {
        return None;
    }
    let touch = match touch {
        None => None,
        Some(t) => match t.split(',').collect::<Vec<_>>()[..] {
            [seq, at, first] => {
                seq.parse::<i64>().ok()?;
                Some((seq, at.parse().ok()?, first.parse().ok()?))
            }
            _ => return None,
        },
    };
    Some(Lease {
        session,
        fixed,
        n,
        device,
        label,
        created_at,
        renewed_at,
        expires_at,
        previous,
        issued,
        retired,
        touch,
    })
}

/// What an admit by the node writes and answers.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Plan {
    pub(super) answer: Answer,
    /// Sessions ended (lapsed, then superseded), each with its end's record as JSON.
    pub(super) ends: Vec<(String, String)>,
    /// Seats' fields dropped, then written.
    pub(super) drop: Vec<String>,
    pub(super) put: Vec<(String, String)>,
}

#[derive(Debug, PartialEq, Eq)]
pub(super) enum Answer {
    /// Seated until `expires_at`: the job's new session, ending `superseded`, or (`reattached`) the
    /// device's own, renewed.
    Admitted {
        session: String,
        expires_at: i64,
        superseded: Vec<String>,
        reattached: bool,
    },
    InUse {
        retry_after_s: i64,
    },
}

/// `admit_by_fields` of `admit_fields.lua`, on the node, from the seats' head and the fields of the
/// leases it names (`leases[i]`: `l:`, `h:` and `t:` of `seats.sessions[i]`), the length of the ticket's
/// list of ended sessions and Redis's clock: the same cases, the same fields written.
pub(super) fn decide(
    job: &Job,
    seats: &Seats<'_>,
    leases: &[[Option<String>; 3]],
    ended: i64,
    now: i64,
) -> Result<Plan, Why> {
    if leases.len() != seats.sessions.len() {
        return Err(Why::Shape);
    }
    let mut all = Vec::with_capacity(leases.len());
    for (session, [fixed, hot, touch]) in seats.sessions.iter().zip(leases) {
        let (Some(fixed), Some(hot)) = (fixed, hot) else {
            return Err(Why::Shape);
        };
        all.push(lease(session, fixed, hot, touch.as_deref()).ok_or(Why::Shape)?);
    }
    let mut journal = seats.journal;
    let mut drop = Vec::new();
    let mut put = Vec::new();
    // each session renewed since the last whole write keeps its place before this admit: its t: field
    // becomes a j: field (in `ls`' order, as the script freezes them)
    for l in &all {
        if let Some((seq, at, first)) = l.touch {
            drop.push(format!("t:{}", l.session));
            put.push((
                format!("j:{seq}"),
                json!({"d": l.device, "l": l.label, "at": at, "f": first}).to_string(),
            ));
            journal += 1;
        }
    }
    let maxn = all.iter().map(|l| l.n).max().unwrap_or(0);
    all.sort_by_key(|l| l.n);
    if all.windows(2).any(|w| w[0].n == w[1].n) {
        return Err(Why::Shape);
    }
    let (lapsed, mut live): (Vec<Lease<'_>>, Vec<Lease<'_>>) =
        all.into_iter().partition(|l| l.expires_at <= now);
    // a device re-attaches only presenting its session's secret (a current or the previous one); a
    // retired one is a clone, which the script records in the usage
    let mut again = None;
    if !job.presented.is_empty()
        && let Some(i) = live.iter().position(|l| l.device == job.device)
        && !live[i].issued.is_empty()
    {
        let l = &live[i];
        let has = |list: &str| list.split(' ').any(|h| h == job.presented);
        if has(l.issued) || l.previous == job.presented {
            again = Some(i);
        } else if has(l.retired) {
            return Err(Why::Clone);
        }
    }
    let mut ends = Vec::new();
    for l in &lapsed {
        ends.push((
            l.session.to_owned(),
            json!({"reason": "expired", "at": l.expires_at}).to_string(),
        ));
        drop.push(format!("l:{}", l.session));
        drop.push(format!("h:{}", l.session));
    }
    let version = seats.version.checked_add(1).ok_or(Why::Shape)?.to_string();
    let expires_at = now + job.ttl_ms;
    let k = job.seats_allowed.max(1);
    // each case: its answer, the sessions the seats hold after it (`ls`) and what it saw for the usage
    // (a `j:` field: `s` 1 for a new session, 0 for a re-attached one; none for a refusal)
    let (answer, held, seen) = if let Some(i) = again {
        let l = &live[i];
        let hot = format!(
            "{now},{expires_at},{},{}",
            job.ttl_ms,
            renewed_chain(l, &job.presented, &job.fresh)
        );
        let mut fixed = l.fixed.clone();
        fixed["device_label"] = Value::from(job.label.as_str());
        put.push((format!("l:{}", l.session), fixed.to_string()));
        put.push((format!("h:{}", l.session), hot));
        let answer = Answer::Admitted {
            session: l.session.to_owned(),
            expires_at,
            superseded: Vec::new(),
            reattached: true,
        };
        (answer, names(&live), Some(0))
    } else if live.len() >= k && job.oldest_wins {
        let earliest = live.iter().map(|l| l.expires_at).min().unwrap_or(now);
        let answer = Answer::InUse {
            retry_after_s: ((earliest - now) as f64 / 1000.0).ceil().max(1.0) as i64,
        };
        (answer, names(&live), None)
    } else {
        let mut superseded = Vec::new();
        while live.len() >= k {
            // the least recently renewed, then the oldest, then the first in order
            let (i, _) = live
                .iter()
                .enumerate()
                .min_by_key(|(i, l)| (l.renewed_at, l.created_at, *i))
                .ok_or(Why::Shape)?;
            let l = live.remove(i);
            ends.push((
                l.session.to_owned(),
                json!({"reason": "superseded", "by_device": job.label, "at": now}).to_string(),
            ));
            drop.push(format!("l:{}", l.session));
            drop.push(format!("h:{}", l.session));
            superseded.push(l.session.to_owned());
        }
        put.push((
            format!("l:{}", job.session),
            json!({
                "n": maxn + 1,
                "session_id": job.session,
                "device_id": job.device,
                "device_label": job.label,
                "created_at": now,
            })
            .to_string(),
        ));
        put.push((
            format!("h:{}", job.session),
            format!("{now},{expires_at},{},,{},", job.ttl_ms, job.fresh),
        ));
        let mut held = names(&live);
        if !held.is_empty() {
            held.push(' ');
        }
        held.push_str(&job.session);
        let answer = Answer::Admitted {
            session: job.session.clone(),
            expires_at,
            superseded,
            reattached: false,
        };
        (answer, held, Some(1))
    };
    if let Some(new) = seen {
        put.push((format!("j:{version}"), journal_entry(job, now, new)));
        journal += 1;
    }
    put.push(("v".to_owned(), version));
    put.push(("ls".to_owned(), held));
    put.push(("jn".to_owned(), journal.to_string()));
    // past the memory of ended sessions the script drops the oldest, whose ids a transaction cannot
    // know before it runs
    if ended + ends.len() as i64 > ENDED_MEMORY {
        return Err(Why::EndedMemory);
    }
    Ok(Plan {
        answer,
        ends,
        drop,
        put,
    })
}

/// What an admit saw, as its `j:` field holds it for the usage (`s`: 1 for a new session, 0 for a
/// re-attached one).
fn journal_entry(job: &Job, now: i64, new: u8) -> String {
    json!({
        "d": job.device, "l": job.label, "c": job.country, "a": job.address, "at": now, "s": new,
    })
    .to_string()
}

/// `seats.lua` secret_renew for a presented secret the lease issued (or its previous one), as the `h:`
/// field's last three parts (`previous,issued,retired`): a current secret becomes the previous, and the
/// old previous and the other issued ones retire; the previous (a retry of a lost answer) issues one more
/// beside the current ones, the oldest issued retiring past the memory. The retired keep the newest.
fn renewed_chain(l: &Lease<'_>, presented: &str, fresh: &str) -> String {
    use usher_core::session_secret::{ISSUED_MEMORY, RETIRED_MEMORY};
    let words = |s: &str| -> Vec<String> {
        if s.is_empty() {
            Vec::new()
        } else {
            s.split(' ').map(str::to_owned).collect()
        }
    };
    let (mut issued, mut retired) = (words(l.issued), words(l.retired));
    let mut retire = |h: String| {
        if retired.len() >= RETIRED_MEMORY {
            retired.remove(0);
        }
        retired.push(h);
    };
    let previous = if issued.iter().any(|h| h == presented) {
        if !l.previous.is_empty() {
            retire(l.previous.to_owned());
        }
        for h in issued.drain(..) {
            if h != presented {
                retire(h);
            }
        }
        issued.push(fresh.to_owned());
        presented.to_owned()
    } else {
        if issued.len() >= ISSUED_MEMORY {
            retire(issued.remove(0));
        }
        issued.push(fresh.to_owned());
        l.previous.to_owned()
    };
    format!("{previous},{},{}", issued.join(" "), retired.join(" "))
}

/// The session ids of `leases`, in their order, as the `ls` field holds them.
fn names(leases: &[Lease<'_>]) -> String {
    leases
        .iter()
        .map(|l| l.session)
        .collect::<Vec<_>>()
        .join(" ")
}

impl Step for Job {
    type Outcome = Outcome;
    /// Two admits of one ticket in one batch are a race (devices sharing it, a crowd): the script
    /// decides the second at once, where a later transaction would most likely meet another's write.
    const CARRIED: usize = 0;

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

/// How long a node sends the admits of a ticket straight to the script once one of them met another
/// admit of it (in its batch or at `EXEC`): a crowd on one ticket (devices sharing it, a guesser) would
/// otherwise make every transaction of its seats read, meet another's write and read again before the
/// script decides.
pub(super) const CONTENDED: std::time::Duration = std::time::Duration::from_secs(5);

/// The tickets whose admits met others lately ([`CONTENDED`]); at most [`Contended::MOST`] remembered.
#[derive(Default)]
pub(super) struct Contended(
    std::sync::Mutex<std::collections::HashMap<String, std::time::Instant>>,
);

impl Contended {
    const MOST: usize = 4_096;

    /// Whether `ticket`'s admits met others less than [`CONTENDED`] ago.
    pub(super) fn holds(&self, ticket: &str) -> bool {
        let map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(ticket).is_some_and(|at| at.elapsed() < CONTENDED)
    }

    /// Remembers that `ticket`'s admits met others now.
    pub(super) fn mark(&self, ticket: &str) {
        let mut map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() >= Self::MOST {
            map.retain(|_, at| at.elapsed() < CONTENDED);
            if map.len() >= Self::MOST {
                map.clear();
            }
        }
        map.insert(ticket.to_owned(), std::time::Instant::now());
    }
}

/// A job's part of the first round trip.
enum Read {
    /// The seats' head (`played`, `show_id`, `ls`, `jn`, `v`) and the length of the ended sessions' list.
    Head(Vec<Option<String>>, i64),
    /// The ticket is revoked: answered at once, nothing written.
    Revoked,
    /// Replies of another shape: the script decides.
    Odd,
}

/// Answers every job with the outcome `why` gives; the watch is ended unless the connection is dropped.
async fn give_up(
    con: &mut MultiplexedConnection,
    jobs: Vec<Queued<Job>>,
    why: Why,
    keep: bool,
) -> Attempt<Job> {
    for (_, reply) in jobs {
        let _ = reply.send(Outcome::Script(why));
    }
    Attempt::Done(keep && redis::cmd("UNWATCH").query_async::<()>(con).await.is_ok())
}

async fn attempt(
    con: &mut MultiplexedConnection,
    jobs: Vec<Queued<Job>>,
    last: bool,
) -> Attempt<Job> {
    use redis::FromRedisValue;
    let first = &jobs[0].0;
    let mut read = redis::pipe();
    let watch = read.cmd("WATCH");
    for (job, _) in &jobs {
        // the list of ended sessions is not watched: only the lease scripts write it, each in the step
        // that writes the seats; its expiry only shortens it
        watch.arg(&job.seats).arg(&job.ticket_key);
    }
    read.ignore();
    for (job, _) in &jobs {
        read.cmd("HMGET")
            .arg(&job.seats)
            .arg(&["played", "show_id", "ls", "jn", "v"]);
        read.cmd("GET").arg(&job.ticket_key);
        read.cmd("LLEN").arg(job.ended_list());
    }
    read.cmd("GET").arg(&first.schema);
    match &first.clock {
        Some(key) => read.cmd("GET").arg(key),
        None => read.cmd("TIME"),
    };
    read.cmd("GET").arg(&first.generation);
    // an error here (a lost connection, a key of another type) writes nothing: the script decides
    let Ok(replies) = read.query_async::<Vec<redis::Value>>(con).await else {
        return give_up(con, jobs, Why::Unreachable, false).await;
    };
    let n = jobs.len();
    let common = || -> Option<(i64, i64, i64)> {
        let layout = match &replies[3 * n] {
            redis::Value::Nil => 1,
            v => String::from_redis_value_ref(v).ok()?.parse().ok()?,
        };
        let now = super::renewal::clock(&replies[3 * n + 1])?;
        let generation = match &replies[3 * n + 2] {
            redis::Value::Nil => 0,
            v => i64::from_redis_value_ref(v).ok()?,
        };
        Some((layout, now, generation))
    };
    let Some((layout, now, generation)) = (replies.len() == 3 * n + 3).then(common).flatten()
    else {
        return give_up(con, jobs, Why::Shape, true).await;
    };
    // per job: its head's fields, or the outcome it has already
    let mut heads: Vec<Read> = Vec::with_capacity(n);
    for part in replies[..3 * n].chunks(3) {
        let head = Vec::<Option<String>>::from_redis_value_ref(&part[0]).ok();
        let ticket = Option::<String>::from_redis_value_ref(&part[1]).ok();
        let ended = i64::from_redis_value_ref(&part[2]).ok();
        heads.push(match (head, ticket, ended) {
            (_, Some(Some(t)), _) if t.contains("\"status\":\"revoked\"") => Read::Revoked,
            (Some(head), Some(_), Some(ended)) if head.len() == 5 => Read::Head(head, ended),
            _ => Read::Odd,
        });
    }
    let mut seats_of = Vec::with_capacity(n);
    let mut fields = redis::pipe();
    let mut asked = 0;
    for head in &heads {
        let seats = match head {
            Read::Head(h, _) => Ok(h),
            _ => Err(Why::Shape),
        }
        .and_then(|h| {
            let f = |i: usize| h[i].as_deref();
            seats(
                &Head {
                    played: f(0),
                    show_id: f(1),
                    ls: f(2),
                    jn: f(3),
                    v: f(4),
                },
                layout,
            )
        });
        if let Ok(s) = &seats
            && !s.sessions.is_empty()
        {
            asked += 1;
            let hmget = fields.cmd("HMGET").arg(&jobs[seats_of.len()].0.seats);
            for sid in &s.sessions {
                hmget
                    .arg(format!("l:{sid}"))
                    .arg(format!("h:{sid}"))
                    .arg(format!("t:{sid}"));
            }
        }
        seats_of.push(seats);
    }
    let lease_fields: Vec<Vec<Option<String>>> = if asked == 0 {
        Vec::new()
    } else {
        match fields.query_async(con).await {
            Ok(f) => f,
            Err(_) => return give_up(con, jobs, Why::Unreachable, false).await,
        }
    };
    let mut lease_fields = lease_fields.into_iter();
    let mut write = redis::pipe();
    write.atomic();
    let mut writing = Vec::new();
    for (((job, reply), head), seats) in jobs.into_iter().zip(&heads).zip(seats_of) {
        let ended = match head {
            Read::Revoked => {
                let _ = reply.send(Outcome::Revoked { generation });
                continue;
            }
            Read::Odd => {
                let _ = reply.send(Outcome::Script(Why::Shape));
                continue;
            }
            Read::Head(_, ended) => *ended,
        };
        let seats = match seats {
            Err(why) => {
                let _ = reply.send(Outcome::Script(why));
                continue;
            }
            Ok(s) => s,
        };
        let leases: Vec<[Option<String>; 3]> = if seats.sessions.is_empty() {
            Vec::new()
        } else {
            // three fields per lease, as asked
            let Some(got) = lease_fields
                .next()
                .filter(|got| got.len() == 3 * seats.sessions.len())
            else {
                let _ = reply.send(Outcome::Script(Why::Shape));
                continue;
            };
            got.chunks_exact(3)
                .map(|c| [c[0].clone(), c[1].clone(), c[2].clone()])
                .collect()
        };
        let plan = match decide(&job, &seats, &leases, ended, now) {
            Err(why) => {
                let _ = reply.send(Outcome::Script(why));
                continue;
            }
            Ok(plan) => plan,
        };
        let live = format!("{}live:{}", job.prefix, seats.show_id);
        queue_writes(&mut write, &job, &plan, &live);
        let done = match plan.answer {
            Answer::Admitted {
                session,
                expires_at,
                superseded,
                reattached,
            } => Outcome::Admitted {
                session,
                expires_at,
                superseded,
                reattached,
                generation,
            },
            Answer::InUse { retry_after_s } => Outcome::InUse {
                retry_after_s,
                generation,
            },
        };
        writing.push((job, reply, done));
    }
    exec(con, write, writing, last, Outcome::Failed).await
}

/// The writes of `plan` for `job`, in the order the script makes them.
fn queue_writes(write: &mut redis::Pipeline, job: &Job, plan: &Plan, live: &str) {
    let list = job.ended_list();
    for (session, end) in &plan.ends {
        // seats.lua remember_end, and the session leaves the show's live set
        write
            .cmd("SET")
            .arg(format!("{}ended:{session}", job.prefix))
            .arg(end)
            .arg("PX")
            .arg(ENDED_RETENTION_MS);
        write.cmd("RPUSH").arg(&list).arg(session);
        write.cmd("PEXPIRE").arg(&list).arg(ENDED_RETENTION_MS);
        write.cmd("ZREM").arg(live).arg(session);
    }
    if let Answer::Admitted {
        expires_at,
        session,
        reattached,
        ..
    } = &plan.answer
    {
        write.cmd("ZADD").arg(live).arg(expires_at).arg(session);
        // a pass through the show's door is used up by a new seat
        if !job.passes.is_empty() && !reattached {
            write.cmd("ZREM").arg(&job.passes).arg(&job.ticket);
        }
        // the session's index outlives its lease by the time its end is remembered (seats.lua
        // index_session: a re-attached session's is written whatever its time to live, where the
        // script reads it first: one command fewer)
        write
            .cmd("SET")
            .arg(format!("{}session:{session}", job.prefix))
            .arg(&job.ticket)
            .arg("PX")
            .arg(job.ttl_ms + ENDED_RETENTION_MS + INDEX_SLACK_MS);
    }
    if !plan.drop.is_empty() {
        write.cmd("HDEL").arg(&job.seats).arg(&plan.drop);
    }
    let hset = write.cmd("HSET").arg(&job.seats);
    for (field, value) in &plan.put {
        hset.arg(field).arg(value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(c: char) -> String {
        c.to_string().repeat(64)
    }

    fn job(device: &str, presented: &str) -> Job {
        Job {
            seats: "p:seats:t1".into(),
            ticket_key: "p:ticket:t1".into(),
            prefix: "p:".into(),
            schema: "p:schema".into(),
            generation: "p:gen".into(),
            clock: None,
            passes: "p:door:s1:passes".into(),
            ticket: "t1".into(),
            device: device.into(),
            label: format!("{device} label"),
            session: "new".into(),
            seats_allowed: 1,
            oldest_wins: false,
            ttl_ms: 30_000,
            country: "DE".into(),
            address: String::new(),
            presented: presented.into(),
            fresh: h('f'),
        }
    }

    /// A lease's three fields: `l:` (place `n`), `h:` (renewed at `renewed`, expiring at `expires`,
    /// issued `issued`, retired `retired`), `t:`.
    fn fields(
        sid: &str,
        n: i64,
        device: &str,
        (renewed, expires): (i64, i64),
        (issued, retired): (&str, &str),
        touch: Option<&str>,
    ) -> [Option<String>; 3] {
        [
            Some(format!(
                r#"{{"n":{n},"session_id":"{sid}","device_id":"{device}","device_label":"{device}","created_at":1}}"#
            )),
            Some(format!("{renewed},{expires},30000,,{issued},{retired}")),
            touch.map(str::to_owned),
        ]
    }

    fn head<'a>(ls: &'a str, jn: &'a str) -> Head<'a> {
        Head {
            played: Some("1"),
            show_id: Some("s1"),
            ls: Some(ls),
            jn: Some(jn),
            v: Some("9"),
        }
    }

    fn put<'a>(plan: &'a Plan, field: &str) -> Option<&'a str> {
        plan.put
            .iter()
            .find(|(f, _)| f == field)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn a_contended_ticket_is_remembered_for_a_while_and_the_memory_is_bounded() {
        let c = Contended::default();
        assert!(!c.holds("t1"));
        c.mark("t1");
        assert!(c.holds("t1") && !c.holds("t2"));
        for i in 0..Contended::MOST + 10 {
            c.mark(&format!("x{i}"));
        }
        let held = c.0.lock().unwrap().len();
        assert!(held <= Contended::MOST, "{held}");
    }

    #[test]
    fn the_memories_are_the_scripts() {
        let seats = include_str!("seats.lua");
        for line in [
            format!("local JOURNAL_MEMORY = {JOURNAL_MEMORY}\n"),
            format!("local ENDED_MEMORY = {ENDED_MEMORY}\n"),
            format!("Layout {LAYOUT} (REDIS_SCHEMA {LAYOUT})"),
        ] {
            assert!(seats.contains(&line), "seats.lua lost {line:?}");
        }
    }

    #[test]
    fn the_head_leaves_first_plays_old_layouts_and_full_journals_to_the_script() {
        assert_eq!(seats(&head("a b", "3"), 2).err(), Some(Why::Layout));
        let mut unplayed = head("", "0");
        unplayed.played = None;
        assert_eq!(seats(&unplayed, 3).err(), Some(Why::FirstPlay));
        assert_eq!(seats(&head("a", "64"), 3).err(), Some(Why::Journal));
        assert_eq!(seats(&head("a  b", "0"), 3).err(), Some(Why::Shape));
        assert_eq!(seats(&head("a a", "0"), 3).err(), Some(Why::Shape));
        let s = seats(&head("a b", "3"), 3).unwrap();
        assert_eq!((s.sessions, s.journal, s.version), (vec!["a", "b"], 3, 9));
    }

    #[test]
    fn a_takeover_ends_the_stalest_lease_and_freezes_its_renewal() {
        let s = seats(&head("a", "2"), 3).unwrap();
        let a = fields(
            "a",
            4,
            "tv",
            (500, 40_000),
            (&h('a'), ""),
            Some("8,500,300"),
        );
        let plan = decide(&job("phone", ""), &s, &[a], 10, 1_000).unwrap();
        assert_eq!(
            plan.answer,
            Answer::Admitted {
                session: "new".into(),
                expires_at: 31_000,
                superseded: vec!["a".into()],
                reattached: false,
            }
        );
        let end: Value = serde_json::from_str(&plan.ends[0].1).unwrap();
        assert_eq!(
            end,
            json!({"reason": "superseded", "by_device": "phone label", "at": 1000})
        );
        assert_eq!(plan.drop, ["t:a", "l:a", "h:a"]);
        let frozen: Value = serde_json::from_str(put(&plan, "j:8").unwrap()).unwrap();
        assert_eq!(frozen, json!({"d": "tv", "l": "tv", "at": 500, "f": 300}));
        let lease: Value = serde_json::from_str(put(&plan, "l:new").unwrap()).unwrap();
        assert_eq!(lease["n"], 5);
        assert_eq!(
            put(&plan, "h:new"),
            Some(&*format!("1000,31000,30000,,{},", h('f')))
        );
        assert_eq!(
            [put(&plan, "v"), put(&plan, "ls"), put(&plan, "jn")],
            [Some("10"), Some("new"), Some("4")]
        );
        let seen: Value = serde_json::from_str(put(&plan, "j:10").unwrap()).unwrap();
        assert_eq!(seen["s"], 1);
        assert_eq!(seen["c"], "DE");
    }

    #[test]
    fn oldest_wins_refuses_and_a_lapsed_lease_ends_as_expired() {
        let s = seats(&head("a b", "0"), 3).unwrap();
        let a = fields("a", 1, "tv", (100, 900), (&h('a'), ""), None);
        let b = fields("b", 2, "pc", (100, 2_500), (&h('b'), ""), None);
        let mut refused = job("phone", "");
        refused.oldest_wins = true;
        let plan = decide(&refused, &s, &[a.clone(), b.clone()], 0, 1_000).unwrap();
        assert_eq!(plan.answer, Answer::InUse { retry_after_s: 2 });
        let end: Value = serde_json::from_str(&plan.ends[0].1).unwrap();
        assert_eq!(end, json!({"reason": "expired", "at": 900}));
        assert_eq!(put(&plan, "ls"), Some("b"));
        // two seats: the lapsed one frees a place, nothing is superseded
        let mut two = job("phone", "");
        two.seats_allowed = 2;
        let plan = decide(&two, &s, &[a.clone(), b.clone()], 0, 1_000).unwrap();
        assert!(
            matches!(&plan.answer, Answer::Admitted { superseded, .. } if superseded.is_empty())
        );
        assert_eq!(put(&plan, "ls"), Some("b new"));
        // past the memory of ended sessions the script drops the oldest
        assert_eq!(
            decide(&two, &s, &[a, b], ENDED_MEMORY, 1_000).err(),
            Some(Why::EndedMemory)
        );
    }

    #[test]
    fn a_device_presenting_its_secret_re_attaches_and_a_retired_one_is_the_scripts() {
        let s = seats(&head("a", "0"), 3).unwrap();
        let (cur, old) = (h('c'), h('o'));
        let a = fields("a", 1, "tv", (100, 9_000), (&cur, &old), None);
        let plan = decide(&job("tv", &cur), &s, std::slice::from_ref(&a), 0, 1_000).unwrap();
        assert_eq!(
            plan.answer,
            Answer::Admitted {
                session: "a".into(),
                expires_at: 31_000,
                superseded: vec![],
                reattached: true,
            }
        );
        assert_eq!(
            put(&plan, "h:a"),
            Some(&*format!("1000,31000,30000,{cur},{},{old}", h('f')))
        );
        let lease: Value = serde_json::from_str(put(&plan, "l:a").unwrap()).unwrap();
        assert_eq!(
            (lease["device_label"].as_str(), lease["n"].as_i64()),
            (Some("tv label"), Some(1))
        );
        assert_eq!(put(&plan, "ls"), Some("a"));
        assert!(plan.ends.is_empty());
        assert_eq!(
            decide(&job("tv", &old), &s, std::slice::from_ref(&a), 0, 1_000).err(),
            Some(Why::Clone)
        );
        // a stranger's secret on the same device: a new seat, taking the old one over
        let plan = decide(&job("tv", &h('x')), &s, &[a], 0, 1_000).unwrap();
        assert!(
            matches!(&plan.answer, Answer::Admitted { reattached: false, superseded, .. } if superseded == &["a"])
        );
    }
}
