//! Faults injected into an environment's (or the token endpoint's) next matching requests.

use std::time::Duration;

/// Applies to the next `times` requests whose path and query contain `path_contains` (as sent,
/// or percent-decoded). Faults apply in the order they were injected.
#[derive(Clone, Debug, PartialEq)]
pub struct Fault {
    pub path_contains: String,
    pub times: usize,
    pub kind: FaultKind,
}

#[derive(Clone, Debug, PartialEq)]
pub enum FaultKind {
    /// Answer with this status; the body defaults to an OData error.
    Status { status: u16, retry_after: Option<String>, body: Option<String> },
    /// Wait, then answer normally.
    Delay(Duration),
    /// Drop the connection without answering.
    Close,
    /// Answer 200 with this body instead of the real one.
    Body(String),
}

impl Fault {
    pub fn new(path_contains: impl Into<String>, times: usize, kind: FaultKind) -> Fault {
        Fault { path_contains: path_contains.into(), times, kind }
    }

    /// `429 Too Many Requests` with `Retry-After: <seconds>`, as service protection limits answer.
    pub fn throttle(path_contains: impl Into<String>, times: usize, retry_after_seconds: u64) -> Fault {
        Fault::new(path_contains, times, FaultKind::Status { status: 429, retry_after: Some(retry_after_seconds.to_string()), body: None })
    }

    pub fn status(path_contains: impl Into<String>, times: usize, status: u16) -> Fault {
        Fault::new(path_contains, times, FaultKind::Status { status, retry_after: None, body: None })
    }
}

#[derive(Debug, Default)]
pub(crate) struct FaultQueue(Vec<Fault>);

impl FaultQueue {
    pub(crate) fn push(&mut self, fault: Fault) {
        if fault.times > 0 {
            self.0.push(fault);
        }
    }

    pub(crate) fn clear(&mut self) {
        self.0.clear();
    }

    /// The fault for this request, if one matches; it is used up after `times` requests.
    pub(crate) fn take(&mut self, raw: &str, decoded: &str) -> Option<FaultKind> {
        let i = self.0.iter().position(|f| raw.contains(&f.path_contains) || decoded.contains(&f.path_contains))?;
        let fault = &mut self.0[i];
        fault.times -= 1;
        let kind = fault.kind.clone();
        if fault.times == 0 {
            self.0.remove(i);
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
}
