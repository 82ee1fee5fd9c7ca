//! Lead import through the API, as a campaign manager uses it.

use crate::helpers::spawn_app;

async fn leads_of(
    app: &crate::helpers::TestApp,
    campaign: &dialer::campaign::Campaign,
) -> Vec<(String, Vec<String>, i16, serde_json::Value)> {
    sqlx::query_as("SELECT phone_e164, time_zones, priority, custom FROM leads WHERE campaign_id = $1 ORDER BY phone_e164")
        .bind(campaign.id)
        .fetch_all(&app.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn sample_leads_import_cleanly_and_a_second_import_accepts_nothing_new() {
    let app = spawn_app().await;
    let t = app.tenant("Acme").await;
    let csv = std::fs::read("sample_leads.csv").unwrap();
    let rows = csv.iter().filter(|b| **b == b'\n').count() as u64 - 1;
    let report = app.import(&t, &csv, &[]).await;
    assert_eq!(report["status"], "completed", "{report}");
    assert_eq!(report["rows"], rows);
    assert_eq!(report["accepted"], rows, "{report}");
    assert_eq!(report["rejected"], 0);
    let stored = leads_of(&app, &t.campaign).await;
    assert_eq!(stored.len() as u64, rows);
    assert!(
        stored.iter().all(|(_, zones, _, _)| !zones.is_empty()),
        "every sample lead has a time zone"
    );

    let again = app.import(&t, &csv, &[]).await;
    assert_eq!(again["accepted"], 0);
    assert_eq!(again["rejected_by_reason"]["duplicate_in_campaign"], rows);
    assert_eq!(
        leads_of(&app, &t.campaign).await,
        stored,
        "no accepted lead is lost or changed"
    );
}

#[tokio::test]
async fn every_rejected_row_is_counted_with_its_row_column_and_reason() {
    let app = spawn_app().await;
    let t = app.tenant("Acme").await;
    let other = app.tenant("Other").await;
    // On the tenant's list, on the global list, and on another tenant's list only.
    let mut conn = app.db.acquire().await.unwrap();
    dialer::dnc::repo::add_many(
        &mut conn,
        Some(t.id),
        &["+12125550100".into()],
        "manual",
        None,
    )
    .await
    .unwrap();
    dialer::dnc::repo::add_many(&mut conn, None, &["+12125550101".into()], "manual", None)
        .await
        .unwrap();
    dialer::dnc::repo::add_many(
        &mut conn,
        Some(other.id),
        &["+12125550102".into()],
        "manual",
        None,
    )
    .await
    .unwrap();
    // A BOM, semicolons, forgiving headers, a custom column.
    let csv = "\u{feff}First Name;Surname;Phone Number;Country;Priority;DNC;Account\n\
        Ann;Lee;(212) 555-0147;US;high;no;A-1\n\
        Bo;Ek;212-555;US;;;A-2\n\
        Cy;Ng;(212) 555-0147;;;;A-3\n\
        Di;Oz;+1 212 555 0148;;asap;;A-4\n\
        Ed;Po;(212) 555-0149;ZZ;;;A-5\n\
        Fa;Qi;(212) 555-0150;;;yes;A-6\n\
        Gu;Ra;212.555.0150;;;;A-7\n\
        Ha;Su;(212) 555-0100;;;;A-8\n\
        Io;Tu;(212) 555-0101;;;;A-9\n\
        Jo;Uv;(212) 555-0102;;;;A-10\n\
        Ka;Vw;;;;;A-11\n\
        Li;Wx;020 7946 0958;GB;urgent;;A-12\n\
        Mo;Xy;=HYPERLINK(\"http://x\");;;;A-13\n";
    let report = app.import(&t, csv.as_bytes(), &[]).await;
    assert_eq!(report["status"], "completed", "{report}");
    assert_eq!(report["rows"], 13);
    assert_eq!(report["accepted"], 3, "{report}");
    assert_eq!(report["rejected"], 10);
    let by = &report["rejected_by_reason"];
    assert_eq!(by["invalid_phone"], 2);
    assert_eq!(by["duplicate_in_file"], 1);
    assert_eq!(by["invalid_priority"], 1);
    assert_eq!(by["unknown_country"], 1);
    assert_eq!(by["do_not_call_flag"], 1);
    assert_eq!(
        by["dnc_tenant"], 2,
        "the flagged number's second row, and the listed one"
    );
    assert_eq!(by["dnc_global"], 1);
    assert_eq!(by["empty_required_field"], 1);
    let sum: u64 = by
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(sum, 10, "the counts add up to the rows");

    let errors = report["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 10);
    for e in errors {
        assert!(
            e["row"].as_u64().unwrap() >= 2 && !e["reason"].as_str().unwrap().is_empty(),
            "{e}"
        );
    }
    let row = |n: u64| errors.iter().find(|e| e["row"] == n).unwrap();
    assert_eq!(row(3)["column"], "Phone Number");
    assert_eq!(row(3)["value"], "212-555");
    assert_eq!(row(3)["reason"], "not a valid number for US");
    assert_eq!(row(4)["reason"], "+12125550147 is also on row 2");
    assert_eq!(row(4)["column"], "Phone Number");
    assert_eq!(row(5)["value"], "asap");
    assert_eq!(row(6)["column"], "Country");

    let stored = leads_of(&app, &t.campaign).await;
    let phones: Vec<&str> = stored.iter().map(|l| l.0.as_str()).collect();
    // The other tenant's DNC entry does not affect this tenant.
    assert_eq!(phones, ["+12125550102", "+12125550147", "+442079460958"]);
    assert_eq!(stored[1].2, 3, "priority high");
    assert_eq!(stored[1].3, serde_json::json!({ "Account": "A-1" }));
    // A London fixed line is located by its prefix.
    assert_eq!(stored[2].1, ["Europe/London"]);
    // The flagged number is now on the tenant's DNC list.
    let listed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM dnc_numbers WHERE tenant_id = $1 AND phone_e164 = '+12125550150'",
    )
    .bind(t.id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(listed, 1);

    // The same rejected rows as CSV for download, with cells a spreadsheet would run made safe.
    let r = app
        .get_as(
            &t.key,
            &format!(
                "/api/v1/imports/{}/errors.csv",
                report["import_id"].as_str().unwrap()
            ),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let text = r.text().await.unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    assert_eq!(
        reader.headers().unwrap(),
        vec!["row", "column", "value", "code", "reason"]
    );
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), 10);
    assert!(
        records.iter().any(|r| r[2].starts_with("'=HYPERLINK")),
        "{text}"
    );
    assert!(records.iter().all(|r| !r[2].starts_with('=')), "{text}");
}

#[tokio::test]
async fn explicit_mapping_and_default_region_are_honoured() {
    let app = spawn_app().await;
    let t = app.tenant("Acme").await;
    let csv = "Name,Work Tel,Home\nAnn,020 7946 0958,(212) 555-0147\n";
    let report = app
        .import(
            &t,
            csv.as_bytes(),
            &[("map", "Work Tel=phone"), ("default_region", "GB")],
        )
        .await;
    assert_eq!(report["accepted"], 1, "{report}");
    let stored = leads_of(&app, &t.campaign).await;
    assert_eq!(stored[0].0, "+442079460958");
    // Unmapped columns (a full "Name" too) are kept as custom fields.
    assert_eq!(
        stored[0].3,
        serde_json::json!({ "Home": "(212) 555-0147", "Name": "Ann" })
    );
}

#[tokio::test]
async fn a_file_that_is_not_csv_is_refused_at_once_and_changes_nothing() {
    let app = spawn_app().await;
    let t = app.tenant("Acme").await;
    let cases: [(&[u8], &str); 4] = [
        (b"PK\x03\x04\x14\x00\x06\x00binary", "ZIP archive"),
        (b"\xFF\xFEp\x00h\x00o\x00n\x00e\x00", "UTF-16"),
        (b"name,email\nAnn,ann@example.com\n", "no phone column"),
        (b"phone,name\n2125550147,Jos\xE9\n", "not UTF-8"),
    ];
    for (body, expected) in cases {
        let r = app
            .upload(
                &t.key,
                &t.campaign.id.to_string(),
                "x.csv",
                body.to_vec(),
                &[],
            )
            .await;
        assert_eq!(r.status(), 422);
        let err: serde_json::Value = r.json().await.unwrap();
        assert_eq!(err["error"]["code"], "invalid_file");
        assert!(
            err["error"]["message"].as_str().unwrap().contains(expected),
            "{err}"
        );
    }
    let jobs: i64 = sqlx::query_scalar("SELECT count(*) FROM import_jobs")
        .fetch_one(&app.db)
        .await
        .unwrap();
    let leads: i64 = sqlx::query_scalar("SELECT count(*) FROM leads")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!((jobs, leads), (0, 0));
}

#[tokio::test]
async fn tenants_cannot_see_or_touch_each_others_imports() {
    let app = spawn_app().await;
    let a = app.tenant("A").await;
    let b = app.tenant("B").await;
    let report = app.import(&a, b"phone\n(212) 555-0147\n", &[]).await;
    let id = report["import_id"].as_str().unwrap();
    for path in [
        format!("/api/v1/imports/{id}"),
        format!("/api/v1/imports/{id}/errors.csv"),
    ] {
        let r = app.get_as(&b.key, &path).await;
        assert_eq!(r.status(), 404, "{path}");
        assert!(!r.text().await.unwrap().contains("555"));
    }
    let r = app
        .upload(
            &b.key,
            &a.campaign.id.to_string(),
            "x.csv",
            b"phone\n(212) 555-0148\n".to_vec(),
            &[],
        )
        .await;
    assert_eq!(r.status(), 404);
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM leads")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(n, 1);
}

#[tokio::test]
async fn the_api_needs_a_valid_key() {
    let app = spawn_app().await;
    let t = app.tenant("A").await;
    let r = app
        .upload(
            "dlr_not-a-key",
            &t.campaign.id.to_string(),
            "x.csv",
            b"phone\n1\n".to_vec(),
            &[],
        )
        .await;
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    let r = app.get("/api/v1/dnc").await;
    assert_eq!(r.status(), 401);
    let err: serde_json::Value = r.json().await.unwrap();
    assert_eq!(err["error"]["code"], "unauthorized");
    // The template needs no key.
    let r = app.get("/api/v1/leads/template.csv").await;
    assert_eq!(r.status(), 200);
    assert!(
        r.text()
            .await
            .unwrap()
            .starts_with("first_name,last_name,phone,country,type,priority,do_not_call,notes\n")
    );
}

#[tokio::test]
async fn dnc_numbers_are_normalised_added_checked_and_removed_per_tenant() {
    let app = spawn_app().await;
    let a = app.tenant("A").await;
    let b = app.tenant("B").await;
    let post = |key: String, body: serde_json::Value| {
        let app = &app;
        async move {
            app.client
                .post(format!("{}/api/v1/dnc", app.address))
                .bearer_auth(key)
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    let r = post(
        a.key.clone(),
        serde_json::json!({ "phone": "(212) 555-0147" }),
    )
    .await;
    assert_eq!(r.status(), 201);
    assert_eq!(
        post(
            a.key.clone(),
            serde_json::json!({ "phone": "+1 212 555 0147" })
        )
        .await
        .status(),
        200
    );
    let r = post(a.key.clone(), serde_json::json!({ "phone": "12" })).await;
    assert_eq!(r.status(), 422);
    let err: serde_json::Value = r.json().await.unwrap();
    assert_eq!(err["error"]["field"], "phone");

    let check = |key: String| {
        let app = &app;
        async move {
            app.get_as(&key, "/api/v1/dnc/%2B12125550147")
                .await
                .json::<serde_json::Value>()
                .await
                .unwrap()
        }
    };
    assert_eq!(check(a.key.clone()).await["dialable"], false);
    assert_eq!(
        check(b.key.clone()).await["dialable"],
        true,
        "another tenant's list does not apply"
    );

    // A number added after import blocks a later import of it.
    let report = app.import(&a, b"phone\n212-555-0147\n", &[]).await;
    assert_eq!(report["rejected_by_reason"]["dnc_tenant"], 1);

    let r = app
        .client
        .delete(format!("{}/api/v1/dnc/2125550147?region=US", app.address))
        .bearer_auth(&a.key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(check(a.key.clone()).await["dialable"], true);
}

#[tokio::test]
async fn simultaneous_imports_into_one_campaign_never_accept_a_number_twice() {
    let app = spawn_app().await;
    let t = app.tenant("Acme").await;
    // Two files sharing 300 of their 500 numbers each.
    let file = |from: u32| {
        let mut csv = String::from("phone\n");
        for n in from..from + 500 {
            csv.push_str(&format!("+1 212 555 {:04}\n", n));
        }
        csv.into_bytes()
    };
    let (first, second) = (file(1000), file(1200));
    let (a, b) = tokio::join!(app.import(&t, &first, &[]), app.import(&t, &second, &[]));
    assert_eq!(
        (a["status"].as_str(), b["status"].as_str()),
        (Some("completed"), Some("completed"))
    );
    let accepted = a["accepted"].as_u64().unwrap() + b["accepted"].as_u64().unwrap();
    assert_eq!(accepted, 700, "{a}\n{b}");
    let dup = a["rejected_by_reason"]["duplicate_in_campaign"]
        .as_u64()
        .unwrap_or(0)
        + b["rejected_by_reason"]["duplicate_in_campaign"]
            .as_u64()
            .unwrap_or(0);
    assert_eq!(dup, 300);
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM leads")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(stored, 700);
}
