//! The real `usher` binary as a process: acknowledged writes and leases survive `kill -9`, SIGTERM finishes
//! in-flight requests and exits 0, and `usher serve` refuses bad configuration with a clear message.
//!
//! Run with `--nocapture` to see the numbers each test measures.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use usher_testkit::{UsherProcess, repo_root, wait_until};

const DEVICE: &str = "device-aaaa0001";
const TOKEN_KEY: &str = "process-test-token-key-0123456789abcdefgh";
const GRANT_KEY: &str = "process-test-grant-key-0123456789abcdefgh";

fn usher_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_usher"))
}

fn client() -> Client {
    Client::builder()
        .timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http client")
}

fn addr_of(base_url: &str) -> SocketAddr {
    base_url
        .trim_start_matches("http://")
        .parse()
        .expect("base_url is http://<ip:port>")
}

/// A socket's (send queue, receive queue) in bytes.
type Queues = (u64, u64);

/// Send and receive queues (bytes not yet acknowledged by the peer / not yet read by the application) of the
/// established IPv4 TCP sockets on `port`: (server side, client side). Linux only (`/proc/net/tcp`).
fn established_queues(port: u16) -> (Vec<Queues>, Vec<Queues>) {
    let table = std::fs::read_to_string("/proc/net/tcp").expect("/proc/net/tcp");
    let port_of = |addr: &str| {
        addr.rsplit(':')
            .next()
            .and_then(|p| u16::from_str_radix(p, 16).ok())
    };
    let (mut server, mut client) = (Vec::new(), Vec::new());
    for line in table.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 5 || f[3] != "01" {
            continue;
        }
        let Some((tx, rx)) = f[4].split_once(':') else {
            continue;
        };
        let q = (
            u64::from_str_radix(tx, 16).unwrap_or(u64::MAX),
            u64::from_str_radix(rx, 16).unwrap_or(u64::MAX),
        );
        if port_of(f[1]) == Some(port) {
            server.push(q);
        } else if port_of(f[2]) == Some(port) {
            client.push(q);
        }
    }
    (server, client)
}

