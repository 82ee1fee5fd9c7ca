//! The tenant's do-not-call list.

use axum::Json;
use axum::extract::multipart::MultipartRejection;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;

use super::body::JsonBody;
use super::openapi::{Forbidden, Invalid, NotFound, RateLimited, TAG_DNC, Unauthorized};
use super::{ApiError, Caller};
use crate::dnc::{self, DncEntry, DncImportReport, repo};
use crate::phone::{PhoneNumber, Region};
use crate::startup::AppState;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RegionQuery {
    /// Region for a national number (ISO 3166 alpha-2, default US); +CC numbers need none.
    pub region: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// At most this many entries, newest first (default 100; clamped to 1–1000).
    pub limit: Option<i64>,
}

/// A number to put on the tenant's list.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct AddBody {
    /// International (+CC…) or national in `region`.
    pub phone: String,
    /// ISO 3166 alpha-2 region for a national number (default US).
    pub region: Option<String>,
    pub reason: Option<String>,
}

/// A number just put on the list (or already there).
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Added {
    /// The number in E.164 form.
    #[schema(value_type = String)]
    pub phone: PhoneNumber,
    /// False when it was on the list already.
    pub added: bool,
}

/// Whether the tenant may dial a number, and the entries that stop it.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Check {
    #[schema(value_type = String)]
    pub phone: PhoneNumber,
    pub dialable: bool,
    pub entries: Vec<DncEntry>,
}

fn invalid_query(e: QueryRejection) -> ApiError {
    ApiError::invalid("invalid_query", e.body_text(), None)
}

fn region(raw: Option<&str>) -> Result<Option<Region>, ApiError> {
    raw.filter(|r| !r.trim().is_empty())
        .map(|r| {
            Region::parse(r)
                .map_err(|e| ApiError::invalid("invalid_region", e.to_string(), Some("region")))
        })
        .transpose()
}

/// National numbers are read as US numbers unless a region is given.
fn number(raw: &str, region_raw: Option<&str>) -> Result<PhoneNumber, ApiError> {
    let region =
        region(region_raw)?.unwrap_or_else(|| Region::parse("US").expect("US is a region"));
    dnc::normalise(raw, Some(region))
        .map_err(|m| ApiError::invalid("invalid_phone", m, Some("phone")))
}

/// `GET /api/v1/dnc`: the tenant's own list, newest first.
#[utoipa::path(get, path = "/api/v1/dnc", tag = TAG_DNC, params(ListQuery),
    responses((status = 200, description = "The tenant's entries, newest first", body = Vec<DncEntry>),
        (status = 401, response = Unauthorized), (status = 403, response = Forbidden), (status = 429, response = RateLimited),
        (status = 422, response = Invalid)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require_manager()?;
    let Query(q) = query.map_err(invalid_query)?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    Ok(Json(
        repo::list(&mut *state.db.acquire().await?, Some(caller.tenant), limit).await?,
    ))
}

/// `POST /api/v1/dnc`: puts a number on the tenant's list.
#[utoipa::path(post, path = "/api/v1/dnc", tag = TAG_DNC, request_body = AddBody,
    responses((status = 201, description = "Added", body = Added),
        (status = 200, description = "It was on the list already", body = Added),
        (status = 401, response = Unauthorized), (status = 403, response = Forbidden), (status = 429, response = RateLimited),
        (status = 422, response = Invalid)))]
pub async fn add(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<AddBody>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require_manager()?;
    let n = number(&body.phone, body.region.as_deref())?;
    let added = repo::add_many(
        &mut *state.db.acquire().await?,
        Some(caller.tenant),
        &[n.to_string()],
        "api",
        body.reason.as_deref(),
    )
    .await?;
    let status = if added == 1 {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(Added {
            phone: n,
            added: added == 1,
        }),
    ))
}

/// `GET /api/v1/dnc/{number}`: may the tenant dial this number?
#[utoipa::path(get, path = "/api/v1/dnc/{number}", tag = TAG_DNC,
    params(("number" = String, Path, description = "International (+CC…, URL-encoded) or national in `region`"), RegionQuery),
    responses((status = 200, description = "Whether the number may be dialed", body = Check),
        (status = 401, response = Unauthorized), (status = 403, response = Forbidden), (status = 429, response = RateLimited),
        (status = 422, response = Invalid)))]
pub async fn check(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
    query: Result<Query<RegionQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require_manager()?;
    let Query(q) = query.map_err(invalid_query)?;
    let n = number(&raw, q.region.as_deref())?;
    let entries = repo::check(&mut *state.db.acquire().await?, caller.tenant, &n).await?;
    Ok(Json(Check {
        phone: n,
        dialable: entries.is_empty(),
        entries,
    }))
}

/// `DELETE /api/v1/dnc/{number}`: takes a number off the tenant's list.
#[utoipa::path(delete, path = "/api/v1/dnc/{number}", tag = TAG_DNC,
    params(("number" = String, Path, description = "International (+CC…, URL-encoded) or national in `region`"), RegionQuery),
    responses((status = 204, description = "Removed"),
        (status = 401, response = Unauthorized), (status = 403, response = Forbidden), (status = 429, response = RateLimited),
        (status = 404, response = NotFound),
        (status = 422, response = Invalid)))]
pub async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
    query: Result<Query<RegionQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require_manager()?;
    let Query(q) = query.map_err(invalid_query)?;
    let n = number(&raw, q.region.as_deref())?;
    if repo::remove(&mut *state.db.acquire().await?, Some(caller.tenant), &n).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!(
            "{n} is not on the tenant's do-not-call list"
        )))
    }
}

/// `POST /api/v1/dnc/import`: multipart `file` (CSV with a phone column, or one number per
/// line) and optional `region`; answers with the report.
#[utoipa::path(post, path = "/api/v1/dnc/import", tag = TAG_DNC,
    request_body(content = super::openapi::DncUpload, content_type = "multipart/form-data"),
    responses((status = 200, description = "What the import did", body = DncImportReport),
        (status = 401, response = Unauthorized), (status = 403, response = Forbidden), (status = 429, response = RateLimited),
        (status = 422, response = Invalid)))]
pub async fn import(
    State(state): State<AppState>,
    caller: Caller,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require_manager()?;
    let mut multipart = multipart.map_err(super::imports::not_multipart)?;
    let mut bytes = None;
    let mut region_raw = None;
    let bad = |e: axum::extract::multipart::MultipartError| {
        ApiError::invalid("invalid_upload", e.to_string(), None)
    };
    while let Some(field) = multipart.next_field().await.map_err(bad)? {
        match field.name() {
            Some("file") => bytes = Some(field.bytes().await.map_err(bad)?),
            Some("region") => region_raw = Some(field.text().await.map_err(bad)?),
            _ => {}
        }
    }
    let bytes = bytes.ok_or_else(|| {
        ApiError::invalid(
            "missing_file",
            "the multipart field `file` is missing",
            Some("file"),
        )
    })?;
    let region = region(region_raw.as_deref())?
        .unwrap_or_else(|| Region::parse("US").expect("US is a region"));
    let report = dnc::import_file(&state.db, Some(caller.tenant), &bytes[..], region)
        .await
        .map_err(|e| match e {
            crate::lead::import::ImportError::Db(e) => ApiError::from(e),
            other => ApiError::invalid("invalid_file", other.to_string(), Some("file")),
        })?;
    Ok(Json(report))
}
