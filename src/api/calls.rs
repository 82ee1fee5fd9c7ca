//! Calls under `/api/v1/calls`: the list (filters, cursor pagination), one call with its
//! event timeline and offers, and the agent's wrap-up (disposition). An agent key sees
//! only the calls it took.

use axum::Json;
use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::body::JsonBody;
use super::openapi::{Conflict, Invalid, NotFound, RateLimited, TAG_CALLS, Unauthorized};
use super::query::{page_cursor, page_limit};
use super::reports::{CallFilterParams, Params, filter};
use super::{ApiError, Caller};
use crate::call::CallId;
use crate::engine::wrapup::{self, WrapUp, WrapUpError, WrappedUp};
use crate::report::export;
use crate::startup::AppState;

/// Notes longer than this are refused rather than cut.
const MAX_NOTES: usize = 4000;

/// How the call went, in the agent's words.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DispositionBody {
    /// One of the campaign's wrap-up codes (`sale`, `callback`, `not_interested`,
    /// `do_not_call` …).
    pub disposition: String,
    /// For `callback`: when the person asked to be called (RFC 3339).
    pub callback_at: Option<DateTime<Utc>>,
    /// For `callback`: offer the call-back to the agent who took this call first.
    #[serde(default)]
    pub same_agent: bool,
    #[schema(max_length = 4000)]
    pub notes: Option<String>,
}

fn parse_id(raw: &str) -> Result<CallId, ApiError> {
    raw.trim()
        .parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .map(CallId)
        .ok_or_else(|| ApiError::NotFound(format!("no call {raw}")))
}

/// A page of calls, plus the query parameter `limit` and `cursor`.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // Documents the query parameters the handler reads by name.
pub struct PageParams {
    /// Calls per page (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    #[param(minimum = 1)]
    cursor: Option<i64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CallList {
    pub calls: Vec<export::Row>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// `GET /api/v1/calls?campaign&from&to&disposition&agent&phone&limit&cursor`, newest first.
#[utoipa::path(get, path = "/api/v1/calls", tag = TAG_CALLS, params(CallFilterParams, PageParams),
    description = "Calls, newest first, in pages. An agent's key lists only the calls that agent took.",
    responses((status = 200, description = "A page of calls", body = CallList),
        (status = 401, response = Unauthorized), (status = 429, response = RateLimited),
        (status = 422, response = Invalid)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<CallList>, ApiError> {
    let p = Params(&q);
    p.only(&[
        "campaign",
        "from",
        "to",
        "disposition",
        "agent",
        "phone",
        "limit",
        "cursor",
    ])?;
    let mut f = filter(&p)?;
    if let Some(own) = caller.agent {
        if f.agent.is_some_and(|a| a != own) {
            return Ok(Json(CallList {
                calls: vec![],
                next_cursor: None,
            }));
        }
        f.agent = Some(own);
    }
    let limit = page_limit(p.get("limit"), 100, 1000)?;
    let before = page_cursor(p.get("cursor"))?;
    let calls = export::page(&state.db, caller.tenant, &f, before, limit).await?;
    let next_cursor = (calls.len() as i64 == limit)
        .then(|| calls.last().map(|c| c.call_id.to_string()))
        .flatten();
    Ok(Json(CallList { calls, next_cursor }))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CallDetail {
    #[serde(flatten)]
    pub call: export::Row,
    #[schema(required = true)]
    pub recording_sid: Option<String>,
    /// Every carrier callback as received, oldest first.
    pub events: Vec<CallEvent>,
    /// The agents this call was offered to, and how each offer ended.
    pub offers: Vec<Offer>,
}

#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct CallEvent {
    pub kind: String,
    pub received_at: DateTime<Utc>,
    /// The callback's parameters as the carrier sent them.
    #[schema(value_type = Value)]
    pub payload: serde_json::Value,
}

#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Offer {
    pub agent_id: uuid::Uuid,
    pub state: String,
    pub offered_at: DateTime<Utc>,
    #[schema(required = true)]
    pub answered_at: Option<DateTime<Utc>>,
    #[schema(required = true)]
    pub ended_at: Option<DateTime<Utc>>,
}

/// `GET /api/v1/calls/{id}`: the call, its event timeline, its offers, its recording.
#[utoipa::path(get, path = "/api/v1/calls/{id}", tag = TAG_CALLS,
    params(("id" = i64, Path, minimum = 1, description = "Call id")),
    responses((status = 200, description = "The call with its events and offers", body = CallDetail),
        (status = 401, response = Unauthorized), (status = 429, response = RateLimited),
        (status = 404, response = NotFound)))]
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
) -> Result<Json<CallDetail>, ApiError> {
    let id = parse_id(&raw)?;
    let f = export::Filter {
        agent: caller.agent,
        ..Default::default()
    };
    let call = export::one(&state.db, caller.tenant, &f, id.0)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no call {id}")))?;
    let recording_sid: Option<String> =
        sqlx::query_scalar("SELECT recording_sid FROM calls WHERE id = $1")
            .bind(id)
            .fetch_one(&state.db)
            .await?;
    let events: Vec<CallEvent> = sqlx::query_as(
        "SELECT kind, received_at, payload FROM call_events WHERE call_id = $1 ORDER BY received_at, id",
    )
    .bind(id)
    .fetch_all(&state.db)
    .await?;
    let offers: Vec<Offer> = sqlx::query_as(
        "SELECT agent_id, state, offered_at, answered_at, ended_at FROM agent_offers
          WHERE call_id = $1 ORDER BY offered_at, id",
    )
    .bind(id)
    .fetch_all(&state.db)
    .await?;
    Ok(Json(CallDetail {
        call,
        recording_sid,
        events,
        offers,
    }))
}

