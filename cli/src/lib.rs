//! The `d365meta` command-line tool.
//!
//! Exit codes: 0 success; 1 the operation failed (network, service, storage); 2 invalid usage or
//! input; 3 not found; 4 busy (another sync holds what this one needs); 130 cancelled (Ctrl-C).

mod demo;
mod diff;
mod logging;
mod mcp;
mod output;
mod progress;
mod read;
mod simulate;
mod sync;
mod version;

use clap::{Parser, Subcommand, ValueEnum};
use d365meta::auth::{AuthMode, Authenticator, ClientCredentials};
use d365meta::cache::{Cache, CacheOptions, CoreError, ErrorKind};
use d365meta::cancel::CancelToken;
use d365meta::imports::store::Access;
use d365meta::policy::Origin;
use d365meta::runtime::{Runtime, RuntimeConfig};
use std::path::PathBuf;
use std::sync::Arc;
use tracing::Instrument as _;

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

    /// The largest response accepted from an environment, in MiB (a real environment's largest
    /// answer is tens of MiB).
    #[arg(long, global = true, value_name = "MIB", default_value_t = d365meta::imports::http::DEFAULT_MAX_RESPONSE_MIB,
          value_parser = clap::value_parser!(u64).range(1..=4096))]
    max_response_mb: u64,

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
    /// Remove an environment and its recorded syncs from the cache (gc then frees what only it used).
    Forget(sync::ForgetArgs),
    /// What changed in the metadata between two environments or cached versions (from the cache alone).
    Diff(diff::Args),
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
    /// Serve the cache to AI assistants and editors over the Model Context Protocol (stdio, or streamable HTTP with --http).
    Mcp(mcp::Args),
    /// Write the core component (the WebAssembly this tool runs) to a file, for other hosts.
    ExportComponent(ExportArgs),
}

impl Command {
    /// The command's name as typed, for the log.
    fn name(&self) -> &'static str {
        match self {
            Command::Version(_) => "version",
            Command::Sync(_) => "sync",
            Command::History(_) => "history",
            Command::Gc(_) => "gc",
            Command::Forget(_) => "forget",
            Command::Diff(_) => "diff",
            Command::Entity(_) => "entity",
            Command::Enum(_) => "enum",
            Command::Action(_) => "action",
            Command::Label(_) => "label",
            Command::Search(_) => "search",
            Command::Stats(_) => "stats",
            Command::Envs => "envs",
            Command::Simulate(_) => "simulate",
            Command::Demo(_) => "demo",
            Command::Mcp(_) => "mcp",
            Command::ExportComponent(_) => "export-component",
        }
    }
}

