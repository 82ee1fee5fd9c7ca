//! Wrap-up: after a call the agent says how it went. `do_not_call` puts the number on the
//! tenant's list at once; `callback` schedules the lead again at the promised time (the
//! first moment both calling windows are open from then), offered first to this agent
//! when asked; then the agent is available again.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;
use uuid::Uuid;

use crate::call::CallId;
use crate::campaign::CampaignId;
use crate::schedule::LeadPlace;
use crate::startup::AppState;
use crate::tenant::TenantId;

/// The dispositions every campaign knows; a campaign may add its own codes.
pub const STANDARD: [&str; 5] = [
    "sale",
    "callback",
    "not_interested",
    "wrong_number",
    "do_not_call",
];

#[derive(Debug, Clone)]
pub struct WrapUp {
    pub disposition: String,
    pub callback_at: Option<DateTime<Utc>>,
    /// For `callback`: offer the call-back to the same agent first.
    pub same_agent: bool,
    pub notes: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum WrapUpError {
    #[error("no such call")]
    NotFound,
    #[error("this call was not taken by you")]
    NotYours,
    #[error("the call already has the disposition {0:?}")]
    AlreadyGiven(String),
    #[error("{message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// The agent's wrap-up as recorded.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WrappedUp {
    #[schema(value_type = i64)]
    pub call_id: CallId,
    pub disposition: String,
    /// When the lead will be called again (a `callback`).
    #[schema(required = true)]
    pub callback_scheduled_at: Option<DateTime<Utc>>,
    pub added_to_dnc: bool,
    /// The agent's status after the wrap-up (null when no agent took the call).
    #[schema(required = true)]
    pub agent_status: Option<String>,
}

/// Records the agent's disposition of call `id`. `by_agent`: the agent giving it (their
/// own calls only); `None` for a manager.
pub async fn wrap_up(
    state: &AppState,
    tenant: TenantId,
    id: CallId,
    by_agent: Option<Uuid>,
    w: &WrapUp,
) -> Result<WrappedUp, WrapUpError> {
    let mut tx = state.db.begin().await?;
    let row = sqlx::query(
        "SELECT k.agent_id, k.agent_disposition, k.to_number, k.lead_id, k.campaign_id, k.bridged_at,
                c.disposition_codes, l.time_zones, l.region
           FROM calls k JOIN campaigns c ON c.id = k.campaign_id JOIN leads l ON l.id = k.lead_id
          WHERE k.id = $1 AND k.tenant_id = $2
            FOR UPDATE OF k, l",
    )
    .bind(id)
    .bind(tenant)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(WrapUpError::NotFound)?;
    let agent: Option<Uuid> = row.get("agent_id");
    if by_agent.is_some()
        && (agent != by_agent || row.get::<Option<DateTime<Utc>>, _>("bridged_at").is_none())
    {
        return Err(WrapUpError::NotYours);
    }
    if let Some(given) = row.get::<Option<String>, _>("agent_disposition") {
        return Err(WrapUpError::AlreadyGiven(given));
    }
    let codes: Vec<String> = row.get("disposition_codes");
    let d = w.disposition.trim();
    if !STANDARD.contains(&d) && !codes.iter().any(|c| c == d) {
        return Err(WrapUpError::Invalid {
            field: "disposition",
            message: format!(
                "disposition {d:?} is not one of {} or the campaign's codes {codes:?}",
                STANDARD.join(", ")
            ),
        });
    }
    let to: String = row.get("to_number");
    let lead: i64 = row.get("lead_id");
    let campaign: CampaignId = row.get("campaign_id");
    sqlx::query(
        "UPDATE calls SET agent_disposition = $2, agent_disposition_at = now(), agent_notes = $3 WHERE id = $1",
    )
    .bind(id)
    .bind(d)
    .bind(&w.notes)
    .execute(&mut *tx)
    .await?;
    let mut added_to_dnc = false;
    let mut scheduled = None;
    match d {
        "do_not_call" => {
            added_to_dnc = sqlx::query(
                "INSERT INTO dnc_numbers (tenant_id, phone_e164, source, reason)
                 VALUES ($1, $2, 'agent', 'the person asked the agent not to be called')
                 ON CONFLICT (tenant_id, phone_e164) WHERE tenant_id IS NOT NULL DO NOTHING",
            )
            .bind(tenant)
            .bind(&to)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                > 0;
        }
        "callback" => {
            let at = w.callback_at.ok_or(WrapUpError::Invalid {
                field: "callback_at",
                message: "a callback needs callback_at (RFC 3339 time)".into(),
            })?;
            let now = state.engine.clock.now();
            if at <= now {
                return Err(WrapUpError::Invalid {
                    field: "callback_at",
                    message: format!("callback_at {at} is not in the future"),
                });
            }
            let plan = super::plan::load(&state.db, campaign)
                .await?
                .ok_or(WrapUpError::NotFound)?;
            let zones: Vec<String> = row.get("time_zones");
            let region: Option<String> = row.get("region");
            let place = LeadPlace::new(&zones, region.as_deref(), &to, plan.schedule.campaign.tz);
            let when = plan
                .schedule
                .next_open(&place, at)
                .ok_or(WrapUpError::Invalid {
                    field: "callback_at",
                    message: format!("no calling window opens for this lead after {at}"),
                })?;
            sqlx::query(
                "UPDATE leads SET status = 'ready', final_reason = NULL, next_attempt_at = $2,
                        callback_at = $3, callback_agent_id = $4, updated_at = now()
                  WHERE id = $1",
            )
            .bind(lead)
            .bind(when)
            .bind(at)
            .bind(if w.same_agent { agent } else { None })
            .execute(&mut *tx)
            .await?;
            // A campaign that completed while the agent was wrapping up (this was its
            // last lead) runs again for the promised call; a stopped one does not.
            crate::campaign::repo::reactivate_completed(
                &mut tx,
                campaign,
                "a call-back was promised",
            )
            .await?;
            scheduled = Some(when);
        }
        _ => {}
    }
    // The agent's wrap-up is over once none of their calls is still on.
    let agent_status: Option<String> = match agent {
        Some(a) => sqlx::query_scalar(
            "UPDATE agents SET status = CASE WHEN status = 'wrap_up' AND active_calls = 0 THEN 'available' ELSE status END,
                    idle_since = CASE WHEN status = 'wrap_up' AND active_calls = 0 THEN now() ELSE idle_since END,
                    status_changed_at = CASE WHEN status = 'wrap_up' AND active_calls = 0 THEN now() ELSE status_changed_at END
              WHERE id = $1 RETURNING status",
        )
        .bind(a)
        .fetch_optional(&mut *tx)
        .await?,
        None => None,
    };
    crate::crm::outbox::disposition_set(&mut tx, id, w.callback_at, scheduled, added_to_dnc).await;
    tx.commit().await?;
    state.engine.wake.notify_one();
    Ok(WrappedUp {
        call_id: id,
        disposition: d.to_string(),
        callback_scheduled_at: scheduled,
        added_to_dnc,
        agent_status,
    })
}
