//! Tenant isolation and role limits across the API: another tenant's ids answer 404 on
//! every endpoint that takes one (and change nothing), list filters naming them find
//! nothing, and each role reaches only what it may.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Tenant, TestApp, spawn_app};

/// Tenant A's things, one of each kind an endpoint can name.
struct Owned {
    campaign: String,
    import: String,
    lead: i64,
    call: i64,
    agent: String,
    group: String,
    key: String,
    dnc: &'static str,
}

async fn populate(app: &TestApp, a: &Tenant) -> Owned {
    let report = app.import(a, b"phone\n+12015550123\n", &[]).await;
    let import = report["import_id"].as_str().unwrap().to_string();
    let lead: i64 = sqlx::query_scalar("SELECT id FROM leads WHERE tenant_id = $1")
        .bind(a.id)
        .fetch_one(&app.db)
        .await
        .unwrap();
    let (s, agent) = app
        .send(
            Method::POST,
            &a.key,
            "/api/v1/agents",
            Some(json!({"name": "Ann of A", "endpoint": "+12015550999"})),
        )
        .await;
    assert_eq!(s, 201, "{agent}");
    let agent = agent["id"].as_str().unwrap().to_string();
    let (s, group) = app
        .send(
            Method::POST,
            &a.key,
            "/api/v1/agent-groups",
            Some(json!({"name": "A team"})),
        )
        .await;
    assert_eq!(s, 201, "{group}");
    let group = group["id"].as_str().unwrap().to_string();
    let (s, _) = app
        .send(
            Method::PUT,
            &a.key,
            &format!("/api/v1/agent-groups/{group}/members/{agent}"),
            None,
        )
        .await;
    assert!(s < 300, "{s}");
    // An attempt that a person answered and the agent took, as the call flow leaves it.
    let call: i64 = sqlx::query_scalar(
        "INSERT INTO calls (tenant_id, campaign_id, lead_id, attempt, state, disposition, agent_id, \
                            to_number, from_number, answered_at, bridged_at, ended_at, duration_secs)
         VALUES ($1, $2, $3, 1, 'completed', 'answered', $4::uuid, '+12015550123', '+12015550100',
                 now(), now(), now(), 30) RETURNING id",
    )
    .bind(a.id)
    .bind(a.campaign.id)
    .bind(lead)
    .bind(&agent)
    .fetch_one(&app.db)
    .await
    .unwrap();
    sqlx::query(
        "UPDATE leads SET attempts = 1, status = 'done', final_reason = 'answered' WHERE id = $1",
    )
    .bind(lead)
    .execute(&app.db)
    .await
    .unwrap();
    let (s, _) = app
        .send(
            Method::POST,
            &a.key,
            "/api/v1/dnc",
            Some(json!({"phone": "+12015550177", "reason": "secret reason of A"})),
        )
        .await;
    assert_eq!(s, 201);
    let key: String = sqlx::query_scalar("SELECT id::text FROM api_keys WHERE tenant_id = $1")
        .bind(a.id)
        .fetch_one(&app.db)
        .await
        .unwrap();
    Owned {
        campaign: a.campaign.id.to_string(),
        import,
        lead,
        call,
        agent,
        group,
        key,
        dnc: "+12015550177",
    }
}

/// Every endpoint that names a thing by id, with a body it would accept.
fn by_id(o: &Owned) -> Vec<(Method, String, Option<Value>)> {
    let c = &o.campaign;
    let l = o.lead;
    let k = o.call;
    let a = &o.agent;
    let g = &o.group;
    vec![
        (Method::GET, format!("/api/v1/campaigns/{c}"), None),
        (
            Method::PATCH,
            format!("/api/v1/campaigns/{c}"),
            Some(json!({"name": "taken"})),
        ),
        (Method::DELETE, format!("/api/v1/campaigns/{c}"), None),
        (Method::POST, format!("/api/v1/campaigns/{c}/start"), None),
        (Method::POST, format!("/api/v1/campaigns/{c}/pause"), None),
        (Method::POST, format!("/api/v1/campaigns/{c}/resume"), None),
        (Method::POST, format!("/api/v1/campaigns/{c}/stop"), None),
        (Method::GET, format!("/api/v1/campaigns/{c}/progress"), None),
        (Method::GET, format!("/api/v1/campaigns/{c}/report"), None),
        (Method::GET, format!("/api/v1/imports/{}", o.import), None),
        (
            Method::GET,
            format!("/api/v1/imports/{}/errors.csv", o.import),
            None,
        ),
        (Method::GET, format!("/api/v1/leads/{l}"), None),
        (
            Method::PATCH,
            format!("/api/v1/leads/{l}"),
            Some(json!({"notes": "taken"})),
        ),
        (Method::DELETE, format!("/api/v1/leads/{l}"), None),
        (Method::POST, format!("/api/v1/leads/{l}/requeue"), None),
        (Method::GET, format!("/api/v1/calls/{k}"), None),
        (
            Method::POST,
            format!("/api/v1/calls/{k}/disposition"),
            Some(json!({"disposition": "sale"})),
        ),
        (Method::GET, format!("/api/v1/agents/{a}"), None),
        (
            Method::PATCH,
            format!("/api/v1/agents/{a}"),
            Some(json!({"name": "taken"})),
        ),
        (
            Method::PUT,
            format!("/api/v1/agents/{a}/status"),
            Some(json!({"status": "available"})),
        ),
        (Method::POST, format!("/api/v1/agents/{a}/keys"), None),
        (Method::GET, format!("/api/v1/agents/{a}/report"), None),
        (Method::GET, format!("/api/v1/agent-groups/{g}"), None),
        (
            Method::PATCH,
            format!("/api/v1/agent-groups/{g}"),
            Some(json!({"name": "taken"})),
        ),
        (Method::DELETE, format!("/api/v1/agent-groups/{g}"), None),
        (
            Method::PUT,
            format!("/api/v1/agent-groups/{g}/members/{a}"),
            None,
        ),
        (
            Method::DELETE,
            format!("/api/v1/agent-groups/{g}/members/{a}"),
            None,
        ),
        (Method::DELETE, format!("/api/v1/keys/{}", o.key), None),
        (Method::DELETE, format!("/api/v1/dnc/{}", o.dnc), None),
    ]
}

