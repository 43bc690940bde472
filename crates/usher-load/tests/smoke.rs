//! The CI smoke run: a real Usher on `127.0.0.1:0` (in this process, embedded store, the repository's demo
//! media), driven over HTTP by `usher-load` for a few seconds with small N. Any error, false refusal or
//! over-admission fails it.

use std::path::Path;
use std::time::Duration;

use usher_core::store::Scope;
use usher_load::saturate::{self, Load, SaturateConfig};
use usher_load::setup::Server;
use usher_load::viewers::{self, Arrival, ViewersConfig};
use usher_server::service::admin::api_keys::issue_api_key;
use usher_server::settings::Settings;
use usher_server::startup::Application;

struct Running {
    server: Server,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<anyhow::Result<()>>,
    _dir: tempfile::TempDir,
}

impl Running {
    async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(30), &mut self.done)
            .await
            .expect("server stops within 30 s")
            .expect("server task")
            .expect("server exits cleanly");
    }
}

async fn start_usher() -> Running {
    let dir = tempfile::tempdir().expect("temp dir");
    let media = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../media");
    let toml = format!(
        "listen = \"127.0.0.1:0\"\ndata_dir = {:?}\nmedia_dir = {:?}\n\n[secrets]\ntoken_key = \"{}\"\ngrant_key = \"{}\"\n\n[log]\nlevel = \"warn\"\n",
        dir.path().join("data"),
        media,
        "t".repeat(40),
        "g".repeat(40),
    );
    let file = dir.path().join("usher.toml");
    std::fs::write(&file, toml).expect("config written");
    let config = Settings::load(Some(&file))
        .expect("config loads")
        .validate()
        .expect("config is valid");
    let app = Application::build(config).await.expect("server starts");
    let state = app.state().clone();
    let (_, admin) = issue_api_key(
        &*state.store,
        &state.hasher,
        "load admin",
        vec![Scope::Admin],
    )
    .await
    .expect("admin key");
    let (_, tickets) = issue_api_key(
        &*state.store,
        &state.hasher,
        "load site",
        vec![Scope::Tickets],
    )
    .await
    .expect("tickets key");
    let base_url = format!("http://{}", app.local_addr());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let done = tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));
    Running {
        server: Server {
            base_url,
            tickets_key: tickets,
            admin_key: Some(admin),
            show_id: None,
            heartbeat_s: Some(1),
            stream_path: "demo".into(),
            encryption: "none".into(),
            timeout: Duration::from_secs(10),
        },
        stop: Some(stop),
        done,
        _dir: dir,
    }
}

