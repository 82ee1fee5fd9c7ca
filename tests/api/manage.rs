//! Campaigns, leads and API keys through the API (and keys through the CLI): settings
//! checked field by field, drafts deleted but started campaigns kept, leads paged,
//! changed, removed and queued again, keys created and revoked by admins only.

use reqwest::Method;
use serde_json::{Value, json};

use crate::cli::{dialer, stderr, stdout};
use crate::helpers::{TestApp, TestDb, spawn_app};

async fn manager_key(app: &TestApp, admin: &str) -> String {
    let (s, v) = app
        .send(
            Method::POST,
            admin,
            "/api/v1/keys",
            Some(json!({"name": "campaign desk", "role": "manager"})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    assert!(v["key"].as_str().unwrap().starts_with("dlr_"));
    v["key"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn campaigns_are_created_checked_changed_and_deleted_only_as_drafts() {
    let app = spawn_app().await;
    let t = app.tenant("Acme").await;
    let key = manager_key(&app, &t.key).await;

    // Defaults for what is left out; the settings come back in the shape they are sent.
    let (s, c) = app
        .send(
            Method::POST,
            &key,
            "/api/v1/campaigns",
            Some(json!({
                "name": "Renewals",
                "time_zone": "America/New_York",
                "window": "10:00-18:00",
                "days": "mon,wed,fri",
                "retry_busy_secs": 600,
                "legal_window_overrides": {"us-fl": ["08:00", "20:00"]},
                "disposition_codes": ["Renewed"]
            })),
        )
        .await;
    assert_eq!(s, 201, "{c}");
    assert_eq!(c["status"], "draft");
    assert_eq!(c["window"], "10:00-18:00");
    assert_eq!(c["days"], "mon,wed,fri");
    assert_eq!(c["dial_timeout_secs"], 30);
    assert_eq!(c["retry_busy_secs"], 600);
    assert_eq!(c["retry_voicemail_secs"], Value::Null);
    assert_eq!(
        c["legal_window_overrides"]["US-FL"],
        json!(["08:00", "20:00"])
    );
    assert_eq!(c["disposition_codes"], json!(["renewed"]));
    let id = c["id"].as_str().unwrap().to_string();

    // Each bad setting is refused naming the field, and nothing is stored.
    for (body, field) in [
        (
            json!({"name": "x", "dial_timeout_secs": 10}),
            "dial_timeout_secs",
        ),
        (json!({"name": "x", "window": "9am-5pm"}), "window"),
        (json!({"name": "x", "caller_id": "12"}), "caller_id"),
        (
            json!({"name": "x", "max_concurrent": "ten"}),
            "max_concurrent",
        ),
        (json!({"name": "x", "colour": "red"}), "colour"),
        (json!({"window": "09:00-17:00"}), "name"),
        (
            json!({"name": "x", "agent_group_id": "018f0000-0000-7000-8000-000000000000"}),
            "agent_group_id",
        ),
        (
            json!({"name": "x", "abandon_cap_pct": 101}),
            "abandon_cap_pct",
        ),
    ] {
        let (s, v) = app
            .send(Method::POST, &key, "/api/v1/campaigns", Some(body.clone()))
            .await;
        assert_eq!(s, 422, "{body} → {v}");
        assert_eq!(v["error"]["field"], field, "{body} → {v}");
    }
    let (_, list) = app.send(Method::GET, &key, "/api/v1/campaigns", None).await;
    assert_eq!(list["campaigns"].as_array().unwrap().len(), 2, "{list}");

    // A change is checked with the settings it keeps: an end before the start is refused.
    let path = format!("/api/v1/campaigns/{id}");
    let (s, v) = app
        .send(
            Method::PATCH,
            &key,
            &path,
            Some(json!({"start_date": "2026-12-10", "end_date": "2026-12-01"})),
        )
        .await;
    assert_eq!(
        (s, v["error"]["field"].clone()),
        (422, json!("end_date")),
        "{v}"
    );
    let (s, v) = app
        .send(
            Method::PATCH,
            &key,
            &path,
            Some(json!({"caller_id": "+1 201 555 0100", "window": "09:00-17:00", "retry_busy_secs": null})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["caller_id"], "+12015550100");
    assert_eq!(v["window"], "09:00-17:00");
    assert_eq!(v["days"], "mon,wed,fri", "an absent field keeps its value");
    assert_eq!(v["retry_busy_secs"], Value::Null, "null clears");
    assert_eq!(
        v["legal_window_overrides"]["US-FL"],
        json!(["08:00", "20:00"])
    );
    let (_, shown) = app.send(Method::GET, &key, &path, None).await;
    assert_eq!(shown, v, "show answers what the change answered");

    // Started: its caller ID stays, and it can no longer be deleted (stop keeps history).
    let csv = b"phone\n+12015550123\n";
    let report = app
        .import(
            &crate::helpers::Tenant {
                id: t.id,
                key: key.clone(),
                campaign: dialer::campaign::repo::get(
                    &mut app.db.acquire().await.unwrap(),
                    None,
                    id.parse().unwrap(),
                )
                .await
                .unwrap()
                .unwrap(),
            },
            csv,
            &[],
        )
        .await;
    assert_eq!(report["accepted"], 1, "{report}");
    let (s, v) = app
        .send(Method::POST, &key, &format!("{path}/pause"), None)
        .await;
    assert_eq!(s, 422, "a draft cannot be paused: {v}");
    let (s, v) = app
        .send(Method::POST, &key, &format!("{path}/start"), None)
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = app
        .send(Method::PATCH, &key, &path, Some(json!({"caller_id": null})))
        .await;
    assert_eq!(
        (s, v["error"]["field"].clone()),
        (422, json!("caller_id")),
        "{v}"
    );
    let (s, v) = app.send(Method::DELETE, &key, &path, None).await;
    assert_eq!(
        (s, v["error"]["code"].clone()),
        (409, json!("campaign_not_draft")),
        "{v}"
    );
    let (_, active) = app
        .send(Method::GET, &key, "/api/v1/campaigns?status=active", None)
        .await;
    assert_eq!(active["campaigns"].as_array().unwrap().len(), 1, "{active}");
    let (s, v) = app
        .send(Method::GET, &key, "/api/v1/campaigns?status=running", None)
        .await;
    assert_eq!(
        (s, v["error"]["field"].clone()),
        (422, json!("status")),
        "{v}"
    );

    // A draft goes, with its leads.
    let draft = t.campaign.id.to_string();
    let (s, _) = app
        .send(
            Method::DELETE,
            &key,
            &format!("/api/v1/campaigns/{draft}"),
            None,
        )
        .await;
    assert_eq!(s, 204);
    let (s, _) = app
        .send(
            Method::GET,
            &key,
            &format!("/api/v1/campaigns/{draft}"),
            None,
        )
        .await;
    assert_eq!(s, 404);
}

/// Imports `n` leads into the tenant's campaign; their ids in import order.
async fn leads(app: &TestApp, t: &crate::helpers::Tenant, n: usize) -> Vec<i64> {
    let mut csv = String::from("phone,first_name,priority\n");
    for i in 0..n {
        csv.push_str(&format!("+1201555{:04},P{i},normal\n", 100 + i));
    }
    let report = app.import(t, csv.as_bytes(), &[]).await;
    assert_eq!(report["accepted"], n as u64, "{report}");
    sqlx::query_scalar("SELECT id FROM leads WHERE campaign_id = $1 ORDER BY id")
        .bind(t.campaign.id)
        .fetch_all(&app.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn leads_are_paged_changed_removed_and_queued_again() {
    let app = spawn_app().await;
    let t = app.tenant("Acme").await;
    let ids = leads(&app, &t, 5).await;

    // Pages of two, in import order, cover every lead once.
    let mut seen = vec![];
    let mut path = format!("/api/v1/leads?campaign={}&limit=2", t.campaign.id);
    loop {
        let (s, page) = app.send(Method::GET, &t.key, &path, None).await;
        assert_eq!(s, 200, "{page}");
        seen.extend(
            page["leads"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l["id"].as_i64().unwrap()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => {
                path = format!(
                    "/api/v1/leads?campaign={}&limit=2&cursor={c}",
                    t.campaign.id
                )
            }
            None => break,
        }
    }
    assert_eq!(seen, ids);
    let (_, one) = app
        .send(
            Method::GET,
            &t.key,
            "/api/v1/leads?phone=%2B1%20201%20555%200102",
            None,
        )
        .await;
    assert_eq!(one["leads"].as_array().unwrap().len(), 1, "{one}");
    assert_eq!(one["leads"][0]["first_name"], "P2");
    for (q, field) in [
        ("status=gone", "status"),
        ("limit=0", "limit"),
        ("sort=id", "sort"),
    ] {
        let (s, v) = app
            .send(Method::GET, &t.key, &format!("/api/v1/leads?{q}"), None)
            .await;
        assert_eq!(
            (s, v["error"]["field"].clone()),
            (422, json!(field)),
            "{q}: {v}"
        );
    }

    // Changed field by field; the number is not one of them.
    let lead = format!("/api/v1/leads/{}", ids[0]);
    let (s, v) = app
        .send(
            Method::PATCH,
            &t.key,
            &lead,
            Some(json!({"priority": "urgent", "notes": "VIP", "custom": {"account": "A-1"}, "first_name": null})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["priority"], "urgent");
    assert_eq!(v["first_name"], Value::Null);
    assert_eq!(v["custom"], json!({"account": "A-1"}));
    for body in [
        json!({"priority": "asap"}),
        json!({"phone": "+12015550999"}),
    ] {
        let (s, v) = app
            .send(Method::PATCH, &t.key, &lead, Some(body.clone()))
            .await;
        assert_eq!(s, 422, "{body} → {v}");
    }
    let (_, shown) = app.send(Method::GET, &t.key, &lead, None).await;
    assert_eq!(shown["notes"], "VIP");
    assert_eq!(shown["attempts"], 0);
    assert_eq!(shown["calls"], json!([]));

    // Removed: never dialled again, and still there to see.
    let (s, _) = app.send(Method::DELETE, &t.key, &lead, None).await;
    assert_eq!(s, 204);
    let (_, shown) = app.send(Method::GET, &t.key, &lead, None).await;
    assert_eq!(
        (shown["status"].clone(), shown["final_reason"].clone()),
        (json!("done"), json!("removed"))
    );

    // Queued again: due now.
    let (s, v) = app
        .send(Method::POST, &t.key, &format!("{lead}/requeue"), None)
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        (v["status"].clone(), v["final_reason"].clone()),
        (json!("ready"), Value::Null)
    );

    // Not while a call to it is live, and never a number on the do-not-call list.
    let second = format!("/api/v1/leads/{}", ids[1]);
    sqlx::query("UPDATE leads SET status = 'dialing' WHERE id = $1")
        .bind(ids[1])
        .execute(&app.db)
        .await
        .unwrap();
    for (method, path) in [
        (Method::DELETE, second.clone()),
        (Method::POST, format!("{second}/requeue")),
    ] {
        let (s, v) = app.send(method, &t.key, &path, None).await;
        assert_eq!(
            (s, v["error"]["code"].clone()),
            (409, json!("lead_dialing")),
            "{path}: {v}"
        );
    }
    let (s, _) = app
        .send(
            Method::POST,
            &t.key,
            "/api/v1/dnc",
            Some(json!({"phone": "+12015550102"})),
        )
        .await;
    assert_eq!(s, 201);
    let (s, v) = app
        .send(
            Method::POST,
            &t.key,
            &format!("/api/v1/leads/{}/requeue", ids[2]),
            None,
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].clone()),
        (409, json!("on_dnc")),
        "{v}"
    );

    // A campaign that had completed runs again for a lead queued again.
    sqlx::query("UPDATE campaigns SET status = 'completed' WHERE id = $1")
        .bind(t.campaign.id)
        .execute(&app.db)
        .await
        .unwrap();
    let (s, _) = app
        .send(
            Method::POST,
            &t.key,
            &format!("/api/v1/leads/{}/requeue", ids[3]),
            None,
        )
        .await;
    assert_eq!(s, 200);
    let (_, c) = app
        .send(
            Method::GET,
            &t.key,
            &format!("/api/v1/campaigns/{}", t.campaign.id),
            None,
        )
        .await;
    assert_eq!(c["status"], "active", "{c}");
}

#[tokio::test]
async fn admins_create_and_revoke_keys_and_keep_the_last_admin_key() {
    let app = spawn_app().await;
    let t = app.tenant("Acme").await;
    let manager = manager_key(&app, &t.key).await;

    // Only admins manage keys; managers run campaigns.
    for (method, path) in [
        (Method::GET, "/api/v1/keys"),
        (Method::POST, "/api/v1/keys"),
    ] {
        let body = json!({"name": "x", "role": "admin"});
        let (s, _) = app.send(method, &manager, path, Some(body)).await;
        assert_eq!(s, 403, "{path}");
    }
    let (s, _) = app
        .send(Method::GET, &manager, "/api/v1/campaigns", None)
        .await;
    assert_eq!(s, 200);

    for (body, field) in [
        (json!({"name": "x", "role": "agent"}), "agent_id"),
        (json!({"name": "x", "role": "owner"}), "role"),
        (json!({"name": " ", "role": "manager"}), "name"),
        (
            json!({"name": "x", "role": "manager", "agent_id": "018f0000-0000-7000-8000-000000000000"}),
            "agent_id",
        ),
    ] {
        let (s, v) = app
            .send(Method::POST, &t.key, "/api/v1/keys", Some(body.clone()))
            .await;
        assert_eq!(
            (s, v["error"]["field"].clone()),
            (422, json!(field)),
            "{body} → {v}"
        );
    }

    // Listed without secrets; a revoked key is refused at once.
    let (_, list) = app.send(Method::GET, &t.key, "/api/v1/keys", None).await;
    let keys = list["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2, "{list}");
    assert!(
        !list.to_string().contains(&manager),
        "a listing never shows a secret"
    );
    let manager_id = keys.iter().find(|k| k["role"] == "manager").unwrap()["id"].clone();
    let admin_id = keys.iter().find(|k| k["role"] == "admin").unwrap()["id"].clone();
    let (s, _) = app
        .send(
            Method::DELETE,
            &t.key,
            &format!("/api/v1/keys/{}", manager_id.as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(s, 204);
    let (s, v) = app
        .send(Method::GET, &manager, "/api/v1/campaigns", None)
        .await;
    assert_eq!(s, 401, "{v}");

    // The tenant's last admin key stays, so it can always manage its keys.
    let admin_path = format!("/api/v1/keys/{}", admin_id.as_str().unwrap());
    let (s, v) = app.send(Method::DELETE, &t.key, &admin_path, None).await;
    assert_eq!(
        (s, v["error"]["code"].clone()),
        (409, json!("last_admin_key")),
        "{v}"
    );

    // Another tenant's key ids name nothing here.
    let other = app.tenant("Other").await;
    let (s, _) = app
        .send(Method::DELETE, &other.key, &admin_path, None)
        .await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn tenant_keys_from_the_cli() {
    let db = TestDb::create().await;
    assert!(dialer(Some(&db), &["migrate"]).status.success());
    let created: Value =
        serde_json::from_slice(&dialer(Some(&db), &["tenant", "create", "T", "--json"]).stdout)
            .unwrap();
    let tenant = created["tenant"]["id"].as_str().unwrap();
    let admin = created["admin_key_id"].as_str().unwrap();

    let o = dialer(
        Some(&db),
        &[
            "tenant", "key", "create", "--tenant", tenant, "--name", "CRM sync", "--role",
            "manager", "--json",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let key: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(key["role"], "manager");
    assert!(key["key"].as_str().unwrap().starts_with("dlr_"));

    let o = dialer(Some(&db), &["tenant", "key", "list", "--tenant", tenant]);
    assert!(
        stdout(&o).contains("CRM sync") && stdout(&o).contains("never used"),
        "{}",
        stdout(&o)
    );

    let o = dialer(
        Some(&db),
        &[
            "tenant", "key", "create", "--tenant", tenant, "--name", "x", "--role", "agent",
        ],
    );
    assert!(!o.status.success());
    assert!(stderr(&o).contains("agent_id"), "{}", stderr(&o));

    let o = dialer(
        Some(&db),
        &["tenant", "key", "revoke", admin, "--tenant", tenant],
    );
    assert!(!o.status.success());
    assert!(stderr(&o).contains("last admin key"), "{}", stderr(&o));
    let o = dialer(
        Some(&db),
        &[
            "tenant",
            "key",
            "revoke",
            key["id"].as_str().unwrap(),
            "--tenant",
            tenant,
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("revoked"));
}
