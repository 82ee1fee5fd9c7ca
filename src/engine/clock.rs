//! The engine's notion of "now": the system clock plus an offset that tests (and the demo)
//! may move, so calling windows can be exercised at any hour without waiting for it.
//! Every scheduling decision reads this clock, never `Utc::now()` or SQL `now()`.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, TimeDelta, Utc};

#[derive(Debug, Clone)]
pub struct Clock {
    offset_ms: Arc<AtomicI64>,
    /// Simulated seconds per real second (1 except in the demo, which plays a day in minutes).
    rate: f64,
    anchor: DateTime<Utc>,
}

impl Default for Clock {
    fn default() -> Self {
        Self {
            offset_ms: Arc::default(),
            rate: 1.0,
            anchor: Utc::now(),
        }
    }
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self::default()
    }

    /// A clock that reads `start` now and runs `rate` times faster than real time.
    pub fn accelerated(start: DateTime<Utc>, rate: f64) -> Self {
        let c = Self {
            offset_ms: Arc::default(),
            rate: rate.max(0.001),
            anchor: Utc::now(),
        };
        c.set(start);
        c
    }

    pub fn rate(&self) -> f64 {
        self.rate
    }

    fn scaled(&self, real: DateTime<Utc>) -> DateTime<Utc> {
        if self.rate == 1.0 {
            return real;
        }
        let elapsed = (real - self.anchor).num_microseconds().unwrap_or(0) as f64 * self.rate;
        self.anchor + TimeDelta::microseconds(elapsed as i64)
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.scaled(Utc::now()) + TimeDelta::milliseconds(self.offset_ms.load(Ordering::Relaxed))
    }

    /// Real time for a span of this clock's time.
    pub fn real(&self, span: TimeDelta) -> std::time::Duration {
        let secs = span.num_milliseconds().max(0) as f64 / 1000.0 / self.rate;
        std::time::Duration::from_secs_f64(secs)
    }

    /// Moves the clock so that it reads `at` now (and keeps running from there).
    pub fn set(&self, at: DateTime<Utc>) {
        let offset = (at - self.scaled(Utc::now())).num_milliseconds();
        self.offset_ms.store(offset, Ordering::Relaxed);
    }

    /// Moves the clock forward (or back, for a negative delta).
    pub fn advance(&self, by: TimeDelta) {
        self.offset_ms
            .fetch_add(by.num_milliseconds(), Ordering::Relaxed);
    }

    pub fn is_moved(&self) -> bool {
        self.offset_ms.load(Ordering::Relaxed) != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_moved_clock_keeps_running_from_where_it_was_set() {
        let c = Clock::system();
        let target = DateTime::parse_from_rfc3339("2026-03-08T06:59:59Z")
            .unwrap()
            .with_timezone(&Utc);
        c.set(target);
        let read = c.now();
        assert!((read - target).num_milliseconds().abs() < 50, "{read}");
        c.advance(TimeDelta::hours(1));
        assert!(
            (c.now() - target - TimeDelta::hours(1))
                .num_milliseconds()
                .abs()
                < 50
        );
        assert!(c.is_moved());
        assert!(!Clock::system().is_moved());
    }

    #[test]
    fn an_accelerated_clock_runs_faster() {
        let start = DateTime::parse_from_rfc3339("2026-06-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let c = Clock::accelerated(start, 600.0);
        std::thread::sleep(std::time::Duration::from_millis(100));
        let ran = (c.now() - start).num_seconds();
        assert!(
            (55..=120).contains(&ran),
            "100 ms at 600x is about a minute, got {ran} s"
        );
    }
}
