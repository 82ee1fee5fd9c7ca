//! Leads under `/api/v1/leads`: list (filters, cursor pages), one lead with its attempts,
//! change, remove from dialing, queue again. Admin and manager keys only.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::body::JsonBody;
use super::openapi::{
    Conflict, Forbidden, Invalid, NotFound, RateLimited, TAG_LEADS, Unauthorized,
};
use super::query::{ApiQuery, page_cursor, page_limit};
use super::{ApiError, Caller};
use crate::campaign::CampaignId;
use crate::lead::manage::{self, Attempt, LeadError, LeadFilter, LeadInput, LeadView};
use crate::startup::AppState;

impl From<LeadError> for ApiError {
    fn from(e: LeadError) -> Self {
        let message = e.to_string();
        match e {
            LeadError::NotFound(_) => ApiError::NotFound(message),
            LeadError::Dialing(_) => ApiError::Conflict {
                code: "lead_dialing",
                message,
            },
            LeadError::OnDnc(..) => ApiError::Conflict {
                code: "on_dnc",
                message,
            },
            LeadError::CampaignStopped(_) => ApiError::Conflict {
                code: "campaign_stopped",
                message,
            },
            LeadError::Db(e) => e.into(),
        }
    }
}

/// A path id that is not a lead id names nothing: 404.
fn lead_id(raw: &str) -> Result<i64, ApiError> {
    raw.trim()
        .parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| ApiError::NotFound(format!("no lead {raw}")))
}

