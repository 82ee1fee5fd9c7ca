//! Behaviour of the client against a capture server: what goes on the wire, how answers
//! are read, and which failures are retried.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use secrecy::SecretString;

use super::*;
use crate::telephony::{AnsweredBy, CallStatus};

pub(super) const ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";
pub(super) const TOKEN: &str = "tok-5ecret-e3b0c44298fc1c149afbf4c8996fb924";
pub(super) const CALL: &str = "CAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
pub(super) const CONFERENCE: &str = "CFbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

/// One request as the capture server saw it.
#[derive(Debug, Clone)]
pub(super) struct Captured {
    pub method: String,
    /// As sent, percent-encoded.
    pub path: String,
    pub content_type: Option<String>,
    pub authorization: Option<String>,
    pub body: String,
}

impl Captured {
    /// The decoded form pairs, in order.
    pub fn pairs(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(self.body.as_bytes())
            .into_owned()
            .collect()
    }

    pub fn keys(&self) -> Vec<String> {
        self.pairs().into_iter().map(|(k, _)| k).collect()
    }

    pub fn values(&self, key: &str) -> Vec<String> {
        self.pairs()
            .into_iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v)
            .collect()
    }

    pub fn value(&self, key: &str) -> Option<String> {
        let mut values = self.values(key);
        assert!(values.len() <= 1, "{key} sent {} times", values.len());
        values.pop()
    }
}

/// A canned answer; `delay` holds it back (to make the client time out).
pub(super) struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
    delay: Duration,
}

impl Reply {
    pub fn json(status: u16, body: &str) -> Self {
        Self {
            status,
            headers: vec![("content-type", "application/json".into())],
            body: body.to_string(),
            delay: Duration::ZERO,
        }
    }

    fn header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.to_string()));
        self
    }

    fn delayed(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

#[derive(Clone, Default)]
struct Shared {
    seen: Arc<Mutex<Vec<Captured>>>,
    replies: Arc<Mutex<VecDeque<Reply>>>,
}

/// An HTTP server on 127.0.0.1 that records every request and answers with the queued
/// replies, then with a Twilio-shaped default for the route.
pub(super) struct CaptureServer {
    pub base_url: String,
    shared: Shared,
}

impl CaptureServer {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::serve(listener)
    }

    fn serve(listener: tokio::net::TcpListener) -> Self {
        let shared = Shared::default();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let app = Router::new().fallback(handle).with_state(shared.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { base_url, shared }
    }

    pub fn push(&self, reply: Reply) {
        self.shared.replies.lock().unwrap().push_back(reply);
    }

    pub fn requests(&self) -> Vec<Captured> {
        self.shared.seen.lock().unwrap().clone()
    }

    pub fn only_request(&self) -> Captured {
        let seen = self.requests();
        assert_eq!(seen.len(), 1, "expected exactly one request: {seen:#?}");
        seen.into_iter().next().unwrap()
    }

    /// A client for this server with fast retries.
    pub fn client(&self) -> TwilioClient {
        client_for(&self.base_url, fast_retry())
    }
}

async fn handle(State(shared): State<Shared>, request: axum::extract::Request) -> Response {
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    };
    let captured = Captured {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        content_type: header("content-type"),
        authorization: header("authorization"),
        body: String::from_utf8(bytes.to_vec()).unwrap(),
    };
    let reply = shared
        .replies
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or_else(|| default_reply(&captured));
    shared.seen.lock().unwrap().push(captured);
    tokio::time::sleep(reply.delay).await;
    let mut response = (
        axum::http::StatusCode::from_u16(reply.status).unwrap(),
        reply.body,
    )
        .into_response();
    for (name, value) in reply.headers {
        response.headers_mut().insert(name, value.parse().unwrap());
    }
    response
}

pub(super) const CALL_JSON: &str = r#"{
    "account_sid": "AC0123456789abcdef0123456789abcdef",
    "answered_by": null, "api_version": "2010-04-01", "caller_name": null,
    "date_created": "Tue, 31 Aug 2010 20:36:28 +0000", "date_updated": null,
    "direction": "outbound-api", "duration": null, "end_time": null,
    "from": "+14155550100", "from_formatted": "(415) 555-0100", "group_sid": null,
    "parent_call_sid": null, "price": null, "sid": "CAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "start_time": null, "status": "queued", "subresource_uris": {},
    "to": "+14155550199", "queue_time": "0", "trunk_sid": null,
    "uri": "/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Calls/CAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.json"
}"#;

