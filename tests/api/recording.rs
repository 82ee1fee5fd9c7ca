//! Recording of bridged calls against the carrier simulator: a recorded campaign's
//! conference is recorded from the agent's entry (not the hold), the person hears the
//! consent notice before, and the finished recording lands on the call; a campaign that
//! does not record sends no recording attributes and gets no recording.

use std::time::Duration;

use dialer::call::CallId;
use dialer::sim::{Entry, Event, Simulator};
use dialer::telephony::twiml::{DialTarget, Verb, VoiceResponse};
use reqwest::StatusCode;

use crate::engine::{adjust_for, midweek, numbers, start_campaign, wait_completed};
use crate::helpers::{TEST_ACCOUNT_SID, TEST_AUTH_TOKEN, TestApp, spawn_app_with};
use crate::transfer::{agent, conferences, group, people};

const CONSENT: &str = "This call may be recorded for quality and training.";

/// One person answers and an agent takes them; `recording` is added to the campaign's
/// settings. Returns the app, the simulator and the attempt's id.
async fn bridged_call(npa: u32, recording: &str) -> (TestApp, Simulator, i64) {
    let leads = numbers(npa, 1);
    let mut cfg = people(&leads);
    // The agent answers well after the person has heard the notice and gone on hold, so
    // the bridge usually follows a hold (the case where recording from the hold would
    // show); either order must keep the recording to the agent's entry.
    cfg.timing.agent_answer_secs = [6.0, 6.0];
    let sim = Simulator::start(cfg).await.unwrap();
    let app = spawn_app_with(adjust_for(&sim, 20)).await;
    app.engine.clock.set(midweek(15, 0));
    let t = app.tenant("Acme").await;
    let ann = agent(&app, &t, "client:ann", 10, "").await;
    let g = group(&app, &t, &[ann]).await;
    start_campaign(
        &app,
        &t,
        &leads,
        &format!(", max_attempts = 1, abandon_cap_pct = 3, max_hold_ms = 10000, agent_group_id = '{g}'{recording}"),
    )
    .await;
    wait_completed(&app, &t, Duration::from_secs(30)).await;
    let (id, disposition): (i64, Option<String>) =
        sqlx::query_as("SELECT id, disposition FROM calls")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(disposition.as_deref(), Some("answered"));
    let joined = conferences(&sim.journal());
    assert_eq!(
        joined
            .get(&CallId(id).conference_name())
            .map(|calls| calls.len()),
        Some(2),
        "the person and the agent were bridged: {joined:?}"
    );
    (app, sim, id)
}

/// The call SID of the person's leg and of the agent's.
fn legs(journal: &[Entry]) -> (String, String) {
    let sid = |want_agent: bool| {
        journal
            .iter()
            .find_map(|e| match &e.event {
                Event::DialRequest {
                    call_sid, agent, ..
                } if *agent == want_agent => Some(call_sid.clone()),
                _ => None,
            })
            .expect("both legs were dialled")
    };
    (sid(false), sid(true))
}

/// Where in the journal the first entry matching `f` is.
fn position(journal: &[Entry], what: &str, f: impl Fn(&Event) -> bool) -> usize {
    journal
        .iter()
        .position(|e| f(&e.event))
        .unwrap_or_else(|| panic!("no {what} in the journal"))
}

