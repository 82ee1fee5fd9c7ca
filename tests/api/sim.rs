//! The carrier simulator driven like Twilio, with the daemon receiving its callbacks:
//! each scenario produces the callback sequence Twilio documents, signed so the daemon
//! accepts it, and the attempt ends with the right disposition.

use std::collections::BTreeMap;
use std::time::Duration;

use dialer::call::CallId;
use dialer::sim::{Event, Outcome, SimConfig, Simulator};
use dialer::telephony::client::{
    AddParticipant, CallEvent, CreateCall, EndCall, Instructions, MachineDetection, RetryPolicy,
    TwilioClient, TwilioError, UpdateCall,
};
use dialer::telephony::{CallSid, CallStatus};
use secrecy::SecretString;

use crate::helpers::{TEST_ACCOUNT_SID, TEST_AUTH_TOKEN, TestApp, spawn_app};

pub fn sim_config(numbers: &[(&str, Outcome)]) -> SimConfig {
    let mut c = SimConfig {
        listen: "127.0.0.1:0".into(),
        account_sid: TEST_ACCOUNT_SID.into(),
        auth_token: TEST_AUTH_TOKEN.into(),
        speed: 40.0,
        cps: 200.0,
        numbers: numbers
            .iter()
            .map(|(n, o)| (n.to_string(), *o))
            .collect::<BTreeMap<_, _>>(),
        ..SimConfig::default()
    };
    c.timing.hold_patience_secs = [6.0, 6.0];
    c
}

/// The typed client, pointed at the simulator.
pub fn client_for(sim: &Simulator) -> TwilioClient {
    TwilioClient::new(
        TEST_ACCOUNT_SID.into(),
        SecretString::from(TEST_AUTH_TOKEN),
        &sim.url(),
        Duration::from_secs(5),
        RetryPolicy::default(),
    )
    .expect("client for the simulator")
}

/// Dials lead attempt `id` through the simulator as the daemon does, with the typed
/// client: async AMD with DetectMessageEnd, every status event, callbacks to the
/// daemon's webhooks.
async fn dial(app: &TestApp, sim: &Simulator, id: CallId, to: &str) -> String {
    let hook = |tail: &str| format!("{}/twilio/calls/{id}/{tail}", app.public_url);
    let mut call = CreateCall::new(
        to,
        "+14155550000",
        Instructions::Url {
            url: hook("voice"),
            method: None,
        },
    );
    call.status_callback = Some(hook("status"));
    call.status_callback_event = vec![
        CallEvent::Initiated,
        CallEvent::Ringing,
        CallEvent::Answered,
        CallEvent::Completed,
    ];
    call.timeout_secs = Some(30);
    call.machine_detection = Some(MachineDetection::DetectMessageEnd);
    call.async_amd = Some(true);
    call.async_amd_status_callback = Some(hook("amd"));
    let created = client_for(sim)
        .create_call(&call)
        .await
        .expect("the simulator accepts the call");
    assert_eq!(created.status, CallStatus::Queued);
    created.sid.to_string()
}

/// The status callbacks the daemon stored for a call, in SequenceNumber order.
async fn statuses(app: &TestApp, id: CallId) -> Vec<(i32, String, serde_json::Value)> {
    sqlx::query_as(
        "SELECT sequence, payload->>'CallStatus', payload FROM call_events
          WHERE call_id = $1 AND kind = 'status' ORDER BY sequence",
    )
    .bind(id)
    .fetch_all(&app.db)
    .await
    .unwrap()
}

