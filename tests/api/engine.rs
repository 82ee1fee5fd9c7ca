//! The dialing engine against the carrier simulator: campaigns run to completion within
//! their limits and windows, across instances, crashes and a lost Redis. Every check is
//! made from outside the daemon, on the simulator's journal and the database.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use dialer::config::Settings;
use dialer::sim::{Entry, Event, Outcome, SimConfig, Simulator};

use crate::helpers::{TEST_ACCOUNT_SID, TEST_AUTH_TOKEN, Tenant, TestApp, spawn_app_with};

/// Wednesday 2 June 2027, 15:00 UTC: 11:00 in New York, 08:00 in Los Angeles.
pub(crate) fn midweek(hour_utc: u32, minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2027, 6, 2, hour_utc, minute, 0)
        .unwrap()
}

pub(crate) fn sim_config() -> SimConfig {
    let mut c = SimConfig {
        listen: "127.0.0.1:0".into(),
        account_sid: TEST_ACCOUNT_SID.into(),
        auth_token: TEST_AUTH_TOKEN.into(),
        speed: 40.0,
        cps: 500.0,
        seed: 11,
        ..SimConfig::default()
    };
    c.timing.talk_secs = [2.0, 6.0];
    // A machine records 0.5–1 s (real) after its beep: room for the voicemail redirect's
    // round trip on a loaded CI machine.
    c.timing.machine_record_secs = [20.0, 40.0];
    c
}

pub(crate) fn adjust_for(sim: &Simulator, cps: u32) -> impl FnOnce(&mut Settings) {
    adjust_for_url(sim.url(), cps)
}

/// `n` distinct valid numbers in area code `npa` (New York 212, Los Angeles 213 …).
pub(crate) fn numbers(npa: u32, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("+1{npa}555{:04}", 100 + i))
        .collect()
}

pub(crate) fn csv(numbers: &[String]) -> Vec<u8> {
    let mut s = String::from("first_name,phone\n");
    for (i, n) in numbers.iter().enumerate() {
        s.push_str(&format!("Lead{i},{n}\n"));
    }
    s.into_bytes()
}

