//! The `usher` binary's commands (clap): `serve`, `demo`, `api-key create`, `admin add-user`, `sign-url`,
//! `package`, `backup` and `restore`. Each parses its arguments, calls a service or the startup code, and prints.

pub mod demo;
pub mod package;
pub mod sign_url;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use usher_core::admin::{Actor, Role};
use usher_core::store::Scope;

use crate::service::audit;
use crate::settings::{Config, Settings};
use crate::startup::{Application, shutdown_signal};
use crate::telemetry;
use demo::DemoOptions;

#[derive(Parser)]
#[command(
    name = "usher",
    version,
    about = "Pay-per-view video: only valid tickets, one device per ticket."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server from a configuration file and USHER_* environment variables.
    Serve {
        /// TOML configuration file.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Address to listen on (overrides `listen`).
        #[arg(long)]
        listen: Option<String>,
        /// Data directory of the embedded store (overrides `data_dir`).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Run the server with a demo show, fresh API keys and a fresh ticket; print what to open.
    Demo {
        /// Address to listen on (port 0 picks a free port).
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
        /// Data directory of the embedded store.
        #[arg(long, default_value = "usher-demo-data")]
        data_dir: PathBuf,
        /// Media directory holding demo/master.m3u8.
        #[arg(long, default_value = "media")]
        media_dir: PathBuf,
        /// Public URL of the server, when not http://<listen>.
        #[arg(long)]
        public_url: Option<String>,
        /// Print base_url, admin_key, tickets_key, show_id, ticket_token and watch_url as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Manage API keys directly in the store (while the server is stopped).
    ApiKey {
        #[command(subcommand)]
        command: ApiKeyCommand,
    },
    /// Manage console users directly in the store (while the server is stopped).
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Print what a viewer gets from a CDN signing scheme (URL, cookies or header) for given times.
    SignUrl(Box<sign_url::SignUrlArgs>),
    /// Encrypt an MP4 or an unencrypted HLS ladder (HLS AES-128, a new content key every N segments) for
    /// an `aes-128` show of a running Usher, which keeps the keys (admin key in USHER_API_KEY).
    Package(Box<package::PackageArgs>),
    /// Save a consistent snapshot of the embedded store (from a running server with --server).
    Backup(crate::backup::BackupArgs),
    /// Put a backup in place as the embedded store (while Usher is stopped).
    Restore(crate::backup::RestoreArgs),
    /// Print the key layout (schema) the configured Redis is stamped with; with --upgrade, move a
    /// database of schema 1 (0.2 and before) or 2 to this build's, once no node of an older build runs.
    RedisSchema {
        /// TOML configuration file (its `[store]` names the Redis).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Move the stamp to this build's schema (running nodes of this build follow at once).
        #[arg(long)]
        upgrade: bool,
    },
}

#[derive(Subcommand)]
enum ApiKeyCommand {
    /// Create a key and print it (it is shown this once).
    Create {
        /// TOML configuration file.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Data directory (overrides `data_dir`).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// A name for humans.
        #[arg(long)]
        name: String,
        /// Scopes (repeat for several).
        #[arg(long = "scope", required = true)]
        scopes: Vec<ScopeArg>,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Add a console user. Without --password-stdin a password is made and printed (shown this once),
    /// and the user must change it at the first login.
    AddUser {
        /// TOML configuration file.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Data directory (overrides `data_dir`).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Login name (a-z, 0-9, '.', '_', '-').
        #[arg(long)]
        name: String,
        /// What the user may do.
        #[arg(long, value_enum)]
        role: RoleArg,
        /// Read the password from the first line of standard input instead of making one.
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum RoleArg {
    /// Everything.
    Admin,
    /// Read, revoke tickets, end sessions.
    Support,
    /// Read only.
    Observer,
}

#[derive(Clone, Copy, ValueEnum)]
enum ScopeArg {
    Tickets,
    Admin,
}

fn load(
    config: Option<PathBuf>,
    listen: Option<String>,
    data_dir: Option<PathBuf>,
) -> anyhow::Result<Config> {
    let mut settings = Settings::load(config.as_deref())?;
    if let Some(l) = listen {
        settings.listen = l;
    }
    if let Some(d) = data_dir {
        settings.data_dir = d;
    }
    Ok(settings.validate()?)
}

/// Runs one command of the `usher` binary.
///
/// # Errors
/// Whatever the command failed with, as a chain of causes for the binary to print.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve {
            config,
            listen,
            data_dir,
        } => {
            let config = load(config, listen, data_dir)?;
            telemetry::init_logging(&config.log);
            let app = Application::build(config).await?;
            if let Some(password) = app.bootstrap_admin().await? {
                // straight to the console, never through the logger: log pipelines keep what they get
                eprintln!(
                    "usher: first run: created the console user `admin` with the one-time password\n\n    {password}\n\n\
                     Log in at {}/admin/login; you will be asked to choose a new password. This is shown once.",
                    app.state().base_url
                );
            }
            tracing::info!(listen = %app.local_addr(), "usher serving");
            app.run_until(shutdown_signal()).await
        }
        Command::Demo {
            listen,
            data_dir,
            media_dir,
            public_url,
            json,
        } => {
            let log = crate::settings::LogSettings {
                format: crate::settings::LogFormat::Text,
                level: if json { "warn".into() } else { "info".into() },
                client_addresses: false,
            };
            telemetry::init_logging(&log);
            demo::run(DemoOptions {
                listen,
                data_dir,
                media_dir,
                public_url,
                json,
            })
            .await
        }
        Command::SignUrl(args) => sign_url::run(*args).await,
        Command::Package(args) => package::run(*args).await,
        Command::Backup(args) => {
            crate::backup::run_backup(args, |config, data_dir| load(config, None, data_dir)).await
        }
        Command::Restore(args) => crate::backup::run_restore(&args).await,
        Command::RedisSchema { config, upgrade } => {
            let config = load(config, None, None)?;
            let crate::settings::StoreSettings::Redis(r) = &config.store else {
                anyhow::bail!("the configuration names the embedded store, not Redis");
            };
            let store = crate::startup::connect_redis(r).await?;
            let (was, now) = store.upgrade_schema(upgrade).await?;
            if was == now {
                println!(
                    "schema {now} (this build reads schemas 1 to {} and writes the one stamped)",
                    usher_store::redis::REDIS_SCHEMA
                );
            } else {
                println!(
                    "schema {was} -> {now}: each ticket's seats move to the new layout at their next write"
                );
            }
            Ok(())
        }
        Command::Admin {
            command:
                AdminCommand::AddUser {
                    config,
                    data_dir,
                    name,
                    role,
                    password_stdin,
                },
        } => {
            let config = load(config, None, data_dir)?;
            let name = usher_core::admin::UserName::parse(&name)
                .map_err(|e| anyhow::anyhow!("--name: {e}"))?;
            let role = match role {
                RoleArg::Admin => Role::Admin,
                RoleArg::Support => Role::Support,
                RoleArg::Observer => Role::Observer,
            };
            let password = if password_stdin {
                let mut line = String::new();
                std::io::stdin().read_line(&mut line)?;
                Some(line.trim_end_matches(['\r', '\n']).to_owned())
            } else {
                None
            };
            let store = crate::startup::open_store(&config).await?;
            // one check, waited for as long as it takes: nothing else runs in this command
            let passwords = crate::service::auth::PasswordChecks::new(1, Duration::from_secs(3600));
            let made = match crate::service::admin::users::create_user(
                &*store,
                &passwords,
                name.clone(),
                role,
                password,
            )
            .await
            {
                Ok((_, made)) => made,
                Err(crate::service::Error::UserExists) => {
                    anyhow::bail!("a console user named `{name}` exists")
                }
                Err(e) => return Err(anyhow::anyhow!("{e}")),
            };
            audit::append(
                &*store,
                Actor::System("cli".into()),
                "user.create",
                &format!("user:{name}"),
                None,
                &format!("role={role}"),
            )
            .await?;
            store.close().await?;
            if let Some(password) = made {
                eprintln!(
                    "created console user {name} ({role}); the password is shown this once and must be changed at the first login:"
                );
                println!("{password}");
            } else {
                eprintln!("created console user {name} ({role})");
            }
            Ok(())
        }
        Command::ApiKey {
            command:
                ApiKeyCommand::Create {
                    config,
                    data_dir,
                    name,
                    scopes,
                },
        } => {
            let config = load(config, None, data_dir)?;
            let store = crate::startup::open_store(&config).await?;
            let hasher = usher_core::secret::SecretHasher::new(
                secrecy::ExposeSecret::expose_secret(&config.token_key).as_bytes(),
            );
            let scopes = scopes
                .into_iter()
                .map(|s| match s {
                    ScopeArg::Tickets => Scope::Tickets,
                    ScopeArg::Admin => Scope::Admin,
                })
                .collect();
            let (key, secret) =
                crate::service::admin::api_keys::issue_api_key(&*store, &hasher, &name, scopes)
                    .await?;
            eprintln!(
                "created API key {} ({name}); it is shown this once:",
                key.id
            );
            println!("{secret}");
            Ok(())
        }
    }
}
