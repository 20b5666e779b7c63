//! The `d365meta` command-line tool.
//!
//! Exit codes: 0 success; 1 the operation failed (network, service, storage); 2 invalid usage or
//! input; 3 not found; 4 busy (another sync holds what this one needs); 130 cancelled (Ctrl-C).

mod demo;
mod output;
mod progress;
mod read;
mod simulate;
mod sync;
mod version;

use crate::auth::{AuthMode, Authenticator, ClientCredentials};
use crate::cache::{Cache, CacheOptions, CoreError, ErrorKind};
use crate::cancel::CancelToken;
use crate::logging::{self, Level};
use crate::runtime::{Runtime, RuntimeConfig};
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Parser, Debug)]
#[command(name = "d365meta", version, about = "A metadata cache for Dynamics 365 Finance & Operations environments")]
pub struct Cli {
    /// The cache database (default: d365meta/cache.db in the user's cache directory).
    #[arg(long, global = true, value_name = "PATH")]
    cache: Option<PathBuf>,

    /// Print machine-readable JSON instead of text (the shapes are documented in the README).
    #[arg(long, global = true)]
    json: bool,

    /// Log more (-v: info, -vv: debug, -vvv: trace). Logs go to stderr.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,

    /// When to send an Azure AD token (client credentials from AZURE_TENANT_ID, AZURE_CLIENT_ID,
    /// AZURE_CLIENT_SECRET): auto = to every environment that is not on loopback.
    #[arg(long, global = true, value_enum, default_value_t = AuthArg::Auto)]
    auth: AuthArg,

    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum AuthArg {
    Auto,
    None,
    Always,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Detect and record the version (installed modules) an environment runs, or compare two.
    Version(version::Args),
    /// Bring an environment's metadata into the cache (once per version; shared between environments).
    Sync(sync::SyncArgs),
    /// Show recorded syncs, newest first.
    History(sync::HistoryArgs),
    /// Remove versions, snapshots, objects and labels nothing references any more.
    Gc(sync::GcArgs),
    /// Show a data entity or public entity (by name or entity set name), with its counterpart.
    Entity(read::EntityArgs),
    /// Show an enumeration and its members.
    Enum(read::EnumArgs),
    /// Show actions by name, optionally only those of one entity.
    Action(read::ActionArgs),
    /// Show a label's text (with fallback to en-US).
    Label(read::LabelArgs),
    /// Search names and label texts across entities, enumerations, actions and properties.
    Search(read::SearchArgs),
    /// Statistics per environment and overall: versions, objects, sharing, label coverage, size.
    Stats(read::StatsArgs),
    /// List known environments and what they have synced.
    Envs,
    /// Run the F&O simulator until interrupted, printing the base URL of each environment.
    Simulate(simulate::Args),
    /// Run the main job against simulated environments over real HTTP and show what it does.
    Demo(demo::Args),
}

/// Runs the tool and returns the process exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    logging::set_max_level(match cli.verbose {
        0 => Level::Warn,
        1 => Level::Info,
        2 => Level::Debug,
        _ => Level::Trace,
    });
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return 1;
        }
    };
    let cancel = CancelToken::new();
    runtime.spawn(watch_ctrl_c(cancel.clone()));
    let result = runtime.block_on(run(cli, cancel.clone()));
    match result {
        Ok(()) => 0,
        Err(e) => {
            let code = exit_code(&e, &cancel);
            if code == 130 {
                eprintln!("cancelled; the cache is as it was before the unfinished step");
            } else {
                eprintln!("error: {e:#}");
            }
            code
        }
    }
}

/// The first Ctrl-C cancels the work cleanly; a second one ends the process at once.
async fn watch_ctrl_c(cancel: CancelToken) {
    if tokio::signal::ctrl_c().await.is_ok() {
        eprintln!("\ninterrupted: stopping cleanly (press Ctrl-C again to quit at once)");
        cancel.cancel();
        if tokio::signal::ctrl_c().await.is_ok() {
            std::process::exit(130);
        }
    }
}

fn exit_code(e: &anyhow::Error, cancel: &CancelToken) -> i32 {
    match e.downcast_ref::<CoreError>().map(|c| c.kind) {
        Some(ErrorKind::Cancelled) => 130,
        Some(ErrorKind::InvalidInput) => 2,
        Some(ErrorKind::NotFound) => 3,
        Some(ErrorKind::Conflict) => 4,
        _ if cancel.is_cancelled() => 130,
        _ => 1,
    }
}

async fn run(cli: Cli, cancel: CancelToken) -> anyhow::Result<()> {
    let ctx = Context { cache_path: cli.cache.clone(), json: cli.json, auth: cli.auth, cancel };
    match cli.command {
        Command::Version(args) => version::run(&ctx, args).await,
        Command::Sync(args) => sync::sync(&ctx, args).await,
        Command::History(args) => sync::history(&ctx, args).await,
        Command::Gc(args) => sync::gc(&ctx, args).await,
        Command::Entity(args) => read::entity(&ctx, args).await,
        Command::Enum(args) => read::enumeration(&ctx, args).await,
        Command::Action(args) => read::action(&ctx, args).await,
        Command::Label(args) => read::label(&ctx, args).await,
        Command::Search(args) => read::search(&ctx, args).await,
        Command::Stats(args) => read::stats(&ctx, args).await,
        Command::Envs => read::envs(&ctx).await,
        Command::Simulate(args) => simulate::run(&ctx, args).await,
        Command::Demo(args) => demo::run(&ctx, args).await,
    }
}

/// What every command gets from the global options.
pub(crate) struct Context {
    cache_path: Option<PathBuf>,
    json: bool,
    auth: AuthArg,
    cancel: CancelToken,
}

impl Context {
    fn database(&self) -> PathBuf {
        self.cache_path.clone().unwrap_or_else(crate::paths::default_database)
    }

    fn runtime(&self) -> anyhow::Result<Runtime> {
        Runtime::new(RuntimeConfig::default())
    }

    fn options(&self, database: PathBuf) -> CacheOptions {
        let mode = match self.auth {
            AuthArg::Auto => AuthMode::Auto,
            AuthArg::None => AuthMode::None,
            AuthArg::Always => AuthMode::Always,
        };
        let mut options = CacheOptions::new(database);
        options.auth = Arc::new(Authenticator::new(mode, ClientCredentials::from_env()));
        options.cancel = self.cancel.clone();
        options
    }

    /// The cache at `--cache`, and the runtime it runs in, which must outlive it (its epoch thread
    /// enforces the component's CPU limit).
    async fn open(&self) -> anyhow::Result<(Runtime, Cache)> {
        let runtime = self.runtime()?;
        let cache = Cache::open(&runtime, self.options(self.database())).await?;
        Ok((runtime, cache))
    }
}