/// `POST /api/v1/calls/{id}/disposition`: the agent who took the call (their own API
/// key), or a manager on their behalf, says how it went; the agent is then available.
#[utoipa::path(post, path = "/api/v1/calls/{id}/disposition", tag = TAG_CALLS,
    params(("id" = i64, Path, minimum = 1, description = "Call id")),
    request_body = DispositionBody,
    responses((status = 200, description = "The wrap-up as recorded", body = WrappedUp),
        (status = 401, response = Unauthorized), (status = 429, response = RateLimited),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 422, response = Invalid)))]
pub async fn disposition(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
    JsonBody(b): JsonBody<DispositionBody>,
) -> Result<Json<WrappedUp>, ApiError> {
    let by_agent = match caller.agent {
        Some(agent) => Some(agent),
        None => {
            caller.require_manager()?;
            None
        }
    };
    let id = parse_id(&raw)?;
    if b.callback_at.is_some() && b.disposition.trim() != "callback" {
        return Err(ApiError::invalid(
            "invalid_field",
            format!(
                "callback_at only goes with the disposition \"callback\", not {:?}",
                b.disposition
            ),
            Some("callback_at"),
        ));
    }
    if let Some(n) = &b.notes
        && n.chars().count() > MAX_NOTES
    {
        return Err(ApiError::invalid(
            "invalid_field",
            format!(
                "notes are {} characters long; at most {MAX_NOTES}",
                n.chars().count()
            ),
            Some("notes"),
        ));
    }
    let w = WrapUp {
        disposition: b.disposition,
        callback_at: b.callback_at,
        same_agent: b.same_agent,
        notes: b.notes.filter(|n| !n.trim().is_empty()),
    };
    match wrapup::wrap_up(&state, caller.tenant, id, by_agent, &w).await {
        Ok(done) => Ok(Json(done)),
        // An agent learns nothing of calls that are not theirs.
        Err(WrapUpError::NotFound | WrapUpError::NotYours) => {
            Err(ApiError::NotFound(format!("no call {id}")))
        }
        Err(e @ WrapUpError::AlreadyGiven(_)) => Err(ApiError::Conflict {
            code: "disposition_given",
            message: e.to_string(),
        }),
        Err(WrapUpError::Invalid { field, message }) => {
            Err(ApiError::invalid("invalid_field", message, Some(field)))
        }
        Err(WrapUpError::Database(e)) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_ids_are_positive_integers() {
        assert_eq!(parse_id("42").unwrap(), CallId(42));
        assert!(parse_id("0").is_err());
        assert!(parse_id("abc").is_err());
        assert!(parse_id("-3").is_err());
    }
}
