//! One handler per callback. Each stores the callback as a call event first; a repeat is
//! answered like the original and changes nothing.

use std::sync::Arc;
use std::time::Instant;

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};

use super::TwilioParams;
use super::docs;
use crate::call::{self, Applied, CallId, RecordingUpdate, StatusUpdate};
use crate::campaign;
use crate::startup::AppState;
use crate::telephony::twiml::VoiceResponse;
use crate::telephony::{AnsweredBy, CallSid, CallStatus, RecordingStatus};

/// The carrier's `Timestamp` (RFC 2822), or now.
fn timestamp(p: &TwilioParams) -> DateTime<Utc> {
    p.get("Timestamp")
        .and_then(|t| DateTime::parse_from_rfc2822(t).ok())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(Utc::now)
}

fn observe<E: std::fmt::Display>(
    kind: &'static str,
    started: Instant,
    outcome: Result<Applied, E>,
) -> Response {
    let (status, label) = match &outcome {
        Ok(Applied::UnknownCall) => (StatusCode::NOT_FOUND, "unknown_call"),
        Ok(a) => (StatusCode::NO_CONTENT, a.as_str()),
        Err(e) => {
            tracing::error!(error = %e, kind, "webhook could not be stored");
            (StatusCode::INTERNAL_SERVER_ERROR, "error")
        }
    };
    metrics::counter!("dialer_webhooks_total", "kind" => kind, "outcome" => label).increment(1);
    metrics::histogram!("dialer_webhook_duration_seconds", "kind" => kind)
        .record(started.elapsed().as_secs_f64());
    status.into_response()
}

/// The callback names a call (or a part of one) this service does not know.
fn unknown_call(kind: &'static str, started: Instant) -> Response {
    observe(kind, started, Ok::<_, sqlx::Error>(Applied::UnknownCall))
}

fn bad_request(what: &str) -> Response {
    (StatusCode::BAD_REQUEST, format!("callback without {what}")).into_response()
}

fn twiml_response(r: &VoiceResponse) -> Response {
    (
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        r.to_xml(),
    )
        .into_response()
}

/// Status callbacks of the lead leg (initiated, ringing, answered, completed …).
pub async fn status(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Extension(p): Extension<TwilioParams>,
) -> Response {
    let started = Instant::now();
    let Some(status) = p.get("CallStatus") else {
        return bad_request("CallStatus");
    };
    let update = StatusUpdate {
        sid: p.get("CallSid").and_then(|s| CallSid::parse(s).ok()),
        status: CallStatus::parse(status),
        sequence: p.get_i32("SequenceNumber"),
        at: timestamp(&p),
        duration_secs: p.get_i32("CallDuration"),
        sip_response_code: p.get_i32("SipResponseCode"),
        error_code: p.get_i32("ErrorCode"),
        answered_by: p.get("AnsweredBy").map(AnsweredBy::parse),
    };
    let is_final = update.status.is_final();
    let outcome = match state
        .status_writer
        .submit((CallId(id), update, p.to_json()))
        .await
    {
        Some(outcome) => outcome,
        None => Err(Arc::new(sqlx::Error::PoolClosed)),
    };
    if matches!(outcome, Ok(Applied::Applied)) && is_final {
        // The call's final state is stored: the callback is answered now, and its lead moves
        // on beside it (if this instance dies first, the sweeper moves it on).
        let state = state.clone();
        tokio::spawn(async move { crate::engine::on_final(&state, CallId(id)).await });
    }
    observe("status", started, outcome)
}

/// The asynchronous answering-machine verdict.
pub async fn amd(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Extension(p): Extension<TwilioParams>,
) -> Response {
    let started = Instant::now();
    let Some(by) = p.get("AnsweredBy").map(AnsweredBy::parse) else {
        return bad_request("AnsweredBy");
    };
    let outcome = call::repo::record_amd(
        &state.webhook_db,
        CallId(id),
        p.get("CallSid"),
        &by,
        &p.to_json(),
    )
    .await;
    if matches!(outcome, Ok(Applied::Applied)) {
        // Redirecting the call is a request to the carrier: answer the callback first.
        let state = state.clone();
        tokio::spawn(async move { crate::engine::on_amd(&state, CallId(id), &by).await });
    }
    observe("amd", started, outcome)
}

