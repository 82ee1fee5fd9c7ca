//! The carrier circuit breaker: when the carrier keeps failing (5xx, timeouts, refused
//! credentials), stop dialling that account, probe with one dial after a pause, and resume
//! when a probe succeeds. Dials refused this way are given back untouched (no attempt is
//! burnt by an outage). One breaker per instance: each instance judges the carrier by its
//! own requests.

use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gate {
    /// Dial freely.
    Closed,
    /// One dial may go, as a probe.
    Probe,
    /// No dials.
    Open,
}

#[derive(Debug)]
struct State {
    failures: u32,
    open_until: Option<Instant>,
    backoff: Duration,
    probing: bool,
    last_error: Option<String>,
    opened_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Debug)]
pub struct Circuit {
    threshold: u32,
    base: Duration,
    max: Duration,
    state: Mutex<State>,
}

/// What `/readyz` shows.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CircuitView {
    pub open: bool,
    pub consecutive_failures: u32,
    pub opened_at: Option<chrono::DateTime<chrono::Utc>>,
    pub last_error: Option<String>,
}

impl Circuit {
    pub fn new(threshold: u32, base: Duration, max: Duration) -> Self {
        Self {
            threshold: threshold.max(1),
            base,
            max,
            state: Mutex::new(State {
                failures: 0,
                open_until: None,
                backoff: base,
                probing: false,
                last_error: None,
                opened_at: None,
            }),
        }
    }

    /// May a dial go now? `Probe` hands out one probe at a time.
    pub fn gate(&self) -> Gate {
        let mut s = self.state.lock().expect("circuit lock");
        match s.open_until {
            None => Gate::Closed,
            Some(until) if Instant::now() < until || s.probing => Gate::Open,
            Some(_) => {
                s.probing = true;
                Gate::Probe
            }
        }
    }

    pub fn success(&self) {
        let mut s = self.state.lock().expect("circuit lock");
        if s.open_until.is_some() {
            tracing::info!("carrier answers again: circuit closed, dialling resumes");
        }
        s.failures = 0;
        s.open_until = None;
        s.backoff = self.base;
        s.probing = false;
        s.opened_at = None;
        metrics::gauge!("dialer_carrier_circuit_open").set(0.0);
    }

    pub fn failure(&self, error: &str) {
        let mut s = self.state.lock().expect("circuit lock");
        s.failures += 1;
        s.last_error = Some(error.to_string());
        metrics::counter!("dialer_carrier_failures_total").increment(1);
        let reopen = s.probing || (s.open_until.is_none() && s.failures >= self.threshold);
        if reopen {
            if s.probing {
                s.backoff = (s.backoff * 2).min(self.max);
            }
            s.probing = false;
            s.open_until = Some(Instant::now() + s.backoff);
            s.opened_at.get_or_insert_with(chrono::Utc::now);
            metrics::gauge!("dialer_carrier_circuit_open").set(1.0);
            tracing::warn!(failures = s.failures, pause = ?s.backoff, error, "carrier keeps failing: circuit open, dialling paused");
        }
    }

    /// A probe that ended without telling anything (e.g. no lead to dial).
    pub fn probe_unused(&self) {
        self.state.lock().expect("circuit lock").probing = false;
    }

    pub fn view(&self) -> CircuitView {
        let s = self.state.lock().expect("circuit lock");
        CircuitView {
            open: s.open_until.is_some(),
            consecutive_failures: s.failures,
            opened_at: s.opened_at,
            last_error: s.last_error.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_repeated_failures_probes_once_and_closes_on_success() {
        let c = Circuit::new(3, Duration::from_millis(30), Duration::from_secs(1));
        c.failure("503");
        c.failure("503");
        assert_eq!(c.gate(), Gate::Closed, "two failures are not an outage");
        c.failure("timeout");
        assert_eq!(c.gate(), Gate::Open);
        assert!(c.view().open);
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(c.gate(), Gate::Probe);
        assert_eq!(c.gate(), Gate::Open, "one probe at a time");
        c.failure("503");
        assert_eq!(c.gate(), Gate::Open, "a failed probe reopens, for longer");
        std::thread::sleep(Duration::from_millis(70));
        assert_eq!(c.gate(), Gate::Probe);
        c.success();
        assert_eq!(c.gate(), Gate::Closed);
        assert!(!c.view().open);
    }

    #[test]
    fn a_success_between_failures_resets_the_count() {
        let c = Circuit::new(2, Duration::from_secs(5), Duration::from_secs(60));
        c.failure("503");
        c.success();
        c.failure("503");
        assert_eq!(c.gate(), Gate::Closed);
    }
}
