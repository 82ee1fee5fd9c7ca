//! The warm transfer against the carrier simulator: a person who answers is offered to the
//! right agent, bridged in one conference, passed on when an agent declines, abandoned
//! lawfully (message, opt-out key) when nobody is free; agents are never reserved twice;
//! a campaign at its abandonment cap dials no more calls than free agents.

use std::collections::HashSet;
use std::time::Duration;

use dialer::sim::{Entry, Event, Outcome, Simulator};
use uuid::Uuid;

use crate::engine::{adjust_for, midweek, numbers, sim_config, start_campaign, wait_completed};
use crate::helpers::{Tenant, TestApp, spawn_app_with};

/// An agent of the tenant, with `extra` as SQL assignments (`status = 'break'` …).
pub(crate) async fn agent(
    app: &TestApp,
    t: &Tenant,
    endpoint: &str,
    idle_mins: i64,
    extra: &str,
) -> Uuid {
    let id: Uuid = sqlx::query_scalar(
        "INSERT INTO agents (id, tenant_id, name, endpoint, status, idle_since)
         VALUES (gen_random_uuid(), $1, $2, $2, 'available', now() - make_interval(mins => $3::int))
         RETURNING id",
    )
    .bind(t.id)
    .bind(endpoint)
    .bind(idle_mins as i32)
    .fetch_one(&app.db)
    .await
    .unwrap();
    if !extra.is_empty() {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE agents SET {extra} WHERE id = $1"
        )))
        .bind(id)
        .execute(&app.db)
        .await
        .unwrap();
    }
    id
}

