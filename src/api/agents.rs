//! Agents and agent groups under `/api/v1/agents` and `/api/v1/agent-groups`: managers
//! keep them, agents read themselves and choose their own status (`/agents/me`).

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;

use super::body::JsonBody;
use super::openapi::{
    Conflict, Forbidden, Invalid, NotFound, RateLimited, TAG_AGENTS, Unauthorized,
};
use super::{ApiError, Caller};
use crate::agent::repo::{self, AgentError, AgentFilter};
use crate::agent::{Agent, AgentGroup, AgentId, AgentInput, AgentStatus, GroupId, GroupInput};
use crate::auth::CreatedKey;
use crate::startup::AppState;

impl From<AgentError> for ApiError {
    fn from(e: AgentError) -> Self {
        let message = e.to_string();
        let conflict = |code| ApiError::Conflict {
            code,
            message: message.clone(),
        };
        match e {
            AgentError::NotFound(_)
            | AgentError::GroupNotFound(_)
            | AgentError::NotMember { .. } => ApiError::NotFound(message),
            AgentError::Invalid(s) => s.into(),
            AgentError::SetByCallFlow(_) => {
                ApiError::invalid("status_not_settable", message, Some("status"))
            }
            AgentError::OnCall { .. } => conflict("agent_on_call"),
            AgentError::DispositionOwed { .. } => conflict("disposition_owed"),
            AgentError::StatusRaced => conflict("status_changed"),
            AgentError::GroupNameTaken(_) => conflict("name_taken"),
            AgentError::GroupInUse { .. } => conflict("group_in_use"),
            AgentError::Db(d) => ApiError::from(d),
        }
    }
}

/// A path id that is not a UUID names nothing: 404, saying what an id looks like.
fn agent_id(raw: &str) -> Result<AgentId, ApiError> {
    raw.parse()
        .map_err(|m: String| ApiError::NotFound(format!("no agent: {m}")))
}

fn group_id(raw: &str) -> Result<GroupId, ApiError> {
    raw.parse()
        .map_err(|m: String| ApiError::NotFound(format!("no agent group: {m}")))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only agents with this status.
    #[param(value_type = Option<AgentStatus>)]
    pub status: Option<String>,
    /// Only members of this agent group.
    #[param(value_type = Option<uuid::Uuid>)]
    pub group: Option<String>,
}

/// The status a person chooses: `available`, `break` or `offline` (`busy` and `wrap_up`
/// are the call flow's, and refused).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusBody {
    #[schema(value_type = AgentStatus)]
    pub status: Option<String>,
}

fn requested_status(body: &StatusBody) -> Result<AgentStatus, ApiError> {
    let raw = body.status.as_deref().ok_or_else(|| {
        ApiError::invalid(
            "invalid_field",
            "status is required: available, break or offline",
            Some("status"),
        )
    })?;
    AgentStatus::parse(raw).map_err(|e| AgentError::from(e).into())
}

/// `POST /api/v1/agents`
#[utoipa::path(post, path = "/api/v1/agents", tag = TAG_AGENTS,
    request_body(content = AgentInput, description = "`name` and `endpoint` are required"),
    responses((status = 201, description = "The new agent", body = Agent),
        (status = 401, response = Unauthorized), (status = 403, response = Forbidden), (status = 429, response = RateLimited),
        (status = 422, response = Invalid)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(input): JsonBody<AgentInput>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require_manager()?;
    let agent = repo::insert(&mut *state.db.acquire().await?, caller.tenant, &input).await?;
    state.engine.wake.notify_one();
    Ok((StatusCode::CREATED, Json(agent)))
}

/// `GET /api/v1/agents?status=&group=`
#[utoipa::path(get, path = "/api/v1/agents", tag = TAG_AGENTS, params(ListQuery),
    responses((status = 200, description = "The tenant's agents", body = Vec<Agent>),
        (status = 401, response = Unauthorized), (status = 403, response = Forbidden), (status = 429, response = RateLimited),
        (status = 404, response = NotFound),
        (status = 422, response = Invalid)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require_manager()?;
    let Query(q) = query.map_err(|e| ApiError::invalid("invalid_query", e.body_text(), None))?;
    let filter = AgentFilter {
        status: q
            .status
            .as_deref()
            .map(AgentStatus::parse)
            .transpose()
            .map_err(AgentError::from)?,
        group: q
            .group
            .as_deref()
            .map(|g| {
                g.parse::<GroupId>()
                    .map_err(|m| ApiError::invalid("invalid_field", m, Some("group")))
            })
            .transpose()?,
    };
    Ok(Json(
        repo::list(&mut *state.db.acquire().await?, caller.tenant, &filter).await?,
    ))
}

