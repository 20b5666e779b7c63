//! `d365meta simulate`: the F&O simulator as a standalone server.

use super::Context;
use d365meta_simulator::{Scale, Setup, Simulator, load_modules_file};
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Address to listen on; environments take consecutive ports from it (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:0", value_name = "ADDR")]
    listen: SocketAddr,

    /// How much metadata each environment has: tiny, small or full (a realistic environment).
    #[arg(long, default_value = "small", value_name = "SCALE")]
    scale: Scale,

    /// A module list for an environment (a GetInstalledModules response, the same wrapped in an
    /// action result, or a JSON array of module lines). Repeat for several environments.
    #[arg(long = "modules", value_name = "FILE")]
    modules: Vec<PathBuf>,

    /// How many environments to serve (at least one per --modules file).
    #[arg(long, default_value_t = 1, value_name = "N")]
    environments: usize,

    /// How many of them (the last ones) run a newer version with a few entities changed.
    #[arg(long, default_value_t = 0, value_name = "N")]
    newer: usize,

    /// Page collections: at most N items per response, with @odata.nextLink.
    #[arg(long, value_name = "N")]
    page_size: Option<usize>,

    /// Wait N milliseconds before sending each response, as over a wide-area link.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=60_000))]
    latency_ms: Option<u64>,

    /// Serve at most N requests at once per environment; answer the next ones 429 with
    /// `Retry-After: 1`, as a throttled service does.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=100_000))]
    capacity: Option<u64>,
}

pub async fn run(ctx: &Context, args: Args) -> anyhow::Result<()> {
    let modules = args.modules.iter().map(|path| load_modules_file(path)).collect::<anyhow::Result<Vec<_>>>()?;
    let setup = Setup { scale: args.scale, modules, environments: args.environments, newer: args.newer, page_size: args.page_size };
    let specs = setup.specs();
    let count = specs.len();
    let simulator = Simulator::start_at(args.listen, specs).await?;
    for i in 0..count {
        simulator.env(i).set_latency(args.latency_ms.map(std::time::Duration::from_millis));
        simulator.env(i).set_capacity(args.capacity.map(|n| n as usize));
    }
    let mut stdout = std::io::stdout().lock();
    for i in 0..count {
        writeln!(stdout, "{}", simulator.env(i).base_url())?;
    }
    stdout.flush()?;
    drop(stdout);
    eprintln!("serving {count} simulated environment(s) at scale {}; press Ctrl-C to stop", args.scale);
    ctx.cancel.cancelled().await;
    simulator.shutdown().await;
    Ok(())
}
