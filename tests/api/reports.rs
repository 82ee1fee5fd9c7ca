//! Reports and the calls export after a real campaign against the simulator: the figures
//! match what happened, the CSV round-trips through a reader with no cell a spreadsheet
//! would run, the JSON carries the same calls, and each tenant sees only its own.

use std::process::Command;
use std::time::Duration;

use dialer::sim::{Outcome, Simulator};
use serde_json::{Value, json};

use crate::disposition::agent_key;
use crate::engine::{adjust_for, midweek, numbers, start_campaign, wait_completed};
use crate::helpers::{Tenant, TestApp, spawn_app_with};
use crate::transfer::{agent, group, people};

async fn get(app: &TestApp, key: &str, path: &str) -> (u16, String) {
    let r = app.get_as(key, path).await;
    (r.status().as_u16(), r.text().await.unwrap())
}

/// One person bridged to dan (whose disposition is `sale`), one answering machine, one
/// nobody answers.
async fn finished_campaign() -> (Simulator, TestApp, Tenant, uuid::Uuid, Vec<String>) {
    let leads = numbers(212, 3);
    let mut cfg = people(&leads[..1]);
    cfg.numbers.insert(leads[1].clone(), Outcome::Machine);
    cfg.numbers.insert(leads[2].clone(), Outcome::NoAnswer);
    // 80 s of talk: 2 s here, at the simulator's 40x.
    cfg.timing.talk_secs = [80.0, 80.0];
    let sim = Simulator::start(cfg).await.unwrap();
    let app = spawn_app_with(adjust_for(&sim, 20)).await;
    app.engine.clock.set(midweek(15, 0));
    let t = app.tenant("Acme").await;
    let dan = agent(&app, &t, "client:dan", 60, "").await;
    // Enough free agents that all three are dialled at once; the person goes to dan,
    // idle longest.
    let eve = agent(&app, &t, "client:eve", 5, "").await;
    let fay = agent(&app, &t, "client:fay", 4, "").await;
    let g = group(&app, &t, &[dan, eve, fay]).await;
    start_campaign(
        &app,
        &t,
        &leads,
        &format!(
            ", max_attempts = 1, abandon_cap_pct = 3, max_hold_ms = 10000, agent_group_id = '{g}', dial_timeout_secs = 15"
        ),
    )
    .await;
    wait_completed(&app, &t, Duration::from_secs(60)).await;
    let call: i64 = sqlx::query_scalar("SELECT id FROM calls WHERE agent_id IS NOT NULL")
        .fetch_one(&app.db)
        .await
        .unwrap();
    let r = app
        .client
        .post(format!("{}/api/v1/calls/{call}/disposition", app.address))
        .bearer_auth(&t.key)
        .json(&json!({"disposition": "sale", "notes": "-wants the blue one"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    // A lead name a spreadsheet would run as a formula.
    sqlx::query(
        "UPDATE leads SET first_name = '=HYPERLINK(\"http://x\",\"y\")' WHERE phone_e164 = $1",
    )
    .bind(&leads[0])
    .execute(&app.db)
    .await
    .unwrap();
    (sim, app, t, dan, leads)
}

#[tokio::test]
async fn reports_and_exports_tell_what_happened_and_are_safe_to_open() {
    let (_sim, app, t, dan, leads) = finished_campaign().await;
    let campaign = t.campaign.id.to_string();

    let (s, body) = get(
        &app,
        &t.key,
        &format!("/api/v1/campaigns/{campaign}/report"),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let r: Value = serde_json::from_str(&body).unwrap();
    let all = &r["since_start"];
    for (figure, want) in [
        ("dials", 3),
        ("connects", 2),
        ("human", 1),
        ("machine", 1),
        ("bridged", 1),
        ("abandoned", 0),
    ] {
        assert_eq!(all[figure], want, "{figure}: {r}");
    }
    assert_eq!(all["answer_rate_pct"], 66.67, "{r}");
    assert_eq!(all["abandon_rate_pct"], 0.0, "{r}");
    assert_eq!(
        all["dispositions"],
        json!({"answered": 1, "voicemail": 1, "no_answer": 1}),
        "{r}"
    );
    assert_eq!(all["agent_dispositions"], json!({"sale": 1}), "{r}");
    let talk = all["avg_talk_secs"].as_f64().unwrap();
    assert!((0.5..=4.0).contains(&talk), "talk {talk} s: {r}");
    assert_eq!(
        r["last_30_days"], r["since_start"],
        "all of it happened today"
    );

    let (s, body) = get(&app, &t.key, &format!("/api/v1/agents/{dan}/report")).await;
    assert_eq!(s, 200, "{body}");
    let a: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (
            a["offers"].clone(),
            a["accepted"].clone(),
            a["calls_bridged"].clone()
        ),
        (json!(1), json!(1), json!(1)),
        "{a}"
    );
    assert_eq!(a["dispositions"], json!({"sale": 1}));

    // CSV: a reader gets every call back; no cell starts a formula.
    let (s, body) = get(
        &app,
        &t.key,
        &format!("/api/v1/calls/export?campaign={campaign}"),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let mut reader = csv::Reader::from_reader(body.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(header, dialer::report::export::COLUMNS);
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 3);
    for row in &rows {
        for cell in row {
            assert!(
                !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "a spreadsheet would run {cell:?}"
            );
        }
    }
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let bridged = rows
        .iter()
        .find(|r| !r[col("agent_id")].is_empty())
        .expect("the bridged call");
    assert_eq!(
        &bridged[col("first_name")],
        "'=HYPERLINK(\"http://x\",\"y\")"
    );
    assert_eq!(&bridged[col("to_number")], format!("'{}", leads[0]));
    assert_eq!(&bridged[col("agent_name")], "client:dan");
    assert_eq!(&bridged[col("agent_disposition")], "sale");
    assert_eq!(&bridged[col("agent_notes")], "'-wants the blue one");

    // JSON: the same calls, values untouched.
    let (s, body) = get(
        &app,
        &t.key,
        &format!("/api/v1/calls/export?campaign={campaign}&format=json"),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let calls: Vec<Value> = serde_json::from_str(&body).unwrap();
    assert_eq!(calls.len(), 3);
    let ids_csv: Vec<String> = rows.iter().map(|r| r[col("call_id")].to_string()).collect();
    let ids_json: Vec<String> = calls.iter().map(|c| c["call_id"].to_string()).collect();
    assert_eq!(ids_csv, ids_json);
    let b = calls.iter().find(|c| !c["agent_id"].is_null()).unwrap();
    assert_eq!(b["first_name"], "=HYPERLINK(\"http://x\",\"y\")");
    assert_eq!(b["to_number"], leads[0].as_str());

    // Filters.
    let (_, body) = get(
        &app,
        &t.key,
        "/api/v1/calls/export?format=json&disposition=voicemail",
    )
    .await;
    let v: Vec<Value> = serde_json::from_str(&body).unwrap();
    assert_eq!(v.len(), 1);
    assert_eq!(v[0]["to_number"], leads[1].as_str());
    let (_, body) = get(
        &app,
        &t.key,
        &format!(
            "/api/v1/calls/export?format=json&phone={}",
            leads[2].replace('+', "%2B")
        ),
    )
    .await;
    let v: Vec<Value> = serde_json::from_str(&body).unwrap();
    assert_eq!(v.len(), 1, "{body}");
    assert_eq!(v[0]["disposition"], "no_answer");
    for (query, field) in [
        ("from=yesterday", "from"),
        ("format=xlsx", "format"),
        ("campaign=42", "campaign"),
        ("colour=red", "colour"),
    ] {
        let (s, body) = get(&app, &t.key, &format!("/api/v1/calls/export?{query}")).await;
        assert_eq!(s, 422, "{query}: {body}");
        let e: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(e["error"]["field"], field, "{query}: {body}");
    }

    // The calls list: newest first, in pages with a cursor; one call with its timeline.
    let list = |q: String, key: String| {
        let app = &app;
        async move {
            let (s, body) = get(app, &key, &format!("/api/v1/calls?{q}")).await;
            assert_eq!(s, 200, "{q}: {body}");
            serde_json::from_str::<Value>(&body).unwrap()
        }
    };
    let all = list(format!("campaign={campaign}"), t.key.clone()).await;
    let ids: Vec<i64> = all["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["call_id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids.len(), 3);
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");
    let first = list("limit=2".into(), t.key.clone()).await;
    assert_eq!(first["calls"].as_array().unwrap().len(), 2);
    let cursor = first["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_string();
    let rest = list(format!("limit=2&cursor={cursor}"), t.key.clone()).await;
    assert_eq!(rest["calls"][0]["call_id"], ids[2]);
    assert!(rest.get("next_cursor").is_none(), "{rest}");
    let bridged_id = bridged[col("call_id")].to_string();
    let (s, body) = get(&app, &t.key, &format!("/api/v1/calls/{bridged_id}")).await;
    assert_eq!(s, 200, "{body}");
    let detail: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(detail["agent_name"], "client:dan");
    assert_eq!(detail["offers"][0]["agent_id"], dan.to_string());
    assert_eq!(detail["offers"][0]["state"], "ended");
    let kinds: Vec<&str> = detail["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"status") && kinds.contains(&"amd"),
        "{kinds:?}"
    );
    // An agent's key sees the calls they took and no other.
    let dan_key = agent_key(&app, &t, dan).await;
    let own = list(String::new(), dan_key.clone()).await;
    let own_ids: Vec<String> = own["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["call_id"].to_string())
        .collect();
    assert_eq!(own_ids, vec![bridged_id.clone()]);
    let voicemail_id = calls
        .iter()
        .find(|c| c["disposition"] == "voicemail")
        .unwrap()["call_id"]
        .to_string();
    let (s, _) = get(&app, &dan_key, &format!("/api/v1/calls/{voicemail_id}")).await;
    assert_eq!(s, 404);
    let (s, body) = get(&app, &t.key, "/api/v1/calls?limit=0").await;
    assert_eq!(s, 422, "{body}");

    // Another tenant: nothing of Acme's, whichever way it asks.
    let other = app.tenant("Other").await;
    let (s, _) = get(
        &app,
        &other.key,
        &format!("/api/v1/campaigns/{campaign}/report"),
    )
    .await;
    assert_eq!(s, 404);
    let (s, _) = get(&app, &other.key, &format!("/api/v1/agents/{dan}/report")).await;
    assert_eq!(s, 404);
    let (s, body) = get(
        &app,
        &other.key,
        &format!("/api/v1/calls/export?format=json&campaign={campaign}"),
    )
    .await;
    assert_eq!((s, body.as_str()), (200, "[]"));
    let (s, _) = get(&app, &other.key, &format!("/api/v1/calls/{bridged_id}")).await;
    assert_eq!(s, 404);
    let theirs = list(String::new(), other.key.clone()).await;
    assert_eq!(theirs["calls"], json!([]));

    // The CLI prints the same report.
    let out = Command::new(env!("CARGO_BIN_EXE_dialer"))
        .env("DIALER_CONFIG", "/dev/null")
        .envs(app.env())
        .args(["report", &campaign, "--format", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cli: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(cli["since_start"], r["since_start"]);
    let out = Command::new(env!("CARGO_BIN_EXE_dialer"))
        .env("DIALER_CONFIG", "/dev/null")
        .envs(app.env())
        .args(["report", &campaign, "--format", "csv"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with("figure,since_start,last_30_days\n"),
        "{text}"
    );
    assert!(text.contains("abandon_rate_pct,0.00,0.00\n"), "{text}");
    assert!(text.contains("agent_disposition:sale,1,1\n"), "{text}");
}

#[tokio::test]
async fn an_agent_key_cannot_read_reports_progress_or_exports() {
    let app = spawn_app_with(|_| {}).await;
    let t = app.tenant("Acme").await;
    let dan = agent(&app, &t, "client:dan", 0, "").await;
    let secret = agent_key(&app, &t, dan).await;
    for path in [
        format!("/api/v1/campaigns/{}/report", t.campaign.id),
        format!("/api/v1/campaigns/{}/progress", t.campaign.id),
        format!("/api/v1/agents/{dan}/report"),
        "/api/v1/calls/export".to_string(),
    ] {
        let (s, body) = get(&app, &secret, &path).await;
        assert_eq!(s, 403, "{path}: {body}");
    }
}

#[tokio::test]
async fn a_key_over_its_rate_gets_429_with_retry_after_and_other_keys_go_on() {
    let app = spawn_app_with(|s| {
        s.http.api_requests_per_sec = 1;
        s.http.api_burst = 3;
    })
    .await;
    let a = app.tenant("Acme").await;
    let b = app.tenant("Other").await;
    let path = "/api/v1/dnc";
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(app.get_as(&a.key, path).await.status().as_u16());
    }
    assert_eq!(&statuses[..3], [200, 200, 200], "{statuses:?}");
    assert_eq!(statuses[4], 429, "{statuses:?}");
    let r = app.get_as(&a.key, path).await;
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry), "Retry-After {retry}");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    // Another key is not held back by the first one's use.
    assert_eq!(app.get_as(&b.key, path).await.status(), 200);
}
