//! Logs and metrics: tracing subscriber set-up and the Prometheus recorder.

use std::io::IsTerminal;
use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

use crate::config::LogSettings;

/// Installs the global tracing subscriber: `RUST_LOG` if set, else `log.filter`;
/// JSON when stdout is not a terminal (journald, files) unless `log.format` says otherwise.
/// Logs go to stderr so that `--json` output on stdout stays machine-readable.
pub fn init(log: &LogSettings) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&log.filter))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let json = match log.format.as_str() {
        "json" => true,
        "pretty" => false,
        _ => !std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Otherwise a failed write (stderr a broken pipe, e.g. journald restarted) is
        // reported with eprintln!, which panics in whatever task was logging.
        .log_internal_errors(false)
        .with_span_events(FmtSpan::NONE);
    // A second init (tests start many apps in one process) keeps the first subscriber.
    let _ = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init()
    } else {
        builder.try_init()
    };
}

/// The process-wide Prometheus recorder; `/metrics` renders it.
pub fn metrics() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        // Fails only if another recorder is installed already; then ours renders empty.
        let _ = metrics::set_global_recorder(recorder);
        describe();
        handle
    })
}

fn describe() {
    metrics::describe_counter!(
        "dialer_http_requests_total",
        "HTTP requests served, by route and status"
    );
    metrics::describe_histogram!(
        "dialer_http_request_duration_seconds",
        metrics::Unit::Seconds,
        "Time to serve an HTTP request, by route"
    );
    metrics::describe_gauge!(
        "dialer_dependency_up",
        "1 when the dependency (postgres, redis) answered the last check, else 0"
    );
    metrics::describe_gauge!("dialer_build_info", "Always 1; labels carry the version");
    metrics::describe_counter!(
        "dialer_daemon_ticks_total",
        "Iterations of the daemon's main loop"
    );
    // Gauges read from Postgres and Redis by the main loop (`health::refresh_gauges`):
    // deployment-wide, the same on every instance (aggregate with max, not sum).
    metrics::describe_gauge!(
        "dialer_calls_active",
        "Attempts not yet in a final state (dialing, ringing, in progress), all campaigns"
    );
    metrics::describe_gauge!(
        "dialer_queue_depth",
        "Dial jobs waiting in the active campaigns' Redis queues (hoppers)"
    );
    metrics::describe_gauge!(
        "dialer_campaign_abandonment_ratio",
        "Per active campaign, over the rolling 30 days: abandoned calls / calls a person answered (0-1)"
    );
    metrics::describe_gauge!(
        "dialer_crm_webhook_backlog",
        "CRM webhook deliveries pending (due now, waiting for a retry, or in flight)"
    );
    metrics::describe_gauge!(
        "dialer_active_campaigns",
        "Active campaigns as this instance's pacer sees them"
    );
    metrics::describe_counter!(
        "dialer_attempts_total",
        "Attempts claimed (the calls row written before the carrier is asked)"
    );
    metrics::describe_counter!("dialer_dials_total", "Dial requests the carrier accepted");
    metrics::describe_counter!(
        "dialer_call_outcomes_total",
        "Attempts that reached their final disposition, by disposition (answered, voicemail, no_answer, busy, failed, canceled, abandoned, invalid_number)"
    );
    metrics::describe_counter!("dialer_leads_finished_total", "Leads done, by final reason");
    metrics::describe_histogram!(
        "dialer_webhook_duration_seconds",
        metrics::Unit::Seconds,
        "Time to handle a carrier (Twilio) callback, by kind"
    );
    metrics::describe_counter!(
        "dialer_twilio_api_errors_total",
        "Failed requests to the carrier's REST API, by HTTP status (`transport`: no answer) and Twilio error code (`none`: no code)"
    );
    metrics::describe_counter!(
        "dialer_crm_webhook_events_total",
        "CRM webhook events recorded in the outbox, by event"
    );
    metrics::describe_counter!(
        "dialer_crm_webhook_events_failed_total",
        "CRM webhook events that could not be recorded (the call flow went on without them)"
    );
    metrics::describe_counter!(
        "dialer_crm_webhook_deliveries_total",
        "CRM webhook delivery attempts, by result: delivered, retry (will be tried again), failed (gave up)"
    );
    metrics::describe_histogram!(
        "dialer_crm_webhook_delivery_duration_seconds",
        metrics::Unit::Seconds,
        "Time of one CRM webhook delivery request, whatever its result"
    );
}