#[tokio::test]
async fn each_scenario_produces_twilios_callback_sequence_and_disposition() {
    let app = spawn_app().await;
    let ids = app.seed_calls(5).await;
    let number = |i: usize| format!("+1415{:07}", i + 1);
    let outcomes = [
        Outcome::Busy,
        Outcome::NoAnswer,
        Outcome::Failed,
        Outcome::Human,
        Outcome::Machine,
    ];
    let pinned: Vec<(String, Outcome)> = outcomes
        .iter()
        .enumerate()
        .map(|(i, o)| (number(i), *o))
        .collect();
    let pinned_ref: Vec<(&str, Outcome)> = pinned.iter().map(|(n, o)| (n.as_str(), *o)).collect();
    let sim = Simulator::start(sim_config(&pinned_ref)).await.unwrap();
    let mut sids = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        sids.push(dial(&app, &sim, *id, &number(i)).await);
    }
    assert!(
        sim.wait_idle(Duration::from_secs(30)).await,
        "all calls end"
    );
    // Callbacks are delivered asynchronously; give the last ones a moment to land.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let expect = [
        (vec!["initiated", "ringing", "busy"], "busy", "486"),
        (
            vec!["initiated", "ringing", "no-answer"],
            "no_answer",
            "487",
        ),
        (vec!["initiated", "failed"], "failed", "404"),
        (
            vec!["initiated", "ringing", "in-progress", "completed"],
            "answered",
            "200",
        ),
        (
            vec!["initiated", "ringing", "in-progress", "completed"],
            "voicemail",
            "200",
        ),
    ];
    for (i, id) in ids.iter().enumerate() {
        let got = statuses(&app, *id).await;
        let seqs: Vec<i32> = got.iter().map(|g| g.0).collect();
        let names: Vec<&str> = got.iter().map(|g| g.1.as_str()).collect();
        assert_eq!(names, expect[i].0, "{:?}", outcomes[i]);
        assert_eq!(
            seqs,
            (0..seqs.len() as i32).collect::<Vec<_>>(),
            "SequenceNumber counts from 0"
        );
        let last = &got.last().unwrap().2;
        assert_eq!(last["SipResponseCode"], expect[i].2, "{:?}", outcomes[i]);
        assert_eq!(last["CallSid"], sids[i].as_str());
        let (state, disposition, answered_by, duration, _) = app.call_row(*id).await;
        assert_eq!(state, names.last().copied().unwrap());
        assert_eq!(
            disposition.as_deref(),
            Some(expect[i].1),
            "{:?}",
            outcomes[i]
        );
        match outcomes[i] {
            Outcome::Human => {
                assert_eq!(answered_by.as_deref(), Some("human"));
                assert!(
                    duration.unwrap() >= 5,
                    "a human who waited ~6 s: {duration:?}"
                );
            }
            Outcome::Machine => {
                let by = answered_by.unwrap();
                assert!(
                    by.starts_with("machine_end_"),
                    "DetectMessageEnd verdict: {by}"
                );
                assert!(duration.unwrap() > 0);
            }
            _ => {
                assert_eq!(answered_by, None);
                assert_eq!(duration, Some(0));
            }
        }
    }
    // The journal saw each call start after its dial request and end once.
    let journal = sim.journal();
    for sid in &sids {
        let ends = journal
            .iter()
            .filter(|e| matches!(&e.event, Event::CallEnd { call_sid, .. } if call_sid == sid))
            .count();
        assert_eq!(ends, 1);
    }
    let refused = journal
        .iter()
        .filter(|e| matches!(e.event, Event::Callback { http_status: Some(s), .. } if s >= 300))
        .count();
    assert_eq!(refused, 0, "the daemon accepted every signed callback");
    sim.stop().await;
}

async fn post_form(
    url: &str,
    auth: Option<(&str, &str)>,
    form: &[(&str, &str)],
) -> (u16, serde_json::Value) {
    let mut req = reqwest::Client::new().post(url).form(form);
    if let Some((u, p)) = auth {
        req = req.basic_auth(u, Some(p));
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(serde_json::Value::Null))
}

#[tokio::test]
async fn simulator_refuses_like_twilio_without_auth_with_bad_params_and_over_the_request_limit() {
    let mut config = sim_config(&[]);
    config.max_concurrent_requests = 2;
    config.api_latency_ms = 300;
    let sim = Simulator::start(config).await.unwrap();
    let calls = format!(
        "{}/2010-04-01/Accounts/{TEST_ACCOUNT_SID}/Calls.json",
        sim.url()
    );
    let auth = Some((TEST_ACCOUNT_SID, TEST_AUTH_TOKEN));
    let good = [
        ("To", "+14155550100"),
        ("From", "+14155550000"),
        ("Url", "http://127.0.0.1:9/voice"),
    ];

    let (status, body) = post_form(&calls, None, &good).await;
    assert_eq!((status, body["code"].as_u64()), (401, Some(20003)));
    let (status, _) = post_form(&calls, Some((TEST_ACCOUNT_SID, "wrong")), &good).await;
    assert_eq!(status, 401);
    let other = calls.replace(TEST_ACCOUNT_SID, "AC11111111111111111111111111111111");
    let (status, _) = post_form(&other, auth, &good).await;
    assert_eq!(status, 404);
    let (status, body) = post_form(&calls, auth, &good[1..]).await;
    assert_eq!(
        (status, body["code"].as_u64()),
        (400, Some(21201)),
        "{body}"
    );
    let bad_to = [("To", "4155550100"), good[1], good[2]];
    let (status, body) = post_form(&calls, auth, &bad_to).await;
    assert_eq!(
        (status, body["code"].as_u64()),
        (400, Some(21211)),
        "{body}"
    );
    let (status, body) = post_form(
        &calls,
        auth,
        &[good[0], good[1], good[2], ("Timeout", "abc")],
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body["message"].as_str().unwrap().contains("Timeout"));

    // Five at once against a limit of two in flight: the rest get 429 / 20429.
    let results = futures::future::join_all((0..5).map(|_| post_form(&calls, auth, &good))).await;
    let created = results.iter().filter(|(s, _)| *s == 201).count();
    let limited: Vec<_> = results.iter().filter(|(s, _)| *s == 429).collect();
    assert_eq!(created, 2, "{results:?}");
    assert_eq!(limited.len(), 3);
    assert!(limited.iter().all(|(_, b)| b["code"] == 20429));
    sim.stop().await;
}