// ---------------------------------------------------------------------------------------------------------
// 1. kill -9
// ---------------------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_registrations_and_leases_survive_kill_9() {
    const WORKERS: usize = 8;
    let bin = usher_bin();
    let dir = tempfile::tempdir().unwrap();
    let mut usher = UsherProcess::start_demo(&bin, dir.path())
        .await
        .expect("demo starts");
    let info = usher.info.clone();
    let http = client();

    // One viewer, admitted before the crash.
    let res = http
        .post(format!("{}/api/v1/playback", info.base_url))
        .header("x-usher-device", DEVICE)
        .json(&json!({"token": info.ticket_token}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED, "admit");
    let admitted: Value = res.json().await.unwrap();
    let session_id = admitted["session_id"]
        .as_str()
        .expect("session_id")
        .to_owned();
    let admitted_at = Instant::now();

    // A continuous stream of registrations from several tasks; an id counts once its 201 answer arrived whole.
    let acked: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let killed = Arc::new(AtomicBool::new(false));
    let early_failures: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut workers = Vec::new();
    for w in 0..WORKERS {
        let (http, info) = (http.clone(), info.clone());
        let (acked, killed, early_failures) =
            (acked.clone(), killed.clone(), early_failures.clone());
        workers.push(tokio::spawn(async move {
            // returns whether the request under way at the kill had reached the server (not a connect error)
            for n in 0.. {
                let external_ref = format!("w{w}-{n}");
                let sent = http
                    .post(format!("{}/api/v1/tickets", info.base_url))
                    .bearer_auth(&info.tickets_key)
                    .json(&json!({"show_id": info.show_id, "external_ref": external_ref}))
                    .send()
                    .await;
                let failure = match sent {
                    Ok(res) if res.status() == StatusCode::CREATED => {
                        match res.json::<Value>().await {
                            Ok(v) => {
                                let id = v["id"].as_str().expect("201 answer has an id").to_owned();
                                acked.lock().unwrap().push((id, external_ref));
                                continue;
                            }
                            Err(e) => (false, format!("reading a 201 body: {e}")),
                        }
                    }
                    Ok(res) => {
                        let status = res.status();
                        let body = res.text().await.unwrap_or_default();
                        (false, format!("unexpected {status}: {body}"))
                    }
                    Err(e) => (e.is_connect(), format!("request failed: {e}")),
                };
                if killed.load(Ordering::SeqCst) {
                    return !failure.0;
                }
                early_failures.lock().unwrap().push(failure.1);
                return false;
            }
            unreachable!()
        }));
    }

    // Leases are flushed every second: give the admit 1.5 s, and let a few hundred registrations through
    // (stop waiting at once when a registration fails).
    wait_until(
        Duration::from_secs(20),
        "1.5 s after the admit and 300 acknowledged registrations",
        || {
            let ready = admitted_at.elapsed() >= Duration::from_millis(1500)
                && acked.lock().unwrap().len() >= 300;
            let failed = !early_failures.lock().unwrap().is_empty();
            async move { (ready || failed).then_some(()) }
        },
    )
    .await
    .unwrap();
    let early = early_failures.lock().unwrap().clone();
    assert!(
        early.is_empty(),
        "registrations failed before the kill: {early:?}"
    );

    killed.store(true, Ordering::SeqCst);
    usher.signal("KILL").unwrap();
    let code = usher.wait_exit(Duration::from_secs(10)).await.unwrap();
    assert_eq!(code, None, "kill -9 ends the process by a signal");
    let mut cut = 0;
    for w in workers {
        if w.await.unwrap() {
            cut += 1;
        }
    }
    let early = early_failures.lock().unwrap().clone();
    assert!(early.is_empty(), "failures before the kill: {early:?}");
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    let unique: std::collections::HashSet<&str> = acked.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(unique.len(), acked.len(), "ticket ids are unique");

    // Same data directory, new process (and new keys).
    let restarted_at = Instant::now();
    let mut usher = UsherProcess::start_demo(&bin, dir.path())
        .await
        .expect("demo restarts on the same data dir");
    let restart_time = restarted_at.elapsed();
    let info = usher.info.clone();

    let checked = Arc::new(AtomicUsize::new(0));
    let missing: Arc<Mutex<Vec<String>>> = Arc::default();
    let acked = Arc::new(acked);
    let mut checkers = Vec::new();
    for c in 0..WORKERS {
        let (http, info, acked) = (http.clone(), info.clone(), acked.clone());
        let (checked, missing) = (checked.clone(), missing.clone());
        checkers.push(tokio::spawn(async move {
            for (id, external_ref) in acked.iter().skip(c).step_by(WORKERS) {
                let res = http
                    .get(format!("{}/api/v1/tickets/{id}", info.base_url))
                    .bearer_auth(&info.tickets_key)
                    .send()
                    .await
                    .unwrap();
                let status = res.status();
                let body: Value = res.json().await.unwrap_or(Value::Null);
                if status != StatusCode::OK
                    || body["id"] != id.as_str()
                    || body["external_ref"] != external_ref.as_str()
                {
                    missing
                        .lock()
                        .unwrap()
                        .push(format!("{id} ({external_ref}): {status} {body}"));
                }
                checked.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    for c in checkers {
        c.await.unwrap();
    }
    let missing = missing.lock().unwrap().clone();
    let checked = checked.load(Ordering::SeqCst);
    println!(
        "kill -9: {} registrations acknowledged before the kill, {checked} checked after the restart, {} lost; \
         {cut} of {WORKERS} requests were in flight at the kill; restart took {restart_time:?}",
        acked.len(),
        missing.len()
    );
    assert!(
        missing.is_empty(),
        "acknowledged registrations lost by kill -9: {} of {}, e.g. {:?}",
        missing.len(),
        acked.len(),
        &missing[..missing.len().min(5)]
    );
    assert_eq!(checked, acked.len());
    assert!(cut > 0, "no request was in flight at the kill");

    // The lease flushed before the crash is still listed.
    let res = http
        .get(format!("{}/api/v1/sessions", info.base_url))
        .bearer_auth(&info.admin_key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let sessions: Value = res.json().await.unwrap();
    let listed = sessions["sessions"].as_array().expect("sessions array");
    assert!(
        listed
            .iter()
            .any(|s| s["session_id"] == session_id.as_str()),
        "session {session_id} admitted 1.5 s before kill -9 is gone after the restart: {sessions}"
    );

    usher.signal("TERM").unwrap();
    assert_eq!(
        usher.wait_exit(Duration::from_secs(20)).await.unwrap(),
        Some(0)
    );
}

// ---------------------------------------------------------------------------------------------------------
// 2. SIGTERM
// ---------------------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_finishes_in_flight_requests_then_exits_0() {
    const REQUESTS: usize = 20;
    const BATCH: usize = 500;
    let bin = usher_bin();
    let dir = tempfile::tempdir().unwrap();
    let mut usher = UsherProcess::start_demo(&bin, dir.path())
        .await
        .expect("demo starts");
    let info = usher.info.clone();
    let http = client();

    // (a client that keeps no idle connection, so the sockets counted below are the batches' alone)
    let fresh = Client::builder()
        .timeout(Duration::from_secs(2))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let ready = fresh
        .get(format!("{}/readyz", info.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::OK, "/readyz before the signal");
    let port = addr_of(&info.base_url).port();

    let body = serde_json::to_vec(&json!({
        "tickets": (0..BATCH).map(|_| json!({"show_id": info.show_id})).collect::<Vec<_>>()
    }))
    .unwrap();
    let sent_at = Instant::now();
    let mut requests = Vec::new();
    for _ in 0..REQUESTS {
        let (http, info, body) = (http.clone(), info.clone(), body.clone());
        requests.push(tokio::spawn(async move {
            let res = http
                .post(format!("{}/api/v1/tickets/batch", info.base_url))
                .bearer_auth(&info.tickets_key)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .map_err(|e| format!("request cut: {e:?}"))?;
            let status = res.status();
            let text = res
                .text()
                .await
                .map_err(|e| format!("answer cut ({status}): {e:?}"))?;
            Ok::<_, String>((status, text, Instant::now()))
        }));
    }
    // In flight = the server has read them: every connection to the port is established, the client has
    // nothing left to send, and the server has read everything it was sent.
    wait_until(
        Duration::from_secs(10),
        "the batches to be read by the server",
        || {
            let (server, client) = established_queues(port);
            let read = server.len() >= REQUESTS
                && client.len() >= REQUESTS
                && server.iter().all(|&(_, rx)| rx == 0)
                && client.iter().all(|&(tx, _)| tx == 0);
            async move { read.then_some(()) }
        },
    )
    .await
    .unwrap();
    let signalled = Instant::now();
    usher.signal("TERM").unwrap();

    // While it drains, it is no longer ready (503, or the listener is already closed).
    let url = format!("{}/readyz", info.base_url);
    let not_ready = wait_until(
        Duration::from_secs(5),
        "/readyz to stop answering 200",
        || {
            let (fresh, url) = (fresh.clone(), url.clone());
            async move {
                match fresh.get(url).send().await {
                    Ok(r) if r.status() == StatusCode::OK => None,
                    Ok(r) => Some(r.status().to_string()),
                    Err(e) => Some(format!(
                        "no answer ({})",
                        if e.is_connect() { "refused" } else { "error" }
                    )),
                }
            }
        },
    )
    .await
    .unwrap();
    let not_ready_after = signalled.elapsed();

    let mut after_signal = 0;
    let mut last_answer = signalled;
    for (i, r) in requests.into_iter().enumerate() {
        let (status, text, at) = r
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("request {i}: {e}"));
        assert_eq!(status, StatusCode::OK, "request {i}: {text}");
        let v: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("request {i}: incomplete JSON ({e})"));
        assert_eq!(v["created"], BATCH, "request {i}");
        assert_eq!(v["failed"], 0, "request {i}");
        assert_eq!(
            v["results"].as_array().map(Vec::len),
            Some(BATCH),
            "request {i}"
        );
        if at > signalled {
            after_signal += 1;
            last_answer = last_answer.max(at);
        }
    }
    let code = usher
        .wait_exit(Duration::from_secs(20).saturating_sub(signalled.elapsed()))
        .await
        .expect("exits within 20 s of SIGTERM");
    let exit_time = signalled.elapsed();
    assert_eq!(code, Some(0), "exit code after SIGTERM");
    println!(
        "SIGTERM: {REQUESTS} batches of {BATCH} sent, read by the server and signalled {:?} after sending, {after_signal} answered after the \
         signal (last {:?} after it), all 200 and complete; /readyz {not_ready} {not_ready_after:?} after the signal; exited 0 {exit_time:?} \
         after the signal",
        signalled - sent_at,
        last_answer - signalled
    );
    assert!(
        after_signal > 0,
        "every batch was answered before the signal: the test proved nothing"
    );

    let err = TcpStream::connect_timeout(&addr_of(&info.base_url), Duration::from_secs(2))
        .expect_err("a new connection after the exit must be refused");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused, "{err}");
}

// ---------------------------------------------------------------------------------------------------------
// 3. Configuration checked at start
// ---------------------------------------------------------------------------------------------------------

struct Case {
    what: &'static str,
    file: PathBuf,
    env: Vec<(&'static str, &'static str)>,
    needles: Vec<String>,
}

struct Exited {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

/// A `Command` for the binary with no `USHER_*` variable inherited from the test's environment.
fn usher_command(args: &[&str]) -> Command {
    let mut cmd = Command::new(usher_bin());
    cmd.args(args);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("USHER_") {
            cmd.env_remove(k);
        }
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

fn drain(r: Option<impl std::io::Read + Send + 'static>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(mut r) = r {
            let _ = r.read_to_string(&mut s);
        }
        s
    })
}

/// Runs `cmd` to its exit; kills it and answers its stderr as the error when it is still running after
/// `deadline`.
async fn run_to_exit(mut cmd: Command, deadline: Duration) -> Result<Exited, String> {
    let mut child = cmd.spawn().expect("spawn usher");
    let (out, err) = (drain(child.stdout.take()), drain(child.stderr.take()));
    let end = Instant::now() + deadline;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= end {
            let _ = child.kill();
            let _ = child.wait();
            return Err(err.join().unwrap());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    Ok(Exited {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    })
}

/// The first line of an error printout, without the `usher: error: ` prefix.
fn first_line(stderr: &str) -> &str {
    let line = stderr.lines().next().unwrap_or_default();
    line.strip_prefix("usher: error: ").unwrap_or(line)
}

fn config_text(
    listen: &str,
    secrets: Option<(&str, &str)>,
    data_dir: &Path,
    extra: &str,
) -> String {
    let mut s = format!(
        "listen = \"{listen}\"\ndata_dir = '{}'\nmedia_dir = '{}'\n{extra}\n[log]\nformat = \"text\"\nlevel = \"info\"\n",
        data_dir.display(),
        repo_root().join("media").display()
    );
    if let Some((token_key, grant_key)) = secrets {
        s.push_str(&format!(
            "\n[secrets]\ntoken_key = \"{token_key}\"\ngrant_key = \"{grant_key}\"\n"
        ));
    }
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serve_refuses_bad_configuration_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let keys = Some((TOKEN_KEY, GRANT_KEY));
    let write = |name: &str, text: String| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let valid = write("valid.toml", config_text("127.0.0.1:0", keys, &data, ""));
    let missing_file = dir.path().join("does-not-exist.toml");
    let case = |what: &'static str, file: PathBuf, needles: &[&str]| Case {
        what,
        file,
        env: vec![],
        needles: needles.iter().map(|n| (*n).to_owned()).collect(),
    };
    let cases = vec![
        case(
            "unknown top-level key",
            write(
                "unknown.toml",
                config_text("127.0.0.1:0", keys, &data, "bogus_key = 1"),
            ),
            &["`bogus_key`"],
        ),
        case(
            "unknown nested key",
            write(
                "unknown-nested.toml",
                config_text("127.0.0.1:0", keys, &data, "[http]\ndrain_timeout = 5"),
            ),
            &["`drain_timeout`"],
        ),
        case(
            "bad listen address",
            write("listen.toml", config_text("nonsense", keys, &data, "")),
            &["`listen`", "nonsense"],
        ),
        case(
            "missing secrets",
            write(
                "no-secrets.toml",
                config_text("127.0.0.1:0", None, &data, ""),
            ),
            &["secrets.token_key", "required"],
        ),
        case(
            "a previous token key equal to the current one",
            write(
                "previous-token.toml",
                format!(
                    "{}previous_token_key = \"{TOKEN_KEY}\"\n",
                    config_text("127.0.0.1:0", keys, &data, "")
                ),
            ),
            &[
                "secrets.previous_token_key",
                "is the current secrets.token_key",
            ],
        ),
        case(
            "a short previous grant key",
            write(
                "previous-grant.toml",
                format!(
                    "{}previous_grant_key = \"short\"\n",
                    config_text("127.0.0.1:0", keys, &data, "")
                ),
            ),
            &["secrets.previous_grant_key", "32"],
        ),
        case(
            "a backup destination that is neither a folder nor S3",
            write(
                "backup-dest.toml",
                config_text(
                    "127.0.0.1:0",
                    keys,
                    &data,
                    "[backup]\ndestination = \"ftp://example.org/x\"",
                ),
            ),
            &["backup.destination", "ftp"],
        ),
        case(
            "too-short secret",
            write(
                "short.toml",
                config_text("127.0.0.1:0", Some(("short-secret", GRANT_KEY)), &data, ""),
            ),
            &["secrets.token_key", "32"],
        ),
        case(
            "a grant address prefix longer than an IPv4 address",
            write(
                "prefix-v4.toml",
                config_text(
                    "127.0.0.1:0",
                    keys,
                    &data,
                    "[http]\ngrant_address_prefix_v4 = 33",
                ),
            ),
            &["http.grant_address_prefix_v4", "32"],
        ),
        case(
            "a header timeout of 0",
            write(
                "header-timeout.toml",
                config_text(
                    "127.0.0.1:0",
                    keys,
                    &data,
                    "[http]\nheader_read_timeout_s = 0",
                ),
            ),
            &["http.header_read_timeout_s", "1 to 300"],
        ),
        case(
            "a rate limit without a burst",
            write(
                "burst.toml",
                config_text(
                    "127.0.0.1:0",
                    keys,
                    &data,
                    "[rate_limits.logins]\nburst = 0",
                ),
            ),
            &["rate_limits.logins", "burst"],
        ),
        case(
            "a login backoff cap shorter than its first wait",
            write(
                "login.toml",
                config_text(
                    "127.0.0.1:0",
                    keys,
                    &data,
                    "[login]\nbackoff_initial_ms = 5000\nuser_backoff_max_s = 2",
                ),
            ),
            &["login.user_backoff_max_s", "backoff_initial_ms"],
        ),
        case(
            "an audit row cap past what Redis keeps",
            write(
                "audit.toml",
                config_text("127.0.0.1:0", keys, &data, "[audit]\nmax_rows = 2000000"),
            ),
            &["audit.max_rows", "1000000"],
        ),
        case(
            "a short metrics token",
            write(
                "metrics.toml",
                config_text("127.0.0.1:0", keys, &data, "[metrics]\ntoken = \"short\""),
            ),
            &["metrics.token", "16"],
        ),
        case(
            "missing config file",
            missing_file.clone(),
            &[missing_file.to_str().unwrap()],
        ),
        case(
            "invalid TOML",
            write("invalid.toml", "listen = \"127.0.0.1:0\n[secrets\n".into()),
            &["invalid.toml", "line 1"],
        ),
        Case {
            env: vec![("USHER_LISTEN", "nonsense")],
            ..case(
                "USHER_LISTEN=nonsense over a valid file",
                valid.clone(),
                &["`listen`", "nonsense"],
            )
        },
        Case {
            env: vec![("USHER_HTTP__GRANT_ADDRESS_PREFIX_V6", "129")],
            ..case(
                "USHER_HTTP__GRANT_ADDRESS_PREFIX_V6=129 over a valid file",
                valid.clone(),
                &["http.grant_address_prefix_v6", "128"],
            )
        },
        Case {
            env: vec![("USHER_RATE_LIMITS__ADMITS_PER_TICKET__PER_MINUTE", "many")],
            ..case(
                "USHER_RATE_LIMITS__ADMITS_PER_TICKET__PER_MINUTE=many over a valid file",
                valid.clone(),
                &["RATE_LIMITS.ADMITS_PER_TICKET.PER_MINUTE", "u32"],
            )
        },
        Case {
            env: vec![("USHER_SECRETS__TOKEN_KEY", "short-secret")],
            ..case(
                "USHER_SECRETS__TOKEN_KEY=short-secret over a valid file",
                valid.clone(),
                &["secrets.token_key", "32"],
            )
        },
    ];
    let started = Instant::now();
    let mut wrong = Vec::new();
    for Case {
        what,
        file,
        env,
        needles,
    } in cases
    {
        let mut cmd = usher_command(&["serve", "--config", file.to_str().unwrap()]);
        cmd.envs(env);
        let out = match run_to_exit(cmd, Duration::from_secs(5)).await {
            Ok(out) => out,
            Err(stderr) => {
                let stderr = stderr.trim();
                wrong.push(format!(
                    "{what}: still running after 5 s (it serves instead of refusing); stderr: {stderr}"
                ));
                continue;
            }
        };
        let stderr = out.stderr.trim();
        if out.status.success() {
            wrong.push(format!("{what}: exited {:?}; stderr: {stderr}", out.status));
        } else if !stderr.starts_with("usher: error:") || stderr.contains("usher serving") {
            wrong.push(format!("{what}: stderr is not one clear error: {stderr}"));
        } else if let Some(n) = needles.iter().find(|n| !stderr.contains(n.as_str())) {
            wrong.push(format!("{what}: stderr does not name {n}: {stderr}"));
        } else if stderr.matches(first_line(stderr)).count() > 1 {
            // anyhow prints the error's sources as "caused by:" lines; one that repeats the message is noise
            wrong.push(format!("{what}: stderr repeats its message: {stderr}"));
        } else {
            println!(
                "config refused ({what}): exit {:?}: {stderr}",
                out.status.code()
            );
        }
    }
    println!("config refusals checked in {:?}", started.elapsed());
    assert!(
        wrong.is_empty(),
        "bad configurations not refused clearly:\n{}",
        wrong.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serve_starts_from_a_valid_configuration_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("usher.toml");
    std::fs::write(
        &config,
        config_text(
            "127.0.0.1:0",
            Some((TOKEN_KEY, GRANT_KEY)),
            &dir.path().join("data"),
            "",
        ),
    )
    .unwrap();
    let config = config.to_str().unwrap();

    let created = run_to_exit(
        usher_command(&[
            "api-key", "create", "--config", config, "--name", "t", "--scope", "admin",
        ]),
        Duration::from_secs(20),
    )
    .await
    .unwrap_or_else(|stderr| panic!("api-key create did not exit within 20 s: {stderr}"));
    assert!(
        created.status.success(),
        "api-key create: {:?}: {}",
        created.status,
        created.stderr
    );
    let key = created.stdout.trim().to_owned();
    assert!(
        !key.is_empty() && !key.contains(char::is_whitespace),
        "api-key create printed {:?}",
        created.stdout
    );

    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let mut child = usher_command(&["serve", "--config", config, "--listen", &listen])
        .spawn()
        .expect("spawn usher serve");
    let (out, err) = (drain(child.stdout.take()), drain(child.stderr.take()));
    let base = format!("http://{listen}");
    let http = client();
    let started = Instant::now();
    let ready = wait_until(
        Duration::from_secs(20),
        "/readyz 200 from usher serve",
        || {
            let (http, url) = (http.clone(), format!("{base}/readyz"));
            let exited = child.try_wait().unwrap();
            async move {
                if let Some(status) = exited {
                    return Some(Err(status));
                }
                match http.get(url).send().await {
                    Ok(r) if r.status() == StatusCode::OK => Some(Ok(())),
                    _ => None,
                }
            }
        },
    )
    .await;
    match ready {
        Ok(Ok(())) => {}
        Ok(Err(status)) => panic!(
            "usher serve exited {status:?} before it was ready: {}",
            err.join().unwrap()
        ),
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{e}: {}", err.join().unwrap());
        }
    }
    let ready_time = started.elapsed();

    let shows = http
        .get(format!("{base}/api/v1/shows"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(
        shows.status(),
        StatusCode::OK,
        "GET /api/v1/shows with the created admin key"
    );
    let no_key = http
        .get(format!("{base}/api/v1/shows"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        no_key.status(),
        StatusCode::UNAUTHORIZED,
        "GET /api/v1/shows without a key"
    );

    let signalled = Instant::now();
    let kill = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(kill.success());
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if signalled.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "usher serve did not exit within 20 s of SIGTERM: {}",
                err.join().unwrap()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let exit_time = signalled.elapsed();
    let (_, stderr) = (out.join().unwrap(), err.join().unwrap());
    assert_eq!(
        status.code(),
        Some(0),
        "exit after SIGTERM; stderr: {stderr}"
    );
    println!("usher serve: ready in {ready_time:?}, exited 0 {exit_time:?} after SIGTERM");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_refuses_a_store_written_by_a_newer_release_and_leaves_it_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("usher.toml");
    std::fs::write(
        &config,
        config_text("127.0.0.1:0", Some((TOKEN_KEY, GRANT_KEY)), &data, ""),
    )
    .unwrap();
    let config = config.to_str().unwrap();
    // a store made by this release
    let created = run_to_exit(
        usher_command(&[
            "api-key", "create", "--config", config, "--name", "t", "--scope", "admin",
        ]),
        Duration::from_secs(20),
    )
    .await
    .unwrap();
    assert!(created.status.success(), "{}", created.stderr);
    // as a later release would stamp it
    let newer = usher_store::embedded::EMBEDDED_SCHEMA + 1;
    let file = data.join(usher_store::embedded::DB_FILE);
    {
        let db = redb::Database::open(&file).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(redb::TableDefinition::<&str, &str>::new("meta"))
            .unwrap()
            .insert("schema", newer.to_string().as_str())
            .unwrap();
        txn.commit().unwrap();
    }
    let before = std::fs::read(&file).unwrap();
    let served = run_to_exit(
        usher_command(&["serve", "--config", config]),
        Duration::from_secs(20),
    )
    .await
    .unwrap_or_else(|stderr| panic!("serve kept running on a newer store: {stderr}"));
    assert!(!served.status.success());
    let said = &served.stderr;
    assert!(
        said.contains(&format!("schema {newer}"))
            && said.contains("newer Usher")
            && said.contains(env!("CARGO_PKG_VERSION")),
        "{said}"
    );
    assert!(
        std::fs::read(&file).unwrap() == before,
        "a refusing node changes nothing"
    );
}
