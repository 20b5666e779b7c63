//! The `d365meta` command-line tool.
//!
//! Exit codes: 0 success; 1 the operation failed (network, service, storage); 2 invalid usage or
//! input; 3 not found; 4 busy (another sync holds what this one needs); 130 cancelled (Ctrl-C).

mod demo;
mod diff;
mod import;
mod logging;
mod mcp;
mod output;
mod profiles;
mod progress;
mod publish;
mod read;
mod simulate;
mod sync;
mod version;

use clap::{Parser, Subcommand, ValueEnum};
use d365meta::auth::SignIn as AuthSignIn;
use d365meta::auth::{AuthMode, Authenticator};
use d365meta::cache::{Cache, CacheOptions, CoreError, ErrorKind};
use d365meta::cancel::CancelToken;
use d365meta::imports::store::Access;
use d365meta::policy::Origin;
use d365meta::runtime::{Runtime, RuntimeConfig};
use d365meta_config::SignIn;
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
    /// AZURE_CLIENT_SECRET, or the profile's sign-in): auto = to every environment that is not on
    /// loopback [default: auto, or none for a profile with sign_in = "none"]
    #[arg(long, global = true, value_enum)]
    auth: Option<AuthArg>,

    /// Certificate authorities to trust besides the platform's (PEM), for the service and sign-in:
    /// a TLS-inspecting proxy's. Verification is never turned off.
    #[arg(long, global = true, value_name = "PEM")]
    ca_file: Option<PathBuf>,

    /// The profile whose environment and settings a command uses (see `d365meta profiles`).
    #[arg(long, global = true, value_name = "NAME")]
    profile: Option<String>,

    /// The configuration file with the profiles [default: D365META_CONFIG, else d365meta/config.toml
    /// in the user's configuration directory].
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,

    /// The largest response accepted from an environment, in MiB (a real environment's largest
    /// answer is tens of MiB).
    #[arg(long, global = true, value_name = "MIB", default_value_t = d365meta::imports::http::DEFAULT_MAX_RESPONSE_MIB,
          value_parser = clap::value_parser!(u64).range(1..=4096))]
    max_response_mb: u64,

    /// The most requests in flight to one environment at once [default: the profile's
    /// `concurrency`, else 64]. The host starts at 16 (or this, if lower), takes more while answers
    /// come back healthy and halves on 429 or 503.
    #[arg(long, global = true, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    concurrency: Option<u32>,

    /// The team's shared store of published versions: `sync` pulls a version from it before asking
    /// the environment, `publish` writes to it [default: the profile's `shared`]. az://CONTAINER/PREFIX
    /// (account and credentials: AZURE_STORAGE_CONNECTION_STRING, or AZURE_STORAGE_ACCOUNT_NAME with
    /// AZURE_STORAGE_SAS_TOKEN, AZURE_STORAGE_ACCOUNT_KEY or the sign-in), s3://BUCKET/PREFIX (AWS_*
    /// variables), or file:///PATH.
    #[arg(long, global = true, value_name = "URL")]
    shared: Option<String>,

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
    /// Upload cached versions to the team's shared store (--shared), for other caches to pull.
    Publish(publish::Args),
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
    /// Bring the versions in a d365fo-client metadata cache (metadata_v2.db) into this cache, without asking any environment.
    Import(import::Args),
    /// Named environments and their settings: list, show, add, remove, default, import from d365fo-client.
    Profiles {
        #[command(subcommand)]
        action: profiles::Action,
    },
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
            Command::Publish(_) => "publish",
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
            Command::Profiles { .. } => "profiles",
            Command::Import(_) => "import",
        }
    }

    /// Where the command names environments, for profile names to be resolved before it runs;
    /// `None` for a command that has nothing to do with profiles.
    fn named(&mut self) -> Option<Vec<Named<'_>>> {
        Some(match self {
            Command::Version(a) => a.named(),
            Command::Sync(a) => a.named(),
            Command::History(a) => a.named(),
            Command::Forget(a) => a.named(),
            Command::Diff(a) => a.named(),
            Command::Entity(a) => a.named(),
            Command::Enum(a) => a.named(),
            Command::Action(a) => a.named(),
            Command::Label(a) => a.named(),
            Command::Search(a) => a.named(),
            Command::Stats(a) => a.named(),
            Command::Gc(_) | Command::Publish(_) | Command::Envs | Command::Mcp(_) | Command::Import(_) => Vec::new(),
            Command::Simulate(_) | Command::Demo(_) | Command::ExportComponent(_) | Command::Profiles { .. } => return None,
        })
    }
}

