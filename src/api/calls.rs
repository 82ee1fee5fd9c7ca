//! Calls under `/api/v1/calls`: the list (filters, cursor pagination), one call with its
//! event timeline and offers, and the agent's wrap-up (disposition). An agent key sees
//! only the calls it took.

use axum::Json;
use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::body::JsonBody;
use super::reports::{Params, filter};
use super::{ApiError, Caller};
use crate::call::CallId;
use crate::engine::wrapup::{self, WrapUp, WrapUpError, WrappedUp};
use crate::report::export;
use crate::startup::AppState;

/// Notes longer than this are refused rather than cut.
const MAX_NOTES: usize = 4000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DispositionBody {
    pub disposition: String,
    /// For `callback`: when the person asked to be called (RFC 3339).
    pub callback_at: Option<DateTime<Utc>>,
    /// For `callback`: offer the call-back to the agent who took this call first.
    #[serde(default)]
    pub same_agent: bool,
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

#[derive(Debug, Serialize)]
pub struct CallList {
    pub calls: Vec<export::Row>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// `GET /api/v1/calls?campaign&from&to&disposition&agent&phone&limit&cursor`, newest first.
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
    let limit = match p.get("limit") {
        None => 100,
        Some(raw) => raw
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| {
                ApiError::invalid(
                    "invalid_query",
                    format!("limit {raw:?} is not a number from 1 to 1000"),
                    Some("limit"),
                )
            })?,
    };
    let before = match p.get("cursor") {
        None => None,
        Some(raw) => Some(raw.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(|| {
            ApiError::invalid(
                "invalid_query",
                format!("cursor {raw:?} is not one this API gave"),
                Some("cursor"),
            )
        })?),
    };
    let calls = export::page(&state.db, caller.tenant, &f, before, limit).await?;
    let next_cursor = (calls.len() as i64 == limit)
        .then(|| calls.last().map(|c| c.call_id.to_string()))
        .flatten();
    Ok(Json(CallList { calls, next_cursor }))
}

#[derive(Debug, Serialize)]
pub struct CallDetail {
    #[serde(flatten)]
    pub call: export::Row,
    pub recording_sid: Option<String>,
    /// Every carrier callback as received, oldest first.
    pub events: Vec<CallEvent>,
    /// The agents this call was offered to, and how each offer ended.
    pub offers: Vec<Offer>,
}

#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct CallEvent {
    pub kind: String,
    pub received_at: DateTime<Utc>,
    pub payload: serde_json::Value,
}

#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct Offer {
    pub agent_id: uuid::Uuid,
    pub state: String,
    pub offered_at: DateTime<Utc>,
    pub answered_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
}

/// `GET /api/v1/calls/{id}`: the call, its event timeline, its offers, its recording.
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
