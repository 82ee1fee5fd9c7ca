//! Campaign lifecycle and live progress under `/api/v1/campaigns/{id}/…`.

use axum::Json;
use axum::extract::{Path, State};

use super::openapi::{Forbidden, Invalid, NotFound, RateLimited, TAG_CAMPAIGNS, Unauthorized};
use super::{ApiError, Caller};
use crate::campaign::CampaignId;
use crate::engine::lifecycle::{self, Action, LifecycleError};
use crate::startup::AppState;

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
