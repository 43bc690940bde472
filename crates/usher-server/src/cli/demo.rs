//! `usher demo`: the same server with a demo show, fresh API keys and a fresh ticket, and a printout of
//! what a newcomer needs (or one JSON object for scripts).
//!
//! The demo serves a copy of the committed stream from `{data dir}/media`, beside its encrypted variant
//! `demo-aes` (HLS AES-128, a new content key every 8 segments), which it packages there with ffmpeg at
//! its first start on a data directory (about a second; without ffmpeg the demo plays unencrypted only).
//! Packaging into the data directory keeps the repository's media folder untouched, and demos on other
//! data directories from racing over one folder.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::json;
use usher_core::content_key::ContentKey;
use usher_core::ids::{ContentKeyId, ShowId, TicketId, TicketToken, random_b64};
use usher_core::show::{Encryption, SharingPolicy, ShowKind, ShowSpec};
use usher_core::store::{NewTicket, RegisterOutcome, Scope};
use usher_core::ticket::{Ticket, TicketStatus, TicketTerms};

use crate::packager::{KeyRegistry, VodJob, package_vod};
use crate::service::admin::api_keys::issue_api_key;
use crate::service::content_keys::register_key;
use crate::service::{Caller, Principal};
use crate::settings::{
    CdnProbeSettings, Config, HttpSettings, LogFormat, LogSettings, StoreSettings,
};
use crate::startup::{Application, shutdown_signal};
use crate::state::AppState;

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
    let media_dir = opts.data_dir.join("media");
    copy_dir(&opts.media_dir.join("demo"), &media_dir.join("demo"))?;
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
        media_dir: media_dir.clone(),
        store: StoreSettings::Embedded,
        token_key: SecretString::from(secrets.token_key),
        grant_key: SecretString::from(secrets.grant_key),
        previous_token_key: None,
        previous_grant_key: None,
        key_encryption_key: None,
        http: HttpSettings::default(),
        log: LogSettings {
            format: LogFormat::Text,
            level: "info".into(),
            client_addresses: false,
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
        tv: Default::default(),
        rate_limits: Default::default(),
        login: Default::default(),
        audit: Default::default(),
        privacy: Default::default(),
        backup: Default::default(),
        metrics: Default::default(),
        // a demo's receivers are on this machine too
        webhooks: crate::settings::WebhookSettings {
            allow_private_targets: true,
            ..Default::default()
        },
        // with ffmpeg, the console's show pages take video uploads (packaged into <data dir>/media)
        uploads: crate::settings::UploadSettings {
            enabled: crate::service::admin::uploads::jobs::check_tools().is_ok(),
            dir: Some(opts.data_dir.join("uploads")),
            ..Default::default()
        },
        ingest: Default::default(),
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
        encryption: Encryption::None,
        live_dvr_s: None,
        live_recording: false,
        capacity: None,
        admit_rate_per_s: None,
        translations: demo_translations(),
    };
    let show = spec
        .clone()
        .into_show(show_id.clone(), now, existing.map(|s| s.created_at))?;
    store.put_show(show).await?;
    let (admin_record, admin_key) =
        issue_api_key(store, &state.hasher, "demo admin", vec![Scope::Admin]).await?;
    let (_, tickets_key) = issue_api_key(
        store,
        &state.hasher,
        "demo ticket site",
        vec![Scope::Tickets],
    )
    .await?;
    let token = demo_ticket(&state, &show_id).await?;
    let base_url = state.base_url.to_string();
    let watch_url = format!("{base_url}/watch/{}", token.expose());
    let caller = Caller {
        principal: Principal::Key(admin_record),
        address: std::net::IpAddr::from([127, 0, 0, 1]),
        csrf: None,
        session: None,
    };
    let encrypted = match encrypted_variant(&state, &caller, &media_dir, &spec).await {
        Ok(id) => {
            let token = demo_ticket(&state, &id).await?;
            Some((id, format!("{base_url}/watch/{}", token.expose())))
        }
        Err(e) => {
            tracing::warn!(
                error = format!("{e:#}"),
                "the demo plays without its encrypted variant"
            );
            None
        }
    };
    if opts.json {
        let out = json!({
            "base_url": base_url,
            "admin_key": admin_key,
            "tickets_key": tickets_key,
            "show_id": show_id,
            "ticket_token": token.expose(),
            "watch_url": watch_url,
            "console_url": format!("{base_url}/admin"),
            "encrypted_show_id": encrypted.as_ref().map(|(id, _)| id),
            "encrypted_watch_url": encrypted.as_ref().map(|(_, url)| url),
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
             {}Register another ticket:\n    curl -s -X POST {base_url}/api/v1/tickets -H 'Authorization: Bearer {tickets_key}' \\\n      \
             -H 'Content-Type: application/json' -d '{{\"show_id\":\"demo\"}}'\n\n  Stop with Ctrl-C.\n",
            encrypted.as_ref().map_or_else(String::new, |(_, url)| format!(
                "The same stream encrypted (HLS AES-128; keys only for the device holding the seat):\n    {url}\n\n  "
            ))
        );
    }
    app.run_until(shutdown_signal()).await
}

