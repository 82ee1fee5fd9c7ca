//! Agents and agent groups through the API and the CLI: settings checked field by field,
//! tenants apart, agent keys that see only their own agent, the status rules that keep
//! people from overriding the call flow, and a status set over the API that the warm
//! transfer obeys.

use std::time::Duration;

use chrono::Utc;
use dialer::sim::Simulator;
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::cli::{dialer, stderr, stdout};
use crate::engine::{adjust_for, midweek, numbers, start_campaign, wait_completed};
use crate::helpers::{Tenant, TestApp, TestDb, spawn_app, spawn_app_with};
use crate::transfer::{agent_dials, people};

/// Sends `body` (if any) as `key`; answers the status and the JSON body (Null if none).
async fn call(
    app: &TestApp,
    method: Method,
    key: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    app.send(method, key, path, body).await
}

async fn create_agent(app: &TestApp, t: &Tenant, body: Value) -> Value {
    let (s, v) = call(app, Method::POST, &t.key, "/api/v1/agents", Some(body)).await;
    assert_eq!(s, 201, "{v}");
    v
}

async fn create_group(app: &TestApp, t: &Tenant, name: &str) -> String {
    let (s, v) = call(
        app,
        Method::POST,
        &t.key,
        "/api/v1/agent-groups",
        Some(json!({ "name": name })),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    v["id"].as_str().unwrap().to_string()
}

async fn agent_key(app: &TestApp, t: &Tenant, agent: &str) -> String {
    let (s, v) = call(
        app,
        Method::POST,
        &t.key,
        &format!("/api/v1/agents/{agent}/keys"),
        None,
    )
    .await;
    assert_eq!(s, 201, "{v}");
    v["key"].as_str().unwrap().to_string()
}

/// Puts the agent where only the call flow can (busy, wrap_up …), as `engine::transfer` does.
async fn set_by_call_flow(app: &TestApp, agent: &str, sql_set: &str) {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE agents SET {sql_set} WHERE id = $1::uuid"
    )))
    .bind(agent)
    .execute(&app.db)
    .await
    .unwrap();
}

