//! Carrier webhooks: signatures checked on the raw body, every callback stored once and
//! applied in order whatever order it arrives in.

use dialer::call::CallId;
use dialer::telephony::signature;
use reqwest::StatusCode;

use crate::helpers::{TEST_AUTH_TOKEN, TestApp, spawn_app};

type Params = Vec<(&'static str, String)>;

impl TestApp {
    /// Posts a callback signed as the carrier signs it (with `token`).
    pub async fn callback_signed_with(
        &self,
        token: &str,
        path: &str,
        params: &Params,
    ) -> reqwest::Response {
        let url = format!("{}{path}", self.public_url);
        let sig = signature::compute(token.as_bytes(), &url, params);
        self.client
            .post(format!("{}{path}", self.address))
            .header("X-Twilio-Signature", sig)
            .form(params)
            .send()
            .await
            .expect("callback reaches the app")
    }

    pub async fn callback(&self, path: &str, params: &Params) -> reqwest::Response {
        self.callback_signed_with(TEST_AUTH_TOKEN, path, params)
            .await
    }

    pub async fn seed_calls(&self, n: i64) -> Vec<CallId> {
        dialer::bench::webhooks::seed_calls(&self.db, n)
            .await
            .expect("seeded")
            .1
    }

    /// An agent (endpoint `endpoint`) reserved for call `id`, and its ringing offer; the
    /// person's hold has a long way to go.
    pub async fn seed_offer(&self, id: CallId, endpoint: &str) -> i64 {
        sqlx::query_scalar(
            "WITH a AS (
                 INSERT INTO agents (id, tenant_id, name, endpoint, status, active_calls)
                 SELECT gen_random_uuid(), tenant_id, 'Agent', $2, 'busy', 1 FROM calls WHERE id = $1
                 RETURNING id, tenant_id),
             k AS (UPDATE calls SET agent_id = a.id, hold_deadline = now() + interval '1 hour'
                     FROM a WHERE calls.id = $1)
             INSERT INTO agent_offers (tenant_id, call_id, agent_id) SELECT tenant_id, $1, id FROM a
             RETURNING id",
        )
        .bind(id)
        .bind(endpoint)
        .fetch_one(&self.db)
        .await
        .expect("offer seeded")
    }

    /// An offer as stored, with its call's and its agent's state.
    pub async fn offer_row(&self, offer: i64) -> OfferRow {
        sqlx::query_as(
            "SELECT o.state, k.hold_deadline IS NULL AS hold_cleared, k.disposition,
                    a.status AS agent_status, a.active_calls AS agent_calls,
                    a.missed_offers AS agent_misses
               FROM agent_offers o JOIN calls k ON k.id = o.call_id JOIN agents a ON a.id = o.agent_id
              WHERE o.id = $1",
        )
        .bind(offer)
        .fetch_one(&self.db)
        .await
        .unwrap()
    }

    pub async fn call_row(
        &self,
        id: CallId,
    ) -> (String, Option<String>, Option<String>, Option<i32>, i64) {
        sqlx::query_as(
            "SELECT state, disposition, answered_by, duration_secs,
                    (SELECT count(*) FROM call_events e WHERE e.call_id = c.id)
               FROM calls c WHERE id = $1",
        )
        .bind(id)
        .fetch_one(&self.db)
        .await
        .unwrap()
    }
}

#[derive(Debug, sqlx::FromRow)]
pub struct OfferRow {
    state: String,
    hold_cleared: bool,
    disposition: Option<String>,
    agent_status: String,
    agent_calls: i32,
    agent_misses: i32,
}

const SID: &str = "CA0123456789abcdef0123456789abcdef";

/// The carrier's SID for our call `id` (distinct per call, as the carrier's are).
fn sid_of(id: CallId) -> String {
    format!("CA{:032x}", id.0)
}

fn status(st: &str, seq: u32) -> Params {
    status_of(SID, st, seq)
}