fn config(viewers: usize, devices: usize) -> ViewersConfig {
    ViewersConfig {
        viewers,
        devices_per_ticket: devices,
        max_devices: 1,
        arrival: Arrival::DoorsOpen(0.5),
        duration_s: 2.5,
        segments: 0,
        steering_s: 0.0,
        jitter: 0.05,
        connections: 0,
        progress_s: 0.0,
        watch_s: 0.0,
        expect_outage: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewers_admit_heartbeat_fetch_and_leave_without_error() {
    let usher = start_usher().await;
    let cfg = ViewersConfig {
        segments: 1,
        steering_s: 0.5,
        ..config(40, 1)
    };
    let report = viewers::run(&usher.server, cfg, Some(std::process::id()))
        .await
        .expect("run");
    let count = |name: &str| {
        report
            .ops
            .iter()
            .find(|o| o.op.name() == name)
            .map_or(0, |o| o.ok)
    };
    assert!(report.passed, "{report:#?}");
    assert_eq!(report.errors, 0);
    assert_eq!(count("admit"), 40);
    assert_eq!(count("leave"), 40);
    assert!(count("heartbeat") >= 40, "{report:#?}");
    assert!(count("segment") >= 40, "{report:#?}");
    assert!(count("steering") >= 80, "{report:#?}");
    assert_eq!(report.peak_live_sessions, 40);
    assert!(report.server.is_some());
    usher.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sharing_attack_never_plays_on_more_devices_than_allowed() {
    let usher = start_usher().await;
    // 20 tickets, 3 devices each: 2 copies of the first device's credentials, then the ticket itself
    let report = viewers::run(&usher.server, config(60, 3), None)
        .await
        .expect("run");
    let c = &report.checks;
    assert_eq!(c.over_admissions, 0, "{report:#?}");
    assert_eq!(c.false_refusals, 0, "{report:#?}");
    assert_eq!(report.errors, 0, "{report:#?}");
    assert!(report.passed, "{report:#?}");
    assert!(c.rounds_checked >= 40, "{report:#?}");
    // every ticket saw at least two heartbeat rounds (1 s apart, 2.5 s after the last arrival), so each
    // copied session was told from its copies by the second: one holder plays on, the others are refused
    // with `session_cloned` (this needs every holder to adopt the secret its first heartbeat answered)
    assert_eq!(c.clones_made, 40, "{report:#?}");
    assert_eq!(c.clones_refused, c.clones_made, "{report:#?}");
    assert_eq!(c.clones_unstopped, 0, "{report:#?}");
    assert!(
        c.expected_refusals >= c.clones_refused + 20,
        "copies and superseded devices were told: {report:#?}"
    );
    usher.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_loops_measure_heartbeats_admits_segments_and_plain_gets() {
    let usher = start_usher().await;
    for load in [
        Load::Heartbeat,
        Load::Admit { tickets: 1_000 },
        Load::Segment,
    ] {
        let cfg = SaturateConfig {
            load: load.clone(),
            concurrency: 4,
            duration_s: 0.5,
            warmup_s: 0.2,
        };
        let r = saturate::run(Some(&usher.server), cfg, None)
            .await
            .expect("run");
        assert_eq!(r.errors, 0, "{load:?}: {r:#?}");
        assert!(r.rate() > 0.0, "{load:?}: {r:#?}");
    }
    let cfg = SaturateConfig {
        load: Load::Get(vec![format!("{}/livez", usher.server.base_url)]),
        concurrency: 4,
        duration_s: 0.5,
        warmup_s: 0.2,
    };
    let r = saturate::run(None, cfg, None).await.expect("run");
    assert_eq!(r.errors, 0, "{r:#?}");
    assert!(r.rate() > 0.0);
    usher.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crowd_at_a_full_show_waits_in_line_and_comes_in_in_order() {
    let usher = start_usher().await;
    let cfg = usher_load::doors::DoorsConfig {
        arrivals: 60,
        capacity: 20,
        admit_rate_per_s: None,
        leave_per_s: 40.0,
        max_wait_s: 30.0,
        connections: 16,
    };
    let r = usher_load::doors::run(&usher.server, cfg)
        .await
        .expect("run");
    assert!(r.passed, "{r:#?}");
    assert_eq!(
        (r.admitted_at_once, r.waited, r.admitted_from_line),
        (20, 40, 40),
        "{r:#?}"
    );
    assert!(r.peak_playing <= 20, "{r:#?}");
    // the door's order: it lets in any waiter among the first `free` in line as they ask, so a waiter is
    // let in ahead of those before it by at most the seats that free between two of its asks. The rank
    // correlation of place and entry is reported, not asserted: with 40 seats freeing a second and asks
    // up to 2 s apart, every waiter of this crowd is among the first `free` at its next ask, and the
    // correlation measures when the asks happened to come (0.30 in one CI run, where 0.5 was asserted)
    assert!(r.max_overtaken <= r.overtake_bound, "{r:#?}");
    // every arrival's first ask, and the ask that let each waiter in
    let admits = r
        .ops
        .iter()
        .find(|o| o.op.name() == "admit")
        .map_or(0, |o| o.ok);
    assert_eq!(admits, 100, "{r:#?}");
    usher.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepared_files_name_live_sessions_their_media_and_secrets_and_again_replaces_them() {
    use usher_load::api::{self, Outcome};
    use usher_load::client::{Call, Lanes, Target};
    use usher_load::prepare::{self, PrepareConfig};

    let usher = start_usher().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg = PrepareConfig {
        sessions: 30,
        out: dir.path().join("files"),
        again: false,
        connections: 4,
        segment: None,
    };
    let first = prepare::run(&usher.server, cfg.clone())
        .await
        .expect("prepare");
    assert_eq!(first.sessions, 30);
    assert_eq!(first.registered.expect("registered").created, 30);
    assert_eq!(first.playlist, "demo/360p/index.m3u8");
    assert_eq!(first.segment, "demo/360p/seg_000.ts");
    let read = |name: &str| -> Vec<String> {
        std::fs::read_to_string(cfg.out.join(name))
            .expect(name)
            .lines()
            .map(str::to_owned)
            .collect()
    };
    let (tokens, sessions) = (read("tokens.txt"), read("sessions.txt"));
    assert_eq!(tokens.len(), 30);
    assert_eq!(sessions.len(), 30);
    assert_eq!(read("show_id"), std::slice::from_ref(&first.show_id));

    let target = Target::resolve(&usher.server.base_url)
        .await
        .expect("target");
    let lanes = Lanes::new(target, 1, Duration::from_secs(10));
    let get = |path: String| {
        let lanes = &lanes;
        async move {
            match api::fetch(lanes, 0, &path).await {
                Outcome::Ok(body, _) => body,
                other => panic!("GET {path}: {other:?}"),
            }
        }
    };
    let media = std::fs::read(cfg.out.join("playlist.m3u8")).expect("playlist copy");
    let segment = std::fs::read(cfg.out.join("segment.bin")).expect("segment copy");
    assert_eq!(segment.len(), first.segment_bytes);
    for (playlist, seg) in read("playlists.txt").into_iter().zip(read("segments.txt")) {
        assert_eq!(get(playlist).await.len(), media.len());
        assert_eq!(get(seg).await, segment);
    }
    // a heartbeat as heartbeat.lua sends it: the written secret renews, and the answer's grant starts
    // with the written grant's 48 characters (what the script finds the session by)
    let heartbeat = |line: &str| {
        let mut parts = line.split(' ');
        let (id, secret, grant) = (
            parts.next().unwrap().to_owned(),
            parts.next().unwrap().to_owned(),
            parts.next().unwrap().to_owned(),
        );
        let lanes = &lanes;
        async move {
            let path = format!("/api/v1/playback/{id}/heartbeat");
            let call = Call::json(hyper::Method::POST, &path, Vec::new()).header(
                api::SECRET_HEADER,
                hyper::header::HeaderValue::from_str(&secret).unwrap(),
            );
            let reply = lanes.send(0, call).await.expect("an answer");
            (reply, grant)
        }
    };
    let (reply, grant) = heartbeat(&sessions[0]).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let body: serde_json::Value = serde_json::from_slice(&reply.body).expect("JSON");
    let fresh = body["grants"][0]["token"].as_str().expect("a grant");
    // (the same grant again within the second it was issued in: a grant is signed, not random)
    assert_eq!(fresh[..48], grant[..48]);

    // again: the same tickets, new sessions; the sessions before are superseded
    let again = prepare::run(
        &usher.server,
        PrepareConfig {
            again: true,
            ..cfg.clone()
        },
    )
    .await
    .expect("prepare again");
    assert!(again.registered.is_none());
    assert_eq!(read("tokens.txt"), tokens);
    let renewed = read("sessions.txt");
    assert_eq!(renewed.len(), 30);
    assert!(renewed.iter().all(|l| !sessions.contains(l)));
    let (reply, _) = heartbeat(&sessions[1]).await;
    assert_ne!(reply.status, 200, "a superseded session renewed");
    let (reply, _) = heartbeat(&renewed[1]).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    usher.shutdown().await;
}