/// Registers a fresh ticket for `show` in the store; returns its token.
async fn demo_ticket(state: &AppState, show: &ShowId) -> anyhow::Result<TicketToken> {
    let now = state.store.now();
    let token = TicketToken::generate();
    let token_hash = state.hasher.ticket_token(&token);
    let ticket = Ticket {
        id: TicketId::generate_in(&token_hash.shard()),
        token_hash,
        terms: TicketTerms {
            show_id: show.clone(),
            valid_from: None,
            valid_until: None,
            max_devices: None,
            external_ref: Some("demo".into()),
        },
        status: TicketStatus::Active,
        created_at: now.to_datetime(),
        revoked_at: None,
    };
    match state
        .store
        .register_tickets(vec![NewTicket { ticket }])
        .await?
        .pop()
    {
        Some(RegisterOutcome::Created(_)) => Ok(token),
        other => anyhow::bail!("registering a demo ticket: {other:?}"),
    }
}

/// Copies the folder `from` to `to` (files only, one level of subfolders and more), unless `to` exists.
fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    if to.exists() {
        return Ok(());
    }
    let staging = to.with_extension("copying");
    let _ = std::fs::remove_dir_all(&staging);
    fn copy(from: &Path, to: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
        for entry in
            std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))?
        {
            let entry = entry?;
            let target = to.join(entry.file_name());
            if entry.file_type()?.is_dir() {
                copy(&entry.path(), &target)?;
            } else {
                std::fs::copy(entry.path(), &target)
                    .with_context(|| format!("copying {}", entry.path().display()))?;
            }
        }
        Ok(())
    }
    copy(from, &staging)?;
    std::fs::rename(&staging, to).with_context(|| format!("moving the copy to {}", to.display()))
}

/// Registers keys in this process's store, as the demo's admin.
struct InProcess<'a> {
    state: &'a AppState,
    caller: &'a Caller,
}

impl KeyRegistry for InProcess<'_> {
    async fn register(
        &self,
        id: &ContentKeyId,
        stream_path: &str,
        key: &ContentKey,
    ) -> anyhow::Result<()> {
        register_key(
            self.state,
            self.caller,
            id.as_str(),
            stream_path,
            &hex::encode(key.expose()),
        )
        .await
        .map(drop)
        .map_err(|e| anyhow::anyhow!("{e}"))
    }
}

/// The show `demo-aes`: the demo stream encrypted, packaged into `media_dir/demo-aes` unless it is there.
async fn encrypted_variant(
    state: &AppState,
    caller: &Caller,
    media_dir: &Path,
    plain: &ShowSpec,
) -> anyhow::Result<ShowId> {
    let id = ShowId::parse("demo-aes").expect("valid id");
    let folder = "demo-aes";
    if !media_dir.join(folder).join("master.m3u8").is_file() {
        let job = VodJob {
            input: media_dir.join("demo").join("master.m3u8"),
            media_dir: media_dir.to_owned(),
            stream_path: folder.into(),
            key_base: state.base_url.to_string(),
            segments_per_key: 8,
            ladder: Vec::new(),
            replace: true,
        };
        package_vod(&job, &InProcess { state, caller }).await?;
    }
    let now = state.store.now();
    let existing = state.store.show(&id).await?;
    let spec = ShowSpec {
        title: "Usher demo: test pattern, encrypted".into(),
        description: "The same test pattern, its segments encrypted with HLS AES-128 and a new key every 16 seconds: the key server hands keys only to the device holding the seat, so a device that loses it stops at the next key, whatever a CDN has cached.".into(),
        stream_path: folder.into(),
        encryption: Encryption::Aes128,
        ..plain.clone()
    };
    let show = spec.into_show(id.clone(), now, existing.map(|s| s.created_at))?;
    state.store.put_show(show).await?;
    Ok(id)
}

/// The demo show's title and description in the viewer pages' other languages (`translations`).
fn demo_translations() -> std::collections::BTreeMap<String, usher_core::show::ShowText> {
    [
        (
            "de",
            "Usher-Demo: Testbild",
            "Ein 64 Sekunden langes Testbild mit laufender Uhr, in zwei Qualitätsstufen. Nur Ihr Ticket schaltet es frei, auf einem Gerät zur selben Zeit: Öffnen Sie den Link auf einem zweiten Gerät, und das erste hält an.",
        ),
        (
            "cs",
            "Ukázka Usher: testovací obrazec",
            "Testovací obrazec o délce 64 sekund s běžícími hodinami, ve dvou kvalitách. Odemkne ho jen vaše vstupenka, vždy na jednom zařízení: otevřete odkaz na druhém zařízení a první se zastaví.",
        ),
        (
            "sk",
            "Ukážka Usher: testovací obrazec",
            "Testovací obrazec s dĺžkou 64 sekúnd s bežiacimi hodinami, v dvoch kvalitách. Odomkne ho iba vaša vstupenka, vždy na jednom zariadení: otvorte odkaz na druhom zariadení a prvé sa zastaví.",
        ),
        (
            "pl",
            "Demo Usher: obraz testowy",
            "64-sekundowy obraz testowy z działającym zegarem, w dwóch jakościach. Odblokowuje go tylko Twój bilet, na jednym urządzeniu naraz: otwórz link na drugim urządzeniu, a pierwsze się zatrzyma.",
        ),
        (
            "hu",
            "Usher bemutató: tesztkép",
            "64 másodperces tesztkép futó órával, két minőségben. Csak az Ön jegye nyitja meg, egyszerre egy eszközön: nyissa meg a linket egy második eszközön, és az első leáll.",
        ),
    ]
    .into_iter()
    .map(|(code, title, description)| {
        (
            code.to_owned(),
            usher_core::show::ShowText {
                title: title.to_owned(),
                description: description.to_owned(),
            },
        )
    })
    .collect()
}