fn status_of(sid: &str, st: &str, seq: u32) -> Params {
    let mut p: Params = vec![
        ("AccountSid", "AC00000000000000000000000000000000".into()),
        ("CallSid", sid.into()),
        ("CallStatus", st.into()),
        ("SequenceNumber", seq.to_string()),
        ("CallbackSource", "call-progress-events".into()),
    ];
    if st == "completed" {
        p.push(("CallDuration", "37".into()));
        p.push(("SipResponseCode", "200".into()));
    }
    p
}

#[tokio::test]
async fn status_callback_with_bad_or_missing_signature_is_rejected_and_changes_nothing() {
    let app = spawn_app().await;
    let id = app.seed_calls(1).await[0];
    let path = format!("/twilio/calls/{id}/status");

    // Signed with another account's token.
    let r = app
        .callback_signed_with("another-token", &path, &status("completed", 3))
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // No signature at all.
    let r = app
        .client
        .post(format!("{}{path}", app.address))
        .form(&status("completed", 3))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // Signed correctly, then tampered with: one parameter changed in transit.
    let url = format!("{}{path}", app.public_url);
    let sig = signature::compute(TEST_AUTH_TOKEN.as_bytes(), &url, &status("ringing", 1));
    let r = app
        .client
        .post(format!("{}{path}", app.address))
        .header("X-Twilio-Signature", sig)
        .form(&status("completed", 1))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // Signed for another URL (the same body replayed at another call).
    let other = format!("{}/twilio/calls/{}/status", app.public_url, id.0 + 1);
    let sig = signature::compute(TEST_AUTH_TOKEN.as_bytes(), &other, &status("completed", 3));
    let r = app
        .client
        .post(format!("{}{path}", app.address))
        .header("X-Twilio-Signature", sig)
        .form(&status("completed", 3))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    let (state, disposition, _, _, events) = app.call_row(id).await;
    assert_eq!((state.as_str(), disposition, events), ("dialing", None, 0));
}

#[tokio::test]
async fn callbacks_duplicated_and_out_of_order_end_in_the_right_state_and_are_stored_once() {
    let app = spawn_app().await;
    let id = app.seed_calls(1).await[0];
    let path = format!("/twilio/calls/{id}/status");
    // Completed first, then everything older, each twice.
    for (st, seq) in [
        ("completed", 3),
        ("ringing", 1),
        ("in-progress", 2),
        ("completed", 3),
        ("initiated", 0),
        ("ringing", 1),
    ] {
        let r = app.callback(&path, &status(st, seq)).await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT, "{st}");
    }
    let (state, disposition, _, duration, events) = app.call_row(id).await;
    assert_eq!(state, "completed");
    assert_eq!(disposition.as_deref(), Some("answered"));
    assert_eq!(duration, Some(37));
    assert_eq!(events, 4, "four distinct callbacks, duplicates stored once");
    let (sid, answered): (Option<String>, bool) =
        sqlx::query_as("SELECT call_sid, answered_at IS NOT NULL FROM calls WHERE id = $1")
            .bind(id)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(sid.as_deref(), Some(SID));
    assert!(
        answered,
        "a late in-progress callback still records when the call was answered"
    );
}

#[tokio::test]
async fn concurrent_callbacks_of_one_call_never_leave_it_in_an_older_state() {
    let app = spawn_app().await;
    let ids = app.seed_calls(20).await;
    let mut tasks = Vec::new();
    for id in &ids {
        for (st, seq) in [
            ("initiated", 0),
            ("ringing", 1),
            ("in-progress", 2),
            ("busy", 3),
        ] {
            let path = format!("/twilio/calls/{id}/status");
            let params = status_of(&sid_of(*id), st, seq);
            let url = format!("{}{path}", app.public_url);
            let sig = signature::compute(TEST_AUTH_TOKEN.as_bytes(), &url, &params);
            let req = app
                .client
                .post(format!("{}{path}", app.address))
                .header("X-Twilio-Signature", sig)
                .form(&params);
            tasks.push(tokio::spawn(
                async move { req.send().await.unwrap().status() },
            ));
        }
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), StatusCode::NO_CONTENT);
    }
    for id in ids {
        let (state, disposition, _, _, events) = app.call_row(id).await;
        assert_eq!(
            (state.as_str(), disposition.as_deref(), events),
            ("busy", Some("busy"), 4)
        );
    }
}

