//! Campaigns under `/api/v1/campaigns`: create, list, show, change, delete (drafts), the
//! lifecycle actions and live progress.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::body::JsonBody;
use super::openapi::{
    Conflict, Forbidden, Invalid, NotFound, RateLimited, TAG_CAMPAIGNS, Unauthorized,
};
use super::query::ApiQuery;
use super::{ApiError, Caller};
use crate::campaign::input::{CampaignInput, CampaignView};
use crate::campaign::repo::DeleteError;
use crate::campaign::{CampaignId, NewCampaign, repo};
use crate::engine::lifecycle::{self, Action, LifecycleError};
use crate::startup::AppState;
use crate::tenant::TenantId;

fn parse_id(id: &str) -> Result<CampaignId, ApiError> {
    id.parse()
        .map_err(|_| ApiError::NotFound(format!("no campaign {id}")))
}

/// `POST /api/v1/campaigns/{id}/{start|pause|resume|stop}`
#[utoipa::path(post, path = "/api/v1/campaigns/{id}/{action}", tag = TAG_CAMPAIGNS,
    description = "Starts a draft campaign, pauses an active one, resumes a paused one, or stops one for good. Pausing and stopping stop new dials at once; live calls finish.",
    params(("id" = uuid::Uuid, Path, description = "Campaign id"),
        ("action" = Action, Path, description = "What to do")),
    responses((status = 200, description = "The campaign's new status", body = lifecycle::StatusView),
        (status = 401, response = Unauthorized), (status = 403, response = Forbidden), (status = 429, response = RateLimited),
        (status = 404, response = NotFound),
        (status = 422, response = Invalid)))]
pub async fn act(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, action)): Path<(String, String)>,
) -> Result<Json<lifecycle::StatusView>, ApiError> {
    caller.require_manager()?;
    let id = parse_id(&id)?;
    let action: Action = action.parse().map_err(|m: String| ApiError::NotFound(m))?;
    match lifecycle::transition(&state.db, Some(caller.tenant), id, action).await {
        Ok(v) => {
            state.engine.wake.notify_one();
            Ok(Json(v))
        }
        Err(LifecycleError::NotFound(_)) => Err(ApiError::NotFound(format!("no campaign {id}"))),
        Err(LifecycleError::Db(e)) => Err(ApiError::Internal(e.0.into())),
        Err(e @ LifecycleError::NoCallerId(_)) => Err(ApiError::invalid(
            "missing_caller_id",
            e.to_string(),
            Some("caller_id"),
        )),
        Err(e @ LifecycleError::NoLeads(_)) => {
            Err(ApiError::invalid("no_leads", e.to_string(), None))
        }
        Err(e @ LifecycleError::WrongStatus { .. }) => Err(ApiError::invalid(
            "invalid_status",
            e.to_string(),
            Some("status"),
        )),
    }
}

/// `GET /api/v1/campaigns/{id}/progress`
#[utoipa::path(get, path = "/api/v1/campaigns/{id}/progress", tag = TAG_CAMPAIGNS,
    params(("id" = uuid::Uuid, Path, description = "Campaign id")),
    responses((status = 200, description = "Where the campaign stands", body = lifecycle::Progress),
        (status = 401, response = Unauthorized), (status = 403, response = Forbidden), (status = 429, response = RateLimited),
        (status = 404, response = NotFound)))]
