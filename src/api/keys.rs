//! API keys under `/api/v1/keys`: a tenant admin lists, creates and revokes them. The
//! secret is shown once, when the key is created.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::body::JsonBody;
use super::openapi::{Conflict, Forbidden, Invalid, NotFound, RateLimited, TAG_KEYS, Unauthorized};
use super::{ApiError, Caller};
use crate::auth::{CreatedKey, KeyError, KeyInfo, Role, keys};
use crate::startup::AppState;

impl From<KeyError> for ApiError {
    fn from(e: KeyError) -> Self {
        let message = e.to_string();
        match e {
            KeyError::Invalid { field, .. } => {
                ApiError::invalid("invalid_field", message, Some(field))
            }
            KeyError::NotFound(_) => ApiError::NotFound(message),
            KeyError::LastAdmin(_) => ApiError::Conflict {
                code: "last_admin_key",
                message,
            },
            KeyError::Db(e) => e.into(),
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KeyList {
    pub keys: Vec<KeyInfo>,
}

/// `GET /api/v1/keys`: the tenant's keys (never their secrets), newest first.
#[utoipa::path(get, path = "/api/v1/keys", tag = TAG_KEYS,
    responses((status = 200, description = "The tenant's keys, newest first (never their secrets)", body = KeyList),
        (status = 401, response = Unauthorized), (status = 403, response = Forbidden), (status = 429, response = RateLimited)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<KeyList>, ApiError> {
    caller.require_admin()?;
    let keys = keys::list(&mut *state.db.acquire().await?, caller.tenant).await?;
    Ok(Json(KeyList { keys }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKeyBody {
    /// What the key is for, e.g. "CRM sync".
    pub name: String,
    /// admin, manager or agent.
    pub role: Role,
    /// For role `agent`: the agent the key acts as.
    pub agent_id: Option<Uuid>,
}

/// `POST /api/v1/keys`: a new key; the response holds its secret, shown this once.
#[utoipa::path(post, path = "/api/v1/keys", tag = TAG_KEYS,
    request_body = NewKeyBody,
    responses((status = 201, description = "The new key with its secret, shown this once", body = CreatedKey),
        (status = 401, response = Unauthorized), (status = 403, response = Forbidden), (status = 429, response = RateLimited),
        (status = 422, response = Invalid)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<NewKeyBody>,
) -> Result<(StatusCode, Json<CreatedKey>), ApiError> {
    caller.require_admin()?;
    let key = keys::create(
        &mut *state.db.acquire().await?,
        caller.tenant,
        &body.name,
        body.role,
        body.agent_id,
        &state.hasher,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(key)))
}

/// `DELETE /api/v1/keys/{id}`: revoked at once; the tenant's last admin key is kept (409).
#[utoipa::path(delete, path = "/api/v1/keys/{id}", tag = TAG_KEYS,
    params(("id" = uuid::Uuid, Path, description = "Key id")),
    responses((status = 204, description = "Revoked"),
        (status = 401, response = Unauthorized), (status = 403, response = Forbidden), (status = 429, response = RateLimited),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict)))]
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    let id: Uuid = id
        .trim()
        .parse()
        .map_err(|_| ApiError::NotFound(format!("no API key {id}")))?;
    keys::revoke(&mut *state.db.acquire().await?, caller.tenant, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
