//! `d365meta:cache/host`: the clock, the log, progress and cancellation.

use crate::bindings::host_api as api;
use crate::cancel::CancelToken;
use crate::logging::{self, Level};
use crate::runtime::State;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Where progress events go (a terminal progress bar, plain lines, a test's recorder).
pub type ProgressSink = Arc<dyn Fn(&api::ProgressEvent) + Send + Sync>;

pub struct Services {
    pub cancel: CancelToken,
    pub progress: Option<ProgressSink>,
}

impl api::Host for State {
    fn now_ms(&mut self) -> wasmtime::Result<i64> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
        self.returning_to_guest();
        Ok(now)
    }

    fn log(&mut self, level: api::Level, message: String) -> wasmtime::Result<()> {
        let level = match level {
            api::Level::Error => Level::Error,
            api::Level::Warn => Level::Warn,
            api::Level::Info => Level::Info,
            api::Level::Debug => Level::Debug,
            api::Level::Trace => Level::Trace,
        };
        logging::log(level, "core", &message);
        self.returning_to_guest();
        Ok(())
    }

    fn progress(&mut self, event: api::ProgressEvent) -> wasmtime::Result<()> {
        if let Some(sink) = &self.services.progress {
            sink(&event);
        }
        self.returning_to_guest();
        Ok(())
    }

    fn cancelled(&mut self) -> wasmtime::Result<bool> {
        let cancelled = self.services.cancel.is_cancelled();
        self.returning_to_guest();
        Ok(cancelled)
    }
}