const PARTICIPANT_JSON: &str = r#"{
    "account_sid": "AC0123456789abcdef0123456789abcdef",
    "call_sid": "CAcccccccccccccccccccccccccccccccc", "label": "agent-7",
    "call_sid_to_coach": null, "coaching": false,
    "conference_sid": "CFbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
    "date_created": "Fri, 18 Feb 2011 21:07:19 +0000", "end_conference_on_exit": false,
    "muted": false, "hold": false, "start_conference_on_enter": true,
    "status": "queued", "queue_time": "1000", "uri": "/x.json"
}"#;

const CONFERENCE_JSON: &str = r#"{
    "account_sid": "AC0123456789abcdef0123456789abcdef", "api_version": "2010-04-01",
    "date_created": "Mon, 22 Aug 2011 20:58:45 +0000", "friendly_name": "campaign-42",
    "region": "us1", "sid": "CFbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", "status": "completed",
    "reason_conference_ended": "conference-ended-via-api"
}"#;

fn default_reply(request: &Captured) -> Reply {
    let path = &request.path;
    if request.method == "DELETE" {
        Reply::json(204, "")
    } else if path.ends_with("/Calls.json") {
        Reply::json(201, CALL_JSON)
    } else if path.contains("/Calls/") {
        Reply::json(200, CALL_JSON)
    } else if path.ends_with("/Participants.json") {
        Reply::json(201, PARTICIPANT_JSON)
    } else if path.contains("/Participants/") {
        Reply::json(200, PARTICIPANT_JSON)
    } else {
        Reply::json(200, CONFERENCE_JSON)
    }
}

pub(super) fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(50),
    }
}

pub(super) fn client_for(base_url: &str, retry: RetryPolicy) -> TwilioClient {
    TwilioClient::new(
        ACCOUNT.to_string(),
        SecretString::from(TOKEN),
        base_url,
        Duration::from_secs(5),
        retry,
    )
    .unwrap()
}

fn call_sid() -> CallSid {
    CallSid::parse(CALL).unwrap()
}

fn calls_path() -> String {
    format!("/2010-04-01/Accounts/{ACCOUNT}/Calls.json")
}

fn dial() -> CreateCall {
    CreateCall::new(
        "+14155550199",
        "+14155550100",
        Instructions::Url {
            url: "https://dialer.example.com/twiml/answer?lead=9".into(),
            method: None,
        },
    )
}

