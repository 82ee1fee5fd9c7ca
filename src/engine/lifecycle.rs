//! Campaign lifecycle: draft → active ⇄ paused → completed (all leads final) or stopped.
//! Each transition is one conditional `UPDATE`, so concurrent requests cannot both win.
//! Pausing or stopping stops new dials at once (every claim re-reads the status); calls
//! already live finish normally.

use serde::Serialize;
use sqlx::PgPool;

use crate::campaign::CampaignId;
use crate::tenant::TenantId;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Start,
    Pause,
    Resume,
    Stop,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Start => "start",
            Action::Pause => "pause",
            Action::Resume => "resume",
            Action::Stop => "stop",
        }
    }

    /// (statuses it applies to, status it leads to)
    fn rule(self) -> (&'static [&'static str], &'static str) {
        match self {
            Action::Start => (&["draft"], "active"),
            Action::Pause => (&["active"], "paused"),
            Action::Resume => (&["paused"], "active"),
            Action::Stop => (&["draft", "active", "paused"], "stopped"),
        }
    }
}

impl std::str::FromStr for Action {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "start" => Action::Start,
            "pause" => Action::Pause,
            "resume" => Action::Resume,
            "stop" => Action::Stop,
            other => {
                return Err(format!(
                    "unknown campaign action `{other}` (start, pause, resume, stop)"
                ));
            }
        })
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LifecycleError {
    #[error("no campaign {0}")]
    NotFound(CampaignId),
    #[error(
        "cannot {action} campaign {id}: it is {status} (only a campaign that is {allowed} can be {done})"
    )]
    WrongStatus {
        id: CampaignId,
        action: &'static str,
        status: String,
        allowed: String,
        done: &'static str,
    },
    #[error(
        "cannot start campaign {0}: it has no caller id (set caller_id, an E.164 number of the carrier account)"
    )]
    NoCallerId(CampaignId),
    #[error("cannot start campaign {0}: it has no leads to dial (import leads first)")]
    NoLeads(CampaignId),
    #[error(transparent)]
    Db(#[from] DbError),
}

#[derive(Debug, thiserror::Error)]
#[error("database error: {0}")]
pub struct DbError(#[from] pub sqlx::Error);

impl PartialEq for DbError {
    fn eq(&self, _: &Self) -> bool {
        false
    }
}
impl Eq for DbError {}

fn db(e: sqlx::Error) -> LifecycleError {
    LifecycleError::Db(DbError(e))
}

/// The campaign after a transition.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct StatusView {
    #[schema(value_type = uuid::Uuid)]
    pub id: CampaignId,
    pub status: String,
    #[schema(required = true)]
    pub status_reason: Option<String>,
    pub status_changed_at: chrono::DateTime<chrono::Utc>,
}

/// Applies `action` to the campaign (of `tenant`, when given).
pub async fn transition(
    pool: &PgPool,
    tenant: Option<TenantId>,
    id: CampaignId,
    action: Action,
) -> Result<StatusView, LifecycleError> {
    let current: Option<(String, Option<String>)> = sqlx::query_as(
        "SELECT status, caller_id FROM campaigns WHERE id = $1 AND ($2::uuid IS NULL OR tenant_id = $2)",
    )
    .bind(id)
    .bind(tenant)
    .fetch_optional(pool)
    .await
    .map_err(db)?;
    let Some((status, caller_id)) = current else {
        return Err(LifecycleError::NotFound(id));
    };
    let (from, to) = action.rule();
    let wrong = |status: String| LifecycleError::WrongStatus {
        id,
        action: action.as_str(),
        status,
        allowed: from.join(" or "),
        done: match action {
            Action::Start => "started",
            Action::Pause => "paused",
            Action::Resume => "resumed",
            Action::Stop => "stopped",
        },
    };
    if !from.contains(&status.as_str()) {
        return Err(wrong(status));
    }
    if matches!(action, Action::Start | Action::Resume) {
        if caller_id.is_none() {
            return Err(LifecycleError::NoCallerId(id));
        }
        let any: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM leads WHERE campaign_id = $1 AND status <> 'done')",
        )
        .bind(id)
        .fetch_one(pool)
        .await
        .map_err(db)?;
        if !any && action == Action::Start {
            return Err(LifecycleError::NoLeads(id));
        }
    }
    let from: Vec<String> = from.iter().map(|s| s.to_string()).collect();
    let updated: Option<StatusView> = sqlx::query_as(
        "UPDATE campaigns SET status = $2, status_reason = NULL, status_changed_at = now(), updated_at = now()
          WHERE id = $1 AND status = ANY($3)
         RETURNING id, status, status_reason, status_changed_at",
    )
    .bind(id)
    .bind(to)
    .bind(&from)
    .fetch_optional(pool)
    .await
    .map_err(db)?;
    match updated {
        Some(v) => {
            tracing::info!(campaign = %id, action = action.as_str(), status = %v.status, "campaign status changed");
            Ok(v)
        }
        // Someone else changed it in between.
        None => {
            let now: String = sqlx::query_scalar("SELECT status FROM campaigns WHERE id = $1")
                .bind(id)
                .fetch_one(pool)
                .await
                .map_err(db)?;
            Err(wrong(now))
        }
    }
}

