//! Outbound CRM webhooks: a tenant admin sets an endpoint; a campaign run against the
//! simulator sends it `call.finished`, `lead.final` and (after wrap-up) `disposition.set`,
//! signed with the tenant's secret; a failing CRM gets the event again later, then is given
//! up on; another tenant's CRM never sees them. Also the metrics these runs feed.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use dialer::config::Settings;
use dialer::crm::signature;
use dialer::sim::Simulator;
use serde_json::{Value, json};

use crate::engine::{adjust_for, midweek, numbers, start_campaign, wait_completed};
use crate::helpers::{Tenant, TestApp, spawn_app, spawn_app_with};
use crate::transfer::{agent, group, people};

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    event: String,
    delivery: String,
    attempt: String,
    signature: String,
    body: Vec<u8>,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// A CRM: an HTTP server on a free port that records every request and answers the first
/// `fail_first` with 500 (all of them when `usize::MAX`).
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    async fn start(fail_first: usize) -> Self {
        let got: Arc<Mutex<Vec<Received>>> = Arc::default();
        let seen = got.clone();
        let app = axum::Router::new().route(
            "/hooks",
            axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
                let seen = seen.clone();
                async move {
                    let h = |n: &str| {
                        headers
                            .get(n)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_string()
                    };
                    let mut all = seen.lock().unwrap();
                    all.push(Received {
                        event: h("x-dialer-event"),
                        delivery: h("x-dialer-delivery"),
                        attempt: h("x-dialer-attempt"),
                        signature: h("x-dialer-signature"),
                        body: body.to_vec(),
                    });
                    if all.len() <= fail_first {
                        (StatusCode::INTERNAL_SERVER_ERROR, "CRM is down")
                    } else {
                        (StatusCode::OK, "ok")
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hooks", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, got }
    }

    fn got(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// Waits until `done` holds for what was received.
    async fn wait_for(&self, what: &str, done: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let got = self.got();
            if done(&got) {
                return got;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the CRM never got {what}: {:?}",
                got.iter().map(|r| r.json()).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Fast deliveries and retries, localhost allowed, gauges refreshed often.
fn fast_crm(s: &mut Settings) {
    s.crm_webhooks.allow_private_targets = true;
    s.crm_webhooks.poll_interval_ms = 50;
    s.crm_webhooks.retry_base_ms = 400;
    s.crm_webhooks.retry_max_ms = 1000;
    s.crm_webhooks.timeout_ms = 2000;
    s.daemon.tick_ms = 200;
}

async fn send(
    app: &TestApp,
    method: reqwest::Method,
    key: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut r = app
        .client
        .request(method, format!("{}{path}", app.address))
        .bearer_auth(key);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Sets the tenant's endpoint through the API; its secret.
async fn set_webhook(app: &TestApp, t: &Tenant, url: &str) -> String {
    let (s, b) = send(
        app,
        reqwest::Method::PUT,
        &t.key,
        "/api/v1/webhook",
        Some(json!({"url": url})),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    b["secret"].as_str().unwrap().to_string()
}

fn verify(secret: &str, r: &Received) {
    let now = chrono::Utc::now().timestamp();
    signature::verify(secret, &r.signature, &r.body, now, 300)
        .unwrap_or_else(|e| panic!("{e}: {} {}", r.signature, String::from_utf8_lossy(&r.body)));
}

async fn deliveries(app: &TestApp, t: &Tenant) -> Vec<Value> {
    let (s, b) = send(
        app,
        reqwest::Method::GET,
        &t.key,
        "/api/v1/webhook/deliveries?limit=100",
        None,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    b.as_array().unwrap().clone()
}

#[tokio::test]
async fn a_campaign_run_sends_signed_events_to_its_tenants_crm_only() {
    let a_leads = numbers(212, 1);
    let b_leads = numbers(213, 2);
    let mut cfg = people(&a_leads);
    for n in &b_leads {
        cfg.numbers.insert(n.clone(), dialer::sim::Outcome::Busy);
    }
    let sim = Simulator::start(cfg).await.unwrap();
    let adjust = adjust_for(&sim, 20);
    let app = spawn_app_with(|s| {
        adjust(s);
        fast_crm(s);
    })
    .await;
    app.engine.clock.set(midweek(15, 0));
    let a = app.tenant("Acme").await;
    let b = app.tenant("Other").await;
    let a_crm = Receiver::start(0).await;
    let b_crm = Receiver::start(0).await;
    let a_secret = set_webhook(&app, &a, &a_crm.url).await;
    let b_secret = set_webhook(&app, &b, &b_crm.url).await;
    assert_ne!(a_secret, b_secret);

    let dan = agent(&app, &a, "client:dan", 60, "").await;
    let g = group(&app, &a, &[dan]).await;
    start_campaign(
        &app,
        &a,
        &a_leads,
        &format!(
            ", max_attempts = 1, abandon_cap_pct = 3, max_hold_ms = 10000, agent_group_id = '{g}'"
        ),
    )
    .await;
    start_campaign(&app, &b, &b_leads, ", max_attempts = 1").await;
    wait_completed(&app, &a, Duration::from_secs(30)).await;
    wait_completed(&app, &b, Duration::from_secs(30)).await;

    // Tenant A: its one call, answered by a person and bridged to dan, and its lead, done.
    let got = a_crm
        .wait_for("call.finished and lead.final", |g| g.len() >= 2)
        .await;
    let call: i64 = sqlx::query_scalar("SELECT id FROM calls WHERE tenant_id = $1")
        .bind(a.id)
        .fetch_one(&app.db)
        .await
        .unwrap();
    for r in &got {
        verify(&a_secret, r);
        let body = r.json();
        assert_eq!(body["event"], r.event.as_str());
        assert_eq!(body["tenant_id"], a.id.to_string());
        assert!(r.delivery.parse::<i64>().is_ok(), "{r:?}");
        assert_eq!(r.attempt, "1");
        // The other tenant's secret does not verify it.
        let now = chrono::Utc::now().timestamp();
        assert!(signature::verify(&b_secret, &r.signature, &r.body, now, 300).is_err());
    }
    let finished = got
        .iter()
        .find(|r| r.event == "call.finished")
        .expect("call.finished")
        .json();
    assert_eq!(finished["id"], format!("call.finished:{call}"));
    let data = &finished["data"];
    assert_eq!(data["call_id"], call);
    assert_eq!(data["campaign_id"], a.campaign.id.to_string());
    assert_eq!(data["disposition"], "answered", "{finished}");
    assert_eq!(data["answered_by"], "human", "{finished}");
    assert_eq!(data["agent_id"], dan.to_string());
    assert_eq!(data["agent_name"], "client:dan");
    assert_eq!(data["to"], a_leads[0].as_str());
    assert!(data["duration_secs"].as_i64().is_some(), "{finished}");
    assert!(data["bridged_at"].is_string(), "{finished}");
    let lead = got
        .iter()
        .find(|r| r.event == "lead.final")
        .expect("lead.final")
        .json();
    assert_eq!(lead["data"]["final_reason"], "answered");
    assert_eq!(lead["data"]["attempts"], 1);
    assert_eq!(lead["data"]["first_name"], "Lead0");
    assert_eq!(lead["data"]["last_call_id"], call);

    // The wrap-up: disposition.set.
    let (s, body) = send(
        &app,
        reqwest::Method::POST,
        &a.key,
        &format!("/api/v1/calls/{call}/disposition"),
        Some(json!({"disposition": "sale", "notes": "two boxes"})),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let got = a_crm
        .wait_for("disposition.set", |g| {
            g.iter().any(|r| r.event == "disposition.set")
        })
        .await;
    let set = got.iter().find(|r| r.event == "disposition.set").unwrap();
    verify(&a_secret, set);
    let set = set.json();
    assert_eq!(set["data"]["call_id"], call);
    assert_eq!(set["data"]["disposition"], "sale");
    assert_eq!(set["data"]["notes"], "two boxes");
    assert_eq!(set["data"]["agent_id"], dan.to_string());
    assert!(set["data"]["callback_at"].is_null());

    // Tenant B: its own two busy calls and two leads, nothing of A's.
    let got = b_crm
        .wait_for("two calls and two leads", |g| g.len() >= 4)
        .await;
    for r in &got {
        verify(&b_secret, r);
        let body = r.json();
        assert_eq!(body["tenant_id"], b.id.to_string(), "{body}");
        assert_ne!(body["data"]["call_id"], call);
    }
    let events: Vec<&str> = got.iter().map(|r| r.event.as_str()).collect();
    assert_eq!(
        events.iter().filter(|e| **e == "call.finished").count(),
        2,
        "{events:?}"
    );
    assert_eq!(
        events.iter().filter(|e| **e == "lead.final").count(),
        2,
        "{events:?}"
    );
    assert!(
        got.iter()
            .all(|r| r.json()["data"]["campaign_id"] == b.campaign.id.to_string())
    );

    // Each delivery went once, and the API says so.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(a_crm.got().len(), 3);
    assert_eq!(b_crm.got().len(), 4);
    let list = deliveries(&app, &a).await;
    assert_eq!(list.len(), 3, "{list:?}");
    assert!(
        list.iter()
            .all(|d| d["state"] == "delivered" && d["attempts"] == 1 && d["last_status"] == 200),
        "{list:?}"
    );

    // The metrics these runs feed.
    let carrier =
        dialer::telephony::client::TwilioClient::from_settings(&app.settings.twilio).unwrap();
    let missing = dialer::telephony::CallSid::parse("CA0123456789abcdef0123456789abcdef").unwrap();
    assert!(carrier.fetch_call(&missing).await.is_err());
    tokio::time::sleep(Duration::from_millis(400)).await;
    let text = app.get("/metrics").await.text().await.unwrap();
    for name in [
        "dialer_calls_active ",
        "dialer_queue_depth ",
        "dialer_campaign_abandonment_ratio{campaign=",
        "dialer_call_outcomes_total{disposition=\"answered\"}",
        "dialer_call_outcomes_total{disposition=\"busy\"}",
        "dialer_dials_total ",
        "dialer_webhook_duration_seconds_count{kind=",
        "dialer_twilio_api_errors_total{status=\"404\"",
        "dialer_crm_webhook_deliveries_total{result=\"delivered\"}",
        "dialer_crm_webhook_delivery_duration_seconds_count",
        "dialer_crm_webhook_backlog ",
        "# HELP dialer_calls_active ",
        "# HELP dialer_twilio_api_errors_total ",
    ] {
        assert!(text.contains(name), "/metrics lacks {name}:\n{text}");
    }
}

#[tokio::test]
async fn a_failing_crm_gets_the_event_again_later_and_is_given_up_on_after_the_last_attempt() {
    let leads = numbers(212, 1);
    let dead_leads = numbers(213, 1);
    let mut cfg = people(&[]);
    for n in leads.iter().chain(&dead_leads) {
        cfg.numbers.insert(n.clone(), dialer::sim::Outcome::Busy);
    }
    let sim = Simulator::start(cfg).await.unwrap();
    let adjust = adjust_for(&sim, 20);
    let app = spawn_app_with(|s| {
        adjust(s);
        fast_crm(s);
        s.crm_webhooks.max_attempts = 3;
    })
    .await;
    app.engine.clock.set(midweek(15, 0));
    let t = app.tenant("Acme").await;
    let d = app.tenant("Dead").await;
    // Down for the first two requests: the delivery succeeds at its third attempt.
    let crm = Receiver::start(2).await;
    let secret = set_webhook(&app, &t, &crm.url).await;
    // Only call.finished; the secret stays and is not shown again.
    let (s, b) = send(
        &app,
        reqwest::Method::PUT,
        &t.key,
        "/api/v1/webhook",
        Some(json!({"url": crm.url, "events": ["call.finished"]})),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert!(b.get("secret").is_none(), "{b}");
    // A CRM that never answers 2xx.
    let dead = Receiver::start(usize::MAX).await;
    set_webhook(&app, &d, &dead.url).await;
    start_campaign(&app, &t, &leads, ", max_attempts = 1").await;
    start_campaign(&app, &d, &dead_leads, ", max_attempts = 1").await;
    wait_completed(&app, &t, Duration::from_secs(30)).await;
    wait_completed(&app, &d, Duration::from_secs(30)).await;

    let got = crm
        .wait_for("a retry that succeeds", |g| g.len() >= 3)
        .await;
    assert!(got.iter().all(|r| r.event == "call.finished"), "{got:?}");
    // The same delivery, the same body, attempts 1, 2, 3, each signed.
    assert!(
        got.iter()
            .all(|r| r.delivery == got[0].delivery && r.body == got[0].body)
    );
    assert_eq!(
        got.iter().map(|r| r.attempt.as_str()).collect::<Vec<_>>(),
        ["1", "2", "3"]
    );
    for r in &got {
        verify(&secret, r);
    }
    let list = deliveries(&app, &t).await;
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["state"], "delivered", "{list:?}");
    assert_eq!(list[0]["attempts"], 3);
    assert_eq!(list[0]["last_status"], 200);
    assert!(list[0]["last_error"].is_null());

    // The dead CRM: both events given up after max_attempts, kept as failed.
    dead.wait_for("three attempts of each event", |g| g.len() >= 6)
        .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let failed = loop {
        let list = deliveries(&app, &d).await;
        let failed: Vec<Value> = list
            .into_iter()
            .filter(|d| d["state"] == "failed")
            .collect();
        if failed.len() == 2 {
            break failed;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not given up: {failed:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    for d in &failed {
        assert_eq!(d["attempts"], 3, "{d}");
        assert_eq!(d["last_status"], 500, "{d}");
        assert_eq!(d["last_error"], "HTTP 500: CRM is down", "{d}");
        assert!(d["next_attempt_at"].is_null(), "{d}");
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(dead.got().len(), 6, "no attempt after the last");
    assert_eq!(crm.got().len(), 3, "nothing after the delivery");
}

#[tokio::test]
async fn only_tenant_admins_keep_the_webhook_and_bad_input_names_the_field() {
    let app = spawn_app().await;
    let t = app.tenant("Acme").await;
    let other = app.tenant("Other").await;
    let hasher = dialer::auth::KeyHasher::new(Some("test-pepper".to_string().into()));
    let manager = {
        let mut conn = app.db.acquire().await.unwrap();
        dialer::auth::repo::create_key(
            &mut conn,
            t.id,
            "mgr",
            dialer::auth::Role::Manager,
            None,
            &hasher,
        )
        .await
        .unwrap()
        .key
    };
    use reqwest::Method;
    let body = json!({"url": "https://crm.example.com/hooks"});
    for (method, path, body) in [
        (Method::GET, "/api/v1/webhook", None),
        (Method::PUT, "/api/v1/webhook", Some(body.clone())),
        (Method::DELETE, "/api/v1/webhook", None),
        (Method::POST, "/api/v1/webhook/rotate-secret", None),
        (Method::GET, "/api/v1/webhook/deliveries", None),
    ] {
        let (s, b) = send(&app, method.clone(), &manager, path, body).await;
        assert_eq!(s, 403, "{method} {path}: {b}");
        assert_eq!(b["error"]["code"], "forbidden");
    }
    let (s, _) = send(&app, Method::GET, "dlr_nope", "/api/v1/webhook", None).await;
    assert_eq!(s, 401);

    let (s, b) = send(&app, Method::GET, &t.key, "/api/v1/webhook", None).await;
    assert_eq!(s, 404, "{b}");
    for (bad, field) in [
        (json!({}), "url"),
        (json!({"url": "crm.example.com"}), "url"),
        (json!({"url": "ftp://crm.example.com/"}), "url"),
        (json!({"url": "https://"}), "url"),
        (json!({"url": 7}), "url"),
        // Internal targets are refused by default (crm_webhooks.allow_private_targets).
        (json!({"url": "http://127.0.0.1:8080/hooks"}), "url"),
        (json!({"url": "http://169.254.169.254/latest"}), "url"),
        (
            json!({"url": "https://crm.example.com/", "events": ["call.started"]}),
            "events[0]",
        ),
        (
            json!({"url": "https://crm.example.com/", "events": []}),
            "events",
        ),
        (
            json!({"url": "https://crm.example.com/", "enabled": "yes"}),
            "enabled",
        ),
        (
            json!({"url": "https://crm.example.com/", "colour": "red"}),
            "colour",
        ),
    ] {
        let (s, b) = send(
            &app,
            Method::PUT,
            &t.key,
            "/api/v1/webhook",
            Some(bad.clone()),
        )
        .await;
        assert_eq!(s, 422, "{bad} → {b}");
        assert_eq!(b["error"]["field"], field, "{bad} → {b}");
    }

    let (s, created) = send(
        &app,
        Method::PUT,
        &t.key,
        "/api/v1/webhook",
        Some(json!({"url": "https://crm.example.com/hooks", "events": ["lead.final"]})),
    )
    .await;
    assert_eq!(s, 201, "{created}");
    let secret = created["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"), "{created}");
    assert_eq!(created["events"], json!(["lead.final"]));
    assert_eq!(created["enabled"], true);

    let (s, shown) = send(&app, Method::GET, &t.key, "/api/v1/webhook", None).await;
    assert_eq!(s, 200, "{shown}");
    assert!(shown.get("secret").is_none(), "{shown}");
    assert!(!shown.to_string().contains(&secret), "{shown}");
    assert_eq!(shown["url"], "https://crm.example.com/hooks");
    assert!(secret.starts_with(shown["secret_prefix"].as_str().unwrap()));
    // Another tenant has none.
    let (s, _) = send(&app, Method::GET, &other.key, "/api/v1/webhook", None).await;
    assert_eq!(s, 404);

    let (s, updated) = send(
        &app,
        Method::PUT,
        &t.key,
        "/api/v1/webhook",
        Some(json!({"url": "https://crm.example.com/v2", "enabled": false})),
    )
    .await;
    assert_eq!(s, 200, "{updated}");
    assert!(updated.get("secret").is_none());
    assert_eq!(updated["enabled"], false);
    assert_eq!(updated["events"].as_array().unwrap().len(), 3);

    let (s, rotated) = send(
        &app,
        Method::POST,
        &t.key,
        "/api/v1/webhook/rotate-secret",
        None,
    )
    .await;
    assert_eq!(s, 200, "{rotated}");
    let new = rotated["secret"].as_str().unwrap();
    assert!(new.starts_with("whsec_") && new != secret, "{rotated}");

    let (s, list) = send(
        &app,
        Method::GET,
        &t.key,
        "/api/v1/webhook/deliveries",
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(list, json!([]));
    for bad in ["0", "201", "ten"] {
        let (s, b) = send(
            &app,
            Method::GET,
            &t.key,
            &format!("/api/v1/webhook/deliveries?limit={bad}"),
            None,
        )
        .await;
        assert_eq!(s, 422, "{bad}: {b}");
        assert_eq!(b["error"]["field"], "limit");
    }

    let (s, _) = send(&app, Method::DELETE, &other.key, "/api/v1/webhook", None).await;
    assert_eq!(s, 404, "another tenant cannot remove it");
    let (s, _) = send(&app, Method::DELETE, &t.key, "/api/v1/webhook", None).await;
    assert_eq!(s, 204);
    let (s, _) = send(&app, Method::GET, &t.key, "/api/v1/webhook", None).await;
    assert_eq!(s, 404);
    let (s, _) = send(&app, Method::DELETE, &t.key, "/api/v1/webhook", None).await;
    assert_eq!(s, 404);
    let (s, _) = send(
        &app,
        Method::POST,
        &t.key,
        "/api/v1/webhook/rotate-secret",
        None,
    )
    .await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn the_operator_keeps_a_tenants_webhook_from_the_cli() {
    use crate::cli::{dialer, stderr, stdout};
    let db = crate::helpers::TestDb::create().await;
    assert!(dialer(Some(&db), &["migrate"]).status.success());
    let created = dialer(Some(&db), &["tenant", "create", "Acme", "--json"]);
    assert!(created.status.success(), "{}", stderr(&created));
    let tenant: Value = serde_json::from_slice(&created.stdout).unwrap();
    let id = tenant["tenant"]["id"].as_str().unwrap();

    let bad = dialer(
        Some(&db),
        &[
            "tenant",
            "webhook",
            "set",
            "--tenant",
            id,
            "--url",
            "https://crm.example.com/",
            "--events",
            "call.finished,call.started",
        ],
    );
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("--events"), "{}", stderr(&bad));

    let set = dialer(
        Some(&db),
        &[
            "tenant",
            "webhook",
            "set",
            "--tenant",
            id,
            "--url",
            "https://crm.example.com/hooks",
            "--events",
            "lead.final,call.finished",
            "--json",
        ],
    );
    assert!(set.status.success(), "{}", stderr(&set));
    let v: Value = serde_json::from_slice(&set.stdout).unwrap();
    assert!(v["secret"].as_str().unwrap().starts_with("whsec_"), "{v}");
    assert_eq!(v["events"], json!(["lead.final", "call.finished"]));

    let show = dialer(Some(&db), &["tenant", "webhook", "show", "--tenant", id]);
    assert!(show.status.success(), "{}", stderr(&show));
    let text = stdout(&show);
    assert!(text.contains("https://crm.example.com/hooks"), "{text}");
    assert!(!text.contains(v["secret"].as_str().unwrap()), "{text}");

    assert!(
        dialer(Some(&db), &["tenant", "webhook", "remove", "--tenant", id])
            .status
            .success()
    );
    let gone = dialer(Some(&db), &["tenant", "webhook", "show", "--tenant", id]);
    assert!(!gone.status.success());
    assert!(
        stderr(&gone).contains("no CRM webhook"),
        "{}",
        stderr(&gone)
    );
}