#[tokio::test]
async fn agents_are_created_listed_shown_and_updated() {
    let app = spawn_app().await;
    let t = app.tenant("Acme").await;
    let sales = create_group(&app, &t, "Sales").await;
    let support = create_group(&app, &t, "Support").await;

    let ann = create_agent(
        &app,
        &t,
        json!({
            "name": " Ann Lee ", "endpoint": "+1 (201) 555-0123", "time_zone": "America/New_York",
            "work_start": "09:00", "work_end": "17:30", "work_days": ["mon", "tue", "wed-fri"],
            "max_concurrent_calls": 2, "groups": [sales], "status": "available"
        }),
    )
    .await;
    assert_eq!(ann["name"], "Ann Lee");
    assert_eq!(ann["endpoint"], "+12015550123", "normalised to E.164");
    assert_eq!(ann["work_days"], json!(["mon", "tue", "wed", "thu", "fri"]));
    assert_eq!(
        (ann["work_start"].as_str(), ann["work_end"].as_str()),
        (Some("09:00"), Some("17:30"))
    );
    assert_eq!(ann["groups"], json!([sales]));
    assert_eq!(ann["status"], "available");
    assert!(
        ann["idle_since"].is_string(),
        "an available agent starts idling: {ann}"
    );
    // Defaults: any day, any time, UTC, one call, offline.
    let bob = create_agent(
        &app,
        &t,
        json!({ "name": "Bob", "endpoint": "sip:bob@pbx.example.com" }),
    )
    .await;
    assert_eq!(bob["status"], "offline");
    assert_eq!(
        (bob["work_start"].as_str(), bob["work_end"].as_str()),
        (Some("00:00"), Some("24:00"))
    );
    assert_eq!(bob["work_days"].as_array().unwrap().len(), 7);
    assert_eq!(
        (
            bob["time_zone"].as_str(),
            bob["max_concurrent_calls"].as_i64()
        ),
        (Some("UTC"), Some(1))
    );
    assert!(bob["idle_since"].is_null());

    let (s, all) = call(&app, Method::GET, &t.key, "/api/v1/agents", None).await;
    assert_eq!(s, 200);
    let names: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Ann Lee", "Bob"]);
    let (_, offline) = call(
        &app,
        Method::GET,
        &t.key,
        "/api/v1/agents?status=offline",
        None,
    )
    .await;
    assert_eq!(offline.as_array().unwrap().len(), 1);
    assert_eq!(offline[0]["name"], "Bob");
    let (_, in_sales) = call(
        &app,
        Method::GET,
        &t.key,
        &format!("/api/v1/agents?group={sales}"),
        None,
    )
    .await;
    assert_eq!(in_sales.as_array().unwrap().len(), 1);
    assert_eq!(in_sales[0]["name"], "Ann Lee");
    let (s, v) = call(
        &app,
        Method::GET,
        &t.key,
        "/api/v1/agents?status=lunch",
        None,
    )
    .await;
    assert_eq!(
        (s, v["error"]["field"].as_str()),
        (422, Some("status")),
        "{v}"
    );

    // A partial update: only the end of the day (checked against the stored start) and the
    // groups (replaced).
    let ann_id = ann["id"].as_str().unwrap();
    let (s, v) = call(
        &app,
        Method::PATCH,
        &t.key,
        &format!("/api/v1/agents/{ann_id}"),
        Some(json!({ "work_end": "24:00", "groups": [support] })),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        (v["work_start"].as_str(), v["work_end"].as_str()),
        (Some("09:00"), Some("24:00"))
    );
    assert_eq!(v["groups"], json!([support]));
    assert_eq!(v["time_zone"], "America/New_York", "untouched fields stay");
    let (s, shown) = call(
        &app,
        Method::GET,
        &t.key,
        &format!("/api/v1/agents/{ann_id}"),
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(shown, v);
    // The engine reads the same row: 24:00 is stored as the end of the day.
    let end: String = sqlx::query_scalar("SELECT work_end::text FROM agents WHERE id = $1::uuid")
        .bind(ann_id)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(end, "24:00:00");

    // Members one at a time.
    let bob_id = bob["id"].as_str().unwrap();
    let members = format!("/api/v1/agent-groups/{sales}/members/{bob_id}");
    let (s, g) = call(&app, Method::PUT, &t.key, &members, None).await;
    assert_eq!((s, g["agents"].clone()), (200, json!([bob_id])));
    let (s, _) = call(&app, Method::PUT, &t.key, &members, None).await;
    assert_eq!(s, 200, "adding a member twice is a no-op");
    let (s, g) = call(&app, Method::DELETE, &t.key, &members, None).await;
    assert_eq!((s, g["agents"].clone()), (200, json!([])));
    let (s, v) = call(&app, Method::DELETE, &t.key, &members, None).await;
    assert_eq!(s, 404, "{v}");
    let (s, g) = call(
        &app,
        Method::PATCH,
        &t.key,
        &format!("/api/v1/agent-groups/{sales}"),
        Some(json!({ "name": "Inside sales", "agents": [ann_id, bob_id] })),
    )
    .await;
    assert_eq!(s, 200, "{g}");
    assert_eq!(g["name"], "Inside sales");
    assert_eq!(g["agents"].as_array().unwrap().len(), 2);
    let (_, groups) = call(&app, Method::GET, &t.key, "/api/v1/agent-groups", None).await;
    assert_eq!(groups.as_array().unwrap().len(), 2);
    let (s, v) = call(
        &app,
        Method::POST,
        &t.key,
        "/api/v1/agent-groups",
        Some(json!({ "name": "Support" })),
    )
    .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (409, Some("name_taken")),
        "{v}"
    );
}

