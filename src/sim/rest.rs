//! The simulator's REST API: the Twilio subset the daemon uses, with Twilio's shapes.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use serde_json::{Value, json};

use super::Shared;
use super::call::{self, Command, CreateParams, Handle, Leg};
use super::conference::ParticipantView;
use super::journal::Event;
use crate::telephony::twiml::VoiceResponse;

pub fn router(shared: Arc<Shared>) -> Router {
    let api = Router::new()
        .route(
            "/2010-04-01/Accounts/{account}/Calls.json",
            post(create_call).get(list_calls),
        )
        .route(
            "/2010-04-01/Accounts/{account}/Calls/{file}",
            post(update_call).get(fetch_call),
        )
        .route(
            "/2010-04-01/Accounts/{account}/Conferences/{conf}/Participants.json",
            post(add_participant),
        )
        .route(
            "/2010-04-01/Accounts/{account}/Conferences/{conf}/Participants/{file}",
            post(update_participant)
                .delete(remove_participant)
                .get(fetch_participant),
        )
        .route(
            "/2010-04-01/Accounts/{account}/Conferences/{file}",
            post(update_conference),
        )
        .route(
            "/2010-04-01/Accounts/{account}/Recordings/{file}",
            get(fetch_recording),
        )
        .layer(middleware::from_fn_with_state(shared.clone(), guard));
    Router::new()
        .route("/sim/journal", get(journal))
        .route("/sim/stats", get(stats))
        .merge(api)
        .with_state(shared)
}

/// A refused request: Twilio's error body.
#[derive(Debug)]
pub struct Refusal {
    status: StatusCode,
    code: u32,
    message: String,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        (
            self.status,
            axum::Json(json!({
                "code": self.code,
                "message": self.message,
                "more_info": format!("https://www.twilio.com/docs/errors/{}", self.code),
                "status": self.status.as_u16(),
            })),
        )
            .into_response()
    }
}

pub fn twilio_error(status: StatusCode, code: u32, message: &str) -> Refusal {
    Refusal {
        status,
        code,
        message: message.to_string(),
    }
}

/// Basic auth as the account, the account in the path, and the concurrent-request limit.
async fn guard(State(shared): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let refuse = |status: StatusCode, code: u32, message: &str| {
        shared.journal.record(Event::Refused {
            method: method.clone(),
            path: path.clone(),
            http_status: status.as_u16(),
            code,
        });
        twilio_error(status, code, message).into_response()
    };
    if !authorized(&shared, req.headers()) {
        return refuse(StatusCode::UNAUTHORIZED, 20003, "Authenticate");
    }
    let account_ok = path
        .strip_prefix("/2010-04-01/Accounts/")
        .and_then(|rest| rest.split('/').next())
        .is_some_and(|a| a == shared.config.account_sid);
    if !account_ok {
        return refuse(
            StatusCode::NOT_FOUND,
            20404,
            "The requested resource was not found",
        );
    }
    let in_flight = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    let response = if in_flight > shared.config.max_concurrent_requests {
        refuse(StatusCode::TOO_MANY_REQUESTS, 20429, "Too Many Requests")
    } else {
        if shared.config.api_latency_ms > 0 {
            tokio::time::sleep(Duration::from_millis(shared.config.api_latency_ms)).await;
        }
        next.run(req).await
    };
    shared.in_flight.fetch_sub(1, Ordering::SeqCst);
    response
}

fn authorized(shared: &Shared, headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some(encoded) = value.strip_prefix("Basic ") else {
        return false;
    };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
        return false;
    };
    let expected = format!("{}:{}", shared.config.account_sid, shared.config.auth_token);
    subtle::ConstantTimeEq::ct_eq(decoded.as_slice(), expected.as_bytes()).into()
}

/// Form parameters in order, repeated keys kept.
struct Form(Vec<(String, String)>);

