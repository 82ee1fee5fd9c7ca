//! The tenant's do-not-call list.

use axum::Json;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;

use super::{ApiError, Caller};
use crate::dnc::{self, repo};
use crate::phone::{PhoneNumber, Region};
use crate::startup::AppState;

#[derive(Debug, Deserialize)]
pub struct RegionQuery {
    /// Region for a national number (ISO 3166 alpha-2, default US); +CC numbers need none.
    pub region: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    pub limit: Option<i64>,
}

#[derive(Debug, Deserialize)]
pub struct AddBody {
    pub phone: String,
    pub region: Option<String>,
    pub reason: Option<String>,
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

pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require_manager()?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    Ok(Json(
        repo::list(&mut *state.db.acquire().await?, Some(caller.tenant), limit).await?,
    ))
}

pub async fn add(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<AddBody>,
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
        Json(serde_json::json!({ "phone": n, "added": added == 1 })),
    ))
}

pub async fn check(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
    Query(q): Query<RegionQuery>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require_manager()?;
    let n = number(&raw, q.region.as_deref())?;
    let entries = repo::check(&mut *state.db.acquire().await?, caller.tenant, &n).await?;
    Ok(Json(
        serde_json::json!({ "phone": n, "dialable": entries.is_empty(), "entries": entries }),
    ))
}

pub async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
    Query(q): Query<RegionQuery>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require_manager()?;
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
pub async fn import(
    State(state): State<AppState>,
    caller: Caller,
    mut multipart: Multipart,
) -> Result<impl IntoResponse, ApiError> {
    caller.require_manager()?;
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