#[tokio::test]
async fn bad_agent_fields_get_a_422_naming_the_field_and_the_value() {
    let app = spawn_app().await;
    let t = app.tenant("Acme").await;
    let base = json!({ "name": "Ann", "endpoint": "client:ann" });
    let stranger = Uuid::new_v4().to_string();
    let cases = [
        (
            json!({ "endpoint": "201 555 0123" }),
            "endpoint",
            "201 555 0123",
        ),
        (json!({ "endpoint": "+1 555" }), "endpoint", "+1 555"),
        (
            json!({ "endpoint": "sip:nohost" }),
            "endpoint",
            "sip:nohost",
        ),
        (json!({ "name": "  " }), "name", ""),
        (
            json!({ "time_zone": "Mars/Olympus" }),
            "time_zone",
            "Mars/Olympus",
        ),
        (json!({ "work_start": "25:00" }), "work_start", "25:00"),
        (
            json!({ "work_start": "18:00", "work_end": "09:00" }),
            "work_end",
            "09:00",
        ),
        (
            json!({ "work_days": ["mon", "funday"] }),
            "work_days",
            "funday",
        ),
        (json!({ "work_days": [] }), "work_days", "[]"),
        (
            json!({ "max_concurrent_calls": 0 }),
            "max_concurrent_calls",
            "0",
        ),
        (
            json!({ "max_concurrent_calls": 11 }),
            "max_concurrent_calls",
            "11",
        ),
        (json!({ "groups": ["not-a-uuid"] }), "groups", "not-a-uuid"),
        (json!({ "groups": [stranger] }), "groups", stranger.as_str()),
        (json!({ "status": "lunch" }), "status", "lunch"),
    ];
    for (patch, field, value) in cases {
        let mut body = base.clone();
        body.as_object_mut()
            .unwrap()
            .extend(patch.as_object().unwrap().clone());
        let (s, v) = call(
            &app,
            Method::POST,
            &t.key,
            "/api/v1/agents",
            Some(body.clone()),
        )
        .await;
        assert_eq!(s, 422, "{body} → {v}");
        assert_eq!(v["error"]["field"], field, "{body} → {v}");
        let message = v["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(field) && message.contains(value),
            "{body} → {message}"
        );
    }
    // busy and wrap_up belong to the call flow.
    let (s, v) = call(
        &app,
        Method::POST,
        &t.key,
        "/api/v1/agents",
        Some(json!({ "name": "Ann", "endpoint": "client:ann", "status": "busy" })),
    )
    .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (422, Some("status_not_settable")),
        "{v}"
    );
    // Unknown fields, wrong types and broken JSON: our error shape, the field named.
    let (s, v) = call(
        &app,
        Method::POST,
        &t.key,
        "/api/v1/agents",
        Some(json!({ "name": "Ann", "endpoint": "client:ann", "colour": "red" })),
    )
    .await;
    assert_eq!(
        (s, v["error"]["code"].as_str(), v["error"]["field"].as_str()),
        (422, Some("unknown_field"), Some("colour")),
        "{v}"
    );
    let (s, v) = call(
        &app,
        Method::POST,
        &t.key,
        "/api/v1/agents",
        Some(json!({ "name": "Ann", "endpoint": "client:ann", "work_days": "mon" })),
    )
    .await;
    assert_eq!(
        (s, v["error"]["field"].as_str()),
        (422, Some("work_days")),
        "{v}"
    );
    let r = app
        .client
        .post(format!("{}/api/v1/agents", app.address))
        .bearer_auth(&t.key)
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "invalid_json");
    let (s, _) = call(&app, Method::GET, &t.key, "/api/v1/agents", None).await;
    assert_eq!(s, 200);
    let none: i64 = sqlx::query_scalar("SELECT count(*) FROM agents")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(none, 0, "nothing was stored for a refused body");

    // Updates: the same checks, and the status is not changed here.
    let ann = create_agent(&app, &t, base.clone()).await;
    let path = format!("/api/v1/agents/{}", ann["id"].as_str().unwrap());
    let (s, v) = call(
        &app,
        Method::PATCH,
        &t.key,
        &path,
        Some(json!({ "work_end": "00:00" })),
    )
    .await;
    assert_eq!(
        (s, v["error"]["field"].as_str()),
        (422, Some("work_end")),
        "{v}"
    );
    let (s, v) = call(
        &app,
        Method::PATCH,
        &t.key,
        &path,
        Some(json!({ "status": "available" })),
    )
    .await;
    assert_eq!(
        (s, v["error"]["field"].as_str()),
        (422, Some("status")),
        "{v}"
    );
    // A path id that is no UUID: a JSON 404 saying so, not axum's plain text.
    let (s, v) = call(&app, Method::GET, &t.key, "/api/v1/agents/42", None).await;
    assert_eq!(s, 404);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`42` is not an agent id"),
        "{v}"
    );
    let (s, v) = call(
        &app,
        Method::DELETE,
        &t.key,
        "/api/v1/agent-groups/x/members/y",
        None,
    )
    .await;
    assert_eq!((s, v["error"]["code"].as_str()), (404, Some("not_found")));
}