/// Imports the leads, opens the campaign's own window all week, applies `sql_set`
/// (a SET list for the campaigns row) and starts the campaign through the API.
pub(crate) async fn start_campaign(app: &TestApp, t: &Tenant, leads: &[String], sql_set: &str) {
    let report = app.import(t, &csv(leads), &[]).await;
    assert_eq!(report["accepted"], leads.len(), "{report}");
    // Defaults for the test, unless `sql_set` sets the column itself.
    let defaults = [
        ("caller_id", "'+14155550100'"),
        ("window_start", "'00:00'"),
        ("window_end", "'23:59'"),
        ("days", "127"),
        ("voicemail_message", "'Please call us back'"),
        // These tests are about pacing without agents: every person answering is
        // abandoned, which the cap would stop at once (agents.rs tests the cap).
        ("abandon_cap_pct", "100"),
    ];
    let mut set: Vec<String> = defaults
        .iter()
        .filter(|(c, _)| !sql_set.contains(&format!(", {c} =")))
        .map(|(c, v)| format!("{c} = {v}"))
        .collect();
    set.push("updated_at = now()".into());
    let sql = format!(
        "UPDATE campaigns SET {} {sql_set} WHERE id = $1",
        set.join(", ")
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(t.campaign.id)
        .execute(&app.db)
        .await
        .unwrap();
    let r = app
        .client
        .post(format!(
            "{}/api/v1/campaigns/{}/start",
            app.address, t.campaign.id
        ))
        .bearer_auth(&t.key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}

pub(crate) async fn progress(app: &TestApp, t: &Tenant) -> serde_json::Value {
    app.get_as(
        &t.key,
        &format!("/api/v1/campaigns/{}/progress", t.campaign.id),
    )
    .await
    .json()
    .await
    .unwrap()
}

pub(crate) async fn wait_completed(
    app: &TestApp,
    t: &Tenant,
    within: Duration,
) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let p = progress(app, t).await;
        if p["status"] == "completed" {
            return p;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "campaign did not complete: {p}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub(crate) fn lead_dials(journal: &[Entry]) -> Vec<(DateTime<Utc>, f64, String, String)> {
    journal
        .iter()
        .filter_map(|e| match &e.event {
            Event::DialRequest {
                call_sid,
                to,
                agent: false,
                ..
            } => Some((e.at, e.t_ms, to.clone(), call_sid.clone())),
            _ => None,
        })
        .collect()
}

/// Most dial requests in any one-second window.
fn max_per_second(journal: &[Entry]) -> usize {
    let times: Vec<f64> = lead_dials(journal).iter().map(|d| d.1).collect();
    let mut best = 0;
    let mut lo = 0;
    for hi in 0..times.len() {
        while times[hi] - times[lo] >= 1000.0 {
            lo += 1;
        }
        best = best.max(hi - lo + 1);
    }
    best
}

/// Most lead calls alive at once (from the dial request to the call's end).
pub(crate) fn max_concurrent(journal: &[Entry]) -> usize {
    let mut live = std::collections::HashSet::new();
    let mut best = 0;
    for e in journal {
        match &e.event {
            Event::DialRequest {
                call_sid,
                agent: false,
                ..
            } => {
                live.insert(call_sid.clone());
                best = best.max(live.len());
            }
            Event::CallEnd { call_sid, .. } => {
                live.remove(call_sid);
            }
            _ => {}
        }
    }
    best
}

/// Per number: dial requests the carrier received, and attempts the database holds.
async fn dials_vs_attempts(
    app: &TestApp,
    journal: &[Entry],
) -> (HashMap<String, usize>, HashMap<String, i64>) {
    let mut dialed: HashMap<String, usize> = HashMap::new();
    for (_, _, to, _) in lead_dials(journal) {
        *dialed.entry(to).or_default() += 1;
    }
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT to_number, count(*) FROM calls GROUP BY 1")
            .fetch_all(&app.db)
            .await
            .unwrap();
    (dialed, rows.into_iter().collect())
}

async fn assert_every_lead_and_call_final(app: &TestApp) {
    let open: i64 = sqlx::query_scalar("SELECT count(*) FROM leads WHERE status <> 'done'")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(open, 0, "every lead is final");
    let calls: Vec<(i64, String, Option<String>)> = sqlx::query_as(
        "SELECT id, state, disposition FROM calls WHERE NOT is_final OR disposition IS NULL",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert!(
        calls.is_empty(),
        "every call is final with a disposition: {calls:?}"
    );
}

#[tokio::test]
async fn a_campaign_runs_to_completion_within_its_limits_and_policy() {
    let mut cfg = sim_config();
    let leads = numbers(212, 40);
    // Fixed outcomes for a few numbers, to check their dispositions.
    cfg.numbers.insert(leads[0].clone(), Outcome::Machine);
    cfg.numbers.insert(leads[1].clone(), Outcome::Human);
    cfg.numbers.insert(leads[2].clone(), Outcome::Busy);
    cfg.numbers.insert(leads[3].clone(), Outcome::NoAnswer);
    let sim = Simulator::start(cfg).await.unwrap();
    let app = spawn_app_with(adjust_for(&sim, 20)).await;
    app.engine.clock.set(midweek(15, 0));
    let t = app.tenant("Acme").await;
    start_campaign(
        &app,
        &t,
        &leads,
        ", max_concurrent = 5, max_attempts = 2, retry_busy_secs = 1, retry_no_answer_secs = 1, retry_failed_secs = 1, dial_timeout_secs = 15",
    )
    .await;
    let p = wait_completed(&app, &t, Duration::from_secs(90)).await;
    let journal = sim.journal();

    assert!(
        max_concurrent(&journal) <= 5,
        "concurrency {} > 5",
        max_concurrent(&journal)
    );
    assert!(
        max_per_second(&journal) <= 20,
        "{} dials in one second > 20",
        max_per_second(&journal)
    );
    let (dialed, attempts) = dials_vs_attempts(&app, &journal).await;
    assert_eq!(dialed.len(), 40, "every lead dialled");
    for (number, n) in &dialed {
        assert_eq!(
            *n as i64, attempts[number],
            "{number}: dials at the carrier = attempts recorded"
        );
        assert!(*n <= 2, "{number} dialled {n} times with max_attempts 2");
    }
    assert_every_lead_and_call_final(&app).await;

    let dispo = |n: &str| {
        let n = n.to_string();
        let db = app.db.clone();
        async move {
            sqlx::query_as::<_, (String, Option<String>, i32)>(
                "SELECT l.final_reason, k.disposition, l.attempts FROM leads l
                   JOIN calls k ON k.lead_id = l.id AND k.attempt = l.attempts WHERE l.phone_e164 = $1",
            )
            .bind(n)
            .fetch_one(&db)
            .await
            .unwrap()
        }
    };
    assert_eq!(
        dispo(&leads[0]).await,
        ("voicemail".into(), Some("voicemail".into()), 1),
        "no retry after voicemail by default"
    );
    assert_eq!(
        dispo(&leads[1]).await,
        ("abandoned".into(), Some("abandoned".into()), 1),
        "no agent yet: abandoned"
    );
    assert_eq!(
        dispo(&leads[2]).await,
        ("attempts_exhausted".into(), Some("busy".into()), 2),
        "busy retried once"
    );
    assert_eq!(
        dispo(&leads[3]).await,
        ("attempts_exhausted".into(), Some("no_answer".into()), 2)
    );
    // The voicemail drop played after the machine's beep.
    let machine_sid = lead_dials(&journal)
        .into_iter()
        .find(|d| d.2 == leads[0])
        .unwrap()
        .3;
    assert!(
        journal.iter().any(|e| matches!(&e.event, Event::Twiml { call_sid, url, .. } if *call_sid == machine_sid && url.ends_with("/voicemail"))),
        "the machine got the voicemail drop"
    );
    assert_eq!(p["leads"], 40);
}

/// Waits until `n` leads are done, then a little longer, and returns the numbers dialled.
async fn dialled_once_done(app: &TestApp, sim: &Simulator, n: i64) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let done: i64 = sqlx::query_scalar("SELECT count(*) FROM leads WHERE status = 'done'")
            .fetch_one(&app.db)
            .await
            .unwrap();
        assert!(done <= n, "{done} leads done, expected {n}");
        if done == n {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {done} of {n} leads done"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    lead_dials(&sim.journal())
        .into_iter()
        .map(|d| d.2)
        .collect()
}

async fn waiting_until(app: &TestApp, numbers: &[String]) -> Vec<(DateTime<Utc>, Option<String>)> {
    sqlx::query_as(
        "SELECT next_attempt_at, last_skip_reason FROM leads WHERE status = 'ready' AND phone_e164 = ANY($1)",
    )
    .bind(numbers)
    .fetch_all(&app.db)
    .await
    .unwrap()
}

#[tokio::test]
async fn no_dial_outside_the_campaign_window_or_any_of_the_leads_zones() {
    let sim = Simulator::start(sim_config()).await.unwrap();
    let app = spawn_app_with(adjust_for(&sim, 50)).await;
    let t = app.tenant("Acme").await;
    let ny = numbers(212, 3); // America/New_York
    let sd = numbers(605, 3); // South Dakota: America/Denver and America/North_Dakota/Center
    let la = numbers(213, 3); // America/Los_Angeles
    let all: Vec<String> = ny.iter().chain(&sd).chain(&la).cloned().collect();
    // 12:30 UTC in June: 08:30 in New York, before the campaign's 09:00 there.
    app.engine.clock.set(midweek(12, 30));
    start_campaign(
        &app,
        &t,
        &all,
        ", max_concurrent = 20, max_attempts = 1, time_zone = 'America/New_York', window_start = '09:00', window_end = '20:00'",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        lead_dials(&sim.journal()).is_empty(),
        "dialled outside the campaign window"
    );

    // 13:00 UTC: the campaign opens (09:00 New York). South Dakota is 08:00 Central but
    // 07:00 Mountain: its number waits for both; Los Angeles is at 06:00.
    app.engine.clock.set(midweek(13, 0));
    let dialled = dialled_once_done(&app, &sim, 3).await;
    assert!(
        dialled.iter().all(|n| ny.contains(n)),
        "only New York dialled: {dialled:?}"
    );
    for (at, why) in waiting_until(&app, &sd).await {
        assert_eq!(at, midweek(14, 0), "South Dakota waits for 08:00 Mountain");
        assert_eq!(why.as_deref(), Some("outside_lead_window"));
    }
    for (at, _) in waiting_until(&app, &la).await {
        assert_eq!(at, midweek(15, 0), "Los Angeles waits for 08:00 Pacific");
    }

    app.engine.clock.set(midweek(14, 0));
    let dialled = dialled_once_done(&app, &sim, 6).await;
    assert!(
        dialled.iter().all(|n| !la.contains(n)),
        "Los Angeles dialled at 07:00: {dialled:?}"
    );
    app.engine.clock.set(midweek(15, 0));
    wait_completed(&app, &t, Duration::from_secs(30)).await;
    assert_eq!(lead_dials(&sim.journal()).len(), 9);
}

#[tokio::test]
async fn a_number_put_on_a_dnc_list_after_import_is_never_dialled() {
    let sim = Simulator::start(sim_config()).await.unwrap();
    let app = spawn_app_with(adjust_for(&sim, 50)).await;
    app.engine.clock.set(midweek(15, 0));
    let t = app.tenant("Acme").await;
    let leads = numbers(212, 10);
    let report = app.import(&t, &csv(&leads), &[]).await;
    assert_eq!(report["accepted"], 10);
    // After the import: two on the tenant's list (API), one on the global list.
    for n in &leads[..2] {
        let r = app
            .client
            .post(format!("{}/api/v1/dnc", app.address))
            .bearer_auth(&t.key)
            .json(&serde_json::json!({"phone": n}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    }
    sqlx::query(
        "INSERT INTO dnc_numbers (tenant_id, phone_e164, source) VALUES (NULL, $1, 'manual')",
    )
    .bind(&leads[2])
    .execute(&app.db)
    .await
    .unwrap();
    // The leads already imported are started as they are.
    sqlx::query("UPDATE campaigns SET caller_id = '+14155550100', window_start = '00:00', window_end = '23:59', days = 127, max_attempts = 1, abandon_cap_pct = 100 WHERE id = $1")
        .bind(t.campaign.id)
        .execute(&app.db)
        .await
        .unwrap();
    dialer::engine::lifecycle::transition(
        &app.db,
        None,
        t.campaign.id,
        dialer::engine::lifecycle::Action::Start,
    )
    .await
    .unwrap();
    wait_completed(&app, &t, Duration::from_secs(30)).await;
    let dialed: Vec<String> = lead_dials(&sim.journal())
        .into_iter()
        .map(|d| d.2)
        .collect();
    for n in &leads[..3] {
        assert!(!dialed.contains(n), "{n} is on a DNC list and was dialled");
    }
    assert_eq!(dialed.len(), 7);
    let dnc: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT final_reason, last_skip_reason FROM leads WHERE phone_e164 = ANY($1)",
    )
    .bind(&leads[..3])
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert!(
        dnc.iter()
            .all(|(r, s)| r == "dnc" && s.as_deref() == Some("dnc")),
        "{dnc:?}"
    );
}

#[tokio::test]
async fn two_instances_on_one_database_and_redis_hold_the_limits_together() {
    let mut cfg = sim_config();
    cfg.timing.ring_secs = [8.0, 20.0];
    let sim = Simulator::start(cfg).await.unwrap();
    let a = spawn_app_with(adjust_for(&sim, 10)).await;
    let shared = a.settings.clone();
    let b = spawn_app_with(move |s| {
        adjust_for_url(shared.twilio.api_base_url.clone(), 10)(s);
        s.database.url = shared.database.url.clone();
        s.redis.key_prefix = shared.redis.key_prefix.clone();
    })
    .await;
    for app in [&a, &b] {
        app.engine.clock.set(midweek(15, 0));
    }
    let t = a.tenant("Acme").await;
    start_campaign(
        &a,
        &t,
        &numbers(212, 40),
        ", max_concurrent = 4, max_attempts = 1",
    )
    .await;
    wait_completed(&a, &t, Duration::from_secs(90)).await;
    let journal = sim.journal();
    assert!(
        max_concurrent(&journal) <= 4,
        "concurrency {} > 4 with two instances",
        max_concurrent(&journal)
    );
    assert!(
        max_per_second(&journal) <= 10,
        "{} dials in one second > 10 with two instances",
        max_per_second(&journal)
    );
    let (dialed, attempts) = dials_vs_attempts(&a, &journal).await;
    assert_eq!(dialed.len(), 40);
    assert!(
        dialed.values().all(|n| *n == 1),
        "each lead dialled once: {dialed:?}"
    );
    assert!(attempts.values().all(|n| *n == 1));
    drop(b);
}

pub(crate) fn adjust_for_url(url: String, cps: u32) -> impl FnOnce(&mut Settings) {
    move |s: &mut Settings| {
        s.twilio.api_base_url = url;
        s.twilio.cps = cps;
        s.dialer.fill_interval_ms = 50;
        s.dialer.sweep_interval_ms = 100;
    }
}

#[tokio::test]
async fn losing_every_redis_key_mid_campaign_loses_no_lead_and_dials_nothing_twice() {
    let sim = Simulator::start(sim_config()).await.unwrap();
    let app = spawn_app_with(adjust_for(&sim, 20)).await;
    app.engine.clock.set(midweek(15, 0));
    let t = app.tenant("Acme").await;
    start_campaign(
        &app,
        &t,
        &numbers(212, 60),
        ", max_concurrent = 6, max_attempts = 1",
    )
    .await;
    // Mid-campaign: every key of this deployment goes (FLUSHALL would also take other
    // tests' keys; the deployment sees the same thing).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while lead_dials(&sim.journal()).len() < 15 {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for _ in 0..3 {
        dialer::bench::delete_prefix(&app.settings.redis.url, &app.settings.redis.key_prefix)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    wait_completed(&app, &t, Duration::from_secs(60)).await;
    let journal = sim.journal();
    let (dialed, attempts) = dials_vs_attempts(&app, &journal).await;
    assert_eq!(dialed.len(), 60, "no lead lost");
    assert!(
        dialed.values().all(|n| *n == 1),
        "no lead dialled twice: {dialed:?}"
    );
    assert!(attempts.values().all(|n| *n == 1));
    assert_every_lead_and_call_final(&app).await;
}

#[tokio::test]
async fn pausing_stops_new_dials_at_once_and_resuming_finishes_the_campaign() {
    let mut cfg = sim_config();
    cfg.timing.ring_secs = [20.0, 30.0];
    let sim = Simulator::start(cfg).await.unwrap();
    let app = spawn_app_with(adjust_for(&sim, 10)).await;
    app.engine.clock.set(midweek(15, 0));
    let t = app.tenant("Acme").await;
    start_campaign(
        &app,
        &t,
        &numbers(212, 30),
        ", max_concurrent = 30, max_attempts = 1",
    )
    .await;
    while lead_dials(&sim.journal()).len() < 5 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let act = |action: &'static str| {
        app.client
            .post(format!(
                "{}/api/v1/campaigns/{}/{action}",
                app.address, t.campaign.id
            ))
            .bearer_auth(&t.key)
            .send()
    };
    let r = act("pause").await.unwrap();
    assert_eq!(r.status(), 200);
    let paused_at = Utc::now();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let late: Vec<_> = lead_dials(&sim.journal())
        .into_iter()
        .filter(|d| d.0 > paused_at + chrono::TimeDelta::milliseconds(100))
        .collect();
    assert!(late.is_empty(), "dialled after the pause: {late:?}");
    // A paused campaign cannot be started again, only resumed.
    let r = act("start").await.unwrap();
    assert_eq!(r.status(), 422);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("it is paused"),
        "{body}"
    );
    assert_eq!(act("resume").await.unwrap().status(), 200);
    wait_completed(&app, &t, Duration::from_secs(60)).await;
    assert_eq!(lead_dials(&sim.journal()).len(), 30);
}

#[tokio::test]
async fn duplicated_and_reordered_callbacks_end_in_the_same_dispositions_as_clean_ones() {
    async fn run(dup: f64) -> BTreeMap<String, Vec<Option<String>>> {
        let mut cfg = sim_config();
        cfg.duplicate_callbacks = dup;
        cfg.reorder_callbacks = dup;
        let sim = Simulator::start(cfg).await.unwrap();
        let app = spawn_app_with(adjust_for(&sim, 50)).await;
        app.engine.clock.set(midweek(15, 0));
        let t = app.tenant("Acme").await;
        start_campaign(
            &app,
            &t,
            &numbers(212, 30),
            ", max_concurrent = 10, max_attempts = 2, retry_busy_secs = 0, retry_no_answer_secs = 0, retry_failed_secs = 0",
        )
        .await;
        wait_completed(&app, &t, Duration::from_secs(60)).await;
        assert_every_lead_and_call_final(&app).await;
        let rows: Vec<(String, Option<String>)> =
            sqlx::query_as("SELECT to_number, disposition FROM calls ORDER BY to_number, attempt")
                .fetch_all(&app.db)
                .await
                .unwrap();
        let mut m: BTreeMap<String, Vec<Option<String>>> = BTreeMap::new();
        for (n, d) in rows {
            m.entry(n).or_default().push(d);
        }
        m
    }
    let (clean, messy) = tokio::join!(run(0.0), run(0.5));
    assert_eq!(clean, messy);
}

#[tokio::test]
async fn a_carrier_outage_pauses_dialling_without_burning_attempts_and_dialling_resumes() {
    let sim = Simulator::start(sim_config()).await.unwrap();
    let upstream: std::net::SocketAddr = sim.url().trim_start_matches("http://").parse().unwrap();
    let outage = crate::helpers::Outage::start(upstream).await;
    outage.take_down();
    let app = spawn_app_with(|s| {
        adjust_for_url(format!("http://{}", outage.addr), 50)(s);
        s.dialer.circuit_failures = 3;
        s.dialer.circuit_pause_secs = 1;
        s.dialer.circuit_max_pause_secs = 1;
        s.dialer.stuck_after_secs = 1;
    })
    .await;
    app.engine.clock.set(midweek(15, 0));
    let t = app.tenant("Acme").await;
    start_campaign(
        &app,
        &t,
        &numbers(212, 10),
        ", max_concurrent = 5, max_attempts = 1, dial_timeout_secs = 15",
    )
    .await;

    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let ready: serde_json::Value = app.get("/readyz").await.json().await.unwrap();
        if ready["checks"]["carrier"]
            .as_str()
            .unwrap()
            .starts_with("circuit open")
        {
            assert_eq!(
                ready["status"], "ready",
                "webhooks are still served: {ready}"
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "circuit never opened: {ready}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let metrics = app.get("/metrics").await.text().await.unwrap();
    // (The recorder is shared by every app in this test process, so only presence is checked.)
    assert!(metrics.contains("dialer_carrier_circuit_open"), "{metrics}");
    assert!(
        metrics.contains("dialer_carrier_failures_total"),
        "{metrics}"
    );
    // Attempts whose request may have reached the carrier (the connection was cut after
    // it was sent) are kept while the carrier cannot be asked about them, even past their
    // deadline: giving one back would risk ringing the same person twice. No lead is
    // finished, none carries more than the one attempt it had.
    let first: Vec<i64> = sqlx::query_scalar("SELECT id FROM calls ORDER BY id LIMIT 3")
        .fetch_all(&app.db)
        .await
        .unwrap();
    assert!(!first.is_empty());
    app.engine.clock.advance(chrono::TimeDelta::seconds(30));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (kept, done, most): (i64, i64, Option<i32>) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM calls WHERE id = ANY($1)),
                (SELECT count(*) FROM leads WHERE status = 'done'),
                (SELECT max(attempts) FROM leads)",
    )
    .bind(&first)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(
        kept,
        first.len() as i64,
        "kept while the carrier cannot be asked"
    );
    assert_eq!(done, 0, "no lead is finished by an outage");
    assert!(most.unwrap_or(0) <= 1, "an outage burns no attempt");
    let ready: serde_json::Value = app.get("/readyz").await.json().await.unwrap();
    assert!(
        ready["checks"]["carrier"]
            .as_str()
            .unwrap()
            .starts_with("circuit open"),
        "{ready}"
    );
    assert!(lead_dials(&sim.journal()).is_empty());

    // Back: the sweeper asks the carrier, which never had them; they are given back
    // (attempt count unchanged) and dialled once.
    outage.bring_back();
    app.engine.clock.advance(chrono::TimeDelta::seconds(61));
    wait_completed(&app, &t, Duration::from_secs(60)).await;
    let (dialed, _) = dials_vs_attempts(&app, &sim.journal()).await;
    assert_eq!(dialed.len(), 10);
    assert!(dialed.values().all(|n| *n == 1));
    let ready: serde_json::Value = app.get("/readyz").await.json().await.unwrap();
    assert_eq!(ready["checks"]["carrier"], "ok");
}

/// An instance that dies between sending the dial request and storing the carrier's answer
/// leaves an attempt with no SID, and the carrier's callbacks go to the dead instance. The
/// survivor must find the call at the carrier (not dial the lead again), and give back only
/// the attempt the carrier never received.
#[tokio::test]
async fn an_attempt_whose_answer_was_lost_is_found_at_the_carrier_not_dialled_again() {
    let sim = Simulator::start(sim_config()).await.unwrap();
    let app = spawn_app_with(|s| {
        adjust_for(&sim, 20)(s);
        s.dialer.stuck_after_secs = 1;
        s.dialer.sweep_interval_ms = 100;
    })
    .await;
    app.engine.clock.set(midweek(15, 0));
    let t = app.tenant("Acme").await;
    let leads = numbers(212, 2);
    // The campaign's window is shut while the dead instance's attempts are written.
    start_campaign(
        &app,
        &t,
        &leads,
        ", max_attempts = 1, dial_timeout_secs = 15, window_start = '01:00', window_end = '01:01'",
    )
    .await;
    let mut ids = Vec::new();
    for to in &leads {
        let id: i64 = sqlx::query_scalar(
            "WITH l AS (UPDATE leads SET status = 'dialing', attempts = 1 WHERE phone_e164 = $1
                         RETURNING id, tenant_id, campaign_id)
             INSERT INTO calls (tenant_id, campaign_id, lead_id, attempt, to_number, from_number, final_deadline)
             SELECT tenant_id, campaign_id, id, 1, $1, '+14155550100', $2 FROM l RETURNING id",
        )
        .bind(to)
        .bind(midweek(23, 0))
        .fetch_one(&app.db)
        .await
        .unwrap();
        ids.push(id);
    }
    // The dead instance's request for the first lead reached the carrier; its callbacks go
    // nowhere. The second lead's request never left.
    let carrier =
        dialer::telephony::client::TwilioClient::from_settings(&app.settings.twilio).unwrap();
    let mut req = dialer::telephony::client::CreateCall::new(
        &leads[0],
        "+14155550100",
        dialer::telephony::client::Instructions::Twiml(
            "<Response><Say>Hello</Say></Response>".into(),
        ),
    );
    req.status_callback = Some("http://127.0.0.1:9/dead".into());
    let placed = carrier.create_call(&req).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !sim.journal().iter().any(
        |e| matches!(&e.event, Event::CallEnd { call_sid, .. } if call_sid == placed.sid.as_str()),
    ) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the carrier's call never ended"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Both attempts are now past their deadline, with the campaign's window open.
    sqlx::query("UPDATE campaigns SET window_start = '00:00', window_end = '23:59' WHERE id = $1")
        .bind(t.campaign.id)
        .execute(&app.db)
        .await
        .unwrap();
    sqlx::query("UPDATE calls SET final_deadline = $1")
        .bind(midweek(14, 0))
        .execute(&app.db)
        .await
        .unwrap();
    wait_completed(&app, &t, Duration::from_secs(30)).await;

    let (dialed, attempts) = dials_vs_attempts(&app, &sim.journal()).await;
    assert_eq!(
        dialed.get(&leads[0]),
        Some(&1),
        "found, not dialled again: {dialed:?}"
    );
    assert_eq!(
        dialed.get(&leads[1]),
        Some(&1),
        "given back and dialled once: {dialed:?}"
    );
    assert_eq!(attempts.get(&leads[0]), Some(&1));
    assert_eq!(attempts.get(&leads[1]), Some(&1));
    let sid: Option<String> = sqlx::query_scalar("SELECT call_sid FROM calls WHERE id = $1")
        .bind(ids[0])
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(sid.as_deref(), Some(placed.sid.as_str()));
    assert_every_lead_and_call_final(&app).await;
}

/// Environment for a `dialer serve` process on the app's database and Redis namespace,
/// dialling through `sim` (later entries override the test database's own).
fn process_env(app: &TestApp, sim: &Simulator) -> Vec<(String, String)> {
    let mut env = app.env();
    env.extend([
        ("DIALER__TWILIO__API_BASE_URL".into(), sim.url()),
        ("DIALER__TWILIO__CPS".into(), "20".into()),
        ("DIALER__DIALER__STUCK_AFTER_SECS".into(), "1".into()),
        ("DIALER__DIALER__SWEEP_INTERVAL_MS".into(), "100".into()),
        ("DIALER__DIALER__FILL_INTERVAL_MS".into(), "50".into()),
    ]);
    env
}

fn serve(env: &[(String, String)]) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_dialer"))
        .arg("serve")
        .envs(env.iter().cloned())
        .env_remove("DIALER__DATABASE__PASSWORD")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("dialer serve starts")
}

