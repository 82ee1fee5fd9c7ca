//! Query strings read into our error shape: a parameter that does not parse gets a 422
//! naming it, where axum's own `Query` answers 400 in plain text.

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::ApiError;

/// The query string as `T` (structs `deny_unknown_fields`, so a misspelt filter is an
/// error rather than silently ignored).
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Query(value) = Query::<T>::from_request_parts(parts, state)
            .await
            .map_err(|e| {
                let text = e.body_text();
                let field = text
                    .split_once('`')
                    .and_then(|(_, rest)| rest.split_once('`'))
                    .map(|(f, _)| f.to_string());
                ApiError::Invalid {
                    code: "invalid_query",
                    message: text,
                    field,
                }
            })?;
        Ok(ApiQuery(value))
    }
}

/// A list's `limit`: absent is `default`, else a whole number from 1 to `max` (422 naming
/// `limit` otherwise).
pub fn page_limit(raw: Option<&str>, default: i64, max: i64) -> Result<i64, ApiError> {
    match raw {
        None => Ok(default),
        Some(raw) => raw
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| {
                ApiError::invalid(
                    "invalid_query",
                    format!("limit {raw:?} is not a number from 1 to {max}"),
                    Some("limit"),
                )
            }),
    }
}

/// A list's `cursor`: the positive id a previous page gave as `next_cursor`.
pub fn page_cursor(raw: Option<&str>) -> Result<Option<i64>, ApiError> {
    raw.map(|raw| {
        raw.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(|| {
            ApiError::invalid(
                "invalid_query",
                format!("cursor {raw:?} is not one this API gave"),
                Some("cursor"),
            )
        })
    })
    .transpose()
}
