//! Calls under `/api/v1/calls/{id}/…`: the agent's wrap-up (disposition) so far.

use axum::Json;
use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::body::JsonBody;
use super::{ApiError, Caller};
use crate::call::CallId;
use crate::engine::wrapup::{self, WrapUp, WrapUpError, WrappedUp};
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