#[tokio::test]
async fn an_instance_killed_mid_campaign_loses_no_lead_and_dials_nothing_twice() {
    let sim = Simulator::start(sim_config()).await.unwrap();
    // This app only serves the API (progress); the processes below dial.
    let app = spawn_app_with(|s| {
        adjust_for(&sim, 20)(s);
        s.dialer.enabled = false;
    })
    .await;
    let t = app.tenant("Acme").await;
    // The processes run on the system clock: the lead-local window is opened all day here
    // (this test is about crashes; the windows have their own tests).
    start_campaign(
        &app,
        &t,
        &numbers(212, 40),
        ", max_concurrent = 8, max_attempts = 1, dial_timeout_secs = 15, legal_window_start = '00:00', legal_window_end = '23:59'",
    )
    .await;
    let env = process_env(&app, &sim);
    let mut first = serve(&env);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while lead_dials(&sim.journal()).len() < 12 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the first instance never dialled"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();
    let mut second = serve(&env);
    let p = wait_completed(&app, &t, Duration::from_secs(90)).await;
    second.kill().unwrap();
    second.wait().unwrap();
    let (dialed, attempts) = dials_vs_attempts(&app, &sim.journal()).await;
    assert_eq!(dialed.len(), 40, "no lead lost: {p}");
    assert!(
        dialed.values().all(|n| *n == 1),
        "no lead dialled twice: {dialed:?}"
    );
    assert!(attempts.values().all(|n| *n == 1), "{attempts:?}");
    assert_every_lead_and_call_final(&app).await;
}