#[tokio::test]
async fn tenants_never_see_or_touch_each_others_agents_and_groups() {
    let app = spawn_app().await;
    let a = app.tenant("Acme").await;
    let b = app.tenant("Bolt").await;
    let a_group = create_group(&app, &a, "Sales").await;
    let a_agent = create_agent(
        &app,
        &a,
        json!({ "name": "Ann", "endpoint": "client:ann", "groups": [a_group] }),
    )
    .await;
    let a_agent = a_agent["id"].as_str().unwrap();
    let b_group = create_group(&app, &b, "Sales").await;
    let b_agent = create_agent(&app, &b, json!({ "name": "Bea", "endpoint": "client:bea" })).await;
    let b_agent = b_agent["id"].as_str().unwrap();

    for (method, path, body) in [
        (Method::GET, format!("/api/v1/agents/{a_agent}"), None),
        (
            Method::PATCH,
            format!("/api/v1/agents/{a_agent}"),
            Some(json!({ "name": "Mine" })),
        ),
        (
            Method::PUT,
            format!("/api/v1/agents/{a_agent}/status"),
            Some(json!({ "status": "available" })),
        ),
        (Method::POST, format!("/api/v1/agents/{a_agent}/keys"), None),
        (Method::GET, format!("/api/v1/agent-groups/{a_group}"), None),
        (
            Method::PATCH,
            format!("/api/v1/agent-groups/{a_group}"),
            Some(json!({ "name": "Mine" })),
        ),
        (
            Method::DELETE,
            format!("/api/v1/agent-groups/{a_group}"),
            None,
        ),
        // A's agent into B's group, B's agent into A's group.
        (
            Method::PUT,
            format!("/api/v1/agent-groups/{b_group}/members/{a_agent}"),
            None,
        ),
        (
            Method::PUT,
            format!("/api/v1/agent-groups/{a_group}/members/{b_agent}"),
            None,
        ),
        (
            Method::DELETE,
            format!("/api/v1/agent-groups/{a_group}/members/{a_agent}"),
            None,
        ),
    ] {
        let (s, v) = call(&app, method.clone(), &b.key, &path, body).await;
        assert_eq!(s, 404, "{method} {path}: {v}");
    }
    let (s, v) = call(
        &app,
        Method::PATCH,
        &b.key,
        &format!("/api/v1/agent-groups/{b_group}"),
        Some(json!({ "agents": [a_agent] })),
    )
    .await;
    assert_eq!(
        (s, v["error"]["field"].as_str()),
        (422, Some("agents")),
        "{v}"
    );
    let (s, v) = call(
        &app,
        Method::POST,
        &b.key,
        "/api/v1/agents",
        Some(json!({ "name": "Bo", "endpoint": "client:bo", "groups": [a_group] })),
    )
    .await;
    assert_eq!(
        (s, v["error"]["field"].as_str()),
        (422, Some("groups")),
        "{v}"
    );
    let (_, list) = call(&app, Method::GET, &b.key, "/api/v1/agents", None).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["id"], b_agent);
    let (s, _) = call(
        &app,
        Method::GET,
        &b.key,
        &format!("/api/v1/agents?group={a_group}"),
        None,
    )
    .await;
    assert_eq!(s, 404);
    let (_, groups) = call(&app, Method::GET, &b.key, "/api/v1/agent-groups", None).await;
    assert_eq!(groups.as_array().unwrap().len(), 1);
    // A's rows are as they were.
    let (name, status): (String, String) =
        sqlx::query_as("SELECT name, status FROM agents WHERE id = $1::uuid")
            .bind(a_agent)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!((name.as_str(), status.as_str()), ("Ann", "offline"));
    let (_, g) = call(
        &app,
        Method::GET,
        &a.key,
        &format!("/api/v1/agent-groups/{a_group}"),
        None,
    )
    .await;
    assert_eq!(
        (g["name"].as_str(), g["agents"].clone()),
        (Some("Sales"), json!([a_agent]))
    );
    let keys: i64 = sqlx::query_scalar("SELECT count(*) FROM api_keys WHERE role = 'agent'")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(keys, 0);
}