/// Conference events of the attempt's conference.
pub async fn conference(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Extension(p): Extension<TwilioParams>,
) -> Response {
    let started = Instant::now();
    let Some(event) = p.get("StatusCallbackEvent") else {
        return bad_request("StatusCallbackEvent");
    };
    let key = format!(
        "{event}:{}:{}",
        p.get("CallSid").unwrap_or(""),
        p.get("SequenceNumber").unwrap_or("")
    );
    let mut outcome = call::repo::record_event(
        &state.webhook_db,
        CallId(id),
        p.get("CallSid"),
        "conference",
        &key,
        p.get_i32("SequenceNumber"),
        &p.to_json(),
    )
    .await;
    if let (Ok(Applied::Applied), "participant-join", Some(who)) =
        (&outcome, event, p.get("CallSid"))
        && let Err(e) = call::repo::mark_bridged(&state.webhook_db, CallId(id), who).await
    {
        outcome = Err(e);
    }
    observe("conference", started, outcome)
}

/// Recording status callbacks of the attempt's conference: `completed` puts the
/// recording's SID, URL and duration on the call; `absent` / `failed` (nothing kept) are
/// stored as events and logged. Stored once per recording and status; a repeat writes the
/// same values again, so it changes nothing.
pub async fn recording(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Extension(p): Extension<TwilioParams>,
) -> Response {
    let started = Instant::now();
    let update = match RecordingUpdate::parse(|name| p.get(name)) {
        Ok(u) => u,
        Err(e) => return bad_request(e.0),
    };
    let mut outcome = call::repo::record_event(
        &state.webhook_db,
        CallId(id),
        update.call_sid.as_deref(),
        "recording",
        &update.event_key(),
        None,
        &p.to_json(),
    )
    .await;
    let fresh = matches!(outcome, Ok(Applied::Applied));
    if fresh {
        metrics::counter!("dialer_recordings_total", "status" => update.status.as_str().to_string())
            .increment(1);
    }
    // A repeat is applied again (writing the same values changes nothing), so a callback
    // stored on its first delivery but not applied (the database failed in between, the
    // carrier retried) still lands on the call.
    if matches!(outcome, Ok(Applied::Applied | Applied::Duplicate))
        && let Err(e) = apply_recording(&state, CallId(id), &update, fresh).await
    {
        outcome = Err(e);
    }
    observe("recording", started, outcome)
}

async fn apply_recording(
    state: &AppState,
    id: CallId,
    u: &RecordingUpdate,
    fresh: bool,
) -> Result<(), sqlx::Error> {
    match &u.status {
        RecordingStatus::Completed => {
            let stored = call::repo::set_recording(
                &state.webhook_db,
                id,
                &u.sid,
                u.url.as_deref(),
                u.duration_secs,
            )
            .await?;
            if !stored && fresh {
                tracing::warn!(call = %id, recording = %u.sid, "the call already has another recording; this one is kept only as an event");
            }
        }
        RecordingStatus::Absent | RecordingStatus::Failed if fresh => {
            tracing::warn!(call = %id, recording = %u.sid, status = %u.status, error_code = ?u.error_code,
                "the carrier kept no recording of the bridged call");
        }
        _ => {}
    }
    Ok(())
}

/// Status callbacks of an agent's leg, kept with the attempt it served. A final one ends
/// the offer: missed (the next agent is tried) or, after an accept, the agent's wrap-up.
pub async fn agent_status(
    State(state): State<AppState>,
    Path((id, offer)): Path<(i64, i64)>,
    Extension(p): Extension<TwilioParams>,
) -> Response {
    let started = Instant::now();
    let status = p.get("CallStatus").unwrap_or("");
    let key = format!(
        "{offer}:{}:{status}:{}",
        p.get("CallSid").unwrap_or(""),
        p.get("SequenceNumber").unwrap_or("")
    );
    let outcome = call::repo::record_event(
        &state.webhook_db,
        CallId(id),
        p.get("CallSid"),
        "agent_status",
        &key,
        p.get_i32("SequenceNumber"),
        &p.to_json(),
    )
    .await;
    if matches!(outcome, Ok(Applied::Applied)) && CallStatus::parse(status).is_final() {
        let state = state.clone();
        let status = status.to_string();
        tokio::spawn(async move {
            crate::engine::transfer::agent_leg_ended(&state, offer, &status).await
        });
    }
    observe("agent_status", started, outcome)
}

