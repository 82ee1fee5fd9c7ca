//! API keys under `/api/v1/keys`: a tenant admin lists, creates and revokes them. The
//! secret is shown once, when the key is created.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::body::JsonBody;
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

#[derive(Debug, Serialize)]
pub struct KeyList {
    pub keys: Vec<KeyInfo>,
}

/// `GET /api/v1/keys`: the tenant's keys (never their secrets), newest first.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<KeyList>, ApiError> {
    caller.require_admin()?;
    let keys = keys::list(&mut *state.db.acquire().await?, caller.tenant).await?;
    Ok(Json(KeyList { keys }))
}

#[derive(Debug, Deserialize)]
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