#[tokio::test]
async fn an_agent_key_reads_its_own_agent_and_none_of_the_managers_endpoints() {
    let app = spawn_app().await;
    let t = app.tenant("Acme").await;
    let ann = create_agent(&app, &t, json!({ "name": "Ann", "endpoint": "client:ann" })).await;
    let id = ann["id"].as_str().unwrap();
    let (s, created) = call(
        &app,
        Method::POST,
        &t.key,
        &format!("/api/v1/agents/{id}/keys"),
        None,
    )
    .await;
    assert_eq!(s, 201, "{created}");
    assert_eq!(
        (created["role"].as_str(), created["agent_id"].as_str()),
        (Some("agent"), Some(id))
    );
    let key = created["key"].as_str().unwrap();
    assert!(key.starts_with("dlr_"));
    let (role, agent_id, hash): (String, Option<Uuid>, Vec<u8>) =
        sqlx::query_as("SELECT role, agent_id, key_hash FROM api_keys WHERE id = $1::uuid")
            .bind(created["id"].as_str().unwrap())
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(
        (role.as_str(), agent_id.map(|a| a.to_string())),
        ("agent", Some(id.to_string()))
    );
    assert_ne!(hash, key.as_bytes(), "only the hash is stored");

    let (s, me) = call(&app, Method::GET, key, "/api/v1/agents/me", None).await;
    assert_eq!((s, me["id"].as_str()), (200, Some(id)), "{me}");
    let (s, me) = call(
        &app,
        Method::PUT,
        key,
        "/api/v1/agents/me/status",
        Some(json!({ "status": "available" })),
    )
    .await;
    assert_eq!((s, me["status"].as_str()), (200, Some("available")), "{me}");

    for (method, path, body) in [
        (
            Method::POST,
            "/api/v1/agents".to_string(),
            Some(json!({ "name": "Eve", "endpoint": "client:eve" })),
        ),
        (Method::GET, "/api/v1/agents".to_string(), None),
        (Method::GET, format!("/api/v1/agents/{id}"), None),
        (
            Method::PATCH,
            format!("/api/v1/agents/{id}"),
            Some(json!({ "max_concurrent_calls": 5 })),
        ),
        (
            Method::PUT,
            format!("/api/v1/agents/{id}/status"),
            Some(json!({ "status": "offline" })),
        ),
        (Method::POST, format!("/api/v1/agents/{id}/keys"), None),
        (Method::GET, "/api/v1/agent-groups".to_string(), None),
        (
            Method::POST,
            "/api/v1/agent-groups".to_string(),
            Some(json!({ "name": "Mine" })),
        ),
    ] {
        let (s, v) = call(&app, method.clone(), key, &path, body).await;
        assert_eq!(s, 403, "{method} {path}: {v}");
    }
    // /me is for agents' keys; a manager's (here the admin's) has no agent.
    let (s, _) = call(&app, Method::GET, &t.key, "/api/v1/agents/me", None).await;
    assert_eq!(s, 403);
    let agents: i64 = sqlx::query_scalar("SELECT count(*) FROM agents")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(agents, 1, "the agent's key created nobody");
}