/// The lead leg's voice URL: with asynchronous AMD it runs as soon as the call is answered
/// and holds the lead, in silence, in the attempt's conference until an agent joins.
pub async fn voice(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Extension(p): Extension<TwilioParams>,
) -> Response {
    let started = Instant::now();
    let id = CallId(id);
    let key = p.get("CallSid").unwrap_or("").to_string();
    match call::repo::record_event(
        &state.webhook_db,
        id,
        p.get("CallSid"),
        "voice",
        &key,
        None,
        &p.to_json(),
    )
    .await
    {
        Ok(Applied::UnknownCall) => return unknown_call("voice", started),
        Err(e) => return observe("voice", started, Err(e)),
        Ok(Applied::Applied) => {
            // The TwiML goes back at once; the hold and the agent search run beside it.
            let state = state.clone();
            tokio::spawn(async move { crate::engine::on_answer(&state, id).await });
        }
        Ok(_) => {}
    }
    let recording = match campaign::repo::recording_for_call(&state.webhook_db, id).await {
        Ok(Some(r)) => r,
        Ok(None) => return unknown_call("voice", started),
        Err(e) => return observe("voice", started, Err(e)),
    };
    let base = &state.settings.http.public_url;
    let r = docs::lead_hold(id, base, &recording);
    metrics::histogram!("dialer_webhook_duration_seconds", "kind" => "voice")
        .record(started.elapsed().as_secs_f64());
    twiml_response(&r)
}

/// The voicemail drop: the campaign's message after the beep, then hang up.
pub async fn voicemail(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Extension(p): Extension<TwilioParams>,
) -> Response {
    let started = Instant::now();
    let id = CallId(id);
    let key = p.get("CallSid").unwrap_or("").to_string();
    if let Err(e) = call::repo::record_event(
        &state.webhook_db,
        id,
        p.get("CallSid"),
        "voicemail",
        &key,
        None,
        &p.to_json(),
    )
    .await
    {
        return observe("voicemail", started, Err(e));
    }
    let message: Option<(Option<String>, Option<String>)> = match sqlx::query_as(
        "SELECT c.voicemail_message, c.voicemail_audio_url FROM calls k JOIN campaigns c ON c.id = k.campaign_id WHERE k.id = $1",
    )
    .bind(id)
    .fetch_optional(&state.webhook_db)
    .await
    {
        Ok(m) => m,
        Err(e) => return observe("voicemail", started, Err(e)),
    };
    let Some((text, audio)) = message else {
        return unknown_call("voicemail", started);
    };
    twiml_response(&docs::voicemail_drop(text.as_deref(), audio.as_deref()))
}

/// The agent leg's first TwiML: who is waiting, from which campaign, and the accept key.
pub async fn agent_whisper(
    State(state): State<AppState>,
    Path((id, offer)): Path<(i64, i64)>,
    Extension(p): Extension<TwilioParams>,
) -> Response {
    let started = Instant::now();
    let id = CallId(id);
    let key = format!("{offer}:{}", p.get("CallSid").unwrap_or(""));
    if let Err(e) = call::repo::record_event(
        &state.webhook_db,
        id,
        p.get("CallSid"),
        "agent_whisper",
        &key,
        None,
        &p.to_json(),
    )
    .await
    {
        return observe("agent_whisper", started, Err(e));
    }
    let names: Option<(Option<String>, Option<String>, String)> = match sqlx::query_as(
        "SELECT l.first_name, l.last_name, c.name FROM calls k JOIN leads l ON l.id = k.lead_id
           JOIN campaigns c ON c.id = k.campaign_id WHERE k.id = $1",
    )
    .bind(id)
    .fetch_optional(&state.webhook_db)
    .await
    {
        Ok(n) => n,
        Err(e) => return observe("agent_whisper", started, Err(e)),
    };
    let Some((first, last, campaign)) = names else {
        return unknown_call("agent_whisper", started);
    };
    let name = [first, last]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    twiml_response(&docs::agent_whisper(
        id,
        offer,
        &state.settings.http.public_url,
        &name,
        &campaign,
    ))
}