#[tokio::test]
async fn the_lead_window_follows_the_clock_change_on_the_day_daylight_saving_starts() {
    let sim = Simulator::start(sim_config()).await.unwrap();
    let app = spawn_app_with(adjust_for(&sim, 50)).await;
    let t = app.tenant("Acme").await;
    let ny = numbers(212, 2);
    // Sunday 14 March 2027: New York moves from UTC-5 to UTC-4 at 07:00 UTC. At 11:30 UTC it
    // is 07:30 EDT (an hour-behind reckoning would say 06:30): closed until 08:00 EDT = 12:00 UTC.
    let sunday = |h, m| Utc.with_ymd_and_hms(2027, 3, 14, h, m, 0).unwrap();
    app.engine.clock.set(sunday(11, 30));
    start_campaign(&app, &t, &ny, ", max_concurrent = 5, max_attempts = 1").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let waiting = waiting_until(&app, &ny).await;
        if waiting.len() == 2 && waiting.iter().all(|(_, why)| why.is_some()) {
            for (at, why) in waiting {
                assert_eq!(at, sunday(12, 0), "08:00 EDT, not 08:00 EST");
                assert_eq!(why.as_deref(), Some("outside_lead_window"));
            }
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "leads never postponed: {waiting:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        lead_dials(&sim.journal()).is_empty(),
        "dialled at 07:30 local time"
    );
    app.engine.clock.set(sunday(12, 0));
    wait_completed(&app, &t, Duration::from_secs(30)).await;
    assert_eq!(lead_dials(&sim.journal()).len(), 2);
}
