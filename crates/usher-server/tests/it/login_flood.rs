//! The real `usher serve` under a flood of console logins: parallel guesses are never checked past the
//! limits (attempts are counted before the password is checked), and the process's memory stays bounded
//! however many arrive at once (password checks wait for one of `login.concurrent_checks` slots). Run
//! with `--nocapture` to see the figures.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::{Client, StatusCode};
use usher_testkit::ServeProcess;

use crate::support::process::{BIN, serve_config};

const PASSWORD: &str = "correct horse battery staple";

/// Adds the console user `ops` (role admin, password [`PASSWORD`]) with the CLI, before the server runs.
fn add_user(config: &Path) {
    let mut child = Command::new(BIN)
        .args(["admin", "add-user", "--config"])
        .arg(config)
        .args(["--name", "ops", "--role", "admin", "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{PASSWORD}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "add-user: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn serve(login: &str) -> (tempfile::TempDir, ServeProcess) {
    let dir = tempfile::tempdir().unwrap();
    // the per-address login bucket ([rate_limits.logins], 20 at once) is off: these tests measure what the
    // login's own throttle and the bounded password checks do with every attempt that reaches them
    let config = serve_config(
        dir.path(),
        &format!("[rate_limits.logins]\nper_minute = 0\n\n[login]\n{login}"),
    );
    add_user(&config);
    let node = ServeProcess::start(Path::new(BIN), &config)
        .await
        .expect("usher serve starts");
    (dir, node)
}

fn client() -> Client {
    Client::builder()
        .timeout(Duration::from_secs(120))
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(100)
        .build()
        .unwrap()
}

/// The login form's CSRF pair (cookie, field): one pair serves any number of posts.
async fn login_csrf(http: &Client, base: &str) -> (String, String) {
    let page = http
        .get(format!("{base}/admin/login"))
        .send()
        .await
        .unwrap();
    let cookie = page
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix("usher_login_csrf="))
        .and_then(|c| c.split(';').next())
        .unwrap()
        .to_owned();
    let html = page.text().await.unwrap();
    let i = html.find("name=\"_csrf\" value=\"").unwrap() + 20;
    let field = html[i..].split('"').next().unwrap().to_owned();
    (cookie, field)
}

/// `n` logins at once, the `i`th with name `name(i)` and a wrong password; their statuses.
async fn flood(base: &str, n: usize, name: impl Fn(usize) -> String) -> Vec<StatusCode> {
    let http = client();
    let (cookie, csrf) = login_csrf(&http, base).await;
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(n));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let (http, url, cookie, csrf, name, barrier) = (
            http.clone(),
            format!("{base}/admin/login"),
            cookie.clone(),
            csrf.clone(),
            name(i),
            barrier.clone(),
        );
        tasks.spawn(async move {
            barrier.wait().await;
            let res = http
                .post(url)
                .header("cookie", format!("usher_login_csrf={cookie}"))
                .form(&[
                    ("_csrf", csrf.as_str()),
                    ("name", name.as_str()),
                    ("password", "a wrong guess of a password"),
                ])
                .send()
                .await
                .unwrap();
            let status = res.status();
            if status != StatusCode::UNAUTHORIZED {
                // what refused it (a 429 names its cause: throttled, busy or a rate limit)
                let retry = res.headers().get("retry-after").cloned();
                let body = res.text().await.unwrap_or_default();
                // the page's message, past its head
                let message = body.find("<main").map_or(&body[..], |i| &body[i..]);
                eprintln!("{name}: {status} (Retry-After {retry:?}): {message:.600}");
            }
            status
        });
    }
    let mut out = Vec::new();
    while let Some(s) = tasks.join_next().await {
        out.push(s.unwrap());
    }
    out
}

fn count(statuses: &[StatusCode], s: StatusCode) -> usize {
    statuses.iter().filter(|x| **x == s).count()
}

/// `usher_password_checks_total{outcome="run"}`: argon2 runs so far.
async fn checks_run(base: &str) -> u64 {
    let text = client()
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find(|l| l.starts_with("usher_password_checks_total{outcome=\"run\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .map_or(0, |v| v.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_wrong_logins_are_never_checked_past_the_limits() {
    // the defaults: 5 attempts per user, 20 per client network
    let (_dir, node) = serve("").await;
    let base = node.base_url.clone();

    // 40 guesses of one user's password at once: 5 are checked, the rest wait
    let statuses = flood(&base, 40, |_| "ops".to_owned()).await;
    let (wrong, waited) = (
        count(&statuses, StatusCode::UNAUTHORIZED),
        count(&statuses, StatusCode::TOO_MANY_REQUESTS),
    );
    println!("one user, 40 parallel guesses: {wrong} checked (401), {waited} refused (429)");
    assert_eq!(wrong + waited, 40, "{statuses:?}");
    assert!(wrong <= 5, "{wrong} guesses were checked");
    let runs = checks_run(&base).await;
    assert_eq!(runs, wrong as u64, "argon2 runs");

    // 40 guesses of 40 names from one address at once: the network's 20 (15 left after the 5 above)
    let statuses = flood(&base, 40, |i| format!("sprayed-{i}")).await;
    let wrong2 = count(&statuses, StatusCode::UNAUTHORIZED);
    println!(
        "40 names from one address: {wrong2} checked (401), {} refused (429)",
        count(&statuses, StatusCode::TOO_MANY_REQUESTS)
    );
    assert_eq!(wrong2 + count(&statuses, StatusCode::TOO_MANY_REQUESTS), 40);
    assert!(
        wrong + wrong2 <= 20,
        "{} guesses from one address",
        wrong + wrong2
    );
    assert_eq!(checks_run(&base).await, (wrong + wrong2) as u64);
}

/// `VmRSS` and `VmHWM` (peak) of `pid`, in KiB.
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    };
    (field("VmRSS:"), field("VmHWM:"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flood_of_logins_keeps_the_process_memory_bounded() {
    // every attempt passes the backoff, so every one of them checks a password: only the slots bound them
    let (_dir, node) = serve(
        "user_attempts = 1000000\naddress_attempts = 1000000\nconcurrent_checks = 2\ncheck_wait_ms = 60000",
    )
    .await;
    let base = node.base_url.clone();
    let pid = node.pid().unwrap();
    // warm up: one check has run, so the baseline holds what one check leaves behind
    flood(&base, 2, |i| format!("warm-{i}")).await;
    let (before, _) = memory_kib(pid);

    let sampling = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let sampling = sampling.clone();
        tokio::spawn(async move {
            let mut peak = 0;
            while sampling.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(memory_kib(pid).0);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            peak
        })
    };
    let started = Instant::now();
    let statuses = flood(&base, 40, |i| format!("flood-{i}")).await;
    let took = started.elapsed();
    sampling.store(false, std::sync::atomic::Ordering::Relaxed);
    let sampled_peak = sampler.await.unwrap();
    let (_, high_water) = memory_kib(pid);
    assert_eq!(
        count(&statuses, StatusCode::UNAUTHORIZED),
        40,
        "every attempt was checked: {statuses:?}"
    );
    let grew_mib = high_water.saturating_sub(before) / 1024;
    println!(
        "40 logins at once, 2 checks at a time, in {took:?}: RSS {} MiB before, peak {} MiB sampled, \
         high-water mark {} MiB (+{grew_mib} MiB)",
        before / 1024,
        sampled_peak / 1024,
        high_water / 1024,
    );
    // two argon2 runs of 19 MiB at once, and room for the allocator and the requests
    assert!(
        grew_mib <= 2 * 19 + 40,
        "the process grew by {grew_mib} MiB during the flood"
    );
}