/// The whisper's Gather action: 1 joins the agent to the person's conference, if the
/// person still waits for this agent; anything else (or nothing) declines, and the next
/// agent is tried.
pub async fn agent_accept(
    State(state): State<AppState>,
    Path((id, offer)): Path<(i64, i64)>,
    Extension(p): Extension<TwilioParams>,
) -> Response {
    let started = Instant::now();
    let id = CallId(id);
    let digits = p.get("Digits").unwrap_or("");
    let key = format!("{offer}:{}:{digits}", p.get("CallSid").unwrap_or(""));
    if let Err(e) = call::repo::record_event(
        &state.webhook_db,
        id,
        p.get("CallSid"),
        "agent_accept",
        &key,
        None,
        &p.to_json(),
    )
    .await
    {
        return observe("agent_accept", started, Err(e));
    }
    let base = &state.settings.http.public_url;
    let r = if digits == "1" {
        match crate::engine::transfer::accept(&state, offer).await {
            Ok(crate::engine::transfer::Accepted::Join) => {
                match campaign::repo::recording_for_call(&state.webhook_db, id).await {
                    Ok(recording) => docs::agent_join(id, base, &recording.unwrap_or_default()),
                    Err(e) => return observe("agent_accept", started, Err(e)),
                }
            }
            Ok(_) => docs::agent_lead_gone(),
            Err(e) => return observe("agent_accept", started, Err(e)),
        }
    } else {
        let state = state.clone();
        tokio::spawn(async move { crate::engine::transfer::declined(&state, offer).await });
        docs::agent_declined()
    };
    metrics::histogram!("dialer_webhook_duration_seconds", "kind" => "agent_accept")
        .record(started.elapsed().as_secs_f64());
    twiml_response(&r)
}

/// Nobody could take the person's call in time: the abandon message (seller, call-back
/// number, the opt-out key), then hang up.
pub async fn abandon(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Extension(p): Extension<TwilioParams>,
) -> Response {
    let started = Instant::now();
    let key = p.get("CallSid").unwrap_or("").to_string();
    if let Err(e) = call::repo::record_event(
        &state.webhook_db,
        CallId(id),
        p.get("CallSid"),
        "abandon",
        &key,
        None,
        &p.to_json(),
    )
    .await
    {
        return observe("abandon", started, Err(e));
    }
    let seller: Option<(Option<String>, Option<String>)> = match sqlx::query_as(
        "SELECT c.seller_name, c.callback_number FROM calls k JOIN campaigns c ON c.id = k.campaign_id WHERE k.id = $1",
    )
    .bind(id)
    .fetch_optional(&state.webhook_db)
    .await
    {
        Ok(s) => s,
        Err(e) => return observe("abandon", started, Err(e)),
    };
    let Some((seller, number)) = seller else {
        return unknown_call("abandon", started);
    };
    twiml_response(&docs::abandon(
        CallId(id),
        &state.settings.http.public_url,
        seller.as_deref(),
        number.as_deref(),
        &state.settings.dialer.abandon_message,
    ))
}

/// The abandon message's Gather action: 9 puts the number on the tenant's do-not-call
/// list at once.
pub async fn abandon_optout(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Extension(p): Extension<TwilioParams>,
) -> Response {
    let started = Instant::now();
    let digits = p.get("Digits").unwrap_or("");
    let key = format!("{}:{digits}", p.get("CallSid").unwrap_or(""));
    if let Err(e) = call::repo::record_event(
        &state.webhook_db,
        CallId(id),
        p.get("CallSid"),
        "opt_out",
        &key,
        None,
        &p.to_json(),
    )
    .await
    {
        return observe("opt_out", started, Err(e));
    }
    if digits != "9" {
        return twiml_response(&docs::opt_out(false));
    }
    let added = sqlx::query(
        "INSERT INTO dnc_numbers (tenant_id, phone_e164, source, reason)
         SELECT tenant_id, to_number, 'opt_out', 'pressed 9 after the abandon message' FROM calls WHERE id = $1
         ON CONFLICT (tenant_id, phone_e164) WHERE tenant_id IS NOT NULL DO NOTHING",
    )
    .bind(id)
    .execute(&state.webhook_db)
    .await;
    match added {
        Ok(_) => {
            metrics::counter!("dialer_opt_outs_total").increment(1);
            twiml_response(&docs::opt_out(true))
        }
        Err(e) => observe("opt_out", started, Err(e)),
    }
}
