//! `usher demo`: the same server with a demo show, fresh API keys and a fresh ticket, and a printout of
//! what a newcomer needs (or one JSON object for scripts).

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::json;
use usher_core::ids::{ShowId, TicketId, TicketToken, random_b64};
use usher_core::show::{SharingPolicy, ShowKind, ShowSpec};
use usher_core::store::{NewTicket, RegisterOutcome, Scope};
use usher_core::ticket::{Ticket, TicketStatus, TicketTerms};

use crate::service::admin::api_keys::issue_api_key;
use crate::settings::{
    CdnProbeSettings, Config, HttpSettings, LogFormat, LogSettings, StoreSettings,
};
use crate::startup::{Application, shutdown_signal};

/// Options of `usher demo`.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Address to listen on.
    pub listen: String,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Media directory holding `demo/master.m3u8`.
    pub media_dir: PathBuf,
    /// Public URL, when not `http://<listen>`.
    pub public_url: Option<String>,
    /// Print one JSON object instead of prose.
    pub json: bool,
}

/// The demo's secrets, made once per data directory so tokens stay valid across restarts.
#[derive(Serialize, Deserialize)]
struct DemoSecrets {
    token_key: String,
    grant_key: String,
}

fn demo_secrets(dir: &Path) -> anyhow::Result<DemoSecrets> {
    let path = dir.join("demo-secrets.json");
    if let Ok(text) = std::fs::read_to_string(&path) {
        return serde_json::from_str(&text).with_context(|| format!("reading {}", path.display()));
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let secrets = DemoSecrets {
        token_key: random_b64(32),
        grant_key: random_b64(32),
    };
    std::fs::write(&path, serde_json::to_vec_pretty(&json!(secrets))?)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(secrets)
}

/// Runs the demo until SIGTERM or Ctrl-C.
///
/// # Errors
/// When the media is missing or the server cannot start.
pub async fn run(opts: DemoOptions) -> anyhow::Result<()> {
    let master = opts.media_dir.join("demo").join("master.m3u8");
    anyhow::ensure!(
        master.is_file(),
        "the demo stream is missing: {} does not exist (run from the repository root, or pass --media-dir)",
        master.display()
    );
    let secrets = demo_secrets(&opts.data_dir)?;
    let listen = opts.listen.parse().with_context(|| {
        format!(
            "--listen `{}` is not an address like 127.0.0.1:8080",
            opts.listen
        )
    })?;
    let config = Config {
        listen,
        public_url: opts.public_url.clone(),
        data_dir: opts.data_dir.clone(),
        media_dir: opts.media_dir.clone(),
        store: StoreSettings::Embedded,
        token_key: SecretString::from(secrets.token_key),
        grant_key: SecretString::from(secrets.grant_key),
        http: HttpSettings::default(),
        log: LogSettings {
            format: LogFormat::Text,
            level: "info".into(),
        },
        trusted_proxies: Vec::new(),
        trusted_proxy_header: Default::default(),
        geoip: Default::default(),
        // a demo's CDNs are on this machine: probe every second, so a stopped one is seen at once, and
        // let the probes reach loopback
        cdn_probe: CdnProbeSettings {
            interval_ms: 1000,
            timeout_ms: 500,
            fail_after: 2,
            allow_private_targets: true,
            ..CdnProbeSettings::default()
        },
        media_cache: Default::default(),
        rate_limits: Default::default(),
        login: Default::default(),
        audit: Default::default(),
        metrics: Default::default(),
    };
    let app = Application::build(config).await?;
    let admin_password = app.bootstrap_admin().await?;
    let state = app.state().clone();
    let store = &*state.store;
    let now = store.now();
    let show_id = ShowId::parse("demo").expect("valid id");
    let existing = store.show(&show_id).await?;
    let spec = ShowSpec {
        title: "Usher demo: test pattern".into(),
        description: "A 64-second test pattern with a running clock, in two renditions. Only your ticket unlocks it, on one device at a time: open the link on a second device and watch the first one stop.".into(),
        kind: ShowKind::Vod,
        starts_at: (now.to_datetime() - time::Duration::hours(1)),
        ends_at: (now.to_datetime() + time::Duration::days(30)),
        stream_path: "demo".into(),
        max_devices: Some(1),
        policy: SharingPolicy::NewestWins,
        heartbeat_interval_s: None,
        lease_ttl_s: None,
        grant_ttl_s: None,
        geo: Default::default(),
        cdns: Vec::new(),
        published: None,
    };
    let show = spec.into_show(show_id.clone(), now, existing.map(|s| s.created_at))?;
    store.put_show(show).await?;
    let (_, admin_key) =
        issue_api_key(store, &state.hasher, "demo admin", vec![Scope::Admin]).await?;
    let (_, tickets_key) = issue_api_key(
        store,
        &state.hasher,
        "demo ticket site",
        vec![Scope::Tickets],
    )
    .await?;
    let token = TicketToken::generate();
    let ticket = Ticket {
        id: TicketId::generate(),
        token_hash: state.hasher.ticket_token(&token),
        terms: TicketTerms {
            show_id: show_id.clone(),
            valid_from: None,
            valid_until: None,
            max_devices: None,
            external_ref: Some("demo".into()),
        },
        status: TicketStatus::Active,
        created_at: now.to_datetime(),
        revoked_at: None,
    };
    match store
        .register_tickets(vec![NewTicket { ticket }])
        .await?
        .pop()
    {
        Some(RegisterOutcome::Created(_)) => {}
        other => anyhow::bail!("registering the demo ticket: {other:?}"),
    }
    let base_url = state.base_url.to_string();
    let watch_url = format!("{base_url}/watch/{}", token.expose());
    if opts.json {
        let out = json!({
            "base_url": base_url,
            "admin_key": admin_key,
            "tickets_key": tickets_key,
            "show_id": show_id,
            "ticket_token": token.expose(),
            "watch_url": watch_url,
            "console_url": format!("{base_url}/admin"),
            "admin_user": admin_password.as_ref().map(|_| "admin"),
            "admin_password": admin_password,
        });
        println!("{out}");
    } else {
        if let Some(p) = &admin_password {
            println!(
                "\nAdmin console: {base_url}/admin  (user `admin`, one-time password {p}; you will choose a new one)"
            );
        }
        println!(
            "\nUsher demo is running at {base_url}\n\n  Open this watch link in a browser:\n    {watch_url}\n\n  \
             Open it in a second browser (or a private window) too: the first one stops, because one ticket\n  \
             plays on one device at a time.\n\n  show id      {show_id}\n  admin key    {admin_key}\n  tickets key  {tickets_key}\n\n  \
             Register another ticket:\n    curl -s -X POST {base_url}/api/v1/tickets -H 'Authorization: Bearer {tickets_key}' \\\n      \
             -H 'Content-Type: application/json' -d '{{\"show_id\":\"demo\"}}'\n\n  Stop with Ctrl-C.\n"
        );
    }
    app.run_until(shutdown_signal()).await
}
