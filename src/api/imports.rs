//! Lead uploads and their reports.

use axum::Json;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use tokio::io::AsyncWriteExt;
use uuid::Uuid;

use super::openapi::{Forbidden, Invalid, NotFound, RateLimited, TAG_IMPORTS, Unauthorized};
use super::{ApiError, Caller};
use crate::campaign::CampaignId;
use crate::lead::import::{self, ImportOptions};
use crate::lead::mapping::{self, Field};
use crate::startup::AppState;

/// Rejected rows listed in the JSON report; the CSV download has all of them.
const REPORT_ERRORS: i64 = 1000;

/// `GET /api/v1/leads/template.csv`: the CSV header an import reads, with an example row.
#[utoipa::path(get, path = "/api/v1/leads/template.csv", tag = TAG_IMPORTS, security(()),
    responses((status = 200, description = "A CSV file with the columns an import knows",
        content_type = "text/csv", body = String)))]
pub async fn template() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"leads_template.csv\"",
            ),
        ],
        crate::lead::TEMPLATE_CSV,
    )
}

/// An uploaded file on disk, removed when dropped.
struct Upload {
    path: std::path::PathBuf,
    name: String,
}

impl Drop for Upload {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A body that is not `multipart/form-data` (or has no boundary): 422, in our shape.
pub(super) fn not_multipart(e: MultipartRejection) -> ApiError {
    ApiError::invalid(
        "invalid_upload",
        format!("the body must be multipart/form-data: {}", e.body_text()),
        None,
    )
}

/// Streams the multipart `file` field to a temporary file (memory stays flat for any size)
/// and collects the text fields.
async fn receive(
    mut multipart: Multipart,
) -> Result<(Option<Upload>, Vec<(String, String)>), ApiError> {
    let mut upload = None;
    let mut fields = Vec::new();
    let bad = |e: axum::extract::multipart::MultipartError| {
        ApiError::invalid(
            "invalid_upload",
            format!("the multipart body cannot be read: {e}"),
            None,
        )
    };
    while let Some(mut field) = multipart.next_field().await.map_err(bad)? {
        let name = field.name().unwrap_or_default().to_string();
        if name == "file" {
            let up = Upload {
                path: std::env::temp_dir()
                    .join(format!("dialer-upload-{}.csv", Uuid::new_v4().simple())),
                // Stored as text: no control characters (Postgres refuses NUL).
                name: field
                    .file_name()
                    .unwrap_or("upload.csv")
                    .replace(|c: char| c.is_control(), ""),
            };
            let mut out = tokio::fs::File::create(&up.path).await.map_err(|e| {
                ApiError::Internal(anyhow::anyhow!("creating {}: {e}", up.path.display()))
            })?;
            while let Some(chunk) = field.chunk().await.map_err(bad)? {
                out.write_all(&chunk)
                    .await
                    .map_err(|e| ApiError::Internal(anyhow::anyhow!("writing upload: {e}")))?;
            }
            out.flush()
                .await
                .map_err(|e| ApiError::Internal(e.into()))?;
            upload = Some(up);
        } else {
            let value = field.text().await.map_err(bad)?;
            fields.push((name, value));
        }
    }
    Ok((upload, fields))
}

/// Checks the start of the file and its header before a job is created, so a file that
/// is not CSV is refused at once and leaves nothing behind.
fn precheck(path: &std::path::Path, mappings: &[(String, Field)]) -> Result<(), ApiError> {
    let file = std::fs::File::open(path).map_err(|e| ApiError::Internal(e.into()))?;
    let header = import::open_csv(file).and_then(|mut reader| import::read_header(&mut reader));
    let invalid =
        |e: mapping::FileError| ApiError::invalid("invalid_file", e.to_string(), Some("file"));
    match header {
        Ok(header) => mapping::map_columns(header, mappings)
            .map(|_| ())
            .map_err(invalid),
        Err(import::ImportError::File(e)) => Err(invalid(e)),
        Err(e) => Err(ApiError::Internal(e.into())),
    }
}

/// `POST /api/v1/campaigns/{id}/leads`: multipart with `file`, optional `default_region`
/// and repeatable `map` ("CSV column=field"). Answers 202 with the import's id; the import
/// runs in the background and `GET /api/v1/imports/{id}` follows it.
#[utoipa::path(post, path = "/api/v1/campaigns/{id}/leads", tag = TAG_IMPORTS,
    params(("id" = uuid::Uuid, Path, description = "Campaign id")),
    request_body(content = super::openapi::LeadUpload, content_type = "multipart/form-data"),
    responses((status = 202, description = "The import is queued; follow it at `status_url`", body = ImportQueued),
        (status = 401, response = Unauthorized), (status = 403, response = Forbidden), (status = 429, response = RateLimited),
        (status = 404, response = NotFound),
        (status = 422, response = Invalid)))]