#[tokio::test]
async fn people_choose_available_break_or_offline_and_the_call_flow_keeps_busy_and_wrap_up() {
    let app = spawn_app().await;
    let t = app.tenant("Acme").await;
    let ann = create_agent(&app, &t, json!({ "name": "Ann", "endpoint": "client:ann" })).await;
    let id = ann["id"].as_str().unwrap().to_string();
    let key = agent_key(&app, &t, &id).await;
    let mine = |status: &str| Some(json!({ "status": status }));
    let managed = format!("/api/v1/agents/{id}/status");

    // Going available: the idle clock starts now and missed offers are forgotten.
    set_by_call_flow(
        &app,
        &id,
        "missed_offers = 2, status_changed_at = now() - interval '1 hour'",
    )
    .await;
    let before = Utc::now();
    let (s, v) = call(
        &app,
        Method::PUT,
        &key,
        "/api/v1/agents/me/status",
        mine("available"),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        (v["status"].as_str(), v["missed_offers"].as_i64()),
        (Some("available"), Some(0))
    );
    let idle: chrono::DateTime<Utc> = v["idle_since"].as_str().unwrap().parse().unwrap();
    let changed: chrono::DateTime<Utc> = v["status_changed_at"].as_str().unwrap().parse().unwrap();
    assert!(idle >= before - chrono::TimeDelta::seconds(2), "{v}");
    assert!(changed >= before - chrono::TimeDelta::seconds(2), "{v}");

    // Nobody may choose busy or wrap_up.
    for (k, path) in [
        (&key, "/api/v1/agents/me/status"),
        (&t.key, managed.as_str()),
    ] {
        for status in ["busy", "wrap_up"] {
            let (s, v) = call(&app, Method::PUT, k, path, mine(status)).await;
            assert_eq!(
                (s, v["error"]["field"].as_str()),
                (422, Some("status")),
                "{status}: {v}"
            );
        }
    }

    // On a call (the call flow reserved them): not available again until it ends …
    set_by_call_flow(
        &app,
        &id,
        "status = 'busy', active_calls = 1, idle_since = NULL",
    )
    .await;
    let (s, v) = call(
        &app,
        Method::PUT,
        &key,
        "/api/v1/agents/me/status",
        mine("available"),
    )
    .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (409, Some("agent_on_call")),
        "{v}"
    );
    // … but a break applies at once to future offers; the call goes on.
    let (s, v) = call(&app, Method::PUT, &t.key, &managed, mine("break")).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        (v["status"].as_str(), v["active_calls"].as_i64()),
        (Some("break"), Some(1))
    );
    assert!(v["idle_since"].is_null());
    let (s, v) = call(
        &app,
        Method::PUT,
        &key,
        "/api/v1/agents/me/status",
        mine("available"),
    )
    .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (409, Some("agent_on_call")),
        "still on the call: {v}"
    );

    // In wrap-up with a disposition owed: told where to post it.
    let leads = numbers(212, 1);
    app.import(&t, &crate::engine::csv(&leads), &[]).await;
    let call_id: i64 = sqlx::query_scalar(
        "INSERT INTO calls (tenant_id, campaign_id, lead_id, attempt, to_number, from_number, state,
                            agent_id, bridged_at, disposition)
         SELECT tenant_id, campaign_id, id, 1, phone_e164, '+14155550100', 'completed', $1::uuid, now(), 'answered'
           FROM leads RETURNING id",
    )
    .bind(&id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    set_by_call_flow(&app, &id, "status = 'wrap_up', active_calls = 0").await;
    let (s, v) = call(
        &app,
        Method::PUT,
        &key,
        "/api/v1/agents/me/status",
        mine("available"),
    )
    .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (409, Some("disposition_owed")),
        "{v}"
    );
    let message = v["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("POST /api/v1/calls/{call_id}/disposition")),
        "{message}"
    );
    let status: String = sqlx::query_scalar("SELECT status FROM agents WHERE id = $1::uuid")
        .bind(&id)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(status, "wrap_up", "a refused change changes nothing");
    // Once the disposition is in, nothing holds them.
    sqlx::query("UPDATE calls SET agent_disposition = 'sale' WHERE id = $1")
        .bind(call_id)
        .execute(&app.db)
        .await
        .unwrap();
    let (s, v) = call(
        &app,
        Method::PUT,
        &key,
        "/api/v1/agents/me/status",
        mine("available"),
    )
    .await;
    assert_eq!((s, v["status"].as_str()), (200, Some("available")), "{v}");
    let (s, v) = call(
        &app,
        Method::PUT,
        &key,
        "/api/v1/agents/me/status",
        Some(json!({})),
    )
    .await;
    assert_eq!(
        (s, v["error"]["field"].as_str()),
        (422, Some("status")),
        "{v}"
    );
}