#[tokio::test]
async fn machine_verdict_marks_the_attempt_as_voicemail_even_after_it_ended() {
    let app = spawn_app().await;
    let ids = app.seed_calls(2).await;
    let amd = |id: CallId, by: &str| -> Params {
        vec![
            ("CallSid", sid_of(id)),
            ("AnsweredBy", by.into()),
            ("MachineDetectionDuration", "4210".into()),
        ]
    };
    let ok = StatusCode::NO_CONTENT;
    // In order: AMD, then completed.
    let r = app
        .callback(
            &format!("/twilio/calls/{}/amd", ids[0]),
            &amd(ids[0], "machine_end_beep"),
        )
        .await;
    assert_eq!(r.status(), ok);
    let r = app
        .callback(
            &format!("/twilio/calls/{}/status", ids[0]),
            &status_of(&sid_of(ids[0]), "completed", 3),
        )
        .await;
    assert_eq!(r.status(), ok);
    // Reversed: completed, then AMD (and AMD again).
    let r = app
        .callback(
            &format!("/twilio/calls/{}/status", ids[1]),
            &status_of(&sid_of(ids[1]), "completed", 3),
        )
        .await;
    assert_eq!(r.status(), ok);
    for _ in 0..2 {
        let r = app
            .callback(
                &format!("/twilio/calls/{}/amd", ids[1]),
                &amd(ids[1], "machine_end_silence"),
            )
            .await;
        assert_eq!(r.status(), ok);
    }
    let first = app.call_row(ids[0]).await;
    let second = app.call_row(ids[1]).await;
    assert_eq!(
        (first.1.as_deref(), first.2.as_deref()),
        (Some("voicemail"), Some("machine_end_beep"))
    );
    assert_eq!(
        (second.1.as_deref(), second.2.as_deref(), second.4),
        (Some("voicemail"), Some("machine_end_silence"), 2)
    );
}

#[tokio::test]
async fn callback_for_an_unknown_call_is_404_and_stores_nothing() {
    let app = spawn_app().await;
    let r = app
        .callback("/twilio/calls/999999/status", &status("ringing", 1))
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM call_events")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(n, 0);
}

