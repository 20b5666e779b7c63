//! `d365meta mcp`: the cache as a Model Context Protocol server, for AI assistants and editors.

use super::Context;
use d365meta_mcp::{Engine, EngineConfig, HttpConfig};
use std::net::SocketAddr;
use tokio_util::sync::CancellationToken;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Serve streamable HTTP at ADDR (e.g. 127.0.0.1:8765; the endpoint is /mcp) instead of stdio
    #[arg(long, value_name = "ADDR")]
    http: Option<SocketAddr>,

    /// Allow --http on an address that is not loopback; requires a bearer token in D365META_MCP_TOKEN
    #[arg(long, requires = "http")]
    allow_remote: bool,

    /// The most tool calls that read the cache at once (each holds one instance of the core)
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    readers: u16,
}

pub async fn run(ctx: &Context, args: Args) -> anyhow::Result<()> {
    let http = args.http.map(|listen| HttpConfig {
        listen,
        token: std::env::var("D365META_MCP_TOKEN").ok().filter(|t| !t.is_empty()),
        allow_remote: args.allow_remote,
    });
    if let Some(http) = &http {
        // Before anything is opened: a refused address leaves no trace.
        http.check()?;
    }
    let engine = Engine::start(EngineConfig {
        cache: ctx.sign_in_options(ctx.database())?,
        readers: args.readers.into(),
        profiles: ctx.mcp_profiles(),
    })
    .await?;
    let shutdown = CancellationToken::new();
    let cancel = ctx.cancel.clone();
    let on_ctrl_c = shutdown.clone();
    tokio::spawn(async move {
        cancel.cancelled().await;
        on_ctrl_c.cancel();
    });
    match http {
        None => d365meta_mcp::serve_stdio(engine, shutdown).await,
        Some(http) => {
            let json = ctx.json;
            d365meta_mcp::serve_http(engine, http, shutdown, move |addr| {
                let url = format!("http://{addr}/mcp");
                if json {
                    super::output::print_json(&serde_json::json!({ "url": url }));
                } else {
                    println!("{url}");
                }
                eprintln!("serving MCP over streamable HTTP at {url}; press Ctrl-C to stop");
            })
            .await
        }
    }
}
