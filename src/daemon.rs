//! The daemon's main loop: one `tick_once` per period that checks the dependencies,
//! fails imports whose process died, keeps the metrics fresh and, only when the tick completed, pets the systemd watchdog,
//! so a wedged loop gets the daemon restarted.

use std::time::Duration;

use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;

use crate::lifecycle::systemd;
use crate::startup::AppState;

pub struct MainLoop {
    state: AppState,
    period: Duration,
}

impl MainLoop {
    /// The period is half the systemd watchdog timeout when one is set, else `daemon.tick_ms`.
    pub fn new(state: AppState) -> Self {
        let period = systemd::watchdog_interval()
            .unwrap_or_else(|| Duration::from_millis(state.settings.daemon.tick_ms));
        Self { state, period }
    }

    /// One iteration; tests call it directly.
    pub async fn tick_once(&self) {
        let readiness = crate::health::check(&self.state).await;
        match crate::lead::import::fail_interrupted(&self.state.db).await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(imports = n, "marked interrupted imports as failed"),
            Err(e) => tracing::warn!(error = %e, "checking for interrupted imports failed"),
        }
        // Bounded: a slow database must not hold up the watchdog ping.
        match tokio::time::timeout(
            Duration::from_secs(2),
            crate::health::refresh_gauges(&self.state),
        )
        .await
        {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = format!("{e:#}"), "refreshing the gauges failed"),
            Err(_) => tracing::warn!("refreshing the gauges took over 2 s; skipped"),
        }
        crate::telemetry::metrics().run_upkeep();
        metrics::counter!("dialer_daemon_ticks_total").increment(1);
        tracing::debug!(status = readiness.status, "daemon tick");
    }

    pub async fn run(self, token: CancellationToken) {
        let mut next = Instant::now();
        loop {
            tokio::select! {
                _ = token.cancelled() => break,
                _ = sleep_until(next) => {}
            }
            self.tick_once().await;
            systemd::watchdog();
            next = Instant::now() + self.period;
        }
    }
}
