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

/// Refreshes the gauges read from the shared state (every instance reports the same
/// deployment-wide values: aggregate them with `max`, not `sum`): live attempts, jobs
/// waiting in the dial queues, each active campaign's abandonment rate over 30 days, and
/// CRM webhook deliveries waiting.
pub async fn refresh_gauges(state: &AppState) -> anyhow::Result<()> {
    let (active, backlog): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM calls WHERE NOT is_final),
                (SELECT count(*) FROM crm_deliveries WHERE state = 'pending')",
    )
    .fetch_one(&state.db)
    .await?;
    metrics::gauge!("dialer_calls_active").set(active as f64);
    metrics::gauge!("dialer_crm_webhook_backlog").set(backlog as f64);
    // abandoned ÷ answered by a person, as the pacer's cap reads it.
    let campaigns: Vec<(crate::campaign::CampaignId, i64, i64)> = sqlx::query_as(
        "SELECT c.id, count(k.id), count(k.id) FILTER (WHERE k.disposition = 'abandoned')
           FROM campaigns c
           LEFT JOIN calls k ON k.campaign_id = c.id AND k.disposition IN ('answered', 'abandoned')
                            AND k.created_at >= now() - interval '30 days'
          WHERE c.status = 'active'
          GROUP BY c.id",
    )
    .fetch_all(&state.db)
    .await?;
    let pacing = crate::engine::pacing::Pacing::new(state.redis.clone());
    let mut queued = 0;
    for (id, answered, abandoned) in &campaigns {
        let ratio = if *answered > 0 {
            *abandoned as f64 / *answered as f64
        } else {
            0.0
        };
        metrics::gauge!("dialer_campaign_abandonment_ratio", "campaign" => id.to_string())
            .set(ratio);
        queued += pacing.len(*id).await?;
    }
    metrics::gauge!("dialer_queue_depth").set(queued as f64);
    Ok(())
}