/// Runs the tool and returns the process exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    logging::init(cli.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return 1;
        }
    };
    let cancel = CancelToken::new();
    runtime.spawn(watch_ctrl_c(cancel.clone()));
    let span = tracing::info_span!("command", name = cli.command.name());
    let json = cli.json;
    let result = runtime.block_on(run(cli, cancel.clone()).instrument(span));
    // Work left behind (a component still compiling when Ctrl-C came) must not hold up the exit.
    runtime.shutdown_background();
    match result {
        Ok(()) => 0,
        Err(e) => {
            let code = exit_code(&e, &cancel);
            if code == 130 {
                eprintln!("cancelled; the cache is as it was before the unfinished step");
            } else {
                eprintln!("error: {e:#}");
            }
            if json && !output::printed() {
                // Machine readers get the error too: the component's `error` record (kind null for
                // a failure outside the component, such as a file that cannot be opened).
                let kind = e.downcast_ref::<CoreError>().map(|c| d365meta::bindings::name_of(&c.kind));
                output::print_json(&serde_json::json!({"error": {"kind": kind, "message": format!("{e:#}")}}));
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
    let ctx = Context { cache_path: cli.cache.clone(), json: cli.json, auth: cli.auth, max_response_mb: cli.max_response_mb, cancel };
    match cli.command {
        Command::Version(args) => version::run(&ctx, args).await,
        Command::Sync(args) => sync::sync(&ctx, args).await,
        Command::History(args) => sync::history(&ctx, args).await,
        Command::Gc(args) => sync::gc(&ctx, args).await,
        Command::Forget(args) => sync::forget(&ctx, args).await,
        Command::Diff(args) => diff::run(&ctx, args).await,
        Command::Entity(args) => read::entity(&ctx, args).await,
        Command::Enum(args) => read::enumeration(&ctx, args).await,
        Command::Action(args) => read::action(&ctx, args).await,
        Command::Label(args) => read::label(&ctx, args).await,
        Command::Search(args) => read::search(&ctx, args).await,
        Command::Stats(args) => read::stats(&ctx, args).await,
        Command::Envs => read::envs(&ctx).await,
        Command::Simulate(args) => simulate::run(&ctx, args).await,
        Command::Demo(args) => demo::run(&ctx, args).await,
        Command::Mcp(args) => mcp::run(&ctx, args).await,
        Command::ExportComponent(args) => export_component(&ctx, args),
    }
}

#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    /// Where to write the component (a `.wasm` file).
    #[arg(value_name = "FILE")]
    output: PathBuf,
}

/// Writes the component this host embeds, byte for byte: what another host (Node with jco, an
/// editor's plugin runtime) runs to give the same answers.
fn export_component(ctx: &Context, args: ExportArgs) -> anyhow::Result<()> {
    use anyhow::Context as _;
    if let Some(dir) = args.output.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let wasm = d365meta::runtime::CORE_WASM;
    std::fs::write(&args.output, wasm).with_context(|| format!("writing {}", args.output.display()))?;
    if ctx.json {
        output::print_json(&serde_json::json!({"path": args.output, "bytes": wasm.len()}));
    } else {
        println!("wrote the core component ({} bytes) to {}", wasm.len(), args.output.display());
    }
    Ok(())
}

/// What every command gets from the global options.
pub(crate) struct Context {
    cache_path: Option<PathBuf>,
    json: bool,
    auth: AuthArg,
    max_response_mb: u64,
    cancel: CancelToken,
}

impl Context {
    fn database(&self) -> PathBuf {
        self.cache_path.clone().unwrap_or_else(d365meta::paths::default_database)
    }

    /// The runtime, with the component compiled or loaded. Compiling can take seconds on a slow
    /// machine the first time; Ctrl-C meanwhile ends the command at once (nothing is written yet).
    async fn runtime(&self) -> anyhow::Result<Runtime> {
        let starting = tokio::task::spawn_blocking(|| Runtime::new(RuntimeConfig::default()));
        tokio::select! {
            runtime = starting => runtime?,
            () = self.cancel.cancelled() => Err(CoreError { kind: ErrorKind::Cancelled, message: "cancelled while starting".to_owned() }.into()),
        }
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
        options.http.max_body_bytes = self.max_response_mb << 20;
        options
    }

    /// The cache at `--cache` for a command that writes, and the runtime it runs in, which must
    /// outlive it (its epoch thread enforces the component's CPU limit).
    async fn open(&self) -> anyhow::Result<(Runtime, Cache)> {
        let runtime = self.runtime().await?;
        let cache = Cache::open(&runtime, self.options(self.database())).await?;
        Ok((runtime, cache))
    }

    /// The cache for a command that only reads: opened read-only, so that it is never changed (nor
    /// created) and a file the user may only read can be read.
    async fn open_read(&self) -> anyhow::Result<(Runtime, Cache)> {
        let runtime = self.runtime().await?;
        let mut options = self.options(self.database());
        options.access = Access::ReadOnly;
        let cache = Cache::open(&runtime, options).await?;
        Ok((runtime, cache))
    }
}

/// The longest base URL accepted; real ones are under a hundred characters.
const MAX_BASE_URL: usize = 2048;

/// Checks a base URL the user typed before anything is opened or created, so that a mistyped URL
/// leaves no trace; the message shows a long URL cut short.
pub(crate) fn check_base_url(url: &str) -> Result<(), CoreError> {
    let shown = d365meta::imports::http::shorten(url);
    let invalid = |why: String| CoreError { kind: ErrorKind::InvalidInput, message: format!("base URL {shown:?}: {why}") };
    if url.len() > MAX_BASE_URL {
        return Err(invalid(format!("{} bytes long; a base URL has at most {MAX_BASE_URL}", url.len())));
    }
    Origin::parse(url)
        .map_err(|_| invalid("expected an http:// or https:// URL with a host, like https://contoso.operations.dynamics.com".to_owned()))?;
    Ok(())
}