impl Form {
    fn parse(body: &Bytes) -> Self {
        Form(url::form_urlencoded::parse(body).into_owned().collect())
    }
    fn get(&self, k: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    }
    fn all(&self, k: &str) -> Vec<String> {
        // Twilio accepts both repeated keys and one space-separated value.
        self.0
            .iter()
            .filter(|(key, _)| key == k)
            .flat_map(|(_, v)| v.split_whitespace().map(String::from).collect::<Vec<_>>())
            .collect()
    }
    fn bool(&self, k: &str) -> Result<Option<bool>, Refusal> {
        match self.get(k) {
            None => Ok(None),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(Some(true)),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(Some(false)),
            Some(v) => Err(invalid(k, v)),
        }
    }
    fn uint(&self, k: &str) -> Result<Option<u32>, Refusal> {
        match self.get(k) {
            None => Ok(None),
            Some(v) => v.trim().parse().map(Some).map_err(|_| invalid(k, v)),
        }
    }
    fn url(&self, k: &str) -> Result<Option<String>, Refusal> {
        match self.get(k) {
            None | Some("") => Ok(None),
            Some(v) => match url::Url::parse(v) {
                Ok(u) if u.scheme() == "http" || u.scheme() == "https" => Ok(Some(v.to_string())),
                _ => Err(twilio_error(
                    StatusCode::BAD_REQUEST,
                    21205,
                    &format!("{k} is not a valid URL: {v}"),
                )),
            },
        }
    }
    fn method(&self, k: &str) -> Result<String, Refusal> {
        match self.get(k) {
            None | Some("") => Ok("POST".into()),
            Some(v) if v.eq_ignore_ascii_case("GET") || v.eq_ignore_ascii_case("POST") => {
                Ok(v.to_ascii_uppercase())
            }
            Some(v) => Err(invalid(k, v)),
        }
    }
}

fn invalid(key: &str, value: &str) -> Refusal {
    twilio_error(
        StatusCode::BAD_REQUEST,
        20001,
        &format!("Invalid parameter {key}: {value:?}"),
    )
}

fn not_found(what: &str) -> Refusal {
    twilio_error(
        StatusCode::NOT_FOUND,
        20404,
        &format!("The requested resource {what} was not found"),
    )
}

fn strip_json(file: &str) -> &str {
    file.strip_suffix(".json").unwrap_or(file)
}

async fn create_call(
    State(shared): State<Arc<Shared>>,
    Path(_account): Path<String>,
    body: Bytes,
) -> Response {
    let form = Form::parse(&body);
    match parse_create(&form) {
        Ok((to, from, params)) => {
            let handle = call::spawn(&shared, Leg::Call { params }, to, from);
            (StatusCode::CREATED, axum::Json(call_json(&shared, &handle))).into_response()
        }
        Err(r) => r.into_response(),
    }
}

/// E.164 (`+` and 7–15 digits), or a `sip:` / `client:` address, as Twilio accepts.
fn is_dialable(s: &str) -> bool {
    let e164 = s.strip_prefix('+').is_some_and(|d| {
        (7..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()) && !d.starts_with('0')
    });
    e164 || (s.starts_with("sip:") || s.starts_with("client:")) && s.len() > 6
}

/// `To` and `From` as Twilio checks them (21201/21211, 21213/21212).
fn parties(form: &Form) -> Result<(String, String), Refusal> {
    let to = form.get("To").filter(|s| !s.is_empty()).ok_or_else(|| {
        twilio_error(
            StatusCode::BAD_REQUEST,
            21201,
            "No 'To' number is specified",
        )
    })?;
    if !is_dialable(to) {
        return Err(twilio_error(
            StatusCode::BAD_REQUEST,
            21211,
            &format!("Invalid 'To' Phone Number: {to}"),
        ));
    }
    let from = form.get("From").filter(|s| !s.is_empty()).ok_or_else(|| {
        twilio_error(
            StatusCode::BAD_REQUEST,
            21213,
            "No 'From' number is specified",
        )
    })?;
    if !is_dialable(from) {
        return Err(twilio_error(
            StatusCode::BAD_REQUEST,
            21212,
            &format!("Invalid 'From' Phone Number: {from}"),
        ));
    }
    Ok((to.to_string(), from.to_string()))
}

