//! Hot paths of the domain, measured without I/O: the keyed hash of a ticket token (every admit and watch
//! link), the lease step (every admit and heartbeat, inside the store's atomic section), and Usher's own
//! grant (signed on every admit, heartbeat and master playlist; verified on every origin request).

use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use usher_core::clock::UnixMs;
use usher_core::grant::{ClientNetwork, Grant, GrantSigner};
use usher_core::ids::{DeviceId, SessionId, ShowId, TicketId, TicketToken};
use usher_core::lease::{Presented, SeatRules, TicketLeases};
use usher_core::secret::{SecretHash, SecretHasher};
use usher_core::show::SharingPolicy;
use usher_core::ticket::{Ticket, TicketStatus, TicketTerms};

const NOW: UnixMs = UnixMs(1_800_000_000_000);

fn rules(k: u32) -> SeatRules {
    SeatRules {
        max_devices: k,
        policy: SharingPolicy::NewestWins,
        ttl_ms: 45_000,
    }
}

/// Two session secrets (keyed hashes) that a player alternates: each renewal moves the chain.
fn secrets() -> (SecretHash, SecretHash) {
    let h = SecretHasher::new(&[7u8; 32]);
    (h.session_secret("secret-a"), h.session_secret("secret-b"))
}

fn token_hashing(c: &mut Criterion) {
    let hasher = SecretHasher::new(&[7u8; 32]);
    let token = TicketToken::generate();
    c.bench_function("secret/ticket_token_hmac", |b| {
        b.iter(|| hasher.ticket_token(black_box(&token)))
    });
    let text = token.expose().to_owned();
    c.bench_function("secret/parse_and_hash_token", |b| {
        b.iter(|| hasher.ticket_token(&TicketToken::parse(black_box(&text)).expect("valid token")))
    });
}

fn lease_step(c: &mut Criterion) {
    let device = DeviceId::generate();
    let (a, a2) = secrets();
    c.bench_function("lease/admit_first_device", |b| {
        b.iter_batched(
            || (TicketLeases::default(), SessionId::generate()),
            |(mut t, s)| t.admit(&device, "Firefox on Linux", None, a, s, rules(1), NOW),
            BatchSize::SmallInput,
        )
    });
    c.bench_function("lease/admit_reattach_same_device", |b| {
        let mut t = TicketLeases::default();
        t.admit(
            &device,
            "Firefox on Linux",
            None,
            a,
            SessionId::generate(),
            rules(1),
            NOW,
        );
        let mut now = NOW;
        let mut held = (a, a2);
        b.iter_batched(
            SessionId::generate,
            |s| {
                now = UnixMs(now.0 + 1);
                held = (held.1, held.0);
                t.admit(
                    &device,
                    "Firefox on Linux",
                    Some(&held.1),
                    held.0,
                    s,
                    rules(1),
                    now,
                )
            },
            BatchSize::SmallInput,
        )
    });
    c.bench_function("lease/admit_supersede_k1_steady_state", |b| {
        // a ticket that has seen many devices: its usage and ended lists are full
        let mut t = TicketLeases::default();
        let devices: Vec<DeviceId> = (0..100).map(|_| DeviceId::generate()).collect();
        let mut now = NOW;
        for d in &devices {
            now = UnixMs(now.0 + 1);
            t.admit(
                d,
                "Chrome on Android",
                None,
                a,
                SessionId::generate(),
                rules(1),
                now,
            );
        }
        let mut i = 0;
        b.iter_batched(
            SessionId::generate,
            |s| {
                i += 1;
                now = UnixMs(now.0 + 1);
                t.admit(
                    &devices[i % devices.len()],
                    "Chrome on Android",
                    None,
                    a,
                    s,
                    rules(1),
                    now,
                )
            },
            BatchSize::SmallInput,
        )
    });
    c.bench_function("lease/heartbeat", |b| {
        let mut t = TicketLeases::default();
        let session = SessionId::generate();
        t.admit(
            &device,
            "Safari on iOS",
            None,
            a,
            session.clone(),
            rules(1),
            NOW,
        );
        let mut now = NOW;
        let mut held = (a, a2);
        b.iter(|| {
            now = UnixMs(now.0 + 1);
            let renewal = Presented {
                secret: &held.0,
                fresh: Some(held.1),
                revive_since: None,
            };
            let d = t.heartbeat(black_box(&session), renewal, now);
            held = (held.1, held.0);
            d
        })
    });
    c.bench_function("lease/serde_json_roundtrip_full_ticket", |b| {
        // the embedded and Redis stores keep a ticket's leases serialized: this is their per-step codec cost
        let mut t = TicketLeases::default();
        let mut now = NOW;
        for _ in 0..100 {
            now = UnixMs(now.0 + 1);
            t.admit(
                &DeviceId::generate(),
                "Chrome on Android",
                None,
                a,
                SessionId::generate(),
                rules(1),
                now,
            );
        }
        b.iter(|| {
            let bytes = serde_json::to_vec(black_box(&t)).expect("serializes");
            serde_json::from_slice::<TicketLeases>(&bytes).expect("parses")
        })
    });
}

fn grants(c: &mut Criterion) {
    let signer = GrantSigner::new(&[9u8; 32]);
    let grant = Grant {
        session: SessionId::generate(),
        expires_at: UnixMs(NOW.0 + 120_000),
        prefix: "demo/".into(),
        // what the origin sees by default: a grant bound to the viewer's /24
        client: Some(ClientNetwork::new([203, 0, 113, 7].into(), 24)),
    };
    c.bench_function("grant/sign", |b| b.iter(|| signer.sign(black_box(&grant))));
    let text = signer.sign(&grant);
    c.bench_function("grant/verify", |b| {
        b.iter(|| signer.verify(black_box(&text), NOW).expect("valid grant"))
    });
}

/// A ticket's record, read on every admit (both stores keep it as JSON) and written by every registration.
fn ticket_record(c: &mut Criterion) {
    let hasher = SecretHasher::new(&[7u8; 32]);
    let ticket = Ticket {
        id: TicketId::generate(),
        token_hash: hasher.ticket_token(&TicketToken::generate()),
        terms: TicketTerms {
            show_id: ShowId::parse("show-1").expect("valid id"),
            valid_from: None,
            valid_until: None,
            max_devices: None,
            external_ref: Some("order-2026-000123".into()),
        },
        status: TicketStatus::Active,
        created_at: time::OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("a time"),
        revoked_at: None,
    };
    c.bench_function("ticket/record_encode", |b| {
        b.iter(|| serde_json::to_vec(black_box(&ticket)).expect("serializes"))
    });
    let bytes = serde_json::to_vec(&ticket).expect("serializes");
    c.bench_function("ticket/record_decode", |b| {
        b.iter(|| serde_json::from_slice::<Ticket>(black_box(&bytes)).expect("parses"))
    });
}

criterion_group!(benches, token_hashing, lease_step, grants, ticket_record);
criterion_main!(benches);