/// `GET /api/v1/agents/{id}`
#[utoipa::path(get, path = "/api/v1/agents/{id}", tag = TAG_AGENTS,
    params(("id" = uuid::Uuid, Path, description = "Agent id")),
    responses((status = 200, description = "The agent", body = Agent),
        (status = 401, response = Unauthorized), (status = 403, response = Forbidden), (status = 429, response = RateLimited),
        (status = 404, response = NotFound)))]
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require_manager()?;
    let id = agent_id(&id)?;
    repo::get(&mut *state.db.acquire().await?, caller.tenant, id)
        .await?
        .map(Json)
        .ok_or_else(|| AgentError::NotFound(id).into())
}

/// `PATCH /api/v1/agents/{id}`: only the fields given change; `groups` replaces the
/// agent's groups.
#[utoipa::path(patch, path = "/api/v1/agents/{id}", tag = TAG_AGENTS,
    params(("id" = uuid::Uuid, Path, description = "Agent id")),
    request_body(content = AgentInput, description = "Only the fields given change; `status` is refused here"),
    responses((status = 200, description = "The agent as changed", body = Agent),
        (status = 401, response = Unauthorized), (status = 403, response = Forbidden), (status = 429, response = RateLimited),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 422, response = Invalid)))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(input): JsonBody<AgentInput>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require_manager()?;
    let id = agent_id(&id)?;
    let agent = repo::update(&mut *state.db.acquire().await?, caller.tenant, id, &input).await?;
    state.engine.wake.notify_one();
    Ok(Json(agent))
}

/// `PUT /api/v1/agents/{id}/status`: a manager sets an agent's status.
#[utoipa::path(put, path = "/api/v1/agents/{id}/status", tag = TAG_AGENTS,
    params(("id" = uuid::Uuid, Path, description = "Agent id")),
    request_body = StatusBody,
    responses((status = 200, description = "The agent with the new status", body = Agent),
        (status = 401, response = Unauthorized), (status = 403, response = Forbidden), (status = 429, response = RateLimited),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 422, response = Invalid)))]
pub async fn set_status(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<StatusBody>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require_manager()?;
    let id = agent_id(&id)?;
    change_status(&state, &caller, id, &body).await
}

/// `POST /api/v1/agents/{id}/keys`: an API key for the agent (role `agent`); the
/// secret is in this answer only.
#[utoipa::path(post, path = "/api/v1/agents/{id}/keys", tag = TAG_AGENTS,
    params(("id" = uuid::Uuid, Path, description = "Agent id")),
    responses((status = 201, description = "The key; `key` is shown this once", body = CreatedKey),
        (status = 401, response = Unauthorized), (status = 403, response = Forbidden), (status = 429, response = RateLimited),
        (status = 404, response = NotFound)))]
pub async fn create_key(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require_manager()?;
    let id = agent_id(&id)?;
    let key = repo::create_key(
        &mut *state.db.acquire().await?,
        caller.tenant,
        id,
        &state.hasher,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(key)))
}

/// `GET /api/v1/agents/me`: the agent whose key this is.
#[utoipa::path(get, path = "/api/v1/agents/me", tag = TAG_AGENTS,
    responses((status = 200, description = "The agent whose key this is", body = Agent),
        (status = 401, response = Unauthorized), (status = 429, response = RateLimited),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound)))]
pub async fn me(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<impl IntoResponse, ApiError> {
    let id = AgentId(caller.require_agent()?);
    repo::get(&mut *state.db.acquire().await?, caller.tenant, id)
        .await?
        .map(Json)
        .ok_or_else(|| AgentError::NotFound(id).into())
}

/// `PUT /api/v1/agents/me/status`: an agent chooses available, break or offline.
#[utoipa::path(put, path = "/api/v1/agents/me/status", tag = TAG_AGENTS,
    request_body = StatusBody,
    responses((status = 200, description = "The agent with the new status", body = Agent),
        (status = 401, response = Unauthorized), (status = 429, response = RateLimited),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 422, response = Invalid)))]
pub async fn set_my_status(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<StatusBody>,
) -> Result<impl IntoResponse, ApiError> {
    let id = AgentId(caller.require_agent()?);
    change_status(&state, &caller, id, &body).await
}

async fn change_status(
    state: &AppState,
    caller: &Caller,
    id: AgentId,
    body: &StatusBody,
) -> Result<Json<Agent>, ApiError> {
    let to = requested_status(body)?;
    let agent = repo::set_status(&mut *state.db.acquire().await?, caller.tenant, id, to).await?;
    tracing::info!(agent = %id, status = %agent.status, key = %caller.key_id, "agent status set");
    // A newly available agent may take a person waiting now, or let the pacer dial more.
    state.engine.wake.notify_one();
    Ok(Json(agent))
}

/// `GET /api/v1/agent-groups`
#[utoipa::path(get, path = "/api/v1/agent-groups", tag = TAG_AGENTS,
    responses((status = 200, description = "The tenant's agent groups", body = Vec<AgentGroup>),
        (status = 401, response = Unauthorized), (status = 403, response = Forbidden), (status = 429, response = RateLimited)))]