/// Pauses an active campaign on the engine's own initiative, with the reason.
pub async fn pause_for(pool: &PgPool, id: CampaignId, reason: &str) -> Result<bool, sqlx::Error> {
    let n = sqlx::query(
        "UPDATE campaigns SET status = 'paused', status_reason = $2, status_changed_at = now(), updated_at = now()
          WHERE id = $1 AND status = 'active'",
    )
    .bind(id)
    .bind(reason)
    .execute(pool)
    .await?
    .rows_affected();
    Ok(n > 0)
}

/// Active campaigns whose every lead is final become `completed`.
pub async fn complete_finished(pool: &PgPool) -> Result<u64, sqlx::Error> {
    let done: Vec<CampaignId> = sqlx::query_scalar(
        "UPDATE campaigns c SET status = 'completed', status_reason = 'every lead is final',
                status_changed_at = now(), updated_at = now()
          WHERE c.status = 'active'
            AND NOT EXISTS (SELECT 1 FROM leads l WHERE l.campaign_id = c.id AND l.status = 'ready')
            AND NOT EXISTS (SELECT 1 FROM leads l WHERE l.campaign_id = c.id AND l.status = 'dialing')
            AND NOT EXISTS (SELECT 1 FROM calls k WHERE k.campaign_id = c.id AND NOT k.is_final)
         RETURNING c.id",
    )
    .fetch_all(pool)
    .await?;
    for id in &done {
        tracing::info!(campaign = %id, "campaign completed: every lead is final");
    }
    Ok(done.len() as u64)
}

/// Where a campaign stands: its leads by state and outcome, its attempts by disposition.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = CampaignProgress)]
pub struct Progress {
    #[schema(value_type = uuid::Uuid)]
    pub id: CampaignId,
    pub status: String,
    #[schema(required = true)]
    pub status_reason: Option<String>,
    pub leads: i64,
    pub ready: i64,
    pub dialing: i64,
    pub done: i64,
    /// Final leads by why they are final (a disposition, `attempts_exhausted`, `dnc` …).
    pub final_reasons: std::collections::BTreeMap<String, i64>,
    /// Attempts by disposition (`live` for those not ended yet).
    pub attempts: std::collections::BTreeMap<String, i64>,
    pub live_calls: i64,
    /// The law's figure over the last 30 days: calls a person answered, how many of them
    /// were abandoned, the rate in %, and the campaign's cap.
    pub answered_by_person_30d: i64,
    pub abandoned_30d: i64,
    pub abandon_rate_pct: f64,
    pub abandon_cap_pct: f64,
}

pub async fn progress(
    pool: &PgPool,
    tenant: Option<TenantId>,
    id: CampaignId,
) -> Result<Option<Progress>, sqlx::Error> {
    let head: Option<(String, Option<String>, f64)> = sqlx::query_as(
        "SELECT status, status_reason, abandon_cap_pct FROM campaigns WHERE id = $1 AND ($2::uuid IS NULL OR tenant_id = $2)",
    )
    .bind(id)
    .bind(tenant)
    .fetch_optional(pool)
    .await?;
    let Some((status, status_reason, abandon_cap_pct)) = head else {
        return Ok(None);
    };
    let (people, abandoned) = super::repo::abandonment(pool, &[id])
        .await?
        .get(&id)
        .copied()
        .unwrap_or((0, 0));
    let leads: Vec<(String, Option<String>, i64)> = sqlx::query_as(
        "SELECT status, final_reason, count(*) FROM leads WHERE campaign_id = $1 GROUP BY 1, 2",
    )
    .bind(id)
    .fetch_all(pool)
    .await?;
    let calls: Vec<(Option<String>, bool, i64)> = sqlx::query_as(
        "SELECT disposition, is_final, count(*) FROM calls WHERE campaign_id = $1 GROUP BY 1, 2",
    )
    .bind(id)
    .fetch_all(pool)
    .await?;
    let mut p = Progress {
        id,
        status,
        status_reason,
        leads: 0,
        ready: 0,
        dialing: 0,
        done: 0,
        final_reasons: Default::default(),
        attempts: Default::default(),
        live_calls: 0,
        answered_by_person_30d: people,
        abandoned_30d: abandoned,
        abandon_rate_pct: if people == 0 {
            0.0
        } else {
            (abandoned as f64 * 10000.0 / people as f64).round() / 100.0
        },
        abandon_cap_pct,
    };
    for (status, reason, n) in leads {
        p.leads += n;
        match status.as_str() {
            "ready" => p.ready += n,
            "dialing" => p.dialing += n,
            _ => {
                p.done += n;
                *p.final_reasons
                    .entry(reason.unwrap_or_default())
                    .or_default() += n;
            }
        }
    }
    for (disposition, is_final, n) in calls {
        if !is_final {
            p.live_calls += n;
        }
        let key = match (disposition, is_final) {
            (Some(d), _) => d,
            (None, false) => "live".to_string(),
            (None, true) => "unknown".to_string(),
        };
        *p.attempts.entry(key).or_default() += n;
    }
    Ok(Some(p))
}
