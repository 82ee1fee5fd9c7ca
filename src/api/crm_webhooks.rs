//! The tenant's CRM webhook under `/api/v1/webhook`: its endpoint (url, events, enabled),
//! its signing secret (shown once, on creation and on rotation) and its recent deliveries.
//! Tenant admins only: the endpoint receives every call's outcome and the leads' data.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;

use super::body::JsonBody;
use super::openapi::{Forbidden, Invalid, NotFound, RateLimited, TAG_WEBHOOK, Unauthorized};
use super::{ApiError, Caller};
use crate::crm::{self, EndpointInput, repo};
use crate::startup::AppState;

fn no_endpoint() -> ApiError {
    ApiError::NotFound("no CRM webhook: create one with PUT /api/v1/webhook".into())
}

impl From<crm::Invalid> for ApiError {
    fn from(e: crm::Invalid) -> Self {
        ApiError::Invalid {
            code: "invalid_field",
            message: e.message,
            field: Some(e.field),
        }
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointBody {
    pub url: Option<String>,
    /// Left out: every event.
    pub events: Option<Vec<String>>,
    /// Left out: true.
    pub enabled: Option<bool>,
}

/// `PUT /api/v1/webhook`: creates the endpoint (201, with its new secret, shown once) or
/// replaces its url, events and enabled flag (200, the secret unchanged and not shown).
#[utoipa::path(put, path = "/api/v1/webhook", tag = TAG_WEBHOOK,
    request_body(content = EndpointBody, description = "`url` is required"),
    responses((status = 200, description = "The endpoint as changed (secret unchanged, not shown)", body = repo::Saved),
        (status = 201, description = "The new endpoint with its secret, shown this once", body = repo::Saved),
        (status = 401, response = Unauthorized), (status = 403, response = Forbidden), (status = 429, response = RateLimited),
        (status = 422, response = Invalid)))]
pub async fn put(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<EndpointBody>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require_admin()?;
    let url = body.url.as_deref().ok_or_else(|| {
        ApiError::invalid(
            "invalid_field",
            "url is required: the CRM's https:// endpoint",
            Some("url"),
        )
    })?;
    let input = EndpointInput::parse(
        url,
        body.events.as_deref(),
        body.enabled,
        state.settings.crm_webhooks.allow_private_targets,
    )?;
    let saved = repo::upsert(&mut *state.db.acquire().await?, caller.tenant, &input).await?;
    let status = if saved.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(saved)))
}

/// `GET /api/v1/webhook`: the endpoint, never its secret.
#[utoipa::path(get, path = "/api/v1/webhook", tag = TAG_WEBHOOK,
    responses((status = 200, description = "The endpoint (never its secret)", body = crm::Endpoint),
        (status = 401, response = Unauthorized), (status = 403, response = Forbidden), (status = 429, response = RateLimited),
        (status = 404, response = NotFound)))]
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<impl IntoResponse, ApiError> {
    caller.require_admin()?;
    repo::get(&mut *state.db.acquire().await?, caller.tenant)
        .await?
        .map(Json)
        .ok_or_else(no_endpoint)
}

/// `DELETE /api/v1/webhook`: no more events; pending deliveries are marked failed.
#[utoipa::path(delete, path = "/api/v1/webhook", tag = TAG_WEBHOOK,
    responses((status = 204, description = "Removed; pending deliveries are marked failed"),
        (status = 401, response = Unauthorized), (status = 403, response = Forbidden), (status = 429, response = RateLimited),
        (status = 404, response = NotFound)))]
pub async fn remove(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<impl IntoResponse, ApiError> {
    caller.require_admin()?;
    if repo::delete(&mut *state.db.acquire().await?, caller.tenant).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(no_endpoint())
    }
}

/// `POST /api/v1/webhook/rotate-secret`: a new secret, shown once; the old one no longer
/// signs anything (retries of earlier events included).
#[utoipa::path(post, path = "/api/v1/webhook/rotate-secret", tag = TAG_WEBHOOK,
    responses((status = 200, description = "The endpoint with its new secret, shown this once", body = repo::Saved),
        (status = 401, response = Unauthorized), (status = 403, response = Forbidden), (status = 429, response = RateLimited),
        (status = 404, response = NotFound)))]
pub async fn rotate_secret(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<impl IntoResponse, ApiError> {
    caller.require_admin()?;
    repo::rotate_secret(&mut *state.db.acquire().await?, caller.tenant)
        .await?
        .map(Json)
        .ok_or_else(no_endpoint)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveriesQuery {
    /// 1 to 200 (default 50).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 200)]
    pub limit: Option<String>,
}

/// `GET /api/v1/webhook/deliveries?limit=` (1–200, default 50): the most recent
/// deliveries, newest first, with their state, attempts and last answer.
#[utoipa::path(get, path = "/api/v1/webhook/deliveries", tag = TAG_WEBHOOK, params(DeliveriesQuery),
    responses((status = 200, description = "Recent deliveries, newest first", body = Vec<repo::Delivery>),
        (status = 401, response = Unauthorized), (status = 403, response = Forbidden), (status = 429, response = RateLimited),
        (status = 422, response = Invalid)))]
pub async fn deliveries(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<DeliveriesQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require_admin()?;
    let Query(q) = query.map_err(|e| ApiError::invalid("invalid_query", e.body_text(), None))?;
    let limit = match q.limit.as_deref().map(str::trim) {
        None => 50,
        Some(raw) => raw
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=200).contains(n))
            .ok_or_else(|| {
                ApiError::invalid(
                    "invalid_field",
                    format!("limit must be a whole number from 1 to 200, not {raw:?}"),
                    Some("limit"),
                )
            })?,
    };
    Ok(Json(
        repo::deliveries(&mut *state.db.acquire().await?, caller.tenant, limit).await?,
    ))
}