pub async fn progress(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<lifecycle::Progress>, ApiError> {
    caller.require_manager()?;
    let id = parse_id(&id)?;
    lifecycle::progress(&state.db, Some(caller.tenant), id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no campaign {id}")))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// Only campaigns in this status.
    #[param(value_type = Option<crate::campaign::input::StatusName>)]
    pub status: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CampaignList {
    pub campaigns: Vec<CampaignView>,
}

/// `GET /api/v1/campaigns[?status=active]`: the tenant's campaigns, oldest first.
#[utoipa::path(get, path = "/api/v1/campaigns", tag = TAG_CAMPAIGNS, params(ListParams),
    responses((status = 200, description = "The tenant's campaigns, oldest first", body = CampaignList),
        (status = 401, response = Unauthorized), (status = 403, response = Forbidden), (status = 429, response = RateLimited),
        (status = 422, response = Invalid)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<CampaignList>, ApiError> {
    caller.require_manager()?;
    if let Some(s) = &params.status
        && !["draft", "active", "paused", "completed", "stopped"].contains(&s.as_str())
    {
        return Err(ApiError::invalid(
            "invalid_field",
            format!("status `{s}` is not one of draft, active, paused, completed, stopped"),
            Some("status"),
        ));
    }
    let campaigns = repo::list(&mut *state.db.acquire().await?, caller.tenant)
        .await?
        .into_iter()
        .filter(|c| params.status.as_ref().is_none_or(|s| &c.status == s))
        .map(CampaignView::from)
        .collect();
    Ok(Json(CampaignList { campaigns }))
}

/// `GET /api/v1/campaigns/{id}`
#[utoipa::path(get, path = "/api/v1/campaigns/{id}", tag = TAG_CAMPAIGNS,
    params(("id" = uuid::Uuid, Path, description = "Campaign id")),
    responses((status = 200, description = "The campaign and its settings", body = CampaignView),
        (status = 401, response = Unauthorized), (status = 403, response = Forbidden), (status = 429, response = RateLimited),
        (status = 404, response = NotFound)))]
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<CampaignView>, ApiError> {
    caller.require_manager()?;
    let id = parse_id(&id)?;
    repo::get(&mut *state.db.acquire().await?, Some(caller.tenant), id)
        .await?
        .map(|c| Json(c.into()))
        .ok_or_else(|| ApiError::NotFound(format!("no campaign {id}")))
}

/// The agent group must be one of the tenant's.
async fn check_group(
    conn: &mut sqlx::PgConnection,
    tenant: TenantId,
    input: &CampaignInput,
) -> Result<(), ApiError> {
    if let Some(Some(group)) = input.agent_group_id {
        let group = crate::agent::GroupId(group);
        if crate::agent::repo::get_group(conn, tenant, group)
            .await?
            .is_none()
        {
            return Err(ApiError::invalid(
                "invalid_field",
                format!("agent_group_id: no agent group {group}"),
                Some("agent_group_id"),
            ));
        }
    }
    Ok(())
}

/// Applies the agent settings of `input` (group, cap, codes) when it gives any.
async fn set_agents(
    conn: &mut sqlx::PgConnection,
    tenant: TenantId,
    id: CampaignId,
    input: &CampaignInput,
) -> Result<Option<crate::campaign::Campaign>, ApiError> {
    let agents = input.agent_settings()?;
    Ok(repo::set_agents(conn, tenant, id, &agents).await?)
}

/// `POST /api/v1/campaigns`: a new campaign, in draft.
#[utoipa::path(post, path = "/api/v1/campaigns", tag = TAG_CAMPAIGNS,
    request_body(content = CampaignInput, description = "`name` is required; the rest defaults"),
    responses((status = 201, description = "The new campaign, in draft", body = CampaignView),
        (status = 401, response = Unauthorized), (status = 403, response = Forbidden), (status = 429, response = RateLimited),
        (status = 422, response = Invalid)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(input): JsonBody<CampaignInput>,
) -> Result<(StatusCode, Json<CampaignView>), ApiError> {
    caller.require_manager()?;
    let new = input.to_new()?;
    input.agent_settings()?;
    let mut tx = state.db.begin().await?;
    check_group(&mut tx, caller.tenant, &input).await?;
    let created = repo::insert(&mut tx, caller.tenant, &new).await?;
    let campaign = set_agents(&mut tx, caller.tenant, created.id, &input)
        .await?
        .unwrap_or(created);
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(campaign.into())))
}

/// `PATCH /api/v1/campaigns/{id}`: changes the settings given, checked together with the
/// rest; a running campaign picks them up on its next dial.
#[utoipa::path(patch, path = "/api/v1/campaigns/{id}", tag = TAG_CAMPAIGNS,
    params(("id" = uuid::Uuid, Path, description = "Campaign id")),
    request_body(content = CampaignInput, description = "Only the fields given change; `null` clears a nullable one"),
    responses((status = 200, description = "The campaign as changed", body = CampaignView),
        (status = 401, response = Unauthorized), (status = 403, response = Forbidden), (status = 429, response = RateLimited),
        (status = 404, response = NotFound),
        (status = 422, response = Invalid)))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(input): JsonBody<CampaignInput>,
) -> Result<Json<CampaignView>, ApiError> {
    caller.require_manager()?;
    let id = parse_id(&id)?;
    let mut tx = state.db.begin().await?;
    // Lock the row so two changes at once do not undo each other.
    sqlx::query("SELECT 1 FROM campaigns WHERE id = $1 AND tenant_id = $2 FOR UPDATE")
        .bind(id)
        .bind(caller.tenant)
        .execute(&mut *tx)
        .await?;
    let stored = repo::get(&mut tx, Some(caller.tenant), id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no campaign {id}")))?;
    let mut settings = NewCampaign::from_stored(&stored)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("campaign {id} as stored: {e}")))?;
    input.apply(&mut settings)?;
    input.agent_settings()?;
    if settings.caller_id.is_none() && stored.status != "draft" {
        return Err(ApiError::invalid(
            "missing_caller_id",
            format!(
                "caller_id: campaign {id} is {}; it dials with its caller ID, which cannot be removed",
                stored.status
            ),
            Some("caller_id"),
        ));
    }
    check_group(&mut tx, caller.tenant, &input).await?;
    let updated = repo::update(&mut tx, caller.tenant, id, &settings)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no campaign {id}")))?;
    let campaign = set_agents(&mut tx, caller.tenant, id, &input)
        .await?
        .unwrap_or(updated);
    tx.commit().await?;
    state.engine.wake.notify_one();
    Ok(Json(campaign.into()))
}

/// `DELETE /api/v1/campaigns/{id}`: only a draft; a started campaign is stopped instead,
/// keeping its leads and call history.
#[utoipa::path(delete, path = "/api/v1/campaigns/{id}", tag = TAG_CAMPAIGNS,
    params(("id" = uuid::Uuid, Path, description = "Campaign id")),
    responses((status = 204, description = "Deleted, with its leads"),
        (status = 401, response = Unauthorized), (status = 403, response = Forbidden), (status = 429, response = RateLimited),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict)))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require_manager()?;
    let id = parse_id(&id)?;
    match repo::delete_draft(&mut *state.db.acquire().await?, caller.tenant, id).await {
        Ok(()) => Ok(StatusCode::NO_CONTENT),
        Err(e @ DeleteError::NotFound(_)) => Err(ApiError::NotFound(e.to_string())),
        Err(e @ DeleteError::NotDraft(..)) => Err(ApiError::Conflict {
            code: "campaign_not_draft",
            message: e.to_string(),
        }),
        Err(DeleteError::Db(e)) => Err(e.into()),
    }
}