#[tokio::test]
async fn lead_voice_url_holds_the_lead_in_its_own_conference() {
    let app = spawn_app().await;
    let id = app.seed_calls(1).await[0];
    let params: Params = vec![
        ("CallSid", SID.into()),
        ("CallStatus", "in-progress".into()),
    ];
    let r = app
        .callback(&format!("/twilio/calls/{id}/voice"), &params)
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/xml")
    );
    let xml = r.text().await.unwrap();
    let doc = dialer::telephony::twiml::VoiceResponse::parse(&xml).expect("well-formed TwiML");
    assert!(xml.contains(&format!(">call-{id}</Conference>")), "{xml}");
    assert!(xml.contains(r#"startConferenceOnEnter="false""#), "{xml}");
    assert!(!doc.to_xml().is_empty());
}

#[tokio::test]
async fn agent_pressing_1_joins_the_lead_and_anything_else_declines() {
    let app = spawn_app().await;
    let id = app.seed_calls(1).await[0];
    let offer = app.seed_offer(id, "client:ann").await;
    // Ann had missed two offers before this one.
    sqlx::query("UPDATE agents SET missed_offers = 2 WHERE endpoint = 'client:ann'")
        .execute(&app.db)
        .await
        .unwrap();
    let agent_sid = "CAffffffffffffffffffffffffffffffff";
    let whisper = app
        .callback(
            &format!("/twilio/calls/{id}/offers/{offer}/whisper"),
            &vec![("CallSid", agent_sid.into())],
        )
        .await;
    let xml = whisper.text().await.unwrap();
    assert!(xml.contains("<Gather"), "{xml}");
    assert!(xml.contains("Lead 1"), "the whisper names the lead: {xml}");

    let accept = |d: &str| -> Params { vec![("CallSid", agent_sid.into()), ("Digits", d.into())] };
    let xml = app
        .callback(
            &format!("/twilio/calls/{id}/offers/{offer}/accept"),
            &accept("1"),
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(
        xml.contains(&format!(">call-{id}</Conference>"))
            && xml.contains(r#"startConferenceOnEnter="true""#),
        "{xml}"
    );
    // The call is the agent's: the hold limit is off, the offer accepted, misses forgotten.
    let o = app.offer_row(offer).await;
    assert_eq!(
        (o.state.as_str(), o.hold_cleared, o.agent_misses),
        ("accepted", true, 0)
    );
    let xml = app
        .callback(
            &format!("/twilio/calls/{id}/offers/{offer}/accept"),
            &accept(""),
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(
        xml.contains("<Hangup />") && !xml.contains("<Conference"),
        "{xml}"
    );
}

#[tokio::test]
async fn an_accept_after_the_person_was_abandoned_says_they_are_gone_and_frees_the_agent() {
    let app = spawn_app().await;
    let id = app.seed_calls(1).await[0];
    let offer = app.seed_offer(id, "client:bob").await;
    // The hold limit passed first (as `transfer::abandon` leaves the call).
    sqlx::query("UPDATE calls SET disposition = 'abandoned', hold_deadline = NULL WHERE id = $1")
        .bind(id)
        .execute(&app.db)
        .await
        .unwrap();
    let accept: Params = vec![
        ("CallSid", "CAeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee".into()),
        ("Digits", "1".into()),
    ];
    let path = format!("/twilio/calls/{id}/offers/{offer}/accept");
    for _ in 0..2 {
        // The second time is the carrier repeating the request: still no join.
        let xml = app.callback(&path, &accept).await.text().await.unwrap();
        assert!(
            xml.contains("hung up") && xml.contains("<Hangup />") && !xml.contains("<Conference"),
            "{xml}"
        );
    }
    let o = app.offer_row(offer).await;
    assert_eq!(o.state, "canceled");
    assert_eq!(o.disposition.as_deref(), Some("abandoned"));
    assert_eq!((o.agent_status.as_str(), o.agent_calls), ("available", 0));
}

/// `call::repo::record_status` (SQL) must do exactly what `CallProgress::apply` (the pure
/// specification) does, for every arrival order, with duplicates and unknown statuses.
#[tokio::test]
async fn stored_progress_matches_the_pure_model_for_every_arrival_order() {
    use chrono::TimeZone;
    use dialer::call::{CallProgress, StatusUpdate, repo};
    use dialer::telephony::{AnsweredBy, CallSid, CallStatus};
    use rand::seq::SliceRandom;
    use rand::{Rng, SeedableRng};

    let app = spawn_app().await;
    let ids = app.seed_calls(40).await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    for (n, id) in ids.iter().enumerate() {
        let sid = CallSid::parse(&sid_of(*id)).unwrap();
        let finals = ["completed", "busy", "no-answer", "failed", "canceled"];
        let mut updates: Vec<StatusUpdate> = [
            "initiated",
            "ringing",
            "in-progress",
            finals[n % finals.len()],
            "paused",
        ]
        .iter()
        .enumerate()
        .map(|(seq, st)| StatusUpdate {
            sid: Some(sid.clone()),
            status: CallStatus::parse(st),
            // Some carriers send no SequenceNumber: then only the status order counts.
            sequence: (n % 3 != 0).then_some(seq as i32),
            at: chrono::Utc
                .timestamp_opt(1_700_000_000 + seq as i64 * 7, 0)
                .unwrap(),
            duration_secs: (seq == 3).then_some(33),
            sip_response_code: None,
            error_code: (seq == 3 && n % 5 == 3).then_some(32009),
            answered_by: (seq == 3 && n % 4 == 1).then_some(AnsweredBy::MachineEndBeep),
        })
        .collect();
        updates.shuffle(&mut rng);
        let dup = rng.random_range(0..updates.len());
        updates.push(updates[dup].clone());

        let mut model = repo::progress(&app.db, *id).await.unwrap().unwrap();
        for u in &updates {
            let before: CallProgress = model.clone();
            let payload = serde_json::json!({"CallStatus": u.status.as_str()});
            let applied = repo::record_status(&app.db, *id, u, &payload)
                .await
                .unwrap();
            if applied != dialer::call::Applied::Duplicate {
                model.apply(u);
            } else {
                assert_eq!(model, before);
            }
            let stored = repo::progress(&app.db, *id).await.unwrap().unwrap();
            assert_eq!(
                stored, model,
                "call {n}, after {} {:?}",
                u.status, u.sequence
            );
        }
    }
}

/// The group commit (`record_statuses`, one statement for many callbacks) ends where
/// applying the same callbacks one by one ends: one batch holding every callback of 30
/// calls, interleaved, each call's in a shuffled order with a repeat.
#[tokio::test]
async fn a_batch_of_interleaved_callbacks_ends_as_one_by_one_would() {
    use chrono::TimeZone;
    use dialer::call::{Applied, StatusUpdate, repo};
    use dialer::telephony::{CallSid, CallStatus};
    use rand::seq::SliceRandom;
    use rand::{Rng, SeedableRng};

    let app = spawn_app().await;
    let ids = app.seed_calls(30).await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let mut per_call: Vec<Vec<StatusUpdate>> = Vec::new();
    for (n, id) in ids.iter().enumerate() {
        let sid = CallSid::parse(&sid_of(*id)).unwrap();
        let last = ["completed", "busy", "no-answer"][n % 3];
        let mut updates: Vec<StatusUpdate> = ["initiated", "ringing", "in-progress", last]
            .iter()
            .enumerate()
            .map(|(seq, st)| StatusUpdate {
                sid: Some(sid.clone()),
                status: CallStatus::parse(st),
                sequence: (n % 2 == 0).then_some(seq as i32),
                at: chrono::Utc
                    .timestamp_opt(1_700_000_000 + seq as i64 * 5, 0)
                    .unwrap(),
                duration_secs: (seq == 3).then_some(21),
                sip_response_code: None,
                error_code: None,
                answered_by: None,
            })
            .collect();
        updates.shuffle(&mut rng);
        let dup = rng.random_range(0..updates.len());
        updates.push(updates[dup].clone());
        per_call.push(updates);
    }
    // Round-robin: call 0's first, call 1's first, …, call 0's second, …
    let payload = serde_json::json!({"CallStatus": "any"});
    let mut items = Vec::new();
    for k in 0..5 {
        for (n, updates) in per_call.iter().enumerate() {
            items.push((ids[n], &updates[k], &payload));
        }
    }
    let mut models = Vec::new();
    for id in &ids {
        models.push(repo::progress(&app.db, *id).await.unwrap().unwrap());
    }
    let outcomes = repo::record_statuses(&app.db, &items).await.unwrap();
    assert_eq!(outcomes.len(), items.len());

    for (n, (id, mut model)) in ids.iter().zip(models).enumerate() {
        let mut seen = std::collections::HashSet::new();
        for (k, u) in per_call[n].iter().enumerate() {
            let outcome = outcomes[k * ids.len() + n];
            if seen.insert(u.event_key()) {
                assert_ne!(outcome, Applied::Duplicate, "call {n}: {} is new", u.status);
                model.apply(u);
            } else {
                assert_eq!(
                    outcome,
                    Applied::Duplicate,
                    "call {n}: {} repeats",
                    u.status
                );
            }
        }
        let stored = repo::progress(&app.db, *id).await.unwrap().unwrap();
        assert_eq!(stored, model, "call {n}");
    }
}

#[tokio::test]
async fn completed_recording_is_recorded_on_its_call_once() {
    let app = spawn_app().await;
    let id = app.seed_calls(1).await[0];
    let recording = |st: &str| -> Params {
        vec![
            ("CallSid", sid_of(id)),
            ("RecordingSid", "RE0123456789abcdef0123456789abcdef".into()),
            (
                "RecordingUrl",
                "https://api.twilio.com/2010-04-01/Accounts/AC0/Recordings/RE01".into(),
            ),
            ("RecordingStatus", st.into()),
            ("RecordingDuration", "61".into()),
        ]
    };
    let path = format!("/twilio/calls/{id}/recording");
    for st in ["in-progress", "completed", "completed"] {
        assert_eq!(
            app.callback(&path, &recording(st)).await.status(),
            StatusCode::NO_CONTENT
        );
    }
    let (sid, secs, events): (Option<String>, Option<i32>, i64) = sqlx::query_as(
        "SELECT recording_sid, recording_duration_secs,
                (SELECT count(*) FROM call_events e WHERE e.call_id = c.id AND e.kind = 'recording')
           FROM calls c WHERE id = $1",
    )
    .bind(id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(sid.as_deref(), Some("RE0123456789abcdef0123456789abcdef"));
    assert_eq!(secs, Some(61));
    assert_eq!(
        events, 2,
        "in-progress and completed, the repeat stored once"
    );
    // A recording callback without its identifying fields is refused and stores nothing.
    let r = app.callback(&path, &vec![("CallSid", sid_of(id))]).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

/// The webhook pool plans each statement once per connection, often while `calls` and
/// `leads` are nearly empty (a new database, a campaign's first seconds). Those plans are
/// kept for the connection's life, so they must find rows by id and never scan the
/// table: a scan planned on 10 rows runs on every callback once there are millions.
#[tokio::test]
async fn webhook_pool_looks_rows_up_by_id_even_when_planned_on_empty_tables() {
    use crate::helpers::TestDb;
    let db = TestDb::create().await;
    let pool = dialer::db::connect_webhooks(&db.settings()).unwrap();
    dialer::db::MIGRATOR.run(&pool).await.unwrap();
    let mut conn = pool.acquire().await.unwrap();
    // The shapes of the status callbacks' and the finished attempts' batch statements.
    for (name, table, sql) in [
        (
            "calls_batch",
            "calls",
            "UPDATE calls c SET error_code = 1 FROM unnest($1::bigint[]) i(id) WHERE c.id = i.id",
        ),
        (
            "leads_batch",
            "leads",
            "UPDATE leads l SET attempts = 1 FROM unnest($1::bigint[]) u(id) WHERE l.id = u.id",
        ),
        (
            "calls_lookup",
            "calls",
            "SELECT c.tenant_id FROM unnest($1::bigint[]) i(id) JOIN calls c ON c.id = i.id",
        ),
    ] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("PREPARE {name} AS {sql}")))
            .execute(&mut *conn)
            .await
            .unwrap();
        let plan: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "EXPLAIN EXECUTE {name}('{{1,2,3}}')"
        )))
        .fetch_all(&mut *conn)
        .await
        .unwrap();
        let plan = plan.join("\n");
        assert!(
            plan.contains(&format!("Index Scan using {table}_pkey")) && !plan.contains("Seq Scan"),
            "{name} is planned as a table scan:\n{plan}"
        );
    }
}
