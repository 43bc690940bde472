//! The embedded store's hot paths, one call at a time on a store holding 10,000 tickets: the token lookup
//! every admit starts with, the admit step (newest wins, k = 1), the heartbeat step, and the ticket read
//! every heartbeat answer makes; the flush of 10,000 renewed tickets' leases; durable registrations of
//! one ticket each, one at a time and 256 at once (what the ticket API does when many buyers check out
//! together: group commit shares the fsync); and opening (and closing) a store of 100,000 tickets (the
//! token index is built from them).

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use usher_core::clock::SystemClock;
use usher_core::ids::{DeviceId, ShowId, TicketId, TicketToken};
use usher_core::lease::SeatRules;
use usher_core::secret::{SecretHash, SecretHasher};
use usher_core::show::{SharingPolicy, ShowSpec};
use usher_core::store::{AdmitRequest, NewTicket, Store};
use usher_core::ticket::{Ticket, TicketStatus, TicketTerms};
use usher_store::EmbeddedStore;

const TICKETS: usize = 10_000;

struct Fixture {
    rt: tokio::runtime::Runtime,
    store: EmbeddedStore,
    show: ShowId,
    tickets: Vec<(TicketId, SecretHash)>,
    _dir: tempfile::TempDir,
}

fn fixture() -> Fixture {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let store = EmbeddedStore::open(dir.path(), Arc::new(SystemClock)).expect("store opens");
    let now = store.now();
    let show = ShowId::parse("bench").expect("valid id");
    let spec: ShowSpec = serde_json::from_value(serde_json::json!({
        "title": "bench",
        "starts_at": "2020-01-01T00:00:00Z",
        "ends_at": "2100-01-01T00:00:00Z",
        "stream_path": "demo",
    }))
    .expect("valid show");
    let hasher = SecretHasher::new(&[5u8; 32]);
    let mut tickets = Vec::with_capacity(TICKETS);
    let new: Vec<NewTicket> = (0..TICKETS)
        .map(|_| {
            let new = one_ticket(&show, &hasher, now);
            tickets.push((new.ticket.id.clone(), new.ticket.token_hash));
            new
        })
        .collect();
    rt.block_on(async {
        store
            .put_show(spec.into_show(show.clone(), now, None).expect("show"))
            .await
            .expect("put show");
        store.register_tickets(new).await.expect("register");
    });
    Fixture {
        rt,
        store,
        show,
        tickets,
        _dir: dir,
    }
}

fn one_ticket(show: &ShowId, hasher: &SecretHasher, now: usher_core::clock::UnixMs) -> NewTicket {
    let token_hash = hasher.ticket_token(&TicketToken::generate());
    NewTicket {
        ticket: Ticket {
            // as the ticket API makes them: the shard, then the time (tickets sort by it)
            id: TicketId::generate_in(&token_hash.shard()),
            token_hash,
            terms: TicketTerms {
                show_id: show.clone(),
                valid_from: None,
                valid_until: None,
                max_devices: None,
                external_ref: None,
            },
            status: TicketStatus::Active,
            created_at: now.to_datetime(),
            revoked_at: None,
        },
    }
}

fn registrations(c: &mut Criterion) {
    let f = fixture();
    let store = Arc::new(f.store);
    let hasher = SecretHasher::new(&[6u8; 32]);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    c.bench_function("embedded/register_one", |b| {
        b.iter(|| {
            let t = one_ticket(&f.show, &hasher, store.now());
            rt.block_on(store.register_tickets(vec![t]))
                .expect("register")
        })
    });
    // per iteration: 256 registrations of one ticket each, all at once; divide by 256 for one
    let mut g = c.benchmark_group("embedded/register_256_at_once");
    g.sample_size(20);
    g.bench_function("all", |b| {
        b.iter(|| {
            rt.block_on(async {
                let mut tasks = tokio::task::JoinSet::new();
                for _ in 0..256 {
                    let (store, t) = (
                        Arc::clone(&store),
                        one_ticket(&f.show, &hasher, store.now()),
                    );
                    tasks.spawn(async move { store.register_tickets(vec![t]).await });
                }
                while let Some(r) = tasks.join_next().await {
                    r.expect("task").expect("register");
                }
            })
        })
    });
    g.finish();
}

