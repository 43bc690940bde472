//! Getting ready for a run: how many connections the file-descriptor budget allows, the show, and the
//! tickets.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};

use crate::api::{self, Registered, ShowSetup};
use crate::client::{Lanes, Target};
use crate::stats::Recorder;
use crate::system::{FD_RESERVE, FdLimit, raise_fd_limit};

/// Where the server is and how to reach it.
#[derive(Debug, Clone)]
pub struct Server {
    /// `http://host:port`.
    pub base_url: String,
    /// A key with the `tickets` scope.
    pub tickets_key: String,
    /// A key with the `admin` scope: the run creates its own show.
    pub admin_key: Option<String>,
    /// The show to use (created when `admin_key` is given; otherwise it must exist).
    pub show_id: Option<String>,
    /// Heartbeat interval of the created show.
    pub heartbeat_s: Option<u32>,
    /// Stream folder of the created show.
    pub stream_path: String,
    /// Encryption of the created show (`none`, `aes-128`).
    pub encryption: String,
    /// Per-request timeout.
    pub timeout: Duration,
}

/// Raises the open-files limit for `want` connections and says what it got.
///
/// With `strict`, a hard limit too low for `want` is an error; otherwise the run goes on with as many
/// connections as fit, and says so on stderr.
///
/// # Errors
/// When the limit cannot be read or is too low under `strict`.
pub fn connection_budget(want: usize, strict: bool) -> anyhow::Result<(usize, FdLimit)> {
    let limit = raise_fd_limit(want as u64 + FD_RESERVE)?;
    let fits = usize::try_from(limit.connections()).unwrap_or(usize::MAX);
    if fits >= want {
        return Ok((want, limit));
    }
    let msg = format!(
        "the open-files limit is too low for {want} connections: hard limit {} (soft {}) leaves room for {fits}. \
         Raise it (`ulimit -Hn {}` as root, or LimitNOFILE= / /etc/security/limits.conf; a container may cap it), \
         or share connections with --connections {fits} or fewer. The server on the same machine needs as many \
         descriptors as the connections it accepts, under its own limit.",
        limit.hard,
        limit.soft,
        want as u64 + FD_RESERVE
    );
    if strict {
        bail!(msg);
    }
    eprintln!("usher-load: warning: {msg}; going on with {fits} connections");
    Ok((fits.max(1), limit))
}

/// The show a run uses: created (or replaced) with the admin key, else the given one.
///
/// # Errors
/// When there is neither an admin key nor a show id, or the server refuses the show.
pub async fn prepare_show(
    lanes: &Lanes,
    server: &Server,
    max_devices: u32,
) -> anyhow::Result<String> {
    match (&server.admin_key, &server.show_id) {
        (Some(admin), id) => {
            let id = id.clone().unwrap_or_else(|| {
                format!("load-{}", api::make_device()[2..10].to_ascii_lowercase())
            });
            api::put_show(
                lanes,
                admin,
                &ShowSetup {
                    id: id.clone(),
                    heartbeat_s: server.heartbeat_s,
                    max_devices,
                    stream_path: server.stream_path.clone(),
                    encryption: server.encryption.clone(),
                    capacity: None,
                    admit_rate_per_s: None,
                },
            )
            .await?;
            Ok(id)
        }
        (None, Some(id)) => Ok(id.clone()),
        (None, None) => bail!("give --admin-key (the run creates its show) or --show-id"),
    }
}

/// Registers `n` fresh tickets for `show_id`; all of them must be created.
///
/// # Errors
/// When registration fails or refuses items.
pub async fn prepare_tickets(
    lanes: &Lanes,
    rec: &Recorder,
    server: &Server,
    show_id: &str,
    n: usize,
) -> anyhow::Result<(Arc<Vec<String>>, Registered)> {
    let tokens = api::make_tokens(n);
    let registered = api::register(lanes, rec, &server.tickets_key, show_id, &tokens)
        .await
        .context("registering the run's tickets")?;
    anyhow::ensure!(
        registered.failed == 0,
        "{} of {n} ticket registrations failed",
        registered.failed
    );
    Ok((Arc::new(tokens), registered))
}

/// Lanes to the server.
///
/// # Errors
/// When the base URL does not resolve.
pub async fn lanes(server: &Server, n: usize) -> anyhow::Result<Arc<Lanes>> {
    let target = Target::resolve(&server.base_url).await?;
    Ok(Arc::new(Lanes::new(target, n, server.timeout)))
}