/// The recording's callback reaches the daemon on the conference's own queue, a moment
/// after the person's final status: wait for it to land on the call.
async fn wait_for_recording(app: &TestApp, id: i64) -> (String, String, i32) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let row: (Option<String>, Option<String>, Option<i32>) = sqlx::query_as(
            "SELECT recording_sid, recording_url, recording_duration_secs FROM calls WHERE id = $1",
        )
        .bind(id)
        .fetch_one(&app.db)
        .await
        .unwrap();
        if let (Some(sid), Some(url), Some(secs)) = row {
            return (sid, url, secs);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no recording on the call: {row:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The person's TwiML as the daemon answers the voice URL (a repeat of the answer
/// callback, which changes nothing).
async fn lead_twiml(app: &TestApp, id: i64, lead_sid: &str) -> VoiceResponse {
    let r = app
        .callback(
            &format!("/twilio/calls/{id}/voice"),
            &vec![("CallSid", lead_sid.to_string())],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    VoiceResponse::parse(&r.text().await.unwrap()).unwrap()
}

#[tokio::test]
async fn a_recorded_bridge_is_recorded_from_the_agents_entry_after_the_consent_notice() {
    let (app, sim, id) = bridged_call(
        512,
        &format!(", recording_enabled = true, recording_consent_message = '{CONSENT}'"),
    )
    .await;
    let (sid, url, secs) = wait_for_recording(&app, id).await;
    let journal = sim.journal();
    let (lead, agent) = legs(&journal);
    let conference = CallId(id).conference_name();

    // The person heard the whole notice before entering the conference (a <Say> runs to
    // its end before the <Dial>), and the recording began after that.
    let said = position(
        &journal,
        "consent notice",
        |e| matches!(e, Event::Verb { call_sid, verb, text: Some(t) } if *call_sid == lead && verb == "Say" && t == CONSENT),
    );
    let lead_joined = position(
        &journal,
        "person's entry",
        |e| matches!(e, Event::ConferenceJoin { call_sid, .. } if *call_sid == lead),
    );
    let agent_joined = position(
        &journal,
        "agent's entry",
        |e| matches!(e, Event::ConferenceJoin { call_sid, .. } if *call_sid == agent),
    );
    let started = position(
        &journal,
        "recording start",
        |e| matches!(e, Event::RecordingStart { conference: c, .. } if *c == conference),
    );
    assert!(
        said < lead_joined,
        "notice at {said}, entry at {lead_joined}"
    );
    assert!(said < started, "notice at {said}, recording at {started}");
    // The recording starts with the agent's entry (the conference's start), never with
    // the person's hold. Which of the two enters first is a race (the person's notice
    // against the agent's ring, whisper and key press): on a loaded machine the agent
    // can be in first, and the recording still starts with the agent.
    assert!(
        agent_joined < started,
        "person in at {lead_joined}, agent in at {agent_joined}, recording at {started}"
    );
    assert_eq!(
        journal
            .iter()
            .filter(|e| matches!(e.event, Event::RecordingStart { .. }))
            .count(),
        1,
        "one recording"
    );

    // What the simulator recorded is on the call: SID, URL, duration (> 0, and shorter
    // than the person's call, whose hold was not recorded).
    let (rec_sid, conference_sid, rec_secs) = journal
        .iter()
        .find_map(|e| match &e.event {
            Event::RecordingEnd {
                recording_sid,
                conference_sid,
                status,
                duration_secs,
                ..
            } if status == "completed" => Some((
                recording_sid.clone(),
                conference_sid.clone(),
                *duration_secs,
            )),
            _ => None,
        })
        .expect("the recording completed");
    assert_eq!(sid, rec_sid);
    assert!(
        sid.len() == 34 && sid.starts_with("RE"),
        "a recording SID: {sid}"
    );
    assert_eq!(
        url,
        format!(
            "{}/2010-04-01/Accounts/{TEST_ACCOUNT_SID}/Recordings/{sid}",
            sim.url()
        )
    );
    assert!(secs > 0, "duration {secs}");
    assert_eq!(secs, rec_secs as i32);
    let call_secs: i32 = sqlx::query_scalar("SELECT duration_secs FROM calls WHERE id = $1")
        .bind(id)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert!(
        secs < call_secs,
        "recorded {secs} s of a {call_secs} s call"
    );
    // The callback was signed, accepted, and stored once as the call's event.
    assert!(
        journal.iter().any(|e| matches!(
            &e.event,
            Event::Callback { kind, http_status: Some(204), .. } if kind == "recording"
        )),
        "the recording callback was accepted"
    );
    let events: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM call_events WHERE call_id = $1 AND kind = 'recording'",
    )
    .bind(id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(events, 1);
    // The URL names the carrier's recording resource.
    let resource: serde_json::Value = app
        .client
        .get(format!("{url}.json"))
        .basic_auth(TEST_ACCOUNT_SID, Some(TEST_AUTH_TOKEN))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(resource["conference_sid"], conference_sid);
    assert_eq!(resource["duration"], secs.to_string());
    assert_eq!(resource["status"], "completed");

    // The person's TwiML: the notice, then the recorded conference.
    let twiml = lead_twiml(&app, id, &lead).await;
    assert!(
        matches!(twiml.verbs.first(), Some(Verb::Say(s)) if s.text == CONSENT),
        "{twiml:?}"
    );
    let Some(Verb::Dial(dial)) = twiml.verbs.get(1) else {
        panic!("{twiml:?}")
    };
    let Some(DialTarget::Conference(c)) = dial.targets.first() else {
        panic!("{dial:?}")
    };
    assert_eq!(
        c.recording_status_callback.as_deref(),
        Some(format!("{}/twilio/calls/{id}/recording", app.public_url).as_str())
    );
}

#[tokio::test]
async fn a_campaign_that_does_not_record_sends_no_recording_attributes_and_gets_no_recording() {
    let (app, sim, id) = bridged_call(513, "").await;
    let journal = sim.journal();
    assert!(
        !journal.iter().any(|e| matches!(
            &e.event,
            Event::RecordingStart { .. } | Event::RecordingEnd { .. }
        ) || matches!(&e.event, Event::Callback { kind, .. } if kind == "recording")),
        "nothing recorded"
    );
    let (lead, _) = legs(&journal);
    assert!(
        !journal.iter().any(
            |e| matches!(&e.event, Event::Verb { call_sid, verb, .. } if *call_sid == lead && verb == "Say")
        ),
        "no notice to the person"
    );
    let row: (Option<String>, Option<String>, Option<i32>) = sqlx::query_as(
        "SELECT recording_sid, recording_url, recording_duration_secs FROM calls WHERE id = $1",
    )
    .bind(id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(row, (None, None, None));
    let twiml = lead_twiml(&app, id, &lead).await;
    let Some(Verb::Dial(dial)) = twiml.verbs.first() else {
        panic!("{twiml:?}")
    };
    let Some(DialTarget::Conference(c)) = dial.targets.first() else {
        panic!("{dial:?}")
    };
    assert_eq!(
        (
            c.record,
            c.recording_status_callback.as_deref(),
            c.recording_status_callback_method,
            c.recording_status_callback_event.len()
        ),
        (None, None, None, 0)
    );
}

#[tokio::test]
async fn absent_and_failed_recordings_are_kept_as_events_and_the_first_recording_stays() {
    let app = spawn_app_with(|_| {}).await;
    let id = app.seed_calls(1).await[0];
    let path = format!("/twilio/calls/{id}/recording");
    let conference = "CF0123456789abcdef0123456789abcdef".to_string();
    let callback = |sid: &str, status: &str, extra: &[(&'static str, &str)]| {
        let mut p = vec![
            ("AccountSid", TEST_ACCOUNT_SID.to_string()),
            ("ConferenceSid", conference.clone()),
            ("RecordingSid", sid.to_string()),
            ("RecordingStatus", status.to_string()),
        ];
        p.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
        p
    };
    let absent = "RE00000000000000000000000000000001";
    let failed = "RE00000000000000000000000000000002";
    let first = "RE00000000000000000000000000000003";
    let second = "RE00000000000000000000000000000004";
    for params in [
        callback(absent, "absent", &[("ErrorCode", "16102")]),
        callback(failed, "failed", &[]),
    ] {
        assert_eq!(
            app.callback(&path, &params).await.status(),
            StatusCode::NO_CONTENT
        );
    }
    let recording_of = || async {
        let row: (Option<String>, Option<i32>) = sqlx::query_as(
            "SELECT recording_sid, recording_duration_secs FROM calls WHERE id = $1",
        )
        .bind(id)
        .fetch_one(&app.db)
        .await
        .unwrap();
        row
    };
    assert_eq!(recording_of().await, (None, None), "nothing was kept");
    let done = |sid: &str, secs: &str| {
        callback(
            sid,
            "completed",
            &[
                ("RecordingUrl", "https://api.twilio.com/x"),
                ("RecordingDuration", secs),
            ],
        )
    };
    for params in [done(first, "30"), done(first, "30"), done(second, "99")] {
        assert_eq!(
            app.callback(&path, &params).await.status(),
            StatusCode::NO_CONTENT
        );
    }
    assert_eq!(recording_of().await, (Some(first.to_string()), Some(30)));
    let events: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT event_key, call_sid FROM call_events WHERE call_id = $1 AND kind = 'recording' ORDER BY id",
    )
    .bind(id)
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(
        events,
        vec![
            (format!("{absent}:absent"), None),
            (format!("{failed}:failed"), None),
            (format!("{first}:completed"), None),
            (format!("{second}:completed"), None),
        ],
        "each recording and status once; a conference's recording names no call"
    );
    // Unsigned (or signed with another token): refused before anything is stored.
    let forged = app
        .callback_signed_with("not-the-token", &path, &done(second, "1"))
        .await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    // A malformed SID is refused, naming the field.
    let bad = app.callback(&path, &done("RE1", "1")).await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert!(bad.text().await.unwrap().contains("RecordingSid"));
}