/// A group holding `agents`, made the campaign's.
pub(crate) async fn group(app: &TestApp, t: &Tenant, agents: &[Uuid]) -> Uuid {
    let g: Uuid = sqlx::query_scalar(
        "INSERT INTO agent_groups (id, tenant_id, name) VALUES (gen_random_uuid(), $1, 'Sales') RETURNING id",
    )
    .bind(t.id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    for a in agents {
        sqlx::query(
            "INSERT INTO agent_group_members (tenant_id, group_id, agent_id) VALUES ($1, $2, $3)",
        )
        .bind(t.id)
        .bind(g)
        .bind(a)
        .execute(&app.db)
        .await
        .unwrap();
    }
    g
}

/// Agents in wrap-up give their disposition at once (as the demo's simulated agents do).
/// Waits (up to 5 s) for the agent to show `status`; returns their active calls then. The
/// agent leg's final status callback is its own: it can land a moment after the person's
/// has finished the lead, and so the campaign.
pub(crate) async fn wait_for_agent_status(app: &TestApp, agent: Uuid, status: &str) -> i32 {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let (now, active): (String, i32) =
            sqlx::query_as("SELECT status, active_calls FROM agents WHERE id = $1")
                .bind(agent)
                .fetch_one(&app.db)
                .await
                .unwrap();
        if now == status {
            return active;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "agent {agent} is {now}, not {status}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn wrap_up_at_once(app: &TestApp) -> tokio::task::JoinHandle<()> {
    let db = app.db.clone();
    tokio::spawn(async move {
        loop {
            let _ = sqlx::query(
                "UPDATE agents SET status = 'available', idle_since = now() WHERE status = 'wrap_up'",
            )
            .execute(&db)
            .await;
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    })
}

pub(crate) fn people(leads: &[String]) -> dialer::sim::SimConfig {
    let mut cfg = sim_config();
    for n in leads {
        cfg.numbers.insert(n.clone(), Outcome::Human);
    }
    // People wait patiently on hold here (the campaign's hold limit is what is tested).
    cfg.timing.hold_patience_secs = [400.0, 400.0];
    cfg
}

pub(crate) fn agent_dials(journal: &[Entry]) -> Vec<String> {
    journal
        .iter()
        .filter_map(|e| match &e.event {
            Event::DialRequest {
                to, agent: true, ..
            } => Some(to.clone()),
            _ => None,
        })
        .collect()
}

/// Conference name → the calls that joined it.
pub(crate) fn conferences(journal: &[Entry]) -> std::collections::HashMap<String, HashSet<String>> {
    let mut m: std::collections::HashMap<String, HashSet<String>> = Default::default();
    for e in journal {
        if let Event::ConferenceJoin {
            conference,
            call_sid,
            ..
        } = &e.event
        {
            m.entry(conference.clone())
                .or_default()
                .insert(call_sid.clone());
        }
    }
    m
}

#[tokio::test]
async fn a_person_is_bridged_to_the_longest_idle_agent_who_may_take_calls_now() {
    let leads = numbers(212, 1);
    let sim = Simulator::start(people(&leads)).await.unwrap();
    let app = spawn_app_with(adjust_for(&sim, 20)).await;
    app.engine.clock.set(midweek(15, 0)); // Wednesday 15:00 UTC
    let t = app.tenant("Acme").await;
    // Longest idle first, but: on break, outside working hours, not a working day.
    let on_break = agent(
        &app,
        &t,
        "client:bea",
        90,
        "status = 'break', idle_since = NULL",
    )
    .await;
    let after_hours = agent(
        &app,
        &t,
        "client:hal",
        80,
        "work_start = '01:00', work_end = '02:00'",
    )
    .await;
    let not_today = agent(&app, &t, "client:tom", 70, "work_days = 127 - 4").await; // no Wednesday
    let dan = agent(&app, &t, "client:dan", 60, "").await;
    let eve = agent(&app, &t, "client:eve", 5, "").await;
    let g = group(&app, &t, &[on_break, after_hours, not_today, dan, eve]).await;
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

    let journal = sim.journal();
    assert_eq!(
        agent_dials(&journal),
        vec!["client:dan".to_string()],
        "only the longest-idle eligible agent rang"
    );
    let (disposition, agent_id, call): (Option<String>, Option<Uuid>, i64) =
        sqlx::query_as("SELECT disposition, agent_id, id FROM calls")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(disposition.as_deref(), Some("answered"));
    assert_eq!(agent_id, Some(dan));
    // Both legs in the attempt's one conference.
    let joined = conferences(&journal);
    assert_eq!(
        joined.get(&format!("call-{call}")).map(HashSet::len),
        Some(2),
        "{joined:?}"
    );
    // The whisper named the person and the campaign; the agent is in wrap-up afterwards.
    let whisper: i64 =
        sqlx::query_scalar("SELECT count(*) FROM call_events WHERE kind = 'agent_whisper'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(whisper, 1);
    assert_eq!(wait_for_agent_status(&app, dan, "wrap_up").await, 0);
}

#[tokio::test]
async fn an_agent_who_declines_is_released_and_the_next_agent_takes_the_call() {
    let leads = numbers(213, 1);
    let mut cfg = people(&leads);
    cfg.declining_agents = vec!["client:dee".into()];
    let sim = Simulator::start(cfg).await.unwrap();
    let app = spawn_app_with(adjust_for(&sim, 20)).await;
    app.engine.clock.set(midweek(17, 0));
    let t = app.tenant("Acme").await;
    let dee = agent(&app, &t, "client:dee", 60, "").await;
    let ann = agent(&app, &t, "client:ann", 10, "").await;
    let g = group(&app, &t, &[dee, ann]).await;
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
        vec!["client:dee".to_string(), "client:ann".to_string()]
    );
    let offers: Vec<(Uuid, String)> =
        sqlx::query_as("SELECT agent_id, state FROM agent_offers ORDER BY id")
            .fetch_all(&app.db)
            .await
            .unwrap();
    assert_eq!(
        offers,
        vec![(dee, "declined".into()), (ann, "ended".into())]
    );
    let (disposition, agent_id): (Option<String>, Option<Uuid>) =
        sqlx::query_as("SELECT disposition, agent_id FROM calls")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(
        (disposition.as_deref(), agent_id),
        (Some("answered"), Some(ann))
    );
    let (status, missed): (String, i32) =
        sqlx::query_as("SELECT status, missed_offers FROM agents WHERE id = $1")
            .bind(dee)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(
        (status.as_str(), missed),
        ("available", 1),
        "released, one miss counted"
    );
}

#[tokio::test]
async fn with_no_free_agent_the_person_hears_the_abandon_message_in_time_and_9_stops_the_calls() {
    let leads = numbers(312, 1);
    let mut cfg = people(&leads);
    cfg.opt_out_probability = 1.0;
    let sim = Simulator::start(cfg).await.unwrap();
    let app = spawn_app_with(adjust_for(&sim, 20)).await;
    app.engine.clock.set(midweek(16, 0));
    let t = app.tenant("Acme").await;
    // The tenant's only agent is on a break; the campaign accepts abandons (no cap).
    agent(
        &app,
        &t,
        "client:bea",
        30,
        "status = 'break', idle_since = NULL",
    )
    .await;
    start_campaign(
        &app,
        &t,
        &leads,
        ", max_attempts = 1, max_hold_ms = 1000, seller_name = 'Acme Solar', callback_number = '+14155550123'",
    )
    .await;
    wait_completed(&app, &t, Duration::from_secs(30)).await;

    let journal = sim.journal();
    assert!(
        agent_dials(&journal).is_empty(),
        "an agent on a break is not called"
    );
    let amd_at = journal
        .iter()
        .find_map(|e| {
            matches!(&e.event, Event::Amd { answered_by, .. } if answered_by == "human")
                .then_some(e.t_ms)
        })
        .expect("a person answered");
    let abandon_at = journal
        .iter()
        .find_map(|e| match &e.event {
            Event::Twiml { url, .. } if url.ends_with("/abandon") => Some(e.t_ms),
            _ => None,
        })
        .expect("the abandon message was fetched");
    let held = abandon_at - amd_at;
    assert!(
        (900.0..1500.0).contains(&held),
        "the message starts at the hold limit (1 s), not later: {held} ms"
    );
    let disposition: Option<String> = sqlx::query_scalar("SELECT disposition FROM calls")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(disposition.as_deref(), Some("abandoned"));
    // 9 was pressed: the number is on the tenant's list at once.
    let dnc: Vec<(Option<Uuid>, String)> =
        sqlx::query_as("SELECT tenant_id, source FROM dnc_numbers WHERE phone_e164 = $1")
            .bind(&leads[0])
            .fetch_all(&app.db)
            .await
            .unwrap();
    assert_eq!(dnc, vec![(Some(t.id.0), "opt_out".to_string())]);
}

#[tokio::test]
async fn no_agent_is_reserved_twice_when_people_answer_at_once_on_two_instances() {
    let app = spawn_app_with(|_| {}).await;
    let t = app.tenant("Acme").await;
    let agents = [
        agent(&app, &t, "client:a1", 3, "").await,
        agent(&app, &t, "client:a2", 2, "").await,
        agent(&app, &t, "client:a3", 1, "").await,
    ];
    // Twelve people on hold at once, each needing an agent.
    let leads = numbers(415, 12);
    app.import(&t, &crate::engine::csv(&leads), &[]).await;
    let calls: Vec<i64> = sqlx::query_scalar(
        "INSERT INTO calls (tenant_id, campaign_id, lead_id, attempt, to_number, from_number, state, hold_deadline)
         SELECT tenant_id, campaign_id, id, 1, phone_e164, '+14155550100', 'in-progress', now() + interval '1 hour'
           FROM leads RETURNING id",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    // A second instance's connection pool on the same database.
    let other = sqlx::postgres::PgPoolOptions::new()
        .max_connections(6)
        .connect(&app.settings.database.url)
        .await
        .unwrap();
    let now = chrono::Utc::now();
    let mut tasks = Vec::new();
    for (i, call) in calls.iter().enumerate() {
        let db = if i % 2 == 0 {
            app.db.clone()
        } else {
            other.clone()
        };
        let call = dialer::call::CallId(*call);
        tasks.push(tokio::spawn(async move {
            dialer::engine::transfer::reserve(&db, call, now)
                .await
                .unwrap()
        }));
    }
    let mut reserved = Vec::new();
    for t in tasks {
        if let dialer::engine::transfer::Reserve::Offer(o) = t.await.unwrap() {
            reserved.push(o.agent_id);
        }
    }
    reserved.sort();
    let mut expected = agents.to_vec();
    expected.sort();
    assert_eq!(reserved, expected, "each free agent reserved exactly once");
    let busy: Vec<(String, i32)> = sqlx::query_as("SELECT status, active_calls FROM agents")
        .fetch_all(&app.db)
        .await
        .unwrap();
    assert!(busy.iter().all(|(s, n)| s == "busy" && *n == 1), "{busy:?}");
    let holding: i64 = sqlx::query_scalar("SELECT count(*) FROM calls WHERE agent_id IS NOT NULL")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(holding, 3);
}

async fn run_with_history(answered: i64, abandoned: i64) -> usize {
    let leads = numbers(646, 12);
    let mut cfg = people(&leads);
    cfg.timing.talk_secs = [4.0, 8.0];
    let sim = Simulator::start(cfg).await.unwrap();
    let app = spawn_app_with(adjust_for(&sim, 50)).await;
    app.engine.clock.set(midweek(15, 0));
    let t = app.tenant("Acme").await;
    let a = agent(&app, &t, "client:ann", 10, "").await;
    let b = agent(&app, &t, "client:bob", 5, "").await;
    let g = group(&app, &t, &[a, b]).await;
    // The campaign's last 30 days: people who answered, and how many were abandoned.
    let history: Vec<String> = (0..answered)
        .map(|i| format!("+1718555{:04}", 1000 + i))
        .collect();
    app.import(&t, &crate::engine::csv(&history), &[]).await;
    sqlx::query(
        "WITH h AS (UPDATE leads SET status = 'done', final_reason = 'answered', attempts = 1
                     WHERE phone_e164 = ANY($1) RETURNING id, tenant_id, campaign_id, phone_e164)
         INSERT INTO calls (tenant_id, campaign_id, lead_id, attempt, to_number, from_number, state, disposition)
         SELECT tenant_id, campaign_id, id, 1, phone_e164, '+14155550100', 'completed',
                CASE WHEN row_number() OVER (ORDER BY id) <= $2 THEN 'abandoned' ELSE 'answered' END FROM h",
    )
    .bind(&history)
    .bind(abandoned)
    .execute(&app.db)
    .await
    .unwrap();
    let wrap = wrap_up_at_once(&app);
    start_campaign(
        &app,
        &t,
        &leads,
        &format!(", max_attempts = 1, max_concurrent = 10, dial_ratio = 3.0, abandon_cap_pct = 3, max_hold_ms = 10000, agent_group_id = '{g}'"),
    )
    .await;
    wait_completed(&app, &t, Duration::from_secs(60)).await;
    wrap.abort();
    // Most lead calls live at once.
    crate::engine::max_concurrent(&sim.journal())
}

#[tokio::test]
async fn a_campaign_at_its_abandonment_cap_dials_no_more_calls_than_free_agents() {
    // 1 abandoned of 20 answered (5 %): one more abandon would break the 3 % cap.
    let at_cap = run_with_history(20, 1).await;
    assert!(
        at_cap <= 2,
        "at the cap: no more live calls than the 2 agents, saw {at_cap}"
    );
    // 0 of 100: room under the cap, so the campaign's ratio of 3 per free agent applies.
    let with_room = run_with_history(100, 0).await;
    assert!(
        with_room > 2,
        "with room under the cap the ratio applies, saw {with_room}"
    );
}