#[tokio::test]
async fn calls_over_the_cps_limit_are_queued_not_refused() {
    let mut config = sim_config(&[]);
    config.cps = 10.0;
    let sim = Simulator::start(config).await.unwrap();
    let calls = format!(
        "{}/2010-04-01/Accounts/{TEST_ACCOUNT_SID}/Calls.json",
        sim.url()
    );
    let auth = Some((TEST_ACCOUNT_SID, TEST_AUTH_TOKEN));
    let form = [
        ("To", "+14155550100"),
        ("From", "+14155550000"),
        ("Url", "http://127.0.0.1:9/voice"),
    ];
    let results = futures::future::join_all((0..8).map(|_| post_form(&calls, auth, &form))).await;
    assert!(results.iter().all(|(s, _)| *s == 201));
    sim.wait_idle(Duration::from_secs(20)).await;
    let mut starts: Vec<f64> = sim
        .journal()
        .iter()
        .filter(|e| matches!(e.event, Event::DialStart { .. }))
        .map(|e| e.t_ms)
        .collect();
    starts.sort_by(f64::total_cmp);
    assert_eq!(starts.len(), 8);
    // The n-th call never starts before its slot, n × 100 ms after the first (a start the
    // machine's load delayed may sit closer to the next one, as Twilio's queue allows).
    for (n, t) in starts.iter().enumerate() {
        assert!(
            t - starts[0] >= n as f64 * 100.0 - 5.0,
            "10 CPS: call {n} started {} ms after the first, before its slot: {starts:?}",
            t - starts[0]
        );
    }
    assert!(
        starts[7] - starts[0] < 2000.0,
        "queued, not refused or stalled: {starts:?}"
    );
    sim.stop().await;
}

#[tokio::test]
async fn duplicated_and_reordered_callbacks_leave_the_daemons_calls_right() {
    let app = spawn_app().await;
    let ids = app.seed_calls(6).await;
    let mut config = sim_config(&[]);
    config.duplicate_callbacks = 0.5;
    config.reorder_callbacks = 0.5;
    config.mix.failed = 0.0;
    let sim = Simulator::start(config).await.unwrap();
    for (i, id) in ids.iter().enumerate() {
        dial(&app, &sim, *id, &format!("+1415{:07}", i + 1)).await;
    }
    assert!(sim.wait_idle(Duration::from_secs(30)).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let journal = sim.journal();
    assert!(
        journal.iter().any(|e| matches!(
            e.event,
            Event::Callback {
                duplicate: true,
                ..
            }
        )),
        "some callbacks were sent twice"
    );
    for id in &ids {
        let got = statuses(&app, *id).await;
        let seqs: Vec<i32> = got.iter().map(|g| g.0).collect();
        assert_eq!(
            seqs,
            (0..seqs.len() as i32).collect::<Vec<_>>(),
            "each callback stored once"
        );
        let (state, disposition, ..) = app.call_row(*id).await;
        let last = got.last().unwrap().1.clone();
        assert_eq!(
            state, last,
            "the final state wins whatever the arrival order"
        );
        assert!(disposition.is_some());
    }
}

#[tokio::test]
async fn agent_who_presses_1_is_bridged_with_the_waiting_lead() {
    let app = spawn_app().await;
    let id = app.seed_calls(1).await[0];
    let mut config = sim_config(&[("+14150000001", Outcome::Human)]);
    config.agent_numbers = vec!["+14155559999".into()];
    config.timing.hold_patience_secs = [60.0, 60.0];
    config.timing.talk_secs = [10.0, 10.0];
    let sim = Simulator::start(config).await.unwrap();
    let offer = app.seed_offer(id, "+14155559999").await;
    let lead_sid = dial(&app, &sim, id, "+14150000001").await;
    // Wait until the lead is answered and on hold, then ring the agent with the whisper.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !sim.journal().iter().any(
        |e| matches!(&e.event, Event::ConferenceJoin { call_sid, .. } if *call_sid == lead_sid),
    ) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "lead never reached the conference"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let agent = [
        ("To", "+14155559999".to_string()),
        ("From", "+14155550000".to_string()),
        (
            "Url",
            format!(
                "{}/twilio/calls/{id}/offers/{offer}/whisper",
                app.public_url
            ),
        ),
        (
            "StatusCallback",
            format!("{}/twilio/calls/{id}/offers/{offer}/status", app.public_url),
        ),
    ];
    let agent_ref: Vec<(&str, &str)> = agent.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, body) = post_form(
        &format!(
            "{}/2010-04-01/Accounts/{TEST_ACCOUNT_SID}/Calls.json",
            sim.url()
        ),
        Some((TEST_ACCOUNT_SID, TEST_AUTH_TOKEN)),
        &agent_ref,
    )
    .await;
    assert_eq!(status, 201);
    let agent_sid = body["sid"].as_str().unwrap().to_string();
    assert!(sim.wait_idle(Duration::from_secs(30)).await);
    tokio::time::sleep(Duration::from_millis(300)).await;

    let journal = sim.journal();
    assert!(journal.iter().any(|e| matches!(&e.event, Event::Digits { call_sid, digits } if *call_sid == agent_sid && digits == "1")));
    assert!(
        journal
            .iter()
            .any(|e| matches!(e.event, Event::ConferenceStart { .. }))
    );
    let lead_end = journal.iter().find_map(|e| match &e.event {
        Event::CallEnd {
            call_sid,
            bridged,
            duration_secs,
            ..
        } if *call_sid == lead_sid => Some((*bridged, *duration_secs)),
        _ => None,
    });
    let (bridged, talked) = lead_end.unwrap();
    assert!(bridged, "the lead was bridged to the agent");
    assert!(
        talked >= 10,
        "talked for the talk time after the bridge: {talked}"
    );
    // The lead hung up after talking; endConferenceOnExit ended the agent's leg too.
    let agent_end = journal.iter().any(|e| matches!(&e.event, Event::CallEnd { call_sid, bridged: true, .. } if *call_sid == agent_sid));
    assert!(agent_end);
    let (bridged_at, joins): (bool, i64) = sqlx::query_as(
        "SELECT bridged_at IS NOT NULL,
                (SELECT count(*) FROM call_events e WHERE e.call_id = c.id AND e.kind = 'conference'
                    AND e.payload->>'StatusCallbackEvent' = 'participant-join')
           FROM calls c WHERE id = $1",
    )
    .bind(id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert!(
        bridged_at,
        "the daemon recorded the bridge from the conference events"
    );
    assert_eq!(joins, 2, "lead and agent joined");
}

