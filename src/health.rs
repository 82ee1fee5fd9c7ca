//! Operator endpoints: `/healthz` (the process is alive), `/readyz` (its dependencies
//! answer), `/metrics` (Prometheus text).

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Serialize;

use crate::startup::AppState;

const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Serialize)]
pub struct Readiness {
    pub status: &'static str,
    pub checks: Checks,
}

#[derive(Debug, Serialize)]
pub struct Checks {
    pub postgres: String,
    pub redis: String,
    /// The carrier as this instance's dialer sees it. Informational: an instance whose
    /// carrier is down still serves webhooks and the API, so it stays ready.
    pub carrier: String,
}

/// Always 200 while the process serves HTTP.
pub async fn healthz() -> impl IntoResponse {
    Json(serde_json::json!({ "status": "alive", "version": env!("CARGO_PKG_VERSION") }))
}

/// 200 when Postgres and Redis both answer now, else 503 naming the one that failed.
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let r = check(&state).await;
    let code = if r.status == "ready" {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(r))
}

/// Checks both dependencies concurrently, each bounded by a short timeout, and
/// records the outcome in `dialer_dependency_up`.
pub async fn check(state: &AppState) -> Readiness {
    let pg = async {
        match tokio::time::timeout(CHECK_TIMEOUT, crate::db::ping(&state.db)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(format!("no answer within {CHECK_TIMEOUT:?}")),
        }
    };
    let redis = async {
        match tokio::time::timeout(CHECK_TIMEOUT, state.redis.ping()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(format!("no answer within {CHECK_TIMEOUT:?}")),
        }
    };
    let (pg, redis) = tokio::join!(pg, redis);
    for (name, r) in [("postgres", &pg), ("redis", &redis)] {
        metrics::gauge!("dialer_dependency_up", "dependency" => name).set(if r.is_ok() {
            1.0
        } else {
            0.0
        });
        if let Err(e) = r {
            tracing::warn!(dependency = name, error = %e, "dependency check failed");
        }
    }
    let show = |r: Result<(), String>| match r {
        Ok(()) => "ok".to_string(),
        Err(e) => format!("error: {e}"),
    };
    let ready = pg.is_ok() && redis.is_ok();
    Readiness {
        status: if ready { "ready" } else { "unavailable" },
        checks: Checks {
            postgres: show(pg),
            redis: show(redis),
            carrier: carrier_state(state),
        },
    }
}

fn carrier_state(state: &AppState) -> String {
    if state.engine.carrier.is_none() {
        return "not configured".into();
    }
    let v = state.engine.circuit.view();
    if v.open {
        format!(
            "circuit open since {}: dialling paused after {} consecutive failures (last: {})",
            v.opened_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
            v.consecutive_failures,
            v.last_error.unwrap_or_default()
        )
    } else {
        "ok".into()
    }
}

pub async fn metrics() -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::telemetry::metrics().render(),
    )
}
