//! `d365meta:cache/host`: the clock, the log, progress and cancellation.

use crate::bindings::host_api as api;
use crate::cancel::CancelToken;
use crate::runtime::State;
use std::sync::Arc;
use std::time::Instant;

/// Where progress events go (a terminal progress bar, plain lines, a test's recorder).
pub type ProgressSink = Arc<dyn Fn(&api::ProgressEvent) + Send + Sync>;

pub struct Services {
    pub cancel: CancelToken,
    pub progress: Option<ProgressSink>,
    /// The phase the component reported last, as a log span: requests and the component's log
    /// lines are recorded inside it.
    phase: Option<(String, tracing::Span, Instant)>,
}

impl Services {
    pub fn new(cancel: CancelToken, progress: Option<ProgressSink>) -> Services {
        Services { cancel, progress, phase: None }
    }

    /// The span of the current phase, or the caller's span between phases.
    pub fn phase_span(&self) -> tracing::Span {
        self.phase.as_ref().map_or_else(tracing::Span::current, |(_, span, _)| span.clone())
    }

    fn enter_phase(&mut self, name: &str) {
        if self.phase.as_ref().is_some_and(|(current, _, _)| current == name) {
            return;
        }
        self.leave_phase();
        let span = tracing::info_span!("phase", name = %name);
        span.in_scope(|| tracing::info!("started"));
        self.phase = Some((name.to_owned(), span, Instant::now()));
    }

    /// Ends the current phase's span (the export that reported it returned, or another began).
    pub fn leave_phase(&mut self) {
        if let Some((_, span, started)) = self.phase.take() {
            span.in_scope(|| tracing::info!(elapsed_ms = started.elapsed().as_millis() as u64, "finished"));
        }
    }
}

impl api::Host for State {
    fn log(&mut self, level: api::Level, message: String) -> wasmtime::Result<()> {
        let _phase = self.services.phase_span().entered();
        match level {
            api::Level::Error => tracing::error!(target: "d365meta::core", "{message}"),
            api::Level::Warn => tracing::warn!(target: "d365meta::core", "{message}"),
            api::Level::Info => tracing::info!(target: "d365meta::core", "{message}"),
            api::Level::Debug => tracing::debug!(target: "d365meta::core", "{message}"),
            api::Level::Trace => tracing::trace!(target: "d365meta::core", "{message}"),
        }
        self.returning_to_guest();
        Ok(())
    }

    fn progress(&mut self, event: api::ProgressEvent) -> wasmtime::Result<()> {
        self.services.enter_phase(&event.phase.to_string());
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

impl std::fmt::Display for crate::bindings::types::Phase {
    /// `detect`, `objects`, `data-entities`, `public-entities`, `enumerations`, `labels:en-US`, `pull`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use crate::bindings::types::Phase;
        match self {
            Phase::Detect => f.write_str("detect"),
            Phase::Objects => f.write_str("objects"),
            Phase::DataEntities => f.write_str("data-entities"),
            Phase::PublicEntities => f.write_str("public-entities"),
            Phase::Enumerations => f.write_str("enumerations"),
            Phase::Labels(language) => write!(f, "labels:{language}"),
            Phase::Pull => f.write_str("pull"),
        }
    }
}

/// `d365meta:cache/types` holds only types: nothing to implement.
impl crate::bindings::types::Host for State {}