#[tokio::test]
async fn participant_added_by_conference_name_joins_and_can_be_removed_through_the_client() {
    let app = spawn_app().await;
    let id = app.seed_calls(1).await[0];
    let mut config = sim_config(&[("+14150000001", Outcome::Human)]);
    config.agent_numbers = vec!["+14155559999".into()];
    config.timing.hold_patience_secs = [120.0, 120.0];
    config.timing.talk_secs = [120.0, 120.0];
    let sim = Simulator::start(config).await.unwrap();
    let client = client_for(&sim);
    let lead_sid = dial(&app, &sim, id, "+14150000001").await;
    let joined = |sid: String| {
        let sim = &sim;
        async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            while !sim.journal().iter().any(
                |e| matches!(&e.event, Event::ConferenceJoin { call_sid, .. } if *call_sid == sid),
            ) {
                assert!(tokio::time::Instant::now() < deadline, "{sid} never joined");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    joined(lead_sid.clone()).await;

    let mut agent = AddParticipant::new("+14155550000", "+14155559999");
    agent.start_conference_on_enter = Some(true);
    agent.label = Some("agent".into());
    let added = client
        .add_participant(&id.conference_name(), &agent)
        .await
        .expect("participant added");
    let conference_sid = added.conference_sid.clone().expect("the conference's SID");
    assert!(conference_sid.starts_with("CF"));
    joined(added.call_sid.to_string()).await;
    assert!(
        sim.journal()
            .iter()
            .any(|e| matches!(e.event, Event::ConferenceStart { .. }))
    );

    // Removing the agent by its SID (not a friendly name: Twilio's spec wants the CF SID).
    client
        .remove_participant(&conference_sid, added.call_sid.as_str())
        .await
        .expect("removed");
    let left = sim.journal().iter().any(|e| matches!(&e.event, Event::ConferenceLeave { call_sid, .. } if *call_sid == added.call_sid.as_str()));
    assert!(left);
    let again = client
        .remove_participant(&conference_sid, added.call_sid.as_str())
        .await;
    assert!(
        matches!(again, Err(TwilioError::Api { status: 404, .. })),
        "{again:?}"
    );

    // Hang up the lead through the client; everything ends.
    client
        .update_call(
            &CallSid::parse(&lead_sid).unwrap(),
            &UpdateCall::End(EndCall::Completed),
        )
        .await
        .expect("hang up");
    assert!(sim.wait_idle(Duration::from_secs(10)).await);
}
