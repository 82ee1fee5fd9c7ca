//! Reports and the calls export (managers and admins).

use std::collections::HashMap;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{ApiError, Caller};
use crate::campaign::CampaignId;
use crate::phone::Region;
use crate::report::{self, export};
use crate::startup::AppState;

/// `GET /api/v1/campaigns/{id}/report`
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

    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
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
