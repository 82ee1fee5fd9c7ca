//! Wrap-up through `POST /api/v1/calls/{id}/disposition`: the agent who took the call says
//! how it went; `do_not_call` stops the calls at once, `callback` brings the lead back at
//! the promised time (within the legal hours) to the same agent; the agent is available
//! again. Only the agent who took the call (or a manager of the tenant) may say.

use std::time::Duration;

use chrono::{TimeZone, Utc};
use dialer::sim::Simulator;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::engine::{adjust_for, midweek, numbers, start_campaign, wait_completed};
use crate::helpers::{Tenant, TestApp, spawn_app_with};
use crate::transfer::{agent, agent_dials, group, people};

/// An API key with role `agent` for `agent_id`; the secret.
pub(crate) async fn agent_key(app: &TestApp, t: &Tenant, agent_id: Uuid) -> String {
    let hasher = dialer::auth::KeyHasher::new(Some("test-pepper".to_string().into()));
    let mut conn = app.db.acquire().await.unwrap();
    dialer::auth::repo::create_key(
        &mut conn,
        t.id,
        "agent",
        dialer::auth::Role::Agent,
        Some(agent_id),
        &hasher,
    )
    .await
    .unwrap()
    .key
}

async fn post_disposition(app: &TestApp, key: &str, call: i64, body: Value) -> (u16, Value) {
    let r = app
        .client
        .post(format!("{}/api/v1/calls/{call}/disposition", app.address))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn only_call(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT id FROM calls ORDER BY id DESC LIMIT 1")
        .fetch_one(&app.db)
        .await
        .unwrap()
}

async fn agent_status(app: &TestApp, id: Uuid) -> String {
    sqlx::query_scalar("SELECT status FROM agents WHERE id = $1")
        .bind(id)
        .fetch_one(&app.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn the_agent_who_took_the_call_gives_its_disposition_and_do_not_call_stops_the_calls() {
    let leads = numbers(212, 1);
    let sim = Simulator::start(people(&leads)).await.unwrap();
    let app = spawn_app_with(adjust_for(&sim, 20)).await;
    app.engine.clock.set(midweek(15, 0));
    let t = app.tenant("Acme").await;
    let other = app.tenant("Other").await;
    let dan = agent(&app, &t, "client:dan", 60, "").await;
    let eve = agent(&app, &t, "client:eve", 5, "").await;
    let g = group(&app, &t, &[dan, eve]).await;
    start_campaign(
        &app,
        &t,
        &leads,
        &format!(
            ", max_attempts = 1, abandon_cap_pct = 3, max_hold_ms = 10000, agent_group_id = '{g}'"
        ),
    )
    .await;
    wait_completed(&app, &t, Duration::from_secs(30)).await;
    let call = only_call(&app).await;
    crate::transfer::wait_for_agent_status(&app, dan, "wrap_up").await;
    let (dan_key, eve_key) = (
        agent_key(&app, &t, dan).await,
        agent_key(&app, &t, eve).await,
    );

    // Another agent, another tenant: no such call.
    let (s, _) = post_disposition(&app, &eve_key, call, json!({"disposition": "sale"})).await;
    assert_eq!(s, 404);
    let (s, _) = post_disposition(&app, &other.key, call, json!({"disposition": "sale"})).await;
    assert_eq!(s, 404);
    // Bad input names the field; nothing is recorded.
    for (body, field) in [
        (json!({"disposition": "maybe"}), "disposition"),
        (json!({"disposition": "sale", "colour": "red"}), "colour"),
        (json!({"notes": "x"}), "disposition"),
        (
            json!({"disposition": "sale", "callback_at": "2027-06-03T10:00:00Z"}),
            "callback_at",
        ),
        (json!({"disposition": "callback"}), "callback_at"),
        (
            json!({"disposition": "callback", "callback_at": "2027-06-01T10:00:00Z"}),
            "callback_at",
        ),
    ] {
        let (s, b) = post_disposition(&app, &dan_key, call, body.clone()).await;
        assert_eq!(s, 422, "{body} → {b}");
        assert_eq!(b["error"]["field"], field, "{body} → {b}");
    }
    assert_eq!(agent_status(&app, dan).await, "wrap_up");

    let (s, b) = post_disposition(
        &app,
        &dan_key,
        call,
        json!({"disposition": "do_not_call", "notes": "asked not to be called"}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["added_to_dnc"], true);
    assert_eq!(b["agent_status"], "available");
    assert_eq!(agent_status(&app, dan).await, "available");
    // The number is on the tenant's list at once, marked as the agent's doing.
    let dnc = app
        .get_as(&t.key, &format!("/api/v1/dnc/{}", leads[0]))
        .await
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(dnc["dialable"], false, "{dnc}");
    assert_eq!(dnc["entries"][0]["source"], "agent", "{dnc}");
    let (disposition, notes): (Option<String>, Option<String>) =
        sqlx::query_as("SELECT agent_disposition, agent_notes FROM calls WHERE id = $1")
            .bind(call)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(disposition.as_deref(), Some("do_not_call"));
    assert_eq!(notes.as_deref(), Some("asked not to be called"));

    // Said once: a second disposition is refused, the first stands.
    let (s, b) = post_disposition(&app, &dan_key, call, json!({"disposition": "sale"})).await;
    assert_eq!(s, 409, "{b}");
    assert_eq!(b["error"]["code"], "disposition_given");
}

#[tokio::test]
async fn a_callback_rings_at_the_promised_time_within_legal_hours_and_goes_to_the_same_agent() {
    let leads = numbers(212, 1); // New York
    let sim = Simulator::start(people(&leads)).await.unwrap();
    let app = spawn_app_with(adjust_for(&sim, 20)).await;
    app.engine.clock.set(midweek(15, 0)); // Wednesday 11:00 in New York
    let t = app.tenant("Acme").await;
    let eve = agent(&app, &t, "client:eve", 90, "").await;
    let dan = agent(&app, &t, "client:dan", 60, "").await;
    let g = group(&app, &t, &[eve, dan]).await;
    start_campaign(
        &app,
        &t,
        &leads,
        &format!(
            ", max_attempts = 1, abandon_cap_pct = 3, max_hold_ms = 10000, agent_group_id = '{g}', \
             disposition_codes = '{{interested_later}}'"
        ),
    )
    .await;
    wait_completed(&app, &t, Duration::from_secs(30)).await;
    let first = only_call(&app).await;
    crate::transfer::wait_for_agent_status(&app, eve, "wrap_up").await;
    let eve_key = agent_key(&app, &t, eve).await;

    // 22:00 in New York is past the legal hours: the call-back waits for 08:00 there.
    let (s, b) = post_disposition(
        &app,
        &eve_key,
        first,
        json!({"disposition": "callback", "callback_at": "2027-06-03T02:00:00Z", "same_agent": true}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let at = Utc.with_ymd_and_hms(2027, 6, 3, 12, 0, 0).unwrap();
    assert_eq!(b["callback_scheduled_at"], json!(at), "{b}");
    assert_eq!(b["agent_status"], "available");
    // The campaign, completed with its last lead, runs again for the promised call.
    let status: String = sqlx::query_scalar("SELECT status FROM campaigns WHERE id = $1")
        .bind(t.campaign.id)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(status, "active");

    // Not before the promised time…
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(only_call(&app).await, first, "called back too early");
    // …then at it, offered to eve although dan has waited longer since.
    app.engine
        .clock
        .set(at - chrono::TimeDelta::milliseconds(500));
    wait_completed(&app, &t, Duration::from_secs(30)).await;
    let second = only_call(&app).await;
    assert_ne!(second, first);
    crate::transfer::wait_for_agent_status(&app, eve, "wrap_up").await;
    let agent_id: Option<Uuid> = sqlx::query_scalar("SELECT agent_id FROM calls WHERE id = $1")
        .bind(second)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(agent_id, Some(eve));
    assert_eq!(
        agent_dials(&sim.journal()),
        vec!["client:eve".to_string(), "client:eve".to_string()]
    );

    // A manager may give the disposition for the agent, with one of the campaign's codes.
    let (s, b) = post_disposition(
        &app,
        &t.key,
        second,
        json!({"disposition": "interested_later"}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(agent_status(&app, eve).await, "available");
}