pub async fn upload(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require_manager()?;
    let not_found = || ApiError::NotFound(format!("no campaign {id}"));
    let campaign_id: CampaignId = id.parse().map_err(|_| not_found())?;
    let campaign = crate::campaign::repo::get(
        &mut *state.db.acquire().await?,
        Some(caller.tenant),
        campaign_id,
    )
    .await?
    .ok_or_else(not_found)?;
    let multipart = multipart.map_err(not_multipart)?;
    let (upload, fields) = receive(multipart).await?;
    let upload = upload.ok_or_else(|| {
        ApiError::invalid(
            "missing_file",
            "the multipart field `file` is missing",
            Some("file"),
        )
    })?;
    let raw_maps: Vec<String> = fields
        .iter()
        .filter(|(k, _)| k == "map")
        .map(|(_, v)| v.clone())
        .collect();
    let mappings = mapping::parse_mappings(&raw_maps)
        .map_err(|e| ApiError::invalid("invalid_mapping", e.to_string(), Some("map")))?;
    let default_region = match fields.iter().find(|(k, _)| k == "default_region") {
        Some((_, v)) if !v.trim().is_empty() => {
            Some(crate::phone::Region::parse(v).map_err(|e| {
                ApiError::invalid("invalid_region", e.to_string(), Some("default_region"))
            })?)
        }
        _ => None,
    };
    precheck(&upload.path, &mappings)?;
    let options = serde_json::json!({
        "mappings": raw_maps,
        "default_region": default_region.map(|r| r.to_string()),
        "source": "api",
        "api_key_id": caller.key_id,
    });
    let job = import::create_job(
        &state.db,
        caller.tenant,
        Some(campaign.id.0),
        "leads",
        &upload.name,
        options,
    )
    .await?;
    let db = state.db.clone();
    state.tasks.spawn(async move {
        let file = match std::fs::File::open(&upload.path) {
            Ok(f) => f,
            Err(e) => {
                tracing::error!(import.id = %job, error = %e, "uploaded file vanished");
                return;
            }
        };
        let input = Box::new(std::io::BufReader::with_capacity(1 << 20, file));
        let options = ImportOptions { mappings, default_region };
        match import::import_leads(&db, job, &campaign, input, options, |_| {}).await {
            Ok(r) => tracing::info!(import.id = %job, rows = r.rows, accepted = r.accepted, rejected = r.rejected, "import finished"),
            Err(e) => tracing::warn!(import.id = %job, error = %e, "import failed"),
        }
        drop(upload);
    });
    Ok((
        StatusCode::ACCEPTED,
        Json(ImportQueued {
            import_id: job,
            status: "queued",
            status_url: format!("/api/v1/imports/{job}"),
            errors_url: format!("/api/v1/imports/{job}/errors.csv"),
        }),
    ))
}

/// A lead import just queued.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ImportQueued {
    pub import_id: Uuid,
    /// Always `queued`.
    #[schema(value_type = String, example = "queued")]
    pub status: &'static str,
    pub status_url: String,
    pub errors_url: String,
}

/// The caller's tenant's import `id` with up to `error_limit` rejected rows; 404 for a
/// malformed id and for another tenant's import alike.
async fn find_import(
    state: &AppState,
    caller: &Caller,
    id: &str,
    error_limit: i64,
) -> Result<import::ImportReport, ApiError> {
    caller.require_manager()?;
    let not_found = || ApiError::NotFound(format!("no import {id}"));
    let job = Uuid::parse_str(id).map_err(|_| not_found())?;
    import::report(&state.db, caller.tenant, job, Some(error_limit))
        .await?
        .ok_or_else(not_found)
}

/// `GET /api/v1/imports/{id}`: status, counts by reason, and the first rejected rows.
#[utoipa::path(get, path = "/api/v1/imports/{id}", tag = TAG_IMPORTS,
    params(("id" = uuid::Uuid, Path, description = "Import id")),
    responses((status = 200, description = "The import's status and counts, with its first 1000 rejected rows", body = import::ImportReport),
        (status = 401, response = Unauthorized), (status = 403, response = Forbidden), (status = 429, response = RateLimited),
        (status = 404, response = NotFound)))]
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(
        find_import(&state, &caller, &id, REPORT_ERRORS).await?,
    ))
}

/// `GET /api/v1/imports/{id}/errors.csv`: every rejected row.
#[utoipa::path(get, path = "/api/v1/imports/{id}/errors.csv", tag = TAG_IMPORTS,
    params(("id" = uuid::Uuid, Path, description = "Import id")),
    responses((status = 200, description = "Every rejected row: row, column, value, code, reason",
            content_type = "text/csv", body = String),
        (status = 401, response = Unauthorized), (status = 403, response = Forbidden), (status = 429, response = RateLimited),
        (status = 404, response = NotFound)))]
pub async fn errors_csv(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let job = find_import(&state, &caller, &id, 0).await?.import_id;
    let errors = import::errors(&state.db, caller.tenant, job, None).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"import-{job}-errors.csv\""),
            ),
        ],
        import::errors_csv(&errors),
    ))
}