fn parse_create(form: &Form) -> Result<(String, String, CreateParams), Refusal> {
    let (to, from) = parties(form)?;
    let url = form.url("Url")?;
    let twiml = form.get("Twiml").map(String::from);
    if url.is_none() && twiml.is_none() {
        return Err(twilio_error(
            StatusCode::BAD_REQUEST,
            21205,
            "Url or Twiml is required",
        ));
    }
    let twiml = match twiml {
        Some(t) => Some(VoiceResponse::parse(&t).map_err(|e| {
            twilio_error(
                StatusCode::BAD_REQUEST,
                12100,
                &format!("Document parse failure: {e}"),
            )
        })?),
        None => None,
    };
    let machine_detection = match form.get("MachineDetection") {
        None | Some("") => None,
        Some(v @ ("Enable" | "DetectMessageEnd")) => Some(v.to_string()),
        Some(v) => return Err(invalid("MachineDetection", v)),
    };
    let events: HashSet<String> = form.all("StatusCallbackEvent").into_iter().collect();
    let allowed = ["initiated", "ringing", "answered", "completed"];
    if let Some(bad) = events.iter().find(|e| !allowed.contains(&e.as_str())) {
        return Err(invalid("StatusCallbackEvent", bad));
    }
    let params = CreateParams {
        url,
        method: form.method("Method")?,
        twiml,
        status_callback: form.url("StatusCallback")?,
        status_callback_method: form.method("StatusCallbackMethod")?,
        status_events: if events.is_empty() {
            ["completed".to_string()].into()
        } else {
            events
        },
        timeout_secs: form.uint("Timeout")?.unwrap_or(60).clamp(5, 600),
        machine_detection,
        async_amd: form.bool("AsyncAmd")?.unwrap_or(false),
        amd_callback: form.url("AsyncAmdStatusCallback")?,
        amd_callback_method: form.method("AsyncAmdStatusCallbackMethod")?,
        record: form.bool("Record")?.unwrap_or(false),
        recording_callback: form.url("RecordingStatusCallback")?,
    };
    Ok((to, from, params))
}

fn call_json(shared: &Shared, h: &Handle) -> Value {
    let info = h.info();
    json!({
        "sid": info.sid,
        "account_sid": shared.config.account_sid,
        "to": info.to,
        "to_formatted": info.to,
        "from": info.from,
        "from_formatted": info.from,
        "status": info.status,
        "direction": "outbound-api",
        "api_version": "2010-04-01",
        "date_created": info.created.to_rfc2822(),
        "date_updated": chrono::Utc::now().to_rfc2822(),
        "start_time": info.started.map(|t| t.to_rfc2822()),
        "end_time": info.ended.map(|t| t.to_rfc2822()),
        "duration": info.duration_secs.map(|d| d.to_string()),
        "answered_by": info.answered_by,
        "price": null,
        "price_unit": "USD",
        "parent_call_sid": null,
        "uri": format!("/2010-04-01/Accounts/{}/Calls/{}.json", shared.config.account_sid, info.sid),
        "subresource_uris": {},
    })
}

fn find_call(shared: &Shared, sid: &str) -> Option<Handle> {
    shared
        .calls
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(sid)
        .cloned()
}

/// `GET /Calls.json`: the `To`, `From` and `Status` filters, newest first, one page of
/// `PageSize` (default 50, at most 1,000).
async fn list_calls(State(shared): State<Arc<Shared>>, RawQuery(query): RawQuery) -> Response {
    let query = Form(
        url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .into_owned()
            .collect(),
    );
    let page_size = match query.uint("PageSize") {
        Ok(n) => n.unwrap_or(50).clamp(1, 1000) as usize,
        Err(r) => return r.into_response(),
    };
    let handles: Vec<Handle> = shared
        .calls
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .values()
        .cloned()
        .collect();
    let mut infos: Vec<(Handle, call::Info)> = handles
        .into_iter()
        .map(|h| {
            let info = h.info();
            (h, info)
        })
        .filter(|(_, i)| query.get("To").is_none_or(|to| i.to == to))
        .filter(|(_, i)| query.get("From").is_none_or(|from| i.from == from))
        .filter(|(_, i)| query.get("Status").is_none_or(|st| i.status == st))
        .collect();
    infos.sort_by_key(|(_, i)| std::cmp::Reverse(i.created));
    let calls: Vec<Value> = infos
        .iter()
        .take(page_size)
        .map(|(h, _)| call_json(&shared, h))
        .collect();
    axum::Json(json!({
        "calls": calls,
        "page": 0,
        "page_size": page_size,
        "start": 0,
        "end": calls.len().saturating_sub(1),
        "first_page_uri": null,
        "next_page_uri": null,
        "previous_page_uri": null,
        "uri": format!("/2010-04-01/Accounts/{}/Calls.json", shared.config.account_sid),
    }))
    .into_response()
}

async fn fetch_call(
    State(shared): State<Arc<Shared>>,
    Path((_a, file)): Path<(String, String)>,
) -> Response {
    match find_call(&shared, strip_json(&file)) {
        Some(h) => axum::Json(call_json(&shared, &h)).into_response(),
        None => not_found(&format!("/Calls/{file}")).into_response(),
    }
}