fn admit_request(f: &Fixture, i: usize, device: DeviceId) -> AdmitRequest {
    AdmitRequest {
        ticket_id: f.tickets[i % TICKETS].0.clone(),
        show_id: f.show.clone(),
        bounds: usher_core::ticket::TicketBounds::default(),
        device_id: device,
        device_label: "Firefox on Linux".into(),
        rules: SeatRules {
            max_devices: 1,
            policy: SharingPolicy::NewestWins,
            ttl_ms: 45_000,
        },
        country: None,
        address: None,
        presented: None,
        fresh: usher_store::contract::seat_secret(),
    }
}

fn embedded(c: &mut Criterion) {
    let f = fixture();
    let mut i = 0;
    c.bench_function("embedded/ticket_by_token", |b| {
        b.iter(|| {
            i += 1;
            let hash = &f.tickets[i % TICKETS].1;
            f.rt.block_on(f.store.ticket_by_token(black_box(hash)))
                .expect("lookup")
                .expect("found")
        })
    });
    c.bench_function("embedded/ticket_by_id", |b| {
        b.iter(|| {
            i += 1;
            let id = &f.tickets[i % TICKETS].0;
            f.rt.block_on(f.store.ticket(black_box(id)))
                .expect("read")
                .expect("found")
        })
    });
    c.bench_function("embedded/admit_new_device_newest_wins", |b| {
        b.iter(|| {
            i += 1;
            let req = admit_request(&f, i, DeviceId::generate());
            f.rt.block_on(f.store.admit(req)).expect("admit")
        })
    });
    let sessions: Vec<_> = (0..TICKETS)
        .map(|t| {
            let req = admit_request(&f, t, DeviceId::generate());
            match f.rt.block_on(f.store.admit(req)).expect("admit") {
                usher_core::lease::AdmitDecision::Admitted { session_id, .. } => session_id,
                other => panic!("not admitted: {other:?}"),
            }
        })
        .collect();
    c.bench_function("embedded/heartbeat", |b| {
        b.iter(|| {
            i += 1;
            f.rt.block_on(f.store.heartbeat(
                black_box(&sessions[i % TICKETS]),
                usher_store::contract::renewal(),
            ))
            .expect("heartbeat")
        })
    });
    // per iteration: every one of the 10,000 tickets renewed (not timed), then one flush writing them all
    // (what a node at saturation writes each second); divide by 10,000 for one ticket
    let mut g = c.benchmark_group("embedded/flush_10000_renewed_tickets");
    g.sample_size(10);
    g.bench_function("all", |b| {
        b.iter_custom(|iters| {
            let mut spent = std::time::Duration::ZERO;
            for _ in 0..iters {
                for s in &sessions {
                    f.rt.block_on(f.store.heartbeat(s, usher_store::contract::renewal()))
                        .expect("heartbeat");
                }
                let at = std::time::Instant::now();
                f.rt.block_on(f.store.flush()).expect("flush");
                spent += at.elapsed();
            }
            spent
        })
    });
    g.finish();
    c.bench_function("embedded/live_session", |b| {
        b.iter(|| {
            i += 1;
            f.rt.block_on(f.store.live_session(black_box(&sessions[i % TICKETS])))
                .expect("live session")
        })
    });
}

/// Opening a store that holds 100,000 tickets, and closing it (each iteration drops the store it
/// opened): the token index is built from every ticket record.
fn opening(c: &mut Criterion) {
    const HELD: usize = 100_000;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = Arc::new(SystemClock);
    {
        let store = EmbeddedStore::open(dir.path(), clock.clone()).expect("store opens");
        let now = store.now();
        let show = ShowId::parse("bench").expect("valid id");
        let hasher = SecretHasher::new(&[7u8; 32]);
        rt.block_on(async {
            for _ in 0..HELD / 10_000 {
                let batch = (0..10_000)
                    .map(|_| one_ticket(&show, &hasher, now))
                    .collect();
                store.register_tickets(batch).await.expect("register");
            }
        });
    }
    let mut g = c.benchmark_group("embedded/open_100000_tickets");
    g.sample_size(10);
    g.bench_function("all", |b| {
        b.iter(|| EmbeddedStore::open(dir.path(), clock.clone()).expect("store opens"))
    });
    g.finish();
}

criterion_group!(benches, embedded, registrations, opening);
criterion_main!(benches);