#[tokio::test]
async fn create_call_full_request_matches_twilio_encoding() {
    let server = CaptureServer::start().await;
    let mut call = dial();
    call.status_callback = Some("https://dialer.example.com/hooks/status".into());
    call.status_callback_method = Some(HttpMethod::Post);
    call.status_callback_event = vec![
        CallEvent::Initiated,
        CallEvent::Ringing,
        CallEvent::Answered,
        CallEvent::Completed,
    ];
    call.timeout_secs = Some(25);
    call.machine_detection = Some(MachineDetection::DetectMessageEnd);
    call.machine_detection_timeout_secs = Some(30);
    call.async_amd = Some(true);
    call.async_amd_status_callback = Some("https://dialer.example.com/hooks/amd".into());
    call.record = Some(false);
    call.recording_status_callback_event =
        vec![RecordingEvent::InProgress, RecordingEvent::Completed];

    let created = server.client().create_call(&call).await.unwrap();

    let req = server.only_request();
    assert_eq!(req.method, "POST");
    assert_eq!(req.path, calls_path());
    let expected_auth =
        base64::engine::general_purpose::STANDARD.encode(format!("{ACCOUNT}:{TOKEN}"));
    assert_eq!(req.authorization, Some(format!("Basic {expected_auth}")));
    assert_eq!(
        req.content_type.as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    assert!(
        req.body.contains("StatusCallbackEvent=initiated&StatusCallbackEvent=ringing&StatusCallbackEvent=answered&StatusCallbackEvent=completed"),
        "events must be repeated keys: {}",
        req.body
    );
    assert!(
        req.body
            .starts_with("To=%2B14155550199&From=%2B14155550100&"),
        "{}",
        req.body
    );
    assert_eq!(
        req.value("Url").unwrap(),
        "https://dialer.example.com/twiml/answer?lead=9"
    );
    assert_eq!(req.value("Timeout").unwrap(), "25");
    assert_eq!(req.value("MachineDetection").unwrap(), "DetectMessageEnd");
    assert_eq!(req.value("MachineDetectionTimeout").unwrap(), "30");
    assert_eq!(req.value("AsyncAmd").unwrap(), "true");
    assert_eq!(req.value("Record").unwrap(), "false");
    assert_eq!(req.value("StatusCallbackMethod").unwrap(), "POST");
    assert_eq!(
        req.values("RecordingStatusCallbackEvent"),
        ["in-progress", "completed"]
    );
    assert_eq!(req.value("Method"), None, "unset Method must not be sent");
    assert_eq!(req.value("RecordingStatusCallback"), None);

    assert_eq!(created.sid.as_str(), CALL);
    assert_eq!(created.status, CallStatus::Queued);
    assert_eq!(created.direction.as_deref(), Some("outbound-api"));
    assert_eq!(created.to.as_deref(), Some("+14155550199"));
    assert_eq!(
        created.date_created.unwrap().to_rfc3339(),
        "2010-08-31T20:36:28+00:00"
    );
    assert_eq!(created.answered_by, None);
}

#[tokio::test]
async fn create_call_minimal_sends_only_required_fields() {
    let server = CaptureServer::start().await;
    let mut call = dial();
    call.instructions = Instructions::Twiml("<Response><Pause length=\"1\"/></Response>".into());
    server.client().create_call(&call).await.unwrap();
    let req = server.only_request();
    assert_eq!(req.keys(), ["To", "From", "Twiml"]);
    assert_eq!(
        req.value("Twiml").unwrap(),
        "<Response><Pause length=\"1\"/></Response>"
    );
}

#[tokio::test]
async fn update_call_redirect_and_end_send_url_or_status() {
    let server = CaptureServer::start().await;
    let client = server.client();
    let redirect = UpdateCall::Redirect(Instructions::Url {
        url: "https://dialer.example.com/twiml/bridge".into(),
        method: Some(HttpMethod::Get),
    });
    client.update_call(&call_sid(), &redirect).await.unwrap();
    let hangup = UpdateCall::End(EndCall::Completed);
    let updated = client.update_call(&call_sid(), &hangup).await.unwrap();
    assert_eq!(updated.sid, call_sid());

    let seen = server.requests();
    assert_eq!(seen.len(), 2);
    let path = format!("/2010-04-01/Accounts/{ACCOUNT}/Calls/{CALL}.json");
    assert!(seen.iter().all(|r| r.method == "POST" && r.path == path));
    assert_eq!(seen[0].keys(), ["Url", "Method"]);
    assert_eq!(seen[0].value("Method").unwrap(), "GET");
    assert_eq!(
        seen[1].pairs(),
        [("Status".to_string(), "completed".to_string())]
    );
}

#[tokio::test]
async fn add_participant_friendly_name_is_one_encoded_segment() {
    let server = CaptureServer::start().await;
    let mut leg = AddParticipant::new("+14155550100", "+14155550142");
    leg.label = Some("agent-7".into());
    leg.start_conference_on_enter = Some(true);
    leg.end_conference_on_exit = Some(false);
    leg.beep = Some(Beep::OnEnter);
    leg.early_media = Some(true);
    leg.conference_status_callback = Some("https://dialer.example.com/hooks/conf".into());
    leg.conference_status_callback_event = vec![
        ConferenceCallbackEvent::Start,
        ConferenceCallbackEvent::Join,
        ConferenceCallbackEvent::Leave,
    ];

    let joined = server
        .client()
        .add_participant("campaign 42/agents", &leg)
        .await
        .unwrap();

    let req = server.only_request();
    assert_eq!(
        req.path,
        format!(
            "/2010-04-01/Accounts/{ACCOUNT}/Conferences/campaign%2042%2Fagents/Participants.json"
        )
    );
    assert_eq!(req.value("StartConferenceOnEnter").unwrap(), "true");
    assert_eq!(req.value("EndConferenceOnExit").unwrap(), "false");
    assert_eq!(req.value("EarlyMedia").unwrap(), "true");
    assert_eq!(req.value("Beep").unwrap(), "onEnter");
    assert_eq!(req.value("Label").unwrap(), "agent-7");
    assert_eq!(
        req.values("ConferenceStatusCallbackEvent"),
        ["start", "join", "leave"]
    );
    assert_eq!(req.value("Muted"), None);
    assert_eq!(
        joined.call_sid.as_str(),
        "CAcccccccccccccccccccccccccccccccc"
    );
    assert_eq!(joined.status, Some(ParticipantStatus::Queued));
    assert_eq!(joined.start_conference_on_enter, Some(true));
}

#[tokio::test]
async fn update_participant_coaching_sends_booleans_and_coach_sid() {
    let server = CaptureServer::start().await;
    let update = UpdateParticipant {
        coaching: Some(true),
        call_sid_to_coach: Some(call_sid()),
        muted: Some(false),
        ..UpdateParticipant::default()
    };
    let updated = server
        .client()
        .update_participant(CONFERENCE, "agent-7", &update)
        .await
        .unwrap();
    let req = server.only_request();
    assert_eq!(
        req.path,
        format!(
            "/2010-04-01/Accounts/{ACCOUNT}/Conferences/{CONFERENCE}/Participants/agent-7.json"
        )
    );
    assert_eq!(req.keys(), ["Muted", "Coaching", "CallSidToCoach"]);
    assert_eq!(req.value("Coaching").unwrap(), "true");
    assert_eq!(req.value("CallSidToCoach").unwrap(), CALL);
    assert_eq!(updated.label.as_deref(), Some("agent-7"));
}

#[tokio::test]
async fn remove_participant_sends_delete_without_body_and_accepts_204() {
    let server = CaptureServer::start().await;
    server
        .client()
        .remove_participant(CONFERENCE, CALL)
        .await
        .unwrap();
    let req = server.only_request();
    assert_eq!(req.method, "DELETE");
    assert_eq!(
        req.path,
        format!("/2010-04-01/Accounts/{ACCOUNT}/Conferences/{CONFERENCE}/Participants/{CALL}.json")
    );
    assert_eq!(req.body, "");
}

#[tokio::test]
async fn update_conference_end_sends_status_completed() {
    let server = CaptureServer::start().await;
    let ended = server
        .client()
        .update_conference(
            CONFERENCE,
            &UpdateConference {
                end: true,
                ..UpdateConference::default()
            },
        )
        .await
        .unwrap();
    let req = server.only_request();
    assert_eq!(
        req.path,
        format!("/2010-04-01/Accounts/{ACCOUNT}/Conferences/{CONFERENCE}.json")
    );
    assert_eq!(
        req.pairs(),
        [("Status".to_string(), "completed".to_string())]
    );
    assert_eq!(ended.status, Some(ConferenceStatus::Completed));
    assert_eq!(ended.friendly_name.as_deref(), Some("campaign-42"));
}

#[tokio::test]
async fn base_url_with_path_prefix_keeps_the_prefix() {
    let server = CaptureServer::start().await;
    let client = client_for(&format!("{}/carrier/", server.base_url), fast_retry());
    client.create_call(&dial()).await.unwrap();
    assert_eq!(
        server.only_request().path,
        format!("/carrier/2010-04-01/Accounts/{ACCOUNT}/Calls.json")
    );
}

#[tokio::test]
async fn api_error_json_becomes_typed_api_error_without_retry() {
    let server = CaptureServer::start().await;
    server.push(Reply::json(
        400,
        r#"{"code": 21211, "message": "The 'To' number +1555 is not a valid phone number.", "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400}"#,
    ));
    let err = server.client().create_call(&dial()).await.unwrap_err();
    match &err {
        TwilioError::Api {
            status,
            code,
            message,
        } => {
            assert_eq!(*status, 400);
            assert_eq!(*code, Some(21211));
            assert!(message.contains("not a valid phone number"), "{message}");
        }
        other => panic!("expected Api, got {other:?}"),
    }
    assert!(!err.is_retryable());
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn not_found_error_code_is_kept() {
    let server = CaptureServer::start().await;
    server.push(Reply::json(
        404,
        r#"{"code": 20404, "message": "The requested resource was not found", "more_info": "https://www.twilio.com/docs/errors/20404", "status": 404}"#,
    ));
    let err = server
        .client()
        .remove_participant(CONFERENCE, CALL)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            TwilioError::Api {
                status: 404,
                code: Some(20404),
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn rate_limited_then_created_is_retried_and_succeeds() {
    let server = CaptureServer::start().await;
    server.push(Reply::json(
        429,
        r#"{"code": 20429, "message": "Too Many Requests", "more_info": "https://www.twilio.com/docs/errors/20429", "status": 429}"#,
    ));
    let created = server.client().create_call(&dial()).await.unwrap();
    assert_eq!(created.sid.as_str(), CALL);
    let seen = server.requests();
    assert_eq!(seen.len(), 2);
    assert_eq!(
        seen[0].body, seen[1].body,
        "the retry must be the same request"
    );
}

#[tokio::test]
async fn error_code_20429_with_other_status_is_rate_limited() {
    let server = CaptureServer::start().await;
    server.push(Reply::json(
        503,
        r#"{"code": 20429, "message": "Too Many Requests"}"#,
    ));
    server.client().create_call(&dial()).await.unwrap();
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn rate_limited_retry_after_is_waited_out() {
    let server = CaptureServer::start().await;
    server.push(Reply::json(429, "{}").header("retry-after", "1"));
    let retry = RetryPolicy {
        max_delay: Duration::from_secs(2),
        ..fast_retry()
    };
    let started = Instant::now();
    client_for(&server.base_url, retry)
        .create_call(&dial())
        .await
        .unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn rate_limited_retry_after_beyond_max_delay_goes_back_to_caller() {
    let server = CaptureServer::start().await;
    server.push(Reply::json(429, "{}").header("retry-after", "30"));
    let err = server.client().create_call(&dial()).await.unwrap_err();
    assert!(
        matches!(err, TwilioError::RateLimited { retry_after: Some(d) } if d == Duration::from_secs(30)),
        "{err:?}"
    );
    assert!(err.is_retryable());
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn rate_limited_every_time_stops_after_max_attempts() {
    let server = CaptureServer::start().await;
    for _ in 0..10 {
        server.push(Reply::json(429, "{}"));
    }
    let err = server.client().create_call(&dial()).await.unwrap_err();
    assert!(
        matches!(err, TwilioError::RateLimited { retry_after: None }),
        "{err:?}"
    );
    assert_eq!(server.requests().len(), 4);
}

#[tokio::test]
async fn server_error_is_not_retried() {
    let server = CaptureServer::start().await;
    server.push(Reply::json(500, "<html>Internal Server Error</html>"));
    let err = server.client().create_call(&dial()).await.unwrap_err();
    match &err {
        TwilioError::Api {
            status: 500,
            code: None,
            message,
        } => assert!(message.contains("Internal Server Error"), "{message}"),
        other => panic!("expected Api 500, got {other:?}"),
    }
    assert_eq!(
        server.requests().len(),
        1,
        "a repeated create could dial twice"
    );
}

#[tokio::test]
async fn timeout_after_sending_is_not_retried() {
    let server = CaptureServer::start().await;
    server.push(Reply::json(201, CALL_JSON).delayed(Duration::from_secs(3)));
    let client = TwilioClient::new(
        ACCOUNT.to_string(),
        SecretString::from(TOKEN),
        &server.base_url,
        Duration::from_millis(300),
        fast_retry(),
    )
    .unwrap();
    let err = client.create_call(&dial()).await.unwrap_err();
    assert!(
        matches!(err, TwilioError::Transport { sent: true, .. }),
        "{err:?}"
    );
    assert!(!err.is_retryable());
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn success_with_unexpected_body_is_a_decode_error() {
    let server = CaptureServer::start().await;
    server.push(Reply::json(
        201,
        r#"{"sid": "not-a-call-sid", "status": "queued"}"#,
    ));
    let err = server.client().create_call(&dial()).await.unwrap_err();
    assert!(matches!(err, TwilioError::Decode(_)), "{err:?}");
}

/// A port nothing listens on (bound, then released).
async fn closed_port() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

#[tokio::test]
async fn connection_refused_is_retried_then_transport_not_sent() {
    let addr = closed_port().await;
    let retry = RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(40),
        max_delay: Duration::from_millis(200),
    };
    let started = Instant::now();
    let err = client_for(&format!("http://{addr}"), retry)
        .create_call(&dial())
        .await
        .unwrap_err();
    assert!(
        matches!(err, TwilioError::Transport { sent: false, .. }),
        "{err:?}"
    );
    assert!(err.is_retryable());
    // Two backoffs of at least 20 ms and 40 ms (equal jitter): proof it tried 3 times.
    assert!(
        started.elapsed() >= Duration::from_millis(60),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn connection_refused_then_server_up_succeeds() {
    let addr = closed_port().await;
    let retry = RetryPolicy {
        max_attempts: 8,
        base_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(200),
    };
    let client = client_for(&format!("http://{addr}"), retry);
    let call = tokio::spawn(async move { client.create_call(&dial()).await });
    tokio::time::sleep(Duration::from_millis(120)).await;
    let server = CaptureServer::serve(tokio::net::TcpListener::bind(addr).await.unwrap());
    let created = call.await.unwrap().unwrap();
    assert_eq!(created.sid.as_str(), CALL);
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn client_debug_never_shows_the_token() {
    let client = client_for("https://api.twilio.com", RetryPolicy::default());
    let debug = format!("{client:?}");
    assert!(!debug.contains(TOKEN), "{debug}");
    assert!(!debug.contains("5ecret"), "{debug}");
    assert!(
        debug.contains("[redacted]") && debug.contains(ACCOUNT),
        "{debug}"
    );
}

#[test]
fn from_settings_rejects_missing_or_malformed_configuration() {
    let good = TwilioSettings {
        account_sid: ACCOUNT.into(),
        auth_token: Some(SecretString::from(TOKEN)),
        ..TwilioSettings::default()
    };
    let client = TwilioClient::from_settings(&good).unwrap();
    assert_eq!(client.account_sid(), ACCOUNT);

    let no_token = TwilioSettings {
        auth_token: None,
        ..good.clone()
    };
    assert!(matches!(
        TwilioClient::from_settings(&no_token),
        Err(ClientConfigError::MissingAuthToken)
    ));
    let empty_token = TwilioSettings {
        auth_token: Some(SecretString::from("")),
        ..good.clone()
    };
    assert!(matches!(
        TwilioClient::from_settings(&empty_token),
        Err(ClientConfigError::MissingAuthToken)
    ));
    let no_sid = TwilioSettings {
        account_sid: String::new(),
        ..good.clone()
    };
    assert!(matches!(
        TwilioClient::from_settings(&no_sid),
        Err(ClientConfigError::MissingAccountSid)
    ));
    let bad_sid = TwilioSettings {
        account_sid: "AC123".into(),
        ..good.clone()
    };
    assert!(matches!(
        TwilioClient::from_settings(&bad_sid),
        Err(ClientConfigError::InvalidAccountSid(_))
    ));
    for url in [
        "ftp://api.twilio.com",
        "api.twilio.com",
        "https://api.twilio.com/?x=1",
    ] {
        let bad_url = TwilioSettings {
            api_base_url: url.into(),
            ..good.clone()
        };
        assert!(
            matches!(
                TwilioClient::from_settings(&bad_url),
                Err(ClientConfigError::InvalidBaseUrl(_))
            ),
            "{url}"
        );
    }
}

#[test]
fn backoff_doubles_within_jitter_bounds_and_caps() {
    let policy = RetryPolicy {
        max_attempts: 10,
        base_delay: Duration::from_millis(100),
        max_delay: Duration::from_secs(2),
    };
    for attempt in 1..=10u32 {
        let full = (Duration::from_millis(100) * 2u32.pow(attempt - 1)).min(Duration::from_secs(2));
        for _ in 0..50 {
            let d = policy.backoff(attempt);
            assert!(
                d >= full / 2 && d <= full,
                "attempt {attempt}: {d:?} not in [{:?}, {full:?}]",
                full / 2
            );
        }
    }
}

#[test]
fn call_resource_tolerates_missing_and_extra_fields() {
    let call: CallResource = serde_json::from_str(
        r#"{"sid": "CAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "status": "in-progress",
            "answered_by": "machine_end_beep", "duration": "15", "brand_new_field": [1, 2]}"#,
    )
    .unwrap();
    assert_eq!(call.status, CallStatus::InProgress);
    assert_eq!(call.answered_by, Some(AnsweredBy::MachineEndBeep));
    assert_eq!(call.duration_secs, Some(15));
    assert_eq!(call.to, None);
    assert_eq!(call.date_created, None);

    let bad_date = serde_json::from_str::<CallResource>(
        r#"{"sid": "CAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "status": "queued", "date_created": "yesterday"}"#,
    );
    assert!(bad_date.is_err());
}

#[test]
fn retryable_errors_are_exactly_rate_limits_and_unsent_requests() {
    let cases = [
        (TwilioError::RateLimited { retry_after: None }, true),
        (
            TwilioError::Transport {
                message: "refused".into(),
                sent: false,
            },
            true,
        ),
        (
            TwilioError::Transport {
                message: "timed out".into(),
                sent: true,
            },
            false,
        ),
        (
            TwilioError::Api {
                status: 503,
                code: None,
                message: "unavailable".into(),
            },
            false,
        ),
        (TwilioError::Decode("eof".into()), false),
    ];
    for (err, retryable) in cases {
        assert_eq!(err.is_retryable(), retryable, "{err}");
    }
}