/// `GET /Recordings/{sid}[.json]`: a finished recording's resource (the simulator keeps no
/// audio, so the JSON answers both forms).
async fn fetch_recording(
    State(shared): State<Arc<Shared>>,
    Path((_a, file)): Path<(String, String)>,
) -> Response {
    let found = shared
        .recordings
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(strip_json(&file))
        .cloned();
    let Some(r) = found else {
        return not_found(&format!("/Recordings/{file}")).into_response();
    };
    axum::Json(json!({
        "sid": r.sid,
        "account_sid": shared.config.account_sid,
        "api_version": "2010-04-01",
        "call_sid": r.call_sid,
        "conference_sid": r.conference_sid,
        "date_created": r.start_time.to_rfc2822(),
        "date_updated": r.start_time.to_rfc2822(),
        "start_time": r.start_time.to_rfc2822(),
        "duration": r.duration_secs.to_string(),
        "status": r.status,
        "channels": 1,
        "source": r.source,
        "error_code": (r.status == "absent").then_some(16101),
        "price": null,
        "price_unit": "USD",
        "uri": format!("/2010-04-01/Accounts/{}/Recordings/{}.json", shared.config.account_sid, r.sid),
        "media_url": shared.recording_url(&r.sid),
    }))
    .into_response()
}