#[tokio::test]
async fn a_group_a_campaign_uses_cannot_be_deleted() {
    let app = spawn_app().await;
    let t = app.tenant("Acme").await;
    let g = create_group(&app, &t, "Sales").await;
    let ann = create_agent(
        &app,
        &t,
        json!({ "name": "Ann", "endpoint": "client:ann", "groups": [g] }),
    )
    .await;
    sqlx::query("UPDATE campaigns SET agent_group_id = $1::uuid WHERE id = $2")
        .bind(&g)
        .bind(t.campaign.id)
        .execute(&app.db)
        .await
        .unwrap();
    let path = format!("/api/v1/agent-groups/{g}");
    let (_, shown) = call(&app, Method::GET, &t.key, &path, None).await;
    assert_eq!(shown["campaigns"], json!([t.campaign.id.to_string()]));
    let (s, v) = call(&app, Method::DELETE, &t.key, &path, None).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (409, Some("group_in_use")),
        "{v}"
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&t.campaign.id.to_string())
    );

    sqlx::query("UPDATE campaigns SET agent_group_id = NULL WHERE id = $1")
        .bind(t.campaign.id)
        .execute(&app.db)
        .await
        .unwrap();
    let (s, _) = call(&app, Method::DELETE, &t.key, &path, None).await;
    assert_eq!(s, 204);
    let (s, _) = call(&app, Method::GET, &t.key, &path, None).await;
    assert_eq!(s, 404);
    let (_, a) = call(
        &app,
        Method::GET,
        &t.key,
        &format!("/api/v1/agents/{}", ann["id"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(a["groups"], json!([]), "the agent stays, without the group");
}

#[tokio::test]
async fn an_agent_who_takes_a_break_through_the_api_is_offered_no_call() {
    let leads = numbers(212, 1);
    let sim = Simulator::start(people(&leads)).await.unwrap();
    let app = spawn_app_with(adjust_for(&sim, 20)).await;
    app.engine.clock.set(midweek(15, 0));
    let t = app.tenant("Acme").await;
    let g = create_group(&app, &t, "Sales").await;
    // Ann has been free the longest, so she would be offered the call first.
    let ann = create_agent(
        &app,
        &t,
        json!({ "name": "Ann", "endpoint": "client:ann", "groups": [g], "status": "available" }),
    )
    .await;
    let bob = create_agent(
        &app,
        &t,
        json!({ "name": "Bob", "endpoint": "client:bob", "groups": [g], "status": "available" }),
    )
    .await;
    let ann_key = agent_key(&app, &t, ann["id"].as_str().unwrap()).await;
    let (s, v) = call(
        &app,
        Method::PUT,
        &ann_key,
        "/api/v1/agents/me/status",
        Some(json!({ "status": "break" })),
    )
    .await;
    assert_eq!(s, 200, "{v}");

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

    assert_eq!(
        agent_dials(&sim.journal()),
        vec!["client:bob".to_string()],
        "only Bob rang"
    );
    let (disposition, agent): (Option<String>, Option<Uuid>) =
        sqlx::query_as("SELECT disposition, agent_id FROM calls")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(disposition.as_deref(), Some("answered"));
    assert_eq!(agent.map(|a| a.to_string()).as_deref(), bob["id"].as_str());
    let (_, ann) = call(&app, Method::GET, &ann_key, "/api/v1/agents/me", None).await;
    assert_eq!(
        (ann["status"].as_str(), ann["active_calls"].as_i64()),
        (Some("break"), Some(0))
    );
}

#[tokio::test]
async fn cli_creates_an_agent_sets_their_status_and_prints_a_key_once() {
    let db = TestDb::create().await;
    assert!(dialer(Some(&db), &["migrate"]).status.success());
    let t: Value =
        serde_json::from_slice(&dialer(Some(&db), &["tenant", "create", "T", "--json"]).stdout)
            .unwrap();
    let tenant = t["tenant"]["id"].as_str().unwrap();
    let o = dialer(
        Some(&db),
        &["agent-group", "create", "Sales", "--tenant", tenant],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = dialer(
        Some(&db),
        &[
            "agent",
            "create",
            "--tenant",
            tenant,
            "--name",
            "Ann Lee",
            "--endpoint",
            "+1 201 555 0123",
            "--time-zone",
            "Europe/London",
            "--work-start",
            "08:00",
            "--work-end",
            "16:00",
            "--work-days",
            "mon,tue,wed",
            "--max-calls",
            "2",
            "--group",
            "Sales",
            "--json",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let a: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(a["endpoint"], "+12015550123");
    assert_eq!(a["work_days"], json!(["mon", "tue", "wed"]));
    assert_eq!(
        (a["max_concurrent_calls"].as_i64(), a["status"].as_str()),
        (Some(2), Some("offline"))
    );
    assert_eq!(a["groups"].as_array().unwrap().len(), 1);
    let id = a["id"].as_str().unwrap();

    let o = dialer(
        Some(&db),
        &["agent", "status", id, "available", "--tenant", tenant],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o).trim(),
        format!("agent {id} (Ann Lee) is now available")
    );
    let o = dialer(
        Some(&db),
        &["agent", "status", id, "busy", "--tenant", tenant],
    );
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("set by the call flow"),
        "{}",
        stderr(&o)
    );
    let o = dialer(
        Some(&db),
        &["agent", "list", "--tenant", tenant, "--group", "Sales"],
    );
    assert!(
        stdout(&o).contains(&format!("{id}  available Ann Lee  +12015550123")),
        "{}",
        stdout(&o)
    );

    let o = dialer(Some(&db), &["agent", "key", id, "--tenant", tenant]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let key = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("key:"))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no key line: {out}"));
    assert!(out.contains("shown only now"), "{out}");
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let hasher = dialer::auth::KeyHasher::new(Some("test-pepper".to_string().into()));
    let (role, agent): (String, Uuid) =
        sqlx::query_as("SELECT role, agent_id FROM api_keys WHERE key_hash = $1")
            .bind(hasher.hash(key))
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        (role.as_str(), agent.to_string()),
        ("agent", id.to_string())
    );

    // Errors name the flag's field and value; another tenant finds nothing.
    let o = dialer(
        Some(&db),
        &[
            "agent",
            "create",
            "--tenant",
            tenant,
            "--name",
            "Bob",
            "--endpoint",
            "555-0199",
        ],
    );
    assert!(!o.status.success());
    assert!(
        stderr(&o).starts_with("error: invalid endpoint `555-0199`"),
        "{}",
        stderr(&o)
    );
    let other: Value =
        serde_json::from_slice(&dialer(Some(&db), &["tenant", "create", "Other", "--json"]).stdout)
            .unwrap();
    let o = dialer(
        Some(&db),
        &[
            "agent",
            "status",
            id,
            "offline",
            "--tenant",
            other["tenant"]["id"].as_str().unwrap(),
        ],
    );
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains(&format!("no agent {id}")),
        "{}",
        stderr(&o)
    );
    pool.close().await;
}

#[tokio::test]
async fn cli_gives_a_campaign_its_agent_group_abandonment_cap_and_codes() {
    let db = TestDb::create().await;
    assert!(dialer(Some(&db), &["migrate"]).status.success());
    let t: Value =
        serde_json::from_slice(&dialer(Some(&db), &["tenant", "create", "T", "--json"]).stdout)
            .unwrap();
    let tenant = t["tenant"]["id"].as_str().unwrap();
    let o = dialer(
        Some(&db),
        &["agent-group", "create", "Sales", "--tenant", tenant],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let c: Value = serde_json::from_slice(
        &dialer(
            Some(&db),
            &[
                "campaign", "create", "--tenant", tenant, "--name", "Spring", "--json",
            ],
        )
        .stdout,
    )
    .unwrap();
    let campaign = c["id"].as_str().unwrap();
    let args = |extra: &[&'static str]| {
        let mut v = vec!["campaign", "agents", campaign, "--tenant", tenant, "--json"];
        v.extend_from_slice(extra);
        v
    };
    let o = dialer(
        Some(&db),
        &args(&[
            "--group",
            "Sales",
            "--abandon-cap",
            "2.5",
            "--dispositions",
            "Hot_Lead,later",
        ]),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let set: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(set["agent_group_id"].is_string(), "{set}");
    assert_eq!(set["abandon_cap_pct"], 2.5);
    let codes: Vec<String> = sqlx::query_scalar(
        "SELECT unnest(disposition_codes) FROM campaigns WHERE id = $1::uuid ORDER BY 1",
    )
    .bind(campaign)
    .fetch_all(
        &mut <sqlx::PgConnection as sqlx::Connection>::connect(&db.url)
            .await
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(codes, ["hot_lead", "later"]);
    // Bad values name the setting; nothing changes.
    for (extra, named) in [
        (&["--abandon-cap", "150"][..], "abandon_cap_pct"),
        (&["--dispositions", "no way"][..], "disposition_codes"),
        (&["--group", "Nobody"][..], "group"),
    ] {
        let o = dialer(Some(&db), &args(extra));
        assert!(!o.status.success());
        assert!(stderr(&o).contains(named), "{extra:?}: {}", stderr(&o));
    }
    let o = dialer(Some(&db), &args(&["--no-group"]));
    let set: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(set["agent_group_id"].is_null(), "{set}");
    assert_eq!(set["abandon_cap_pct"], 2.5, "left as it was");
}