/// What tenant A has that another tenant's requests could change.
async fn snapshot(app: &TestApp, a: &Tenant) -> Vec<Value> {
    sqlx::query_scalar("SELECT to_jsonb(x) FROM (SELECT name, status, updated_at::text FROM campaigns WHERE tenant_id = $1) x
         UNION ALL SELECT to_jsonb(x) FROM (SELECT status, final_reason, notes FROM leads WHERE tenant_id = $1) x
         UNION ALL SELECT to_jsonb(x) FROM (SELECT name, status FROM agents WHERE tenant_id = $1) x
         UNION ALL SELECT to_jsonb(x) FROM (SELECT name FROM agent_groups WHERE tenant_id = $1) x
         UNION ALL SELECT to_jsonb(x) FROM (SELECT count(*) FROM agent_group_members WHERE tenant_id = $1) x
         UNION ALL SELECT to_jsonb(x) FROM (SELECT revoked_at FROM api_keys WHERE tenant_id = $1) x
         UNION ALL SELECT to_jsonb(x) FROM (SELECT agent_disposition FROM calls WHERE tenant_id = $1) x
         UNION ALL SELECT to_jsonb(x) FROM (SELECT phone_e164 FROM dnc_numbers WHERE tenant_id = $1) x")
    .bind(a.id)
    .fetch_all(&app.db)
    .await
    .unwrap()
}

#[tokio::test]
async fn another_tenants_ids_answer_404_everywhere_and_change_nothing() {
    let app = spawn_app().await;
    let a = app.tenant("Tenant A").await;
    let owned = populate(&app, &a).await;
    let b = app.tenant("Tenant B").await;
    let before = snapshot(&app, &a).await;

    for (method, path, body) in by_id(&owned) {
        let (s, v) = app.send(method.clone(), &b.key, &path, body).await;
        assert_eq!(s, 404, "{method} {path} as tenant B: {v}");
        for secret in [
            "Ann of A",
            "A team",
            "Spring",
            "+12015550123",
            "secret reason of A",
        ] {
            assert!(
                !v.to_string().contains(secret),
                "{method} {path} leaks {secret}: {v}"
            );
        }
        // The owner still reaches it (a 404 because of a typo in the path would prove nothing).
        if method == Method::GET {
            let r = app.get_as(&a.key, &path).await;
            assert_eq!(r.status(), 200, "{path} as tenant A");
        }
    }
    // A's upload target is not B's either.
    let r = app
        .upload(
            &b.key,
            &owned.campaign,
            "x.csv",
            b"phone\n+12015550124\n".to_vec(),
            &[],
        )
        .await;
    assert_eq!(r.status(), 404);

    // Lists filtered by A's ids find nothing of A's.
    for path in [
        format!("/api/v1/leads?campaign={}", owned.campaign),
        format!("/api/v1/calls?campaign={}", owned.campaign),
        format!("/api/v1/calls?agent={}", owned.agent),
        "/api/v1/agents".to_string(),
        "/api/v1/agent-groups".to_string(),
        "/api/v1/campaigns".to_string(),
        "/api/v1/keys".to_string(),
        "/api/v1/dnc".to_string(),
        format!("/api/v1/dnc/{}", owned.dnc),
    ] {
        let (s, v) = app.send(Method::GET, &b.key, &path, None).await;
        assert_eq!(s, 200, "{path}: {v}");
        for secret in [
            "Ann of A",
            "A team",
            "+12015550123",
            "secret reason of A",
            &owned.campaign,
        ] {
            if path.contains(secret) {
                continue;
            }
            assert!(
                !v.to_string().contains(secret),
                "{path} leaks {secret}: {v}"
            );
        }
    }
    let export = app
        .get_as(
            &b.key,
            &format!(
                "/api/v1/calls/export?format=csv&campaign={}",
                owned.campaign
            ),
        )
        .await;
    assert_eq!(export.status(), 200);
    assert_eq!(
        export.text().await.unwrap().lines().count(),
        1,
        "header only"
    );

    let after = snapshot(&app, &a).await;
    assert_eq!(before, after, "tenant B changed tenant A's data");
}

#[tokio::test]
async fn each_role_reaches_only_what_it_may() {
    let app = spawn_app().await;
    let a = app.tenant("Tenant A").await;
    let owned = populate(&app, &a).await;
    // A second agent whose key must not see the first agent's call.
    let (_, other) = app
        .send(
            Method::POST,
            &a.key,
            "/api/v1/agents",
            Some(json!({"name": "Bob", "endpoint": "+12015550998"})),
        )
        .await;
    let other = other["id"].as_str().unwrap().to_string();
    let (s, bob) = app
        .send(
            Method::POST,
            &a.key,
            &format!("/api/v1/agents/{other}/keys"),
            None,
        )
        .await;
    assert_eq!(s, 201, "{bob}");
    let bob = bob["key"].as_str().unwrap().to_string();
    let (_, ann) = app
        .send(
            Method::POST,
            &a.key,
            &format!("/api/v1/agents/{}/keys", owned.agent),
            None,
        )
        .await;
    let ann = ann["key"].as_str().unwrap().to_string();
    let (_, manager) = app
        .send(
            Method::POST,
            &a.key,
            "/api/v1/keys",
            Some(json!({"name": "desk", "role": "manager"})),
        )
        .await;
    let manager = manager["key"].as_str().unwrap().to_string();

    // An agent key: no campaigns, leads, exports, reports, other agents' calls or keys.
    for (method, path, body) in [
        (
            Method::POST,
            "/api/v1/campaigns".to_string(),
            Some(json!({"name": "x"})),
        ),
        (Method::GET, "/api/v1/campaigns".to_string(), None),
        (
            Method::GET,
            format!("/api/v1/campaigns/{}", owned.campaign),
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/campaigns/{}/start", owned.campaign),
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/campaigns/{}/report", owned.campaign),
            None,
        ),
        (
            Method::GET,
            "/api/v1/calls/export?format=csv".to_string(),
            None,
        ),
        (Method::GET, "/api/v1/leads".to_string(), None),
        (Method::GET, format!("/api/v1/leads/{}", owned.lead), None),
        (Method::GET, "/api/v1/keys".to_string(), None),
        (Method::GET, "/api/v1/dnc".to_string(), None),
        (
            Method::POST,
            "/api/v1/agents".to_string(),
            Some(json!({"name": "x", "endpoint": "+12015550997"})),
        ),
        (
            Method::PUT,
            format!("/api/v1/agents/{}/status", owned.agent),
            Some(json!({"status": "break"})),
        ),
    ] {
        let (s, v) = app.send(method.clone(), &bob, &path, body).await;
        assert_eq!(s, 403, "{method} {path} as an agent: {v}");
    }
    let call = format!("/api/v1/calls/{}", owned.call);
    let (s, _) = app.send(Method::GET, &bob, &call, None).await;
    assert_eq!(s, 404, "another agent's call");
    let (s, v) = app
        .send(
            Method::POST,
            &bob,
            &format!("{call}/disposition"),
            Some(json!({"disposition": "sale"})),
        )
        .await;
    assert_eq!(s, 404, "another agent's wrap-up: {v}");
    let (_, list) = app.send(Method::GET, &bob, "/api/v1/calls", None).await;
    assert_eq!(list["calls"], json!([]), "{list}");
    // … while the agent who took the call sees it.
    let (s, v) = app.send(Method::GET, &ann, &call, None).await;
    assert_eq!(s, 200, "{v}");
    let (s, me) = app.send(Method::GET, &ann, "/api/v1/agents/me", None).await;
    assert_eq!((s, me["id"].clone()), (200, json!(owned.agent)));

    // A manager sees the lead with its call history.
    let (s, lead) = app
        .send(
            Method::GET,
            &manager,
            &format!("/api/v1/leads/{}", owned.lead),
            None,
        )
        .await;
    assert_eq!(s, 200, "{lead}");
    assert_eq!(lead["attempts"], 1, "{lead}");
    assert_eq!(lead["calls"][0]["call_id"], owned.call, "{lead}");
    assert_eq!(lead["calls"][0]["agent_id"], json!(owned.agent), "{lead}");

    // A manager runs campaigns but does not manage keys.
    let (s, _) = app
        .send(
            Method::POST,
            &manager,
            "/api/v1/campaigns",
            Some(json!({"name": "x"})),
        )
        .await;
    assert_eq!(s, 201);
    let (s, _) = app.send(Method::GET, &manager, "/api/v1/keys", None).await;
    assert_eq!(s, 403);

    // No key, a bad key: 401 with the error shape.
    let r = app
        .client
        .get(format!("{}/api/v1/campaigns", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "unauthorized");
    let (s, _) = app
        .send(Method::GET, "dlr_not-a-key", "/api/v1/campaigns", None)
        .await;
    assert_eq!(s, 401);
}
