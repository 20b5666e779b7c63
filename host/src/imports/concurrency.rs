//! How many requests to one environment are in flight at once, adapted to how it answers.
//!
//! Over a wide-area link a label sync is bound by round trips, so more requests in flight make it
//! faster, up to what the service accepts; F&O says it has had enough with 429 or 503 (and a
//! `Retry-After`, honoured by the retry that follows). The limit grows by one each time as many
//! requests as the limit have come back healthy (about one per round trip), and halves on a
//! throttling answer to a request sent since the last cut: the refusals of requests sent before it
//! (every request in flight meeting the same throttle) were answered by that cut already. It never
//! passes the configured ceiling.
//!
//! Written here because the limit is one number beside a semaphore: the crates that adapt
//! concurrency are built for tower services, not for a batch of reqwest calls.

use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// What an attempt's answer says about the load the service accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Answered, not throttled.
    Healthy,
    /// 429 or 503: too many requests.
    Throttled,
    /// Says nothing about load (the network failed, the request was cancelled).
    Neutral,
}

pub struct Limiter {
    permits: Arc<Semaphore>,
    state: Mutex<State>,
}

struct State {
    limit: usize,
    ceiling: usize,
    /// Healthy answers since the limit last changed.
    healthy: usize,
    /// Permits to withdraw as they come back, after a cut.
    debt: usize,
    last_cut: Option<Instant>,
    peak: usize,
    cuts: u64,
}

impl State {
    fn levels(&self) -> Levels {
        Levels { limit: self.limit, peak: self.peak, cuts: self.cuts }
    }
}

/// The limit now, the highest it reached and how many times it was cut.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Levels {
    pub limit: usize,
    pub peak: usize,
    pub cuts: u64,
}

impl Limiter {
    /// Starts at `initial` requests in flight and never passes `ceiling` (both at least one).
    pub fn new(initial: usize, ceiling: usize) -> Limiter {
        let ceiling = ceiling.max(1);
        let limit = initial.clamp(1, ceiling);
        Limiter {
            permits: Arc::new(Semaphore::new(limit)),
            state: Mutex::new(State { limit, ceiling, healthy: 0, debt: 0, last_cut: None, peak: limit, cuts: 0 }),
        }
    }

    /// Waits for a place among the requests in flight.
    pub async fn acquire(&self) -> OwnedSemaphorePermit {
        // The semaphore is never closed.
        self.permits.clone().acquire_owned().await.expect("the concurrency semaphore is never closed")
    }

    /// Gives the place back, with what the answer to the request sent at `sent` said; returns the
    /// levels after it.
    pub fn release(&self, permit: OwnedSemaphorePermit, outcome: Outcome, sent: Instant) -> Levels {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match outcome {
            // Only a limit in full use is tested by a healthy answer: the tail of a batch, with
            // fewer requests than places, says nothing about more.
            Outcome::Healthy if self.permits.available_permits() == 0 => {
                s.healthy += 1;
                if s.healthy >= s.limit && s.limit < s.ceiling {
                    s.limit += 1;
                    s.peak = s.peak.max(s.limit);
                    s.healthy = 0;
                    if s.debt > 0 {
                        s.debt -= 1;
                    } else {
                        self.permits.add_permits(1);
                    }
                }
            }
            Outcome::Throttled => {
                if s.last_cut.is_none_or(|at| sent > at) {
                    let now = Instant::now();
                    let cut = (s.limit / 2).max(1);
                    s.debt += s.limit - cut;
                    s.limit = cut;
                    s.healthy = 0;
                    s.last_cut = Some(now);
                    s.cuts += 1;
                    tracing::info!(limit = cut, "the service is throttling; requests in flight cut to {cut}");
                }
            }
            Outcome::Healthy | Outcome::Neutral => {}
        }
        if s.debt > 0 {
            s.debt -= 1;
            permit.forget();
        }
        s.levels()
    }

    pub fn levels(&self) -> Levels {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).levels()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn grows_by_one_per_limit_of_healthy_answers_up_to_the_ceiling() {
        let limiter = Limiter::new(2, 4);
        // One request at a time leaves a place unused: nothing is learnt.
        for _ in 0..10 {
            limiter.release(limiter.acquire().await, Outcome::Healthy, Instant::now());
        }
        assert_eq!(limiter.levels().limit, 2);
        for permit in futures_permits(&limiter, 2).await {
            limiter.release(permit, Outcome::Healthy, Instant::now());
        }
        assert_eq!(limiter.levels().limit, 2, "one of two came back while the other was still out");
        for _ in 0..100 {
            for permit in futures_permits(&limiter, limiter.levels().limit).await {
                limiter.release(permit, Outcome::Healthy, Instant::now());
            }
        }
        assert_eq!(limiter.levels(), Levels { limit: 4, peak: 4, cuts: 0 });
        assert_eq!(limiter.permits.available_permits(), 4);
    }

    #[tokio::test]
    async fn a_burst_of_refusals_halves_the_limit_once_and_a_refusal_after_it_again() {
        let limiter = Limiter::new(8, 64);
        let sent = Instant::now();
        let held: Vec<_> = futures_permits(&limiter, 8).await;
        assert_eq!(limiter.permits.available_permits(), 0);
        for permit in held {
            limiter.release(permit, Outcome::Throttled, sent);
        }
        assert_eq!(limiter.levels(), Levels { limit: 4, peak: 8, cuts: 1 });
        // Four places withdrawn as they came back; four left.
        assert_eq!(limiter.permits.available_permits(), 4);
        limiter.release(limiter.acquire().await, Outcome::Neutral, Instant::now());
        assert_eq!(limiter.levels().limit, 4);
        // Sent after the cut and still refused: the new limit is too high as well.
        limiter.release(limiter.acquire().await, Outcome::Throttled, Instant::now());
        assert_eq!(limiter.levels(), Levels { limit: 2, peak: 8, cuts: 2 });
        assert_eq!(limiter.permits.available_permits(), 3, "one withdrawn now, one when the next comes back");
    }

    async fn futures_permits(limiter: &Limiter, n: usize) -> Vec<OwnedSemaphorePermit> {
        let mut out = Vec::new();
        for _ in 0..n {
            out.push(limiter.acquire().await);
        }
        out
    }
}
