//! Showing the component's progress events: bars on a terminal, plain lines otherwise.

use d365meta::bindings::host_api::ProgressEvent;
use d365meta::imports::host::ProgressSink;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct Progress {
    inner: Arc<Mutex<Inner>>,
}

struct Inner {
    bars: Option<MultiProgress>,
    phases: HashMap<String, Phase>,
}

struct Phase {
    bar: Option<ProgressBar>,
    last_line: Instant,
}

impl Progress {
    /// Bars when stderr is a terminal, lines every few seconds otherwise.
    pub fn new() -> Progress {
        let bars = std::io::stderr().is_terminal().then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        Progress { inner: Arc::new(Mutex::new(Inner { bars, phases: HashMap::new() })) }
    }

    pub fn sink(&self) -> ProgressSink {
        let inner = self.inner.clone();
        Arc::new(move |event: &ProgressEvent| inner.lock().unwrap_or_else(|e| e.into_inner()).show(event))
    }

    /// Leaves finished bars in place and stops drawing.
    pub fn finish(&self) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        for phase in inner.phases.values() {
            if let Some(bar) = &phase.bar {
                bar.finish();
            }
        }
        inner.phases.clear();
    }
}

impl Inner {
    fn show(&mut self, event: &ProgressEvent) {
        let done = event.total.is_some_and(|t| event.done >= t);
        match &self.bars {
            Some(bars) => {
                let bars = bars.clone();
                let name = event.phase.to_string();
                let phase = self.phases.entry(name.clone()).or_insert_with(|| {
                    let bar = bars.add(match event.total {
                        Some(total) => ProgressBar::new(total).with_style(
                            ProgressStyle::with_template("{prefix:>18} [{bar:30}] {pos}/{len} {msg}")
                                .unwrap_or_else(|_| ProgressStyle::default_bar())
                                .progress_chars("=> "),
                        ),
                        None => ProgressBar::new_spinner().with_style(
                            ProgressStyle::with_template("{prefix:>18} {spinner} {pos} items {msg}")
                                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                        ),
                    });
                    bar.set_prefix(name.clone());
                    bar.enable_steady_tick(Duration::from_millis(120));
                    Phase { bar: Some(bar), last_line: Instant::now() }
                });
                if let Some(bar) = &phase.bar {
                    if let Some(total) = event.total {
                        bar.set_length(total);
                    }
                    bar.set_position(event.done);
                    if let Some(bytes) = event.bytes {
                        bar.set_message(human_bytes(bytes));
                    }
                    if done {
                        bar.finish();
                    }
                }
            }
            None => {
                let name = event.phase.to_string();
                let first = !self.phases.contains_key(&name);
                let phase = self.phases.entry(name).or_insert_with(|| Phase { bar: None, last_line: Instant::now() });
                if first || done || phase.last_line.elapsed() >= Duration::from_secs(5) {
                    phase.last_line = Instant::now();
                    let of = event.total.map(|t| format!("/{t}")).unwrap_or_default();
                    let bytes = event.bytes.map(|b| format!(" ({})", human_bytes(b))).unwrap_or_default();
                    eprintln!("{}: {}{of}{bytes}", event.phase, event.done);
                }
            }
        }
    }
}

pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KB", "MB", "GB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 { format!("{bytes} B") } else { format!("{value:.1} {}", UNITS[unit]) }
}
