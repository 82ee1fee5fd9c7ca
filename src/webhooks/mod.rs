//! Carrier webhooks under `/twilio/…`: every request's X-Twilio-Signature is checked on the
//! raw body before anything parses it ([`verify_signature`]); then each callback is stored
//! as a call event and applied idempotently (see [`crate::call`]).
//!
//! URLs carry our call id (`/twilio/calls/{id}/…`), so a callback that outruns the
//! carrier's create-call response still finds its call.

pub mod docs;
mod handlers;

use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use secrecy::ExposeSecret;
use serde_json::{Map, Value};

use crate::startup::AppState;
use crate::telephony::signature;

/// Status callbacks' group commit: see [`status_writer`].
pub type StatusWriter = crate::batch::Batcher<
    (crate::call::CallId, crate::call::StatusUpdate, Value),
    Result<crate::call::Applied, std::sync::Arc<sqlx::Error>>,
>;

/// Most status callbacks stored by one statement.
const STATUS_BATCH: usize = 64;
/// Status batches running at once. One would do for throughput (a batch of 64 takes a
/// few ms); two keep callbacks moving while one batch waits on a row lock.
const STATUS_BATCHES_IN_FLIGHT: usize = 2;

/// Stores status callbacks in batches on the webhook pool, each batch whatever arrived
/// while the previous ones ran. A lone callback is stored at once; under a burst, one
/// statement and one commit serve many (measured: 2,000 callbacks/s went from saturating
/// the 2-core machine to about 60 % of it).
pub fn status_writer(pool: sqlx::PgPool) -> StatusWriter {
    crate::batch::Batcher::spawn(
        STATUS_BATCH,
        STATUS_BATCHES_IN_FLIGHT,
        move |items: Vec<_>| {
            let pool = pool.clone();
            async move {
                let refs: Vec<_> = items.iter().map(|(id, u, p)| (*id, u, p)).collect();
                match crate::call::repo::record_statuses(&pool, &refs).await {
                    Ok(applied) => applied.into_iter().map(Ok).collect(),
                    Err(e) => {
                        let e = std::sync::Arc::new(e);
                        items.iter().map(|_| Err(e.clone())).collect()
                    }
                }
            }
        },
    )
}

/// Largest callback body accepted; Twilio's are a few hundred bytes.
const MAX_CALLBACK_BYTES: usize = 64 * 1024;

pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/twilio/calls/{id}/status", post(handlers::status))
        .route("/twilio/calls/{id}/amd", post(handlers::amd))
        .route("/twilio/calls/{id}/voice", post(handlers::voice))
        .route("/twilio/calls/{id}/voicemail", post(handlers::voicemail))
        .route("/twilio/calls/{id}/abandon", post(handlers::abandon))
        .route("/twilio/calls/{id}/conference", post(handlers::conference))
        .route("/twilio/calls/{id}/recording", post(handlers::recording))
        .route(
            "/twilio/calls/{id}/abandon/optout",
            post(handlers::abandon_optout),
        )
        .route(
            "/twilio/calls/{id}/offers/{offer}/whisper",
            post(handlers::agent_whisper),
        )
        .route(
            "/twilio/calls/{id}/offers/{offer}/accept",
            post(handlers::agent_accept),
        )
        .route(
            "/twilio/calls/{id}/offers/{offer}/status",
            post(handlers::agent_status),
        )
        .route_layer(middleware::from_fn_with_state(state, verify_signature))
}

/// A callback's parameters, decoded once by [`verify_signature`] after the signature held.
#[derive(Debug, Clone, Default)]
pub struct TwilioParams(pub Vec<(String, String)>);

impl TwilioParams {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn get_i32(&self, name: &str) -> Option<i32> {
        self.get(name).and_then(|v| v.trim().parse().ok())
    }

    /// The parameters as a JSON object, as stored in `call_events.payload`; a repeated
    /// key becomes an array of its values.
    pub fn to_json(&self) -> Value {
        let mut map = Map::new();
        for (k, v) in &self.0 {
            match map.get_mut(k) {
                None => {
                    map.insert(k.clone(), Value::String(v.clone()));
                }
                Some(Value::Array(a)) => a.push(Value::String(v.clone())),
                Some(prev) => {
                    let first = prev.take();
                    *prev = Value::Array(vec![first, Value::String(v.clone())]);
                }
            }
        }
        Value::Object(map)
    }
}

/// The URL the carrier signed: the configured public base URL (the daemon usually sits
/// behind a proxy) followed by the path and query as received.
pub fn signed_url(public_url: &str, path_and_query: &str) -> String {
    format!("{}{}", public_url.trim_end_matches('/'), path_and_query)
}

/// Rejects with 403, before any handler runs, every request whose X-Twilio-Signature is
/// missing or is not the carrier's for this URL and body.
pub async fn verify_signature(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let (mut parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_CALLBACK_BYTES).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "callback body too large").into_response();
    };
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let url = signed_url(&state.settings.http.public_url, path_and_query);
    let provided = parts
        .headers
        .get("x-twilio-signature")
        .and_then(|v| v.to_str().ok());
    let Some(token) = state.settings.twilio.auth_token.as_ref() else {
        tracing::warn!(%url, "webhook refused: twilio.auth_token is not set, so no signature can be checked");
        return forbidden(started);
    };
    let Some(provided) = provided else {
        tracing::warn!(%url, "webhook refused: no X-Twilio-Signature");
        return forbidden(started);
    };
    let token = token.expose_secret().as_bytes();
    let is_form = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    let params: Vec<(String, String)> = if is_form {
        url::form_urlencoded::parse(&bytes).into_owned().collect()
    } else {
        Vec::new()
    };
    let valid = if url.contains("bodySHA256=") && !is_form {
        signature::validate_body(token, &url, &bytes, provided)
    } else {
        signature::validate(token, &url, &params, provided)
    };
    if !valid {
        tracing::warn!(%url, "webhook refused: X-Twilio-Signature does not match");
        return forbidden(started);
    }
    parts.extensions.insert(TwilioParams(params));
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

fn forbidden(started: Instant) -> Response {
    metrics::counter!("dialer_webhooks_total", "kind" => "any", "outcome" => "forbidden")
        .increment(1);
    metrics::histogram!("dialer_webhook_duration_seconds", "kind" => "forbidden")
        .record(started.elapsed().as_secs_f64());
    (StatusCode::FORBIDDEN, "invalid X-Twilio-Signature").into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_parameters_become_arrays_in_the_stored_payload() {
        let p = TwilioParams(vec![
            ("CallSid".into(), "CA1".into()),
            ("Event".into(), "a".into()),
            ("Event".into(), "b".into()),
            ("Event".into(), "c".into()),
        ]);
        assert_eq!(
            p.to_json(),
            serde_json::json!({"CallSid": "CA1", "Event": ["a", "b", "c"]})
        );
    }

    #[test]
    fn signed_url_joins_base_and_path_once() {
        assert_eq!(
            signed_url("https://d.example.com/", "/twilio/calls/1/status?x=1"),
            "https://d.example.com/twilio/calls/1/status?x=1"
        );
        assert_eq!(
            signed_url("https://d.example.com", "/a"),
            "https://d.example.com/a"
        );
    }
}