async fn update_call(
    State(shared): State<Arc<Shared>>,
    Path((_a, file)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let Some(h) = find_call(&shared, strip_json(&file)) else {
        return not_found(&format!("/Calls/{file}")).into_response();
    };
    let form = Form::parse(&body);
    let command = if let Some(status) = form.get("Status") {
        match status {
            "canceled" => Command::Cancel,
            "completed" => Command::Complete,
            other => return invalid("Status", other).into_response(),
        }
    } else if let Some(t) = form.get("Twiml") {
        match VoiceResponse::parse(t) {
            Ok(doc) => Command::Twiml(doc),
            Err(e) => {
                return twilio_error(
                    StatusCode::BAD_REQUEST,
                    12100,
                    &format!("Document parse failure: {e}"),
                )
                .into_response();
            }
        }
    } else {
        match form.url("Url") {
            Ok(Some(url)) => match form.method("Method") {
                Ok(m) => Command::Url(url, m),
                Err(r) => return r.into_response(),
            },
            Ok(None) => {
                return twilio_error(
                    StatusCode::BAD_REQUEST,
                    21205,
                    "Url, Twiml or Status is required",
                )
                .into_response();
            }
            Err(r) => return r.into_response(),
        }
    };
    if h.info().ended.is_some() {
        // Twilio: 21220, the call is not in progress; nothing to redirect or end.
        return twilio_error(
            StatusCode::BAD_REQUEST,
            21220,
            "Call is not in-progress. Cannot redirect.",
        )
        .into_response();
    }
    h.command(command);
    axum::Json(call_json(&shared, &h)).into_response()
}

fn participant_json(shared: &Shared, conf_name: &str, p: &ParticipantView, status: &str) -> Value {
    json!({
        "account_sid": shared.config.account_sid,
        "call_sid": p.call_sid,
        "conference_sid": p.conference_sid,
        "label": p.label,
        "hold": p.hold,
        "muted": p.muted,
        "coaching": false,
        "call_sid_to_coach": null,
        "start_conference_on_enter": p.start_on_enter,
        "end_conference_on_exit": p.end_on_exit,
        "status": status,
        "date_created": chrono::Utc::now().to_rfc2822(),
        "date_updated": chrono::Utc::now().to_rfc2822(),
        "uri": format!("/2010-04-01/Accounts/{}/Conferences/{}/Participants/{}.json", shared.config.account_sid, p.conference_sid, p.call_sid),
        "friendly_name_of_conference": conf_name,
    })
}

async fn add_participant(
    State(shared): State<Arc<Shared>>,
    Path((_a, conf)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let form = Form::parse(&body);
    let parsed = (|| -> Result<_, Refusal> {
        let (to, from) = parties(&form)?;
        let events: HashSet<String> = form.all("StatusCallbackEvent").into_iter().collect();
        let join = call::ParticipantParams {
            conference: conf.clone(),
            label: form.get("Label").map(String::from),
            start_on_enter: form.bool("StartConferenceOnEnter")?.unwrap_or(true),
            end_on_exit: form.bool("EndConferenceOnExit")?.unwrap_or(false),
            muted: form.bool("Muted")?.unwrap_or(false),
            timeout_secs: form.uint("Timeout")?.unwrap_or(60).clamp(5, 600),
            status_callback: form.url("StatusCallback")?,
            status_callback_method: form.method("StatusCallbackMethod")?,
            status_events: if events.is_empty() {
                ["completed".to_string()].into()
            } else {
                events
            },
            conference_callback: form.url("ConferenceStatusCallback")?,
            conference_callback_method: form.method("ConferenceStatusCallbackMethod")?,
            conference_events: form
                .all("ConferenceStatusCallbackEvent")
                .into_iter()
                .collect(),
        };
        Ok((to, from, join))
    })();
    let (to, from, join) = match parsed {
        Ok(p) => p,
        Err(r) => return r.into_response(),
    };
    let conference_sid = shared.conferences.sid_for(&shared, &conf);
    let view = ParticipantView {
        conference_sid,
        call_sid: String::new(),
        label: join.label.clone(),
        hold: false,
        muted: join.muted,
        start_on_enter: join.start_on_enter,
        end_on_exit: join.end_on_exit,
    };
    let handle = call::spawn(&shared, Leg::Participant { params: join }, to, from);
    let view = ParticipantView {
        call_sid: handle.info().sid,
        ..view
    };
    (
        StatusCode::CREATED,
        axum::Json(participant_json(&shared, &conf, &view, "queued")),
    )
        .into_response()
}

async fn fetch_participant(
    State(shared): State<Arc<Shared>>,
    Path((_a, conf, file)): Path<(String, String, String)>,
) -> Response {
    match shared.conferences.participant(&conf, strip_json(&file)) {
        Some(p) => axum::Json(participant_json(&shared, &conf, &p, "connected")).into_response(),
        None => not_found(&format!("/Conferences/{conf}/Participants/{file}")).into_response(),
    }
}

async fn update_participant(
    State(shared): State<Arc<Shared>>,
    Path((_a, conf, file)): Path<(String, String, String)>,
    body: Bytes,
) -> Response {
    let form = Form::parse(&body);
    let (hold, muted) = match (form.bool("Hold"), form.bool("Muted")) {
        (Ok(h), Ok(m)) => (h, m),
        (Err(r), _) | (_, Err(r)) => return r.into_response(),
    };
    if let Some(true) = form.bool("EndConferenceOnExit").unwrap_or(None) {
        // Accepted and ignored: the simulator keeps the value given at join.
    }
    match shared
        .conferences
        .update(&conf, strip_json(&file), hold, muted)
    {
        Some(p) => axum::Json(participant_json(&shared, &conf, &p, "connected")).into_response(),
        None => not_found(&format!("/Conferences/{conf}/Participants/{file}")).into_response(),
    }
}

async fn remove_participant(
    State(shared): State<Arc<Shared>>,
    Path((_a, conf, file)): Path<(String, String, String)>,
) -> Response {
    if shared.conferences.kick(&shared, &conf, strip_json(&file)) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        not_found(&format!("/Conferences/{conf}/Participants/{file}")).into_response()
    }
}

async fn update_conference(
    State(shared): State<Arc<Shared>>,
    Path((_a, file)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let form = Form::parse(&body);
    let conf = strip_json(&file).to_string();
    match form.get("Status") {
        Some("completed") => {
            if shared.conferences.end(&shared, &conf) {
                axum::Json(json!({
                    "sid": conf, "account_sid": shared.config.account_sid, "status": "completed",
                    "api_version": "2010-04-01",
                }))
                .into_response()
            } else {
                not_found(&format!("/Conferences/{file}")).into_response()
            }
        }
        Some(other) => invalid("Status", other).into_response(),
        None => {
            if shared.conferences.live().iter().any(|(n, _)| *n == conf) {
                axum::Json(json!({"sid": conf, "account_sid": shared.config.account_sid, "status": "in-progress"})).into_response()
            } else {
                not_found(&format!("/Conferences/{file}")).into_response()
            }
        }
    }
}

async fn journal(State(shared): State<Arc<Shared>>) -> Response {
    axum::Json(shared.journal.entries()).into_response()
}

async fn stats(State(shared): State<Arc<Shared>>) -> Response {
    axum::Json(json!({
        "live_calls": shared.live.load(Ordering::SeqCst),
        "max_live_calls": shared.max_live.load(Ordering::SeqCst),
        "conferences": shared.conferences.live().len(),
    }))
    .into_response()
}