/// An environment as a command names it, resolved before the command runs.
pub(crate) enum Named<'a> {
    /// A base URL or a profile name. Left out: the selected profile's (`--profile`), and if
    /// `defaults`, else `D365FO_BASE_URL` or the default profile's; `required` fails without any.
    Environment { value: &'a mut Option<String>, required: bool, defaults: bool },
    /// A base URL or a profile name, given.
    Url(&'a mut String),
    /// A base URL, a profile name, or else a modules hash.
    Side(&'a mut String),
}

/// The variable naming an environment, as d365fo-client reads it.
const BASE_URL_VAR: &str = "D365FO_BASE_URL";

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

async fn run(mut cli: Cli, cancel: CancelToken) -> anyhow::Result<()> {
    let mut ctx = Context {
        cache_path: cli.cache.clone(),
        json: cli.json,
        auth: cli.auth,
        max_response_mb: cli.max_response_mb,
        concurrency: cli.concurrency,
        cancel,
        config_path: cli.config.clone().unwrap_or_else(d365meta_config::default_path),
        profile: None,
        config: None,
        ca_file: cli.ca_file.clone(),
        shared: cli.shared.clone(),
    };
    if let Some(url) = &ctx.shared {
        d365meta_config::check_shared_url(url).map_err(|e| invalid_input(format!("--shared {}", e.message)))?;
    }
    if let Some(named) = cli.command.named() {
        let config = d365meta_config::ConfigFile::load(&ctx.config_path).map_err(|e| invalid_input(e.message))?;
        ctx.profile = resolve(&config, cli.profile.as_deref(), named)?;
        ctx.config = Some(config);
    } else if cli.profile.is_some() {
        return Err(invalid_input(format!("--profile does not apply to `{}`", cli.command.name())));
    }
    match cli.command {
        Command::Version(args) => version::run(&ctx, args).await,
        Command::Sync(args) => sync::sync(&ctx, args).await,
        Command::History(args) => sync::history(&ctx, args).await,
        Command::Gc(args) => sync::gc(&ctx, args).await,
        Command::Forget(args) => sync::forget(&ctx, args).await,
        Command::Publish(args) => publish::run(&ctx, args).await,
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
        Command::Profiles { action } => profiles::run(&ctx, action).await,
        Command::Import(args) => import::run(&ctx, args).await,
    }
}

fn invalid_input(message: String) -> anyhow::Error {
    CoreError { kind: ErrorKind::InvalidInput, message }.into()
}

/// Two spellings of one base URL: a trailing slash and the case of the scheme and host aside.
fn same_url(a: &str, b: &str) -> bool {
    let key = |u: &str| {
        let u = u.trim_end_matches('/');
        match u.find("://").map(|i| i + 3).and_then(|start| u[start..].find('/').map(|end| start + end)) {
            Some(path) => format!("{}{}", u[..path].to_ascii_lowercase(), &u[path..]),
            None => u.to_ascii_lowercase(),
        }
    };
    key(a) == key(b)
}

/// Replaces profile names with their base URLs, fills in environments left out, and answers the
/// profile whose settings apply: `--profile`, else the one a command names (by name or by its
/// base URL), else, when the command names no environment, the default profile.
fn resolve(
    config: &d365meta_config::ConfigFile,
    selected: Option<&str>,
    named: Vec<Named<'_>>,
) -> anyhow::Result<Option<d365meta_config::Profile>> {
    use d365meta_config::Profile;
    let selected = selected.map(|n| config.require(n).cloned()).transpose().map_err(|e| invalid_input(e.message))?;
    let base_url_var = std::env::var(BASE_URL_VAR).ok().filter(|v| !v.trim().is_empty());
    // The profiles the command names, by name or by base URL, in order; and whether it named anything.
    let mut profiles: Vec<Profile> = Vec::new();
    let mut named_any = false;
    let mut name_or_url = |value: &mut String, hash_allowed: bool| -> anyhow::Result<()> {
        named_any = true;
        if let Some(p) = config.profiles().find(|p| p.base_url == *value || (value.contains("://") && same_url(&p.base_url, value))) {
            profiles.push(p.clone());
        } else if let Some(p) = config.profile(value) {
            profiles.push(p.clone());
            *value = p.base_url.clone();
        } else if !hash_allowed && !value.contains("://") {
            let known = config.require(value).unwrap_err().message;
            return Err(invalid_input(format!("{value:?} is neither a base URL nor a profile: {known}")));
        }
        Ok(())
    };
    for slot in named {
        match slot {
            Named::Url(value) => name_or_url(value, false)?,
            Named::Side(value) => name_or_url(value, true)?,
            Named::Environment { value: Some(value), .. } => name_or_url(value, false)?,
            Named::Environment { value, required, defaults } => {
                let default = if let Some(p) = &selected {
                    Some(p.base_url.clone())
                } else if defaults || required {
                    base_url_var.clone().or_else(|| config.default_profile().map(|p| p.base_url.clone()))
                } else {
                    None
                };
                if let Some(mut url) = default {
                    name_or_url(&mut url, false)?;
                    *value = Some(url);
                } else if required {
                    return Err(invalid_input(format!(
                        "name an environment: a base URL or a profile name, --profile, {BASE_URL_VAR}, or a default profile (`d365meta profiles default NAME`)"
                    )));
                }
            }
        }
    }
    let unnamed_default = if named_any { None } else { config.default_profile().cloned() };
    Ok(selected.or_else(|| profiles.into_iter().next()).or(unnamed_default))
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
    auth: Option<AuthArg>,
    max_response_mb: u64,
    concurrency: Option<u32>,
    cancel: CancelToken,
    config_path: PathBuf,
    /// The profile whose settings apply (see [`resolve`]).
    profile: Option<d365meta_config::Profile>,
    /// The configuration file, read once for a command that may name profiles.
    config: Option<d365meta_config::ConfigFile>,
    ca_file: Option<PathBuf>,
    /// `--shared`.
    shared: Option<String>,
}

impl Context {
    /// `--cache`, else the profile's cache, else the default.
    fn database(&self) -> PathBuf {
        self.cache_path
            .clone()
            .or_else(|| self.profile.as_ref().and_then(|p| p.cache.clone()))
            .unwrap_or_else(d365meta::paths::default_database)
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

    fn auth_mode(&self) -> AuthMode {
        match self.auth {
            Some(AuthArg::Auto) => AuthMode::Auto,
            Some(AuthArg::None) => AuthMode::None,
            Some(AuthArg::Always) => AuthMode::Always,
            None if self.profile.as_ref().is_some_and(|p| p.sign_in == SignIn::None) => AuthMode::None,
            None => AuthMode::Auto,
        }
    }

    /// The profiles the MCP server's tools may name, and the environment of the one selected with
    /// `--profile` (or the default), for tools that name none.
    fn mcp_profiles(&self) -> d365meta_mcp::Profiles {
        d365meta_mcp::Profiles {
            by_name: self.config.iter().flat_map(|c| c.profiles()).map(|p| (p.name.clone(), p.base_url.clone())).collect(),
            selected: self.profile.as_ref().map(|p| p.base_url.clone()),
        }
    }

    /// Options for a command that never reaches an environment: a client secret only from the
    /// environment variables, nothing asked of the profile.
    fn options(&self, database: PathBuf) -> CacheOptions {
        let mut options = CacheOptions::new(database);
        options.auth = Arc::new(Authenticator::new(self.auth_mode(), AuthSignIn::client_secret_from_env().unwrap_or(AuthSignIn::None)));
        options.cancel = self.cancel.clone();
        options.http.max_body_bytes = self.max_response_mb << 20;
        let profile = self.profile.as_ref();
        if let Some(n) = self.concurrency.or_else(|| profile.and_then(|p| p.concurrency)) {
            options.http.max_concurrency = n as usize;
        }
        options.http.ca_file = self.ca_file.clone().or_else(|| profile.and_then(|p| p.ca_file.clone()));
        if let Some(url) = self.shared.clone().or_else(|| profile.and_then(|p| p.shared.clone())) {
            let mut shared = d365meta::shared::SharedOptions::new(url);
            shared.azure = d365meta::shared::AzureStorageCredentials::from_env();
            options.shared = Some(shared);
        }
        options
    }

    /// Options for a command that reaches an environment: a client secret from the environment
    /// variables (which win), else the profile's sign-in, else the default chain.
    fn sign_in_options(&self, database: PathBuf) -> anyhow::Result<CacheOptions> {
        let mut options = self.options(database);
        if AuthSignIn::client_secret_from_env().is_some() || self.auth_mode() == AuthMode::None {
            return Ok(options);
        }
        let sign_in = match self.profile.as_ref().map(|p| (p, &p.sign_in)) {
            None | Some((_, SignIn::Default)) => AuthSignIn::Default,
            Some((_, SignIn::None)) => AuthSignIn::None,
            Some((p, SignIn::ClientSecret { tenant_id, client_id, secret })) => {
                let named = |e: d365meta_config::Error| invalid_input(format!("profile {}: {}", p.name, e.message));
                AuthSignIn::ClientSecret {
                    tenant_id: tenant_id.resolve("the tenant id").map_err(named)?,
                    client_id: client_id.resolve("the client id").map_err(named)?,
                    secret: secret.resolve(&p.name).map_err(|e| invalid_input(e.message))?,
                }
            }
            Some((_, SignIn::AzureCli { tenant_id })) => AuthSignIn::AzureCli { tenant_id: tenant_id.clone() },
            Some((_, SignIn::ManagedIdentity { client_id })) => AuthSignIn::ManagedIdentity { client_id: client_id.clone() },
            Some((_, SignIn::WorkloadIdentity)) => AuthSignIn::WorkloadIdentity,
        };
        options.auth = Arc::new(Authenticator::new(self.auth_mode(), sign_in));
        Ok(options)
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
