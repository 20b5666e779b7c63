//! Faults injected into an environment's (or the token endpoint's) next matching requests.

use std::time::Duration;

/// Applies to the next `times` requests whose path and query contain `path_contains` (as sent,
/// or percent-decoded), or, with a `probability` below 1, to that share of them (chosen by a
/// deterministic sequence, so a run is repeatable). Faults apply in the order they were injected.
#[derive(Clone, Debug, PartialEq)]
pub struct Fault {
    pub path_contains: String,
    pub times: usize,
    pub kind: FaultKind,
    /// The share of matching requests the fault applies to (1.0: every one, until `times` ran out).
    pub probability: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub enum FaultKind {
    /// Answer with this status; the body defaults to an OData error.
    Status { status: u16, retry_after: Option<String>, body: Option<String> },
    /// Wait, then answer normally.
    Delay(Duration),
    /// Drop the connection without answering.
    Close,
    /// Reset the connection (TCP RST) without answering: "Connection reset by peer".
    Reset,
    /// Answer normally, but stop after this many bytes of the body and drop the connection.
    Truncate(u64),
    /// Answer 200 with this body instead of the real one.
    Body(String),
    /// Answer with a redirect (301, 302, 303, 307, 308) to `location`.
    Redirect { status: u16, location: String },
}

impl Fault {
    pub fn new(path_contains: impl Into<String>, times: usize, kind: FaultKind) -> Fault {
        Fault { path_contains: path_contains.into(), times, kind, probability: 1.0 }
    }

    /// `429 Too Many Requests` with `Retry-After: <seconds>`, as service protection limits answer.
    pub fn throttle(path_contains: impl Into<String>, times: usize, retry_after_seconds: u64) -> Fault {
        Fault::new(path_contains, times, FaultKind::Status { status: 429, retry_after: Some(retry_after_seconds.to_string()), body: None })
    }

    pub fn status(path_contains: impl Into<String>, times: usize, status: u16) -> Fault {
        Fault::new(path_contains, times, FaultKind::Status { status, retry_after: None, body: None })
    }

    /// The same fault for a share (0..=1) of the matching requests, with no limit on how often.
    pub fn sometimes(path_contains: impl Into<String>, probability: f64, kind: FaultKind) -> Fault {
        Fault { probability, ..Fault::new(path_contains, usize::MAX, kind) }
    }
}

#[derive(Debug, Default)]
pub(crate) struct FaultQueue {
    faults: Vec<Fault>,
    /// Matching requests seen so far, which drives the deterministic choice of `sometimes`.
    matched: u64,
}

impl FaultQueue {
    pub(crate) fn push(&mut self, fault: Fault) {
        if fault.times > 0 && fault.probability > 0.0 {
            self.faults.push(fault);
        }
    }

    pub(crate) fn clear(&mut self) {
        self.faults.clear();
    }

    /// The fault for this request, if one matches; it is used up after `times` requests.
    pub(crate) fn take(&mut self, raw: &str, decoded: &str) -> Option<FaultKind> {
        let mut chosen = None;
        for (i, fault) in self.faults.iter().enumerate() {
            if !(raw.contains(&fault.path_contains) || decoded.contains(&fault.path_contains)) {
                continue;
            }
            if fault.probability < 1.0 {
                // Each fault draws on its own, so that two faults of 5 % fault 10 % of requests.
                self.matched += 1;
                let draw = crate::rng::hash(&["fault", &self.matched.to_string()]) % 1_000_000;
                if draw as f64 >= fault.probability * 1_000_000.0 {
                    continue;
                }
            }
            chosen = Some(i);
            break;
        }
        let i = chosen?;
        let fault = &mut self.faults[i];
        fault.times -= 1;
        let kind = fault.kind.clone();
        if fault.times == 0 {
            self.faults.remove(i);
        }
        Some(kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_apply_in_order_and_wear_out() {
        let mut q = FaultQueue::default();
        q.push(Fault::throttle("Labels", 2, 1));
        q.push(Fault::new("Labels", 1, FaultKind::Close));
        q.push(Fault::status("/Metadata/DataEntities", 1, 503));
        assert!(matches!(q.take("/Metadata/Labels(Id=%27x%27)", ""), Some(FaultKind::Status { status: 429, .. })));
        assert!(q.take("/Metadata/PublicEntities", "/Metadata/PublicEntities").is_none());
        assert!(matches!(q.take("/Metadata/Labels", ""), Some(FaultKind::Status { status: 429, .. })));
        assert_eq!(q.take("/Metadata/Labels", ""), Some(FaultKind::Close));
        assert_eq!(q.take("/Metadata/Labels", ""), None);
        assert!(matches!(q.take("/x", "/Metadata/DataEntities"), Some(FaultKind::Status { status: 503, .. })));
    }

    #[test]
    fn a_share_of_requests_is_faulted_repeatably() {
        let run = || {
            let mut q = FaultQueue::default();
            q.push(Fault::sometimes("Labels", 0.1, FaultKind::Reset));
            (0..10_000).map(|_| q.take("/Metadata/Labels", "").is_some()).collect::<Vec<_>>()
        };
        let hits = run();
        let share = hits.iter().filter(|h| **h).count();
        assert!((800..1200).contains(&share), "{share} of 10000");
        assert_eq!(hits, run(), "the same requests are faulted on every run");
    }
}