fn invalid(field: &'static str, message: String) -> ApiError {
    ApiError::invalid("invalid_query", message, Some(field))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// Only this campaign's leads.
    #[param(value_type = Option<uuid::Uuid>)]
    pub campaign: Option<String>,
    /// ready, dialing or done.
    #[param(value_type = Option<crate::lead::manage::LeadStatus>)]
    pub status: Option<String>,
    /// Why done leads are done: answered, attempts_exhausted, dnc, removed …
    pub final_reason: Option<String>,
    /// The number, in international form.
    pub phone: Option<String>,
    /// low, normal, high or urgent.
    #[param(value_type = Option<crate::lead::manage::PriorityName>)]
    pub priority: Option<String>,
    /// 1 to 1000 (default 100).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 1000)]
    pub limit: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl ListParams {
    fn filter(&self) -> Result<(LeadFilter, i64), ApiError> {
        let mut f = LeadFilter::default();
        if let Some(raw) = &self.campaign {
            f.campaign = Some(
                raw.parse::<CampaignId>()
                    .map_err(|m| invalid("campaign", m))?,
            );
        }
        if let Some(raw) = &self.status {
            if !["ready", "dialing", "done"].contains(&raw.as_str()) {
                return Err(invalid(
                    "status",
                    format!("status `{raw}` is not one of ready, dialing, done"),
                ));
            }
            f.status = Some(raw.clone());
        }
        f.final_reason = self.final_reason.clone();
        if let Some(raw) = &self.phone {
            let n = crate::phone::PhoneNumber::parse(raw, None).map_err(|e| {
                invalid(
                    "phone",
                    format!("phone `{raw}`: {e} (give it in international form, +CC…)"),
                )
            })?;
            f.phone = Some(n.as_str().to_string());
        }
        if let Some(raw) = &self.priority {
            f.priority =
                Some(manage::parse_priority(raw).map_err(|e| invalid("priority", e.to_string()))?);
        }
        let limit = page_limit(self.limit.as_deref(), 100, 1000)?;
        f.after = page_cursor(self.cursor.as_deref())?;
        Ok((f, limit))
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LeadList {
    pub leads: Vec<LeadView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// `GET /api/v1/leads?campaign&status&final_reason&phone&priority&limit&cursor`, in import order.
#[utoipa::path(get, path = "/api/v1/leads", tag = TAG_LEADS, params(ListParams),
    responses((status = 200, description = "Leads in import order", body = LeadList),
        (status = 401, response = Unauthorized), (status = 403, response = Forbidden), (status = 429, response = RateLimited),
        (status = 422, response = Invalid)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<LeadList>, ApiError> {
    caller.require_manager()?;
    let (f, limit) = params.filter()?;
    let leads = manage::list(&mut *state.db.acquire().await?, caller.tenant, &f, limit).await?;
    let next_cursor = (leads.len() as i64 == limit)
        .then(|| leads.last().map(|l| l.id.to_string()))
        .flatten();
    Ok(Json(LeadList { leads, next_cursor }))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LeadDetail {
    #[serde(flatten)]
    pub lead: LeadView,
    /// Every call to the lead, its first attempt first (details: `GET /api/v1/calls/{call_id}`).
    pub calls: Vec<Attempt>,
}

/// `GET /api/v1/leads/{id}`
#[utoipa::path(get, path = "/api/v1/leads/{id}", tag = TAG_LEADS, params(("id" = i64, Path, minimum = 1, description = "Lead id")),
    responses((status = 200, description = "The lead and its calls", body = LeadDetail),
        (status = 401, response = Unauthorized), (status = 403, response = Forbidden), (status = 429, response = RateLimited),
        (status = 404, response = NotFound)))]
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<LeadDetail>, ApiError> {
    caller.require_manager()?;
    let id = lead_id(&id)?;
    let mut conn = state.db.acquire().await?;
    let lead = manage::get(&mut conn, caller.tenant, id)
        .await?
        .ok_or(LeadError::NotFound(id))?;
    let calls = manage::attempts(&mut conn, caller.tenant, id).await?;
    Ok(Json(LeadDetail { lead, calls }))
}

/// `PATCH /api/v1/leads/{id}`: names, type, priority, notes, custom fields.
#[utoipa::path(patch, path = "/api/v1/leads/{id}", tag = TAG_LEADS, params(("id" = i64, Path, minimum = 1, description = "Lead id")),
    request_body(content = LeadInput, description = "Only the fields given change; `null` clears one"),
    responses((status = 200, description = "The lead as changed", body = LeadView),
        (status = 401, response = Unauthorized), (status = 403, response = Forbidden), (status = 429, response = RateLimited),
        (status = 404, response = NotFound),
        (status = 422, response = Invalid)))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(input): JsonBody<LeadInput>,
) -> Result<Json<LeadView>, ApiError> {
    caller.require_manager()?;
    let id = lead_id(&id)?;
    let mut tx = state.db.begin().await?;
    sqlx::query("SELECT 1 FROM leads WHERE tenant_id = $1 AND id = $2 FOR UPDATE")
        .bind(caller.tenant)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let mut lead = manage::get(&mut tx, caller.tenant, id)
        .await?
        .ok_or(LeadError::NotFound(id))?;
    input.apply(&mut lead)?;

    let saved = manage::save(&mut tx, caller.tenant, &lead)
        .await?
        .ok_or(LeadError::NotFound(id))?;
    tx.commit().await?;
    Ok(Json(saved))
}

/// `DELETE /api/v1/leads/{id}`: never dialled again (`done`, `removed`); its calls stay in
/// the reports. 409 while a call to it is live.
#[utoipa::path(delete, path = "/api/v1/leads/{id}", tag = TAG_LEADS, params(("id" = i64, Path, minimum = 1, description = "Lead id")),
    responses((status = 204, description = "Never dialled again (`done`, `removed`)"),
        (status = 401, response = Unauthorized), (status = 403, response = Forbidden), (status = 429, response = RateLimited),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict)))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require_manager()?;
    let id = lead_id(&id)?;
    manage::remove(&mut *state.db.acquire().await?, caller.tenant, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/leads/{id}/requeue`: due now, dialled when both windows are open.
#[utoipa::path(post, path = "/api/v1/leads/{id}/requeue", tag = TAG_LEADS, params(("id" = i64, Path, minimum = 1, description = "Lead id")),
    responses((status = 200, description = "The lead, due now", body = LeadView),
        (status = 401, response = Unauthorized), (status = 403, response = Forbidden), (status = 429, response = RateLimited),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict)))]
pub async fn requeue(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<LeadView>, ApiError> {
    caller.require_manager()?;
    let id = lead_id(&id)?;
    let lead = manage::requeue(&mut *state.db.acquire().await?, caller.tenant, id).await?;
    state.engine.wake.notify_one();
    Ok(Json(lead))
}
