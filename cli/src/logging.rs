//! Logging to stderr through `tracing`: the host's own events, the component's log lines (target
//! `d365meta::core`), and spans per command, sync phase and HTTP request. Nothing logged carries a
//! credential: tokens are added to requests after the request's span is recorded, and never
//! formatted.

use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// The level for `-v` counted `verbosity` times: warnings and errors by default, then info, debug,
/// trace.
pub fn level_for(verbosity: u8) -> LevelFilter {
    match verbosity {
        0 => LevelFilter::WARN,
        1 => LevelFilter::INFO,
        2 => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    }
}

/// Installs the stderr logger. Only d365meta's own events pass: the libraries underneath (HTTP,
/// TLS) log at a volume that helps nobody reading a sync.
pub fn init(verbosity: u8) {
    let level = level_for(verbosity);
    let filter = Targets::new().with_target("d365meta", level).with_default(LevelFilter::WARN.min(level));
    use std::io::IsTerminal as _;
    let format = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(verbosity >= 2)
        .without_time();
    let _ = tracing_subscriber::registry().with(filter).with(format).try_init();
}