pub async fn list_groups(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<impl IntoResponse, ApiError> {
    caller.require_manager()?;
    Ok(Json(
        repo::list_groups(&mut *state.db.acquire().await?, caller.tenant).await?,
    ))
}

/// `POST /api/v1/agent-groups`: `{"name", "agents"?: [ids]}`
#[utoipa::path(post, path = "/api/v1/agent-groups", tag = TAG_AGENTS,
    request_body(content = GroupInput, description = "`name` is required"),
    responses((status = 201, description = "The new group", body = AgentGroup),
        (status = 401, response = Unauthorized), (status = 403, response = Forbidden), (status = 429, response = RateLimited),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 422, response = Invalid)))]
pub async fn create_group(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(input): JsonBody<GroupInput>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require_manager()?;
    let group = repo::insert_group(&mut *state.db.acquire().await?, caller.tenant, &input).await?;
    Ok((StatusCode::CREATED, Json(group)))
}

/// `GET /api/v1/agent-groups/{id}`
#[utoipa::path(get, path = "/api/v1/agent-groups/{id}", tag = TAG_AGENTS,
    params(("id" = uuid::Uuid, Path, description = "Agent group id")),
    responses((status = 200, description = "The group", body = AgentGroup),
        (status = 401, response = Unauthorized), (status = 403, response = Forbidden), (status = 429, response = RateLimited),
        (status = 404, response = NotFound)))]
pub async fn show_group(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require_manager()?;
    let id = group_id(&id)?;
    repo::get_group(&mut *state.db.acquire().await?, caller.tenant, id)
        .await?
        .map(Json)
        .ok_or_else(|| AgentError::GroupNotFound(id).into())
}

/// `PATCH /api/v1/agent-groups/{id}`: rename, and/or `agents` replaces the members.
#[utoipa::path(patch, path = "/api/v1/agent-groups/{id}", tag = TAG_AGENTS,
    params(("id" = uuid::Uuid, Path, description = "Agent group id")),
    request_body = GroupInput,
    responses((status = 200, description = "The group as changed", body = AgentGroup),
        (status = 401, response = Unauthorized), (status = 403, response = Forbidden), (status = 429, response = RateLimited),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 422, response = Invalid)))]
pub async fn update_group(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(input): JsonBody<GroupInput>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require_manager()?;
    let id = group_id(&id)?;
    let group =
        repo::update_group(&mut *state.db.acquire().await?, caller.tenant, id, &input).await?;
    state.engine.wake.notify_one();
    Ok(Json(group))
}

/// `DELETE /api/v1/agent-groups/{id}`: refused (409) while a campaign uses the group.
#[utoipa::path(delete, path = "/api/v1/agent-groups/{id}", tag = TAG_AGENTS,
    params(("id" = uuid::Uuid, Path, description = "Agent group id")),
    responses((status = 204, description = "Deleted"),
        (status = 401, response = Unauthorized), (status = 403, response = Forbidden), (status = 429, response = RateLimited),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict)))]
pub async fn delete_group(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require_manager()?;
    let id = group_id(&id)?;
    repo::delete_group(&mut *state.db.acquire().await?, caller.tenant, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `PUT /api/v1/agent-groups/{id}/members/{agent_id}`
#[utoipa::path(put, path = "/api/v1/agent-groups/{id}/members/{agent_id}", tag = TAG_AGENTS,
    params(("id" = uuid::Uuid, Path, description = "Agent group id"),
        ("agent_id" = uuid::Uuid, Path, description = "Agent id")),
    responses((status = 200, description = "The group with the agent in it", body = AgentGroup),
        (status = 401, response = Unauthorized), (status = 403, response = Forbidden), (status = 429, response = RateLimited),
        (status = 404, response = NotFound)))]
pub async fn add_member(
    State(state): State<AppState>,
    caller: Caller,
    Path((group, agent)): Path<(String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require_manager()?;
    let (group, agent) = (group_id(&group)?, agent_id(&agent)?);
    let g = repo::add_member(&mut *state.db.acquire().await?, caller.tenant, group, agent).await?;
    state.engine.wake.notify_one();
    Ok(Json(g))
}

/// `DELETE /api/v1/agent-groups/{id}/members/{agent_id}`
#[utoipa::path(delete, path = "/api/v1/agent-groups/{id}/members/{agent_id}", tag = TAG_AGENTS,
    params(("id" = uuid::Uuid, Path, description = "Agent group id"),
        ("agent_id" = uuid::Uuid, Path, description = "Agent id")),
    responses((status = 200, description = "The group without the agent", body = AgentGroup),
        (status = 401, response = Unauthorized), (status = 403, response = Forbidden), (status = 429, response = RateLimited),
        (status = 404, response = NotFound)))]
pub async fn remove_member(
    State(state): State<AppState>,
    caller: Caller,
    Path((group, agent)): Path<(String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require_manager()?;
    let (group, agent) = (group_id(&group)?, agent_id(&agent)?);
    let g =
        repo::remove_member(&mut *state.db.acquire().await?, caller.tenant, group, agent).await?;
    Ok(Json(g))
}
