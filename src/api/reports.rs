//! Reports and the calls export (managers and admins).

use std::collections::HashMap;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::openapi::{Forbidden, Invalid, NotFound, RateLimited, TAG_REPORTS, Unauthorized};
use super::{ApiError, Caller};
use crate::campaign::CampaignId;
use crate::phone::Region;
use crate::report::{self, export};
use crate::startup::AppState;

/// `GET /api/v1/campaigns/{id}/report`
#[utoipa::path(get, path = "/api/v1/campaigns/{id}/report", tag = TAG_REPORTS,
    params(("id" = uuid::Uuid, Path, description = "Campaign id")),
    responses((status = 200, description = "The campaign's figures since its start and over the last 30 days", body = report::CampaignReport),
        (status = 401, response = Unauthorized), (status = 403, response = Forbidden), (status = 429, response = RateLimited),
        (status = 404, response = NotFound)))]
pub async fn campaign(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<report::CampaignReport>, ApiError> {
    caller.require_manager()?;
    let id: CampaignId = id
        .parse()
        .map_err(|_| ApiError::NotFound(format!("no campaign {id}")))?;
    report::campaign(&state.db, Some(caller.tenant), id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no campaign {id}")))
}

/// `GET /api/v1/agents/{id}/report?since=`
#[utoipa::path(get, path = "/api/v1/agents/{id}/report", tag = TAG_REPORTS,
    params(("id" = uuid::Uuid, Path, description = "Agent id"),
        ("since" = Option<DateTime<Utc>>, Query, description = "Only calls and offers from this time on (RFC 3339)")),
    responses((status = 200, description = "The agent's figures", body = report::AgentReport),
        (status = 401, response = Unauthorized), (status = 403, response = Forbidden), (status = 429, response = RateLimited),
        (status = 404, response = NotFound),
        (status = 422, response = Invalid)))]
pub async fn agent(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<report::AgentReport>, ApiError> {
    caller.require_manager()?;
    let agent =
        Uuid::parse_str(id.trim()).map_err(|_| ApiError::NotFound(format!("no agent {id}")))?;
    let params = Params(&q);
    params.only(&["since"])?;
    let since = params.time("since")?;
    report::agent(&state.db, caller.tenant, agent, since)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no agent {id}")))
}

/// `GET /api/v1/calls/export?format=csv|json&campaign=&from=&to=&disposition=&agent=&phone=`
#[utoipa::path(get, path = "/api/v1/calls/export", tag = TAG_REPORTS,
    params(ExportParams, CallFilterParams),
    description = "Every call attempt matching the filters, oldest first, streamed. In the CSV, cells a spreadsheet would run as a formula are prefixed with `'`.",
    responses((status = 200, description = "The calls, as CSV (the default) or a JSON array",
            content((String = "text/csv"), (Vec<export::Row> = "application/json")),
            headers(("Content-Disposition" = String, description = "attachment; filename=\"calls.csv\" or \"calls.json\""))),
        (status = 401, response = Unauthorized), (status = 403, response = Forbidden), (status = 429, response = RateLimited),
        (status = 422, response = Invalid)))]
pub async fn calls(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    caller.require_manager()?;
    let p = Params(&q);
    p.only(&[
        "format",
        "campaign",
        "from",
        "to",
        "disposition",
        "agent",
        "phone",
    ])?;
    let format = match p.get("format").unwrap_or("csv") {
        "csv" => export::Format::Csv,
        "json" => export::Format::Json,
        other => {
            return Err(ApiError::invalid(
                "invalid_query",
                format!("format {other:?} is not csv or json"),
                Some("format"),
            ));
        }
    };
    let filter = filter(&p)?;
    let chunks = export::stream(state.db.clone(), caller.tenant, filter, format);
    let body = Body::from_stream(futures::stream::unfold(chunks, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    }));
    let (content_type, name) = match format {
        export::Format::Csv => ("text/csv; charset=utf-8", "calls.csv"),
        export::Format::Json => ("application/json", "calls.json"),
    };
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        body,
    )
        .into_response())
}

/// The export's `format` parameter.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // Documents the query parameter the handler reads by name.
pub struct ExportParams {
    /// `csv` (the default) or `json`.
    #[param(inline)]
    format: Option<ExportFormat>,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
#[schema(rename_all = "snake_case")]
pub enum ExportFormat {
    Csv,
    Json,
}

/// The calls filter's query parameters, as [`filter`] reads them.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // Documents the query parameters the handler reads by name.
pub struct CallFilterParams {
    /// Only this campaign's calls.
    campaign: Option<Uuid>,
    /// Only calls created at or after this time (RFC 3339).
    from: Option<DateTime<Utc>>,
    /// Only calls created before this time (RFC 3339).
    to: Option<DateTime<Utc>>,
    /// Only calls with this disposition (the engine's or the agent's).
    disposition: Option<String>,
    /// Only calls this agent took.
    agent: Option<Uuid>,
    /// Only calls to this number (international, or national US).
    phone: Option<String>,
}

/// The calls filter from `campaign`, `from`, `to`, `disposition`, `agent`, `phone`.
pub(crate) fn filter(p: &Params) -> Result<export::Filter, ApiError> {
    let phone = match p.get("phone") {
        None => None,
        Some(raw) => Some(
            crate::dnc::normalise(raw, Some(Region::parse("US").expect("US is a region")))
                .map_err(|m| ApiError::invalid("invalid_query", m, Some("phone")))?
                .to_string(),
        ),
    };
    Ok(export::Filter {
        campaign: p.uuid("campaign")?,
        from: p.time("from")?,
        to: p.time("to")?,
        disposition: p.get("disposition").map(str::to_string),
        agent: p.uuid("agent")?,
        phone,
    })
}

/// Query parameters, each checked with an error naming it.
pub(crate) struct Params<'a>(pub(crate) &'a HashMap<String, String>);

impl Params<'_> {
    pub(crate) fn only(&self, known: &[&str]) -> Result<(), ApiError> {
        match self.0.keys().find(|k| !known.contains(&k.as_str())) {
            Some(k) => Err(ApiError::invalid(
                "invalid_query",
                format!("unknown query parameter {k:?}; known: {}", known.join(", ")),
                Some(k),
            )),
            None => Ok(()),
        }
    }

    /// The parameter's value, trimmed. An empty value is a value (and refused where it
    /// does not parse), not an absent parameter.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(|v| v.trim())
    }

    pub(crate) fn uuid(&self, name: &str) -> Result<Option<Uuid>, ApiError> {
        self.get(name)
            .map(|v| {
                Uuid::parse_str(v).map_err(|_| {
                    ApiError::invalid(
                        "invalid_query",
                        format!("{name} {v:?} is not an id (a UUID)"),
                        Some(name),
                    )
                })
            })
            .transpose()
    }

    pub(crate) fn time(&self, name: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
        self.get(name)
            .map(|v| {
                DateTime::parse_from_rfc3339(v)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|_| {
                        ApiError::invalid(
                            "invalid_query",
                            format!("{name} {v:?} is not an RFC 3339 time (2027-06-02T15:00:00Z)"),
                            Some(name),
                        )
                    })
            })
            .transpose()
    }
}
